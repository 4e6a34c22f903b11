"""Compose -> hosts, versions, docker-mailserver platforms, Traefik entrypoints/routes/upstreams.

The seed snippets (docker-mailserver's proxy guide, old and new, and Stalwart's Traefik example)
are reproduced here as users paste them, and every object they imply is checked.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from mailproxy_lint.build import Model
from mailproxy_lint.build.compose import build
from mailproxy_lint.data.versions import ImageRef, dms_release, identify
from mailproxy_lint.model import FileKind, Product, ProxyHeader, ProxyTls, SourceFile, Span, Version
from mailproxy_lint.parse import parse_file

CORPUS = Path(__file__).resolve().parents[1] / ".." / "shared" / "corpus" / "files" / "traefik-compose"


def model_of(*files: tuple[str, str]) -> Model:
    """Build the model of compose files given as (display path, text)."""
    model = Model(".")
    parsed = [parse_file(SourceFile(path, FileKind.COMPOSE, text, abspath=f"/srv/{path}")) for path, text in files]
    for item in parsed:
        assert item.ok, item.problems
    build(parsed, model)
    return model


def one(items, **attrs):
    found = [i for i in items if all(getattr(i, k) == v for k, v in attrs.items())]
    assert len(found) == 1, found
    return found[0]


def at(path: str, line: int, column: int = 9) -> tuple[str, int, int]:
    return (path, line, column)


def where(span: Span | None) -> tuple[str, int, int] | None:
    return (span.path, span.line, span.column) if span else None


# --------------------------------------------------------------------------------------------
# Seed 000: docker-mailserver guide (2021, Traefik v2), proxy and labels in one compose file
# --------------------------------------------------------------------------------------------

SEED_000 = """\
version: '3.8'
services:
  reverse-proxy:
    image: docker.io/traefik:latest # v2.5
    container_name: docker-traefik
    restart: always
    command:
      - "--providers.docker"
      - "--providers.docker.exposedbydefault=false"
      - "--providers.docker.network=proxy"
      - "--entrypoints.web.address=:80"
      - "--entryPoints.websecure.address=:443"
      - "--entryPoints.smtp.address=:25"
      - "--entryPoints.smtp-ssl.address=:465"
      - "--entryPoints.imap-ssl.address=:993"
      - "--entryPoints.sieve.address=:4190"
    ports:
      - "25:25"
      - "465:465"
      - "993:993"
      - "4190:4190"
  mailserver:
    image: docker.io/mailserver/docker-mailserver:latest
    container_name: mailserver
    hostname: mail
    domainname: example.com
    restart: always
    networks:
      - proxy
    labels:
      - "traefik.enable=true"
      - "traefik.tcp.routers.smtp.rule=HostSNI(`*`)"
      - "traefik.tcp.routers.smtp.entrypoints=smtp"
      - "traefik.tcp.routers.smtp.service=smtp"
      - "traefik.tcp.services.smtp.loadbalancer.server.port=25"
      - "traefik.tcp.services.smtp.loadbalancer.proxyProtocol.version=1"
      - "traefik.tcp.routers.smtp-ssl.rule=HostSNI(`*`)"
      - "traefik.tcp.routers.smtp-ssl.tls=false"
      - "traefik.tcp.routers.smtp-ssl.entrypoints=smtp-ssl"
      - "traefik.tcp.routers.smtp-ssl.service=smtp-ssl"
      - "traefik.tcp.services.smtp-ssl.loadbalancer.server.port=465"
      - "traefik.tcp.services.smtp-ssl.loadbalancer.proxyProtocol.version=1"
      - "traefik.tcp.routers.imap-ssl.rule=HostSNI(`*`)"
      - "traefik.tcp.routers.imap-ssl.entrypoints=imap-ssl"
      - "traefik.tcp.routers.imap-ssl.service=imap-ssl"
      - "traefik.tcp.services.imap-ssl.loadbalancer.server.port=10993"
      - "traefik.tcp.services.imap-ssl.loadbalancer.proxyProtocol.version=2"
      - "traefik.tcp.routers.sieve.rule=HostSNI(`*`)"
      - "traefik.tcp.routers.sieve.entrypoints=sieve"
      - "traefik.tcp.routers.sieve.service=sieve"
      - "traefik.tcp.services.sieve.loadbalancer.server.port=4190"
