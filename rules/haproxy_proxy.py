"""HAProxy PROXY-header details: when the header leaves (MPL107), what it carries (MPL307) and
which servers inherit it from `default-server` (MPL605)."""
from __future__ import annotations

from mailproxy_lint.api import Context, Product, ProxyHeader, ProxyTls, Severity, TlsMode, Version, rule
from mailproxy_lint.data import haproxy_keywords as kw
from mailproxy_lint.rules.health_checks import PORT_PROTOCOLS


def _server_first(ctx: Context, route) -> str | None:
    """Why clients of this route wait for the server to speak first, or None."""
    for lk in ctx.model.paths.links_of(route):
        proto = lk.listener.protocol
        if proto is not None:
            if proto.server_speaks_first and lk.listener.tls.value is not TlsMode.IMPLICIT:
                return f"{lk.listener.describe()} speaks first"
            return None
    ports = [ep.port for ep in ctx.model.paths.entrypoints_of(route)]
    upstream = ctx.model.paths.upstream_of(route)
    ports += [s.port for s in upstream.servers] if upstream is not None else []
    for port in ports:
        proto = PORT_PROTOCOLS.get(port) if port is not None else None
        if proto is not None and proto.server_speaks_first:
            return f"port {port} is {proto.value.upper()}, where the server speaks first"
    return None


@rule("MPL107", "proxy-header-late", Severity.NOTE,
      summary="The proxy connects to the server, and sends PROXY, only after the client speaks, on a server-first port",
      tags=("proxy-protocol", "haproxy"), facts=("PP13",))
def proxy_header_late(ctx: Context):
    """## Why it matters
    With `tcp-request inspect-delay` and a `tcp-request content` rule that reads the request
    (`req.len`, `req.payload`, `WAIT_END`, ...), HAProxy holds the connection until the client
    has sent data or the delay has passed, and only then connects to the server and writes the
    PROXY header. On SMTP, submission, IMAP, POP3 and ManageSieve the client sends nothing before
    the server's greeting, so every session starts only when the inspect delay ends, and clients
    with a shorter greeting timeout give up. The same stall was reported for proxies that send
    the PROXY header only with the client's first bytes (caddy-l4 #212).

    ## Bad
    ```
    frontend smtp
        bind :25
        tcp-request inspect-delay 5s
        tcp-request content accept if { req.len gt 0 }
        default_backend postfix
    ```

    ## Good
    ```
    frontend smtp
        bind :25
        tcp-request connection accept if { src -f /etc/haproxy/allowed.lst }
        default_backend postfix
    ```

    ## Fix
    Do not inspect content on server-first ports: decide with `tcp-request connection` rules
    (source address, port) that need no client data. A note, because the delay sets how long the
    stall lasts and some clients wait that long; rules that read a TLS ClientHello are reported
    by `tls-before-starttls` instead.
    """
    for route in ctx.model.routes:
        wait = route.waits_for_client
        if route.product is not Product.HAPROXY or wait is None or route.tls.value is ProxyTls.PASSTHROUGH:
            continue
        upstream = ctx.model.paths.upstream_of(route)
        senders = [s for s in upstream.servers if s.send_proxy.value.sends] if upstream is not None else []
        reason = _server_first(ctx, route)
        if not senders or reason is None:
            continue
        yield ctx.finding(
            wait.span or route.span,
            f"{route.describe()}: {wait.origin}, so HAProxy connects to the server and sends the PROXY header "
            f"only after the client speaks; {reason}, so each session stalls until the inspect delay ends; use "
            "`tcp-request connection` rules on this port",
            related=[(senders[0].send_proxy.span, "the PROXY header is sent here")],
        )


# --------------------------------------------------------------------------------------------


@rule("MPL307", "tls-facts-not-forwarded", Severity.WARNING,
      summary="HAProxy terminates TLS but its PROXY header does not tell Dovecot the client used TLS",
      tags=("tls", "proxy-protocol", "haproxy"), facts=("TL05",))
def tls_facts_not_forwarded(ctx: Context):
    """## Why it matters
    When HAProxy terminates the client's TLS and forwards plaintext, Dovecot learns that the
    client used TLS only from the SSL field of a PROXY v2 header, which `send-proxy-v2-ssl`
    (or `proxy-v2-options ssl`) adds; `send-proxy-v2-ssl-cn` also passes the client
    certificate's CN for `cert_username`. With plain `send-proxy` or `send-proxy-v2`, Dovecot
    treats the session as cleartext from a remote address: with the default
    `disable_plaintext_auth = yes` (2.4: `auth_allow_cleartext = no`) logins are refused, or
    Dovecot offers STARTTLS on a session that is already encrypted.

    ## Bad
    ```
    frontend imaps
        bind :993 ssl crt /etc/haproxy/certs/mail.pem
        default_backend dovecot
    backend dovecot
        server d1 10.0.0.1:143 send-proxy-v2
    ```

    ## Good
    ```
    backend dovecot
        server d1 10.0.0.1:143 send-proxy-v2-ssl
    ```

    ## Fix
    Use `send-proxy-v2-ssl` (or `send-proxy-v2-ssl-cn` with client certificates) on servers
    behind a TLS-terminating bind. Postfix ignores these fields, so the rule looks only at
    routes that reach a Dovecot listener. Where Dovecot's settings make it refuse those logins,
    auth-needs-tls-behind-terminator (MPL305) reports the route as an error, with this fix, and
    this rule stays silent.
    """
    from mailproxy_lint.rules.tls import dovecot_refusal, plaintext_after_termination

    # links where Dovecot refuses the logins: MPL305 reports them, with this fix, as the error it is
    refused = {id(lk) for lk in plaintext_after_termination(ctx)
               if lk.listener.product is Product.DOVECOT and dovecot_refusal(ctx, lk) is not None}
    seen: set[tuple[int, int]] = set()
    for lk in ctx.model.links:
        route, server, listener = lk.route, lk.server, lk.listener
        if route is None or server.product is not Product.HAPROXY or listener.product is not Product.DOVECOT:
            continue
        if id(lk) in refused:
            continue
        if route.tls.value is not ProxyTls.TERMINATE or server.tls.value or not server.send_proxy.value.sends:
            continue
        if server.proxy_tls_facts.value or (id(server), id(listener)) in seen:
            continue
        seen.add((id(server), id(listener)))
        sent = server.send_proxy
        why = "PROXY v1 cannot carry it" if sent.value is ProxyHeader.V1 else "the v2 header has no SSL field"
        yield ctx.finding(
            sent.span or server.span,
            f"{route.describe()} terminates TLS ({route.tls.describe_origin()}) and {server.describe()} forwards "
            f"plaintext to {listener.describe()} with '{sent.origin}': {why}, so Dovecot takes the session for "
            "cleartext (logins refused where plaintext auth is off); use `send-proxy-v2-ssl`",
            related=[(route.tls.span, "TLS is terminated here"), (listener.span, "the Dovecot listener")],
        )


