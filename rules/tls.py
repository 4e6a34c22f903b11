"""MPL3xx: where TLS is done on the path (proxy or mail server) must fit the protocol."""
from __future__ import annotations

from mailproxy_lint.api import (
    Context,
    DovecotConfig,
    Entrypoint,
    Link,
    Listener,
    Product,
    ProxyTls,
    Route,
    Setting,
    Severity,
    Span,
    TlsMode,
    Version,
    rule,
)
from mailproxy_lint.data.dovecot_renames import NEW_NAMES, rename_for
from mailproxy_lint.rules.versions import version_text

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


# --------------------------------------------------------------------------------------------
# What crosses each hop: TLS or plaintext
# --------------------------------------------------------------------------------------------

# Ports where the client opens with a TLS ClientHello (facts-rules "Port / listener classification")
IMPLICIT_TLS_PORTS = {465: "submissions", 993: "IMAPS", 995: "POP3S"}
LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1"}


def client_port(ep: Entrypoint, ctx: Context) -> Setting[int] | None:
    """The port clients dial to reach an entrypoint: the Helm Service port, a compose-published
    host port, else the port it listens on."""
    if ep.exposed_port is not None:
        return ep.exposed_port
    if ep.port is None:
        return None
    host = ctx.model.host(ep.host)
    for published in host.published if host is not None else ():
        outside = published.host_port_for(ep.port)
        if outside is not None and published.protocol == "tcp":
            return Setting(outside, published.span, f"compose publishes it as port {outside}")
    return Setting(ep.port, ep.span, f"entrypoint port {ep.port}")


def client_sends_tls(ep: Entrypoint | None, ctx: Context) -> tuple[bool, str] | None:
    """(True when clients open with TLS, why) from the port convention; None when not a mail port."""
    port = client_port(ep, ctx) if ep is not None else None
    if port is None:
        return None
    if port.value in IMPLICIT_TLS_PORTS:
        return True, f"clients of port {port.value} ({IMPLICIT_TLS_PORTS[port.value]}) open with TLS"
    if port.value in SERVER_FIRST_PORTS:
        return False, f"clients of port {port.value} ({SERVER_FIRST_PORTS[port.value]}) wait for a plaintext greeting"
    return None


def terminates(route: Route, ep: Entrypoint | None) -> Setting[ProxyTls] | None:
    """The setting that makes the proxy do the TLS handshake with the client on this hop, or None."""
    if route.tls.value is ProxyTls.TERMINATE:
        return route.tls
    if ep is not None and ep.tls.value:
        return Setting(ProxyTls.TERMINATE, ep.tls.span, ep.tls.origin)
    return None


def backend_receives_tls(ctx: Context, lk: Link) -> tuple[bool, str, Span | None] | None:
    """(True when TLS reaches the listener, why, the span that decides it) for a routed link."""
    route, server = lk.route, lk.server
    ended = terminates(route, lk.entrypoint)
    if ended is not None:
        if server.tls.value:
            return True, f"it terminates TLS and re-encrypts to the backend ({server.tls.origin})", server.tls.span
        return False, f"it terminates TLS ({ended.origin}) and sends plaintext to the backend", ended.span
    if route.tls.value is ProxyTls.PASSTHROUGH:
        return True, f"it passes the client's TLS through ({route.tls.origin})", route.tls.span
    if server.tls.value:
        return None  # a plain route that dials with TLS: what the client sent is wrapped again
    client = client_sends_tls(lk.entrypoint, ctx)
    if client is None:
        return None
    tls, why = client
    return tls, f"it passes bytes as they come and {why}", server.span


def listener_tls_fix(listener: Listener) -> str:
    if listener.product is Product.DOVECOT:
        return f"`ssl = yes` in inet_listener {listener.name}"
    if listener.product is Product.POSTFIX:
        return f"`-o smtpd_tls_wrappermode=yes` on service {listener.name!r}"
    return "implicit TLS on the listener"


