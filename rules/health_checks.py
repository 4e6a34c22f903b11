"""MPL105-MPL106: proxy health checks must speak what the mail listener expects (PROXY header,
TLS, protocol greeting), or the proxy marks working servers down."""
from __future__ import annotations

from dataclasses import dataclass

from mailproxy_lint.api import (
    Context,
    Listener,
    MailProtocol,
    Product,
    Severity,
    Setting,
    TlsMode,
    Upstream,
    UpstreamServer,
    Version,
    rule,
)

# What usually answers on a port (facts-rules "Port / listener classification", with
# docker-mailserver's PROXY-only variants); used only when the mail side is not scanned.
PORT_PROTOCOLS: dict[int, MailProtocol] = {
    25: MailProtocol.SMTP, 2525: MailProtocol.SMTP, 12525: MailProtocol.SMTP,
    587: MailProtocol.SUBMISSION, 10587: MailProtocol.SUBMISSION,
    465: MailProtocol.SUBMISSIONS, 10465: MailProtocol.SUBMISSIONS,
    143: MailProtocol.IMAP, 10143: MailProtocol.IMAP, 993: MailProtocol.IMAPS, 10993: MailProtocol.IMAPS,
    110: MailProtocol.POP3, 10110: MailProtocol.POP3, 995: MailProtocol.POP3S, 10995: MailProtocol.POP3S,
    4190: MailProtocol.SIEVE, 14190: MailProtocol.SIEVE,
}
SMTP_FAMILY = frozenset({MailProtocol.SMTP, MailProtocol.SUBMISSION, MailProtocol.SUBMISSIONS, MailProtocol.LMTP})
IMAP_FAMILY = frozenset({MailProtocol.IMAP, MailProtocol.IMAPS})
POP3_FAMILY = frozenset({MailProtocol.POP3, MailProtocol.POP3S})


@dataclass(frozen=True, slots=True)
class Target:
    """What a health check reaches: the protocol and TLS mode there, and how that was learnt."""

    port: int
    protocol: MailProtocol | None
    implicit_tls: bool
    evidence: str  # "Dovecot listener imap-login/imaps on port 993", "port 993 (usually IMAPS)"
    listeners: tuple[Listener, ...] = ()


def check_port(server: UpstreamServer) -> int | None:
    """The port health checks go to: the `port` override, else the server's own port."""
    return server.check_port.value if server.check_port is not None else server.port


def target_of(ctx: Context, server: UpstreamServer, port: int | None, guess: bool = True) -> Target | None:
    """The listener(s) on `port` of the host this server reaches, else (with `guess`) the port's
    usual protocol; None when neither is known."""
    if port is None:
        return None
    listeners = listeners_at(ctx, server, port)
    if listeners:
        first = listeners[0]
        implicit = first.tls.value is TlsMode.IMPLICIT
        return Target(port, first.protocol, implicit, first.describe(), tuple(listeners))
    if guess and port in PORT_PROTOCOLS:
        protocol = PORT_PROTOCOLS[port]
        return Target(port, protocol, protocol.default_tls is TlsMode.IMPLICIT,
                      f"port {port}, usually {protocol.value.upper()}")
    return None


def listeners_at(ctx: Context, server: UpstreamServer, port: int) -> list[Listener]:
    """Listeners on `port` of the host(s) the server is linked to (its own port: the links)."""
    linked = [lk.listener for lk in ctx.model.paths.links_of(server)]
    if port == server.port or not linked:
        return [lst for lst in linked if lst.port == port]
    hosts = {lst.host for lst in linked}
    return [lst for lst in ctx.model.listeners if lst.port == port and lst.host in hosts]


def _haproxy_upstreams(ctx: Context):
    return [u for u in ctx.model.upstreams if u.product is Product.HAPROXY]


# --------------------------------------------------------------------------------------------
# MPL105
# --------------------------------------------------------------------------------------------


def _check_overrides(server: UpstreamServer, upstream: Upstream) -> list[Setting]:
    """The `port`/`addr` (or explicit `tcp-check connect port`) that send checks elsewhere
    without the PROXY header."""
    found = [s for s in (server.check_port, server.check_addr) if s is not None]
    for step in upstream.tcp_checks:
        words = step.value
        if words[:1] == ("connect",) and ("port" in words or "addr" in words) and "send-proxy" not in words:
            found.append(step)
    return found


