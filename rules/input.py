"""MPL003, MPL004: input that parses but that the product cannot use as written.

MPL003 reports Dovecot `!include` lines that fail or escape the scan (found by the Dovecot
builder, `DovecotConfig.include_problems`). MPL004 reports values the product rejects or
misreads: an invalid `haproxy_trusted_networks` entry (Dovecot ignores it and every later
one), a Postfix `*_upstream_proxy_protocol` value other than `haproxy` (the daemon exits), and
values of the wrong type: Dovecot booleans, time intervals and ports (doveconf refuses them;
the setting types come from `data/known_names.py`), Postfix time values (the daemon that reads
them exits) and master.cf `inet` ports out of range.
"""
from __future__ import annotations

import re

from mailproxy_lint.api import Context, DovecotConfig, PostfixConfig, Severity, Setting, rule
from mailproxy_lint.build.dovecot import OUTSIDE_ROOT, parse_trusted_networks
from mailproxy_lint.build.postfix import expand
from mailproxy_lint.units import network_text

PROXY_PARAMETERS = {"postscreen_upstream_proxy_protocol": "postscreen", "smtpd_upstream_proxy_protocol": "smtpd"}


@rule("MPL003", "include-problem", Severity.ERROR,
      summary="A Dovecot !include names no file, loops, or leaves the scanned directory",
      tags=("input", "dovecot"))
def include_problem(ctx: Context):
    """## Why it matters
    `!include` (unlike `!include_try`) must match at least one file, even when it is a wildcard:
    otherwise doveconf stops with `No matches` and Dovecot does not start. A file that includes
    itself, directly or through others, stops it with `Recursive include file`. An include that
    points outside the scanned directory is not an error for Dovecot, but the settings it holds
    were not checked, so this is reported as a warning.

    ## Bad
    ```
    # dovecot.conf
    !include conf.d/*.conf
    !include local/proxy.conf
    ```

    ## Good
    ```
    !include conf.d/*.conf
    !include_try local/proxy.conf
    ```

    ## Fix
    Correct the path (relative paths start at the including file's directory), create the file,
    or use `!include_try` for a file that may be absent. Remove the include that closes a loop.
    To have an outside include checked, scan the directory that holds it too.
    """
    for config in ctx.model.dovecot:
        for span, reason in config.include_problems:
            severity = Severity.WARNING if reason.startswith(OUTSIDE_ROOT) else None
            yield ctx.finding(span, reason, severity=severity)


@rule("MPL004", "invalid-value", Severity.ERROR,
      summary="A value the product rejects or misreads",
      tags=("input",), facts=("TR04", "PP08", "VC02"))
