"""MPL6xx: routes must lead somewhere: named objects must exist, backend ports must be listened
on, and mail traffic must be handled as TCP."""
from __future__ import annotations

import difflib

from mailproxy_lint.api import Context, FileKind, Listener, Product, Route, Severity, UpstreamServer, rule

# Ports of the mail protocols and docker-mailserver's PROXY-only ports, by the product that serves them
SMTP_PORTS = {25, 465, 587, 2525, 12525, 10465, 10587}
MAILBOX_PORTS = {143, 993, 110, 995, 4190, 10143, 10993, 10110, 10995, 14190}
MAIL_PORTS = SMTP_PORTS | MAILBOX_PORTS
# entrypoints the Traefik Helm chart defines whatever the values file says
HELM_CHART_ENTRYPOINTS = {"web", "websecure", "traefik", "metrics"}


def _needed_products(port: int) -> set[Product]:
    if port in SMTP_PORTS:
        return {Product.POSTFIX}
    if port in MAILBOX_PORTS:
        return {Product.DOVECOT}
    return {Product.POSTFIX, Product.DOVECOT}


def _ports(listeners: list[Listener]) -> str:
    return ", ".join(str(p) for p in sorted({lst.port for lst in listeners if lst.port is not None}))


@rule("MPL601", "upstream-without-listener", Severity.ERROR,
      summary="A route's backend port on the mail server matches no listener",
      tags=("routing",), facts=("TK04",))
def upstream_without_listener(ctx: Context):
    """## Why it matters
    The proxy dials the backend port it is told to. When nothing on the mail server listens
    there, every connection is refused (`connection refused` in the proxy's log, a closed
    connection for the client). Typical causes: a Traefik `loadbalancer.server.port=10993` for a
    PROXY port that was never added to Dovecot, a file-provider `address: "dms:12525"` without the
    matching `12525 inet` service in master.cf, a service label without `server.port` that makes
    Traefik dial the container's lowest port, or a protocol (POP3, ManageSieve) that
    docker-mailserver has not enabled.

    ## Bad
    ```
    # compose labels on the docker-mailserver container
    traefik.tcp.services.imaps.loadbalancer.server.port=10993
    # dovecot.cf defines no listener on 10993
    ```

    ## Good
    ```
    # dovecot.cf
    service imap-login {
      inet_listener imaps-proxy {
        port = 10993
        ssl = yes
        haproxy = yes
      }
    }
    ```

    ## Fix
    Point the route at a port the mail server listens on, or add the listener (a Dovecot
    `inet_listener`, a master.cf `inet` service, a docker-mailserver `ENABLE_*` variable). The
    finding is a warning when the mail server is only known from a plain directory of configs
    (the proxy names a host the scanned files do not describe).
    """
    if Product.POSTFIX in ctx.model.unknown or Product.DOVECOT in ctx.model.unknown:
        return
    seen: set[int] = set()
    for upstream in ctx.model.upstreams:
        routes = ctx.model.paths.routes_using(upstream)
        if not routes:
            continue
        for server in upstream.servers:
            if server.port is None or id(server) in seen or ctx.model.paths.links_of(server):
                continue
            seen.add(id(server))
            finding = _missing_listener(ctx, server, routes[0])
            if finding is not None:
                yield finding


def _missing_listener(ctx: Context, server: UpstreamServer, route: Route):
    target = ctx.model.paths.host_of(server)
    if target is not None:
        listeners = [lst for lst in ctx.model.listeners if lst.host == target]
        where, severity = f"container {target!r}", Severity.ERROR
    elif server.host is None or server.port not in MAIL_PORTS or ctx.model.hosts:
        return None  # a host nobody describes, among described ones: not ours to judge
    else:
        listeners = [lst for lst in ctx.model.listeners if lst.host is None]
        where, severity = f"{server.host} (taken to be the mail server in this directory)", Severity.WARNING
    known = {lst.product for lst in listeners}
    if not listeners or not _needed_products(server.port) <= known:
        return None  # that mail server's side of this port is not in the scanned files
    return ctx.finding(
        server.span,
        f"{server.describe()} dials port {server.port} on {where}, but no mail listener there uses port "
        f"{server.port} (it listens on {_ports(listeners)}), so every connection through {route.describe()} is "
        f"refused; point the route at a listened port or add the listener",
        related=[(route.span, f"the route {route.name!r}")],
        severity=severity,
    )