"""


def test_seed_000_hosts_and_versions():
    model = model_of(("compose.yml", SEED_000))
    proxy = one(model.hosts, name="reverse-proxy")
    assert proxy.aliases == {"docker-traefik"}
    assert proxy.image.value == "docker.io/traefik:latest" and where(proxy.image.span) == at("compose.yml", 4, 12)
    mail = one(model.hosts, name="mailserver")
    assert mail.aliases == {"mail", "mail.example.com"}
    assert where(mail.span) == at("compose.yml", 22, 3)
    traefik = model.versions[("reverse-proxy", Product.TRAEFIK)]
    assert traefik.value == Version((3, 7, 11)) and "latest" in traefik.origin
    assert model.versions[("mailserver", Product.POSTFIX)].value == Version((3, 7))
    assert model.versions[("mailserver", Product.DOVECOT)].value == Version((2, 3, 19))
    assert model.present >= {Product.TRAEFIK, Product.POSTFIX, Product.DOVECOT}


def test_seed_000_entrypoints_from_command_flags():
    model = model_of(("compose.yml", SEED_000))
    assert [(e.name, e.port, e.address) for e in model.entrypoints] == [
        ("web", 80, ""), ("websecure", 443, ""), ("smtp", 25, ""), ("smtp-ssl", 465, ""),
        ("imap-ssl", 993, ""), ("sieve", 4190, ""),
    ]
    smtp = one(model.entrypoints, name="smtp")
    assert smtp.product is Product.TRAEFIK and smtp.host == "reverse-proxy"
    assert where(smtp.span) == at("compose.yml", 13)
    assert smtp.accepts_proxy.value is ProxyHeader.NONE


def test_seed_000_routes_and_upstreams():
    model = model_of(("compose.yml", SEED_000))
    assert [(r.name, r.entrypoints, r.upstream) for r in model.routes] == [
        ("smtp", ("smtp",), "smtp"), ("smtp-ssl", ("smtp-ssl",), "smtp-ssl"),
        ("imap-ssl", ("imap-ssl",), "imap-ssl"), ("sieve", ("sieve",), "sieve"),
    ]
    smtp = one(model.routes, name="smtp")
    assert where(smtp.span) == at("compose.yml", 32)  # the rule label
    assert smtp.tls.value is ProxyTls.NONE and smtp.sni is None
    assert smtp.layer.value == "tcp" and smtp.idle_timeout.value is None
    assert "keeps routed TCP connections open" in smtp.idle_timeout.origin
    smtp_ssl = one(model.routes, name="smtp-ssl")
    assert smtp_ssl.tls.value is ProxyTls.NONE and where(smtp_ssl.tls.span) == at("compose.yml", 38)
    servers = {u.name: u.servers for u in model.upstreams}
    assert {name: [(s.port, s.send_proxy.value, s.target_host, s.host) for s in ss] for name, ss in servers.items()} == {
        "smtp": [(25, ProxyHeader.V1, "mailserver", None)],
        "smtp-ssl": [(465, ProxyHeader.V1, "mailserver", None)],
        "imap-ssl": [(10993, ProxyHeader.V2, "mailserver", None)],
        "sieve": [(4190, ProxyHeader.NONE, "mailserver", None)],
    }
    imap = servers["imap-ssl"][0]
    assert where(imap.span) == at("compose.yml", 46)
    assert where(imap.send_proxy.span) == at("compose.yml", 47)
    assert where(one(model.upstreams, name="imap-ssl").span) == at("compose.yml", 46)


def test_seed_000_docker_mailserver_platform():
    model = model_of(("compose.yml", SEED_000))
    (platform,) = model.platforms
    assert (platform.name, platform.host) == ("docker-mailserver", "mailserver")
    assert platform.version.value == Version((15, 1, 0))
    assert where(platform.span) == at("compose.yml", 23, 12)
    assert platform.config_dir is None and platform.env == {}


# --------------------------------------------------------------------------------------------
# Seed 001: current docker-mailserver guide, proxy and DMS as two compose snippets
# --------------------------------------------------------------------------------------------

SEED_001_TRAEFIK = """\
services:
  reverse-proxy:
    image: docker.io/traefik:latest # 2.10 / 3.0
    # CAUTION: In production you should configure the Docker API endpoint securely:
    volumes:
      - /var/run/docker.sock:/var/run/docker.sock
    command:
      # Docker provider config:
      - --providers.docker=true
      - --providers.docker.exposedbydefault=false
      # DMS ports you want to proxy:
      - --entryPoints.mail-smtp.address=:25
      - --entryPoints.mail-submission.address=:587
      - --entryPoints.mail-submissions.address=:465
      - --entryPoints.mail-imap.address=:143
      - --entryPoints.mail-imaps.address=:993
      - --entryPoints.mail-pop3.address=:110
      - --entryPoints.mail-pop3s.address=:995
      - --entryPoints.mail-managesieve.address=:4190
    ports:
      - "25:25"
      - "587:587"
    # An IP is assigned here for other services (Dovecot) to trust for PROXY protocol:
    networks:
      default:
        ipv4_address: 172.16.42.2

networks:
  default:
    name: my-network
    ipam:
      config:
        - subnet: "172.16.42.0/24"
"""

SEED_001_DMS = """\
services:
  dms:
    image: ghcr.io/docker-mailserver/docker-mailserver:latest
    hostname: mail.example.com
    volumes:
      - ./docker-data/dms/config/:/tmp/docker-mailserver/
    labels:
      - traefik.enable=true

      # These are examples, configure the equivalent for any additional ports you proxy.
      # Explicit TLS (STARTTLS):
      - traefik.tcp.routers.mail-smtp.rule=HostSNI(`*`)
      - traefik.tcp.routers.mail-smtp.entrypoints=smtp
      - traefik.tcp.routers.mail-smtp.service=smtp
      - traefik.tcp.services.mail-smtp.loadbalancer.server.port=25
      - traefik.tcp.services.mail-smtp.loadbalancer.proxyProtocol.version=2

      # Implicit TLS is no different, except for optional HostSNI support:
      - traefik.tcp.routers.mail-submissions.rule=HostSNI(`*`)
      - traefik.tcp.routers.mail-submissions.entrypoints=smtp-submissions
      - traefik.tcp.routers.mail-submissions.service=smtp-submissions
      - traefik.tcp.services.mail-submissions.loadbalancer.server.port=465
      - traefik.tcp.services.mail-submissions.loadbalancer.proxyProtocol.version=2
      # NOTE: Optionally match by SNI rule, this requires TLS passthrough (not compatible with STARTTLS):
      #- traefik.tcp.routers.mail-submissions.rule=HostSNI(`mail.example.com`)
      #- traefik.tcp.routers.mail-submissions.tls.passthrough=true
