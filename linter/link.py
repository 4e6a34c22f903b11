"""Stage 4: connect what the proxy dials to the mail listeners that answer.

A `Link` joins a route's upstream server to a listener when the port matches and the host is
compatible. Each link records its evidence, so a finding can say why two lines in two files
were paired. Hosts are compatible when:

* the server is known to target a host (Traefik labels name their own container) and the
  listener runs on that host, or on an unknown host;
* the server names a host (`mailserver:993`, `10.0.0.1:993`) that a compose service answers
  to, and the listener runs there or on an unknown host;
* the server names a host nobody describes, and the listener's host is unknown too: a plain
  directory of configs is taken to be one mail server behind one proxy.

The configuration file's `hosts` table adds names: a server dialling one of a host's aliases
dials that host (the user's word wins over what compose says).
"""
from __future__ import annotations

from collections import defaultdict
from typing import Generic, TypeVar

from mailproxy_lint.build import Model
from mailproxy_lint.model import Host, Link, Listener, PathIndex, Resolution, Route, Setting, Span, UpstreamServer

T = TypeVar("T")

LOCALHOST = {"localhost", "127.0.0.1", "::1", "[::1]", "0.0.0.0", "*", ""}


def link(model: Model) -> PathIndex:
    """Resolve every route's names and link every upstream server to the listeners it reaches."""
    entrypoints = Nearest.group(model.entrypoints, lambda ep: (ep.product, ep.name))
    upstreams = Nearest.group(model.upstreams, lambda u: (u.product, u.name))
    listeners_by_port = Nearest.group([lst for lst in model.listeners if lst.port is not None], lambda lst: lst.port)
    hosts = [h for h in model.hosts if h.span is not None]
    aliases = _aliases(model)
    targets = {id(s): _target(s, hosts, aliases) for u in model.upstreams for s in u.servers}
    server_hosts = {key: target[0] for key, target in targets.items() if target[0] is not None}

    resolutions = [_resolve(route, entrypoints, upstreams) for route in model.routes]
    links: list[Link] = []
    routed: set[int] = set()
    for resolution in resolutions:
        route, upstream = resolution.route, resolution.upstream
        if upstream is None:
            continue
        routed.add(id(upstream))
        for server in upstream.servers:
            for listener, evidence in _listeners_for(server, targets[id(server)], listeners_by_port):
                for ep in resolution.entrypoints or (None,):
                    links.append(Link(route, ep, upstream, server, listener, evidence))
    for upstream in model.upstreams:
        if id(upstream) in routed:
            continue
        for server in upstream.servers:
            for listener, evidence in _listeners_for(server, targets[id(server)], listeners_by_port):
                links.append(Link(None, None, upstream, server, listener, evidence))
    return PathIndex(links, resolutions, server_hosts)


def _resolve(route: Route, entrypoints: dict, upstreams: dict) -> Resolution:
    upstream = None
    if route.upstream is not None and (route.product, route.upstream) in upstreams:
        upstream = upstreams[(route.product, route.upstream)].nearest(route.span)[0]
    found = tuple(ep for name in route.entrypoints if (route.product, name) in entrypoints
                  for ep in entrypoints[(route.product, name)].nearest(route.span))
    return Resolution(route, upstream, found)


def _folders(span: Span) -> tuple[str, ...]:
    return tuple(span.path.split("/")[:-1])


class Nearest(Generic[T]):
    """Objects of one name, found by how close they are written to a referring line.

    A tree may hold several deployments (one compose stack per folder); names such as an
    entrypoint `smtp` or a container `mailserver` repeat across them. The objects sharing the
    deepest folder with the referring line belong to its deployment.
    """

    def __init__(self, items: list[T]):
        self.items = items
        self.by_prefix: dict[tuple[str, ...], list[T]] = defaultdict(list)
        if len(items) > 1:
            for item in items:
                folders = _folders(item.span)
                for depth in range(len(folders) + 1):
                    self.by_prefix[folders[:depth]].append(item)

    @staticmethod
    def group(items, key) -> dict:
        grouped: dict = defaultdict(list)
        for item in items:
            grouped[key(item)].append(item)
        return {k: Nearest(v) for k, v in grouped.items()}

    def nearest(self, span: Span, keep=None) -> list[T]:
        """The items nearest to `span` among those `keep` accepts (all by default)."""
        if len(self.items) <= 1:
            return [i for i in self.items if keep is None or keep(i)]
        folders = _folders(span)
        for depth in range(len(folders), -1, -1):
            found = [i for i in self.by_prefix.get(folders[:depth], ()) if keep is None or keep(i)]
            if found:
                return found
        return []


def _aliases(model: Model) -> dict[str, tuple[str, Setting[str]]]:
    """Addresses the configuration file's `hosts` table gives to hosts: address -> (host, where)."""
    table = model.config.hosts if model.config is not None else {}
    return {alias.value.lower(): (host, alias) for host, names in table.items() for alias in names}


def _target(server: UpstreamServer, hosts: list[Host],
            aliases: dict[str, tuple[str, Setting[str]]] | None = None) -> tuple[str | None, str, bool]:
    """(Host name the server dials or None, how that was learnt, whether the scan describes it)."""
    if server.target_host is not None:
        return server.target_host, f"on container {server.target_host!r}", True
    if server.host is not None and aliases and server.host.lower() in aliases:
        name, alias = aliases[server.host.lower()]
        return name, f"on {server.host}, which is {name!r} (host alias, {alias.span})", True
    if server.host is not None and server.host.lower() not in LOCALHOST:
        host = next(iter(Nearest([h for h in hosts if h.answers_to(server.host)]).nearest(server.span)), None)
        if host is None:
            return None, f"on {server.host}, taken to be the mail server in this directory", False
        return host.name, f"on {server.host}, which is {host.name!r}", True
    return None, "on a local address", True


def _listeners_for(server: UpstreamServer, target_of_server: tuple[str | None, str, bool],
                   listeners_by_port: dict[int, Nearest[Listener]]) -> list[tuple[Listener, str]]:
    if server.port is None or server.port not in listeners_by_port:
        return []
    candidates = listeners_by_port[server.port]
    target, why, described = target_of_server
    if not described:
        # Nobody in the scanned tree describes that host: only listeners whose host is unknown
        # can be it (a directory holding just proxy and mail configs).
        keep = (lambda lst: lst.host is None)
    elif target is None:
        hosts_known = any(lst.host is not None for lst in candidates.items)
        keep = (lambda lst: lst.host is None or not hosts_known)
    else:
        keep = (lambda lst: lst.host == target or lst.host is None)
    return [(lst, f"port {server.port} {why}") for lst in candidates.nearest(server.span, keep)]