# ---------------------------------------------------------------------------------------------


def _suggestion(name: str, known: list[str]) -> str:
    folded = [k for k in known if k.lower() == name.lower()]
    if folded:
        return f"; names are case-sensitive: did you mean {folded[0]!r}?"
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return f"; did you mean {close[0]!r}?"
    if known:
        return f"; defined: {', '.join(repr(k) for k in sorted(known)[:8])}"
    return ""


def _scanned(ctx: Context, kind: FileKind) -> bool:
    return any(f.kind is kind for f in ctx.model.files)


def _provider_scanned(ctx: Context, name: str) -> bool:
    """True when every object of the provider a Traefik name belongs to is in the scanned files."""
    if "@" not in name:
        return True  # bare names are docker-provider objects, read from the compose labels
    provider = name.rsplit("@", 1)[1]
    return provider == "file" and _scanned(ctx, FileKind.TRAEFIK_DYNAMIC)


def _from_kubernetes(ctx: Context, route: Route) -> bool:
    return any(f.kind is FileKind.KUBERNETES and f.path == route.span.path for f in ctx.model.files)


@rule("MPL602", "undefined-reference", Severity.ERROR,
      summary="A router, frontend or route names a service, entrypoint, backend or port that does not exist",
      tags=("routing",), facts=("TK03", "TK04"))
def undefined_reference(ctx: Context):
    """## Why it matters
    Proxies look names up exactly. Traefik disables a TCP router whose service does not exist
    (`the service "smtp@docker" does not exist`) and drops entrypoints it does not know
    (`entryPoint "smtp" doesn't exist`, then `no valid entryPoint for this router`); a reference
    without `@provider` is looked up in the router's own provider, so a label `service=smtp` does
    not find the file provider's `smtp@file`. An IngressRouteTCP port the Service lacks gives
    `service port not found`. HAProxy refuses to start when a `use_backend` or
    `default_backend` names a backend that does not exist. Either way, no mail flows on that
    path.

    ## Bad
    ```
    - --entryPoints.mail-smtp.address=:25
    ...
    - traefik.tcp.routers.mail-smtp.entrypoints=smtp
    - traefik.tcp.routers.mail-smtp.service=smtp
    - traefik.tcp.services.mail-smtp.loadbalancer.server.port=25
    ```

    ## Good
    ```
    - traefik.tcp.routers.mail-smtp.entrypoints=mail-smtp
    - traefik.tcp.routers.mail-smtp.service=mail-smtp
    ```

    ## Fix
    Use the exact name that is defined (case matters), or define the missing object. Qualify
    references to other providers (`smtp@file`, `pp@file`). Names defined in places the linter
    did not read (another provider, a Kubernetes namespace outside the scanned files) are not
    reported.
    """
    yield from _traefik_references(ctx)
    yield from _haproxy_backends(ctx)
    yield from _transports(ctx)


def _traefik_references(ctx: Context):
    entrypoints = [e.name for e in ctx.model.entrypoints if e.product is Product.TRAEFIK]
    upstreams = [u.name for u in ctx.model.upstreams if u.product is Product.TRAEFIK]
    for route in ctx.model.routes:
        if route.product is not Product.TRAEFIK:
            continue
        if entrypoints and not route.entrypoints_defaulted:
            exempt = HELM_CHART_ENTRYPOINTS if _from_kubernetes(ctx, route) else set()
            for name in route.entrypoints:
                if name not in entrypoints and name not in exempt:
                    yield ctx.finding(
                        route.entrypoints_span or route.span,
                        f"{route.describe()} names entrypoint {name!r}, which Traefik does not define (entryPoint "
                        f"\"{name}\" doesn't exist), so the router does not listen there"
                        f"{_suggestion(name, entrypoints)}",
                        related=[(route.span, "the router")],
                    )
        if (route.layer.value == "tcp" and route.upstream is not None and route.upstream not in upstreams
                and _provider_scanned(ctx, route.upstream)):
            shown = route.upstream if "@" in route.upstream else f"{route.upstream}@docker"
            yield ctx.finding(
                route.upstream_span or route.span,
                f"{route.describe()} names service {route.upstream!r}, which is not defined (the service "
                f"\"{shown}\" does not exist), so Traefik disables the router{_suggestion(route.upstream, upstreams)}",
                related=[(route.span, "the router")],
            )
        for missing in route.unresolved:
            yield ctx.finding(
                missing.span or route.span,
                f"{route.describe()} names {missing.value}, which that Service does not define (service port not "
                f"found), so Traefik skips this backend",
                related=[(route.span, "the route")],
            )