"""


def test_seed_001_across_two_compose_files():
    model = model_of(("proxy/compose.yaml", SEED_001_TRAEFIK), ("mail/compose.yaml", SEED_001_DMS))
    proxy = one(model.hosts, name="reverse-proxy")
    assert [(a.value, where(a.span)) for a in proxy.addresses] == [("172.16.42.2", at("proxy/compose.yaml", 26, 23))]
    assert [(e.name, e.port) for e in model.entrypoints] == [
        ("mail-smtp", 25), ("mail-submission", 587), ("mail-submissions", 465), ("mail-imap", 143),
        ("mail-imaps", 993), ("mail-pop3", 110), ("mail-pop3s", 995), ("mail-managesieve", 4190),
    ]
    # The guide's labels name entrypoints and services that do not exist; they are kept as
    # written so a rule can say so.
    assert [(r.name, r.entrypoints, r.upstream) for r in model.routes] == [
        ("mail-smtp", ("smtp",), "smtp"),
        ("mail-submissions", ("smtp-submissions",), "smtp-submissions"),
    ]
    assert [(u.name, u.servers[0].port, u.servers[0].send_proxy.value) for u in model.upstreams] == [
        ("mail-smtp", 25, ProxyHeader.V2), ("mail-submissions", 465, ProxyHeader.V2),
    ]
    (platform,) = model.platforms
    assert platform.host == "dms" and platform.config_dir == "mail/docker-data/dms/config"
    assert one(model.hosts, name="dms").aliases == {"mail.example.com"}


# --------------------------------------------------------------------------------------------
# Seed 003: Stalwart's Traefik example (image lines elided in the original, "###" kept)
# --------------------------------------------------------------------------------------------

SEED_003 = """\
networks:
  ###
  stalwart:
    driver: bridge
    attachable: true
    internal: true
    driver_opts:
      com.docker.network.driver.mtu: 9000
  ###
services:
  ###
  traefik:
    ###
    container_name: traefik
    read_only: true
    tmpfs:
      - /run
      - /var/run
    command:
      ###
      - "--entrypoints.smtpsecure.address=:465"
      - "--entrypoints.imapsecure.address=:993"
      ###
      - "--providers.docker"
      ###
    ports:
      - "465:465/tcp"
      - "993:993/tcp"
    networks:
      - internet
      - stalwart
  ###
  stalwart:
    ###
    container_name: stalwart
    read_only: true
    tmpfs:
      - /run
      - /var/run
    ###
    ports:
      - "25:25/tcp"
      - "587:587/tcp"
    ###
    labels:
      ###
      - "traefik.enable=true"
      - "traefik.tcp.routers.smtpsecure.tls=true"
      - "traefik.tcp.routers.smtpsecure.tls.certresolver=letsencrypt"
      - "traefik.tcp.routers.smtpsecure.entrypoints=smtpsecure"
      - "traefik.tcp.routers.smtpsecure.rule=HostSNI(`mail.example.com`)"
      - "traefik.tcp.routers.smtpsecure.service=smtp"
      - "traefik.tcp.services.smtp.loadbalancer.server.port=587"
      - "traefik.tcp.services.smtp.loadbalancer.proxyprotocol.version=2"
      - "traefik.tcp.routers.imapsecure.tls=true"
      - "traefik.tcp.routers.imapsecure.tls.certresolver=letsencrypt"
      - "traefik.tcp.routers.imapsecure.entrypoints=imapsecure"
      - "traefik.tcp.routers.imapsecure.rule=HostSNI(`mail.example.com`)"
      - "traefik.tcp.routers.imapsecure.service=imap"
      - "traefik.tcp.services.imap.loadbalancer.server.port=143"
      - "traefik.tcp.services.imap.loadbalancer.proxyprotocol.version=2"
      - "traefik.docker.network=docker_stalwart-internal"
      ###
    networks:
      - internet
      - stalwart
"""


def test_seed_003_stalwart_behind_traefik():
    model = model_of(("compose.yaml", SEED_003))
    # the Traefik service's image is elided; its flags still identify it
    assert [(e.name, e.port, e.host) for e in model.entrypoints] == [
        ("smtpsecure", 465, "traefik"), ("imapsecure", 993, "traefik"),
    ]
    assert Product.TRAEFIK in model.present and model.platforms == []
    smtp = one(model.routes, name="smtpsecure")
    assert (smtp.entrypoints, smtp.upstream) == (("smtpsecure",), "smtp")
    assert where(smtp.span) == at("compose.yaml", 51)
    assert smtp.tls.value is ProxyTls.TERMINATE and where(smtp.tls.span) == at("compose.yaml", 48)
    assert smtp.sni.value == "mail.example.com" and where(smtp.sni.span) == at("compose.yaml", 51)
    servers = {u.name: u.servers[0] for u in model.upstreams}
    assert (servers["smtp"].port, servers["smtp"].send_proxy.value) == (587, ProxyHeader.V2)
    assert (servers["imap"].port, servers["imap"].send_proxy.value) == (143, ProxyHeader.V2)
    assert servers["imap"].target_host == "stalwart"
    assert one(model.hosts, name="stalwart").aliases == frozenset()


# --------------------------------------------------------------------------------------------
# Label decoding: forms, case, filtering, defaults
# --------------------------------------------------------------------------------------------

PLAIN_TRAEFIK = "services:\n  traefik:\n    image: traefik:v3.1\n"
TRAEFIK = """\
services:
  traefik:
    image: traefik:v3.1
    command: >-
      --entrypoints.smtp.address=:25 --entrypoints.imaps.address=0.0.0.0:993
      --entrypoints.dns.address=:53/udp --providers.docker.exposedByDefault=false
