"""Traefik outside compose: static files, the file provider, Kubernetes CRDs and Helm values.

Compose (`build/compose.py`) already read the Traefik container's flags and every container's
labels. This builder adds what Traefik reads from files (facts-traefik §3-§5, facts-formats
§6.3-§6.5):

* a static file (`traefik.yml`/`traefik.yaml`, FileKind.TRAEFIK_STATIC) -> `Entrypoint`s with
  their address, `proxyProtocol` (trustedIPs/insecure) and `asDefault`. Static sources are
  exclusive and a file wins over flags; compose already drops the flags of a container that
  mounts a static file, so the file's entrypoints are simply added here;
* Helm chart values (a TRAEFIK_STATIC YAML with a top-level `ports:` map) -> the entrypoints
  the chart renders as `--entryPoints.<name>.address=:<port>` (§5.3);
* the file provider (FileKind.TRAEFIK_DYNAMIC) -> TCP/HTTP routers, TCP services whose
  `servers[].address` is `host:port`, `proxyProtocol`, and `serversTransports`;
* Kubernetes manifests (FileKind.KUBERNETES) -> `IngressRouteTCP` routes (both API groups)
  whose services are Kubernetes `Service`s: a named port is resolved through the Service
  manifest to its `targetPort`; a name the Service lacks is recorded in `Route.unresolved`.

Names are qualified the way Traefik qualifies them: a file-provider object is `name@file`, a
reference without `@` gets its own provider appended (so a label `service=smtp` does not reach
a file-defined `smtp@file`). Last, every Traefik server dialled through a `serversTransport`
gets the transport's PROXY setting: from v3.5.2 the transport's `proxyProtocol` replaces the
load balancer's even when it defines none (TK05). A transport defined outside the scanned files
leaves the server's PROXY header unknown (`proxy_unknown`).

Not modelled: TOML static/dynamic files, UDP, middlewares, TLS options, `weighted` services,
Helm `expose`/`exposedPort` (published ports), Kubernetes namespaces beyond name matching.
"""
from __future__ import annotations

import dataclasses
import re

from mailproxy_lint.build import Model
from mailproxy_lint.model import (
    Entrypoint,
    FileKind,
    Product,
    ProxyHeader,
    ProxyTls,
    Route,
    Setting,
    SourceFile,
    Upstream,
    UpstreamServer,
    Version,
)
from mailproxy_lint.parse import Parsed
from mailproxy_lint.parse.traefik_rule import parse_rule, sni_domain
from mailproxy_lint.parse.yamlfile import YamlMap, YamlNode, YamlScalar, YamlSeq, text_of

TRAEFIK = Product.TRAEFIK
INTERNAL_ENTRYPOINT = "traefik"
# from v3.5.2 a serversTransport's proxyProtocol replaces the load balancer's (facts-traefik §4.3)
TRANSPORT_DECIDES_PROXY = Version((3, 5, 2))
CRD_GROUPS = ("traefik.io/", "traefik.containo.us/")
ROUTED_TCP_IDLE = Setting(None, origin="Traefik keeps routed TCP connections open")
_ADDRESS = re.compile(r"(?P<host>\[[^\]]*\]|[^:\[\]]*):(?P<port>\d+)(?:/(?P<proto>[A-Za-z]+))?")


def build(parsed: list[Parsed], model: Model) -> None:
    transports: dict[str, Setting[ProxyHeader]] = {}
    as_default: list[str] = []
    for item in parsed:
        if item.source.kind is FileKind.TRAEFIK_STATIC and isinstance(item.tree.root, YamlMap):
            _static(item.tree.root, item.source, model, as_default)
    defaults = _defaults(model, as_default)
    _fill_defaulted_routes(model, defaults)
    for item in parsed:
        if item.source.kind is FileKind.TRAEFIK_DYNAMIC and isinstance(item.tree.root, YamlMap):
            _File(item.source, model, defaults).read(item.tree.root, transports)
    k8s = [doc.root for item in parsed if item.source.kind is FileKind.KUBERNETES
           for doc in item.tree.documents if isinstance(doc.root, YamlMap)]
    k8s_sources = [item.source for item in parsed if item.source.kind is FileKind.KUBERNETES
                   for doc in item.tree.documents if isinstance(doc.root, YamlMap)]
    services = _k8s_services(k8s)
    for root, source in zip(k8s, k8s_sources):
        if _is_ingressroutetcp(root):
            _ingressroutetcp(root, source, model, defaults, services)
    _apply_transports(model, transports)


