"""MPL104, MPL502, MPL504, MPL505, MPL506: how Postfix (and Dovecot) services are wired on one host.

These rules read one mail server's own settings: which PROXY parameter each master.cf service
sets, what main.cf sets for everyone, which docker-mailserver override lines changed nothing,
which listeners want the same address and port, and whether Postfix runs the address family
the proxy writes into PROXY headers.
"""
from __future__ import annotations

import difflib
import ipaddress
import re
from collections import defaultdict

from mailproxy_lint.api import (
    Context,
    Entrypoint,
    Listener,
    PostfixConfig,
    PostfixService,
    Product,
    Setting,
    Severity,
    rule,
)
from mailproxy_lint.build.postfix import effective_setting, expand, inet_address

PROXY_PARAMETERS = {"postscreen": "postscreen_upstream_proxy_protocol", "smtpd": "smtpd_upstream_proxy_protocol"}
DMS = "docker-mailserver"


def _written(setting: Setting[str] | None) -> bool:
    """A value a user wrote (not a stock/default one) that is not empty."""
    return setting is not None and setting.span is not None and setting.value.strip() != ""


def _reads_proxy(config: PostfixConfig, service: PostfixService) -> bool:
    """True when this service's daemon reads PROXY (its own parameter resolves to `haproxy`)."""
    parameter = PROXY_PARAMETERS.get(service.command)
    if parameter is None:
        return False
    return expand(config, effective_setting(config, service, parameter).value, service).strip() == "haproxy"


def _service_fix(config: PostfixConfig, service: PostfixService, parameter: str) -> str:
    if config.platform == DMS:
        return f"`{service.name}/{service.type}/{parameter}=haproxy` in postfix-master.cf"
    return f"`-o {parameter}=haproxy` on the {service.name!r} service in master.cf"


# --------------------------------------------------------------------------------------------
# MPL104
# --------------------------------------------------------------------------------------------


@rule("MPL104", "wrong-postfix-proxy-parameter", Severity.ERROR,
      summary="A Postfix service sets the PROXY parameter of the other daemon, which it never reads",
      tags=("proxy-protocol", "postfix"), facts=("PP06",))
def wrong_postfix_proxy_parameter(ctx: Context):
    """## Why it matters
    Postfix has two PROXY parameters and each daemon reads only its own: postscreen reads
    `postscreen_upstream_proxy_protocol`, smtpd reads `smtpd_upstream_proxy_protocol`. Port 25
    usually runs postscreen (docker-mailserver's stock `smtp inet ... postscreen`), which hands
    clean clients to an `smtpd pass` service. Setting smtpd's parameter on the postscreen service,
    or postscreen's on a submission smtpd, leaves the port reading no PROXY header at all: the
    header is taken as the client's first command and every proxied connection fails. An smtpd
    `pass` service behind postscreen never reads PROXY either; with smtpd's parameter it logs
    `warning: ignoring non-empty smtpd_upstream_proxy_protocol setting behind postscreen`.

    ## Bad
    ```
    # docker-mailserver postfix-master.cf
    smtp/inet/smtpd_upstream_proxy_protocol=haproxy
    submission/inet/postscreen_upstream_proxy_protocol=haproxy
    ```

    ## Good
    ```
    smtp/inet/postscreen_upstream_proxy_protocol=haproxy
    submission/inet/smtpd_upstream_proxy_protocol=haproxy
    ```

    ## Fix
    Use `postscreen_upstream_proxy_protocol` on `postscreen` services and
    `smtpd_upstream_proxy_protocol` on `inet` services that run `smtpd`; never set the smtpd one
    on a `pass` service. A parameter that the service also sets correctly is dead text and is
    reported as a warning; smtpd's parameter reaching the `pass` service from main.cf is a warning
    too (harmless when postscreen reads PROXY itself, otherwise nothing on port 25 does).
    """
    for config in ctx.model.postfix:
        postscreen_reads = any(_reads_proxy(config, s) for s in config.services
                               if s.type == "inet" and s.command == "postscreen")
        for service in config.services:
            if service.type == "inet" and service.command in PROXY_PARAMETERS:
                yield from _other_daemon_parameter(ctx, config, service)
            elif service.type == "pass" and service.command == "smtpd":
                finding = _pass_service_parameter(ctx, config, service, postscreen_reads)
                if finding is not None:
                    yield finding


