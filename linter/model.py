"""The typed model of a deployment's traffic path.

Two layers meet here:

* the *source* layer (`Span`, `SourceFile`, `ParseProblem`): where things are written;
* the *path* layer: what the proxy exposes (`Entrypoint`), how it routes (`Route`), which backend
  servers it dials (`Upstream`, `UpstreamServer`), which mail-server sockets answer (`Listener`),
  and the edges between them (`Link`, made by `link.py`).

Builders (``build/``) produce these objects from parsed files; rules only read them. No parsing
and no rule logic lives here. Every value a rule may report on is a `Setting`: the value plus the
span of the line that decided it and a short description of where it came from (a default, an
inherited `defaults` section, an image tag, ...).
"""
from __future__ import annotations

import functools
import ipaddress
import re
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Generic, Iterable, TypeVar

T = TypeVar("T")

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


# --------------------------------------------------------------------------------------------
# Source layer
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, order=True)
class Span:
    """A region of a file. 1-based; `end_column` is exclusive (Lark's meta and SARIF agree)."""

    path: str  # POSIX path as shown to the user (relative to the working directory when inside it)
    line: int
    column: int = 1
    end_line: int | None = None
    end_column: int | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"

    @classmethod
    def whole_file(cls, path: str) -> Span:
        return cls(path, 1, 1)


class FileKind(StrEnum):
    """What a file is. The values are the names accepted by ``--kind``."""

    DOVECOT = "dovecot"  # dovecot.conf, conf.d/*.conf, docker-mailserver dovecot.cf
    POSTFIX_MAIN = "postfix-main"  # main.cf, docker-mailserver postfix-main.cf
    POSTFIX_MASTER = "postfix-master"  # master.cf
    DMS_POSTFIX_MASTER = "dms-postfix-master"  # docker-mailserver postfix-master.cf (postconf -P lines)
    DMS_USER_PATCHES = "dms-user-patches"  # docker-mailserver user-patches.sh
    HAPROXY = "haproxy"
    COMPOSE = "compose"
    TRAEFIK_STATIC = "traefik-static"
    TRAEFIK_DYNAMIC = "traefik-dynamic"
    KUBERNETES = "kubernetes"
    STALWART = "stalwart"


@dataclass(frozen=True, slots=True)
class Comment:
    line: int
    column: int
    text: str  # including the leading '#'


@dataclass(frozen=True, slots=True)
class SourceFile:
    """A file the linter read. `text` is already decoded; `path` is the display path."""

    path: str
    kind: FileKind
    text: str
    abspath: str = field(compare=False, repr=False, default="")
    # docker-mailserver override files keep their own syntax but change meaning (an overlay)
    dms_override: bool = False


@dataclass(frozen=True, slots=True)
class ParseProblem:
    """A file (or part of one) that could not be read: becomes an MPL001 finding."""

    span: Span
    message: str  # what was found and what was expected
    expected: tuple[str, ...] = ()


# --------------------------------------------------------------------------------------------
# Values with provenance
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Setting(Generic[T]):
    """A value and where it was decided.

    `span` is None only for values nobody wrote (built-in defaults); `origin` then says which
    default applied ("Dovecot default", "docker-mailserver 15 stock master.cf", ...).
    """

    value: T
    span: Span | None = field(default=None, compare=False)
    origin: str = field(default="", compare=False)

    @property
    def is_default(self) -> bool:
        return self.span is None

    def describe_origin(self) -> str:
        if self.span is not None and self.origin:
            return f"{self.origin} ({self.span})"
        if self.span is not None:
            return str(self.span)
        return self.origin or "default"


class Product(StrEnum):
    DOVECOT = "Dovecot"
    POSTFIX = "Postfix"
    HAPROXY = "HAProxy"
    TRAEFIK = "Traefik"
    STALWART = "Stalwart"
    DOCKER_MAILSERVER = "docker-mailserver"


class ProxyHeader(Enum):
    """A PROXY protocol header: what a hop sends, or what a listener accepts."""

    NONE = "none"
    V1 = "v1"
    V2 = "v2"
    ANY = "v1 or v2"  # receivers that auto-detect

    @property
    def sends(self) -> bool:
        return self is not ProxyHeader.NONE

    def __str__(self) -> str:
        return self.value


