"""MPL3xx: where TLS is done on the path (proxy or mail server) must fit the protocol."""
from __future__ import annotations

from mailproxy_lint.api import Context, Entrypoint, Product, ProxyTls, Route, Severity, TlsMode, rule

# Ports whose protocol starts with a server greeting; TLS there is STARTTLS, done by the server.
SERVER_FIRST_PORTS = {25: "SMTP", 587: "submission", 143: "IMAP", 110: "POP3", 4190: "ManageSieve"}


def server_first_reason(ctx: Context, ep: Entrypoint) -> str | None:
    """Why clients of this entrypoint wait for the server to speak first, or None."""
    if ep.port in SERVER_FIRST_PORTS:
        return f"port {ep.port} is {SERVER_FIRST_PORTS[ep.port]}, where the server speaks first"
    for lk in ctx.model.paths.links_of(ep):
        if lk.route is None or lk.route.tls.value is not ProxyTls.NONE:
            continue
        proto = lk.listener.protocol
        if proto is not None and proto.server_speaks_first and lk.listener.tls.value is not TlsMode.IMPLICIT:
            return f"it is routed to {lk.listener.describe()}, where the server speaks first"
    return None


@rule("MPL301", "tls-before-starttls", Severity.ERROR,
      summary="The proxy terminates, requires or SNI-routes TLS on a port where the server speaks first",
      tags=("tls",), facts=("TL01", "TL06", "TK02", "HP02"))
def tls_before_starttls(ctx: Context):
    """## Why it matters
    On SMTP (25), submission (587), IMAP (143), POP3 (110) and ManageSieve (4190) the client
    connects in plaintext and waits for the server's greeting; TLS starts later with STARTTLS,
    between client and mail server. A proxy that expects TLS on such a port waits for a
    ClientHello that never comes, while the client waits for a greeting: the connection hangs
    until a timeout (Traefik's `readTimeout`, 60 s). Traefik cannot do STARTTLS for mail, and a
    single TLS router on the entrypoint, TCP or HTTP, even one that lands there only because it
    names no entrypoints, switches the whole entrypoint to waiting for client bytes.

    ## Bad
    ```
    frontend smtp
        bind :587 ssl crt /etc/haproxy/certs/mail.pem
        default_backend postfix_submission
    ```

    ## Good
    ```
    frontend smtp
        bind :587
        default_backend postfix_submission
    ```

    ## Fix
    Pass server-first ports through as plain TCP (Traefik: a non-TLS router with
    ``HostSNI(`*`)``; HAProxy: a `bind` without `ssl`) and let the mail server offer STARTTLS.
    Terminate TLS at the proxy only on implicit-TLS ports (465, 993, 995). Give every Traefik HTTP
    or TLS router explicit `entryPoints` so it does not land on the mail entrypoints.
    """
    findings: dict[int, tuple[Route, list[tuple[Entrypoint, str]]]] = {}
    for ep in ctx.model.entrypoints:
        reason = server_first_reason(ctx, ep)
        if reason is None:
            continue
        if ep.tls.value:
            # HAProxy `bind ... ssl`: the bind is the line to change; its routes inherit it
            yield ctx.finding(
                ep.tls.span or ep.span,
                f"{ep.product} {ep.name!r} terminates TLS on a STARTTLS port: {reason}, so the client never "
                f"sends the ClientHello the proxy waits for; remove `ssl` from this bind and let the mail "
                f"server do STARTTLS",
                related=[(ep.span, "the entrypoint")],
            )
            continue
        for route in ctx.model.paths.routes_on(ep):
            if route.tls.value is not ProxyTls.NONE or (route.sni is not None and route.sni.value not in ("*", "")):
                findings.setdefault(id(route), (route, []))[1].append((ep, reason))
    for route, hits in findings.values():
        yield _route_finding(ctx, route, hits)


def _route_finding(ctx: Context, route: Route, hits: list[tuple[Entrypoint, str]]):
    names = ", ".join(repr(ep.name) for ep, _ in hits)
    reasons = "; ".join(reason for _, reason in hits)
    plural = "s" if len(hits) > 1 else ""
    landing = (f"names no entrypoints, so it lands on every default entrypoint, including {names}"
               if route.entrypoints_defaulted else f"is on entrypoint{plural} {names}")
    if route.tls.value is ProxyTls.TERMINATE:
        what, span = "terminates TLS", route.tls.span
    elif route.tls.value is ProxyTls.PASSTHROUGH:
        what, span = "passes TLS through (it must read a ClientHello first)", route.tls.span
    else:
        what, span = f"routes by SNI ({route.sni.value}), which needs a TLS ClientHello", route.sni.span
    fix = ("give it explicit entrypoints that are not mail ports" if route.entrypoints_defaulted
           else "use a non-TLS route with HostSNI(`*`) and let the mail server do STARTTLS")
    return ctx.finding(
        span or route.span,
        f"{route.describe()} {what} and {landing}: {reasons}, so the client waits for a greeting while "
        f"the proxy waits for a ClientHello, and the connection hangs; {fix}",
        related=[(ep.span, f"entrypoint {ep.name!r}") for ep, _ in hits],
    )


@rule("MPL303", "hostsni-without-tls", Severity.ERROR,
      summary="A Traefik TCP router matches HostSNI with a domain but has no TLS, so Traefik disables it",
      tags=("tls", "traefik"), facts=("TK01",))
def hostsni_without_tls(ctx: Context):
    """## Why it matters
    The server name a `HostSNI` matcher compares exists only in a TLS ClientHello. A plaintext
    connection has none, so Traefik refuses a non-TLS TCP router whose rule names a domain:
    it logs `invalid rule: "HostSNI(`mail.example.com`)" , has HostSNI matcher, but no TLS on
    router` and the router does not exist. Every connection to that entrypoint then falls to
    another router, or to nothing. Only ``HostSNI(`*`)`` is allowed without TLS.

    ## Bad
    ```
    traefik.tcp.routers.smtp.rule=HostSNI(`mail.example.com`)
    traefik.tcp.routers.smtp.entrypoints=smtp
    ```

    ## Good
    ```
    traefik.tcp.routers.smtp.rule=HostSNI(`*`)
    traefik.tcp.routers.smtp.entrypoints=smtp
    ```

    ## Fix
    On plaintext and STARTTLS ports (25, 587, 143, 110, 4190) use ``HostSNI(`*`)``: Traefik cannot
    see a server name there, and cannot do STARTTLS. On implicit-TLS ports (465, 993, 995) either
    use ``HostSNI(`*`)`` or add TLS to the router (`tls.passthrough=true` to let the mail server
    do the handshake).
    """
    for route in ctx.model.routes:
        if route.product is not Product.TRAEFIK or route.layer.value != "tcp" or route.sni is None:
            continue
        if route.sni.value in ("*", "") or route.tls.value is not ProxyTls.NONE:
            continue
        yield ctx.finding(
            route.sni.span or route.span,
            f"{route.describe()} matches HostSNI({route.sni.value}) but has no TLS: plaintext connections carry "
            f"no server name, so Traefik disables the router ('has HostSNI matcher, but no TLS on router'); use "
            f"HostSNI(`*`), or add TLS (tls.passthrough=true) if the port is implicit TLS",
            related=[(route.layer.span, "the router")],
        )
