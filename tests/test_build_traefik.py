"""The Traefik file builder: static entrypoints, Helm values, file provider, IngressRouteTCP."""
from __future__ import annotations

import pytest
from conftest import analyse_tree, shared_path

from mailproxy_lint.model import Product, ProxyHeader, ProxyTls


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
    model = analyse_tree(tmp_path, {"traefik.yml": STATIC}, monkeypatch)
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
    model = analyse_tree(tmp_path, {"traefik.yml": STATIC, "dynamic/mail.yml": DYNAMIC}, monkeypatch)
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
    model = analyse_tree(tmp_path, {"k8s/mail.yaml": INGRESS, "values.yaml": VALUES}, monkeypatch)
    assert [(e.name, e.port) for e in model.entrypoints] == [("imap", 1143)]
    route = model.routes[0]
    assert (route.name, route.entrypoints, route.tls.value) == ("imap", ("imap",), ProxyTls.TERMINATE)
    first, second = model.upstream("imap").servers
    assert (first.host, first.port, first.send_proxy.value) == ("mailserver", 10143, ProxyHeader.V2)
    assert second.port is None
    assert [u.value for u in route.unresolved] == ["port 'sieve' of Kubernetes Service 'mailserver'"]
    assert route.unresolved[0].span.line == 25


def test_plain_values_file_is_not_traefik(tmp_path, monkeypatch):
    model = analyse_tree(tmp_path, {"values.yaml": "ports:\n  - 80\nreplicas: 2\n"}, monkeypatch)
    assert model.files == ()


# --------------------------------------------------------------------------------------------
# Facts for the TLS, routing and version rules
# --------------------------------------------------------------------------------------------


def test_read_timeout_of_static_entrypoints(tmp_path, monkeypatch):
    model = analyse_tree(tmp_path, {"traefik.yml": """
        entryPoints:
          smtp:
            address: ":25"
            transport:
              respondingTimeouts:
                readTimeout: 0
          imap:
            address: ":143"
            transport:
              respondingTimeouts:
                readTimeout: 1m30s
          imaps:
            address: ":993"
        """}, monkeypatch)
    eps = {e.name: e for e in model.entrypoints}
    assert eps["smtp"].read_timeout.value == 0
    assert (eps["smtp"].read_timeout.span.line, eps["smtp"].read_timeout.span.column) == (6, 22)
    assert eps["imap"].read_timeout.value == 90
    assert eps["imaps"].read_timeout is None  # not written: the version decides the default


def test_go_durations():
    from mailproxy_lint.build.traefik import go_duration_seconds

    assert go_duration_seconds("600") == 600  # a bare integer is seconds
    assert go_duration_seconds("1h2m3s") == 3723
    assert go_duration_seconds("500ms") == 0.5
    assert go_duration_seconds('"60s"') == 60
    assert go_duration_seconds("ten") is None
    assert go_duration_seconds("5 min") is None


def test_helm_exposed_port_defaults_to_port_and_image_tag_gives_version(tmp_path, monkeypatch):
    model = analyse_tree(tmp_path, {"values.yaml": """
        image:
          tag: v3.5.2
        ports:
          smtp:
            port: 3325
            expose:
              default: true
          imaps:
            port: 8993
            exposedPort: 993
            expose:
              default: true
          internal:
            port: 9000
        """}, monkeypatch)
    eps = {e.name: e for e in model.entrypoints}
    smtp = eps["smtp"].exposed_port
    assert smtp.value == 3325 and smtp.span.line == 5 and "without exposedPort" in smtp.origin
    imaps = eps["imaps"].exposed_port
    assert imaps.value == 993 and (imaps.span.line, imaps.span.column) == (10, 18)
    assert eps["internal"].exposed_port is None  # no `expose`: in no Service
    version = model.version_of(Product.TRAEFIK, None)
    assert str(version.value) == "3.5.2" and version.span.line == 2
    assert version.origin == "Helm values image.tag v3.5.2"