@rule("MPL105", "health-check-proxy-mismatch", Severity.WARNING,
      summary="Health checks sent to a PROXY-only listener without the PROXY header",
      tags=("proxy-protocol", "health-checks", "haproxy"), facts=("HC01", "HC05"))
def health_check_proxy_mismatch(ctx: Context):
    """## Why it matters
    HAProxy adds the PROXY header to health checks only when the server has `send-proxy*` and
    no `port` or `addr` sends the checks elsewhere. With such an override the check connects
    without the header, and a listener that requires one (Dovecot `haproxy = yes`, Postfix
    `*_upstream_proxy_protocol = haproxy`) waits for it and drops the connection: every check
    leaves `haproxy: Client timed out` or `haproxy read: ...` in the mail log, and protocol
    checks (`option smtpchk`, `tcp-check expect`) fail, so HAProxy marks the server down.
    Traefik's TCP health checks (v3.6 and later) never carry the header, whatever the service's
    `proxyProtocol` says, so against a PROXY-only listener they always fail and Traefik takes
    the server out of rotation (the final effect is believed, not confirmed live).

    ## Bad
    ```
    backend dovecot_imap
        server d1 10.0.0.1:10143 send-proxy-v2 check port 10143
    ```

    ## Good
    ```
    backend dovecot_imap
        server d1 10.0.0.1:10143 send-proxy-v2 check port 10143 check-send-proxy
    ```

    ## Fix
    Add `check-send-proxy` to the server line (or drop the `port`/`addr` override, so checks
    inherit the server's PROXY setting); with `tcp-check connect port ...` add `send-proxy` to
    the connect rule. For Traefik, point `healthCheck.port` at a listener that takes plain
    connections, or drop the health check. When the check port is a different listener, the
    rule compares with that listener; it stays silent when it cannot tell whether that listener
    wants PROXY.
    """
    for upstream in _haproxy_upstreams(ctx):
        for server in upstream.servers:
            if not server.check.value or not server.send_proxy.value.sends or server.check_send_proxy.value:
                continue
            overrides = _check_overrides(server, upstream)
            if not overrides:
                continue
            finding = _proxy_check_finding(ctx, upstream, server, overrides[0])
            if finding is not None:
                yield finding
    yield from _traefik_health_checks(ctx)


TRAEFIK_TCP_HEALTH_CHECKS = Version((3, 6))


def _traefik_health_checks(ctx: Context):
    """Traefik's TCP health checks (v3.6+) dial without a client connection, and its dialer writes
    the PROXY header only for one (HC05): a PROXY-only listener never sees a header from them."""
    version = ctx.model.version_of(Product.TRAEFIK, None)
    if version is not None and version.value < TRAEFIK_TCP_HEALTH_CHECKS:
        return  # no TCP health checks before v3.6
    for upstream in ctx.model.upstreams:
        check = upstream.health_check
        if upstream.product is not Product.TRAEFIK or check is None:
            continue
        for server in upstream.servers:
            port = int(check.value) if check.value.isdigit() else server.port
            if port is None:
                continue
            requiring = [lst for lst in listeners_at(ctx, server, port) if lst.accepts_proxy.value.sends]
            if not requiring:
                continue  # the checks reach a listener that takes plain connections, or none we know
            listener = requiring[0]
            yield ctx.finding(
                check.span or upstream.span,
                f"Traefik's TCP health checks of service {upstream.name!r} connect to {listener.describe()}, which "
                f"requires a PROXY header ({listener.accepts_proxy.describe_origin()}), but Traefik sends none on "
                f"health checks: every check times out ('haproxy: Client timed out' / 'haproxy read' in the mail "
                f"log) and Traefik takes the server out of the service; point `healthCheck.port` at a listener "
                f"without PROXY, or drop the health check",
                related=[(listener.accepts_proxy.span or listener.span, "the listener requires PROXY here")],
            )
            break