def _other_daemon_parameter(ctx: Context, config: PostfixConfig, service: PostfixService):
    own = PROXY_PARAMETERS[service.command]
    other_daemon = "smtpd" if service.command == "postscreen" else "postscreen"
    wrong = PROXY_PARAMETERS[other_daemon]
    setting = service.options.get(wrong)
    if not _written(setting):
        return
    dead = _reads_proxy(config, service)
    consequence = (f"the line has no effect (the service already sets `{own}`)" if dead else
                   f"so port {inet_address(service.name)[1] or service.name} reads no PROXY header and takes it "
                   f"for the client's first command")
    yield ctx.finding(
        setting.span,
        f"service {service.name!r} runs {service.command}, which never reads `{wrong}`, {consequence}; "
        f"use {_service_fix(config, service, own)} instead",
        related=[(service.span, f"service {service.name!r} runs {service.command}")],
        severity=Severity.WARNING if dead else None,
    )


def _pass_service_parameter(ctx: Context, config: PostfixConfig, service: PostfixService, postscreen_reads: bool):
    parameter = PROXY_PARAMETERS["smtpd"]
    own = service.options.get(parameter)
    inherited = config.main.get(parameter) if parameter not in service.options else None
    setting = own if _written(own) else inherited if _written(inherited) else None
    if setting is None:
        return None
    if setting is inherited and (postscreen_reads or _global_leaks(config, "smtpd")):
        return None  # harmless noise in the log, or MPL502 already asks to move the global value
    where = "on" if setting is own else "in main.cf and inherited by"
    if postscreen_reads:
        consequence = "smtpd ignores it with a warning in the log (postscreen already reads PROXY)"
    else:
        consequence = ("smtpd ignores it, and no postscreen service sets `postscreen_upstream_proxy_protocol`, "
                       "so port 25 reads no PROXY header")
    postscreens = [s for s in config.services if s.type == "inet" and s.command == "postscreen"]
    fix = (_service_fix(config, postscreens[0], PROXY_PARAMETERS["postscreen"]) if postscreens
           else "`postscreen_upstream_proxy_protocol=haproxy` on the postscreen service")
    severity = Severity.ERROR if setting is own and not postscreen_reads else Severity.WARNING
    advice = ("remove it there and use" if setting is own else
              "set it with `-o` only on the proxied smtpd services, and for port 25 use")
    return ctx.finding(
        setting.span,
        f"`{parameter}` is set {where} the {service.name!r} pass service, which gets its connections from "
        f"postscreen; {consequence}; {advice} {fix}",
        related=[(service.span, f"service {service.name!r} is handed connections by postscreen")]
        + [(s.span, f"postscreen service {s.name!r}") for s in postscreens],
        severity=severity,
    )


# --------------------------------------------------------------------------------------------
# MPL502
# --------------------------------------------------------------------------------------------

_LOOPBACK_HOSTS = {"localhost"}


def _is_loopback(address: str | None) -> bool:
    if address is None:
        return False
    if address.lower() in _LOOPBACK_HOSTS:
        return True
    try:
        return ipaddress.ip_address(address.strip("[]")).is_loopback
    except ValueError:
        return False


def _inheriting(config: PostfixConfig, daemon: str) -> tuple[list[PostfixService], list[PostfixService]]:
    """inet services of `daemon` that take its PROXY parameter from main.cf, and the loopback ones."""
    parameter = PROXY_PARAMETERS[daemon]
    inheriting = [s for s in config.services if s.type == "inet" and s.command == daemon and parameter not in s.options]
    return inheriting, [s for s in inheriting if _is_loopback(inet_address(s.name)[0])]


