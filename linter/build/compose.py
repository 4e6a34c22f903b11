"""Compose files -> hosts, image versions, docker-mailserver platforms, and Traefik's config.

Every compose service becomes a `Host` (its service name plus container_name, hostname and
network aliases, and static addresses). Image tags give versions (`data/versions.py`); a
docker-mailserver image becomes a `Platform` whose stock Postfix/Dovecot the later builders
overlay. Traefik is configured in compose in two places, both read here:

* the Traefik container's `command:` flags (or `TRAEFIK_*` environment) -> `Entrypoint`s;
* the `traefik.*` labels of every container -> TCP/HTTP `Route`s and TCP `Upstream`s.

Labels are decoded the way Traefik's Docker provider does it (facts-traefik §1): keys are
case-insensitive below the `traefik` root, router/service names merge case-insensitively, a
decode error (unknown field, bad boolean) drops every label of that container, and the §1.4
defaults apply: a router without `service` uses the container's only service or an automatic
one, a service without `server.port` dials the container's lowest exposed port, a router
without `entrypoints` lands on all (or the `asDefault`) entrypoints, `proxyProtocol` without a
version sends v2. Decode errors and rules that do not parse are `ParseProblem`s at the label,
because Traefik refuses them as it would refuse a malformed file.

Traefik static files (traefik.yml) and the file provider are other builders' work; when a
static file is mounted into the Traefik container, its command-line flags are ignored (Traefik
reads one static source only, facts-traefik §3.5), so none are modelled.
"""
from __future__ import annotations

import posixpath
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from mailproxy_lint.build import Model, Platform
from mailproxy_lint.data.versions import ImageInfo, identify
from mailproxy_lint.model import (
    Entrypoint,
    FileKind,
    Host,
    ParseProblem,
    Product,
    ProxyHeader,
    ProxyTls,
    Route,
    Setting,
    SourceFile,
    Span,
    Upstream,
    UpstreamServer,
)
from mailproxy_lint.parse import Parsed
from mailproxy_lint.parse.traefik_rule import parse_rule, sni_domain
from mailproxy_lint.parse.yamlfile import YamlMap, YamlNode, YamlScalar, YamlSeq, text_of

DMS_CONFIG_MOUNT = "/tmp/docker-mailserver"
# where Traefik's file loader finds a static configuration file (facts-traefik §3.5; the
# image's working directory is /)
TRAEFIK_STATIC_FILES = {f"{d}/traefik.{ext}" for d in ("/etc/traefik", "") for ext in ("toml", "yml", "yaml")}
TRAEFIK_INTERNAL_ENTRYPOINT = "traefik"
ROUTED_TCP_IDLE = Setting(None, origin="Traefik keeps routed TCP connections open")


def build(parsed: list[Parsed], model: Model) -> None:
    services = [s for item in parsed if item.source.kind is FileKind.COMPOSE for s in _services(item)]
    _name_hosts(services)
    for service in services:
        model.hosts.append(_host(service))
        _record_image(service, model)
    statics = [_traefik_static(s) for s in services if _runs_traefik(s)]
    for static in statics:
        model.present.add(Product.TRAEFIK)
        model.entrypoints.extend(static.entrypoints)
    defaults = _default_entrypoints(statics)
    exposed_by_default = all(s.exposed_by_default for s in statics)
    upstream_index: dict[tuple[str, str], int] = {}
    for service in services:
        _build_labels(service, model, defaults, exposed_by_default, upstream_index)


def _name_hosts(services: list[Service]) -> None:
    folders: dict[str, set[str]] = {}
    for service in services:
        folders.setdefault(service.name, set()).add(posixpath.dirname(service.source.path))
    for service in services:
        folder = posixpath.dirname(service.source.path)
        shared = len(folders[service.name]) > 1
        service.host_id = f"{folder}/{service.name}" if shared and folder else service.name


# --------------------------------------------------------------------------------------------
# Reading compose services
# --------------------------------------------------------------------------------------------