@rule("MPL302", "tls-mode-mismatch", Severity.ERROR,
      summary="What the proxy sends (TLS or plaintext) is not what the mail listener expects",
      tags=("tls",), facts=("TL02", "TL03"))
def tls_mode_mismatch(ctx: Context):
    """## Why it matters
    An implicit-TLS listener (Dovecot `ssl = yes`, Postfix `smtpd_tls_wrappermode=yes`) expects a
    TLS ClientHello as the first bytes; every other listener greets in plaintext. When the proxy
    passes the client's TLS through (or forwards port 993/465/995 as plain TCP) to a plaintext
    listener, the ClientHello meets a greeting and the client reports a TLS error. When the proxy
    terminates TLS and then sends plaintext to an implicit-TLS listener, the mail server fails
    the handshake: Dovecot logs `SSL_accept() failed: ... wrong version number`, Postfix a TLS
    library error. No client gets a session either way. The docker-mailserver trap is a new
    PROXY listener such as `inet_listener imaps-proxyprotocol { port = 10993 haproxy = yes }`
    that forgets `ssl = yes`.

    ## Bad
    ```
    # HAProxy terminates TLS, then dials Dovecot's implicit-TLS port in plaintext
    frontend imaps
        bind :993 ssl crt /etc/haproxy/certs/mail.pem
        default_backend dovecot_imaps
    backend dovecot_imaps
        server dovecot 10.0.0.1:993 send-proxy-v2
    ```

    ## Good
    ```
    # pass the TLS stream through: Dovecot does the handshake
    frontend imaps
        bind :993
        default_backend dovecot_imaps
    backend dovecot_imaps
        server dovecot 10.0.0.1:993 send-proxy-v2
    ```

    ## Fix
    Make both ends agree. Either pass TLS through (Traefik `tls.passthrough=true` or a plain
    `HostSNI(`*`)` router; HAProxy `bind` without `ssl`) to a listener with implicit TLS
    (`ssl = yes`, `smtpd_tls_wrappermode=yes`); or terminate at the proxy and re-encrypt (HAProxy
    `ssl` on the `server` line, Traefik v3 `servers[].tls`); or terminate and dial a plaintext
    port (then see MPL305 for authentication). Reported only for ports whose convention is
    known (465/993/995 implicit, 25/587/143/110/4190 plaintext) or where the proxy's TLS handling
    decides.
    """
    seen: set[tuple[int, int, int]] = set()
    for lk in ctx.model.links:
        route, listener = lk.route, lk.listener
        if route is None or route.layer.value != "tcp":
            continue
        key = (id(route), id(lk.server), id(listener))
        if key in seen:
            continue
        arrives = backend_receives_tls(ctx, lk)
        if arrives is None:
            continue
        tls, why, decided_at = arrives
        expects_tls = listener.tls.value is TlsMode.IMPLICIT
        if tls == expects_tls:
            continue
        seen.add(key)
        yield _mismatch_finding(ctx, lk, tls, why, decided_at)


def _implicit_text(listener: Listener) -> str:
    what = {Product.DOVECOT: "ssl = yes", Product.POSTFIX: "smtpd_tls_wrappermode=yes"}.get(listener.product,
                                                                                          "implicit TLS")
    where = listener.tls.describe_origin() if listener.tls.span is not None else listener.tls.origin
    return f"{what}, {where}" if where else what


def _handshake_log(listener: Listener) -> str:
    if listener.product is Product.DOVECOT:
        return "Dovecot logs 'SSL_accept() failed: ... wrong version number'"
    if listener.product is Product.POSTFIX:
        return "Postfix logs a TLS library error"
    return "the TLS handshake fails"