def test_v2_rule_forms_and_api_group(tmp_path, monkeypatch):
    model = analyse_tree(tmp_path, {
        "dynamic.yml": """
            tcp:
              routers:
                both:
                  rule: "HostSNI(`a.example.com`, `b.example.com`)"
                  service: imaps
                  tls: {passthrough: true}
                legacy:
                  rule: "HostSNI(`c.example.com`, `d.example.com`)"
                  ruleSyntax: v2
                  service: imaps
                  tls: {passthrough: true}
                single:
                  rule: "HostSNI(`a.example.com`) || HostSNI(`b.example.com`)"
                  service: imaps
                  tls: {passthrough: true}
              services:
                imaps:
                  loadBalancer:
                    servers:
                      - address: "mail:993"
            """,
        "route.yaml": """
            apiVersion: traefik.containo.us/v1alpha1
            kind: IngressRouteTCP
            metadata:
              name: imaps
            spec:
              routes:
                - match: HostSNI(`*`)
                  services:
                    - name: mail
                      port: 993
            """}, monkeypatch)
    routes = {r.name: r for r in model.routes}
    (form,) = routes["both"].v2_rule_forms
    assert form.value == "HostSNI(`a.example.com`, `b.example.com`)"
    assert form.origin == "HostSNI with 2 arguments"
    assert (form.span.line, form.span.column) == (4, 14)  # at the matcher name inside the quotes
    assert routes["legacy"].v2_rule_forms == ()  # ruleSyntax v2 reads it
    assert routes["single"].v2_rule_forms == ()
    group = routes["imaps"].api_group
    assert group.value == "traefik.containo.us" and (group.span.line, group.span.column) == (1, 13)
    assert routes["both"].api_group is None


def test_load_balancer_proxy_protocol_kept_when_a_transport_replaces_it(tmp_path, monkeypatch):
    model = analyse_tree(tmp_path, {
        "compose.yaml": """
            services:
              mailserver:
                image: ghcr.io/docker-mailserver/docker-mailserver:15.0.0
                labels:
                  - traefik.tcp.routers.smtp.rule=HostSNI(`*`)
                  - traefik.tcp.services.smtp.loadbalancer.server.port=25
                  - traefik.tcp.services.smtp.loadbalancer.proxyProtocol.version=2
                  - traefik.tcp.routers.imap.rule=HostSNI(`*`)
                  - traefik.tcp.routers.imap.service=imap
                  - traefik.tcp.services.imap.loadbalancer.server.port=143
            """,
        "dynamic.yml": """
            tcp:
              serversTransports:
                plain: {}
              services:
                pp:
                  loadBalancer:
                    serversTransport: plain
                    proxyProtocol: {version: 1}
                    servers:
                      - address: "mail:10143"
            """}, monkeypatch)
    servers = {s.upstream: s for u in model.upstreams for s in u.servers}
    smtp = servers["smtp"].lb_proxy_protocol
    assert smtp.value is ProxyHeader.V2 and (smtp.span.path, smtp.span.line) == ("compose.yaml", 7)
    assert servers["imap"].lb_proxy_protocol is None
    pp = servers["pp@file"]
    assert pp.lb_proxy_protocol.value is ProxyHeader.V1  # as written on the load balancer
    assert pp.send_proxy.value is ProxyHeader.NONE  # the transport (no proxyProtocol) replaces it


# Traefik's own CRD provider fixtures (pkg/provider/kubernetes/crd/fixtures/tcp): the routes,
# services and transports their sources describe.
CRD_FIXTURES = {
    "with_proxyprotocol": [("whoamitcp", 8000, ProxyHeader.V2, None)],
    "with_tls_passthrough": [("whoamitcp", 8000, ProxyHeader.NONE, None)],
    "with_servers_transport": [("whoamitcp", 8000, ProxyHeader.NONE, "test@kubernetescrd"),
                               ("whoamitcp2", 8080, ProxyHeader.NONE, "default-test@kubernetescrd")],
}


@pytest.mark.parametrize("name", sorted(CRD_FIXTURES))
def test_corpus_crd_fixtures_are_modelled(name, tmp_path, monkeypatch):
    source = shared_path("corpus", "files", "traefik-k8s",
                         f"traefik__traefik__pkg__provider__kubernetes__crd__fixtures__tcp__{name}.yml")
    deployment = analyse_tree(tmp_path, {"route.yml": source.read_text(encoding="utf-8")}, monkeypatch)
    (route,) = deployment.routes
    assert (route.name, route.entrypoints, route.sni.value) == ("test.route", ("foo",), "foo.com")
    assert route.tls.value is (ProxyTls.PASSTHROUGH if name == "with_tls_passthrough" else ProxyTls.NONE)
    (upstream,) = deployment.upstreams
    assert [(s.host, s.port, s.send_proxy.value, s.transport.value if s.transport else None)
            for s in upstream.servers] == CRD_FIXTURES[name]
