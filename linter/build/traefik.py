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
  Every `v1` Service is also kept as a `KubeService` (type, ports, nodePorts, selector), since
  a LoadBalancer or NodePort Service exposes its ports outside the cluster.

Names are qualified the way Traefik qualifies them: a file-provider object is `name@file`, a
reference without `@` gets its own provider appended (so a label `service=smtp` does not reach
a file-defined `smtp@file`). Last, every Traefik server dialled through a `serversTransport`
gets the transport's PROXY setting: from v3.5.2 the transport's `proxyProtocol` replaces the
load balancer's even when it defines none (TK05). A transport defined outside the scanned files
leaves the server's PROXY header unknown (`proxy_unknown`).

Helm entrypoints carry the Service port the chart publishes (`exposedPort`, defaulting to
`port`, only when `expose` puts the port in a Service); entrypoints carry a written
`readTimeout`; routes carry rule forms only v2 reads and their CRD API group; servers carry a
written `loadBalancer.proxyProtocol` (deprecated from v3.5.2) even when a transport replaces it.

Static and dynamic files are read the same in TOML (`traefik.toml`, `[tcp.routers.x]`) and YAML:
both parsers give the same node classes. A static file whose file provider names the file itself
(`[providers.file] filename = "traefik.toml"`, or a template such as Traefik's own test fixtures
use) is also read as a dynamic file; otherwise its dynamic sections are ignored, as Traefik
ignores unknown top-level keys of a static file.