# --------------------------------------------------------------------------------------------
# Static configuration: traefik.yml entryPoints, Helm values ports
# --------------------------------------------------------------------------------------------


def _static(root: YamlMap, source: SourceFile, model: Model, as_default: list[str]) -> None:
    model.present.add(TRAEFIK)
    entrypoints = root.get_ci("entryPoints")
    if isinstance(entrypoints, YamlMap):
        for name, key, node in entrypoints.items():
            if isinstance(node, YamlMap):
                _static_entrypoint(name, key, node, source, model, as_default, helm=False)
    elif isinstance(root.get("ports"), YamlMap):
        for name, key, node in root.get("ports").items():  # type: ignore[union-attr]
            if isinstance(node, YamlMap) and node.get("port") is not None:
                _static_entrypoint(name, key, node, source, model, as_default, helm=True)


def _static_entrypoint(name: str, key: YamlNode, node: YamlMap, source: SourceFile, model: Model,
                       as_default: list[str], helm: bool) -> None:
    path = source.path
    if helm:
        port_node = node.get("port")
        port_text = text_of(port_node) or ""
        protocol = (text_of(node.get("protocol")) or "TCP")
        if protocol.upper() == "UDP" or not port_text.isdigit():
            return
        port, address, span = int(port_text), None, port_node.span(path)  # type: ignore[union-attr]
    else:
        address_node = node.get_ci("address")
        match = _ADDRESS.fullmatch(text_of(address_node) or "")
        if address_node is None:
            return
        if match and (match.group("proto") or "tcp").lower() == "udp":
            return
        port = int(match.group("port")) if match else None
        address = match.group("host").strip("[]") if match else text_of(address_node)
        span = address_node.span(path)
    if _truthy(node.get_ci("asDefault")):
        as_default.append(name)
    accepts = _accepts_proxy(node.get_ci("proxyProtocol"), path)
    model.entrypoints.append(Entrypoint(TRAEFIK, name, port, address, span, accepts_proxy=accepts))


def _accepts_proxy(node: YamlNode | None, path: str) -> Setting[ProxyHeader]:
    """Entrypoint proxyProtocol: trustedIPs or insecure accept v1 and v2 (the header is optional)."""
    if not isinstance(node, YamlMap):
        return Setting(ProxyHeader.NONE)
    trusted, insecure = node.get_ci("trustedIPs"), node.get_ci("insecure")
    if isinstance(trusted, (YamlSeq, YamlScalar)) and not (isinstance(trusted, YamlScalar) and trusted.is_null):
        return Setting(ProxyHeader.ANY, trusted.span(path), "Traefik entrypoint proxyProtocol.trustedIPs")
    if insecure is not None and _truthy(insecure):
        return Setting(ProxyHeader.ANY, insecure.span(path), "Traefik entrypoint proxyProtocol.insecure")
    return Setting(ProxyHeader.NONE, node.span(path),
                   "proxyProtocol without trustedIPs or insecure: Traefik refuses to start (no trusted IPs provided)")


def _truthy(node: YamlNode | None) -> bool:
    return isinstance(node, YamlScalar) and node.as_text().lower() == "true"


def _defaults(model: Model, as_default: list[str]) -> tuple[str, ...]:
    """Where a router without entryPoints lands: the asDefault ones (v3), else all TCP ones."""
    if as_default:
        return tuple(as_default)
    return tuple(dict.fromkeys(e.name for e in model.entrypoints
                               if e.product is TRAEFIK and e.name != INTERNAL_ENTRYPOINT))


def _fill_defaulted_routes(model: Model, defaults: tuple[str, ...]) -> None:
    """Label routers without entrypoints whose defaults only a static file defines."""
    for index, route in enumerate(model.routes):
        if route.product is TRAEFIK and route.entrypoints_defaulted and not route.entrypoints and defaults:
            model.routes[index] = dataclasses.replace(route, entrypoints=defaults)


# --------------------------------------------------------------------------------------------
# File provider
# --------------------------------------------------------------------------------------------


def qualify(name: str, provider: str) -> str:
    """Traefik's qualified name: a bare reference belongs to the referencing provider.

    Docker objects stay bare, as the compose builder names them.
    """
    name = name.strip()
    if "@" not in name:
        return name if provider == "docker" else f"{name}@{provider}"
    return name.removesuffix("@docker")