def _mismatch_finding(ctx: Context, lk: Link, tls: bool, why: str, decided_at: Span | None):
    route, server, listener = lk.route, lk.server, lk.listener
    related = [(route.span, f"the route {route.name!r}"), (listener.span, "the listener"),
               (listener.tls.span, listener.tls.origin or "the listener's TLS mode")]
    if tls:
        plain_port = listener.protocol is not None and listener.port in SERVER_FIRST_PORTS
        span = server.span if plain_port else listener.span
        fix = ("dial the listener's implicit-TLS port instead" if plain_port
               else f"add {listener_tls_fix(listener)}, or terminate TLS at the proxy")
        return ctx.finding(
            span,
            f"{route.describe()} sends TLS to {listener.describe()}, but that listener speaks plaintext first "
            f"({listener.tls.origin or listener.tls.value}): {why}, so the client's ClientHello meets a plaintext "
            f"greeting and the handshake fails; {fix}",
            related=related + [(decided_at, "where the proxy's TLS handling is decided")],
        )
    ended = terminates(route, lk.entrypoint) is not None
    span = (decided_at or route.span) if ended else server.span
    fix = ("pass TLS through instead (Traefik tls.passthrough=true, HAProxy bind without ssl), re-encrypt "
           "towards the backend (HAProxy `ssl` on the server, Traefik servers[].tls), or dial a plaintext port"
           if ended else "dial the listener's plaintext (STARTTLS) port instead")
    return ctx.finding(
        span,
        f"{route.describe()} sends plaintext to {listener.describe()}, which expects TLS from the first byte "
        f"({_implicit_text(listener)}): {why}, so the mail server fails the handshake ({_handshake_log(listener)}); "
        f"{fix}",
        related=related + [(server.span, f"dials port {server.port}")],
    )


# --------------------------------------------------------------------------------------------
# Authentication behind a TLS-terminating proxy
# --------------------------------------------------------------------------------------------

DOVECOT_24 = Version((2, 4))


def hangs_before_tls(ctx: Context, lk: Link) -> bool:
    """The proxy terminates TLS on a server-first port (MPL301): the connection hangs there, so
    what would happen behind it is a consequence, not a second problem to report."""
    return (lk.entrypoint is not None and terminates(lk.route, lk.entrypoint) is not None
            and server_first_reason(ctx, lk.entrypoint) is not None)


def plaintext_after_termination(ctx: Context):
    """Routed links where the proxy terminates TLS and the listener gets plaintext, once each."""
    seen: set[tuple[int, int, int]] = set()
    for lk in ctx.model.links:
        if lk.route is None or lk.route.layer.value != "tcp" or lk.server.tls.value:
            continue
        if terminates(lk.route, lk.entrypoint) is None or lk.listener.tls.value is TlsMode.IMPLICIT:
            continue
        if hangs_before_tls(ctx, lk):
            continue  # MPL301's case: no session ever reaches the listener
        key = (id(lk.route), id(lk.server), id(lk.listener))
        if key not in seen:
            seen.add(key)
            yield lk


def postfix_refusal(ctx: Context, listener: Listener) -> tuple[str, Span | None] | None:
    """(what an smtpd refuses on a plaintext session, the setting's span), or None."""
    from mailproxy_lint.build.postfix import effective_setting, expand

    config = next((c for c in ctx.model.postfix if c.id == listener.instance), None)
    service = next((s for s in config.services if s.name == listener.service and s.type == "inet"), None) \
        if config is not None else None
    if service is None or service.command != "smtpd":
        return None  # postscreen hands sessions to another smtpd; its settings are not this listener's

    def value(name: str) -> tuple[str, Setting[str]]:
        setting = effective_setting(config, service, name)
        return expand(config, setting.value, service).strip().lower(), setting

    level, level_setting = value("smtpd_tls_security_level")
    enforce, enforce_setting = value("smtpd_enforce_tls")
    if level == "encrypt" or (not level and enforce in ("yes", "true")):
        decided = level_setting if level else enforce_setting
        return (f"{decided.describe_origin()} sets smtpd_tls_security_level=encrypt, so every MAIL FROM on the "
                f"plaintext session gets '530 5.7.0 Must issue a STARTTLS command first'"), decided.span
    auth_only, auth_only_setting = value("smtpd_tls_auth_only")
    sasl, _ = value("smtpd_sasl_auth_enable")
    if auth_only in ("yes", "true") and sasl in ("yes", "true"):
        return (f"smtpd_tls_auth_only = yes ({auth_only_setting.describe_origin()}) hides AUTH on the plaintext "
                f"session, so clients cannot log in ('503 5.5.1 Error: authentication not enabled')"), \
            auth_only_setting.span
    return None