Not modelled: UDP, middlewares, TLS options, `weighted` services,
Kubernetes namespaces beyond name matching.
"""
from __future__ import annotations

import dataclasses
import re

from mailproxy_lint.build import Model
from mailproxy_lint.data.versions import identify
from mailproxy_lint.model import (
    Entrypoint,
    FileKind,
    KubeService,
    Product,
    ProxyHeader,
    ProxyTls,
    Route,
    ServicePort,
    Setting,
    SourceFile,
    Span,
    Upstream,
    UpstreamServer,
    Version,
)
from mailproxy_lint.parse import Parsed
from mailproxy_lint.parse.traefik_rule import matchers, parse_rule, sni_domain
from mailproxy_lint.parse.yamlfile import YamlMap, YamlNode, YamlScalar, YamlSeq, text_of

TRAEFIK = Product.TRAEFIK
INTERNAL_ENTRYPOINT = "traefik"
# from v3.5.2 a serversTransport's proxyProtocol replaces the load balancer's (facts-traefik §4.3)
TRANSPORT_DECIDES_PROXY = Version((3, 5, 2))
CRD_GROUPS = ("traefik.io/", "traefik.containo.us/")
# origin of a Helm Service port nobody wrote: the chart's `default $config.port $config.exposedPort`
HELM_DEFAULTED_EXPOSED_PORT = "Helm chart: without exposedPort the Service publishes `port`"
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
        if item.source.kind in (FileKind.TRAEFIK_DYNAMIC, FileKind.TRAEFIK_STATIC) and isinstance(
                item.tree.root, YamlMap) and (item.source.kind is FileKind.TRAEFIK_DYNAMIC
                                              or provides_itself(item.tree.root, item.source)):
            _File(item.source, model, defaults).read(item.tree.root, transports)
    k8s = [doc.root for item in parsed if item.source.kind is FileKind.KUBERNETES
           for doc in item.tree.documents if isinstance(doc.root, YamlMap)]
    k8s_sources = [item.source for item in parsed if item.source.kind is FileKind.KUBERNETES
                   for doc in item.tree.documents if isinstance(doc.root, YamlMap)]
    services = _k8s_services(k8s)
    model.kube_services.extend(s for root, source in zip(k8s, k8s_sources) if (s := _kube_service(root, source)))
    for root, source in zip(k8s, k8s_sources):
        if _is_ingressroutetcp(root):
            _ingressroutetcp(root, source, model, defaults, services)
    _record_label_proxy_protocol(model)
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
        _helm_image_version(root, source, model)


def _helm_image_version(root: YamlMap, source: SourceFile, model: Model) -> None:
    """Helm values `image.tag`: the Traefik release the chart deploys (floating tags as for images)."""
    image = root.get("image")
    tag = image.get("tag") if isinstance(image, YamlMap) else None
    if not isinstance(tag, YamlScalar) or not tag.as_text().strip() or (None, TRAEFIK) in model.versions:
        return
    info = identify(f"traefik:{tag.as_text().strip()}")
    found = info.versions.get(TRAEFIK) if info is not None else None
    if found is not None:
        version, how = found
        model.versions[(None, TRAEFIK)] = Setting(version, tag.span(source.path),
                                                  how.replace("image traefik:", "Helm values image.tag ", 1))


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
    model.entrypoints.append(Entrypoint(TRAEFIK, name, port, address, span, accepts_proxy=accepts,
                                        read_timeout=_read_timeout(node, path),
                                        exposed_port=_helm_exposed_port(node, port, path) if helm else None))


def _file_health_check(balancer: YamlMap, path: str) -> Setting[str] | None:
    """`loadBalancer.healthCheck` of a TCP service (Traefik v3.6+); the value is its `port`, if any."""
    for key, key_node, check in balancer.items():
        if key.lower() == "healthcheck":
            port = check.get_ci("port") if isinstance(check, YamlMap) else None
            return Setting(text_of(port) or "", key_node.span(path), "Traefik TCP loadBalancer.healthCheck")
    return None


def _read_timeout(node: YamlMap, path: str) -> Setting[float] | None:
    """`transport.respondingTimeouts.readTimeout` of an entrypoint (or Helm port), when written."""
    transport = node.get_ci("transport")
    timeouts = transport.get_ci("respondingTimeouts") if isinstance(transport, YamlMap) else None
    written = timeouts.get_ci("readTimeout") if isinstance(timeouts, YamlMap) else None
    seconds = go_duration_seconds(text_of(written) or "") if isinstance(written, YamlScalar) else None
    if seconds is None:
        return None
    return Setting(seconds, written.span(path), "entrypoint transport.respondingTimeouts.readTimeout")  # type: ignore[union-attr]


def _helm_exposed_port(node: YamlMap, port: int, path: str) -> Setting[int] | None:
    """The Service port the chart renders for a `ports.<name>` entry (§5.3), None when in no Service.

    `expose` is a map of Service names to booleans (chart v27 and later) or a boolean (older
    charts); a port without it is in no Service. `exposedPort` defaults to `port`.
    """
    expose = node.get("expose")
    exposed = _truthy(expose) or (isinstance(expose, YamlMap) and any(
        _truthy(value) for _, _, value in expose.items()))
    if not exposed:
        return None
    written = node.get("exposedPort")
    if isinstance(written, YamlScalar) and (text_of(written) or "").isdigit():
        return Setting(int(text_of(written)), written.span(path), "Helm ports exposedPort")  # type: ignore[arg-type]
    return Setting(port, node.get("port").span(path), HELM_DEFAULTED_EXPOSED_PORT)  # type: ignore[union-attr]


_GO_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_GO_DURATION_TERM = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")


def go_duration_seconds(text: str) -> float | None:
    """Seconds for a Traefik duration: a Go duration (`1m30s`, `600s`) or a bare integer (seconds)."""
    text = text.strip().strip('"')
    if re.fullmatch(r"\d+", text):
        return float(text)
    if not re.fullmatch(r"(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|ms|s|m|h))+", text):
        return None
    return sum(float(number) * _GO_DURATION_UNITS[unit] for number, unit in _GO_DURATION_TERM.findall(text))


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


def provides_itself(root: YamlMap, source: SourceFile) -> bool:
    """True when the static file's file provider reads this same file (`filename` names it or is a
    `{{ }}` template that cannot be resolved, as in Traefik's integration fixtures)."""
    providers = root.get_ci("providers")
    provider = providers.get_ci("file") if isinstance(providers, YamlMap) else None
    filename = text_of(provider.get_ci("filename")) if isinstance(provider, YamlMap) else None
    if not filename:
        return False
    return "{{" in filename or filename.replace("\\", "/").rsplit("/", 1)[-1] == source.path.rsplit("/", 1)[-1]


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


