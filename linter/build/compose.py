"""Compose files -> hosts, image versions, docker-mailserver platforms, and Traefik's config.

Every compose service becomes a `Host` (its service name plus container_name, hostname and
network aliases, and static addresses), with what decides who can reach it and whom it trusts:
its published ports (`ports:` short and long syntax, ranges, host IP, protocol; `network_mode:
host` publishes every port, `expose:` none), the networks it joins with their `ipam.config`
subnets and gateways (networks are named as Docker names them, so two services share one
exactly when the names match), and its environment: each `env_file:` inside the scanned tree,
then `environment:`, which wins, as compose merges them. Image tags give versions
(`data/versions.py`); a docker-mailserver image becomes a `Platform` (with that environment)
whose stock Postfix/Dovecot the later builders overlay. Traefik is configured in compose in two places, both read here:

* the Traefik container's `command:` flags (or `TRAEFIK_*` environment) -> `Entrypoint`s;
* the `traefik.*` labels of every container -> TCP/HTTP `Route`s and TCP `Upstream`s.

Labels are decoded the way Traefik's Docker provider does it (facts-traefik §1): keys are
case-insensitive below the `traefik` root, router/service names merge case-insensitively, a
decode error (unknown field, bad boolean) drops every label of that container, and the §1.4
defaults apply: a router without `service` uses the container's only service or an automatic
one, a service without `server.port` dials the container's lowest exposed port, a router
without `entrypoints` lands on all (or the `asDefault`) entrypoints, `proxyProtocol` without a
version sends v2. Bad values, a wrong-case root and rules that do not parse are `ParseProblem`s
at the label, because Traefik refuses them as it would refuse a malformed file; an unknown key
drops the container just the same but is left to MPL002, which names the key Traefik expected.

Traefik static files (traefik.yml) and the file provider are other builders' work; when a
static file is mounted into the Traefik container, its command-line flags are ignored (Traefik
reads one static source only, facts-traefik §3.5), so none are modelled.
"""
from __future__ import annotations

import ipaddress
import os
import posixpath
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from mailproxy_lint.build import Model, Platform
from mailproxy_lint.build.traefik import go_duration_seconds, v2_rule_forms
from mailproxy_lint.data.versions import ImageInfo, identify
from mailproxy_lint.model import (
    Entrypoint,
    FileKind,
    Host,
    NetworkAttachment,
    ParseProblem,
    Product,
    ProxyHeader,
    ProxyTls,
    PublishedPort,
    Route,
    Setting,
    SourceFile,
    Span,
    Subnet,
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
    compose_files = [item for item in parsed if item.source.kind is FileKind.COMPOSE]
    services = [s for item in compose_files for s in _services(item)]
    definitions = _network_definitions(compose_files)
    _name_hosts(services)
    for service in services:
        service.environment = _environment(service, model)
        model.hosts.append(_host(service, definitions))
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
    # The container environment (`env_file:` then `environment:`), read once by `build`
    environment: dict[str, Setting[str]] = field(default_factory=dict)
    # False when part of it is not in the scanned files: an env file not read, a variable taken
    # from the shell (`- KEY`) or interpolated (`${VAR}`), so a flag's default may not hold
    environment_complete: bool = True

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


def _host(service: Service, definitions: dict[tuple[str, str], _NetworkDefinition]) -> Host:
    node = service.node
    aliases = set()
    container_name = text_of(node.get("container_name"))
    hostname = text_of(node.get("hostname"))
    domainname = text_of(node.get("domainname"))
    for alias in (container_name, hostname, f"{hostname}.{domainname}" if hostname and domainname else None):
        if alias:
            aliases.add(alias)
    addresses = []
    dns_names = {service.name} | ({container_name} if container_name else set())
    networks = node.get("networks")
    if isinstance(networks, YamlMap):
        for _, _, network in networks.items():
            if not isinstance(network, YamlMap):
                continue
            aliases.update(a.as_text() for a in _scalars(network.get("aliases")) if a.as_text())
            dns_names.update(a.as_text() for a in _scalars(network.get("aliases")) if a.as_text())
            for key in ("ipv4_address", "ipv6_address"):
                address = network.get(key)
                if isinstance(address, YamlScalar) and address.as_text():
                    addresses.append(Setting(address.as_text(), service.span(address), f"compose {key}"))
    aliases.add(service.name)
    aliases.discard(service.host_id)
    image = Setting(service.image.as_text(), service.span(service.image), "compose image") if service.image else None
    mode = node.get("network_mode")
    network_mode = Setting(mode.as_text(), service.span(mode), "compose network_mode") \
        if isinstance(mode, YamlScalar) and mode.as_text() else None
    return Host(service.host_id, frozenset(aliases), tuple(addresses), image, service.span(service.key),
                published=tuple(_published(service, network_mode)),
                networks=tuple(_attachments(service, network_mode, definitions)),
                network_mode=network_mode, environment=service.environment,
                environment_complete=service.environment_complete, dns_names=frozenset(dns_names))


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
                                        dict(service.environment), span,
                                        env_complete=service.environment_complete))
        model.present.update({Product.POSTFIX, Product.DOVECOT})


