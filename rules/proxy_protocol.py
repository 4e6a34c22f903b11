"""MPL1xx: the proxy and the mail listener must agree on the PROXY protocol header."""
from __future__ import annotations

from mailproxy_lint.api import Context, Listener, Product, ProxyHeader, Severity, Version, rule
from mailproxy_lint.rules.trust import proxy_outside_trust


def _unique_pairs(links):
    """One link per (server, listener): a route on several entrypoints is one problem."""
    seen = set()
    for lk in links:
        key = (id(lk.server), id(lk.listener))
        if key not in seen:
            seen.add(key)
            yield lk


def accept_fix(listener: Listener, dms: bool) -> str:
    """How to make a listener accept PROXY, in the words of its own config."""
    if listener.product is Product.DOVECOT:
        where = " in dovecot.cf" if dms else ""
        return (f"add `haproxy = yes` to `inet_listener {listener.name}` in `service {listener.service}`{where} "
                "and list the proxy in `haproxy_trusted_networks`")
    if listener.product is Product.POSTFIX:
        param = "postscreen_upstream_proxy_protocol" if listener.daemon == "postscreen" else "smtpd_upstream_proxy_protocol"
        if dms:
            return f"add `{listener.name}/inet/{param}=haproxy` to postfix-master.cf"
        return f"add `-o {param}=haproxy` to the {listener.name!r} service in master.cf"
    if listener.product is Product.STALWART:
        return (f"list the proxy's address in `server.listener.{listener.name}.proxy.trusted-networks` "
                "(or `server.proxy.trusted-networks`) in config.toml")
    return "enable PROXY protocol on the listener"


@rule("MPL101", "proxy-header-not-accepted", Severity.ERROR,
      summary="The proxy sends a PROXY header that the mail listener does not accept",
      tags=("proxy-protocol",), facts=("PP01", "PP03", "PP04"))
def proxy_header_not_accepted(ctx: Context):
    """## Why it matters
    A proxy that sends a PROXY protocol header writes it as the first bytes of the connection. A
    listener that does not expect it reads those bytes as protocol data: Dovecot answers the
    `PROXY TCP4 ...` line with BAD or fails the TLS handshake, postscreen counts it as pregreet
    and (with docker-mailserver's `postscreen_greet_action = enforce`) rejects the client, smtpd
    drops it as a non-SMTP command. Every connection on that path fails.

    ## Bad
    ```
    # compose labels
    traefik.tcp.services.imap.loadbalancer.proxyProtocol.version=2
    # dovecot.cf
    service imap-login {
      inet_listener imap {
        port = 143
      }
    }
    ```

    ## Good
    ```
    haproxy_trusted_networks = 172.16.42.2
    service imap-login {
      inet_listener imap {
        port = 143
        haproxy = yes
      }
    }
    ```

    ## Fix
    Make the receiving listener expect the header: Dovecot `haproxy = yes` on the
    `inet_listener` (plus `haproxy_trusted_networks`); Postfix `-o
    postscreen_upstream_proxy_protocol=haproxy` on a postscreen service or `-o
    smtpd_upstream_proxy_protocol=haproxy` on an smtpd service (docker-mailserver:
    `postfix-master.cf` lines such as `smtp/inet/postscreen_upstream_proxy_protocol=haproxy`).
    Or stop sending the header, and accept that the mail server then sees the proxy's address.
    A dedicated PROXY-only port keeps internal clients working on the standard one.
    """
    for lk in _unique_pairs(ctx.model.links):
        sent = lk.server.send_proxy
        if not sent.value.sends or lk.listener.accepts_proxy.value.sends:
            continue
        fix = accept_fix(lk.listener, lk.listener.platform == "docker-mailserver")
        yield ctx.finding(
            lk.listener.span,
            f"{lk.server.describe()} sends PROXY {sent.value}, but {lk.listener.describe()} does not "
            f"accept it ({lk.evidence}); {fix}",
            related=[(sent.span or lk.server.span, "the PROXY header is sent here")],
        )


# ---------------------------------------------------------------------------------------------

POSTFIX_V2 = Version((3, 5))  # Postfix reads PROXY v2 from 3.5 (RELEASE_NOTES-3.5)
POSTFIX_ANY = Version((2, 10))  # PROXY v1 support appeared in Postfix 2.10
DOVECOT_ANY = Version((2, 2, 19))  # haproxy = yes appeared in Dovecot 2.2.19