"""


def labels_model(labels: str, *, extra: str = "", image: str = "mailserver/docker-mailserver:15.0.0",
                 traefik: str = PLAIN_TRAEFIK) -> Model:
    mail = f"services:\n  mailserver:\n    image: {image}\n{extra}    labels:\n{labels}"
    return model_of(("proxy/compose.yaml", traefik), ("mail/compose.yaml", mail))


def test_command_string_form_and_udp_entrypoints():
    model = labels_model("      traefik.enable: 'true'\n", traefik=TRAEFIK)
    assert [(e.name, e.port, e.address) for e in model.entrypoints] == [("smtp", 25, ""), ("imaps", 993, "0.0.0.0")]
    # words of a multi-line `command:` string point at the string itself
    assert where(one(model.entrypoints, name="imaps").span) == at("proxy/compose.yaml", 4, 14)


def test_mapping_form_deploy_labels_and_case_insensitive_keys():
    labels = (
        "      traefik.enable: true\n"
        "      traefik.TCP.Routers.Mail.Rule: HostSNI(`*`)\n"
        "      traefik.tcp.routers.mail.ENTRYPOINTS: smtp\n"
    )
    extra = "    deploy:\n      labels:\n        - traefik.tcp.services.mail.LoadBalancer.server.port=25\n"
    model = labels_model(labels, extra=extra)
    (route,) = model.routes
    assert (route.name, route.entrypoints, route.upstream) == ("Mail", ("smtp",), "mail")
    assert where(route.span) == at("mail/compose.yaml", 9, 7)
    (upstream,) = model.upstreams
    assert upstream.servers[0].port == 25 and where(upstream.servers[0].span) == at("mail/compose.yaml", 6, 11)


def test_container_not_enabled_is_ignored():
    rule = "      - traefik.tcp.routers.smtp.rule=HostSNI(`*`)\n"
    assert labels_model(rule, traefik=TRAEFIK).routes == []  # exposedByDefault=false, no traefik.enable
    assert labels_model("      - traefik.enable=false\n" + rule).routes == []
    assert len(labels_model("      - traefik.enable=true\n" + rule, traefik=TRAEFIK).routes) == 1
    assert len(labels_model(rule).routes) == 1  # exposed by default


def test_router_defaults_service_port_and_entrypoints():
    labels = "      - traefik.enable=true\n      - traefik.tcp.routers.smtp.rule=HostSNI(`*`)\n"
    model = labels_model(labels, traefik=TRAEFIK)
    (route,) = model.routes
    assert route.entrypoints == ("smtp", "imaps")  # all TCP entrypoints; the UDP one is never a default
    # no service labels: Traefik's automatic service <service>_<project>, normalised
    assert route.upstream == "mailserver-mail"
    (upstream,) = model.upstreams
    assert upstream.name == "mailserver-mail"
    assert upstream.servers[0].port == 25  # the image's lowest exposed port
    assert upstream.servers[0].send_proxy.value is ProxyHeader.NONE


def test_router_without_service_uses_the_only_service_or_none():
    one_service = (
        "      - traefik.enable=true\n      - traefik.tcp.routers.imap.rule=HostSNI(`*`)\n"
        "      - traefik.tcp.services.dovecot.loadbalancer.server.port=10993\n"
    )
    assert labels_model(one_service).routes[0].upstream == "dovecot"
    two_services = one_service + "      - traefik.tcp.services.other.loadbalancer.server.port=143\n"
    assert labels_model(two_services).routes[0].upstream is None  # Traefik cannot pick one


def test_port_detection_uses_compose_ports_for_unknown_images():
    labels = "      - traefik.enable=true\n      - traefik.tcp.routers.x.rule=HostSNI(`*`)\n"
    extra = "    expose:\n      - '1143'\n    ports:\n      - 127.0.0.1:2525:587/tcp\n"
    model = labels_model(labels, image="example/mail:1", extra=extra)
    assert model.upstreams[0].servers[0].port == 587
    assert labels_model(labels, image="example/mail:1").upstreams[0].servers[0].port is None


def test_as_default_entrypoints():
    traefik = ("services:\n  traefik:\n    image: traefik:v3.1\n    command:\n"
               "      - --entrypoints.web.address=:80\n      - --entrypoints.smtp.address=:25\n"
               "      - --entrypoints.smtp.asDefault=true\n")
    model = labels_model("      - traefik.tcp.routers.x.rule=HostSNI(`*`)\n", traefik=traefik)
    assert model.routes[0].entrypoints == ("smtp",)


@pytest.mark.parametrize(("labels", "expected", "line"), [
    ("- traefik.tcp.services.s.loadbalancer.proxyProtocol=true\n", ProxyHeader.V2, 6),
    ("- traefik.tcp.services.s.loadbalancer.proxyprotocol=\n", ProxyHeader.V2, 6),
    ("- traefik.tcp.services.s.loadbalancer.proxyprotocol.version=1\n", ProxyHeader.V1, 6),
    ("- traefik.tcp.services.s.loadbalancer.proxyprotocol=false\n"
     "      - traefik.tcp.services.s.loadbalancer.proxyprotocol.version=2\n", ProxyHeader.NONE, 6),
    ("- traefik.tcp.services.s.loadbalancer.serverstransport=pp@file\n", ProxyHeader.NONE, 6),
])
def test_proxy_protocol_labels(labels, expected, line):
    model = labels_model("      - traefik.tcp.services.s.loadbalancer.server.port=25\n      " + labels)
    send = model.upstreams[0].servers[0].send_proxy
    assert send.value is expected and send.span.line == line


def test_unknown_proxy_protocol_version_leaves_no_server():
    model = labels_model("      - traefik.tcp.services.s.loadbalancer.proxyprotocol.version=3\n")
    assert model.upstreams[0].servers == ()


@pytest.mark.parametrize(("labels", "expected", "line"), [
    ("- traefik.tcp.routers.r.tls=true\n", ProxyTls.TERMINATE, 6),
    ("- traefik.tcp.routers.r.tls=1\n", ProxyTls.NONE, 6),  # only "" and true enable it
    ("- traefik.tcp.routers.r.tls.certresolver=le\n", ProxyTls.TERMINATE, 6),
    ("- traefik.tcp.routers.r.tls.passthrough=false\n", ProxyTls.TERMINATE, 6),
    ("- traefik.tcp.routers.r.tls=true\n      - traefik.tcp.routers.r.tls.passthrough=true\n", ProxyTls.PASSTHROUGH, 7),
    ("- traefik.tcp.routers.r.tls=false\n      - traefik.tcp.routers.r.tls.passthrough=true\n", ProxyTls.NONE, 6),
])
def test_router_tls(labels, expected, line):
    model = labels_model("      - traefik.tcp.routers.r.rule=HostSNI(`mail.example.com`)\n      " + labels)
    tls = model.routes[0].tls
    assert tls.value is expected and tls.span.line == line


def test_http_routers_are_routes_without_upstream():
    labels = (
        "      - traefik.http.routers.web.rule=Host(`mail.example.com`)\n"
        "      - traefik.http.routers.web.tls.certresolver=le\n"
        "      - traefik.http.routers.web.service=web\n"
        "      - traefik.http.services.web.loadbalancer.server.port=8080\n"
    )
    (route,) = labels_model(labels).routes
    assert route.layer.value == "http" and route.upstream is None
    assert route.tls.value is ProxyTls.TERMINATE and route.sni is None and route.entrypoints == ()


@pytest.mark.parametrize(("label", "message"), [
    ("Traefik.tcp.routers.r.rule=HostSNI(`*`)", "unexpected label root 'Traefik'"),
    ("traefik.enable=yes", "unexpected value 'yes'"),
])
def test_decode_errors_drop_the_container(label, message):
    labels = f"      - traefik.tcp.routers.ok.rule=HostSNI(`*`)\n      - {label}\n"
    model = labels_model(labels)
    assert model.routes == [] and model.upstreams == []
    (problem,) = model.problems
    assert problem.message.startswith(message)
    assert problem.span.path == "mail/compose.yaml" and problem.span.line == 6


@pytest.mark.parametrize("label", [
    "traefik.tcp.services.s.loadbalancer.servers.port=25",
    "traefik.tcp.routers.r.entrypoint=smtp",
    "traefik.enabled=true",
])
def test_unknown_label_keys_drop_the_container_and_are_left_to_mpl002(label):
    labels = f"      - traefik.tcp.routers.ok.rule=HostSNI(`*`)\n      - {label}\n"
    model = labels_model(labels)
    assert model.routes == [] and model.upstreams == []
    assert model.problems == []  # not a syntax error: MPL002 reports the key with a suggestion


def test_rule_syntax_error_is_a_problem_at_the_label_value():
    labels = "      - traefik.tcp.routers.r.rule=HostSNI('mail.example.com')\n"
    model = labels_model(labels)
    assert model.routes == []
    (problem,) = model.problems
    assert where(problem.span) == ("mail/compose.yaml", 5, 44)
    assert problem.message.startswith("unexpected \"'\"")


def test_dollar_escape_in_rules():
    labels = "      - traefik.tcp.routers.r.rule=HostSNIRegexp(`^mail$$`)\n"
    model = labels_model(labels)
    assert model.problems == [] and len(model.routes) == 1


# --------------------------------------------------------------------------------------------
# Traefik static flags
# --------------------------------------------------------------------------------------------


def entrypoints_of(command: str, extra: str = "") -> list:
    model = model_of(("compose.yaml", f"services:\n  proxy:\n    image: traefik:v2.11\n{extra}    command:\n{command}"))
    return model.entrypoints


def test_entrypoint_proxy_protocol_flags():
    (smtp,) = entrypoints_of("      - --entrypoints.smtp.address=:25\n"
                             "      - --entryPoints.smtp.proxyProtocol.trustedIPs=10.0.0.0/8\n")
    assert smtp.accepts_proxy.value is ProxyHeader.ANY and smtp.accepts_proxy.span.line == 6
    (smtp,) = entrypoints_of("      - --entrypoints.smtp.address=:25\n      - --entrypoints.smtp.proxyprotocol.insecure\n")
    assert smtp.accepts_proxy.value is ProxyHeader.ANY


def test_entrypoint_name_keeps_its_first_spelling():
    (ep,) = entrypoints_of("      - --entryPoints.Mail.address=[::]:587\n      - --entrypoints.mail.proxyprotocol.insecure=true\n")
    assert (ep.name, ep.port, ep.address) == ("Mail", 587, "::")
    assert ep.accepts_proxy.value is ProxyHeader.ANY


def test_quoted_exec_form_address_has_no_port():
    (ep,) = entrypoints_of("      - --entrypoints.smtp.address=\":25\"\n")
    assert ep.port is None and ep.address == '":25"'


def test_static_file_disables_flags():
    assert entrypoints_of("      - --configFile=/etc/traefik/traefik.yml\n      - --entrypoints.smtp.address=:25\n") == []
    mount = "    volumes:\n      - ./traefik.yml:/etc/traefik/traefik.yml:ro\n"
    assert entrypoints_of("      - --entrypoints.smtp.address=:25\n", mount) == []


def test_environment_static_configuration():
    compose = ("services:\n  proxy:\n    image: traefik:v3.1\n    environment:\n"
               "      TRAEFIK_ENTRYPOINTS_SMTP_ADDRESS: ':25'\n"
               "      TRAEFIK_ENTRYPOINTS_SMTP_PROXYPROTOCOL_TRUSTEDIPS: 10.0.0.0/8\n")
    (ep,) = model_of(("compose.yaml", compose)).entrypoints
    assert (ep.name, ep.port, ep.accepts_proxy.value) == ("smtp", 25, ProxyHeader.ANY)
    assert ep.span.line == 5


# --------------------------------------------------------------------------------------------
# docker-mailserver platform details
# --------------------------------------------------------------------------------------------


def dms(extra: str, image: str = "mailserver/docker-mailserver:10.3.0", path: str = "stack/compose.yaml"):
    model = model_of((path, f"services:\n  mail:\n    image: {image}\n{extra}"))
    return model, model.platforms[0]


def test_dms_environment_list_and_mapping():
    _, platform = dms("    environment:\n      - ENABLE_FAIL2BAN=1\n      - SHELL_ONLY\n")
    assert {k: (v.value, v.span.line) for k, v in platform.env.items()} == {"ENABLE_FAIL2BAN": ("1", 5)}
    _, platform = dms("    environment:\n      PERMIT_DOCKER: network\n      EMPTY:\n      FLAG: true\n")
    assert {k: v.value for k, v in platform.env.items()} == {"PERMIT_DOCKER": "network", "FLAG": "true"}
    assert where(platform.env["PERMIT_DOCKER"].span) == at("stack/compose.yaml", 5, 7)


@pytest.mark.parametrize(("volumes", "config_dir"), [
    ("      - ./docker-data/dms/config/:/tmp/docker-mailserver/\n", "stack/docker-data/dms/config"),
    ("      - ../shared/config:/tmp/docker-mailserver:ro\n", "shared/config"),
    ("      - type: bind\n        source: ./cfg\n        target: /tmp/docker-mailserver\n", "stack/cfg"),
    ("      - mail-config:/tmp/docker-mailserver/\n      - ./config/postfix-main.cf:/tmp/docker-mailserver/postfix-main.cf\n",
     "stack/config"),
    ("      - mail-config:/tmp/docker-mailserver/\n", None),
])
def test_dms_config_dir(volumes, config_dir):
    _, platform = dms("    volumes:\n" + volumes)
    assert platform.config_dir == config_dir


def test_dms_10_3_versions():
    model, platform = dms("")
    assert platform.version.value == Version((10, 3, 0))
    postfix = model.versions[("mail", Product.POSTFIX)]
    assert postfix.value == Version((3, 4)) and "10.3.0" in postfix.origin and "Debian 10" in postfix.origin
    assert where(postfix.span) == at("stack/compose.yaml", 3, 12)
    assert model.versions[("mail", Product.DOVECOT)].value == Version((2, 3, 4))
    assert {Product.POSTFIX, Product.DOVECOT} <= model.present


# --------------------------------------------------------------------------------------------
# Image tags -> versions
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("image", "product", "version"), [
    ("traefik:v2.5", Product.TRAEFIK, (2, 5, 7)),
    ("traefik:v3.1", Product.TRAEFIK, (3, 1, 7)),
    ("traefik:v2.11", Product.TRAEFIK, (2, 11, 53)),
    ("traefik:v2.11.1", Product.TRAEFIK, (2, 11, 1)),
    ("docker.io/library/traefik:3", Product.TRAEFIK, (3, 7, 11)),
    ("traefik", Product.TRAEFIK, (3, 7, 11)),
    ("haproxy:2.8", Product.HAPROXY, (2, 8)),
    ("haproxy:2.8.5-alpine", Product.HAPROXY, (2, 8, 5)),
    ("haproxytech/haproxy-alpine:3.0", Product.HAPROXY, (3, 0)),
    ("mailserver/docker-mailserver:10.3.0", Product.POSTFIX, (3, 4)),
    ("docker.io/mailserver/docker-mailserver:10.4.0", Product.POSTFIX, (3, 5)),
    ("docker.io/mailserver/docker-mailserver:10.4.0", Product.DOVECOT, (2, 3, 13)),
    ("ghcr.io/docker-mailserver/docker-mailserver:13.0.0", Product.DOVECOT, (2, 3, 21)),
    ("ghcr.io/docker-mailserver/docker-mailserver:14.0.0", Product.POSTFIX, (3, 7)),
    ("ghcr.io/docker-mailserver/docker-mailserver:15", Product.DOCKER_MAILSERVER, (15, 1, 0)),
    ("mailserver/docker-mailserver:edge", Product.POSTFIX, (3, 10)),
    ("mailserver/docker-mailserver:edge", Product.DOVECOT, (2, 4)),
    ("mailserver/docker-mailserver:release-v10.1.2", Product.DOVECOT, (2, 3, 4)),
    ("stalwartlabs/stalwart:v0.13.3", Product.STALWART, (0, 13, 3)),
])
def test_image_versions(image, product, version):
    info = identify(image)
    assert info is not None
    assert info.versions[product][0] == Version(version)


@pytest.mark.parametrize("image", ["traefik:${TRAEFIK_TAG}", "traefik@sha256:abcd", "traefik:comte",
                                   "stalwartlabs/stalwart:latest"])
def test_unreadable_tags_give_no_version(image):
    assert identify(image).versions == {}


def test_other_images_are_not_products():
    assert identify("ghcr.io/kereis/traefik-certs-dumper:latest") is None
    assert identify("redis:7") is None


def test_image_reference_parsing():
    ref = ImageRef.parse("localhost:5000/library/traefik:v3.1@sha256:00")
    assert (ref.repository, ref.name, ref.tag) == ("traefik", "traefik", "v3.1")


def test_dms_release_table_boundaries():
    assert dms_release(Version((10, 3, 9))).debian == "Debian 10"
    assert dms_release(Version((10, 4))).debian == "Debian 11"
    assert dms_release(Version((14, 0, 0))).dovecot == Version((2, 3, 19))
    assert dms_release(Version((6, 0))) is None


# --------------------------------------------------------------------------------------------
# Corpus: a Traefik stack and a mail stack in separate compose files
# --------------------------------------------------------------------------------------------


@pytest.mark.skipif(not CORPUS.exists(), reason="../shared corpus not available")
def test_corpus_split_stacks():
    files = [(f"{name}/compose.yaml", (CORPUS / f"c-bv__stacks__{name}__docker-compose.yaml").read_text())
             for name in ("traefik", "mailserver")]
    model = model_of(*files)
    assert model.versions[("traefik", Product.TRAEFIK)].value == Version((2, 10, 7))
    assert [e.name for e in model.entrypoints] == ["web", "websecure", "smtp", "smtp-ssl", "imap-ssl", "sieve"]
    assert {(r.name, r.layer.value, r.tls.value) for r in model.routes} == {
        ("dashboard", "http", ProxyTls.NONE), ("smtp", "tcp", ProxyTls.NONE),
        ("smtp-ssl", "tcp", ProxyTls.PASSTHROUGH), ("imap-ssl", "tcp", ProxyTls.PASSTHROUGH),
        ("sieve", "tcp", ProxyTls.NONE),
    }
    (platform,) = model.platforms
    assert platform.config_dir == "mailserver/config"  # files mounted one by one
    assert model.versions[("mailserver", Product.DOVECOT)].value == Version((2, 4))


# --------------------------------------------------------------------------------------------
# Published ports, networks and the container environment (read by the exposure rules)
# --------------------------------------------------------------------------------------------

PORTS = """\
services:
  mailserver:
    image: ghcr.io/docker-mailserver/docker-mailserver:15.0.0
    ports:
      - "25:25"
      - 3000
      - "127.0.0.1:12525:12525"
      - "9090-9091:8080-8081"
      - "127.0.0.1::5000"
      - "[::1]:10587:10587/tcp"
      - "6060:6060/udp"
      - "${SMTP_PORT}:25"
      - target: 10465
        published: "10465"
        host_ip: 192.0.2.10
        protocol: tcp
    expose:
      - "10993"
  traefik:
    image: traefik:v3.1
    network_mode: host