def _global_leaks(config: PostfixConfig, daemon: str) -> bool:
    """True when main.cf's PROXY parameter of `daemon` reaches more than the one listener it may be for."""
    setting = config.main.get(PROXY_PARAMETERS[daemon])
    if not _written(setting) or expand(config, setting.value).strip() != "haproxy":
        return False
    inheriting, internal = _inheriting(config, daemon)
    return len(inheriting) >= 2 or bool(internal)


@rule("MPL502", "global-proxy-parameter", Severity.WARNING,
      summary="A Postfix PROXY parameter is set in main.cf, so every listener of that daemon requires PROXY",
      tags=("proxy-protocol", "postfix"), facts=("PP07",))
def global_proxy_parameter(ctx: Context):
    """## Why it matters
    `smtpd_upstream_proxy_protocol` or `postscreen_upstream_proxy_protocol` in main.cf is
    inherited by every smtpd (or postscreen) service that does not override it. Listeners that
    are not behind the proxy then wait for a PROXY header that never comes: docker-mailserver's
    Amavis re-injection listener `127.0.0.1:10025`, a webmail or internal submission port, a
    second non-proxied postscreen. Local clients time out and mail sticks in the queue.

    ## Bad
    ```
    # docker-mailserver postfix-main.cf
    smtpd_upstream_proxy_protocol = haproxy
    ```

    ## Good
    ```
    # docker-mailserver postfix-master.cf
    submission/inet/smtpd_upstream_proxy_protocol=haproxy
    submissions/inet/smtpd_upstream_proxy_protocol=haproxy
    ```

    ## Fix
    Set the parameter per service with `-o` in master.cf (docker-mailserver: one
    `service/type/parameter=value` line per proxied service in `postfix-master.cf`). The rule is
    an error when a loopback listener (a content-filter return path) inherits the value, and stays
    silent when only one listener of that daemon exists.
    """
    for config in ctx.model.postfix:
        for daemon, parameter in PROXY_PARAMETERS.items():
            setting = config.main.get(parameter)
            inheriting, internal = _inheriting(config, daemon)
            if not _global_leaks(config, daemon):
                continue
            yield _global_finding(ctx, config, setting, parameter, inheriting, internal)


def _global_finding(ctx: Context, config: PostfixConfig, setting: Setting[str], parameter: str,
                    inheriting: list[PostfixService], internal: list[PostfixService]):
    names = ", ".join(repr(s.name) for s in inheriting)
    message = f"`{parameter} = haproxy` is set globally ({setting.origin}), so services {names} all require a PROXY header"
    if internal:
        message += (f"; {', '.join(repr(s.name) for s in internal)} listens on loopback for local clients "
                    f"(a content-filter return path) that never send PROXY, so their connections time out")
    else:
        message += "; any of them that is not behind the proxy stops accepting connections"
    where = "postfix-master.cf lines such as `submission/inet/" if config.platform == DMS else "`-o` on the proxied services in master.cf, e.g. `-o "
    message += f". Remove it here and set it per proxied service with {where}{parameter}=haproxy`"
    related = [(s.span, f"service {s.name!r} inherits it") for s in (internal or inheriting)]
    return ctx.finding(setting.span, message, related=related,
                       severity=Severity.ERROR if internal else None)


# --------------------------------------------------------------------------------------------
# MPL504
# --------------------------------------------------------------------------------------------

_SERVICE_IN_TEXT = re.compile(r"^(?:postconf -M\s+)?([^/\s]+)/([a-z-]+)")


@rule("MPL504", "override-does-not-apply", Severity.ERROR,
      summary="A docker-mailserver postfix-master.cf or postconf line changes nothing",
      tags=("postfix", "docker-mailserver"), facts=("PF03", "PL01"))