def dovecot_generations(config: DovecotConfig) -> tuple[list[str], str]:
    """The Dovecot setting generations ("2.3", "2.4") the config may run under, and how that is known.

    A known version decides; otherwise names only one generation reads decide (a config with
    `ssl_cert` loads only on 2.3); otherwise both are possible.
    """
    if config.version is not None:
        generation = "2.4" if config.version.value >= DOVECOT_24 else "2.3"
        return [generation], version_text(Product.DOVECOT, config.version)
    for key, setting in config.settings.items():
        if setting.span is not None and rename_for(key) is not None:
            return ["2.3"], f"Dovecot 2.3 (it reads the 2.3 setting {key.split('/')[-1]}, {setting.span})"
    for key, setting in config.settings.items():
        if setting.span is not None and key.split("/")[-1] in NEW_NAMES:
            return ["2.4"], f"Dovecot 2.4 (it reads the 2.4 setting {key.split('/')[-1]}, {setting.span})"
    return ["2.3", "2.4"], "Dovecot (2.3 and 2.4 alike)"


def dovecot_refusal(ctx: Context, lk: Link) -> tuple[str, Span | None] | None:
    """Why Dovecot refuses cleartext authentication on this link, or None (allowed, or unsure)."""
    from mailproxy_lint.build.dovecot import is_yes, setting_for

    listener, server = lk.listener, lk.server
    config = next((c for c in ctx.model.dovecot if c.id == listener.instance), None)
    if config is None or (server.host or "").strip("[]") in LOOPBACK_HOSTS:
        return None  # a proxy on the same machine connects from a local address: Dovecot trusts it
    trusted = setting_for(config, "login_trusted_networks", listener.protocol)
    if trusted is not None and trusted.value.strip():
        return None  # the proxy may be trusted through login_trusted_networks: not decidable here
    ssl = setting_for(config, "ssl", listener.protocol)
    ssl_required = ssl is not None and ssl.value.strip().lower() == "required"
    haproxied = listener.accepts_proxy.value.sends and server.send_proxy.value.sends
    tls_tlv = server.proxy_tls_facts.value
    old = setting_for(config, "disable_plaintext_auth", listener.protocol)
    new = setting_for(config, "auth_allow_cleartext", listener.protocol)
    generations, version = dovecot_generations(config)
    reasons = []
    for generation in generations:
        if generation == "2.3":
            allowed = old is not None and not is_yes(old.value)
            secured = haproxied and tls_tlv
            setting = old
            name = "disable_plaintext_auth = yes" if old is None or is_yes(old.value) else "disable_plaintext_auth = no"
        else:
            allowed = new is not None and is_yes(new.value)
            secured = haproxied and (tls_tlv or not ssl_required)
            setting = new
            name = "auth_allow_cleartext = no" if new is None or not is_yes(new.value) else "auth_allow_cleartext = yes"
        if secured or (allowed and not ssl_required):
            return None
        reasons.append((generation, name, setting))
    generation, name, setting = reasons[0]
    where = setting.describe_origin() if setting is not None and setting.span is not None else "the default"
    because = f"ssl = required ({ssl.describe_origin()})" if ssl_required and ssl is not None else f"{name} ({where})"
    if haproxied and not tls_tlv:
        cause = ("the PROXY header says nothing about the client's TLS (send-proxy-v2-ssl would)"
                 if server.product is Product.HAPROXY else
                 f"{server.product} PROXY headers never say that the client used TLS")
    elif haproxied:
        cause = "the connection is not secured"
    else:
        cause = "without a PROXY header the connection comes from the proxy's address, which Dovecot does not trust"
    text = "Plaintext" if generation == "2.3" else "Cleartext"
    span = (ssl.span if ssl_required and ssl is not None else setting.span if setting is not None else None)
    return (f"{version} refuses it with {because}: {cause}, so logins fail with '{text} authentication "
            f"disallowed on non-secure (SSL/TLS) connections.'"), span


