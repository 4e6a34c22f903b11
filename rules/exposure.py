"""MPL204-MPL208: who can reach the mail server's ports, and whom it trusts because of the proxy.

Postfix has no trusted-proxy list, so a PROXY port anyone can reach lets anyone claim any client
address (MPL204). Switching the standard ports to PROXY-only locks out the clients that reach
the mail server without the proxy (MPL205). A proxy that terminates TLS and dials a backend on
another machine sends credentials in clear text (MPL206). And a proxy that sends no PROXY header
makes every client look like the proxy, so trusting the proxy's address in Postfix `mynetworks`
(MPL207) or Dovecot `login_trusted_networks` (MPL208) trusts the whole Internet.

Where the proxy connects from is learnt from compose: its pinned address, the subnet of the
network it shares with the mail server, or a loopback address it dials. Unknown means silent.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from mailproxy_lint.api import (
    Context,
    DovecotConfig,
    Host,
    Link,
    Listener,
    PostfixConfig,
    PostfixService,
    Product,
    ProxyTls,
    Setting,
    Severity,
    Span,
    TlsMode,
    rule,
)
from mailproxy_lint.build.postfix import effective_setting, expand
from mailproxy_lint.rules.trust import proxy_host

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNet = ipaddress.IPv4Network | ipaddress.IPv6Network

DMS = "docker-mailserver"
LOOPBACK_NAMES = {"localhost", "localhost.localdomain"}
# docker-mailserver PERMIT_DOCKER=network adds this range (target/scripts/helpers/network.sh)
DMS_DOCKER_RANGE = ipaddress.ip_network("172.16.0.0/12")
# The ports clients expect a mail server on (facts-rules "Port / listener classification")
STANDARD_PORTS = {25: "SMTP", 587: "submission", 465: "submissions", 143: "IMAP", 993: "IMAPS", 110: "POP3",
                  995: "POP3S", 4190: "ManageSieve"}


# --------------------------------------------------------------------------------------------
# Shared facts: hosts, where the proxy connects from
# --------------------------------------------------------------------------------------------


def _ip(text: str | None) -> IPAddress | None:
    try:
        return ipaddress.ip_address((text or "").strip().strip("[]"))
    except ValueError:
        return None


def _is_loopback(text: str | None) -> bool:
    if text is None:
        return False
    address = _ip(text)
    return address.is_loopback if address is not None else text.lower() in LOOPBACK_NAMES


@dataclass(frozen=True)
class Source:
    """Where the proxy's connections to the mail server come from.

    `network` is the proxy's exact address (/32, /128) when known, else the subnet it has an
    address in; `exact` tells which. `span` is the line that says so, `how` says it in words.
    """

    network: IPNet
    exact: bool
    how: str
    span: Span | None

    @property
    def shown(self) -> str:
        return str(self.network.network_address) if self.exact else str(self.network)

    def within(self, networks: list[IPNet]) -> IPNet | None:
        """The first of `networks` that holds every address the proxy may connect from."""
        return next((n for n in networks if n.version == self.network.version and self.network.subnet_of(n)), None)


def proxy_sources(ctx: Context, link: Link) -> list[Source]:
    """The addresses the proxy of a link connects to its listener from; [] when unknown."""
    server = link.server
    if server.host is not None and _is_loopback(server.host):
        address = _ip(server.host) or ipaddress.ip_address("127.0.0.1")
        loopback = ipaddress.ip_network(f"{address}/{address.max_prefixlen}")
        return [Source(loopback, True, f"{server.describe()} dials {server.host}, a loopback address", server.span)]
    found = proxy_host(ctx, link.entrypoint)
    if found is None:
        return []
    proxy, how = found
    sources = []
    for setting in proxy.addresses:
        address = _ip(setting.value)
        if address is not None:
            sources.append(Source(ipaddress.ip_network(address), True, f"{how}, {setting.origin} {address}", setting.span))
    if sources:
        return sources
    mail = ctx.model.host(link.listener.host)
    shared = proxy.shares_network(mail) if mail is not None else None
    if shared is None:
        return []
    ours, _ = shared
    return [Source(s.network, False, f"{how}, on compose network {ours.key!r} ({s.network})", s.span)
            for s in ours.subnets]


def _networks(value: str) -> tuple[list[IPNet], bool]:
    """CIDR/address entries of a Postfix or Dovecot network list, and whether all were read."""
    found, complete = [], True
    for entry in re.split(r"[\s,]+", value.strip()):
        if not entry:
            continue
        text = entry.replace("[", "").replace("]", "")
        try:
            found.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            complete = False  # a table (hash:...), a host name, a !negation: not judged
    return found, complete


def _config(ctx: Context, listener: Listener) -> PostfixConfig | None:
    return next((c for c in ctx.model.postfix if c.id == listener.instance), None)


def _service(config: PostfixConfig, listener: Listener) -> PostfixService | None:
    return next((s for s in config.services if s.name == listener.name and s.type == "inet"), None)


def _sends_no_proxy(link: Link) -> bool:
    return not link.server.proxy_unknown and not link.server.send_proxy.value.sends \
        and not link.listener.accepts_proxy.value.sends


# --------------------------------------------------------------------------------------------
# MPL204
# --------------------------------------------------------------------------------------------


@rule("MPL204", "proxy-port-exposed", Severity.ERROR,
      summary="A Postfix port that accepts PROXY is reachable by others than the proxy",
      tags=("proxy-protocol", "security", "postfix"), security_severity=9.0, facts=("TR05",))
def proxy_port_exposed(ctx: Context):
    """## Why it matters
    Postfix has no list of trusted proxies: whoever connects to a port with
    `smtpd_upstream_proxy_protocol = haproxy` or `postscreen_upstream_proxy_protocol = haproxy`
    writes the client address Postfix believes. `postscreen_access_list` and
    `check_client_access` already see the rewritten address, so they cannot restrict who may
    send the header. When that port is published to the world (compose `ports:` without a
    loopback address, `network_mode: host`, a Kubernetes Service of type LoadBalancer or
    NodePort), anyone can bypass the proxy and claim any address, including one in
    `mynetworks`, which may let them relay.

    ## Bad
    ```
    services:
      mailserver:
        ports:
          - "12525:12525"   # postscreen_upstream_proxy_protocol=haproxy
    ```

    ## Good
    ```
    services:
      mailserver:
        ports:
          - "127.0.0.1:12525:12525"   # or no ports: the proxy reaches it on the compose network
    ```

    ## Fix
    Do not publish PROXY ports: the proxy reaches the mail container over the compose network
    (or a ClusterIP Service in Kubernetes). If it must be published, bind it to loopback or a
    private interface and firewall it to the proxy's address, or use a NetworkPolicy. Publishing
    only the proxy's own ports (25, 587, ...) is the intended layout.
    """
    for listener in ctx.model.listeners:
        if listener.product is not Product.POSTFIX or not listener.accepts_proxy.value.sends or listener.port is None:
            continue
        if _is_loopback(listener.address):
            continue  # the daemon listens on loopback inside the container: unreachable from outside
        host = ctx.model.host(listener.host)
        for port in host.published if host is not None else ():
            if port.protocol == "tcp" and port.covers(listener.port) and _reachable(port.host_ip):
                yield _published_finding(ctx, listener, host, port)
        yield from _kube_exposure(ctx, listener)


def _reachable(host_ip: str | None) -> bool:
    """Published on every interface or on a public address (a private one is the documented fix)."""
    if host_ip is None or host_ip in ("0.0.0.0", "::"):
        return True
    address = _ip(host_ip)
    return address is not None and address.is_global


def _published_finding(ctx: Context, listener: Listener, host: Host, port):
    where = "every interface" if port.all_interfaces else port.host_ip
    outside = port.host_port_for(listener.port)
    shown = f"port {outside}" if outside is not None else "a port Docker picks"
    return ctx.finding(
        port.span,
        f"{listener.describe()} accepts PROXY and container {host.name!r} publishes it on {shown} of {where} "
        f"({port.origin}): Postfix has no trusted-proxy list, so anyone who connects there can claim any client "
        f"address and bypass the proxy; publish only the proxy's ports, or bind this one to 127.0.0.1",
        related=[(listener.accepts_proxy.span or listener.span, f"{listener.describe()} accepts PROXY")],
    )


def _kube_exposure(ctx: Context, listener: Listener):
    """LoadBalancer/NodePort Services whose port targets this listener, for a Service the proxy dials."""
    fronting = {lk.server.host.split(".")[0] for lk in ctx.model.links
                if lk.server.host and lk.listener.host == listener.host}
    for service in ctx.model.kube_services:
        if not service.exposed_outside or service.name not in fronting:
            continue
        for port in service.ports:
            if port.protocol == "TCP" and port.target_port == listener.port:
                node = f", nodePort {port.node_port}" if port.node_port else ""
                yield ctx.finding(
                    port.span,
                    f"Kubernetes Service {service.name!r} is of type {service.type.value} and exposes port "
                    f"{port.port}{node} to {listener.describe()}, which accepts PROXY: Postfix has no trusted-proxy "
                    f"list, so anyone outside the cluster can send a PROXY header and claim any client address; "
                    f"use a ClusterIP Service for the proxy's backend ports (or a NetworkPolicy)",
                    related=[(service.type.span, f"type {service.type.value} ({service.type.origin})"),
                             (listener.accepts_proxy.span or listener.span, f"{listener.describe()} accepts PROXY")],
                )


# --------------------------------------------------------------------------------------------
# MPL205
# --------------------------------------------------------------------------------------------

# env value naming a mail host: `ssl://mailserver:993`, `mailserver:587`, `mailserver`
_ENDPOINT = re.compile(r"(?:(?P<scheme>[A-Za-z0-9+.-]+)://)?(?P<host>[A-Za-z0-9_.-]+)(?::(?P<port>\d{1,5}))?/?")
# what a variable's name says about the protocol its client speaks
_PROTOCOL_WORDS = (("IMAP", (143, 993)), ("SMTP", (25, 587, 465)), ("SUBMISSION", (587, 465)), ("POP", (110, 995)),
                   ("SIEVE", (4190,)), ("MAIL", (25, 587, 465, 143, 993)))
_SCHEME_PORTS = {"imaps": 993, "imap": 143, "smtps": 465, "submissions": 465, "pop3s": 995, "pop3": 110,
                 "sieve": 4190}
# webmail's `ssl://` (implicit TLS) and `tls://` (STARTTLS) prefixes, by the protocol the variable names
_TLS_SCHEME_PORTS = {("IMAP", "ssl"): 993, ("IMAP", "tls"): 143, ("SMTP", "ssl"): 465, ("SMTP", "tls"): 587,
                     ("POP", "ssl"): 995, ("POP", "tls"): 110}


@rule("MPL205", "internal-clients-on-proxy-port", Severity.WARNING,
      summary="A standard mail port accepts PROXY only, while clients that bypass the proxy still use it",
      tags=("proxy-protocol", "docker-mailserver"), facts=("PP12", "PP07"))
def internal_clients_on_proxy_port(ctx: Context):
    """## Why it matters
    A listener that accepts PROXY requires the header on every connection. Clients that reach
    the mail server directly rather than through the proxy never send it, so they are refused
    or time out: a webmail container (Roundcube, SnappyMail, SOGo) or any application sending
    mail through the mail container, monitoring probes, and docker-mailserver's own fetchmail,
    which delivers to `localhost:25` and then fails with `421 4.3.2 No system resources`.
    docker-mailserver's guide warns that switching the existing ports to PROXY rejects such
    internal connections.

    ## Bad
    ```
    # postfix-master.cf: port 25 now requires PROXY
    smtp/inet/postscreen_upstream_proxy_protocol=haproxy
    # compose: roundcube: environment: ROUNDCUBEMAIL_SMTP_SERVER=tls://mailserver
    ```

    ## Good
    ```
    # user-patches.sh: a PROXY copy of port 25 for the proxy, port 25 unchanged for the rest
    postconf -Mf smtp/inet | sed -e s/^smtp/12525/ >> /etc/postfix/master.cf
    postconf -P 12525/inet/postscreen_upstream_proxy_protocol=haproxy
    ```

    ## Fix
    Keep the standard ports without PROXY for internal clients and add PROXY-only ports for the
    proxy to dial (docker-mailserver's layout: 12525, 10587, 10465, 10143, 10993, 10110, 10995,
    14190), or send internal clients through the proxy as well. The rule reports a standard
    port only when a client is visible: another compose service whose environment names the mail
    container on that port (or on a protocol whose ports all require PROXY), or docker-mailserver's
    `ENABLE_FETCHMAIL=1` with port 25 requiring PROXY. It is an error when the client's own
    configuration names the mail container and that port (it is certainly refused), a warning
    otherwise.
    """
    proxy_only = [lst for lst in ctx.model.listeners if lst.accepts_proxy.value.sends and lst.port in STANDARD_PORTS]
    reported: set[tuple[int, str]] = set()
    for listener in proxy_only:
        for span, client, named in _internal_clients(ctx, listener):
            if (id(listener), client) in reported:
                continue
            reported.add((id(listener), client))
            yield ctx.finding(
                listener.accepts_proxy.span or listener.span,
                f"{listener.describe()} accepts only PROXY connections, but {client} connects to it directly and "
                f"sends no PROXY header, so it is refused; keep port {listener.port} without PROXY and give the "
                f"proxy a separate PROXY-only port (for example {_variant(listener.port)})",
                related=[(span, client)],
                # PP12: a client whose configuration names this host and port is certainly refused
                severity=Severity.ERROR if named else None,
            )


def _variant(port: int) -> int:
    return 12525 if port == 25 else 10000 + port


def _internal_clients(ctx: Context, listener: Listener) -> list[tuple[Span | None, str, bool]]:
    """(where, who, whether its configuration names this host and port) for each direct client."""
    clients: list[tuple[Span | None, str, bool]] = []
    mail = ctx.model.host(listener.host)
    if mail is None:
        return clients
    fetchmail = mail.environment.get("ENABLE_FETCHMAIL")
    if listener.port == 25 and listener.product is Product.POSTFIX and fetchmail is not None \
            and fetchmail.value.strip() == "1":
        clients.append((fetchmail.span, "docker-mailserver's fetchmail (ENABLE_FETCHMAIL=1, delivers to localhost:25)",
                        False))
    proxies = {e.host for e in ctx.model.entrypoints if e.host is not None}
    for other in ctx.model.hosts:
        if other is mail or other.name in proxies or other.shares_network(mail) is None:
            continue
        for name, setting in other.environment.items():
            ports = _ports_named(name, setting.value, other.environment, mail)
            if ports is not None and _refused(ctx, listener, mail, ports):
                clients.append((setting.span, f"compose service {other.name!r} ({name}={setting.value})", True))
    return clients


def _ports_named(name: str, value: str, env: dict[str, Setting[str]], mail: Host) -> tuple[int, ...] | None:
    """The ports an environment variable points its client at on `mail`; None when it names no mail port."""
    match = _ENDPOINT.fullmatch(value.strip())
    if match is None or not _resolves_to(mail, match.group("host")):
        return None
    if match.group("port"):
        return (int(match.group("port")),)
    upper = name.upper()
    sibling = re.sub(r"_(HOST|SERVER|ADDRESS|ADDR)$", "_PORT", upper)
    if sibling != upper and sibling in env and env[sibling].value.strip().isdigit():
        return (int(env[sibling].value.strip()),)
    scheme = (match.group("scheme") or "").lower()
    if scheme in _SCHEME_PORTS:
        return (_SCHEME_PORTS[scheme],)
    for (word, prefix), port in _TLS_SCHEME_PORTS.items():
        if scheme == prefix and word in upper:
            return (port,)
    if "IMAP" not in upper and "SMTP" not in upper and "POP" not in upper and scheme in ("ssl", "tls"):
        return (993,) if scheme == "ssl" else (143,)  # Roundcube's DEFAULT_HOST: the IMAP server
    return next((ports for word, ports in _PROTOCOL_WORDS if word in upper), None)


def _resolves_to(mail: Host, name: str) -> bool:
    """True when another container reaching `name` reaches `mail` directly (not through public DNS)."""
    return name.lower() in {n.lower() for n in mail.dns_names} or any(a.value == name for a in mail.addresses)


def _refused(ctx: Context, listener: Listener, mail: Host, ports: tuple[int, ...]) -> bool:
    """True when the client's port is this listener's, and every port it may use requires PROXY."""
    if listener.port not in ports:
        return False
    on_host = [lst for lst in ctx.model.listeners if lst.host == mail.name and lst.port in ports]
    return all(lst.accepts_proxy.value.sends for lst in on_host)


# --------------------------------------------------------------------------------------------
# MPL206
# --------------------------------------------------------------------------------------------


@rule("MPL206", "cleartext-hop", Severity.WARNING,
      summary="The proxy terminates TLS and sends plaintext to a backend on another machine or network",
      tags=("tls", "security"), security_severity=6.5, facts=("TR11",))
def cleartext_hop(ctx: Context):
    """## Why it matters
    When the proxy decrypts the client's TLS and dials the mail server in plaintext, passwords
    and mail cross the network between them in the clear. Dovecot's documentation calls this
    acceptable only on controlled local systems. From Dovecot 2.4 every connection that arrives
    with a PROXY header counts as secured unless `ssl = required`, so plaintext authentication is
    accepted on that hop without complaint.

    ## Bad
    ```
    frontend imaps
        bind :993 ssl crt /etc/haproxy/site.pem
        default_backend dovecot
    backend dovecot
        server mail 10.0.0.1:143 send-proxy-v2
    ```

    ## Good
    ```
    backend dovecot
        server mail 10.0.0.1:993 ssl verify required ca-file /etc/haproxy/ca.pem send-proxy-v2-ssl
    ```

    ## Fix
    Re-encrypt towards the backend (HAProxy `ssl verify required`, Traefik
    `loadBalancer.server.tls` / a serversTransport), pass TLS through to the mail server, or
    keep the hop on one machine (loopback) or one compose network. Silent for loopback
    backends and for containers that share a compose network with the proxy; a backend on
    any other address is taken to be another machine.
    """
    seen: set[int] = set()
    for link in ctx.model.links:
        if id(link.server) in seen or not _terminates(link) or link.server.tls.value:
            continue
        if link.listener.tls.value is TlsMode.IMPLICIT:
            continue  # plaintext into an implicit-TLS listener does not work at all: MPL302
        remote = _remote(ctx, link)
        if remote is None:
            continue
        seen.add(id(link.server))
        decider = link.route.tls.span if link.route is not None and link.route.tls.span else \
            link.entrypoint.tls.span if link.entrypoint is not None else None
        yield ctx.finding(
            link.server.span,
            f"the proxy terminates the client's TLS, then {link.server.describe()} sends plaintext to "
            f"{link.listener.describe()} {remote}: credentials and mail cross that network unencrypted (and "
            f"Dovecot 2.4 treats PROXY connections as secured); re-encrypt to the backend or pass TLS through",
            related=[(decider, "the proxy terminates TLS here")],
        )


def _terminates(link: Link) -> bool:
    route_tls = link.route.tls.value is ProxyTls.TERMINATE if link.route is not None else False
    return route_tls or (link.entrypoint is not None and link.entrypoint.tls.value)


def _remote(ctx: Context, link: Link) -> str | None:
    """Words saying why the hop leaves the machine or network, or None when it stays local or is unknown."""
    server = link.server
    if server.host is None or server.host.startswith("/") or _is_loopback(server.host):
        return None  # a container the proxy shares a network with, a unix socket, loopback
    proxy = proxy_host(ctx, link.entrypoint)
    target = ctx.model.paths.host_of(server)
    if target is not None:
        mail = ctx.model.host(target)
        if proxy is None or mail is None or proxy[0].shares_network(mail) is not None:
            return None
        return f"on container {target!r}, which shares no compose network with the proxy ({proxy[0].name!r})"
    address = _ip(server.host)
    if proxy is not None and address is not None and any(n.contains(address) for n in proxy[0].networks):
        return None  # an address on the proxy's own compose network
    if address is not None:
        return f"at {address}, which is not a loopback address, so the hop leaves the proxy's machine"
    return f"at {server.host}, a host the scanned files do not place on the proxy's machine"


# --------------------------------------------------------------------------------------------
# MPL207
# --------------------------------------------------------------------------------------------


@rule("MPL207", "proxy-in-mynetworks", Severity.ERROR,
      summary="A proxy without PROXY forwards to Postfix while its address is in mynetworks (open relay)",
      tags=("security", "postfix", "docker-mailserver"), security_severity=9.5, facts=("TR06",))
def proxy_in_mynetworks(ctx: Context):
    """## Why it matters
    Without a PROXY header every connection through the proxy comes from the proxy's address.
    When that address is in `mynetworks`, `permit_mynetworks` lets every Internet client relay
    mail through the server: an open relay. docker-mailserver's `PERMIT_DOCKER=network` (all of
    172.16.0.0/12) and `PERMIT_DOCKER=connected-networks` (every network of the container) put
    a proxy on the same Docker network there; the project warns that this "can create an open
    relay". Postfix's own default `mynetworks` holds 127.0.0.0/8, which a proxy on the same
    machine dialling 127.0.0.1 connects from.

    ## Bad
    ```
    # compose: mailserver: environment: PERMIT_DOCKER=connected-networks
    # traefik label: ...services.smtp.loadbalancer.server.port=25   (no proxyProtocol)
    ```

    ## Good
    ```
    # PERMIT_DOCKER=none, and PROXY from the proxy:
    - traefik.tcp.services.smtp.loadbalancer.proxyProtocol.version=2
    ```

    ## Fix
    Send PROXY to Postfix (and accept it there) so Postfix sees the real client, and keep the
    proxy's address out of `mynetworks` (`PERMIT_DOCKER=none`, the default). The rule needs the
    proxy's address or network from compose, or a loopback backend address; with
    `PERMIT_DOCKER=network` and a network without `ipam`, it assumes Docker's default pools
    (172.17.0.0/16 to 172.31.0.0/16).
    """
    seen: set[tuple[int, int]] = set()
    for link in ctx.model.links:
        if link.listener.product is not Product.POSTFIX or not _sends_no_proxy(link):
            continue
        config = _config(ctx, link.listener)
        service = _service(config, link.listener) if config is not None else None
        if service is None or not _relays_for_mynetworks(config, service):
            continue
        key = (id(link.server), id(link.listener))
        if key in seen:
            continue
        seen.add(key)
        trusted = _trusted_source(ctx, link, config, service)
        if trusted is not None:
            yield _mynetworks_finding(ctx, link, *trusted)


def _relays_for_mynetworks(config: PostfixConfig, service: PostfixService) -> bool:
    """The smtpd behind this service allows relaying for `mynetworks` (the Postfix default does)."""
    smtpd = service
    if service.command == "postscreen":
        smtpd = next((s for s in config.services if s.type == "pass" and s.command == "smtpd"), service)
    for name in ("smtpd_client_restrictions", "smtpd_relay_restrictions"):
        value = expand(config, effective_setting(config, smtpd, name).value, smtpd)
        if value.strip() and "permit_mynetworks" not in value:
            return False
    return True


def _trusted_source(ctx: Context, link: Link, config: PostfixConfig, service: PostfixService):
    """(where the proxy connects from, how mynetworks gets it, span, proxy span) when it is in mynetworks."""
    sources = proxy_sources(ctx, link)
    written = config.effective(service, "mynetworks")
    if written is not None and written.span is not None:
        networks, _ = _networks(expand(config, written.value, service))
        for source in sources:
            if source.within(networks) is not None:
                return _from(source), f"`mynetworks = {written.value.strip()}`", written.span, source.span
        return None
    if config.platform == DMS:
        return _permit_docker(ctx, link, sources)
    if written is None:  # Postfix's default: 127.0.0.0/8, [::1]/128 and the machine's own addresses
        loopback = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]
        for source in sources:
            if source.within(loopback) is not None:
                return _from(source), "Postfix's default `mynetworks` (127.0.0.0/8 [::1]/128 and the machine's " \
                    "addresses)", config.main_span, source.span
    return None


def _from(source: Source) -> str:
    return f"{'' if source.exact else 'an address in '}{source.shown} ({source.how})"


def _permit_docker(ctx: Context, link: Link, sources: list[Source]):
    """PERMIT_DOCKER's addition to docker-mailserver's mynetworks, when it holds the proxy."""
    mail = ctx.model.host(link.listener.host)
    setting = mail.environment.get("PERMIT_DOCKER") if mail is not None else None
    mode = setting.value.strip() if setting is not None else ""
    proxy = proxy_host(ctx, link.entrypoint)
    shared = proxy[0].shares_network(mail) if proxy is not None and mail is not None else None
    if mode == "connected-networks" and shared is not None:
        subnets = f" ({', '.join(str(s.network) for s in shared[1].subnets)})" if shared[1].subnets else ""
        return (f"an address on compose network {shared[1].key!r}{subnets} ({proxy[1]})",
                f"PERMIT_DOCKER=connected-networks (the subnet of every network the container joins, "
                f"{shared[1].key!r} included)",
                setting.span, shared[0].span or proxy[0].span)
    if mode != "network":
        return None
    for source in sources:
        if source.within([DMS_DOCKER_RANGE]) is not None:
            return _from(source), "PERMIT_DOCKER=network (172.16.0.0/12)", setting.span, source.span
    if not sources and shared is not None and not shared[1].subnets:
        return (f"an address on compose network {shared[1].key!r} ({proxy[1]}), whose subnet Docker takes from its "
                f"default pools (172.17.0.0/16 to 172.31.0.0/16)",
                "PERMIT_DOCKER=network (172.16.0.0/12)", setting.span, shared[0].span or proxy[0].span)
    return None


def _mynetworks_finding(ctx: Context, link: Link, where: str, how: str, span: Span | None, proxy_span: Span | None):
    return ctx.finding(
        span or link.listener.span,
        f"{link.server.describe()} forwards to {link.listener.describe()} without a PROXY header, so every client "
        f"appears as the proxy, which connects from {where}; {how} puts that address in `mynetworks`, so "
        f"`permit_mynetworks` lets any Internet client relay mail (open relay). Send PROXY to Postfix and keep the "
        f"proxy's address out of mynetworks",
        related=_distinct([(proxy_span, "the proxy's address"), (link.server.span, "no PROXY header is sent here")]),
    )


def _distinct(related: list[tuple[Span | None, str]]) -> list[tuple[Span | None, str]]:
    """Related locations without repeating a line (a loopback address is written on the server line)."""
    seen: set[Span] = set()
    kept = []
    for span, text in related:
        if span is not None and span not in seen:
            seen.add(span)
            kept.append((span, text))
    return kept


# --------------------------------------------------------------------------------------------
# MPL208
# --------------------------------------------------------------------------------------------


@rule("MPL208", "proxy-in-login-trusted-networks", Severity.WARNING,
      summary="The proxy's address is in Dovecot login_trusted_networks while it sends no PROXY header",
      tags=("security", "dovecot", "trust"), security_severity=6.5, facts=("TR07",))
def proxy_in_login_trusted_networks(ctx: Context):
    """## Why it matters
    Clients from `login_trusted_networks` may tell Dovecot another client address (IMAP `ID`
    with `x-originating-ip`, XCLIENT-style forwarding), and their connections count as secured,
    so plaintext authentication is allowed. Behind a TCP proxy without PROXY every client
    connects from the proxy's address and inherits that trust: anyone can claim any address and
    log in without TLS. The setting is meant for Dovecot proxies and webmail that forward the
    client address themselves. (That a plain TCP client exploits it this way is derived from the
    documented semantics, not seen in a report.)

    ## Bad
    ```
    login_trusted_networks = 172.16.42.2
    # the proxy (172.16.42.2) forwards IMAP without PROXY
    ```

    ## Good
    ```
    haproxy_trusted_networks = 172.16.42.2
    service imap-login {
      inet_listener imap {
        haproxy = yes
      }
    }
    ```

    ## Fix
    Send PROXY from the proxy and set `haproxy = yes` plus `haproxy_trusted_networks`; remove
    the proxy's address from `login_trusted_networks`.
    """
    seen: set[tuple[str, int]] = set()
    for link in ctx.model.links:
        if link.listener.product is not Product.DOVECOT or not _sends_no_proxy(link):
            continue
        config = next((c for c in ctx.model.dovecot if c.id == link.listener.instance), None)
        written = config.settings.get("login_trusted_networks") if config is not None else None
        if written is None or written.span is None:
            continue
        networks, _ = _networks(written.value)
        for source in proxy_sources(ctx, link):
            trusted = source.within(networks)
            if trusted is None or (config.id, id(link.server)) in seen:
                continue
            seen.add((config.id, id(link.server)))
            yield _login_finding(ctx, link, config, written, source, trusted)


def _login_finding(ctx: Context, link: Link, config: DovecotConfig, written: Setting[str], source: Source, trusted):
    return ctx.finding(
        written.span,
        f"`login_trusted_networks` includes {trusted}, and {link.server.describe()} forwards to "
        f"{link.listener.describe()} without a PROXY header from {source.shown} ({source.how}): every client "
        f"arrives from a trusted address, may claim another client address and authenticate without TLS; send "
        f"PROXY (`haproxy = yes`, `haproxy_trusted_networks`) and remove the proxy from login_trusted_networks",
        related=_distinct([(source.span, "the proxy's address"), (link.server.span, "no PROXY header is sent here")]),
    )
