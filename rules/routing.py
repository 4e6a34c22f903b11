"""MPL6xx: routes must lead somewhere: named objects must exist, backend ports must be listened
on, and mail traffic must be handled as TCP."""
from __future__ import annotations

import difflib
import re

from mailproxy_lint.api import (
    Context,
    Entrypoint,
    FileKind,
    Listener,
    MailProtocol,
    Product,
    ProxyTls,
    Route,
    Severity,
    UpstreamServer,
    rule,
)

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


def _opt_in_port_unknown(ctx: Context, host_name: str, port: int, listeners) -> bool:
    """docker-mailserver opens 110/995/4190 only on an ENABLE_* flag; when part of the container's
    environment is not in the scanned files (an env_file not committed, `${VAR}`), the flag may be on."""
    from mailproxy_lint.data.dms_dovecot import OPT_IN_PORTS

    if port not in OPT_IN_PORTS or not any(lst.platform == "docker-mailserver" for lst in listeners):
        return False
    host = ctx.model.host(host_name)
    return host is not None and not host.environment_complete


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
    if target is not None and _opt_in_port_unknown(ctx, target, server.port, listeners):
        return None
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
    reported, nor is the `traefik` entrypoint, which Traefik creates on :8080 when `api.insecure`,
    `ping` or `metrics` need it.
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
            # Traefik adds the `traefik` entrypoint (:8080) itself when api.insecure, ping or metrics use it
            exempt = HELM_CHART_ENTRYPOINTS if _from_kubernetes(ctx, route) else {"traefik"}
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


# ---------------------------------------------------------------------------------------------


def _container_of(ctx: Context, route: Route):
    """The compose service whose labels define a Traefik route: the last service declared above it."""
    above = [h for h in ctx.model.hosts if h.span is not None and h.span.path == route.span.path
             and h.span.line <= route.span.line]
    return max(above, key=lambda h: h.span.line) if above else None


def _unlinked_label_routers(ctx: Context):
    """Label routers without `service` on a container with several TCP services: Traefik drops them."""
    for route in ctx.model.routes:
        if route.product is not Product.TRAEFIK or route.layer.value != "tcp" or route.upstream is not None:
            continue
        if route.upstream_span is not None or not any(
                f.path == route.span.path and f.kind is FileKind.COMPOSE for f in ctx.model.files):
            continue
        container = _container_of(ctx, route)
        if container is None:
            continue
        services = sorted({u.name for u in ctx.model.upstreams if u.product is Product.TRAEFIK
                           and any(s.target_host == container.name for s in u.servers)})
        if len(services) < 2:
            continue
        yield ctx.finding(
            route.span,
            f"{route.describe()} names no service while container {container.name!r} defines several "
            f"({', '.join(services)}): Traefik cannot pick one and drops the router ('Router {route.name} cannot be "
            f"linked automatically with multiple Services'); add traefik.tcp.routers.{route.name}.service",
            related=[(container.span, f"container {container.name!r}")],
        )


def _defaulted_entrypoints(ctx: Context):
    """TCP routers without entrypoints that land on several default entrypoints."""
    from mailproxy_lint.rules.tls import server_first_reason

    for route in ctx.model.routes:
        if route.product is not Product.TRAEFIK or route.layer.value != "tcp" or not route.entrypoints_defaulted:
            continue
        landed = ctx.model.paths.entrypoints_of(route)
        if len(landed) < 2:
            continue  # one entrypoint (or none known): nothing is picked by default
        tls_route = route.tls.value is not ProxyTls.NONE or (route.sni is not None and route.sni.value not in ("*", ""))
        if tls_route and any(server_first_reason(ctx, ep) for ep in landed):
            continue  # MPL301 reports the hang this causes
        names = ", ".join(repr(ep.name) for ep in landed)
        plain_catch_all = not tls_route
        others = [ep.name for ep in landed if ep.port is not None and ep.port not in MAIL_PORTS]
        effect = ("as a plaintext catch-all it takes every non-TLS connection there"
                  f"{', including HTTP on ' + ', '.join(repr(n) for n in others) if others else ''}"
                  if plain_catch_all and (route.sni is None or route.sni.value in ("*", ""))
                  else "it answers on every one of them")
        yield ctx.finding(
            route.span,
            f"{route.describe()} names no entrypoints, so Traefik attaches it to every default entrypoint ({names}): "
            f"{effect}; list the entrypoints it is meant for",
            related=[(ep.span, f"entrypoint {ep.name!r}") for ep in landed],
        )