def _auth_fix(lk: Link) -> str:
    fix = "pass TLS through to an implicit-TLS listener"
    if lk.listener.product is Product.DOVECOT and lk.server.product is Product.HAPROXY:
        fix += ", or use send-proxy-v2-ssl so Dovecot learns the client used TLS"
        if not lk.listener.accepts_proxy.value.sends:
            fix += " (with `haproxy = yes` on the listener)"
    return fix + " (relaxing the restriction instead leaves credentials in cleartext between proxy and server)"


@rule("MPL305", "auth-needs-tls-behind-terminator", Severity.ERROR,
      summary="The proxy terminates TLS and forwards plaintext to a mail server that allows login or mail only over TLS",
      tags=("tls", "auth"), facts=("TL04",))
def auth_needs_tls_behind_terminator(ctx: Context):
    """## Why it matters
    When the proxy terminates TLS and forwards plaintext, the mail server sees an unencrypted
    session, although the client used TLS. Servers that insist on TLS then refuse the client:
    Postfix with `smtpd_tls_security_level = encrypt` (docker-mailserver's 587) answers every
    MAIL with `530 5.7.0 Must issue a STARTTLS command first`, and `smtpd_tls_auth_only = yes`
    hides AUTH. Postfix ignores the TLS facts a PROXY v2 header can carry. Dovecot 2.3
    (`disable_plaintext_auth = yes`, the default) treats a proxied session as secure only when
    the PROXY v2 header says the client used TLS (HAProxy `send-proxy-v2-ssl`; Traefik never
    sends it) and otherwise refuses with "Plaintext authentication disallowed on non-secure
    (SSL/TLS) connections."; Dovecot 2.4 trusts proxied sessions unless `ssl = required`.

    ## Bad
    ```
    frontend submissions
        bind :465 ssl crt /etc/haproxy/certs/mail.pem
        default_backend postfix_submission
    backend postfix_submission
        server postfix 10.0.0.1:587 send-proxy
    # master.cf: submission ... -o smtpd_tls_security_level=encrypt
    ```

    ## Good
    ```
    frontend submissions
        bind :465
        default_backend postfix_submissions
    backend postfix_submissions
        server postfix 10.0.0.1:465 send-proxy
    # master.cf: submissions ... -o smtpd_tls_wrappermode=yes
    ```

    ## Fix
    Let the mail server do TLS (pass TLS through to an implicit-TLS listener), or, for Dovecot
    behind HAProxy, send `send-proxy-v2-ssl` so Dovecot learns the client used TLS. Relaxing the
    restriction on a dedicated proxy-only port works too, but leaves credentials in cleartext
    between proxy and server (MPL206). Stays silent when the proxy connects over loopback or
    Dovecot's `login_trusted_networks` is set (it may trust the proxy), and, with no Dovecot
    version known, unless 2.3 and 2.4 would both refuse.
    """
    for lk in plaintext_after_termination(ctx):
        listener = lk.listener
        if listener.product is Product.POSTFIX:
            found = postfix_refusal(ctx, listener)
        elif listener.product is Product.DOVECOT:
            found = dovecot_refusal(ctx, lk)
        else:
            found = None
        if found is None:
            continue
        why, decided_at = found
        route = lk.route
        ended = terminates(route, lk.entrypoint)
        span = lk.server.span if lk.server.product is Product.HAPROXY and lk.server.send_proxy.value.sends \
            and listener.product is Product.DOVECOT else (ended.span if ended is not None else None) or route.span
        yield ctx.finding(
            span,
            f"{route.describe()} terminates TLS and sends plaintext to {listener.describe()}, which allows "
            f"{'login' if listener.product is Product.DOVECOT else 'mail or login'} only over TLS: {why}; "
            f"{_auth_fix(lk)}",
            related=[(listener.span, "the listener"), (decided_at, "the setting that requires TLS"),
                     (route.span, f"the route {route.name!r}")],
        )


