"""What docker-mailserver (DMS) ships for Dovecot, per DMS version.

The builder overlays the user's `dovecot.cf` on this "stock" Dovecot (DMS copies `dovecot.cf` to
`/etc/dovecot/local.conf`, which the stock `dovecot.conf` includes last, at top level).

Sources (docker-mailserver/docker-mailserver, read at master c9b015ddc and the v15 tree):
- `target/dovecot/10-master.conf`: `service imap-login { inet_listener imap {} inet_listener
  imaps {} }` and the same for `pop3-login` (`pop3`, `pop3s`), with `#port = 993` / `#ssl = yes`
  lines that the start-up script uncomments;
- `target/scripts/startup/setup.d/dovecot.sh` (`_setup_dovecot`): uncomments `port = 993`,
  `port = 995` and `ssl = yes` in 10-master.conf, turns `#ssl = yes` in 10-ssl.conf into
  `ssl = required`, disables the pop3 and managesieve protocol files unless `ENABLE_POP3=1` /
  `ENABLE_MANAGESIEVE=1`, and sets `listen` from `DOVECOT_INET_PROTOCOLS` (`ipv4` -> `*`,
  `ipv6` -> `[::]`, `all` leaves Dovecot's default);
- `SMTP_ONLY=1` runs no Dovecot at all; newer releases also read `ENABLE_IMAP` (default 1; the
  DMS Helm chart sets it), so `ENABLE_IMAP=0` drops the IMAP protocol;
- Dovecot versions: DMS up to 10.3 is Debian 10 (Dovecot 2.3.4); 10.4-15.x install a Dovecot
  2.3 (Debian 11/12 packages or the Dovecot CE 2.3 repository, minor version varies by
  architecture); `:edge` after v15.1.0 moved to Debian 13 with Dovecot 2.4 (CHANGELOG: "Custom
  `dovecot.cf` using 2.3 syntax will not load"). We assume the next major release (16) keeps
  the Debian 13 base.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from mailproxy_lint.model import Version

ORIGIN = "docker-mailserver stock dovecot"


@dataclass(frozen=True, slots=True)
class StockListener:
    service: str
    name: str
    port: int
    ssl: bool
    protocol: str  # the `protocols` entry that starts the service


STOCK_LISTENERS: tuple[StockListener, ...] = (
    StockListener("imap-login", "imap", 143, False, "imap"),
    StockListener("imap-login", "imaps", 993, True, "imap"),
    StockListener("pop3-login", "pop3", 110, False, "pop3"),
    StockListener("pop3-login", "pop3s", 995, True, "pop3"),
    # not written in DMS's 10-master.conf: Pigeonhole's built-in default, started with the protocol
    StockListener("managesieve-login", "sieve", 4190, False, "sieve"),
)

# top-level settings DMS changes from Dovecot's defaults that matter to the traffic path
STOCK_SETTINGS: dict[str, str] = {
    "ssl": "required",
}

_LISTEN_BY_INET_PROTOCOLS = {"ipv4": "*", "ipv6": "[::]"}


def _flag(env: Mapping[str, str], name: str, default: str = "0") -> bool:
    return env.get(name, default).strip() == "1"


def runs_dovecot(env: Mapping[str, str]) -> bool:
    """False when the container runs no Dovecot (`SMTP_ONLY=1`)."""
    return not _flag(env, "SMTP_ONLY")


# The protocols DMS switches with an environment flag, and the flag's default.
PROTOCOL_FLAGS: tuple[tuple[str, str, str], ...] = (
    ("imap", "ENABLE_IMAP", "1"),
    ("pop3", "ENABLE_POP3", "0"),
    ("sieve", "ENABLE_MANAGESIEVE", "0"),
)


def enabled_protocols(env: Mapping[str, str]) -> tuple[str, ...]:
    """The Dovecot `protocols` DMS enables for this container environment."""
    protocols = [protocol for protocol, flag, default in PROTOCOL_FLAGS if _flag(env, flag, default)]
    protocols.append("lmtp")  # Postfix delivers over LMTP (a unix socket, no inet listener)
    return tuple(protocols)


# Ports DMS opens only when an environment flag turns them on (off by default): POP3 and POP3S
# with ENABLE_POP3=1, ManageSieve with ENABLE_MANAGESIEVE=1.
OPT_IN_PORTS = frozenset(listener.port for listener in STOCK_LISTENERS
                         for protocol, _, default in PROTOCOL_FLAGS
                         if listener.protocol == protocol and default == "0")


def listen_for(env: Mapping[str, str]) -> str | None:
    """The `listen` value DMS writes for `DOVECOT_INET_PROTOCOLS`, or None for Dovecot's default."""
    return _LISTEN_BY_INET_PROTOCOLS.get(env.get("DOVECOT_INET_PROTOCOLS", "all").strip())


def dovecot_version(dms_version: Version | None, tag: str | None) -> Version | None:
    """The Dovecot version a DMS release ships, from its version or, failing that, its image tag."""
    if dms_version is None:
        return Version((2, 4)) if tag is not None and tag.strip().lower() == "edge" else None
    if dms_version <= Version((10, 3)):
        return Version((2, 3, 4))
    if dms_version < Version((16,)):
        return Version((2, 3))
    return Version((2, 4))