def v2_rule_forms(tree, path: str, line: int, column: int, rule_syntax: str | None = None) -> tuple[Setting[str], ...]:
    """Matchers written with several arguments (`HostSNI(`a`, `b`)`), each at its name.

    Traefik v2 reads them; v3 takes exactly one argument per matcher and disables the router
    (`unexpected number of parameters; got 2, expected 1`) unless it sets `ruleSyntax: v2`,
    in which case nothing is recorded (facts-traefik §2.1, §2.2). `line`/`column`: where the
    rule text starts in the file (matcher positions are relative to the rule).
    """
    if (rule_syntax or "").strip().lower() == "v2":
        return ()
    found = []
    for matcher in matchers(tree):
        if matcher.canonical is not None and len(matcher.arguments) > 1:
            row = line + matcher.line - 1
            col = matcher.column + (column - 1 if matcher.line == 1 else 0)
            span = Span(path, row, col, row, col + len(matcher.name))
            written = ", ".join(f"`{a.value}`" for a in matcher.arguments)
            found.append(Setting(f"{matcher.name}({written})", span,
                                 f"{matcher.canonical} with {len(matcher.arguments)} arguments"))
    return tuple(found)


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
        syntax = text_of(node.get_ci("ruleSyntax"))
        self.model.routes.append(Route(
            TRAEFIK, name, names or self.defaults, upstream, rule.span(self.path),
            v2_rule_forms=v2_rule_forms(tree, self.path, line, column, syntax),
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
                lb_proxy_protocol=send if proxy is not None else None,
            ))
        return Upstream(TRAEFIK, qualified, tuple(servers), node.span(self.path),
                        health_check=_file_health_check(balancer, self.path))

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


def _kube_service(root: YamlMap, source: SourceFile) -> KubeService | None:
    """A `v1` Service manifest as the model keeps it: type (default ClusterIP), ports, selector."""
    if text_of(root.get("kind")) != "Service" or (text_of(root.get("apiVersion")) or "") != "v1":
        return None
    path = source.path
    metadata, spec = root.get("metadata"), root.get("spec")
    name = text_of(metadata.get("name")) if isinstance(metadata, YamlMap) else None
    if not name:
        return None
    namespace = text_of(metadata.get("namespace"))  # type: ignore[union-attr]
    spec = spec if isinstance(spec, YamlMap) else None
    type_node = spec.get("type") if spec is not None else None
    service_type = Setting(text_of(type_node), type_node.span(path), "Service spec.type") if text_of(type_node) \
        else Setting("ClusterIP", root.get("kind").span(path), "Kubernetes default Service type")  # type: ignore[union-attr]
    ports = []
    for entry in _items(spec.get("ports") if spec is not None else None):
        target = text_of(entry.get("targetPort"))
        ports.append(ServicePort(
            text_of(entry.get("name")), _number(text_of(entry.get("port"))),
            _number(target) if target and target.isdigit() else target, _number(text_of(entry.get("nodePort"))),
            (text_of(entry.get("protocol")) or "TCP").upper(), entry.span(path)))
    selector = spec.get("selector") if spec is not None else None
    labels = {k: text_of(v) or "" for k, _, v in selector.items()} if isinstance(selector, YamlMap) else {}
    return KubeService(name, namespace, service_type, tuple(ports), root.get("kind").span(path), labels)  # type: ignore[union-attr]


def _number(text: str | None) -> int | None:
    return int(text) if text and text.isdigit() else None


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
    api_version = root.get("apiVersion")
    group = Setting((text_of(api_version) or "").split("/", 1)[0], api_version.span(path),  # type: ignore[union-attr]
                    "IngressRouteTCP apiVersion")
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
            api_group=group, v2_rule_forms=v2_rule_forms(tree, path, line, column, text_of(route_node.get("syntax"))),
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
        lb_proxy_protocol=send if proxy is not None else None,
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


def _record_label_proxy_protocol(model: Model) -> None:
    """Label-built servers: a written PROXY setting that sends came from `loadbalancer.proxyprotocol`.

    Compose decodes labels before this builder runs; the only written, sending PROXY setting a
    label server can carry is the load balancer's, which a transport may later replace.
    """
    for index, upstream in enumerate(model.upstreams):
        if upstream.product is not TRAEFIK:
            continue
        servers = tuple(
            dataclasses.replace(server, lb_proxy_protocol=server.send_proxy)
            if server.lb_proxy_protocol is None and server.send_proxy.span is not None
            and server.send_proxy.value.sends and _in_compose(model, server.send_proxy.span)
            else server
            for server in upstream.servers)
        model.upstreams[index] = dataclasses.replace(upstream, servers=servers)


def _in_compose(model: Model, span: Span) -> bool:
    return any(f.path == span.path and f.kind is FileKind.COMPOSE for f in model.files)


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
