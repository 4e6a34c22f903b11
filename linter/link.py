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

from mailproxy_lint.build import Model
from mailproxy_lint.model import Entrypoint, Link, Listener, Route, Upstream, UpstreamServer

LOCALHOST = {"localhost", "127.0.0.1", "::1", "[::1]", "0.0.0.0", "*", ""}


def link(model: Model) -> list[Link]:
    links: list[Link] = []
    routed: set[str] = set()
    for route in model.routes:
        upstream = _find_upstream(model, route)
        if upstream is None:
            continue
        routed.add(upstream.name)
        entrypoints: list[Entrypoint | None] = [
            ep for name in route.entrypoints for ep in model.entrypoints
            if ep.name == name and ep.product is route.product
        ] or [None]
        for server in upstream.servers:
            for listener, evidence in _listeners_for(model, server):
                for ep in entrypoints:
                    links.append(Link(route, ep, upstream, server, listener, evidence))
    for upstream in model.upstreams:
        if upstream.name in routed:
            continue
        for server in upstream.servers:
            for listener, evidence in _listeners_for(model, server):
                links.append(Link(None, None, upstream, server, listener, evidence))
    return links


def _find_upstream(model: Model, route: Route) -> Upstream | None:
    if route.upstream is None:
        return None
    return next((u for u in model.upstreams if u.name == route.upstream and u.product is route.product), None)


def _listeners_for(model: Model, server: UpstreamServer) -> list[tuple[Listener, str]]:
    if server.port is None:
        return []
    by_port = [lst for lst in model.listeners if lst.port == server.port]
    if not by_port:
        return []
    hosts_known = {lst.host for lst in by_port if lst.host is not None}
    if server.target_host is not None:
        target, why = server.target_host, f"on container {server.target_host!r}"
    elif server.host is not None and server.host.lower() not in LOCALHOST:
        host = next((h for h in model.hosts if h.answers_to(server.host)), None)
        if host is None:
            # Nobody in the scanned tree describes that host: only listeners whose host is
            # unknown can be it (a directory holding just proxy and mail configs).
            return [(lst, f"port {server.port} on {server.host}, taken to be the mail server in this directory")
                    for lst in by_port if lst.host is None]
        target, why = host.name, f"on {server.host}, which is {host.name!r}"
    else:
        target, why = None, "on a local address"
    result = []
    for lst in by_port:
        if target is None:
            if lst.host is None or not hosts_known:
                result.append((lst, f"port {server.port} {why}"))
        elif lst.host == target or lst.host is None:
            result.append((lst, f"port {server.port} {why}"))
    return result