# --------------------------------------------------------------------------------------------

VC07_FIX = Version((3, 2))  # commit 730641f7c, first in v3.2-dev7; stable backports unknown


def _bits(option: str) -> set[str]:
    if option.startswith("proxy-v2-options"):
        return {"options"}
    return set(kw.SEND_PROXY_FLAGS.get(option, ()))


@rule("MPL605", "proxy-header-inherited", Severity.WARNING,
      summary="default-server PROXY options reach servers that should not send the header",
      tags=("proxy-protocol", "haproxy"), facts=("HP03", "VC07"))
def proxy_header_inherited(ctx: Context):
    """## Why it matters
    `default-server send-proxy-v2` (in a backend or in `defaults`) applies to every later
    `server` line, including one whose listener does not read PROXY: that listener takes the
    header for protocol data and fails every connection. Cancelling it per server is not
    reliable either: before HAProxy commit 730641f7c (3.2-dev7, backported to some stable
    releases) a server with `no-send-proxy-v2` still sent a PROXY v1 header when `default-server`
    also set other PROXY options such as `proxy-v2-options`.

    ## Bad
    ```
    backend mail
        default-server send-proxy-v2 proxy-v2-options ssl
        server proxied 10.0.0.1:10993
        server direct 10.0.0.1:993 no-send-proxy-v2
    ```

    ## Good
    ```
    backend mail_proxied
        server proxied 10.0.0.1:10993 send-proxy-v2 proxy-v2-options ssl
    backend mail_direct
        server direct 10.0.0.1:993
    ```

    ## Fix
    Put PROXY options on the `server` lines that need them, or split the servers into backends
    (or `defaults` sections) by whether they send PROXY. Which stable releases carry the
    `no-send-proxy-v2` fix is not known, so that case is reported unless the HAProxy version is
    3.2 or later.
    """
    version = ctx.model.version_of(Product.HAPROXY, None)
    for upstream in ctx.model.upstreams:
        for server in upstream.servers:
            if server.product is not Product.HAPROXY:
                continue
            finding = _inherited_to_plain_listener(ctx, server) or _cancel_bug(ctx, server, version)
            if finding is not None:
                yield finding


def _inherited_to_plain_listener(ctx: Context, server):
    sent = server.send_proxy
    if not sent.value.sends or sent.span is None or sent.span.line == server.span.line:
        return None
    listeners = [lk.listener for lk in ctx.model.paths.links_of(server)]
    if not listeners or any(lst.accepts_proxy.value.sends for lst in listeners):
        return None
    return ctx.finding(
        sent.span,
        f"'{sent.origin}' makes {server.describe()} send PROXY {sent.value}, but {listeners[0].describe()} does "
        f"not accept it; move the PROXY option to the server lines that need it, or add "
        f"`no-{'send-proxy' if sent.value is ProxyHeader.V1 else 'send-proxy-v2'}` to server {server.name!r}",
        related=[(server.span, f"server {server.name!r} inherits it"), (listeners[0].span, "the listener")],
    )


def _cancel_bug(ctx: Context, server, version):
    if not server.proxy_cancels or server.send_proxy.value.sends:
        return None
    if version is not None and version.value >= VC07_FIX:
        return None
    remaining = set().union(*(_bits(o.value) for o in server.proxy_defaults)) if server.proxy_defaults else set()
    for cancel in server.proxy_cancels:
        remaining -= set(kw.NO_SEND_PROXY_FLAGS.get(cancel.value, ()))
    if not remaining:
        return None
    cancel = server.proxy_cancels[-1]
    left = [o for o in server.proxy_defaults if _bits(o.value) & remaining]
    where = f"HAProxy {version.value} ({version.describe_origin()})" if version is not None else "HAProxy"
    return ctx.finding(
        cancel.span or server.span,
        f"{server.describe()} cancels the inherited PROXY header with '{cancel.value}', but '{left[0].origin}' "
        f"still applies; {where} releases without the 3.2-dev7 fix (commit 730641f7c; which stable releases "
        "carry it is not known) then send a PROXY v1 header anyway; put the PROXY options on the servers that "
        "need them instead of `default-server`",
        related=[(o.span, "inherited PROXY option") for o in left],
    )
