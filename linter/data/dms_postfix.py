"""docker-mailserver (DMS) stock Postfix configuration, per DMS version.

DMS ships its own `main.cf` and `master.cf` (repository `target/postfix/`) and appends the
Amavis services (`target/amavis/postfix-amavis.cf`) when `ENABLE_AMAVIS=1` (the default). User
override files are applied on top of this (see `build/postfix.py`). Only what the traffic-path
rules need is tabled here, written as data rather than copied files.

Sources:
* DMS `target/postfix/master.cf` and `main.cf` at master c9b015ddc (2026-08, v15.x / edge),
  `target/amavis/postfix-amavis.cf`, CHANGELOG v13.0.0 (`smtps` renamed `submissions`);
* the project's facts catalog (facts-rules.md PL01, PF01, PF05; facts-formats.md §4);
* the DMS version -> Debian -> Postfix table below comes from the project lead's brief. The
  Debian 12 / Postfix 3.7 pairing for 15.x is confirmed by the DMS changelog; the older lines
  (Debian 10 / Postfix 3.4 up to 10.3, Postfix 3.5 for 10.4-14.x) are inferred from the Debian
  release each image was built on and were not checked against the images themselves.
* Older stock master.cf files (before 13.0) are assumed to match the current one apart from the
  `smtps` name; their exact `-o` lists were not compared line by line.
"""
from __future__ import annotations

from dataclasses import dataclass

from mailproxy_lint.model import Version


@dataclass(frozen=True, slots=True)
class StockService:
    service: str
    type: str
    private: str
    unprivileged: str
    chroot: str
    wakeup: str
    process_limit: str
    command: str
    options: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class DmsRelease:
    """Which Postfix a DMS version line ships."""

    first: Version  # first DMS version of the line
    debian: str
    postfix: Version
    label: str  # how to name the line in origins ("15", "edge")


# oldest first; the last released line is what `latest` (or an unknown tag) means
RELEASES = (
    DmsRelease(Version((0,)), "Debian 10", Version((3, 4)), "<= 10.3"),
    DmsRelease(Version((10, 4)), "Debian 11", Version((3, 5)), "10.4-11"),
    DmsRelease(Version((12,)), "Debian 11", Version((3, 5)), "12-14"),
    DmsRelease(Version((15,)), "Debian 12", Version((3, 7)), "15"),
)
EDGE = DmsRelease(Version((16,)), "Debian 13", Version((3, 10)), "edge")
SUBMISSIONS_RENAMED = Version((13,))  # DMS 13.0.0 renamed the 465 service smtps -> submissions


def release(dms: Version | None) -> DmsRelease:
    """The release line of a DMS version; None (latest, unknown tag) means the newest release."""
    if dms is None:
        return RELEASES[-1]
    if dms >= EDGE.first:
        return EDGE
    chosen = RELEASES[0]
    for line in RELEASES:
        if dms >= line.first:
            chosen = line
    return chosen


# options shared by the submission services (587 and 465)
_MUA_OPTIONS = (
    ("smtpd_sasl_auth_enable", "yes"),
    ("smtpd_sasl_type", "dovecot"),
    ("smtpd_reject_unlisted_recipient", "no"),
    ("smtpd_sasl_authenticated_header", "yes"),
    ("smtpd_client_restrictions", "permit_sasl_authenticated,reject"),
    ("smtpd_relay_restrictions", "permit_sasl_authenticated,reject"),
    ("smtpd_sender_restrictions", "$mua_sender_restrictions"),
    ("smtpd_discard_ehlo_keywords", ""),
    ("milter_macro_daemon_name", "ORIGINATING"),
    ("cleanup_service_name", "sender-cleanup"),
)


def _unix(name: str, command: str, private: str = "-", unprivileged: str = "-", wakeup: str = "-",
          limit: str = "-") -> StockService:
    return StockService(name, "unix", private, unprivileged, "n", wakeup, limit, command)