"""


def test_short_and_long_port_syntax():
    model = model_of(("compose.yaml", PORTS))
    host = one(model.hosts, name="mailserver")
    shown = [(p.container, p.host, p.host_ip, p.protocol, p.span.line) for p in host.published]
    assert shown == [
        ((25, 25), (25, 25), None, "tcp", 5),
        ((3000, 3000), None, None, "tcp", 6),
        ((12525, 12525), (12525, 12525), "127.0.0.1", "tcp", 7),
        ((8080, 8081), (9090, 9091), None, "tcp", 8),
        ((5000, 5000), None, "127.0.0.1", "tcp", 9),
        ((10587, 10587), (10587, 10587), "::1", "tcp", 10),
        ((6060, 6060), (6060, 6060), None, "udp", 11),
        ((10465, 10465), (10465, 10465), "192.0.2.10", "tcp", 13),  # the interpolated entry is unknown
    ]
    ranged = host.published[3]
    assert ranged.covers(8081) and not ranged.covers(9090) and ranged.host_port_for(8081) == 9091
    assert host.published[0].all_interfaces and not host.published[0].loopback_only
    assert host.published[2].loopback_only and host.published[5].loopback_only
    assert not any(p.covers(10993) for p in host.published)  # expose: publishes nothing
    assert where(host.published[7].span) == at("compose.yaml", 13, 9)


def test_host_network_publishes_every_port():
    model = model_of(("compose.yaml", PORTS))
    traefik = one(model.hosts, name="traefik")
    (everything,) = traefik.published
    assert everything.container is None and everything.covers(25) and everything.covers(65000)
    assert everything.host_port_for(993) == 993 and everything.all_interfaces
    assert traefik.network_mode.value == "host" and traefik.networks == ()
    assert where(everything.span) == at("compose.yaml", 21, 19)


NETWORKS = """\
name: mail
services:
  proxy:
    image: traefik:v3.1
    networks:
      frontend:
        ipv4_address: 172.16.42.2
      default:
  mailserver:
    image: ghcr.io/docker-mailserver/docker-mailserver:15.0.0
    networks:
      - frontend
  webmail:
    image: roundcube/roundcubemail