class _File:
    """One file-provider file: routers, services and transports under `tcp:` (and HTTP routers)."""

    def __init__(self, source: SourceFile, model: Model, defaults: tuple[str, ...]) -> None:
        self.source, self.model, self.defaults = source, model, defaults
        self.path = source.path

    def read(self, root: YamlMap, transports: dict[str, Setting[ProxyHeader]]) -> None:
        self.model.present.add(TRAEFIK)
        tcp, http = root.get_ci("tcp"), root.get_ci("http")
        if isinstance(tcp, YamlMap):
            for name, key, node in _entries(tcp.get_ci("serversTransports")):
                proxy = node.get_ci("proxyProtocol")
                transports[f"{name}@file"] = self._version(proxy, f"serversTransport {name!r}") if proxy is not None \
                    else Setting(ProxyHeader.NONE, key.span(self.path),
                                 f"serversTransport {name!r} defines no proxyProtocol, which replaces the load "
                                 "balancer's (Traefik 3.5.2 and later)")
            for name, _, node in _entries(tcp.get_ci("services")):
                upstream = self._service(name, node)
                if upstream is not None:
                    self.model.upstreams.append(upstream)
            for name, key, node in _entries(tcp.get_ci("routers")):
                self._router(name, key, node, "tcp")
        if isinstance(http, YamlMap):
            for name, key, node in _entries(http.get_ci("routers")):
                self._router(name, key, node, "http")

    def _router(self, name: str, key: YamlNode, node: YamlMap, layer: str) -> None:
        rule = node.get_ci("rule")
        if not isinstance(rule, YamlScalar) or not rule.as_text().strip():
            return  # "router has no rule": Traefik drops it
        line, column = rule.position_of(0)
        tree, problem = parse_rule(rule.as_text(), self.path, line=line, column=column)
        if problem is not None:
            self.model.problems.append(problem)
            return
        eps_node = node.get_ci("entryPoints")
        names = tuple(s.as_text().strip() for s in _scalars(eps_node) if s.as_text().strip())
        service = node.get_ci("service")
        upstream = qualify(text_of(service), "file") if layer == "tcp" and text_of(service) else None
        domain = sni_domain(tree) if layer == "tcp" else None
        self.model.routes.append(Route(
            TRAEFIK, name, names or self.defaults, upstream, rule.span(self.path),
            tls=_route_tls(node.get_ci("tls"), layer, self.path),
            sni=Setting(domain, rule.span(self.path), "HostSNI in the router rule") if domain is not None else None,
            layer=Setting(layer, key.span(self.path), f"Traefik {layer} router (file provider)"),
            idle_timeout=ROUTED_TCP_IDLE if layer == "tcp" else Setting(None),
            entrypoints_defaulted=eps_node is None,
            upstream_span=service.span(self.path) if service is not None else None,
            entrypoints_span=eps_node.span(self.path) if eps_node is not None else None,
        ))

    def _service(self, name: str, node: YamlMap) -> Upstream | None:
        balancer = node.get_ci("loadBalancer")
        if not isinstance(balancer, YamlMap):
            return None  # weighted services are not modelled
        qualified = f"{name}@file"
        proxy = balancer.get_ci("proxyProtocol")
        send = self._version(proxy, "loadBalancer.proxyProtocol") if proxy is not None \
            else Setting(ProxyHeader.NONE, origin="Traefik sends no PROXY header by default")
        transport_node = balancer.get_ci("serversTransport")
        transport = None
        if text_of(transport_node):
            transport = Setting(qualify(text_of(transport_node), "file"), transport_node.span(self.path),  # type: ignore[union-attr,arg-type]
                                "loadBalancer.serversTransport")
        servers = []
        for item in _items(balancer.get_ci("servers")):
            address = item.get_ci("address")
            host, port = _host_port(text_of(address) or "")
            tls = item.get_ci("tls")
            servers.append(UpstreamServer(
                TRAEFIK, qualified, text_of(address) or qualified, host, port,
                (address or item).span(self.path), send,
                Setting(_truthy(tls), tls.span(self.path), "servers[].tls") if tls is not None else Setting(False),
                transport=transport, proxy_unknown=transport is not None,
            ))
        return Upstream(TRAEFIK, qualified, tuple(servers), node.span(self.path))

    def _version(self, node: YamlNode, what: str) -> Setting[ProxyHeader]:
        return proxy_version(node, what, self.path)


