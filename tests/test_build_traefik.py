"""The Traefik file builder: static entrypoints, Helm values, file provider, IngressRouteTCP."""
from __future__ import annotations

import textwrap
from pathlib import Path

from mailproxy_lint.engine import analyse
from mailproxy_lint.model import ProxyHeader, ProxyTls


def model_of(tmp_path: Path, files: dict[str, str], monkeypatch):
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    monkeypatch.chdir(tmp_path)
    return analyse(".", [Path(".")])


STATIC = """
entryPoints:
  smtp:
    address: ":25"
    proxyProtocol:
      trustedIPs: ["10.0.0.0/8"]
  imaps:
    address: "[::]:993"
    asDefault: true
  dns:
    address: ":53/udp"
"""


def test_static_file_entrypoints(tmp_path, monkeypatch):
    model = model_of(tmp_path, {"traefik.yml": STATIC}, monkeypatch)
    eps = {e.name: e for e in model.entrypoints}
    assert set(eps) == {"smtp", "imaps"}  # UDP entrypoints carry no TCP routers
    assert (eps["smtp"].port, eps["smtp"].address) == (25, "")
    assert eps["smtp"].accepts_proxy.value is ProxyHeader.ANY
    assert (eps["smtp"].accepts_proxy.span.line, eps["smtp"].accepts_proxy.span.column) == (5, 19)
    assert (eps["imaps"].port, eps["imaps"].address) == (993, "::")
    assert (eps["smtp"].span.line, eps["smtp"].span.column) == (3, 14)


DYNAMIC = """
tcp:
  routers:
    imaps:
      rule: "HostSNI(`mail.example.com`)"
      service: imaps
      tls:
        passthrough: true
    smtp:
      entryPoints: [smtp]
      rule: "HostSNI(`*`)"
      service: smtp@docker
  services:
    imaps:
      loadBalancer:
        servers:
          - address: "mailserver:10993"
        proxyProtocol: {version: 1}
        serversTransport: pp
  serversTransports:
    pp:
      proxyProtocol:
        version: 2
"""


def test_file_provider_routes_services_and_transport(tmp_path, monkeypatch):
    model = model_of(tmp_path, {"traefik.yml": STATIC, "dynamic/mail.yml": DYNAMIC}, monkeypatch)
    routes = {r.name: r for r in model.routes}
    assert routes["imaps"].entrypoints == ("imaps",)  # asDefault
    assert routes["imaps"].entrypoints_defaulted
    assert routes["imaps"].upstream == "imaps@file"
    assert routes["imaps"].tls.value is ProxyTls.PASSTHROUGH
    assert routes["imaps"].sni.value == "mail.example.com"
    assert routes["smtp"].upstream == "smtp"  # @docker is the compose builder's bare name
    assert routes["smtp"].upstream_span.line == 11
    server = model.upstream("imaps@file").servers[0]
    assert (server.host, server.port) == ("mailserver", 10993)
    # TK05: with no Traefik version known, the transport's proxyProtocol replaces the load balancer's
    assert server.send_proxy.value is ProxyHeader.V2
    assert server.send_proxy.span.line == 22
    assert not server.proxy_unknown


INGRESS = """
apiVersion: v1
kind: Service
metadata:
  name: mailserver
spec:
  ports:
    - name: imap
      port: 143
      targetPort: 10143
---
apiVersion: traefik.containo.us/v1alpha1
kind: IngressRouteTCP
metadata:
  name: imap
spec:
  entryPoints: [imap]
  routes:
    - match: HostSNI(`*`)
      services:
        - name: mailserver
          port: imap
          proxyProtocol:
            version: 2
        - name: mailserver
          port: sieve
  tls:
    secretName: mail-cert
"""

VALUES = """
ports:
  imap:
    port: 1143
    exposedPort: 143
    expose:
      default: true
"""


def test_ingressroutetcp_with_service_and_helm_values(tmp_path, monkeypatch):
    model = model_of(tmp_path, {"k8s/mail.yaml": INGRESS, "values.yaml": VALUES}, monkeypatch)
    assert [(e.name, e.port) for e in model.entrypoints] == [("imap", 1143)]
    route = model.routes[0]
    assert (route.name, route.entrypoints, route.tls.value) == ("imap", ("imap",), ProxyTls.TERMINATE)
    first, second = model.upstream("imap").servers
    assert (first.host, first.port, first.send_proxy.value) == ("mailserver", 10143, ProxyHeader.V2)
    assert second.port is None
    assert [u.value for u in route.unresolved] == ["port 'sieve' of Kubernetes Service 'mailserver'"]
    assert route.unresolved[0].span.line == 25


def test_plain_values_file_is_not_traefik(tmp_path, monkeypatch):
    model = model_of(tmp_path, {"values.yaml": "ports:\n  - 80\nreplicas: 2\n"}, monkeypatch)
    assert model.files == ()
