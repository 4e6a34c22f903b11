"""Stalwart config.toml -> listeners with their PROXY trust lists; Traefik read from TOML files."""
from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from conftest import SHARED, analyse_tree

from mailproxy_lint.engine import analyse
from mailproxy_lint.load import classify
from mailproxy_lint.model import FileKind, MailProtocol, Product, ProxyHeader, ProxyTls, TlsMode, Version
from mailproxy_lint.parse.toml import parse_text

CORPUS = SHARED / "corpus" / "files"


def nets(*texts: str):
    return tuple(ipaddress.ip_network(t) for t in texts)


CONFIG = """
[server]
hostname = "mail.example.com"

[server.listener."smtp"]
bind = ["[::]:25"]
protocol = "smtp"

[server.listener."submission"]
bind = ["[::]:587", "0.0.0.0:2587"]
protocol = "smtp"
proxy.trusted-networks = ["172.16.42.2"]

[server.listener."submissions"]
bind = "[::]:465"
protocol = "smtp"
tls.implicit = true

[server.listener.imaptls]
bind = ["[::]:993"]
protocol = "imap"
tls.implicit = true

[server.listener."https"]
bind = ["[::]:443"]
protocol = "http"
tls.implicit = true

[server.proxy]
trusted-networks = ["10.0.0.0/8", "::1", "not-a-network", "172.16.0.0/4"]
"""


def test_listeners_protocols_tls_and_trust(tmp_path, monkeypatch):
    model = analyse_tree(tmp_path, {"stalwart/config.toml": CONFIG}, monkeypatch)
    listeners = {(lst.name, lst.port): lst for lst in model.listeners}
    assert sorted(listeners) == [("https", 443), ("imaptls", 993), ("smtp", 25), ("submission", 587),
                                 ("submission", 2587), ("submissions", 465)]
    assert all(lst.product is Product.STALWART for lst in listeners.values())
    smtp, submission, submissions = listeners["smtp", 25], listeners["submission", 587], listeners["submissions", 465]
    assert [smtp.protocol, submission.protocol, submissions.protocol, listeners["imaptls", 993].protocol,
            listeners["https", 443].protocol] == [MailProtocol.SMTP, MailProtocol.SUBMISSION, MailProtocol.SUBMISSIONS,
                                                   MailProtocol.IMAPS, None]
    assert smtp.tls.value is TlsMode.STARTTLS and submissions.tls.value is TlsMode.IMPLICIT
    assert (submissions.tls.span.line, submissions.tls.span.column) == (16, 1)
    # the listener's span is its bind line; addresses keep their brackets off
    assert (smtp.span.path, smtp.span.line, smtp.span.column) == ("stalwart/config.toml", 5, 1)
    assert (smtp.address, listeners["submission", 2587].address) == ("::", "0.0.0.0")
    # the global list: invalid entries and masks shorter than 8 bits are not networks Stalwart reads
    assert smtp.trusted_proxies.value == nets("10.0.0.0/8", "::1/128")
    assert smtp.trusted_proxies.origin == "server.proxy.trusted-networks"
    assert (smtp.trusted_proxies.span.line, smtp.trusted_proxies.span.column) == (29, 1)
    assert smtp.accepts_proxy.value is ProxyHeader.ANY and smtp.accepts_proxy.span == smtp.trusted_proxies.span
    # the listener's own list replaces the global one
    assert submission.trusted_proxies.value == nets("172.16.42.2/32")
    assert submission.trusted_proxies.origin == "server.listener.submission.proxy.trusted-networks"
    assert (submission.trusted_proxies.span.line, submission.trusted_proxies.span.column) == (11, 1)
    assert listeners["submission", 2587].trusted_proxies == submission.trusted_proxies
    assert smtp.instance == "stalwart:stalwart" and smtp.host is None and smtp.version is None


def test_no_trust_list_means_no_proxy_accepted(tmp_path, monkeypatch):
    model = analyse_tree(tmp_path, {"config.toml": '[server.listener.imap]\nbind = "[::]:143"\nprotocol = "imap"\n'},
                     monkeypatch)
    [imap] = model.listeners
    assert imap.accepts_proxy.value is ProxyHeader.NONE
    assert imap.trusted_proxies.value == () and imap.trusted_proxies.span is None
    assert Product.STALWART in model.present and model.knows(Product.STALWART)