@dataclass
class Service:
    """One compose service, with what every later step needs about it."""

    name: str
    node: YamlMap
    key: YamlNode
    source: SourceFile
    project: str | None  # compose project name (top-level `name:` or the directory name)
    image: YamlScalar | None = None
    info: ImageInfo | None = None
    # The Host name: the service name, qualified by its folder when another folder of the tree
    # has a service of the same name (several deployments in one repository).
    host_id: str = ""

    def span(self, node: YamlNode) -> Span:
        return node.span(self.source.path)


def _services(item: Parsed) -> list[Service]:
    services = []
    for document in item.tree.documents:
        root = document.root
        if not isinstance(root, YamlMap) or not isinstance(root.get("services"), YamlMap):
            continue
        project = _project_name(item.source, text_of(root.get("name")))
        for name, key, node in root.get("services").items():  # type: ignore[union-attr]
            if not isinstance(node, YamlMap):
                continue
            image = node.get("image")
            image = image if isinstance(image, YamlScalar) and image.as_text() else None
            info = identify(image.as_text()) if image is not None else None
            services.append(Service(name, node, key, item.source, project, image, info))
    return services


def _project_name(source: SourceFile, declared: str | None) -> str | None:
    """Compose's project name: `name:`, else the file's directory, lower-cased, [a-z0-9_-] only."""
    if declared is None:
        folder = Path(source.abspath).parent.name if source.abspath else Path(source.path).parent.name
        declared = folder or Path.cwd().name
    cleaned = re.sub(r"[^a-z0-9_-]", "", declared.lower())
    return cleaned or None


def _scalars(node: YamlNode | None) -> list[YamlScalar]:
    """The scalar items of a list (or the scalar itself)."""
    if isinstance(node, YamlSeq):
        return [item for item in node.items if isinstance(item, YamlScalar)]
    return [node] if isinstance(node, YamlScalar) else []


# --------------------------------------------------------------------------------------------
# Hosts, versions, docker-mailserver
# --------------------------------------------------------------------------------------------


def _host(service: Service) -> Host:
    node = service.node
    aliases = set()
    container_name = text_of(node.get("container_name"))
    hostname = text_of(node.get("hostname"))
    domainname = text_of(node.get("domainname"))
    for alias in (container_name, hostname, f"{hostname}.{domainname}" if hostname and domainname else None):
        if alias:
            aliases.add(alias)
    addresses = []
    networks = node.get("networks")
    if isinstance(networks, YamlMap):
        for _, _, network in networks.items():
            if not isinstance(network, YamlMap):
                continue
            aliases.update(a.as_text() for a in _scalars(network.get("aliases")) if a.as_text())
            for key in ("ipv4_address", "ipv6_address"):
                address = network.get(key)
                if isinstance(address, YamlScalar) and address.as_text():
                    addresses.append(Setting(address.as_text(), service.span(address), f"compose {key}"))
    aliases.add(service.name)
    aliases.discard(service.host_id)
    image = Setting(service.image.as_text(), service.span(service.image), "compose image") if service.image else None
    return Host(service.host_id, frozenset(aliases), tuple(addresses), image, service.span(service.key))


def _record_image(service: Service, model: Model) -> None:
    info = service.info
    if info is None or service.image is None:
        return
    span = service.span(service.image)
    for product, (version, how) in info.versions.items():
        model.versions[(service.host_id, product)] = Setting(version, span, how)
    if info.product is Product.DOCKER_MAILSERVER:
        version = model.versions.get((service.host_id, Product.DOCKER_MAILSERVER))
        model.platforms.append(Platform("docker-mailserver", service.host_id, version, _dms_config_dir(service),
                                        _environment(service), span))
        model.present.update({Product.POSTFIX, Product.DOVECOT})


def _environment(service: Service) -> dict[str, Setting[str]]:
    """`environment:` in list (`KEY=value`) or mapping form; `env_file` is not read."""
    env: dict[str, Setting[str]] = {}
    node = service.node.get("environment")
    if isinstance(node, YamlSeq):
        for item in _scalars(node):
            name, equals, value = item.as_text().partition("=")
            if equals and name:  # `- KEY` alone takes the value from the shell: unknown
                env[name] = Setting(value, service.span(item), "compose environment")
    elif isinstance(node, YamlMap):
        for name, key, value in node.items():
            if isinstance(value, YamlScalar) and not value.is_null:
                span = Span(service.source.path, key.line, key.column, value.end_line, value.end_column)
                env[name] = Setting(value.as_text(), span, "compose environment")
    return env


