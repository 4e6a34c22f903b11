"""Traefik Docker label keys (rule MPL002), as a tree of lower-cased field names.

Sources: facts-traefik §1.1-§1.2 and facts-formats §6.1, which read Traefik's
`pkg/config/dynamic/{tcp,http,udp}_config.go`, `pkg/provider/docker/shared_labels.go`, the
generated `reference/dynamic-configuration/docker-labels.yml` (v2.11 and v3.7) and paerser's
label decoder.

How Traefik reads labels: only keys under the filters below are decoded (the filters compare
case-insensitively; the root `traefik` itself must be lower case, which the compose builder
reports); field names match case-insensitively; router, service and middleware names are free
(`*` here). One key the decoder cannot place (`field not found, node: X`) makes Traefik skip the
whole container. `None` means "anything below is accepted": HTTP middlewares and services have
many fields that do not matter on a mail path, so only their first level is checked.
"""
from __future__ import annotations

Tree = dict[str, "Tree | None"]

# the label prefixes Traefik decodes (compared case-insensitively); other labels are ignored
DECODED_PREFIXES = ("traefik.http.", "traefik.tcp.", "traefik.udp.", "traefik.tls.stores.default",
                    "traefik.enable", "traefik.docker.", "traefik.swarm.")

_TLS_DOMAINS: Tree = {"main": {}, "sans": {}}
TCP_ROUTER: Tree = {
    "rule": {}, "entrypoints": {}, "service": {}, "middlewares": {}, "priority": {}, "rulesyntax": {},
    "tls": {"passthrough": {}, "certresolver": {}, "options": {}, "domains": _TLS_DOMAINS},
}
TCP_SERVICE: Tree = {
    "loadbalancer": {
        "server": {"port": {}, "tls": {}, "address": {}, "weight": {}},
        "proxyprotocol": {"version": {}},
        "terminationdelay": {}, "serverstransport": {}, "healthcheck": None,
    },
    "weighted": None,
}
TCP_MIDDLEWARE: Tree = {
    "ipallowlist": {"sourcerange": {}}, "ipwhitelist": {"sourcerange": {}}, "inflightconn": {"amount": {}},
}
HTTP_ROUTER: Tree = {
    "rule": {}, "entrypoints": {}, "service": {}, "middlewares": {}, "priority": {}, "rulesyntax": {},
    "tls": {"certresolver": {}, "options": {}, "domains": _TLS_DOMAINS}, "observability": None,
}
HTTP_SERVICE: Tree = {"loadbalancer": None, "weighted": None, "mirroring": None, "failover": None}
UDP_ROUTER: Tree = {"entrypoints": {}, "service": {}}
UDP_SERVICE: Tree = {"loadbalancer": {"server": {"port": {}}}, "weighted": None}

LABELS: Tree = {
    "traefik": {
        "enable": {},
        "docker": {"network": {}, "lbswarm": {}, "allownonrunning": {}},
        "swarm": {"network": {}, "lbswarm": {}},
        "tcp": {
            "routers": {"*": TCP_ROUTER},
            "services": {"*": TCP_SERVICE},
            "middlewares": {"*": TCP_MIDDLEWARE},
            "serverstransports": None,  # tagged label:"-": ignored, not refused
        },
        "http": {
            "routers": {"*": HTTP_ROUTER},
            "services": {"*": HTTP_SERVICE},
            "middlewares": None,
            "serverstransports": None,
        },
        "udp": {"routers": {"*": UDP_ROUTER}, "services": {"*": UDP_SERVICE}},
        "tls": {"stores": None},
    },
}


def decoded(key: str) -> bool:
    """True when Traefik decodes this label (its prefix is one of the filters)."""
    return key.lower().startswith(DECODED_PREFIXES)


def unknown_segment(key: str) -> tuple[int, list[str]] | None:
    """(index of the first segment Traefik cannot place, the fields it expected there), or None.

    `key` is split on `.`; `[n]` slice indexes are ignored; field names compare lower-cased.
    """
    level: Tree | None = LABELS
    for index, segment in enumerate(key.split(".")):
        if level is None:
            return None
        if "*" in level:
            level = level["*"]
            continue
        bare = segment.split("[", 1)[0].lower()
        if bare not in level:
            return index, sorted(level)
        level = level[bare]
    return None