def test_flat_exported_keys_with_indexed_lists(tmp_path, monkeypatch):
    flat = """
    server.listener.imaptls.bind = "[::]:993"
    server.listener.imaptls.protocol = "imap"
    server.listener.imaptls.proxy.override = true
    server.listener.imaptls.proxy.trusted-networks.0001 = "172.19.0.0/16"
    server.listener.imaptls.proxy.trusted-networks.0000 = "172.19.0.2"
    server.listener.imaptls.tls.implicit = true
    """
    model = analyse_tree(tmp_path, {"config.toml": flat}, monkeypatch)
    [imaps] = model.listeners
    assert imaps.trusted_proxies.value == nets("172.19.0.2/32", "172.19.0.0/16")
    assert imaps.trusted_proxies.span.line == 5  # the first entry in index order
    assert imaps.protocol is MailProtocol.IMAPS and imaps.port == 993


def test_old_global_key_before_0_5_3(tmp_path, monkeypatch):
    old = 'server.proxy-trusted-networks = ["172.16.42.2"]\n[server.listener.smtp]\nbind = "[::]:25"\nprotocol = "smtp"\n'
    [smtp] = analyse_tree(tmp_path, {"config.toml": old}, monkeypatch).listeners
    assert smtp.trusted_proxies.value == nets("172.16.42.2/32")
    assert smtp.trusted_proxies.origin == "server.proxy-trusted-networks"


def test_old_global_key_is_ignored_from_0_5_3(tmp_path, monkeypatch):
    compose = """
    services:
      stalwart:
        image: stalwartlabs/mail-server:v0.10.2
    """
    old = 'server.proxy-trusted-networks = ["172.16.42.2"]\n[server.listener.smtp]\nbind = "[::]:25"\nprotocol = "smtp"\n'
    model = analyse_tree(tmp_path, {"compose.yaml": compose, "stalwart/config.toml": old}, monkeypatch)
    [smtp] = model.listeners
    assert smtp.version.value == Version((0, 10, 2)) and smtp.host == "stalwart"
    assert smtp.accepts_proxy.value is ProxyHeader.NONE


def test_split_config_is_one_instance(tmp_path, monkeypatch):
    files = {
        "etc/config.toml": '[server.proxy]\ntrusted-networks = ["10.1.2.3"]\n',
        "etc/smtp/listener.toml": '[server.listener."smtp"]\nbind = ["[::]:25"]\nprotocol = "smtp"\n',
    }
    model = analyse_tree(tmp_path, files, monkeypatch)
    [smtp] = model.listeners
    assert smtp.trusted_proxies.value == nets("10.1.2.3/32") and smtp.trusted_proxies.span.path == "etc/config.toml"


def test_classification_by_content(tmp_path):
    cases = {
        "config.toml": ('[server.listener."smtp"]\nbind = "[::]:25"\n', FileKind.STALWART),
        "flat.toml": ('server.listener.smtp.bind = "[::]:25"\n', FileKind.STALWART),
        "proxy.toml": ('[server.proxy]\ntrusted-networks = ["10.0.0.1"]\n', FileKind.STALWART),
        "static.toml": ('[entryPoints.smtp]\naddress = ":25"\n', FileKind.TRAEFIK_STATIC),
        "dynamic.toml": ('[tcp.routers.smtp]\nrule = "HostSNI(`*`)"\n', FileKind.TRAEFIK_DYNAMIC),
        "aot.toml": ('[[tcp.services.smtp.loadBalancer.servers]]\naddress = "mail:25"\n', FileKind.TRAEFIK_DYNAMIC),
        "traefik.toml": ("", FileKind.TRAEFIK_STATIC),
        "pyproject.toml": ('[project]\nname = "x"\n[tool.pytest]\n', None),
    }
    for name, (head, kind) in cases.items():
        found = classify(tmp_path / name) or classify(tmp_path / name, head)
        assert (found[0] if found else None) == kind, name


# --------------------------------------------------------------------------------------------
# The rules see Stalwart (one end-to-end check each; the rule fixtures hold the rest)
# --------------------------------------------------------------------------------------------

COMPOSE = """
services:
  traefik:
    image: traefik:v3.1
    command:
      - "--entrypoints.smtp.address=:25"
    networks:
      mail:
        ipv4_address: 172.16.42.2
  stalwart:
    image: stalwartlabs/mail-server:v0.10.2
    labels:
      - "traefik.enable=true"
      - "traefik.tcp.routers.smtp.entrypoints=smtp"
      - "traefik.tcp.routers.smtp.rule=HostSNI(`*`)"
      - "traefik.tcp.services.smtp.loadbalancer.server.port=25"
      - "traefik.tcp.services.smtp.loadbalancer.proxyprotocol.version=2"
    networks:
      mail: {}
networks:
  mail:
    ipam:
      config:
        - subnet: 172.16.42.0/24
"""