def _volumes(service: Service) -> list[tuple[str, str]]:
    """(host source, container target) of each bind mount; named volumes are left out."""
    mounts = []
    for item in service.node.get("volumes").items if isinstance(service.node.get("volumes"), YamlSeq) else []:
        if isinstance(item, YamlScalar):
            parts = item.as_text().split(":")
            if len(parts) >= 2:
                mounts.append((parts[0], parts[1]))
        elif isinstance(item, YamlMap):
            source, target = text_of(item.get("source")), text_of(item.get("target"))
            if source and target and (text_of(item.get("type")) or "bind") == "bind":
                mounts.append((source, target))
    return [(s, t) for s, t in mounts if s.startswith((".", "/")) and "$" not in s]


def _dms_config_dir(service: Service) -> str | None:
    """Display path of the host directory mounted at /tmp/docker-mailserver.

    Without a directory mount, the directory of files mounted one by one into it
    (`./config/postfix-main.cf:/tmp/docker-mailserver/postfix-main.cf`).
    """
    mounts = [(s, t.rstrip("/")) for s, t in _volumes(service)]
    for source, target in mounts:
        if target == DMS_CONFIG_MOUNT:
            return _display_path(service.source, source)
    for source, target in mounts:
        if posixpath.dirname(target) == DMS_CONFIG_MOUNT:
            return posixpath.dirname(_display_path(service.source, source)) or "."
    return None


def _display_path(source: SourceFile, host_path: str) -> str:
    """A host path of the compose file as findings show paths (see load.display_path)."""
    if host_path.startswith("/"):
        from mailproxy_lint.load import display_path

        return display_path(Path(host_path))
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(source.path), host_path))
    return joined


# --------------------------------------------------------------------------------------------
# Traefik static configuration from `command:` flags or TRAEFIK_* environment
# --------------------------------------------------------------------------------------------


@dataclass
class TraefikStatic:
    host: str
    entrypoints: list[Entrypoint] = field(default_factory=list)
    as_default: set[str] = field(default_factory=set)  # v3 `asDefault: true` entrypoints
    exposed_by_default: bool = True


@dataclass
class _Option:
    key: str  # lower-cased dotted path without leading dashes: entrypoints.smtp.address
    name_key: str  # the same path with the original case (map keys keep their spelling)
    value: str
    span: Span


def _traefik_static(service: Service) -> TraefikStatic:
    static = TraefikStatic(service.host_id)
    options = _static_options(service)
    entrypoints: dict[str, dict[str, _Option]] = {}
    spellings: dict[str, str] = {}
    for option in options:
        parts = option.key.split(".")
        if option.key == "providers.docker.exposedbydefault":
            static.exposed_by_default = _parse_bool(option.value) is not False
        if len(parts) >= 3 and parts[0] == "entrypoints":
            name = spellings.setdefault(parts[1], option.name_key.split(".")[1])  # first spelling wins
            entrypoints.setdefault(name, {})[".".join(parts[2:])] = option
    for name, fields in entrypoints.items():
        entrypoint = _entrypoint(name, fields, service.host_id)
        if entrypoint is not None:
            static.entrypoints.append(entrypoint)
            if "asdefault" in fields and _parse_bool(fields["asdefault"].value):
                static.as_default.add(name)
    return static


def _runs_traefik(service: Service) -> bool:
    """A traefik image, or (snippets with the image elided) an unknown image with Traefik's flags."""
    if service.info is not None:
        return service.info.product is Product.TRAEFIK
    return any(f.key.startswith(("entrypoints.", "providers.")) for f in _command_flags(service))


def _static_options(service: Service) -> list[_Option]:
    """Flags, else TRAEFIK_* variables; nothing when a static file is used instead."""
    if any(target in TRAEFIK_STATIC_FILES for _, target in _volumes(service)):
        return []
    flags = _command_flags(service)
    if any(f.key == "configfile" for f in flags):
        return []
    return flags or _environment_options(service)