class TlsMode(StrEnum):
    """How a mail listener speaks TLS."""

    NONE = "none"  # plaintext, no STARTTLS offered
    STARTTLS = "starttls"  # plaintext first, upgraded by STARTTLS (server speaks first)
    IMPLICIT = "implicit"  # TLS from the first byte (client sends ClientHello first)


class ProxyTls(StrEnum):
    """What the proxy does with TLS on a route."""

    NONE = "none"  # bytes passed as they come
    TERMINATE = "terminate"  # the proxy does the handshake with the client
    PASSTHROUGH = "passthrough"  # the proxy waits for a ClientHello to read SNI, then passes it on


class MailProtocol(StrEnum):
    SMTP = "smtp"
    SUBMISSION = "submission"
    SUBMISSIONS = "submissions"
    IMAP = "imap"
    IMAPS = "imaps"
    POP3 = "pop3"
    POP3S = "pop3s"
    SIEVE = "managesieve"
    LMTP = "lmtp"

    @property
    def server_speaks_first(self) -> bool:
        return self in _SERVER_FIRST

    @property
    def is_imap(self) -> bool:
        return self in (MailProtocol.IMAP, MailProtocol.IMAPS)

    @property
    def default_tls(self) -> TlsMode:
        return TlsMode.IMPLICIT if self in _IMPLICIT else TlsMode.STARTTLS


_SERVER_FIRST = {
    MailProtocol.SMTP,
    MailProtocol.SUBMISSION,
    MailProtocol.IMAP,
    MailProtocol.POP3,
    MailProtocol.SIEVE,
    MailProtocol.LMTP,
}
_IMPLICIT = {MailProtocol.SUBMISSIONS, MailProtocol.IMAPS, MailProtocol.POP3S}


@functools.total_ordering
@dataclass(frozen=True, slots=True, eq=False)
class Version:
    """A product version such as 3.5 or 2.3.19. Compares numerically; 3.5 == 3.5.0."""

    parts: tuple[int, ...]

    @classmethod
    def parse(cls, text: str) -> Version | None:
        """The leading dotted number of `text` ("v3.5.2-rc1" -> 3.5.2), or None."""
        match = re.match(r"\s*[vV]?(\d+(?:\.\d+)*)", text)
        return cls(tuple(int(p) for p in match.group(1).split("."))) if match else None

    def _key(self) -> tuple[int, ...]:
        parts = list(self.parts)
        while len(parts) > 1 and parts[-1] == 0:
            parts.pop()
        return tuple(parts)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __lt__(self, other: Version) -> bool:
        return self._key() < other._key()

    def __str__(self) -> str:
        return ".".join(str(p) for p in self.parts)


# --------------------------------------------------------------------------------------------
# Path layer
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PublishedPort:
    """Container ports reachable from outside the container's own networks.

    Compose `ports:` (short `[ip:][host:]container[/proto]`, ranges, or the long form) and
    `network_mode: host` (every port, `container` is None). `expose:` publishes nothing.
    `host_ip` None means every interface of the machine (Docker's default, 0.0.0.0 and [::]).
    """

    container: tuple[int, int] | None  # first..last container port; None = every port (host network)
    host: tuple[int, int] | None  # first..last port on the machine; None = Docker picks one
    host_ip: str | None  # the address it is bound to (brackets removed); None = every interface
    protocol: str  # "tcp" / "udp"
    span: Span
    origin: str = "compose ports"

    def covers(self, port: int) -> bool:
        return self.container is None or self.container[0] <= port <= self.container[1]

    def host_port_for(self, port: int) -> int | None:
        """The machine's port that reaches container port `port`, when it is fixed."""
        if not self.covers(port):
            return None
        if self.container is None:
            return port
        if self.host is None:
            return None
        if self.host[1] - self.host[0] == self.container[1] - self.container[0]:
            return self.host[0] + port - self.container[0]
        return self.host[0] if self.host[0] == self.host[1] else None

    @property
    def loopback_only(self) -> bool:
        """Bound to 127.0.0.0/8 or ::1: only the machine itself reaches it."""
        if self.host_ip is None:
            return False
        try:
            return ipaddress.ip_address(self.host_ip).is_loopback
        except ValueError:
            return self.host_ip.lower() == "localhost"

    @property
    def all_interfaces(self) -> bool:
        return self.host_ip is None or self.host_ip in ("0.0.0.0", "::")