networks:
  frontend:
    enable_ipv6: true
    ipam:
      config:
        - subnet: 172.16.42.0/24
          gateway: 172.16.42.254
        - subnet: "fd00:42::/64"
  shared:
    external: true
"""


def test_networks_with_ipam_and_membership():
    model = model_of(("stack/compose.yaml", NETWORKS))
    proxy, mail, webmail = (one(model.hosts, name=n) for n in ("proxy", "mailserver", "webmail"))
    assert [(n.key, n.name) for n in proxy.networks] == [("frontend", "mail_frontend"), ("default", "mail_default")]
    frontend = proxy.networks[0]
    assert [str(s.network) for s in frontend.subnets] == ["172.16.42.0/24", "fd00:42::/64"]
    assert str(frontend.subnets[0].gateway_address) == "172.16.42.254"
    assert where(frontend.subnets[0].gateway.span) == at("stack/compose.yaml", 21, 20)
    assert str(frontend.subnets[1].gateway_address) == "fd00:42::1"  # Docker's default: the first address
    assert frontend.ipv6 and [a.value for a in frontend.addresses] == ["172.16.42.2"]
    assert where(frontend.span) == at("stack/compose.yaml", 6, 7)
    assert where(frontend.definition) == at("stack/compose.yaml", 16, 3)
    # a list entry joins the same Docker network; the implicit default network has no span
    assert mail.shares_network(proxy)[0].name == "mail_frontend"
    assert [(n.key, n.name, n.span) for n in webmail.networks] == [("default", "mail_default", None)]
    assert webmail.shares_network(proxy)[1].key == "default" and webmail.shares_network(mail) is None


def test_named_and_external_networks_keep_their_docker_name():
    text = """\