def _command_flags(service: Service) -> list[_Option]:
    command = service.node.get("command")
    words: list[tuple[str, Span]] = []
    if isinstance(command, YamlSeq):
        words = [(item.as_text(), service.span(item)) for item in _scalars(command)]
    elif isinstance(command, YamlScalar):
        words = _split_command(command, service.source.path)
    options = []
    for word, span in words:
        if word in ("-", "--"):
            break  # ends flag parsing
        if not word.startswith("-"):
            continue
        name_key, equals, value = word.lstrip("-").partition("=")
        options.append(_Option(name_key.lower(), name_key, value if equals else "true", span))
    return options


def _split_command(node: YamlScalar, path: str) -> list[tuple[str, Span]]:
    """A shell-form `command:` string split like compose does, each word with its position."""
    try:
        words = shlex.split(node.as_text())
    except ValueError:
        words = node.as_text().split()
    result, cursor = [], 0
    for word in words:
        found = node.as_text().find(word.split("=", 1)[0], cursor)
        index = found if found >= 0 else cursor
        cursor = index + 1
        line, column = node.position_of(index)
        result.append((word, Span(path, line, column)))
    return result


def _environment_options(service: Service) -> list[_Option]:
    options = []
    for name, setting in _environment(service).items():
        if name.upper().startswith("TRAEFIK_"):
            key = name[len("TRAEFIK_"):].lower().replace("_", ".")
            options.append(_Option(key, key, setting.value, setting.span))  # type: ignore[arg-type]
    return options


_ADDRESS = re.compile(r"(?P<host>\[[^\]]*\]|[^:\[\]]*):(?P<port>\d+)(?:/(?P<proto>[A-Za-z]+))?")


def _entrypoint(name: str, fields: dict[str, _Option], host: str) -> Entrypoint | None:
    address = fields.get("address")
    if address is None:
        return None  # no listener without an address
    match = _ADDRESS.fullmatch(address.value)
    if match and (match.group("proto") or "tcp").lower() == "udp":
        return None  # UDP entrypoints carry no TCP routers and are never defaults
    port = int(match.group("port")) if match else None
    listen = match.group("host").strip("[]") if match else address.value
    proxy = [fields[k] for k in ("proxyprotocol.trustedips", "proxyprotocol.insecure", "proxyprotocol") if k in fields]
    accepts = Setting(ProxyHeader.NONE)
    if proxy and (proxy[0].key.endswith("trustedips") or _parse_bool(proxy[0].value)):
        origin = "Traefik entrypoint proxyProtocol (v1 and v2, header optional)"
        if proxy[0].key == "entrypoints." + name.lower() + ".proxyprotocol":
            origin = "proxyProtocol without trustedIPs or insecure: Traefik refuses to start (no trusted IPs provided)"
        accepts = Setting(ProxyHeader.ANY, proxy[0].span, origin)
    return Entrypoint(Product.TRAEFIK, name, port, listen, address.span, accepts_proxy=accepts, host=host)


def _default_entrypoints(statics: list[TraefikStatic]) -> tuple[str, ...]:
    """Where a router without `entrypoints` lands: the `asDefault` ones (v3), else all TCP ones."""
    marked = [n for s in statics for n in sorted(s.as_default)]
    if marked:
        return tuple(marked)
    return tuple(e.name for s in statics for e in s.entrypoints if e.name != TRAEFIK_INTERNAL_ENTRYPOINT)


# --------------------------------------------------------------------------------------------
# Traefik labels
# --------------------------------------------------------------------------------------------


@dataclass
class Label:
    key: str
    value: str
    span: Span  # the whole label: the list item, or key through value in mapping form
    value_node: YamlScalar
    value_index: int  # where the value starts in value_node.text

    def value_position(self) -> tuple[int, int]:
        return self.value_node.position_of(self.value_index)


@dataclass
class _Object:
    """A router or service as decoded from labels: its fields (lower-cased paths) -> label."""

    name: str
    fields: dict[str, Label] = field(default_factory=dict)
    first: Label | None = None