@dataclass(frozen=True, slots=True)
class Subnet:
    """One `ipam.config` entry of a compose network."""

    network: IPNetwork
    span: Span
    gateway: Setting[str] | None = None  # `gateway:` when written

    @property
    def gateway_address(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        """The written gateway, else Docker's default: the subnet's first host address."""
        if self.gateway is not None:
            try:
                return ipaddress.ip_address(self.gateway.value.strip())
            except ValueError:
                pass
        return self.network.network_address + 1


@dataclass(frozen=True, slots=True)
class NetworkAttachment:
    """A compose network a service joins, with what the compose files say about that network.

    `name` is the network as Docker names it (`name:` or `<project>_<key>`), so two services are
    on the same network exactly when their attachments have the same `name`.
    """

    key: str  # the key as written under `networks:` (`default` for the implicit one)
    name: str
    span: Span | None  # where the service joins it; None for the implicit default network
    subnets: tuple[Subnet, ...] = ()  # ipam.config of the network definition; () = Docker picks
    addresses: tuple[Setting[str], ...] = ()  # this service's ipv4_address / ipv6_address there
    external: bool = False
    definition: Span | None = None  # the network's entry under top-level `networks:`
    ipv6: bool = False  # `enable_ipv6: true`: containers get IPv6 addresses and see IPv6 clients

    def contains(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        return any(s.network.version == address.version and address in s.network for s in self.subnets)


@dataclass(frozen=True, slots=True)
class ServicePort:
    """One port of a Kubernetes Service."""

    name: str | None
    port: int | None
    target: int | str | None  # targetPort: a number, a container port name, or None (= port)
    node_port: int | None
    protocol: str
    span: Span

    @property
    def target_port(self) -> int | None:
        if isinstance(self.target, int):
            return self.target
        return self.port if self.target is None else None


@dataclass(frozen=True, slots=True)
class KubeService:
    """A Kubernetes `Service` manifest: its type decides who can reach its ports.

    ClusterIP: the cluster only. NodePort: `nodePort` on every node. LoadBalancer: `port` on
    the load balancer's address, and a nodePort as well.
    """

    name: str
    namespace: str | None
    type: Setting[str]  # ClusterIP (default), NodePort, LoadBalancer, ExternalName
    ports: tuple[ServicePort, ...]
    span: Span  # the manifest's `kind: Service` line
    selector: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def exposed_outside(self) -> bool:
        return self.type.value in ("NodePort", "LoadBalancer")


@dataclass(frozen=True, slots=True)
class Host:
    """A machine or container the configs run on, with every name it answers to.

    Compose services contribute their service name, container_name, hostname, aliases and
    static addresses; a plain directory of configs yields no host (unknown), which the linker
    treats as "could be anything".
    """

    name: str
    aliases: frozenset[str] = frozenset()
    addresses: tuple[Setting[str], ...] = ()  # static IPs (compose ipv4_address/ipv6_address)
    image: Setting[str] | None = None
    span: Span | None = None
    # Ports reachable from outside the container's networks (compose `ports:`, host networking)
    published: tuple[PublishedPort, ...] = ()
    # Compose networks the service joins (empty with `network_mode`: host, none, service:...)
    networks: tuple[NetworkAttachment, ...] = ()
    # `network_mode:` when written (host, none, bridge, service:x, container:x)
    network_mode: Setting[str] | None = None
    # The container environment: `env_file:` entries read in order, then `environment:` (which wins)
    environment: dict[str, Setting[str]] = field(default_factory=dict, compare=False, hash=False)
    # False when part of the environment is not in the scanned files (an unread env_file, `${VAR}`)
    environment_complete: bool = field(default=True, compare=False)
    # Names other containers can resolve to this one (Docker's DNS: service name, container_name,
    # network aliases; not `hostname:`, which only the container itself knows)
    dns_names: frozenset[str] = frozenset()

    def shares_network(self, other: Host) -> tuple[NetworkAttachment, NetworkAttachment] | None:
        """(this host's, the other's) attachment to a network both join, when there is one."""
        theirs = {n.name: n for n in other.networks}
        return next(((n, theirs[n.name]) for n in self.networks if n.name in theirs), None)

    def answers_to(self, host: str) -> bool:
        h = host.lower()
        return h == self.name.lower() or h in {a.lower() for a in self.aliases} or any(
            a.value == host for a in self.addresses
        )


@dataclass(frozen=True, slots=True)
class Entrypoint:
    """Where clients connect to the proxy: HAProxy `bind`, Traefik entryPoints.<name>."""

    product: Product
    name: str
    port: int | None
    address: str | None  # None or "" means every interface
    span: Span
    tls: Setting[bool] = Setting(False)  # the proxy terminates TLS for every route here (bind ssl)
    accepts_proxy: Setting[ProxyHeader] = Setting(ProxyHeader.NONE)  # accept-proxy / proxyProtocol
    host: str | None = None  # the Host this proxy runs on, when known
    # Traefik `transport.respondingTimeouts.readTimeout` in seconds, when written (0 = no limit);
    # None when not written: the default depends on the version (data/versions.py)
    read_timeout: Setting[float] | None = None
    # The port clients reach this entrypoint on when it differs from where it listens: the Helm
    # chart's Service port (`exposedPort`, which defaults to `port`); None when not modelled
    exposed_port: Setting[int] | None = None


@dataclass(frozen=True, slots=True)
class Route:
    """How the proxy sends one entrypoint's traffic to one upstream.

    HAProxy: a `default_backend`/`use_backend` of a frontend, or a `listen` section.
    Traefik: a TCP (or HTTP) router.
    """

    product: Product
    name: str
    entrypoints: tuple[str, ...]  # Entrypoint names this route listens on
    upstream: str | None  # Upstream name; None when the route names none
    span: Span
    tls: Setting[ProxyTls] = Setting(ProxyTls.NONE)
    sni: Setting[str] | None = None  # HostSNI value / SNI match, when routing by SNI
    layer: Setting[str] = Setting("tcp")  # "tcp" or "http" (HAProxy mode, Traefik router kind)
    # Effective idle timeout on the established connection, in seconds; None when the proxy
    # imposes none (for example Traefik after routing). `related` holds the other spans that
    # took part in deciding it (a timeout tunnel overriding client/server, ...).
    idle_timeout: Setting[float | None] = Setting(None)
    idle_timeout_related: tuple[Setting[float], ...] = ()
    # True when the route names no entrypoints and lands on the default ones (Traefik)
    entrypoints_defaulted: bool = False
    # Where the route names its upstream / its entrypoints (a `service=` label, `use_backend`,
    # `entryPoints:`), for findings about a name that points nowhere; None when not written.
    upstream_span: Span | None = None
    entrypoints_span: Span | None = None
    # References only a builder can check that point nowhere (an IngressRouteTCP port name the
    # named Kubernetes Service does not have): value = what is missing, span = where it is named.
    unresolved: tuple[Setting[str], ...] = ()
    # Kubernetes CRD API group the route was read from (`traefik.io`, `traefik.containo.us`)
    api_group: Setting[str] | None = None
    # Rule forms only Traefik v2 reads (a matcher with several arguments), each at its matcher;
    # v3 disables such a router unless it sets `ruleSyntax: v2`
    v2_rule_forms: tuple[Setting[str], ...] = ()
    # HAProxy: the frontend/listen header, and its client-side timeouts as set (kind -> seconds,
    # 0 = none; a kind never set is absent), each with the line that set it or its `defaults`
    section_span: Span | None = None
    timeouts: dict[str, Setting[float]] = field(default_factory=dict, compare=False, hash=False)
    # `option independent-streams` in effect; value = the side it is set on ("frontend"/"backend")
    independent_streams: Setting[str] | None = None
    # The sample fetch that makes the proxy wait for the client's first bytes before it connects
    # to the server (HAProxy `tcp-request inspect-delay` + a content rule reading the request)
    waits_for_client: Setting[str] | None = None
    # The `.if` condition the route depends on when the linter cannot decide it (value = the
    # directive, span = its line); None when the route exists unconditionally
    condition: Setting[str] | None = None

    def describe(self) -> str:
        kind = "frontend route" if self.product is Product.HAPROXY else f"{self.layer.value.upper()} router"
        return f"{self.product} {kind} {self.name!r}"


@dataclass(frozen=True, slots=True)
class UpstreamServer:
    """One backend address the proxy dials: HAProxy `server`, Traefik loadBalancer server."""

    product: Product
    upstream: str
    name: str
    host: str | None  # hostname, service name or IP; None when implicit (Traefik container)
    port: int | None
    span: Span
    send_proxy: Setting[ProxyHeader] = Setting(ProxyHeader.NONE)
    tls: Setting[bool] = Setting(False)  # the proxy speaks TLS to the backend
    target_host: str | None = None  # Host.name this server is known to be (Traefik labels' container)
    # Traefik serversTransport the server is dialled through (its name as referenced), when set
    transport: Setting[str] | None = None
    # True when what the server sends could not be decided from the scanned files (a
    # serversTransport defined elsewhere): PROXY rules stay silent about it.
    proxy_unknown: bool = False
    # Traefik `loadBalancer.proxyProtocol` as written on the service (deprecated from v3.5.2 in
    # favour of the serversTransport's), whether or not a transport overrides it
    lb_proxy_protocol: Setting[ProxyHeader] | None = None
    # Health checks (HAProxy `check`): whether they run, the `port`/`addr` they are sent to
    # instead of the server's, whether they carry the PROXY header and whether they speak TLS
    # (`check-ssl`, or `ssl` inherited when no port/addr override)
    check: Setting[bool] = Setting(False)
    check_port: Setting[int] | None = None
    check_addr: Setting[str] | None = None
    check_send_proxy: Setting[bool] = Setting(False)
    check_tls: Setting[bool] = Setting(False)
    # The PROXY v2 header carries the client's TLS facts (send-proxy-v2-ssl[-cn], proxy-v2-options ssl)
    proxy_tls_facts: Setting[bool] = Setting(False)
    # PROXY options this server got from `default-server` lines, and the `no-send-proxy*` options
    # written on its own line (HP03, VC07)
    proxy_defaults: tuple[Setting[str], ...] = ()
    proxy_cancels: tuple[Setting[str], ...] = ()
    condition: Setting[str] | None = None  # undecidable `.if` around the server line (see Route)

    def describe(self) -> str:
        if self.product is Product.HAPROXY:
            return f"HAProxy server {self.name!r} in backend {self.upstream!r}"
        return f"{self.product} service {self.upstream!r}"


@dataclass(frozen=True, slots=True)
class Upstream:
    product: Product
    name: str
    servers: tuple[UpstreamServer, ...]
    span: Span
    # HAProxy backend health check: the `option` choosing the check (ssl-hello-chk, smtpchk,
    # tcp-check, ...), and the `tcp-check` rules in order (value = the words after `tcp-check`)
    # HAProxy: the check option (`ssl-hello-chk`, `smtpchk`, `tcp-check`, ...); Traefik: a TCP
    # `healthCheck` (its value: the check `port` when written, else "")
    health_check: Setting[str] | None = None
    tcp_checks: tuple[Setting[tuple[str, ...]], ...] = ()
    # server-side timeouts as set (connect, server, tunnel; see Route.timeouts)
    timeouts: dict[str, Setting[float]] = field(default_factory=dict, compare=False, hash=False)
    condition: Setting[str] | None = None  # undecidable `.if` around the backend (see Route)


@dataclass(frozen=True, slots=True)
class Listener:
    """A socket a mail server listens on.

    Dovecot `inet_listener`, Postfix master.cf `inet` service, Stalwart listener.
    """

    product: Product  # Dovecot, Postfix, Stalwart
    service: str  # Dovecot service (imap-login) / Postfix service name (smtp, 10587, ...)
    name: str  # Dovecot listener name / Postfix service name
    port: int | None
    address: str | None
    span: Span  # the line a user edits to change this listener
    protocol: MailProtocol | None = None
    tls: Setting[TlsMode] = Setting(TlsMode.STARTTLS)
    accepts_proxy: Setting[ProxyHeader] = Setting(ProxyHeader.NONE)
    # Who may send PROXY (Dovecot haproxy_trusted_networks, Stalwart trusted-networks);
    # None when the product has no such list (Postfix).
    trusted_proxies: Setting[tuple[IPNetwork, ...]] | None = None
    version: Setting[Version] | None = None  # the product's version, when known
    host: str | None = None  # Host.name this listener runs on, when known
    daemon: str | None = None  # Postfix: "postscreen" / "smtpd"; Dovecot: service name
    instance: str = ""  # which DovecotConfig/PostfixConfig (their `id`) this belongs to
    platform: str | None = None  # "docker-mailserver" when configured through its override files

    def describe(self) -> str:
        where = f" on port {self.port}" if self.port is not None else ""
        if self.product is Product.DOVECOT:
            return f"Dovecot listener {self.service}/{self.name}{where}"
        if self.product is Product.POSTFIX:
            return f"Postfix service {self.name!r} ({self.daemon or 'smtpd'}){where}"
        return f"{self.product} listener {self.name!r}{where}"


@dataclass(frozen=True, slots=True)
class Link:
    """An edge: the proxy route's server reaches this listener. Made once, in link.py."""

    route: Route | None  # None when no route uses the upstream (unreferenced backend)
    entrypoint: Entrypoint | None
    upstream: Upstream
    server: UpstreamServer
    listener: Listener
    evidence: str  # why they were linked: "port 993 on host mailserver", ...


# --------------------------------------------------------------------------------------------
# Product views (for rules that need a product's own settings, not the topology)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PostfixService:
    """A master.cf entry after docker-mailserver overlays and `-o` options are applied."""

    name: str  # service name as written: smtp, submission, 127.0.0.1:10025, 12525
    type: str  # inet, unix, unix-dgram, fifo, pass
    command: str  # first word of the command field: postscreen, smtpd, ...
    span: Span  # the service's first line
    options: dict[str, Setting[str]] = field(default_factory=dict)  # -o name=value, last wins
    origin: str = ""  # "master.cf" / "docker-mailserver stock" / "user-patches.sh clone"


@dataclass(frozen=True, slots=True)
class PostfixConfig:
    """One Postfix instance: main.cf parameters and master.cf services."""

    id: str
    main: dict[str, Setting[str]]  # raw values as written (after DMS overlay), last wins
    services: tuple[PostfixService, ...]
    version: Setting[Version] | None = None
    host: str | None = None
    main_span: Span | None = None  # main.cf itself, for findings about a missing parameter
    master_known: bool = True  # False when no master.cf and no platform default was available
    platform: str | None = None  # "docker-mailserver" when configured through its override files
    # Override lines / postconf commands that changed nothing: value = the text, span = the line,
    # origin = why (unmatched service_name/type, skipped by docker-mailserver, ...)
    unapplied: tuple[Setting[str], ...] = ()
    not_analyzed: tuple[Span, ...] = ()  # user-patches.sh lines that were not understood

    def effective(self, service: PostfixService | None, name: str) -> Setting[str] | None:
        """The value a service sees: its `-o` override, else main.cf. Defaults are the caller's."""
        if service is not None and name in service.options:
            return service.options[name]
        return self.main.get(name)


@dataclass(frozen=True, slots=True)
class DovecotConfig:
    """One Dovecot instance: top-level settings (after includes, last wins)."""

    id: str
    settings: dict[str, Setting[str]]
    version: Setting[Version] | None = None
    host: str | None = None
    root_span: Span | None = None  # the entry file, for findings about a missing setting
    # `!include` lines that failed: span of the line, reason (missing target, loop, outside root)
    include_problems: tuple[tuple[Span, str], ...] = ()
    # `!include`/`!include_try` lines whose files lie outside the scanned directory: settings may
    # come from there, so "not set" cannot be claimed
    unread_includes: tuple[Span, ...] = ()
    # every section header as written: value = its path (`service imap-login/inet_listener imap`,
    # as in `settings` keys), span = the header line
    sections: tuple[Setting[str], ...] = ()


@dataclass(frozen=True, slots=True)
class WrittenName:
    """A keyword or label key exactly as a file writes it, for rules that check names (MPL002).

    HAProxy: `section` is the section kind (`global`, `frontend`, ...), `context` the section
    name; `option` names are recorded as `option <name>`. Traefik labels: `section` is "label",
    `context` the compose service. Postfix and Dovecot names are read from `PostfixConfig` and
    `DovecotConfig`, which keep them with their spans already.
    """

    product: Product
    name: str
    span: Span
    section: str = ""
    context: str = ""
    host: str | None = None  # the Host the file configures, when known


# --------------------------------------------------------------------------------------------
# The whole deployment
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Resolution:
    """What the linker found a route's names to mean: the nearest objects of those names."""

    route: Route
    upstream: Upstream | None
    entrypoints: tuple[Entrypoint, ...]


class PathIndex:
    """Lookups over the linker's results, so rules neither re-resolve names nor scan lists.

    Built once by `link.py`. Objects are looked up by identity: two routes of two stacks may be
    equal field by field, and still be different routes.
    """

    def __init__(self, links: Iterable[Link] = (), resolutions: Iterable[Resolution] = (),
                 server_hosts: dict[int, str] | None = None):
        self.links = tuple(links)
        self._resolution = {id(r.route): r for r in resolutions}
        self._routes_on: dict[int, list[Route]] = {}
        self._routes_using: dict[int, list[Route]] = {}
        for r in self._resolution.values():
            for ep in r.entrypoints:
                self._routes_on.setdefault(id(ep), []).append(r.route)
            if r.upstream is not None:
                self._routes_using.setdefault(id(r.upstream), []).append(r.route)
        self._links: dict[int, list[Link]] = {}
        for lk in self.links:
            for end in (lk.route, lk.entrypoint, lk.server, lk.listener):
                if end is not None:
                    self._links.setdefault(id(end), []).append(lk)
        self._server_hosts = server_hosts or {}

    def upstream_of(self, route: Route) -> Upstream | None:
        r = self._resolution.get(id(route))
        return r.upstream if r is not None else None

    def entrypoints_of(self, route: Route) -> tuple[Entrypoint, ...]:
        r = self._resolution.get(id(route))
        return r.entrypoints if r is not None else ()

    def routes_on(self, entrypoint: Entrypoint) -> list[Route]:
        return self._routes_on.get(id(entrypoint), [])

    def routes_using(self, upstream: Upstream) -> list[Route]:
        return self._routes_using.get(id(upstream), [])

    def links_of(self, end: Route | Entrypoint | UpstreamServer | Listener) -> list[Link]:
        """The links that pass through a route, entrypoint, server or listener."""
        return self._links.get(id(end), [])

    def host_of(self, server: UpstreamServer) -> str | None:
        """The name of the compose host a server dials, when the scanned files describe it."""
        return self._server_hosts.get(id(server))


@dataclass(frozen=True, slots=True)
class Deployment:
    """Everything the rules see for one scanned root."""

    root: str
    files: tuple[SourceFile, ...] = ()
    problems: tuple[ParseProblem, ...] = ()
    hosts: tuple[Host, ...] = ()
    entrypoints: tuple[Entrypoint, ...] = ()
    routes: tuple[Route, ...] = ()
    upstreams: tuple[Upstream, ...] = ()
    listeners: tuple[Listener, ...] = ()
    links: tuple[Link, ...] = ()
    postfix: tuple[PostfixConfig, ...] = ()
    dovecot: tuple[DovecotConfig, ...] = ()
    # Products whose config exists but failed to parse: cross-file rules stay silent about them.
    unknown: frozenset[Product] = frozenset()
    # Products present at all (a file of that kind, or a platform that implies them).
    present: frozenset[Product] = frozenset()
    # Versions learnt from image tags or user config, per host (None = not tied to a host).
    versions: dict[tuple[str | None, Product], Setting[Version]] = field(default_factory=dict)
    paths: PathIndex = field(default_factory=PathIndex, compare=False, repr=False)
    # HAProxy keywords and Traefik label keys as written (build/names.py)
    names: tuple[WrittenName, ...] = ()
    # Kubernetes Service manifests (their type decides whether their ports leave the cluster)
    kube_services: tuple[KubeService, ...] = ()

    def upstream(self, name: str) -> Upstream | None:
        return next((u for u in self.upstreams if u.name == name), None)

    def host(self, name: str | None) -> Host | None:
        """The Host called `name` (a compose service's host id), None for None or an unknown name."""
        return next((h for h in self.hosts if h.name == name), None) if name is not None else None

    def version_of(self, product: Product, host: str | None) -> Setting[Version] | None:
        """The version of `product` on `host`; falls back to the one version known for it."""
        return version_lookup(self.versions, product, host)

    def knows(self, product: Product) -> bool:
        """True when the product's side is present and parsed: rules may reason about it."""
        return product in self.present and product not in self.unknown


def version_lookup(versions: dict[tuple[str | None, Product], Setting[Version]], product: Product,
                   host: str | None) -> Setting[Version] | None:
    if (host, product) in versions:
        return versions[(host, product)]
    if (None, product) in versions:
        return versions[(None, product)]
    candidates = [v for (_, p), v in versions.items() if p is product]
    return candidates[0] if len(candidates) == 1 else None