def _environment(service: Service, model: Model | None = None) -> dict[str, Setting[str]]:
    """The container environment: every `env_file:` in order, then `environment:`, which wins.

    `environment:` in list (`KEY=value`) or mapping form. Env files are read only with a model
    (which knows the scanned root); see `_env_files`.
    """
    env: dict[str, Setting[str]] = _env_files(service, model) if model is not None else {}
    node = service.node.get("environment")
    if isinstance(node, YamlSeq):
        for item in _scalars(node):
            name, equals, value = item.as_text().partition("=")
            if equals and name:
                env[name] = Setting(value, service.span(item), "compose environment")
            else:
                service.environment_complete = False  # `- KEY` alone takes the value from the shell
    elif isinstance(node, YamlMap):
        for name, key, value in node.items():
            if isinstance(value, YamlScalar) and not value.is_null:
                span = Span(service.source.path, key.line, key.column, value.end_line, value.end_column)
                env[name] = Setting(value.as_text(), span, "compose environment")
            else:
                service.environment_complete = False
    if any("${" in setting.value or setting.value.startswith("$") for setting in env.values()):
        service.environment_complete = False  # interpolated from the shell or an unread .env
    return env


# --------------------------------------------------------------------------------------------
# env_file: KEY=VALUE files, read only inside the scanned tree
# --------------------------------------------------------------------------------------------

_ENV_LINE = re.compile(r"\s*(?:export\s+)?(?P<key>[A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(?P<value>.*)")


def _env_files(service: Service, model: Model) -> dict[str, Setting[str]]:
    """Variables of the service's `env_file:` entries, later files winning.

    Paths are relative to the compose file's folder. A file outside the scanned root is never
    read (its variables stay unknown); a required file that does not exist stops compose
    (`env file ... not found`), so it is reported where it is named.
    """
    env: dict[str, Setting[str]] = {}
    for path_node, required in _env_file_entries(service.node.get("env_file")):
        written = path_node.as_text()
        if not written or "$" in written:
            service.environment_complete = False  # interpolated: unknown
            continue
        on_disk = _beside(service.source, written)
        if on_disk is None or not _inside(on_disk, model.root):
            service.environment_complete = False  # never read outside the scanned tree
            continue
        shown = _display_path(service.source, written)
        if not os.path.isfile(on_disk):
            service.environment_complete = False
            if required:
                found = "is not a file" if os.path.exists(on_disk) else "does not exist"
                model.problems.append(ParseProblem(
                    service.span(path_node),
                    f"env file {written!r} {found}; expected a file of KEY=VALUE lines (docker compose: "
                    f"env file {shown} not found), or `required: false`", ("an existing file",)))
            continue
        env.update(_read_env_file(on_disk, shown))
    return env


def _env_file_entries(node: YamlNode | None) -> list[tuple[YamlScalar, bool]]:
    """(path node, required) of each entry: a string, a list of strings, or `{path, required}` maps."""
    entries = []
    for item in node.items if isinstance(node, YamlSeq) else [node] if node is not None else []:
        if isinstance(item, YamlScalar):
            entries.append((item, True))
        elif isinstance(item, YamlMap) and isinstance(item.get("path"), YamlScalar):
            required = item.get("required")
            entries.append((item.get("path"), not (isinstance(required, YamlScalar) and required.value is False)))
    return entries  # type: ignore[return-value]


def _beside(source: SourceFile, written: str) -> str | None:
    """The absolute path of a file the compose file names, relative to its folder."""
    if written.startswith("/"):
        return os.path.normpath(written)
    if not source.abspath:
        return None
    return os.path.normpath(os.path.join(os.path.dirname(source.abspath), written))


def _inside(path: str, root: str) -> bool:
    real, top = os.path.realpath(path), os.path.realpath(root)
    if os.path.isfile(top):
        top = os.path.dirname(top)
    return real == top or real.startswith(top.rstrip(os.sep) + os.sep)


