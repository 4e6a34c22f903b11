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
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import PurePosixPath
from typing import TypeVar

from mailproxy_lint.build import Model
from mailproxy_lint.model import Entrypoint, Link, Listener, Span, Upstream, UpstreamServer

T = TypeVar("T")

LOCALHOST = {"localhost", "127.0.0.1", "::1", "[::1]", "0.0.0.0", "*", ""}


def link(model: Model) -> list[Link]:
    entrypoints_by_name: dict[tuple[object, str], list[Entrypoint]] = defaultdict(list)
    for ep in model.entrypoints:
        entrypoints_by_name[(ep.product, ep.name)].append(ep)
    upstreams_by_name: dict[tuple[object, str], list[Upstream]] = defaultdict(list)
    for upstream in model.upstreams:
        upstreams_by_name[(upstream.product, upstream.name)].append(upstream)
    listeners_by_port: dict[int, list[Listener]] = defaultdict(list)
    for listener in model.listeners:
        if listener.port is not None:
            listeners_by_port[listener.port].append(listener)

    links: list[Link] = []
    routed: set[int] = set()
    for route in model.routes:
        if route.upstream is None:
            continue
        upstream = nearest(route.span, upstreams_by_name.get((route.product, route.upstream), []))
        if not upstream:
            continue
        upstream = upstream[0]
        routed.add(id(upstream))
        entrypoints: list[Entrypoint | None] = [
            ep for name in route.entrypoints
            for ep in nearest(route.span, entrypoints_by_name.get((route.product, name), []))
        ] or [None]
        for server in upstream.servers:
            for listener, evidence in _listeners_for(model, server, listeners_by_port):
                for ep in entrypoints:
                    links.append(Link(route, ep, upstream, server, listener, evidence))
    for upstream in model.upstreams:
        if id(upstream) in routed:
            continue
        for server in upstream.servers:
            for listener, evidence in _listeners_for(model, server, listeners_by_port):
                links.append(Link(None, None, upstream, server, listener, evidence))
    return links


def nearest(span: Span, candidates: list[T]) -> list[T]:
    """The candidates declared closest to `span` in the directory tree.

    A tree may hold several deployments (one compose stack per folder); names such as an
    entrypoint `smtp` or a container `mailserver` repeat across them. The objects sharing the
    deepest folder with the referring line belong to its deployment.
    """
    if len(candidates) <= 1:
        return candidates
    here = PurePosixPath(span.path).parent.parts
    shared = {id(c): _shared_depth(here, PurePosixPath(c.span.path).parent.parts) for c in candidates}
    best = max(shared.values())
    return [c for c in candidates if shared[id(c)] == best]


def _shared_depth(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    depth = 0
    for x, y in zip(a, b):
        if x != y:
            break
        depth += 1
    return depth


def _listeners_for(model: Model, server: UpstreamServer,
                   listeners_by_port: dict[int, list[Listener]]) -> list[tuple[Listener, str]]:
    if server.port is None:
        return []
    by_port = listeners_by_port.get(server.port, [])
    if not by_port:
        return []
    hosts_known = {lst.host for lst in by_port if lst.host is not None}
    if server.target_host is not None:
        target, why = server.target_host, f"on container {server.target_host!r}"
    elif server.host is not None and server.host.lower() not in LOCALHOST:
        host = next(iter(nearest(server.span, [h for h in model.hosts if h.span is not None
                                               and h.answers_to(server.host)])), None)
        if host is None:
            # Nobody in the scanned tree describes that host: only listeners whose host is
            # unknown can be it (a directory holding just proxy and mail configs).
            unknown = nearest(server.span, [lst for lst in by_port if lst.host is None])
            return [(lst, f"port {server.port} on {server.host}, taken to be the mail server in this directory")
                    for lst in unknown]
        target, why = host.name, f"on {server.host}, which is {host.name!r}"
    else:
        target, why = None, "on a local address"
    matching = []
    for lst in by_port:
        if target is None:
            if lst.host is None or not hosts_known:
                matching.append(lst)
        elif lst.host == target or lst.host is None:
            matching.append(lst)
    return [(lst, f"port {server.port} {why}") for lst in nearest(server.span, matching)]