def _proxy_check_finding(ctx: Context, upstream: Upstream, server: UpstreamServer, override: Setting):
    port = check_port(server)
    listeners = listeners_at(ctx, server, port) if port is not None else []
    if listeners:
        requiring = [lst for lst in listeners if lst.accepts_proxy.value.sends]
        if not requiring:
            return None  # the checks go to a listener that takes plain connections
        target = f"{requiring[0].describe()}, which requires PROXY ({requiring[0].accepts_proxy.describe_origin()})"
        related = [(requiring[0].accepts_proxy.span or requiring[0].span, "the listener requires PROXY here")]
    elif port == server.port and port is not None:
        target = (f"port {port}, the server's own port, which takes PROXY since the server sends it "
                  f"({server.send_proxy.describe_origin()})")
        related = []
    else:
        return None  # a different port nobody describes: it may well take plain connections
    protocol_check = upstream.health_check is not None and upstream.health_check.value != "ssl-hello-chk"
    effect = ("the protocol check fails and HAProxy marks the server down" if protocol_check else
              "the connect check still passes but every check leaves a PROXY timeout in the mail log")
    return ctx.finding(
        override.span or server.span,
        f"health checks of {server.describe()} go to {target}, but '{override.origin}' sends them without the "
        f"PROXY header (HAProxy adds it to checks only without a port/addr override): {effect}; add "
        f"`check-send-proxy` to the server line",
        related=related + [(server.send_proxy.span, "the server sends PROXY here")],
    )


# --------------------------------------------------------------------------------------------
# MPL106
# --------------------------------------------------------------------------------------------

# The first words a greeting starts with, for `tcp-check expect string|rstring` patterns
_GREETINGS = (("* OK", IMAP_FAMILY, "an IMAP greeting"), ("+OK", POP3_FAMILY, "a POP3 greeting"),
              ("220", SMTP_FAMILY, "an SMTP greeting"))


@dataclass(frozen=True, slots=True)
class _Mismatch:
    span: object
    server: UpstreamServer
    message: str
    verified: bool  # confirmed live (facts HC03 pattern 2): may be raised to error


@rule("MPL106", "health-check-tls-mismatch", Severity.WARNING,
      summary="A health check that does not match the backend's TLS mode or protocol marks servers down",
      tags=("health-checks", "tls", "haproxy"), facts=("HC03", "HC04"))
def health_check_tls_mismatch(ctx: Context):
    """## Why it matters
    A health check that cannot succeed marks a working server down, and HAProxy stops sending
    it traffic. `option ssl-hello-chk` sends a hand-made SSLv3 ClientHello and passes on any TLS
    reply: on a STARTTLS or plaintext port the server answers with its greeting instead, and
    combined with `ssl` on the server line (whose checks then run inside TLS, as in the example
    of Dovecot's HAProxy page) the hello is sent inside the TLS session: HAProxy logs
    `Layer6 invalid response` and Dovecot `Too many invalid commands`. `option smtpchk` wants a
    `2xx` SMTP reply, and a `tcp-check expect` greeting must be the one the port sends, in
    plaintext.

    ## Bad
    ```
    backend dovecot_imaps
        option ssl-hello-chk
        server d1 10.0.0.1:993 check ssl verify required ca-file /etc/haproxy/ca.pem send-proxy-v2-ssl
    ```

    ## Good
    ```
    backend dovecot_imaps
        server d1 10.0.0.1:993 check ssl verify required ca-file /etc/haproxy/ca.pem send-proxy-v2-ssl
    ```

    ## Fix
    Use a check that fits the port: a plain `check` (TCP connect, or a TLS handshake with
    `check-ssl`/`ssl`) on implicit-TLS ports, `option smtpchk` only on SMTP ports that greet in
    plaintext (or with `check-ssl` on 465), and a `tcp-check expect` pattern matching the port's
    greeting (`* OK` IMAP, `+OK` POP3, `220` SMTP). Drop `option ssl-hello-chk`. The finding is
    an error when the check is known to fail on every checked server of the backend (the
    `ssl-hello-chk` + TLS check case, confirmed live); the other cases follow from the check's
    rules and are warnings.
    """
    for upstream in _haproxy_upstreams(ctx):
        checked = [s for s in upstream.servers if s.check.value]
        if not checked:
            continue
        mismatches = [m for s in checked for m in _mismatches(ctx, upstream, s)]
        by_span: dict[object, list[_Mismatch]] = {}
        for m in mismatches:
            by_span.setdefault(m.span, []).append(m)
        for span, found in by_span.items():
            broken = {id(m.server) for m in found}
            all_down = all(m.verified for m in found) and broken == {id(s) for s in checked}
            names = ", ".join(dict.fromkeys(repr(m.server.name) for m in found))
            outcome = ("no server of the backend stays up: the service is down" if all_down
                       else f"server{'s' if len(broken) > 1 else ''} {names} will be marked down")
            yield ctx.finding(
                span, f"{found[0].message}; {outcome}",
                related=[(m.server.span, f"server {m.server.name!r} is checked this way") for m in found],
                severity=Severity.ERROR if all_down else Severity.WARNING,
            )