def test_traefik_labels_link_to_stalwart_listener(tmp_path, monkeypatch):
    config = '[server.listener.smtp]\nbind = "[::]:25"\nprotocol = "smtp"\n[server.proxy]\ntrusted-networks = ["172.16.42.2"]\n'
    model = analyse_tree(tmp_path, {"compose.yaml": COMPOSE, "stalwart/config.toml": config}, monkeypatch)
    [link] = model.links
    assert (link.route.name, link.server.upstream, link.listener.name) == ("smtp", "smtp", "smtp")
    assert link.listener.host == "stalwart" and link.server.send_proxy.value is ProxyHeader.V2
    assert link.evidence == "port 25 on container 'stalwart'"


# --------------------------------------------------------------------------------------------
# Traefik from TOML: the same model as from YAML
# --------------------------------------------------------------------------------------------

STATIC_TOML = """
[entryPoints]
  [entryPoints.smtp]
    address = ":25"
    [entryPoints.smtp.proxyProtocol]
      trustedIPs = ["10.0.0.0/8"]
  [entryPoints.imaps]
    address = "[::]:993"
    [entryPoints.imaps.transport.respondingTimeouts]
      readTimeout = "600s"
"""

STATIC_YAML = """
entryPoints:
  smtp:
    address: ":25"
    proxyProtocol:
      trustedIPs: ["10.0.0.0/8"]
  imaps:
    address: "[::]:993"
    transport:
      respondingTimeouts:
        readTimeout: 600s
"""

DYNAMIC_TOML = """
[tcp.routers.imaps]
  rule = "HostSNI(`mail.example.com`)"
  entryPoints = ["imaps"]
  service = "imaps"
  [tcp.routers.imaps.tls]
    passthrough = true

[tcp.routers.smtp]
  entryPoints = ["smtp"]
  rule = "HostSNI(`*`)"
  service = "smtp"

[tcp.services.imaps.loadBalancer]
  serversTransport = "pp"
  [[tcp.services.imaps.loadBalancer.servers]]
    address = "mail:993"

[tcp.services.smtp.loadBalancer]
  [tcp.services.smtp.loadBalancer.proxyProtocol]
    version = 1
  [[tcp.services.smtp.loadBalancer.servers]]
    address = "mail:25"

[tcp.serversTransports.pp.proxyProtocol]
  version = 2
"""

DYNAMIC_YAML = """
tcp:
  routers:
    imaps:
      rule: "HostSNI(`mail.example.com`)"
      entryPoints: [imaps]
      service: imaps
      tls: {passthrough: true}
    smtp:
      entryPoints: [smtp]
      rule: "HostSNI(`*`)"
      service: smtp
  services:
    imaps:
      loadBalancer:
        serversTransport: pp
        servers: [{address: "mail:993"}]
    smtp:
      loadBalancer:
        proxyProtocol: {version: 1}
        servers: [{address: "mail:25"}]
  serversTransports:
    pp:
      proxyProtocol: {version: 2}
"""


def summary(model):
    entrypoints = sorted((e.name, e.port, e.address, e.accepts_proxy.value) for e in model.entrypoints)
    routes = sorted((r.name, r.entrypoints, r.upstream, r.tls.value, r.sni.value if r.sni else None)
                    for r in model.routes)
    servers = sorted((u.name, s.host, s.port, s.send_proxy.value) for u in model.upstreams for s in u.servers)
    return entrypoints, routes, servers


def test_toml_and_yaml_files_give_the_same_model(tmp_path, monkeypatch):
    toml = analyse_tree(tmp_path / "toml", {"traefik.toml": STATIC_TOML, "dynamic/mail.toml": DYNAMIC_TOML}, monkeypatch)
    yaml = analyse_tree(tmp_path / "yaml", {"traefik.yml": STATIC_YAML, "dynamic/mail.yml": DYNAMIC_YAML}, monkeypatch)
    assert summary(toml) == summary(yaml)
    entrypoints, routes, servers = summary(toml)
    assert entrypoints == [("imaps", 993, "::", ProxyHeader.NONE), ("smtp", 25, "", ProxyHeader.ANY)]
    assert routes == [("imaps", ("imaps",), "imaps@file", ProxyTls.PASSTHROUGH, "mail.example.com"),
                      ("smtp", ("smtp",), "smtp@file", ProxyTls.NONE, None)]
    assert servers == [("imaps@file", "mail", 993, ProxyHeader.V2), ("smtp@file", "mail", 25, ProxyHeader.V1)]
    imaps = next(e for e in toml.entrypoints if e.name == "imaps")
    assert imaps.span.path == "traefik.toml" and (imaps.span.line, imaps.span.column) == (7, 15)
    smtp_route = next(r for r in toml.routes if r.upstream == "smtp@file")
    assert (smtp_route.span.path, smtp_route.span.line, smtp_route.span.column) == ("dynamic/mail.toml", 10, 10)
    assert not toml.problems