def unsupported_reason(sent: ProxyHeader, listener: Listener) -> str | None:
    """Why this listener's product version cannot read this header, or None when it can."""
    if listener.version is None:
        return None
    version = listener.version.value
    if listener.product is Product.POSTFIX:
        if version < POSTFIX_ANY:
            return f"Postfix {version} has no PROXY support (it arrived in 2.10)"
        if sent is ProxyHeader.V2 and version < POSTFIX_V2:
            return f"Postfix {version} reads only PROXY v1 (v2 arrived in 3.5)"
    if listener.product is Product.DOVECOT and version < DOVECOT_ANY:
        return f"Dovecot {version} has no PROXY support (it arrived in 2.2.19)"
    return None


@rule("MPL103", "proxy-version-unsupported", Severity.ERROR,
      summary="The PROXY version sent is one the receiving server's version cannot read",
      tags=("proxy-protocol", "versions"), facts=("VC01", "VC02"))
def proxy_version_unsupported(ctx: Context):
    """## Why it matters
    Postfix understands PROXY v1 since 2.10 but the binary v2 header only since 3.5; Dovecot
    accepts either since 2.2.19. Traefik sends v2 unless told otherwise, and HAProxy's
    `send-proxy-v2*` options send v2. A Postfix 3.4 (docker-mailserver up to 10.3, Debian 10)
    behind such a hop logs `warning: haproxy read: unexpected protocol header` and drops every
    connection.

    ## Bad
    ```
    # compose: image mailserver/docker-mailserver:10.3.0 (Postfix 3.4)
    traefik.tcp.services.smtp.loadbalancer.proxyProtocol.version=2
    ```

    ## Good
    ```
    traefik.tcp.services.smtp.loadbalancer.proxyProtocol.version=1
    ```

    ## Fix
    Send the version the receiver reads (`proxyProtocol.version=1`, HAProxy `send-proxy`), or
    upgrade the mail server (docker-mailserver 10.4 and later ship Postfix 3.5 or newer). The
    message names where the version was learnt (an image tag, `compatibility_level`, the
    `versions` table); when no version is known the rule stays silent.
    """
    for lk in _unique_pairs(ctx.model.links):
        sent = lk.server.send_proxy
        if not sent.value.sends or not lk.listener.accepts_proxy.value.sends:
            continue
        reason = unsupported_reason(sent.value, lk.listener)
        if reason is None:
            continue
        version = lk.listener.version
        fix = "send PROXY v1 instead" if lk.listener.product is Product.POSTFIX and lk.listener.version.value >= POSTFIX_ANY \
            else "upgrade the mail server or stop sending PROXY"
        yield ctx.finding(
            sent.span or lk.server.span,
            f"{lk.server.describe()} sends PROXY {sent.value} to {lk.listener.describe()}, but {reason}; "
            f"version from {version.describe_origin()}; {fix}",
            related=[(lk.listener.span, "the receiving listener"), (version.span, "where the version comes from")],
        )


# ---------------------------------------------------------------------------------------------


def send_fix(server) -> str:
    """How to make a proxy server line send PROXY, in the words of its own config."""
    if server.product is Product.HAPROXY:
        return f"add `send-proxy-v2` to server {server.name!r} in backend {server.upstream!r}"
    if server.transport is not None:
        return f"add `proxyProtocol: {{version: 2}}` to serversTransport {server.transport.value!r}"
    return f"enable `proxyProtocol` (version 2) on Traefik service {server.upstream!r}"


def _routed(links):
    """Links that carry traffic: a route uses the upstream. Servers whose PROXY header is not
    decided by the scanned files (a serversTransport defined elsewhere) are left out."""
    return [lk for lk in links if lk.route is not None and not lk.server.proxy_unknown]


@rule("MPL102", "proxy-header-not-sent", Severity.ERROR,
      summary="A mail listener requires a PROXY header that no route reaching it sends",
      tags=("proxy-protocol",), facts=("PP02", "PP05", "TK05"))