def invalid_value(ctx: Context):
    """## Why it matters
    Some values parse but do not work. Dovecot splits `haproxy_trusted_networks` on spaces and
    commas and needs an IP address with an optional `/bits` in each entry; at the first entry
    that is not (a host name such as `traefik`, a mask above 32 or 128) it logs
    `haproxy_trusted_networks: Invalid network '<entry>'` and ignores that entry and every later
    one, so proxies listed after it are not trusted. Postfix accepts only `haproxy` (or nothing)
    in `smtpd_upstream_proxy_protocol` and `postscreen_upstream_proxy_protocol`; any other value
    makes the daemon exit with `fatal: unsupported smtpd_upstream_proxy_protocol value: yes` on
    the first connection. Both PROXY versions are detected automatically, so `v2` is no value.

    Values of the wrong type stop the product too. Dovecot accepts only `yes`, `y`, `1` or `no`
    for a boolean (`haproxy = on` gives `Invalid boolean value: on (use yes or no)`), a number
    with a unit for a time (`2 mins`, `30s`; `120` alone is `missing units`, `2 hrs` and `1.5m`
    are invalid) and 0-65535 for a port; doveconf refuses the file. A Postfix time value is a
    number with an optional `s`, `m`, `h`, `d` or `w` (`5 m` with a space, `1.5m` or `5x` make
    the daemon that reads it exit with `bad time value or unit`). A master.cf `inet` service on
    a port above 65535 never listens.

    ## Bad
    ```
    haproxy_trusted_networks = traefik 172.16.42.2
    imap_idle_notify_interval = 120
    service imap-login {
      inet_listener imap {
        haproxy = on
      }
    }
    # master.cf
      -o smtpd_upstream_proxy_protocol=yes
      -o smtpd_upstream_proxy_timeout=5 m
    ```

    ## Good
    ```
    haproxy_trusted_networks = 172.16.42.2
    imap_idle_notify_interval = 2 mins
        haproxy = yes
      -o smtpd_upstream_proxy_protocol=haproxy
      -o smtpd_upstream_proxy_timeout=5m
    ```

    ## Fix
    Write IP addresses or CIDR ranges only in `haproxy_trusted_networks` (pin the proxy's address
    in compose instead of naming its container); set the Postfix parameters to `haproxy`.
    Write booleans as `yes`/`no`, times as a number and a unit, ports as a number up to 65535.
    """
    for config in ctx.model.dovecot:
        written = config.settings.get("haproxy_trusted_networks")
        if written is not None and written.span is not None:
            networks, invalid = parse_trusted_networks(written.value)
            # `$ENV:NAME` is replaced by the environment variable when Dovecot reads the file
            if invalid is not None and not invalid.startswith("$ENV:"):
                yield _trusted_networks_finding(ctx, written, networks, invalid)
        yield from _dovecot_typed_values(ctx, config)
    for config in ctx.model.postfix:
        yield from _proxy_protocol_values(ctx, config)
        yield from _postfix_time_values(ctx, config)
        yield from _postfix_ports(ctx, config)


def _trusted_networks_finding(ctx: Context, written: Setting[str], networks, invalid: str):
    entries = [e for e in written.value.replace(",", " ").split() if e]
    later = entries[entries.index(invalid) + 1:] if invalid in entries else []
    lost = f"; the later {'entry' if len(later) == 1 else 'entries'} {' '.join(later)} {'is' if len(later) == 1 else 'are'} ignored too" if later else ""
    kept = f"trusts only {' '.join(network_text(n) for n in networks)}" if networks else "trusts nobody"
    return ctx.finding(
        written.span,
        f"`haproxy_trusted_networks` entry {invalid!r} is not an IP address or CIDR range: Dovecot logs "
        f"'Invalid network' and stops reading the list there{lost}, so it {kept}; write the "
        f"address itself",
    )


def _proxy_protocol_values(ctx: Context, config: PostfixConfig):
    seen: set[int] = set()
    for parameter, daemon in PROXY_PARAMETERS.items():
        main = config.main.get(parameter)
        candidates = [(main, None)] if main is not None else []
        candidates += [(s.options[parameter], s) for s in config.services if parameter in s.options and s.command == daemon]
        for setting, service in candidates:
            if setting.span is None or id(setting) in seen:
                continue
            seen.add(id(setting))
            value = expand(config, setting.value, service).strip()
            if value in ("", "haproxy") or "$" in value:
                continue
            where = f"service {service.name!r}" if service is not None else "main.cf"
            yield ctx.finding(
                setting.span,
                f"`{parameter} = {setting.value.strip()}` ({where}): the only valid value is `haproxy`, and {daemon} "
                f"exits with 'fatal: unsupported {parameter} value: {value}'; "
                f"write `haproxy` (PROXY v1 and v2 are detected automatically)",
            )


# --------------------------------------------------------------------------------------------
# Values of the wrong type
# --------------------------------------------------------------------------------------------

_DOVECOT_TIME = re.compile(r"\s*(\d+)\s*([A-Za-z]*)\s*")
_SECOND_UNITS = ("seconds", "secs", "minutes", "mins", "hours", "days", "weeks")
_MILLISECOND_UNITS = ("milliseconds", "millisecs", "msecs")