def proxy_version(node: YamlNode, what: str, path: str) -> Setting[ProxyHeader]:
    """A `proxyProtocol: {version: N}` block: v2 without a version; NONE for an unknown version."""
    version = node.get_ci("version") if isinstance(node, YamlMap) else None
    if version is None:
        return Setting(ProxyHeader.V2, node.span(path), f"{what} without a version: Traefik sends v2")
    header = {"1": ProxyHeader.V1, "2": ProxyHeader.V2}.get((text_of(version) or "").strip())
    if header is None:
        return Setting(ProxyHeader.NONE, version.span(path), f"unknown proxyProtocol version in {what}")
    return Setting(header, version.span(path), f"{what}.version")


def _route_tls(node: YamlNode | None, layer: str, path: str) -> Setting[ProxyTls]:
    if node is None or (isinstance(node, YamlScalar) and node.as_text().lower() in ("false", "")
                        and not node.is_null):
        return Setting(ProxyTls.NONE, origin="Traefik router without tls")
    if layer == "tcp" and isinstance(node, YamlMap) and _truthy(node.get_ci("passthrough")):
        return Setting(ProxyTls.PASSTHROUGH, node.get_ci("passthrough").span(path), "tls.passthrough")  # type: ignore[union-attr]
    return Setting(ProxyTls.TERMINATE, node.span(path), "Traefik terminates TLS on this router")


def _entries(node: YamlNode | None):
    """(name, key, value map) of a map of named objects."""
    if isinstance(node, YamlMap):
        for name, key, value in node.items():
            if isinstance(value, YamlMap):
                yield name, key, value


def _items(node: YamlNode | None) -> list[YamlMap]:
    return [i for i in node.items if isinstance(i, YamlMap)] if isinstance(node, YamlSeq) else []


def _scalars(node: YamlNode | None) -> list[YamlScalar]:
    if isinstance(node, YamlSeq):
        return [i for i in node.items if isinstance(i, YamlScalar)]
    if isinstance(node, YamlScalar) and not node.is_null:
        return [YamlScalar(node.line, node.column, node.end_line, node.end_column, node.tag, part, node.style)
                for part in node.as_text().split(",")]
    return []


def _host_port(address: str) -> tuple[str | None, int | None]:
    match = _ADDRESS.fullmatch(address.strip())
    if not match:
        return (address or None), None
    return (match.group("host").strip("[]") or None), int(match.group("port"))


# --------------------------------------------------------------------------------------------
# Kubernetes: Services and IngressRouteTCP
# --------------------------------------------------------------------------------------------


def _k8s_services(roots: list[YamlMap]) -> dict[str, YamlMap]:
    """Service manifests by name (namespaces are not told apart)."""
    found = {}
    for root in roots:
        if text_of(root.get("kind")) == "Service" and (text_of(root.get("apiVersion")) or "") == "v1":
            name = text_of(root.get("metadata").get("name")) if isinstance(root.get("metadata"), YamlMap) else None
            if name:
                found[name] = root
    return found


def _is_ingressroutetcp(root: YamlMap) -> bool:
    return text_of(root.get("kind")) == "IngressRouteTCP" and (text_of(root.get("apiVersion")) or "").startswith(CRD_GROUPS)


def _ingressroutetcp(root: YamlMap, source: SourceFile, model: Model, defaults: tuple[str, ...],
                     services: dict[str, YamlMap]) -> None:
    path = source.path
    model.present.add(TRAEFIK)
    metadata, spec = root.get("metadata"), root.get("spec")
    if not isinstance(spec, YamlMap):
        return
    name = (text_of(metadata.get("name")) if isinstance(metadata, YamlMap) else None) or "ingressroutetcp"
    eps_node = spec.get("entryPoints")
    names = tuple(s.as_text() for s in _scalars(eps_node) if s.as_text())
    tls = _crd_tls(spec.get("tls"), path)
    routes = _items(spec.get("routes"))
    for index, route_node in enumerate(routes):
        match = route_node.get("match")
        if not isinstance(match, YamlScalar) or not match.as_text().strip():
            continue  # "Empty match rule": skipped
        line, column = match.position_of(0)
        tree, problem = parse_rule(match.as_text(), path, line=line, column=column)
        if problem is not None:
            model.problems.append(problem)
            continue
        route_name = name if len(routes) == 1 else f"{name}[{index}]"
        servers, unresolved = [], []
        for item in _items(route_node.get("services")):
            server, missing = _crd_server(item, route_name, services, path)
            servers.append(server)
            unresolved.extend(missing)
        domain = sni_domain(tree)
        model.upstreams.append(Upstream(TRAEFIK, route_name, tuple(servers), route_node.span(path)))
        model.routes.append(Route(
            TRAEFIK, route_name, names or defaults, route_name, match.span(path), tls=tls,
            sni=Setting(domain, match.span(path), "HostSNI in the route match") if domain is not None else None,
            layer=Setting("tcp", root.get("kind").span(path), "Traefik IngressRouteTCP"),  # type: ignore[union-attr]
            idle_timeout=ROUTED_TCP_IDLE, entrypoints_defaulted=eps_node is None,
            entrypoints_span=eps_node.span(path) if eps_node is not None else None,
            unresolved=tuple(unresolved),
        ))