def proxy_header_not_sent(ctx: Context):
    """## Why it matters
    A listener with `haproxy = yes` (Dovecot) or `*_upstream_proxy_protocol = haproxy` (Postfix)
    requires the PROXY header on every connection (Stalwart: on every connection from its
    trusted networks, `server.proxy.trusted-networks`). When the proxy does not send it, Dovecot
    logs `haproxy: Client timed out` (or `Failed to read valid HAproxy data` once the client
    sends its ClientHello) and closes; postscreen logs `warning: haproxy read: time limit
    exceeded` and answers `421 4.3.2 No system resources`; smtpd logs `warning: haproxy read:
    timeout error`. No client gets a session. With Traefik 3.5.2 and later, naming a
    `serversTransport` on a service replaces the load balancer's `proxyProtocol` with the
    transport's, so a transport without `proxyProtocol` silently stops the header.

    ## Bad
    ```
    # haproxy.cfg
    backend dovecot_imap
        server dovecot 10.0.0.2:143
    # dovecot.conf
    service imap-login {
      inet_listener imap {
        port = 143
        haproxy = yes
      }
    }
    ```

    ## Good
    ```
    backend dovecot_imap
        server dovecot 10.0.0.2:143 send-proxy-v2
    ```

    ## Fix
    Send the header on the route: HAProxy `send-proxy-v2` on the `server` line, Traefik
    `proxyProtocol` on the service (or, from v3.5.2, `proxyProtocol` in the `serversTransport` the
    service names). Or remove the PROXY requirement from the listener, or point the route at a
    separate PROXY-only port and keep the standard one for direct clients.
    """
    for listener in ctx.model.listeners:
        if not listener.accepts_proxy.value.sends:
            continue
        links = _routed(ctx.model.paths.links_of(listener))
        if listener.product is Product.STALWART:
            # Stalwart expects PROXY only from its trusted networks; a proxy known to be outside
            # them is served as a direct client
            links = [lk for lk in links if not proxy_outside_trust(ctx, lk)]
        if not links or any(lk.server.send_proxy.value.sends for lk in links):
            continue
        for lk in _unique_pairs(links):
            sent = lk.server.send_proxy
            why = f" ({sent.origin})" if sent.origin else ""
            yield ctx.finding(
                sent.span or lk.server.span,
                f"{lk.server.describe()} sends no PROXY header{why}, but {lk.listener.describe()} requires one "
                f"({lk.listener.accepts_proxy.describe_origin()}; {lk.evidence}), so every connection is "
                f"dropped after the PROXY read times out; {send_fix(lk.server)}",
                related=[(lk.listener.accepts_proxy.span or lk.listener.span, "the listener requires PROXY here"),
                         (lk.server.span, "the server the route dials")]
                + ([(lk.server.transport.span, "the serversTransport that decides the PROXY header")]
                   if lk.server.transport else []),
            )


@rule("MPL108", "client-ip-lost", Severity.WARNING,
      summary="A TCP route reaches a mail listener without PROXY, so the mail server sees the proxy's address",
      tags=("proxy-protocol", "security"), facts=("PP01", "TR06", "TR10"))
def client_ip_lost(ctx: Context):
    """## Why it matters
    A TCP proxy opens its own connection to the mail server. Without a PROXY header (or
    XCLIENT) the mail server sees every client as the proxy's address: postscreen, DNSBL
    lookups, SPF, rate limits, Dovecot auth penalties and fail2ban all act on that one address.
    fail2ban then bans the proxy and locks out everybody, and if the proxy's network is in
    Postfix `mynetworks` (docker-mailserver `PERMIT_DOCKER=network`), every Internet client is
    trusted to relay.

    ## Bad
    ```
    # compose labels on the mail container
    traefik.tcp.routers.smtp.rule=HostSNI(`*`)
    traefik.tcp.services.smtp.loadbalancer.server.port=25
    ```

    ## Good
    ```
    traefik.tcp.services.smtp.loadbalancer.server.port=12525
    traefik.tcp.services.smtp.loadbalancer.proxyProtocol.version=2
    # postfix-master.cf: a PROXY-only postscreen on 12525
    ```

    ## Fix
    Send PROXY on the route (HAProxy `send-proxy-v2`, Traefik `proxyProtocol`) and make the
    listener accept it, ideally on a separate PROXY-only port so internal clients keep using the
    standard one. When the proxy cannot send PROXY, keep the proxy's address out of
    `mynetworks` and out of fail2ban's reach.
    """
    for lk in _unique_pairs(_routed(ctx.model.links)):
        if lk.route.layer.value != "tcp" or lk.server.send_proxy.value.sends or lk.listener.accepts_proxy.value.sends:
            continue
        sent = lk.server.send_proxy
        yield ctx.finding(
            sent.span or lk.server.span,
            f"{lk.server.describe()} reaches {lk.listener.describe()} without a PROXY header ({lk.evidence}), so "
            f"the mail server sees the proxy's address for every client: postscreen, DNSBL, SPF, rate limits and "
            f"fail2ban act on the proxy; {send_fix(lk.server)} and {accept_fix(lk.listener, lk.listener.platform == 'docker-mailserver')}",
            related=[(lk.listener.span, "the mail listener"), (lk.route.span, f"the route {lk.route.name!r}")],
        )