@dataclass
class _Decoded:
    enabled: bool | None = None  # traefik.enable, when given
    enable_label: Label | None = None
    routers: dict[str, dict[str, _Object]] = field(default_factory=lambda: {"tcp": {}, "http": {}})
    services: dict[str, _Object] = field(default_factory=dict)  # TCP services
    problem: ParseProblem | None = None


_DYNAMIC_ROOTS = ("traefik.http.", "traefik.tcp.", "traefik.udp.", "traefik.tls.stores.default")
_TCP_SECTIONS = {"routers", "services", "middlewares", "serverstransports"}
_HTTP_SECTIONS = {"routers", "services", "middlewares", "serverstransports"}
# Field paths Traefik knows (facts-traefik §1.2); `None` children: anything below is accepted.
_ROUTER_FIELDS: dict[str, object] = {
    "rule": {}, "entrypoints": {}, "service": {}, "middlewares": {}, "priority": {}, "rulesyntax": {},
    "tls": {"passthrough": {}, "certresolver": {}, "options": {}, "domains": None},
}
_SERVICE_FIELDS: dict[str, object] = {
    "loadbalancer": {
        "server": {"port": {}, "tls": {}, "address": {}, "weight": {}},
        "proxyprotocol": {"version": {}},
        "terminationdelay": {}, "serverstransport": {}, "healthcheck": None,
    },
    "weighted": None,
}


def _labels(service: Service) -> list[Label]:
    """`labels:` and `deploy.labels:`, list (`- k=v`) or mapping form, in file order."""
    deploy = service.node.get("deploy")
    nodes = [service.node.get("labels"), deploy.get("labels") if isinstance(deploy, YamlMap) else None]
    labels = []
    for node in nodes:
        if isinstance(node, YamlSeq):
            for item in _scalars(node):
                key, _, value = item.as_text().partition("=")
                labels.append(Label(key.strip(), value, service.span(item), item, len(key) + 1))
        elif isinstance(node, YamlMap):
            for key, key_node, value in node.items():
                if isinstance(value, YamlScalar):
                    span = Span(service.source.path, key_node.line, key_node.column, value.end_line, value.end_column)
                    labels.append(Label(key, value.as_text(), span, value, 0))
    for label in labels:
        label.value = label.value.replace("$$", "$")  # compose interpolation escape
    return labels


def _decode(labels: list[Label]) -> _Decoded:
    decoded = _Decoded()
    # Traefik walks label keys in byte order, so the upper-case spelling of a name wins.
    for label in sorted(labels, key=lambda lb: lb.key):
        lower = label.key.lower()
        if lower.startswith("traefik.enable"):
            if lower != "traefik.enable":
                decoded.problem = _decode_problem(label, label.key.split(".", 1)[1], "enable")
                return decoded
            decoded.enabled, decoded.enable_label = _parse_bool(label.value), label
            if decoded.enabled is None:
                decoded.problem = _value_problem(label, "a boolean (true or false)")
                return decoded
            continue
        if not lower.startswith(_DYNAMIC_ROOTS):
            continue
        if not label.key.startswith("traefik."):
            decoded.problem = _root_problem(label)
            return decoded
        problem = _decode_dynamic(label, decoded)
        if problem is not None:
            decoded.problem = problem
            return decoded
    return decoded


def _decode_dynamic(label: Label, decoded: _Decoded) -> ParseProblem | None:
    segments = label.key.split(".")
    if any(not s for s in segments):
        return ParseProblem(Span(label.span.path, label.span.line, label.span.column),
                            f"unexpected empty segment in label key {label.key!r}; expected name.name... "
                            f"(Traefik: invalid element: {label.key}; every label of this container is ignored)")
    kind, section = segments[1].lower(), segments[2].lower() if len(segments) > 2 else ""
    if kind not in ("tcp", "http"):
        return None  # UDP and TLS stores: not modelled
    if section not in (_TCP_SECTIONS if kind == "tcp" else _HTTP_SECTIONS):
        return _decode_problem(label, segments[2] if len(segments) > 2 else "", *sorted(_TCP_SECTIONS))
    if len(segments) < 5 or section not in ("routers", "services"):
        return None  # middlewares, transports, or a name with no field: nothing to model
    name, path = segments[3], [s.lower() for s in segments[4:]]
    if kind == "tcp":
        problem = _check_fields(label, path, _ROUTER_FIELDS if section == "routers" else _SERVICE_FIELDS)
        if problem is not None:
            return problem
    if section == "routers":
        objects = decoded.routers[kind]
    elif kind == "tcp":
        objects = decoded.services
    else:
        return None  # HTTP services are not modelled
    obj = objects.setdefault(name.lower(), _Object(name))
    obj.fields[".".join(path)] = label
    return None