def _read_env_file(path: str, shown: str) -> dict[str, Setting[str]]:
    try:
        with open(path, "rb") as handle:
            text = handle.read(1024 * 1024).decode("utf-8", "replace")
    except OSError:
        return {}
    env = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _ENV_LINE.match(line)
        if match is None:
            continue  # `KEY` alone takes its value from the shell: unknown
        column = match.start("key") + 1
        span = Span(shown, number, column, number, len(line.rstrip()) + 1)
        env[match.group("key")] = Setting(_env_value(match.group("value")), span, f"env_file {shown}")
    return env


def _env_value(raw: str) -> str:
    """A value as compose's dotenv reads it: quotes removed, ` #` comments dropped when unquoted."""
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] in "'\"" and raw.endswith(raw[0]):
        return raw[1:-1]
    return re.split(r"\s+#", raw, maxsplit=1)[0].strip()


# --------------------------------------------------------------------------------------------
# Published ports and networks
# --------------------------------------------------------------------------------------------


def _published(service: Service, network_mode: Setting[str] | None) -> list[PublishedPort]:
    """`ports:` entries (short or long syntax); host networking publishes every port."""
    if network_mode is not None and network_mode.value == "host":
        return [PublishedPort(None, None, None, "tcp", network_mode.span, "network_mode: host shares every port with the machine")]
    node = service.node.get("ports")
    found = []
    for item in node.items if isinstance(node, YamlSeq) else []:
        port = _long_port(item, service) if isinstance(item, YamlMap) else \
            _short_port(item.as_text(), service.span(item)) if isinstance(item, YamlScalar) else None
        if port is not None:
            found.append(port)
    return found


def _port_range(text: str) -> tuple[int, int] | None:
    first, _, last = text.strip().partition("-")
    if not first.isdigit() or (last and not last.isdigit()):
        return None
    return int(first), int(last or first)


def _short_port(text: str, span: Span) -> PublishedPort | None:
    """`[[ip:]host:]container[/protocol]`; the ip may be bracketed IPv6. None when interpolated or malformed."""
    if "$" in text:
        return None
    body, _, protocol = text.strip().partition("/")
    host_ip = None
    if body.startswith("["):
        address, _, body = body[1:].partition("]")
        host_ip, body = address, body.removeprefix(":")
        parts = body.split(":")
    else:
        parts = body.split(":")
        if len(parts) > 3:  # unbracketed IPv6 address: every part but the last two
            host_ip, parts = ":".join(parts[:-2]), parts[-2:]
        elif len(parts) == 3:
            host_ip, parts = parts[0], parts[1:]
    container = _port_range(parts[-1])
    host = _port_range(parts[0]) if len(parts) == 2 and parts[0] else None
    if container is None or (len(parts) == 2 and parts[0] and host is None):
        return None
    return PublishedPort(container, host, host_ip or None, (protocol or "tcp").lower(), span)


def _long_port(node: YamlMap, service: Service) -> PublishedPort | None:
    container = _port_range(text_of(node.get("target")) or "")
    if container is None:
        return None
    published = text_of(node.get("published"))
    host = _port_range(published) if published else None
    host_ip = (text_of(node.get("host_ip")) or "").strip("[]") or None
    return PublishedPort(container, host, host_ip, (text_of(node.get("protocol")) or "tcp").lower(),
                         service.span(node), "compose ports (long syntax)")


@dataclass
class _NetworkDefinition:
    """A top-level `networks:` entry of one folder's compose files."""

    name: str  # the Docker network name
    subnets: tuple[Subnet, ...] = ()
    external: bool = False
    span: Span | None = None
    ipv6: bool = False


def _network_definitions(items: list[Parsed]) -> dict[tuple[str, str], _NetworkDefinition]:
    """(folder, key) -> definition, over every compose file of the folder (one project)."""
    found: dict[tuple[str, str], _NetworkDefinition] = {}
    for item in items:
        folder = posixpath.dirname(item.source.path)
        for document in item.tree.documents:
            root = document.root
            if not isinstance(root, YamlMap):
                continue
            project = _project_name(item.source, text_of(root.get("name")))
            networks = root.get("networks")
            for key, key_node, node in networks.items() if isinstance(networks, YamlMap) else []:
                found[(folder, key)] = _definition(key, key_node, node, project, item.source.path)
    return found