def dovecot_time_error(value: str, milliseconds: bool) -> str | None:
    """doveconf's complaint about a time interval (2.3 `settings_get_time`), or None."""
    match = _DOVECOT_TIME.fullmatch(value)
    if match is None:
        return f"Invalid time interval: {value}"
    number, unit = match.group(1), match.group(2).lower()
    if not unit:
        return None if int(number) == 0 else f"Time interval '{value}' is missing units (add e.g. 's' for seconds)"
    if unit == "ms" or unit.startswith(("mil", "msec")):
        if not any(u.startswith(unit) for u in _MILLISECOND_UNITS) and unit != "ms":
            return f"Invalid time interval: {value}"
        return None if milliseconds else f"Milliseconds not supported for this setting: {value}"
    return None if any(u.startswith(unit) for u in _SECOND_UNITS) else f"Invalid time interval: {value}"


def dovecot_bool_error(value: str) -> str | None:
    ok = value.lower() in ("yes", "y", "1", "no")
    return None if ok else f"Invalid boolean value: {value} (use yes or no)"


def dovecot_port_error(value: str) -> str | None:
    ok = value.isdigit() and int(value) <= 65535
    return None if ok else f"Invalid port number {value}"


_DOVECOT_CHECKS = {
    "bool": (dovecot_bool_error, "yes or no"),
    "time": (lambda v: dovecot_time_error(v, False), "a number and a unit such as `30 secs` or `2 mins`"),
    "time_ms": (lambda v: dovecot_time_error(v, True), "a number and a unit such as `500 ms` or `2 secs`"),
    "port": (dovecot_port_error, "a port number from 0 to 65535"),
}


def _dovecot_typed_values(ctx: Context, config: DovecotConfig):
    from mailproxy_lint.data import known_names
    from mailproxy_lint.rules.unknown_setting import dovecot24_value_type, is_dovecot_24, section_kind, split_path

    table = known_names.dovecot23()
    is_24 = is_dovecot_24(config)
    for key, setting in config.settings.items():
        if setting.span is None or setting.origin or "$" in setting.value or "%" in setting.value:
            continue
        *frames, name = split_path(key)
        if is_24:
            value_type = dovecot24_value_type(frames, name)
        else:
            kind = section_kind(frames)
            value_type = table.type_of(kind, name) if kind is not None else None
        if value_type not in _DOVECOT_CHECKS:
            continue
        check, expected = _DOVECOT_CHECKS[value_type]
        if setting.value.strip().lower() == "infinite":
            continue  # a 2.4 time value; 2.3 configurations never reach Dovecot with it unnoticed
        error = check(setting.value.strip())
        if error is not None:
            yield ctx.finding(setting.span, f"`{name} = {setting.value.strip()}`: doveconf stops with '{error}' and "
                                            f"Dovecot does not start; write {expected}")


_POSTFIX_TIME = re.compile(r"\d+(?:[smhdw]\S*)?")


def _postfix_time_values(ctx: Context, config: PostfixConfig):
    from mailproxy_lint.data import known_names

    times = known_names.postfix().time_parameters
    seen: set[int] = set()
    candidates = [(n, s, "main.cf") for n, s in config.main.items()]
    candidates += [(n, s, f"service {svc.name!r}") for svc in config.services for n, s in svc.options.items()]
    for name, setting, where in candidates:
        if name not in times or setting.span is None or id(setting) in seen or "$" in setting.value:
            continue
        seen.add(id(setting))
        value = setting.value.strip()
        if _POSTFIX_TIME.fullmatch(value) is None:
            yield ctx.finding(
                setting.span,
                f"`{name} = {value}` ({where}): not a Postfix time value; the daemon that reads it exits with "
                f"'fatal: parameter {name}: bad time value or unit: {value}'; write a number with an optional "
                f"unit s, m, h, d or w and no space (`5m`)",
            )


def _postfix_ports(ctx: Context, config: PostfixConfig):
    for service in config.services:
        if service.type != "inet" or service.span is None or service.origin.startswith("docker-mailserver"):
            continue
        port = service.name.rsplit(":", 1)[-1]
        if port.isdigit() and int(port) > 65535:
            yield ctx.finding(
                service.span,
                f"master.cf service `{service.name}`: port {port} is above 65535, the largest TCP port, so the "
                f"Postfix master cannot listen there and the service never runs",
            )