def test_static_toml_mounted_into_traefik_wins_over_flags(tmp_path, monkeypatch):
    compose = """
    services:
      traefik:
        image: traefik:v3.1
        command: ["--entrypoints.flagged.address=:2525"]
        environment:
          TRAEFIK_ENTRYPOINTS_ENV_ADDRESS: ":2526"
        volumes:
          - ./traefik.toml:/etc/traefik/traefik.toml:ro
    """
    model = analyse_tree(tmp_path, {"compose.yaml": compose, "traefik.toml": STATIC_TOML}, monkeypatch)
    assert sorted(e.name for e in model.entrypoints) == ["imaps", "smtp"]


def test_static_file_that_provides_itself_is_read_as_dynamic_too(tmp_path, monkeypatch):
    both = STATIC_TOML + '\n[providers.file]\n  filename = "traefik.toml"\n' + DYNAMIC_TOML
    model = analyse_tree(tmp_path, {"traefik.toml": both}, monkeypatch)
    assert sorted(r.upstream for r in model.routes) == ["imaps@file", "smtp@file"]
    other = STATIC_TOML + '\n[providers.file]\n  directory = "/etc/traefik/dynamic"\n' + DYNAMIC_TOML
    model = analyse_tree(tmp_path / "other", {"traefik.toml": other}, monkeypatch)
    assert model.routes == ()  # Traefik ignores dynamic sections of a static file


# Corpus: every Traefik TOML file parses, and the routers/services/entrypoints it describes are
# modelled (the counts are read from the files with tomllib, independently of our parser).
def corpus_traefik_toml():
    if not CORPUS.is_dir():
        return []
    return sorted(p for d in ("traefik-static", "traefik-dynamic") for p in (CORPUS / d).glob("*.toml"))


@pytest.mark.skipif(not corpus_traefik_toml(), reason="../shared/corpus not available")
@pytest.mark.parametrize("path", corpus_traefik_toml(), ids=lambda p: p.name[:70])
def test_corpus_traefik_toml_is_modelled(path, tmp_path, monkeypatch):
    import tomllib

    kind = FileKind.TRAEFIK_DYNAMIC if path.parent.name == "traefik-dynamic" else FileKind.TRAEFIK_STATIC
    name = "traefik.toml" if kind is FileKind.TRAEFIK_STATIC else "dynamic.toml"
    (tmp_path / name).write_text(path.read_text(encoding="utf-8"))
    monkeypatch.chdir(tmp_path)
    model = analyse(".", [Path(name)], forced_kind=kind)
    assert parse_text(path.read_text(encoding="utf-8")).problems == []  # no MPL001 from the TOML itself
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    lower = {k.lower(): v for k, v in data.items()}
    static_eps = {n for n, ep in lower.get("entrypoints", {}).items()
                  if not str(ep.get("address", "")).lower().endswith("/udp")} if kind is FileKind.TRAEFIK_STATIC else set()
    assert {e.name for e in model.entrypoints} == static_eps
    read_dynamic = kind is FileKind.TRAEFIK_DYNAMIC or "file" in lower.get("providers", {})
    tcp = lower.get("tcp", {}) if read_dynamic else {}
    tcp_services = {f"{n}@file" for n, s in tcp.get("services", {}).items() if "loadBalancer" in s}
    assert {u.name for u in model.upstreams} == tcp_services
    rules = {n for n, r in tcp.get("routers", {}).items() if r.get("rule") and "(" in r["rule"]}
    http_rules = {n for n, r in (lower.get("http", {}) if read_dynamic else {}).get("routers", {}).items()
                  if r.get("rule") and "(" in r["rule"]}
    assert sorted(r.name for r in model.routes) == sorted(list(rules) + list(http_rules))