def _definition(key: str, key_node: YamlNode, node: YamlNode, project: str | None, path: str) -> _NetworkDefinition:
    body = node if isinstance(node, YamlMap) else None
    external = body is not None and isinstance(body.get("external"), (YamlScalar, YamlMap)) and \
        (not isinstance(body.get("external"), YamlScalar) or body.get("external").value is True)  # type: ignore[union-attr]
    named = text_of(body.get("name")) if body is not None else None
    name = named or (key if external else _default_network_name(project, key))
    subnets = []
    ipam = body.get("ipam") if body is not None else None
    config = ipam.get("config") if isinstance(ipam, YamlMap) else None
    for entry in config.items if isinstance(config, YamlSeq) else []:
        subnet = _subnet(entry, path) if isinstance(entry, YamlMap) else None
        if subnet is not None:
            subnets.append(subnet)
    enable_ipv6 = body.get("enable_ipv6") if body is not None else None
    ipv6 = isinstance(enable_ipv6, YamlScalar) and enable_ipv6.as_text() == "true"
    return _NetworkDefinition(name, tuple(subnets), external, key_node.span(path), ipv6)


def _subnet(entry: YamlMap, path: str) -> Subnet | None:
    node = entry.get("subnet")
    try:
        network = ipaddress.ip_network((text_of(node) or "").strip(), strict=False)
    except ValueError:
        return None
    gateway = entry.get("gateway")
    written = Setting(text_of(gateway), gateway.span(path), "compose ipam gateway") if text_of(gateway) else None  # type: ignore[union-attr]
    return Subnet(network, node.span(path), written)  # type: ignore[union-attr]


def _default_network_name(project: str | None, key: str) -> str:
    return f"{project}_{key}" if project else key


def _attachments(service: Service, network_mode: Setting[str] | None,
                 definitions: dict[tuple[str, str], _NetworkDefinition]) -> list[NetworkAttachment]:
    """The networks the service joins: `networks:` (list or map), else the project's `default`."""
    if network_mode is not None:
        return []  # host, none, bridge, service:x, container:x: not the project's networks
    folder = posixpath.dirname(service.source.path)
    node = service.node.get("networks")
    joined: list[tuple[str, YamlNode | None, YamlNode | None]] = []
    if isinstance(node, YamlSeq):
        joined = [(item.as_text(), item, None) for item in _scalars(node)]
    elif isinstance(node, YamlMap):
        joined = list(node.items())
    else:
        joined = [("default", None, None)]
    attachments = []
    for key, key_node, body in joined:
        definition = definitions.get((folder, key)) or _NetworkDefinition(_default_network_name(service.project, key))
        addresses = []
        for field_name in ("ipv4_address", "ipv6_address"):
            value = body.get(field_name) if isinstance(body, YamlMap) else None
            if isinstance(value, YamlScalar) and value.as_text():
                addresses.append(Setting(value.as_text(), service.span(value), f"compose {field_name}"))
        attachments.append(NetworkAttachment(
            key, definition.name, service.span(key_node) if key_node is not None else None, definition.subnets,
            tuple(addresses), definition.external, definition.span, definition.ipv6))
    return attachments


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
    for name, setting in (service.environment or _environment(service)).items():
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
    return Entrypoint(Product.TRAEFIK, name, port, listen, address.span, accepts_proxy=accepts, host=host,
                      read_timeout=_flag_read_timeout(fields))


def _flag_read_timeout(fields: dict[str, _Option]) -> Setting[float] | None:
    """`--entrypoints.<name>.transport.respondingTimeouts.readTimeout`, when written."""
    written = fields.get("transport.respondingtimeouts.readtimeout")
    seconds = go_duration_seconds(written.value) if written is not None else None
    if seconds is None:
        return None
    return Setting(seconds, written.span, "entrypoint transport.respondingTimeouts.readTimeout (flag)")


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
    unknown_key: bool = False  # the problem is a key Traefik does not know (not a bad value)


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
                decoded.unknown_key = True
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
            decoded.unknown_key = problem.message.startswith("unexpected field")
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
        if not decoded.unknown_key:  # an unknown key is MPL002's to report, with "did you mean"
            model.problems.append(decoded.problem)
        return  # Traefik ignores every label of this container
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
        v2_rule_forms=v2_rule_forms(tree, service.source.path, line, column,
                                    fields["rulesyntax"].value if "rulesyntax" in fields else None),
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
    return Upstream(Product.TRAEFIK, obj.name, servers, first.span, health_check=_label_health_check(fields))


def _label_health_check(fields: dict[str, Label]) -> Setting[str] | None:
    """A TCP `loadbalancer.healthcheck.*` label (Traefik v3.6+), at its first label; its `port`."""
    labels = sorted((label for key, label in fields.items() if key.startswith("loadbalancer.healthcheck")),
                    key=_position)
    if not labels:
        return None
    port = fields.get("loadbalancer.healthcheck.port")
    return Setting(port.value.strip() if port is not None else "", labels[0].span,
                   "Traefik TCP loadBalancer.healthCheck")


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
            model.upstreams[i] = Upstream(known.product, known.name, known.servers + upstream.servers, known.span,
                                          health_check=known.health_check or upstream.health_check)