# --------------------------------------------------------------------------------------------
# Dovecot's global ssl switch
# --------------------------------------------------------------------------------------------


@rule("MPL308", "listener-ssl-without-global-ssl", Severity.ERROR,
      summary="A Dovecot listener sets ssl = yes while the global ssl = no, so Dovecot removes the listener",
      tags=("tls", "dovecot"), facts=("TL07",))
def listener_ssl_without_global_ssl(ctx: Context):
    """## Why it matters
    Dovecot drops every listener with `ssl = yes` when the global `ssl` setting is `no`: the
    port is simply not opened, and the proxy's connections to it are refused. It happens when
    TLS was switched off globally because the proxy terminates it, while an implicit-TLS
    listener (often a PROXY variant such as `imaps-proxy` on 10993) still carries `ssl = yes`,
    or when a route still dials Dovecot's built-in `imaps`/`pop3s` listener.

    ## Bad
    ```
    ssl = no
    service imap-login {
      inet_listener imaps-proxy {
        port = 10993
        ssl = yes
        haproxy = yes
      }
    }
    ```

    ## Good
    ```
    ssl = yes
    ssl_cert = </etc/dovecot/tls/fullchain.pem
    ssl_key = </etc/dovecot/tls/privkey.pem
    service imap-login {
      inet_listener imaps-proxy {
        port = 10993
        ssl = yes
        haproxy = yes
      }
    }
    ```

    ## Fix
    Either enable TLS globally (`ssl = yes` or `required`, with certificates) so the listener
    exists, or, when the proxy terminates TLS, remove `ssl = yes` from the listener and route the
    proxy's plaintext to it.
    """
    from mailproxy_lint.build.dovecot import is_yes

    for config in ctx.model.dovecot:
        global_ssl = config.settings.get("ssl")
        if global_ssl is None or global_ssl.value.strip().lower() != "no":
            continue
        written = set()
        for key, setting in config.settings.items():
            parts = key.split("/")
            if len(parts) == 3 and parts[1].startswith("inet_listener") and parts[2] == "ssl" and is_yes(setting.value):
                written.add((parts[0].removeprefix("service ").strip(), parts[1].removeprefix("inet_listener").strip()))
                yield ctx.finding(
                    setting.span or global_ssl.span or config.root_span,
                    f"Dovecot {parts[1]} of {parts[0]} sets ssl = yes while the global ssl = no "
                    f"({global_ssl.describe_origin()}): Dovecot removes every listener with ssl = yes then, so this "
                    f"port is never opened; enable ssl globally, or drop ssl = yes if the proxy terminates TLS",
                    related=[(global_ssl.span, "the global ssl = no")],
                )
        yield from _routed_builtin_ssl_listeners(ctx, config, global_ssl, written)


def _routed_builtin_ssl_listeners(ctx: Context, config, global_ssl: Setting[str], written: set[tuple[str, str]]):
    """Routes that dial a built-in implicit-TLS listener (imaps, pop3s) that ssl = no removes."""
    for listener in ctx.model.listeners:
        if listener.instance != config.id or listener.product is not Product.DOVECOT:
            continue
        if listener.tls.value is not TlsMode.IMPLICIT or (listener.service, listener.name) in written:
            continue
        routed = [lk for lk in ctx.model.paths.links_of(listener) if lk.route is not None]
        if not routed or global_ssl.span is None:
            continue
        route = routed[0].route
        yield ctx.finding(
            global_ssl.span,
            f"ssl = no removes Dovecot's built-in {listener.describe()} (it has ssl = yes), yet {route.describe()} "
            f"dials port {listener.port}: those connections are refused; enable ssl, or point the route at a "
            f"plaintext listener",
            related=[(routed[0].server.span, f"dials port {listener.port}"), (route.span, f"the route {route.name!r}")],
        )