services:
  dms:
    image: mailserver/docker-mailserver:14
    networks: [proxy, outside]
networks:
  proxy:
    name: proxy
  outside:
    external: true
"""
    model = model_of(("compose.yaml", text))
    assert [n.name for n in one(model.hosts, name="dms").networks] == ["proxy", "outside"]
    assert one(model.hosts, name="dms").networks[1].external


def compose_on_disk(tmp_path: Path, compose: str, files: dict[str, str]) -> Model:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    model = Model(str(tmp_path))
    source = SourceFile("compose.yaml", FileKind.COMPOSE, compose, abspath=str(tmp_path / "compose.yaml"))
    build([parse_file(source)], model)
    return model


ENV_COMPOSE = """\
services:
  mailserver:
    image: ghcr.io/docker-mailserver/docker-mailserver:15.0.0
    env_file:
      - mailserver.env
      - path: ./optional.env
        required: false
      - path: extra.env
    environment:
      - PERMIT_DOCKER=none
"""


def test_env_file_is_merged_under_environment(tmp_path):
    env = "# comment\n\nexport ENABLE_FETCHMAIL=1\nPERMIT_DOCKER=connected-networks\nPOSTFIX_INET_PROTOCOLS='ipv4'\n" \
          "SPAM=yes # a comment\nFROM_SHELL\n"
    model = compose_on_disk(tmp_path, ENV_COMPOSE, {"mailserver.env": env, "extra.env": "ENABLE_FETCHMAIL=0\n"})
    host = one(model.hosts, name="mailserver")
    values = {k: s.value for k, s in host.environment.items()}
    assert values == {"ENABLE_FETCHMAIL": "0", "PERMIT_DOCKER": "none", "POSTFIX_INET_PROTOCOLS": "ipv4", "SPAM": "yes"}
    assert where(host.environment["POSTFIX_INET_PROTOCOLS"].span) == ("mailserver.env", 5, 1)
    assert host.environment["POSTFIX_INET_PROTOCOLS"].origin == "env_file mailserver.env"
    assert where(host.environment["ENABLE_FETCHMAIL"].span) == ("extra.env", 1, 1)  # the later file wins
    assert where(host.environment["PERMIT_DOCKER"].span) == at("compose.yaml", 10, 9)  # environment: wins
    (platform,) = model.platforms
    assert platform.env["POSTFIX_INET_PROTOCOLS"].value == "ipv4"  # the platform sees env_file values
    assert model.problems == []


def test_missing_env_file_is_reported_where_it_is_named(tmp_path):
    model = compose_on_disk(tmp_path, ENV_COMPOSE, {"mailserver.env": "A=1\n"})
    (problem,) = model.problems
    assert (problem.span.path, problem.span.line, problem.span.column) == ("compose.yaml", 8, 15)
    assert "env file 'extra.env' does not exist" in problem.message
    assert one(model.hosts, name="mailserver").environment["A"].value == "1"


def test_env_file_outside_the_scanned_root_is_not_read(tmp_path):
    root = tmp_path / "stack"
    root.mkdir()
    (tmp_path / "secret.env").write_text("PERMIT_DOCKER=network\n")
    compose = "services:\n  dms:\n    image: mailserver/docker-mailserver:15\n    env_file: ../secret.env\n"
    model = compose_on_disk(root, compose, {})
    assert one(model.hosts, name="dms").environment == {} and model.problems == []
    assert one(model.hosts, name="dms").environment_complete is False


@pytest.mark.parametrize(("compose", "files", "complete"), [
    ("    env_file: mail.env\n    environment:\n      - ENABLE_POP3=1\n", {"mail.env": "A=1\n"}, True),
    ("    env_file:\n      - path: .env\n        required: false\n", {}, False),  # not committed
    ("    environment:\n      - ENABLE_MANAGESIEVE\n", {}, False),  # from the shell
    ("    environment:\n      ENABLE_POP3: ${POP3:-0}\n", {}, False),  # interpolated
])
def test_environment_completeness(tmp_path, compose, files, complete):
    text = "services:\n  dms:\n    image: mailserver/docker-mailserver:15.0.0\n" + compose
    model = compose_on_disk(tmp_path, text, files)
    assert one(model.hosts, name="dms").environment_complete is complete
    assert model.platforms[0].env_complete is complete


def test_kubernetes_service_types_and_node_ports():
    from mailproxy_lint.build.traefik import build as build_traefik

    text = """\