def override_does_not_apply(ctx: Context):
    """## Why it matters
    docker-mailserver runs each `postfix-master.cf` line as `postconf -P`. A line naming a
    service that does not exist only makes postconf print `warning: unmatched
    service_name/type`, and the container starts without the setting: typically the PROXY
    parameter the proxy relies on. docker-mailserver 13.0 renamed the port-465 service `smtps`
    to `submissions`, so older `smtps/inet/...` lines silently stopped working. Lines that do
    not start with a lowercase letter or digit are skipped without a word.

    ## Bad
    ```
    # postfix-master.cf on docker-mailserver 13 or later
    smtps/inet/smtpd_upstream_proxy_protocol=haproxy
    ```

    ## Good
    ```
    submissions/inet/smtpd_upstream_proxy_protocol=haproxy
    ```

    ## Fix
    Name a service that exists at that point (`postconf -M` lists them; in `user-patches.sh`,
    create a copied service before setting its parameters), spelled exactly as in master.cf, in
    lowercase, with no spaces around `=`.
    """
    for config in ctx.model.postfix:
        for setting in config.unapplied:
            if setting.span is None:
                continue
            hint = _did_you_mean(config, setting.value)
            yield ctx.finding(
                setting.span,
                f"{_first_line(setting.value)!r} changes nothing: {setting.origin}{hint}",
            )


def _first_line(text: str) -> str:
    return text.split("\n", 1)[0]


def _did_you_mean(config: PostfixConfig, text: str) -> str:
    match = _SERVICE_IN_TEXT.match(text)
    if match is None:
        return ""
    name, type_ = match.groups()
    if name == "smtps" and any(s.name == "submissions" and s.type == type_ for s in config.services):
        return "; docker-mailserver 13.0 renamed `smtps` to `submissions`"
    candidates = sorted({s.name for s in config.services if s.type == type_})
    close = difflib.get_close_matches(name, candidates, n=1) or difflib.get_close_matches(name.lower(), candidates, n=1)
    return f"; did you mean `{close[0]}/{type_}`?" if close and close[0] != name else ""


# --------------------------------------------------------------------------------------------
# MPL506
# --------------------------------------------------------------------------------------------

_ANY = {"4": ipaddress.ip_address("0.0.0.0"), "6": ipaddress.ip_address("::")}


def _bind_addresses(address: str | None) -> set[str] | None:
    """Addresses a listener binds; None = every interface of both families."""
    if address is None:
        return None
    out: set[str] = set()
    for token in re.split(r"[\s,]+", address.strip()):
        token = token.strip("[]")
        if not token:
            continue
        if token == "*":
            out.add("0.0.0.0")
        elif token.lower() == "localhost":
            out |= {"127.0.0.1", "::1"}
        else:
            out.add(token.lower())
    return out or None


def _family(address: str) -> str | None:
    try:
        return str(ipaddress.ip_address(address).version)
    except ValueError:
        return None


def _overlap(first: str | None, second: str | None) -> bool:
    """True when two binds on the same port cannot both succeed (Linux: wildcard vs specific too)."""
    a, b = _bind_addresses(first), _bind_addresses(second)
    if a is None or b is None:
        return True
    for x in a:
        for y in b:
            if x == y:
                return True
            fx, fy = _family(x), _family(y)
            if fx is not None and fx == fy and str(_ANY[fx]) in (x, y):
                return True
    return False


def _machine(listener: Listener) -> str:
    """Listeners on one machine: the same compose host, else the same config instance."""
    return f"host:{listener.host}" if listener.host is not None else f"instance:{listener.instance}"


def _is_stock(ctx: Context, listener: Listener) -> bool:
    """True for a docker-mailserver stock Postfix service (the user did not add it)."""
    if listener.product is not Product.POSTFIX:
        return False
    config = next((c for c in ctx.model.postfix if c.id == listener.instance), None)
    if config is None:
        return False
    service = next((s for s in config.services if s.name == listener.service and s.type == "inet"), None)
    return service is not None and "stock" in service.origin


@rule("MPL506", "listener-port-collision", Severity.ERROR,
      summary="Two listeners on the same host want the same address and port",
      tags=("postfix", "dovecot"), facts=("PF05",))