# --------------------------------------------------------------------------------------------
# TLS done in two places
# --------------------------------------------------------------------------------------------


def backend_does_client_tls(ctx: Context, lk: Link) -> bool:
    """True when the client's TLS (implicit or STARTTLS) is done by the mail server on this link."""
    route, listener = lk.route, lk.listener
    if route is None or terminates(route, lk.entrypoint) is not None or lk.server.tls.value:
        return False
    if listener.tls.value is TlsMode.IMPLICIT:
        return True
    if listener.tls.value is not TlsMode.STARTTLS:
        return False
    if listener.product is Product.POSTFIX:
        return _postfix_offers_starttls(ctx, listener)
    return listener.product is Product.DOVECOT


def _postfix_offers_starttls(ctx: Context, listener: Listener) -> bool:
    from mailproxy_lint.build.postfix import effective_setting, expand

    config = next((c for c in ctx.model.postfix if c.id == listener.instance), None)
    service = next((s for s in config.services if s.name == listener.service and s.type == "inet"), None) \
        if config is not None else None
    if service is None:
        return False
    level = expand(config, effective_setting(config, service, "smtpd_tls_security_level").value, service)
    legacy = expand(config, effective_setting(config, service, "smtpd_use_tls").value, service)
    return level.strip().lower() in ("may", "encrypt", "dane", "verify", "secure") or \
        (not level.strip() and legacy.strip().lower() in ("yes", "true"))


@rule("MPL306", "split-tls-config", Severity.NOTE,
      summary="TLS is handled by the proxy on one port and by the mail server on another",
      tags=("tls",))
def split_tls_config(ctx: Context):
    """## Why it matters
    When the proxy terminates TLS for one port (say 993) while the mail server does TLS itself
    on another (STARTTLS on 143, or implicit TLS passed through), the deployment holds two sets
    of certificates and two TLS policies. They drift apart: one certificate renewal is missed,
    one side still accepts old protocol versions or ciphers. Dovecot's HAProxy documentation
    calls this layout functional but discouraged.

    ## Bad
    ```
    frontend imaps
        bind :993 ssl crt /etc/haproxy/certs/mail.pem
        default_backend dovecot_imap
    frontend imap
        bind :143
        default_backend dovecot_imap
    # dovecot: ssl = yes, certificates, and STARTTLS on 143
    ```

    ## Good
    ```
    frontend imaps
        bind :993 ssl crt /etc/haproxy/certs/mail.pem
        default_backend dovecot_imap
    # no plaintext port exposed, or Dovecot with ssl = no on an internal-only 143
    ```

    ## Fix
    Do TLS in one place: terminate at the proxy everywhere and stop exposing STARTTLS ports (or
    run them with `ssl = no` for internal use only), or pass TLS through on every port and let
    the mail server hold the only certificates. If both are needed, renew and configure them
    together.
    """
    for config_id in {lst.instance for lst in ctx.model.listeners}:
        links = [lk for lk in ctx.model.links if lk.listener.instance == config_id and lk.route is not None
                 and lk.route.layer.value == "tcp"]
        backend = next((lk for lk in links if backend_does_client_tls(ctx, lk)), None)
        if backend is None:
            continue
        reported: set[int] = set()
        for lk in links:
            ended = terminates(lk.route, lk.entrypoint)
            if ended is None or id(lk.route) in reported or hangs_before_tls(ctx, lk):
                continue
            reported.add(id(lk.route))
            how = "STARTTLS" if backend.listener.tls.value is TlsMode.STARTTLS else "implicit TLS"
            yield ctx.finding(
                ended.span or lk.route.span,
                f"{lk.route.describe()} terminates TLS at the proxy, while {backend.route.describe()} leaves TLS to "
                f"{backend.listener.describe()} ({how}): certificates and TLS policy live in two places and can "
                f"drift apart; do TLS in one place",
                related=[(backend.route.span, f"the route {backend.route.name!r}"),
                         (backend.listener.span, "the mail server's TLS listener")],
            )