def _merged_services(ctx: Context):
    """One Traefik service name defined by several containers: Traefik merges or removes them."""
    for upstream in ctx.model.upstreams:
        if upstream.product is not Product.TRAEFIK:
            continue
        containers = list(dict.fromkeys(s.target_host for s in upstream.servers if s.target_host))
        if len(containers) < 2:
            continue
        settings = {(s.send_proxy.value, s.tls.value, s.transport.value if s.transport else None)
                    for s in upstream.servers}
        listed = ", ".join(repr(c) for c in containers)
        if len(settings) > 1:
            effect = ("with different settings, so Traefik removes every copy ('Service TCP defined multiple times "
                      "with different configurations') and the routers using it fail")
        else:
            effect = "so Traefik merges them and round-robins connections between those containers"
        yield ctx.finding(
            upstream.span,
            f"Traefik TCP service {upstream.name!r} is defined by the labels of several containers ({listed}), "
            f"{effect}; give each container's service its own name",
            related=[(s.span, f"server of container {s.target_host!r}") for s in upstream.servers],
        )


@rule("MPL603", "ambiguous-route", Severity.WARNING,
      summary="Traefik picks a route's target by default or merges it: no service, no entrypoints, or a shared name",
      tags=("routing", "traefik"))
def ambiguous_route(ctx: Context):
    """## Why it matters
    Traefik fills in what a router leaves out, and its choices are rarely what a mail setup
    needs. A label router without `service` on a container that defines several TCP services is
    dropped (`Router <r> cannot be linked automatically with multiple Services`). A TCP router
    without `entrypoints` attaches to every default entrypoint (in v3: the `asDefault` ones
    when any is marked); a plaintext catch-all there takes every non-TLS connection, including
    HTTP and ACME challenges on `web`. The same TCP service name in several containers of one
    stack is merged: identical definitions are round-robined between unrelated containers,
    different ones are all removed.

    ## Bad
    ```
    traefik.tcp.routers.smtp.rule=HostSNI(`*`)
    traefik.tcp.services.smtp.loadbalancer.server.port=25
    traefik.tcp.services.submission.loadbalancer.server.port=587
    ```

    ## Good
    ```
    traefik.tcp.routers.smtp.rule=HostSNI(`*`)
    traefik.tcp.routers.smtp.entrypoints=smtp
    traefik.tcp.routers.smtp.service=smtp
    traefik.tcp.services.smtp.loadbalancer.server.port=25
    ```

    ## Fix
    Name the `service` and the `entrypoints` of every mail router, and give every container's
    TCP services names of their own. TLS routers that land on a server-first entrypoint by
    default are reported by MPL301 instead.
    """
    yield from _unlinked_label_routers(ctx)
    yield from _defaulted_entrypoints(ctx)
    yield from _merged_services(ctx)


# ---------------------------------------------------------------------------------------------

# The port clients of each mail protocol use, by protocol and by the words entrypoints are named with
STANDARD_PORTS = {
    MailProtocol.SMTP: 25, MailProtocol.SUBMISSION: 587, MailProtocol.SUBMISSIONS: 465, MailProtocol.IMAP: 143,
    MailProtocol.IMAPS: 993, MailProtocol.POP3: 110, MailProtocol.POP3S: 995, MailProtocol.SIEVE: 4190,
}
NAMED_PORTS = {"smtp": 25, "submission": 587, "submissions": 465, "smtps": 465, "imap": 143, "imaps": 993,
               "pop3": 110, "pop3s": 995, "sieve": 4190, "managesieve": 4190}


def _expected_public_port(ctx: Context, ep: Entrypoint) -> tuple[int, str] | None:
    """(the port mail clients dial for this entrypoint, why), from what it reaches, else its name."""
    for route in ctx.model.paths.routes_on(ep):
        for lk in ctx.model.paths.links_of(route):
            port = STANDARD_PORTS.get(lk.listener.protocol)
            if port is not None:
                return port, f"it reaches {lk.listener.describe()}"
    words = [w for w in re.split(r"[^a-z0-9]+", ep.name.lower()) if w in NAMED_PORTS]
    if words:
        return NAMED_PORTS[words[-1]], f"its name says {words[-1]}"
    return None