def _check_fields(label: Label, path: list[str], known: dict[str, object]) -> ParseProblem | None:
    """Traefik's `field not found, node: X` for a misspelt TCP router/service field."""
    level: object = known
    for segment in path:
        if level is None:
            return None
        bare = segment.split("[", 1)[0]
        if not isinstance(level, dict) or bare not in level:
            expected = sorted(level) if isinstance(level, dict) and level else ["no sub-field"]
            return _decode_problem(label, segment, *expected)
        level = level[bare]
    return None


def _decode_problem(label: Label, field_name: str, *expected: str) -> ParseProblem:
    words = ", ".join(expected)
    return ParseProblem(Span(label.span.path, label.span.line, label.span.column),
                        f"unexpected field {field_name!r} in Traefik label {label.key!r}; expected {words} "
                        f"(Traefik: field not found, node: {field_name}; every label of this container is ignored)",
                        tuple(expected))


def _root_problem(label: Label) -> ParseProblem:
    root = label.key.split(".", 1)[0]
    return ParseProblem(Span(label.span.path, label.span.line, label.span.column),
                        f"unexpected label root {root!r}; expected 'traefik' in lower case (Traefik: invalid label "
                        f"root {root}; every label of this container is ignored)", ("traefik",))


def _value_problem(label: Label, expected: str) -> ParseProblem:
    line, column = label.value_position()
    return ParseProblem(Span(label.span.path, line, column),
                        f"unexpected value {label.value!r} for {label.key!r}; expected {expected} (Traefik "
                        f"ignores every label of this container)", (expected,))


_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


def _parse_bool(text: str) -> bool | None:
    """Go's strconv.ParseBool: None for anything else (`yes` is an error)."""
    return True if text in _TRUE else False if text in _FALSE else None


def _allow_empty(label: Label | None) -> bool:
    """paerser "allowEmpty" structs (tls, proxyProtocol): "" or "true" create it, anything else disables."""
    return label is None or label.value == "" or label.value.lower() == "true"


# --------------------------------------------------------------------------------------------
# Labels -> routes and upstreams
# --------------------------------------------------------------------------------------------


def _build_labels(service: Service, model: Model, defaults: tuple[str, ...], exposed_by_default: bool,
                  upstream_index: dict[tuple[str, str], int]) -> None:
    labels = _labels(service)
    if not labels:
        return
    decoded = _decode(labels)
    if decoded.problem is not None:
        model.problems.append(decoded.problem)
        return
    enabled = decoded.enabled if decoded.enabled is not None else exposed_by_default
    if not enabled:
        return
    tcp_routers, http_routers = decoded.routers["tcp"], decoded.routers["http"]
    if tcp_routers or decoded.services:
        model.present.add(Product.TRAEFIK)
    auto = _automatic_service(service, tcp_routers, decoded.services)
    upstreams = [_upstream(service, obj) for obj in _in_file_order(decoded.services)]
    if auto is not None:
        upstreams.append(auto)
    _add_upstreams(model, upstreams, upstream_index)
    single = next(iter(upstreams)).name if len(upstreams) == 1 else None
    routers = [(r, "tcp") for r in tcp_routers.values()] + [(r, "http") for r in http_routers.values()]
    for router, layer in sorted(routers, key=lambda pair: _position(_first_label(pair[0]))):
        route = _route(service, router, layer, defaults, single if layer == "tcp" else None, model)
        if route is not None:
            model.routes.append(route)