def _crd_tls(node: YamlNode | None, path: str) -> Setting[ProxyTls]:
    """`spec.tls` present: every route of the resource is a TLS router."""
    if not isinstance(node, YamlMap):
        return Setting(ProxyTls.NONE, origin="IngressRouteTCP without spec.tls")
    if _truthy(node.get("passthrough")):
        return Setting(ProxyTls.PASSTHROUGH, node.get("passthrough").span(path), "spec.tls.passthrough")  # type: ignore[union-attr]
    return Setting(ProxyTls.TERMINATE, node.span(path), "IngressRouteTCP spec.tls: Traefik terminates TLS")


def _crd_server(item: YamlMap, upstream: str, services: dict[str, YamlMap],
                path: str) -> tuple[UpstreamServer, list[Setting[str]]]:
    service_name = text_of(item.get("name")) or ""
    port_node = item.get("port")
    port_text = text_of(port_node) or ""
    port, missing = _resolve_port(service_name, port_text, services.get(service_name))
    unresolved = []
    if missing is not None and port_node is not None:
        unresolved.append(Setting(missing, port_node.span(path), "IngressRouteTCP services[].port"))
    proxy = item.get("proxyProtocol")
    send = proxy_version(proxy, "services[].proxyProtocol", path) if proxy is not None \
        else Setting(ProxyHeader.NONE, origin="Traefik sends no PROXY header by default")
    transport_node = item.get("serversTransport")
    transport = None
    if text_of(transport_node):
        transport = Setting(qualify(text_of(transport_node), "kubernetescrd"), transport_node.span(path),  # type: ignore[union-attr,arg-type]
                            "services[].serversTransport")
    tls = item.get("tls")
    server = UpstreamServer(
        TRAEFIK, upstream, f"{service_name}:{port_text}", service_name or None, port,
        (port_node or item).span(path), send,
        Setting(_truthy(tls), tls.span(path), "services[].tls") if tls is not None else Setting(False),
        transport=transport, proxy_unknown=transport is not None,
    )
    return server, unresolved


def _resolve_port(service_name: str, port: str, manifest: YamlMap | None) -> tuple[int | None, str | None]:
    """(the container port the route dials, what is missing) for an IngressRouteTCP service port.

    With the Service manifest: its `targetPort` when numeric (absent = the port itself); a port
    name or number the Service lacks is missing. Without it: a number is taken as is.
    """
    if manifest is None:
        return (int(port) if port.isdigit() else None), None
    spec = manifest.get("spec")
    entries = _items(spec.get("ports")) if isinstance(spec, YamlMap) else []
    for entry in entries:
        if port == (text_of(entry.get("name")) or "") or port == (text_of(entry.get("port")) or ""):
            target = text_of(entry.get("targetPort")) or text_of(entry.get("port")) or ""
            return (int(target) if target.isdigit() else None), None
    return None, f"port {port!r} of Kubernetes Service {service_name!r}"


# --------------------------------------------------------------------------------------------
# serversTransport precedence (TK05)
# --------------------------------------------------------------------------------------------


def _apply_transports(model: Model, transports: dict[str, Setting[ProxyHeader]]) -> None:
    """Give servers dialled through a known transport the transport's PROXY setting."""
    version = model.version_of(TRAEFIK, None)
    transport_decides = version is None or version.value >= TRANSPORT_DECIDES_PROXY
    for index, upstream in enumerate(model.upstreams):
        if upstream.product is not TRAEFIK or not any(s.transport for s in upstream.servers):
            continue
        servers = []
        for server in upstream.servers:
            known = transports.get(server.transport.value) if server.transport else None
            if known is not None:
                send = known if transport_decides else server.send_proxy
                server = dataclasses.replace(server, send_proxy=send, proxy_unknown=False)
            servers.append(server)
        model.upstreams[index] = dataclasses.replace(upstream, servers=tuple(servers))