# --------------------------------------------------------------------------------------------
# Routing by SNI on implicit-TLS ports
# --------------------------------------------------------------------------------------------


def _implicit_tls_route(ctx: Context, route: Route) -> str | None:
    """Why this route carries an implicit-TLS mail protocol, or None."""
    for ep in ctx.model.paths.entrypoints_of(route):
        port = client_port(ep, ctx)
        if port is not None and port.value in IMPLICIT_TLS_PORTS:
            return f"entrypoint {ep.name!r} is port {port.value} ({IMPLICIT_TLS_PORTS[port.value]})"
    for lk in ctx.model.paths.links_of(route):
        if lk.listener.tls.value is TlsMode.IMPLICIT:
            return f"it reaches {lk.listener.describe()}, an implicit-TLS listener"
    upstream = ctx.model.paths.upstream_of(route)
    for server in upstream.servers if upstream is not None else ():
        if server.port in IMPLICIT_TLS_PORTS:
            return f"it dials port {server.port} ({IMPLICIT_TLS_PORTS[server.port]})"
    return None


def _catch_all_on(ctx: Context, route: Route) -> bool:
    """True when a TLS catch-all (HostSNI(`*`)) router shares one of the route's entrypoints."""
    for ep in ctx.model.paths.entrypoints_of(route):
        for other in ctx.model.paths.routes_on(ep):
            if other is not route and other.tls.value is not ProxyTls.NONE and other.layer.value == "tcp" \
                    and (other.sni is None or other.sni.value in ("*", "")):
                return True
    return False


@rule("MPL304", "sni-routing-unreliable", Severity.NOTE,
      summary="An implicit-TLS mail route matches a server name: clients that send no SNI never reach it",
      tags=("tls", "traefik"), facts=("TL09",))
def sni_routing_unreliable(ctx: Context):
    """## Why it matters
    A router that matches ``HostSNI(`mail.example.com`)`` only sees connections whose TLS
    ClientHello names that server. Mail clients and MTAs that send no SNI (older MUAs, some
    MTAs delivering to 465, `openssl s_client` without `-servername`, `swaks` without
    `--tls-sni`) match nothing: they fall to another router, Traefik's default certificate, or a
    closed connection. Whether a given client sends SNI is outside the linter's view, so this is
    advice.

    ## Bad
    ```
    traefik.tcp.routers.imaps.rule=HostSNI(`mail.example.com`)
    traefik.tcp.routers.imaps.entrypoints=imaps
    traefik.tcp.routers.imaps.tls.passthrough=true
    ```

    ## Good
    ```
    traefik.tcp.routers.imaps.rule=HostSNI(`*`)
    traefik.tcp.routers.imaps.entrypoints=imaps
    traefik.tcp.routers.imaps.tls.passthrough=true
    ```

    ## Fix
    Give each implicit-TLS mail port its own entrypoint with a ``HostSNI(`*`)`` router, or add
    a ``HostSNI(`*`)`` TLS router on the same entrypoint as a fallback for clients without SNI.
    """
    for route in ctx.model.routes:
        if route.layer.value != "tcp" or route.tls.value is ProxyTls.NONE or route.sni is None:
            continue
        if route.sni.value in ("*", ""):
            continue
        why = _implicit_tls_route(ctx, route)
        if why is None or _catch_all_on(ctx, route):
            continue
        fix = ("add a default_backend for clients without SNI" if route.product is Product.HAPROXY else
               "use HostSNI(`*`) on a dedicated entrypoint, or add a HostSNI(`*`) TLS router as a fallback")
        yield ctx.finding(
            route.sni.span or route.span,
            f"{route.describe()} routes by SNI ({route.sni.value}) and {why}: clients that send no server name "
            f"(some MUAs and MTAs, openssl without -servername) match no route; {fix}",
            related=[(route.tls.span, "the router's TLS")],
        )