def _in_file_order(objects: dict[str, _Object]) -> list[_Object]:
    return sorted(objects.values(), key=lambda obj: _position(_first_label(obj)))


def _position(label: Label) -> tuple[int, int]:
    return label.span.line, label.span.column


def _route(service: Service, router: _Object, layer: str, defaults: tuple[str, ...], single: str | None,
           model: Model) -> Route | None:
    fields = router.fields
    rule = fields.get("rule")
    if rule is None or not rule.value.strip():
        return None  # Traefik drops it: "router has no rule" / "Empty rule"
    line, column = rule.value_position()
    tree, problem = parse_rule(rule.value, service.source.path, line=line, column=column)
    if problem is not None:
        model.problems.append(problem)
        return None
    entrypoints = fields.get("entrypoints")
    names = tuple(n.strip() for n in entrypoints.value.split(",") if n.strip()) if entrypoints else defaults
    upstream = None
    if layer == "tcp":
        named = fields.get("service")
        upstream = named.value.strip().removesuffix("@docker") if named else single
    sni = None
    domain = sni_domain(tree) if layer == "tcp" else None
    if domain is not None:
        sni = Setting(domain, rule.span, "HostSNI in the router rule")
    named_service = fields.get("service") if layer == "tcp" else None
    return Route(
        Product.TRAEFIK, router.name, names, upstream, rule.span,
        tls=_router_tls(fields, layer), sni=sni,
        layer=Setting(layer, _first_label(router).span, f"Traefik {layer} router"),
        idle_timeout=ROUTED_TCP_IDLE if layer == "tcp" else Setting(None),
        entrypoints_defaulted=entrypoints is None,
        upstream_span=named_service.span if named_service else None,
        entrypoints_span=entrypoints.span if entrypoints else None,
    )


def _first_label(obj: _Object) -> Label:
    return min(obj.fields.values(), key=_position)


def _router_tls(fields: dict[str, Label], layer: str) -> Setting[ProxyTls]:
    """tls=true or any tls.* key: terminate; tls.passthrough=true: passthrough; other tls values: none."""
    switch = fields.get("tls")
    subkeys = [lb for path, lb in fields.items() if path.startswith("tls.")]
    if switch is None and not subkeys:
        return Setting(ProxyTls.NONE, origin="Traefik router without tls")
    if switch is not None and not _allow_empty(switch):
        return Setting(ProxyTls.NONE, switch.span, f"tls={switch.value} disables TLS on the router")
    passthrough = fields.get("tls.passthrough")
    if layer == "tcp" and passthrough is not None and _parse_bool(passthrough.value):
        return Setting(ProxyTls.PASSTHROUGH, passthrough.span, "tls.passthrough=true")
    decider = switch or min(subkeys, key=_position)
    return Setting(ProxyTls.TERMINATE, decider.span, "Traefik terminates TLS on this router")


def _upstream(service: Service, obj: _Object) -> Upstream:
    fields = obj.fields
    first = _first_label(obj)
    port_label = fields.get("loadbalancer.server.port")
    if port_label is not None:
        port = int(port_label.value) if port_label.value.strip().isdigit() else None
        server_span = port_label.span
    else:
        port, server_span = _default_port(service), first.span
    send_proxy, usable = _send_proxy(fields)
    tls_label = fields.get("loadbalancer.server.tls")
    tls: Setting[bool] = Setting(False)
    if tls_label is not None:
        tls = Setting(bool(_parse_bool(tls_label.value)), tls_label.span, "loadBalancer.server.tls")
    transport_label = fields.get("loadbalancer.serverstransport")
    transport = None
    if transport_label is not None and transport_label.value.strip():
        # qualified like Traefik does: a bare name is looked up in the docker provider
        name = transport_label.value.strip()
        transport = Setting(name if "@" in name else f"{name}@docker", transport_label.span, "serversTransport label")
    servers = ()
    if usable:
        # a transport replaces the load balancer's PROXY setting; the traefik builder resolves it
        servers = (UpstreamServer(Product.TRAEFIK, obj.name, obj.name, None, port, server_span, send_proxy, tls,
                                  target_host=service.host_id, transport=transport, proxy_unknown=transport is not None),)
    return Upstream(Product.TRAEFIK, obj.name, servers, first.span)