apiVersion: v1
kind: Service
metadata:
  name: mailserver
spec:
  type: LoadBalancer
  selector:
    app: mailserver
  ports:
    - name: smtp-proxy
      port: 12525
      targetPort: 12525
      nodePort: 31525
    - name: imap
      port: 143
      targetPort: imap
---
apiVersion: v1
kind: Service
metadata:
  name: internal
spec:
  ports:
    - port: 25
"""
    model = Model(".")
    build_traefik([parse_file(SourceFile("svc.yaml", FileKind.KUBERNETES, text))], model)
    lb, internal = model.kube_services
    assert (lb.type.value, lb.exposed_outside, lb.selector) == ("LoadBalancer", True, {"app": "mailserver"})
    assert [(p.port, p.target_port, p.node_port) for p in lb.ports] == [(12525, 12525, 31525), (143, None, None)]
    assert where(lb.ports[0].span) == at("svc.yaml", 10, 7) and where(lb.type.span) == at("svc.yaml", 6, 9)
    assert (internal.type.value, internal.exposed_outside, internal.ports[0].target_port) == ("ClusterIP", False, 25)


def test_dns_names_are_what_other_containers_resolve():
    text = """\
services:
  mailserver:
    image: ghcr.io/docker-mailserver/docker-mailserver:15.0.0
    container_name: dms
    hostname: mail
    domainname: example.com
    networks:
      mail:
        aliases: [smtp.internal]
networks:
  mail: {}
"""
    host = one(model_of(("compose.yaml", text)).hosts, name="mailserver")
    assert host.dns_names == {"mailserver", "dms", "smtp.internal"}
    assert host.answers_to("mail.example.com") and "mail.example.com" not in host.dns_names
