"""MPL1xx: the proxy and the mail listener must agree on the PROXY protocol header."""
from __future__ import annotations

from mailproxy_lint.api import Context, Listener, Product, ProxyHeader, Severity, Version, rule


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