def listener_port_collision(ctx: Context):
    """## Why it matters
    Only one socket can listen on an address and port. When two master.cf services, or a Postfix
    service and a Dovecot listener, claim the same one, the second fails to start (`fatal: bind
    0.0.0.0 port 10025: Address already in use`) and the port keeps answering with the other
    service. In docker-mailserver, port 10025 is the Amavis re-injection listener
    `127.0.0.1:10025`, which is why its tutorial puts the PROXY variant of port 25 on 12525: a
    service on all interfaces collides with one bound to a single address on Linux.

    ## Bad
    ```
    # user-patches.sh
    postconf -Mf smtp/inet | sed -e s/^smtp/10025/ >> /etc/postfix/master.cf
    ```

    ## Good
    ```
    postconf -Mf smtp/inet | sed -e s/^smtp/12525/ >> /etc/postfix/master.cf
    ```

    ## Fix
    Give the new listener a free port (docker-mailserver's conventions: 12525, 10587, 10465,
    10143, 10993, 10110, 10995, 14190) and point the proxy at it. Listeners bound to different
    specific addresses, or disabled with Dovecot's `port = 0`, do not collide.
    """
    by_port: dict[tuple[str, int], list[Listener]] = defaultdict(list)
    for listener in ctx.model.listeners:
        if listener.product in (Product.POSTFIX, Product.DOVECOT) and listener.port and _started(ctx, listener):
            by_port[(_machine(listener), listener.port)].append(listener)
    for (_, port), listeners in by_port.items():
        reported: set[int] = set()
        for index, first in enumerate(listeners):
            for second in listeners[index + 1:]:
                if id(second) in reported or not _overlap(first.address, second.address):
                    continue
                new, old = (first, second) if _is_stock(ctx, second) and not _is_stock(ctx, first) else (second, first)
                reported.add(id(new))
                yield _collision(ctx, port, new, old)


# Dovecot login services and the `protocols` entry that starts them
_DOVECOT_SERVICE_PROTOCOL = {"imap-login": "imap", "pop3-login": "pop3", "managesieve-login": "sieve",
                             "submission-login": "submission", "lmtp": "lmtp"}


def _started(ctx: Context, listener: Listener) -> bool:
    """False for a Dovecot listener whose service's protocol is not in `protocols`: it binds nothing."""
    protocol = _DOVECOT_SERVICE_PROTOCOL.get(listener.service)
    if listener.product is not Product.DOVECOT or protocol is None:
        return True
    config = next((c for c in ctx.model.dovecot if c.id == listener.instance), None)
    protocols = config.settings.get("protocols") if config is not None else None
    if protocols is None:
        return True
    return protocol in protocols.value.replace(",", " ").split()


def _where(listener: Listener) -> str:
    return listener.address or "all interfaces"


def _collision(ctx: Context, port: int, new: Listener, old: Listener):
    host = f" on {new.host!r}" if new.host else ""
    if new.product is old.product is Product.DOVECOT and new.instance == old.instance:
        outcome = f"doveconf refuses the whole configuration ('duplicate listener: {port}')"
    else:
        outcome = "only one can bind it and the other fails with 'Address already in use'"
    return ctx.finding(
        new.span,
        f"{new.describe()} ({_where(new)}) and {old.describe()} ({_where(old)}) both listen on port {port}{host}; "
        f"{outcome}. Move this one to a free port",
        related=[(old.span, f"{old.describe()} already listens here")],
    )


# --------------------------------------------------------------------------------------------
# MPL505
# --------------------------------------------------------------------------------------------


def _ipv4_only(config: PostfixConfig) -> Setting[str] | None:
    """The `inet_protocols` setting when it leaves Postfix without IPv6."""
    setting = effective_setting(config, None, "inet_protocols")
    words = {w for w in re.split(r"[\s,]+", expand(config, setting.value).lower()) if w}
    return setting if words == {"ipv4"} else None


def _listens_ipv6(entrypoint: Entrypoint) -> bool:
    """The proxy's socket takes IPv6 clients: Traefik's `:port` is dual-stack, HAProxy's `*:port` is not."""
    address = (entrypoint.address or "").strip("[]")
    if address in ("", "*"):
        return entrypoint.product is Product.TRAEFIK
    try:
        return ipaddress.ip_address(address).version == 6
    except ValueError:
        return False