def master_services(dms: Version | None, amavis: bool = True) -> tuple[StockService, ...]:
    """The stock master.cf services of a DMS version, in file order."""
    implicit_tls = "submissions" if dms is None or dms >= SUBMISSIONS_RENAMED else "smtps"
    services = [
        StockService("smtp", "inet", "n", "-", "n", "-", "1", "postscreen"),
        StockService("smtpd", "pass", "-", "-", "n", "-", "-", "smtpd"),
        _unix("tlsproxy", "tlsproxy", limit="0"),
        _unix("dnsblog", "dnsblog", limit="0"),
        StockService("submission", "inet", "n", "-", "n", "-", "-", "smtpd", (
            ("syslog_name", "postfix/submission"),
            ("smtpd_tls_security_level", "encrypt"),
            *_MUA_OPTIONS,
        )),
        StockService(implicit_tls, "inet", "n", "-", "n", "-", "-", "smtpd", (
            ("syslog_name", f"postfix/{implicit_tls}"),
            ("smtpd_tls_wrappermode", "yes"),
            *_MUA_OPTIONS,
        )),
        StockService("pickup", "fifo", "n", "-", "n", "60", "1", "pickup", (
            ("content_filter", ""),
            ("receive_override_options", "no_header_body_checks"),
        )),
        StockService("sender-cleanup", "unix", "n", "-", "n", "-", "0", "cleanup", (
            ("syslog_name", "postfix/sender-cleanup"),
            ("header_checks", "pcre:/etc/postfix/maps/sender_header_filter.pcre"),
        )),
        _unix("cleanup", "cleanup", private="n", limit="0"),
        _unix("qmgr", "qmgr", private="n", wakeup="300", limit="1"),
        _unix("tlsmgr", "tlsmgr", wakeup="1000?", limit="1"),
        _unix("rewrite", "trivial-rewrite"),
        _unix("bounce", "bounce", limit="0"),
        _unix("defer", "bounce", limit="0"),
        _unix("trace", "bounce", limit="0"),
        _unix("verify", "verify", limit="1"),
        _unix("flush", "flush", private="n", wakeup="1000?", limit="0"),
        _unix("proxymap", "proxymap"),
        _unix("proxywrite", "proxymap", limit="1"),
        _unix("smtp", "smtp"),
        _unix("relay", "smtp"),
        _unix("showq", "showq", private="n"),
        _unix("error", "error"),
        _unix("retry", "error"),
        _unix("discard", "discard"),
        _unix("local", "local", unprivileged="n"),
        _unix("virtual", "virtual", unprivileged="n"),
        _unix("lmtp", "lmtp"),
        _unix("anvil", "anvil", limit="1"),
        _unix("scache", "scache", limit="1"),
        StockService("postlog", "unix-dgram", "n", "-", "n", "-", "1", "postlogd"),
    ]
    if amavis:
        services += [
            StockService("smtp-amavis", "unix", "-", "-", "n", "-", "2", "smtp", (
                ("syslog_name", "postfix/$service_name"),
                ("smtp_send_xforward_command", "yes"),
                ("smtp_tls_security_level", "none"),
            )),
            # the Amavis re-injection listener: local, never proxied (PP07, PF05)
            StockService("127.0.0.1:10025", "inet", "n", "-", "n", "-", "-", "smtpd", (
                ("syslog_name", "postfix/smtpd-amavis"),
                ("content_filter", ""),
                ("smtpd_client_restrictions", "permit_mynetworks,reject"),
                ("smtpd_recipient_restrictions", "permit_mynetworks,reject"),
                ("mynetworks", "127.0.0.0/8"),
                ("receive_override_options", "no_header_body_checks,no_unknown_recipient_checks,no_milters"),
            )),
        ]
    return tuple(services)


# stock main.cf values the path rules read (the file sets many more)
MAIN: dict[str, str] = {
    "mynetworks": "127.0.0.0/8 [::1]/128 [fe80::]/64",
    "inet_interfaces": "all",
    "inet_protocols": "all",
    "smtpd_tls_security_level": "may",
    "smtpd_sasl_auth_enable": "no",
    "smtpd_sasl_type": "dovecot",
    "postscreen_dnsbl_action": "enforce",
    "postscreen_greet_action": "enforce",
    "postscreen_bare_newline_action": "enforce",
    "mua_sender_restrictions": "reject_authenticated_sender_login_mismatch, $dms_smtpd_sender_restrictions",
    "dms_smtpd_sender_restrictions": "permit_sasl_authenticated, permit_mynetworks, reject_unknown_sender_domain",
}

# container environment variables DMS turns into main.cf values at start-up (when set)
ENV_TO_MAIN: dict[str, tuple[str, ...]] = {
    "POSTFIX_INET_PROTOCOLS": ("inet_protocols",),
    "POSTSCREEN_ACTION": ("postscreen_dnsbl_action", "postscreen_greet_action", "postscreen_bare_newline_action"),
}


def amavis_enabled(env_value: str | None) -> bool:
    """ENABLE_AMAVIS defaults to 1; DMS treats 0 as off."""
    return env_value is None or env_value.strip() != "0"