def _haproxy_backends(ctx: Context):
    backends = [u.name for u in ctx.model.upstreams if u.product is Product.HAPROXY]
    for route in ctx.model.routes:
        name = route.upstream
        if route.product is not Product.HAPROXY or name is None or name in backends:
            continue
        if "%[" in name or "$" in name:
            continue  # a name computed at run time (use_backend %[...], environment variables)
        yield ctx.finding(
            route.upstream_span or route.span,
            f"HAProxy frontend {route.entrypoints[0]!r} routes to backend {name!r}, which no `backend` or `listen` "
            f"section defines, so HAProxy refuses the configuration{_suggestion(name, backends)}",
        )


def _transports(ctx: Context):
    """serversTransport references that cannot resolve: labels cannot define transports."""
    dynamic = _scanned(ctx, FileKind.TRAEFIK_DYNAMIC)
    seen = set()
    for upstream in ctx.model.upstreams:
        for server in upstream.servers:
            transport = server.transport
            if transport is None or not server.proxy_unknown or transport.span in seen:
                continue
            name = transport.value
            if not (name.endswith("@docker") or (name.endswith("@file") and dynamic)):
                continue
            seen.add(transport.span)
            hint = (" (labels cannot define serversTransports: define it in the file provider and write "
                    f"'{name.removesuffix('@docker')}@file')" if name.endswith("@docker") else "")
            yield ctx.finding(
                transport.span or server.span,
                f"{server.describe()} names serversTransport {name!r}, which is not defined (no transport "
                f"configuration found for \"{name}\"), so routers using the service fail{hint}",
            )


# ---------------------------------------------------------------------------------------------


def _is_mail_route(ctx: Context, route: Route) -> bool:
    paths = ctx.model.paths
    if any(e.port in MAIL_PORTS for e in paths.entrypoints_of(route)):
        return True
    upstream = paths.upstream_of(route)
    if upstream is not None and any(s.port in MAIL_PORTS for s in upstream.servers):
        return True
    return bool(paths.links_of(route))


@rule("MPL604", "http-mode-on-mail-port", Severity.ERROR,
      summary="A HAProxy frontend or backend carrying mail runs in mode http",
      tags=("routing", "haproxy"), facts=("HP01",))
def http_mode_on_mail_port(ctx: Context):
    """## Why it matters
    In `mode http` HAProxy waits for an HTTP request and parses it before it connects to any
    server. SMTP, IMAP, POP3 and ManageSieve clients send nothing until the server greets them,
    so they hang until `timeout http-request` or `timeout client`; implicit-TLS clients get an
    HTTP error page instead of a handshake. Many sample configurations put `mode http` in
    `defaults`, and a mail `frontend`, `backend` or `listen` without its own `mode tcp`
    inherits it.

    ## Bad
    ```
    defaults
        mode http
    frontend smtp
        bind :25
        default_backend postfix
    ```

    ## Good
    ```
    frontend smtp
        mode tcp
        bind :25
        default_backend postfix
    ```

    ## Fix
    Add `mode tcp` to every mail `frontend`, `backend` and `listen` section (or to a separate
    `defaults` section that the mail sections use), and keep `mode http` for web traffic.
    """
    grouped: dict[object, list[Route]] = {}
    for route in ctx.model.routes:
        if route.product is Product.HAPROXY and route.layer.value == "http" and _is_mail_route(ctx, route):
            grouped.setdefault(route.layer.span or route.span, []).append(route)
    for span, routes in grouped.items():
        names = ", ".join(repr(r.name) for r in routes)
        origin = routes[0].layer.origin
        yield ctx.finding(
            span,
            f"HAProxy {'routes' if len(routes) > 1 else 'route'} {names} {'carry' if len(routes) > 1 else 'carries'} "
            f"mail in mode http"
            f"{f' ({origin})' if origin else ''}: HAProxy waits for an HTTP request the mail client never sends; "
            f"add `mode tcp` to the mail sections",
            related=[(r.span, f"the route {r.name!r}") for r in routes],
        )