def _sees_ipv6_clients(ctx: Context, entrypoint: Entrypoint) -> str | None:
    """Why the proxy sees IPv6 client addresses, or None.

    A proxy container on Docker networks without IPv6 gets IPv6 clients through Docker's port
    publishing as IPv4 connections, so it never writes an IPv6 address into PROXY.
    """
    if not _listens_ipv6(entrypoint):
        return None
    host = ctx.model.host(entrypoint.host)
    if host is None:
        return f"{entrypoint.product} listens on {_shown(entrypoint)}"
    if host.network_mode is not None and host.network_mode.value == "host":
        return f"{entrypoint.product} runs with `network_mode: host` and listens on {_shown(entrypoint)}"
    ipv6 = next((n for n in host.networks if n.ipv6), None)
    if ipv6 is not None:
        return f"{entrypoint.product} listens on {_shown(entrypoint)} and its compose network {ipv6.key!r} has IPv6"
    return None


def _shown(entrypoint: Entrypoint) -> str:
    address = entrypoint.address or ""
    return f"[{address}]:{entrypoint.port}" if ":" in address else f"{address or '*'}:{entrypoint.port}"


@rule("MPL505", "ipv4-only-behind-proxy", Severity.WARNING,
      summary="Postfix runs IPv4 only while the proxy accepts IPv6 clients and passes their addresses in PROXY",
      tags=("proxy-protocol", "postfix"), facts=("PF04",))
def ipv4_only_behind_proxy(ctx: Context):
    """## Why it matters
    Postfix refuses a PROXY header that carries an address family it does not run. With
    `inet_protocols = ipv4` (docker-mailserver: `POSTFIX_INET_PROTOCOLS=ipv4`, which its docs
    suggest behind Docker) every connection a proxy forwards for an IPv6 client fails with
    `warning: haproxy read: Postfix IPv6 support is disabled` (PROXY v2) or
    `bad or missing protocol type` (v1 `TCP6`). On port 25 that is inbound mail from IPv6-only
    senders, lost at the proxy.

    ## Bad
    ```
    # haproxy.cfg
    frontend smtp
        bind :::25 v4v6
        default_backend postfix
    backend postfix
        server mail 10.0.0.2:25 send-proxy-v2
    # main.cf
    inet_protocols = ipv4
    ```

    ## Good
    ```
    # main.cf
    inet_protocols = all
    ```

    ## Fix
    Let Postfix run both families (`inet_protocols = all`; docker-mailserver:
    `POSTFIX_INET_PROTOCOLS=all`, the default), or bind the proxy to IPv4 only. A proxy container
    on Docker networks without IPv6 is not reported: Docker hands it IPv6 clients as IPv4
    connections.
    """
    reported: set[tuple[str, int]] = set()
    for link in ctx.model.links:
        listener, server = link.listener, link.server
        if listener.product is not Product.POSTFIX or link.entrypoint is None or server.proxy_unknown:
            continue
        if not server.send_proxy.value.sends or not listener.accepts_proxy.value.sends:
            continue
        config = next((c for c in ctx.model.postfix if c.id == listener.instance), None)
        setting = _ipv4_only(config) if config is not None else None
        why = _sees_ipv6_clients(ctx, link.entrypoint) if setting is not None else None
        if why is None or (config.id, id(link.entrypoint)) in reported:
            continue
        reported.add((config.id, id(link.entrypoint)))
        yield ctx.finding(
            setting.span or config.main_span or listener.span,
            f"`inet_protocols = {setting.value.strip()}` ({setting.origin}) turns off IPv6 in Postfix, but {why}, so "
            f"IPv6 clients reach the proxy and it sends their IPv6 address in PROXY to {listener.describe()}: Postfix "
            f"drops every such connection ('haproxy read: Postfix IPv6 support is disabled'); allow IPv6 in Postfix "
            f"(inet_protocols = all) or bind the proxy to IPv4 only",
            related=[(link.entrypoint.span, "the proxy accepts IPv6 clients here"),
                     (server.send_proxy.span, "the PROXY header is sent here")],
        )
