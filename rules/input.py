"""MPL003, MPL004: input that parses but that the product cannot use as written.

MPL003 reports Dovecot `!include` lines that fail or escape the scan (found by the Dovecot
builder, `DovecotConfig.include_problems`). MPL004 reports values the product rejects or
misreads: an invalid `haproxy_trusted_networks` entry (Dovecot ignores it and every later
one) and a Postfix `*_upstream_proxy_protocol` value other than `haproxy` (the daemon exits).
"""
from __future__ import annotations

from mailproxy_lint.api import Context, PostfixConfig, Severity, Setting, rule
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
      tags=("input",), facts=("TR04", "PP08"))
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

    ## Bad
    ```
    haproxy_trusted_networks = traefik 172.16.42.2
    # master.cf
      -o smtpd_upstream_proxy_protocol=yes
    ```

    ## Good
    ```
    haproxy_trusted_networks = 172.16.42.2
      -o smtpd_upstream_proxy_protocol=haproxy
    ```

    ## Fix
    Write IP addresses or CIDR ranges only in `haproxy_trusted_networks` (pin the proxy's address
    in compose instead of naming its container); set the Postfix parameters to `haproxy`.
    """
    for config in ctx.model.dovecot:
        written = config.settings.get("haproxy_trusted_networks")
        if written is None or written.span is None:
            continue
        networks, invalid = parse_trusted_networks(written.value)
        if invalid is not None:
            yield _trusted_networks_finding(ctx, written, networks, invalid)
    for config in ctx.model.postfix:
        yield from _proxy_protocol_values(ctx, config)


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