def _mismatches(ctx: Context, upstream: Upstream, server: UpstreamServer):
    kind = upstream.health_check.value if upstream.health_check is not None else None
    target = target_of(ctx, server, check_port(server))
    if kind == "ssl-hello-chk":
        yield from _ssl_hello(upstream, server, target)
    elif kind == "smtpchk":
        yield from _smtpchk(upstream, server, target)
    if kind == "tcp-check" or (kind is None and upstream.tcp_checks):
        yield from _tcp_check_expect(upstream, server, target)


def _ssl_hello(upstream: Upstream, server: UpstreamServer, target: Target | None):
    check = upstream.health_check
    if server.check_tls.value:
        yield _Mismatch(check.span, server, (
            f"`option ssl-hello-chk` sends its SSLv3 hello inside the TLS session of the checks of server "
            f"{server.name!r} ({server.check_tls.origin}), so the reply is never a TLS record (HAProxy: Layer6 "
            "invalid response); remove `option ssl-hello-chk` and keep the TLS connect check"),
            verified=True)
    elif target is not None and target.protocol is not None and not target.implicit_tls:
        yield _Mismatch(check.span, server, (
            f"`option ssl-hello-chk` expects a TLS reply, but server {server.name!r} is "
            f"checked on {target.evidence}, which answers in plaintext with its greeting; use a plain `check` or a "
            "`tcp-check expect` of the greeting"), verified=False)


def _smtpchk(upstream: Upstream, server: UpstreamServer, target: Target | None):
    check = upstream.health_check
    if target is None or target.protocol is None:
        return
    if target.protocol not in SMTP_FAMILY:
        yield _Mismatch(check.span, server, (
            f"`option smtpchk` waits for a 2xx SMTP reply, but server {server.name!r} is "
            f"checked on {target.evidence}, which is not SMTP; use a plain `check` or a matching `tcp-check`"),
            verified=False)
    elif target.implicit_tls and not server.check_tls.value:
        yield _Mismatch(check.span, server, (
            f"`option smtpchk` talks plaintext SMTP, but server {server.name!r} is "
            f"checked on {target.evidence}, where TLS comes first; add `check-ssl` or use a plain `check`"),
            verified=False)


def _tcp_check_expect(upstream: Upstream, server: UpstreamServer, target: Target | None):
    if target is None or target.protocol is None:
        return
    connect_tls = server.check_tls.value
    for step in upstream.tcp_checks:
        words = step.value
        if words[:1] == ("connect",):
            connect_tls = connect_tls or "ssl" in words
            continue
        greeting = _expected_greeting(words)
        if greeting is None:
            continue
        family, what = greeting
        if target.protocol not in family:
            problem = f"{target.evidence} does not send {what}"
        elif target.implicit_tls and not connect_tls:
            problem = f"{target.evidence} starts with TLS, and the check does not speak it"
        else:
            continue
        yield _Mismatch(step.span, server, (
            f"'{step.origin}' waits for {what}, but server {server.name!r} is checked on port {target.port}: {problem}; "
            "match the port's greeting, or check TLS ports with `check-ssl`"), verified=False)
        return


def _expected_greeting(words: tuple[str, ...]):
    """(protocol family, description) of the greeting an `expect string|rstring` waits for."""
    if words[:1] != ("expect",) or "!" in words:
        return None
    for match in ("string", "rstring"):
        if match in words and words.index(match) + 1 < len(words):
            pattern = words[words.index(match) + 1].lstrip("^").replace("\\*", "*").replace("\\+", "+")
            for prefix, family, what in _GREETINGS:
                if pattern.startswith(prefix):
                    return family, what
    return None