def _helm_port_mismatches(ctx: Context):
    if not any(ep.product is Product.TRAEFIK for ep in ctx.model.entrypoints):
        return  # without Traefik, do not import its builder (start-up time)
    from mailproxy_lint.build.traefik import HELM_DEFAULTED_EXPOSED_PORT

    for ep in ctx.model.entrypoints:
        published = ep.exposed_port
        if ep.product is not Product.TRAEFIK or published is None or published.origin != HELM_DEFAULTED_EXPOSED_PORT:
            continue  # an exposedPort the user wrote is taken as meant
        expected = _expected_public_port(ctx, ep)
        if expected is None or expected[0] == published.value:
            continue
        port, why = expected
        yield ctx.finding(
            published.span or ep.span,
            f"the Traefik Helm chart publishes entrypoint {ep.name!r} on port {published.value}, because "
            f"`exposedPort` defaults to `port`; mail clients dial {port} ({why}), and find nothing there; "
            f"add `exposedPort: {port}` under ports.{ep.name}",
            related=[(ep.span, f"entrypoint {ep.name!r}")],
        )


def _traefik_hosts(ctx: Context) -> list:
    from mailproxy_lint.data.versions import identify

    return [h for h in ctx.model.hosts
            if h.image is not None and (info := identify(h.image.value)) is not None and info.product is Product.TRAEFIK]


def _compose_port_mismatches(ctx: Context):
    hosts = _traefik_hosts(ctx)
    for host in hosts:
        entrypoints = [ep for ep in ctx.model.entrypoints if ep.product is Product.TRAEFIK and
                       (ep.host == host.name or (ep.host is None and len(hosts) == 1)) and ep.port is not None]
        published = [p for p in host.published if p.protocol == "tcp" and p.container is not None]
        if not entrypoints or not published:
            continue
        listened = {ep.port for ep in entrypoints}
        unpublished = [ep for ep in entrypoints if ep.port in MAIL_PORTS
                       and not any(p.covers(ep.port) for p in published)]
        suggested: set[int] = set()
        for entry in published:
            first, last = entry.container
            if first != last or first not in MAIL_PORTS or first in listened:
                continue
            candidate = next((ep for ep in unpublished if id(ep) not in suggested), None)
            hint = ""
            if candidate is not None:
                suggested.add(id(candidate))
                outside = entry.host_port_for(first) or first
                hint = (f"; did you mean \"{outside}:{candidate.port}\", the port of entrypoint "
                        f"{candidate.name!r}?")
            yield ctx.finding(
                entry.span,
                f"compose publishes port {first} of the Traefik container {host.name!r}, but no Traefik entrypoint "
                f"listens on {first} (they listen on {', '.join(str(p) for p in sorted(listened))}), so connections "
                f"to it are refused{hint}",
                related=[(ep.span, f"entrypoint {ep.name!r}") for ep in entrypoints],
            )
        for ep in (ep for ep in unpublished if id(ep) not in suggested):
            yield ctx.finding(
                ep.span,
                f"Traefik entrypoint {ep.name!r} listens on mail port {ep.port}, but compose does not publish that "
                f"port of container {host.name!r}, so clients outside Docker cannot reach it; add \"{ep.port}:{ep.port}\""
                f" to its ports",
                related=[(p.span, "published ports") for p in published[:1]],
            )


@rule("MPL606", "published-port-mismatch", Severity.WARNING,
      summary="The port published to the world is not the port the Traefik entrypoint listens on",
      tags=("routing", "traefik"), facts=("TK04",))
def published_port_mismatch(ctx: Context):
    """## Why it matters
    Between the client and Traefik's entrypoint sits a port mapping: compose `ports:` or the
    Kubernetes Service the Traefik Helm chart renders. When the two disagree, clients reach a
    port nobody listens on. The Helm chart publishes each `ports.<name>` entry on its
    `exposedPort`, which defaults to `port`; charts run Traefik unprivileged on high ports
    (`port: 3325`), so without `exposedPort: 25` the Service offers 3325 and MX peers, which
    always dial 25, never arrive. In compose, `ports: "25:25"` on the Traefik container while
    the entrypoint is `--entrypoints.smtp.address=:2525` forwards port 25 into a container port
    where nothing listens, and an entrypoint whose port is not published is unreachable from
    outside Docker.

    ## Bad
    ```
    # Traefik Helm values
    ports:
      smtp:
        port: 3325
        expose:
          default: true
    ```

    ## Good
    ```
    ports:
      smtp:
        port: 3325
        exposedPort: 25
        expose:
          default: true
    ```

    ## Fix
    Publish each mail entrypoint on the port its clients use: Helm `exposedPort: 25` (587, 465,
    143, 993, ...), or compose `ports: "25:2525"` mapping the public port to the entrypoint's.
    The expected public port comes from the mail listener the entrypoint reaches, else from the
    entrypoint's name (`smtp`, `imaps`, ...); entrypoints that name no mail protocol are left alone.
    """
    yield from _helm_port_mismatches(ctx)
    yield from _compose_port_mismatches(ctx)