def _send_proxy(fields: dict[str, Label]) -> tuple[Setting[ProxyHeader], bool]:
    """The PROXY header the server gets, and False when Traefik cannot create the server."""
    switch = fields.get("loadbalancer.proxyprotocol")
    version = fields.get("loadbalancer.proxyprotocol.version")
    transport = fields.get("loadbalancer.serverstransport")
    if switch is None and version is None:
        if transport is not None:
            return Setting(ProxyHeader.NONE, transport.span,
                           f"decided by serversTransport {transport.value!r} (not defined by labels)"), True
        return Setting(ProxyHeader.NONE, origin="Traefik sends no PROXY header by default"), True
    if switch is not None and not _allow_empty(switch):
        return Setting(ProxyHeader.NONE, switch.span, f"proxyProtocol={switch.value} disables it"), True
    if version is None:
        assert switch is not None
        return Setting(ProxyHeader.V2, switch.span, "proxyProtocol without a version: Traefik sends v2"), True
    header = {"1": ProxyHeader.V1, "2": ProxyHeader.V2}.get(version.value.strip())
    if header is None:  # "unknown proxyProtocol version": the server is not created
        return Setting(ProxyHeader.NONE, version.span, f"unknown proxyProtocol version {version.value}"), False
    return Setting(header, version.span, "loadBalancer.proxyProtocol.version"), True


def _automatic_service(service: Service, routers: dict[str, _Object], services: dict[str, _Object]) -> Upstream | None:
    """The service Traefik creates for a container with TCP routers but no TCP service labels."""
    if not routers or services:
        return None
    raw = f"{service.name}_{service.project}" if service.project else service.name
    name = "-".join(p for p in re.split(r"[^0-9A-Za-z]+", raw) if p)  # provider.Normalize
    first = min((_first_label(r) for r in routers.values()), key=_position)
    server = UpstreamServer(Product.TRAEFIK, name, name, None, _default_port(service), first.span,
                            Setting(ProxyHeader.NONE, origin="Traefik sends no PROXY header by default"),
                            target_host=service.host_id)
    return Upstream(Product.TRAEFIK, name, (server,), first.span)


def _default_port(service: Service) -> int | None:
    """Traefik's port detection: the lowest port the container exposes, when known."""
    ports = set(service.info.exposed_ports) if service.info else set()
    for node in _scalars(service.node.get("expose")) + _scalars(service.node.get("ports")):
        port = _container_port(node.as_text())
        if port is not None:
            ports.add(port)
    published = service.node.get("ports")
    for item in published.items if isinstance(published, YamlSeq) else []:
        if isinstance(item, YamlMap) and (text_of(item.get("target")) or "").isdigit():
            ports.add(int(text_of(item.get("target"))))  # type: ignore[arg-type]
    return min(ports) if ports else None


def _container_port(text: str) -> int | None:
    """The container side of `[ip:][host:]container[-range][/proto]`."""
    container = text.rsplit(":", 1)[-1].split("/", 1)[0]
    first = container.split("-", 1)[0]
    return int(first) if first.isdigit() else None


def _add_upstreams(model: Model, upstreams: list[Upstream], index: dict[tuple[str, str], int]) -> None:
    """Same-named TCP services of several containers: Traefik appends their servers.

    Only within one folder (one stack, possibly split over several compose files): a tree with
    several deployments repeats service names without them being one Traefik's. `index` maps
    (folder, name) to the position in `model.upstreams`.
    """
    def stack(upstream: Upstream) -> tuple[str, str]:
        return posixpath.dirname(upstream.span.path), upstream.name

    for upstream in upstreams:
        i = index.get(stack(upstream))
        if i is None:
            index[stack(upstream)] = len(model.upstreams)
            model.upstreams.append(upstream)
        else:
            known = model.upstreams[i]
            model.upstreams[i] = Upstream(known.product, known.name, known.servers + upstream.servers, known.span)

