"""Dovecot builder: includes, instances, settings keys, listeners, defaults, docker-mailserver."""
from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from test_parse_dovecot import seed_dovecot_snippets
from mailproxy_lint.build import Model, Platform
from mailproxy_lint.build.dovecot import IncludeGraph, build, parse_trusted_networks
from mailproxy_lint.model import (
    FileKind,
    Host,
    MailProtocol,
    Product,
    ProxyHeader,
    Setting,
    SourceFile,
    Span,
    TlsMode,
    Version,
)
from mailproxy_lint.parse import parse_file

FIXTURES = Path(__file__).parent / "fixtures" / "parsers" / "dovecot"


def model_of(files: dict[str, str], platforms=(), versions=None, hosts=()) -> Model:
    """Run the builder over in-memory files (path -> text); `dovecot.cf` is a DMS override."""
    parsed = [
        parse_file(SourceFile(path, FileKind.DOVECOT, text, dms_override=path.endswith("dovecot.cf")))
        for path, text in files.items()
    ]
    model = Model(root=".")
    model.files.extend(p.source for p in parsed)
    for item in parsed:
        model.present.add(Product.DOVECOT)
        model.problems.extend(item.problems)
        if item.tree is None:
            model.unknown.add(Product.DOVECOT)
    model.platforms.extend(platforms)
    model.versions.update(versions or {})
    model.hosts.extend(hosts)
    build([p for p in parsed if p.tree is not None], model)
    return model


def listeners_by_name(model: Model) -> dict[str, object]:
    return {listener.name: listener for listener in model.listeners}


def tree_fixture() -> dict[str, str]:
    root = FIXTURES / "include-tree"
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {f"include-tree/{p.relative_to(root).as_posix()}": p.read_text() for p in files}


# --------------------------------------------------------------------------------------------
# Includes and instances
# --------------------------------------------------------------------------------------------


def test_include_tree_is_one_instance():
    model = model_of(tree_fixture())
    assert model.problems == [] and model.unknown == set()
    assert [c.id for c in model.dovecot] == ["include-tree/dovecot.conf"]
    config = model.dovecot[0]
    assert config.root_span == Span("include-tree/dovecot.conf", 1, 1)
    # the `}` in imap-end.inc closed `protocol imap {` of dovecot.conf (D8)
    assert config.settings["protocol imap/imap_idle_notify_interval"].value == "5 mins"
    assert config.settings["protocol imap/mail_max_userip_connections"].span == Span(
        "include-tree/imap-end.inc", 1, 3, 1, 35)
    assert config.settings["imap_idle_notify_interval"].is_default
    assert config.settings["service imap-login/inet_listener imaps/port"].value == "10993"


def test_include_tree_listeners():
    model = model_of(tree_fixture())
    listeners = listeners_by_name(model)
    # imap disabled by port = 0; pop3/pop3s defaults because protocols has pop3; no sieve
    assert sorted(listeners) == ["imaps", "pop3", "pop3-proxied", "pop3s"]
    imaps = listeners["imaps"]
    assert imaps.port == 10993 and imaps.service == "imap-login" and imaps.daemon == "imap-login"
    assert imaps.span == Span("include-tree/conf.d/10-master.conf", 5, 3, 5, 24)
    assert imaps.protocol is MailProtocol.IMAPS
    assert imaps.tls.value is TlsMode.IMPLICIT and imaps.tls.span is None  # built-in ssl = yes
    assert imaps.accepts_proxy.value is ProxyHeader.ANY
    assert imaps.accepts_proxy.span == Span("include-tree/conf.d/10-master.conf", 7, 5, 7, 18)
    assert imaps.trusted_proxies.value == (ipaddress.ip_network("172.16.42.2/32"),)
    assert imaps.trusted_proxies.span.line == 3
    assert imaps.instance == "include-tree/dovecot.conf"
    proxied = listeners["pop3-proxied"]
    assert (proxied.port, proxied.protocol, proxied.tls.value) == (10110, MailProtocol.POP3, TlsMode.STARTTLS)
    pop3s = listeners["pop3s"]
    assert pop3s.port == 995 and pop3s.tls.value is TlsMode.IMPLICIT
    assert pop3s.span == Span("include-tree/dovecot.conf", 2, 1, 2, 22)  # the protocols line
    assert pop3s.accepts_proxy.value is ProxyHeader.NONE and pop3s.accepts_proxy.origin.startswith("Dovecot default")


def test_glob_braces_and_include_try():
    files = {
        "d/dovecot.conf": "!include conf.d/{10,20}-*.conf\n!include_try missing.conf\n!include nothing/*.conf\n",
        "d/conf.d/10-a.conf": "a = 1\n",
        "d/conf.d/20-b.conf": "a = 2\n",
        "d/conf.d/30-c.conf": "c = 3\n",
    }
    model = model_of(files)
    ids = sorted(c.id for c in model.dovecot)
    assert ids == ["d/conf.d/30-c.conf", "d/dovecot.conf"]  # 30-c is not matched: its own root
    main = next(c for c in model.dovecot if c.id == "d/dovecot.conf")
    assert main.settings["a"].value == "2"  # sorted glob order, last wins
    parsed = [parse_file(SourceFile(p, FileKind.DOVECOT, t)) for p, t in files.items()]
    graph = IncludeGraph(parsed)
    assert [(m.include.pattern, m.reason) for m in graph.missing] == [
        ("nothing/*.conf", "no matching file among the scanned files")]


def test_absolute_include_matches_copied_etc_tree():
    model = model_of({
        "rootfs/etc/dovecot/dovecot.conf": "!include /etc/dovecot/conf.d/*.conf\n",
        "rootfs/etc/dovecot/conf.d/10-ssl.conf": "ssl = required\n",
    })
    assert [c.id for c in model.dovecot] == ["rootfs/etc/dovecot/dovecot.conf"]
    assert model.dovecot[0].settings["ssl"].value == "required"


def test_recursive_include_does_not_hang():
    model = model_of({"x/dovecot.conf": "!include dovecot.conf\na = 1\n"})
    assert model.dovecot[0].settings["a"].value == "1"


def test_broken_includer_still_hides_its_fragments():
    model = model_of({
        "e/dovecot.conf": "!include conf.d/*.conf\nprotocol imap pop3 {\n}\n",
        "e/conf.d/10-master.conf": "service imap-login {\n}\n",
    })
    assert model.dovecot == [] and model.listeners == []
    assert Product.DOVECOT in model.unknown


def test_stray_close_in_root_is_a_problem():
    model = model_of({"f/dovecot.conf": "ssl = yes\n}\n"})
    assert [(p.span.line, p.span.column) for p in model.problems] == [(2, 1)]
    assert model.problems[0].message.startswith("unexpected '}'")
    assert Product.DOVECOT in model.unknown and model.dovecot == []


def test_missing_close_reported_at_end_of_root():
    model = model_of({"g/dovecot.conf": "!include conf.d/*.conf\n", "g/conf.d/10-a.conf": "service imap-login {\n"})
    assert len(model.problems) == 1
    problem = model.problems[0]
    assert problem.span == Span("g/dovecot.conf", 2, 1)
    assert "'service imap-login' opened at g/conf.d/10-a.conf:1:1" in problem.message


# --------------------------------------------------------------------------------------------
# Settings, variables, versions
# --------------------------------------------------------------------------------------------


def test_variable_expansion_23_and_24():
    v23 = model_of({"h/dovecot.conf": "protocols = $protocols sieve\nmail_plugins = $mail_plugins quota\n"}).dovecot[0]
    assert v23.settings["protocols"].value == "imap pop3 lmtp sieve"
    assert v23.settings["mail_plugins"].value == "$mail_plugins quota"  # unknown: kept as written
    v24 = model_of({"i/dovecot.conf": "dovecot_config_version = 2.4.1\nprotocols = $protocols sieve\n"
                                        "mail_plugins = $SET:protocols\n"}).dovecot[0]
    assert v24.settings["protocols"].value == "$protocols sieve"  # 2.4: plain $name is literal
    assert v24.settings["mail_plugins"].value == "$protocols sieve"
    assert v24.version == Setting(Version((2, 4, 1)))
    assert v24.version.span == Span("i/dovecot.conf", 1, 1, 1, 31)


def test_sieve_and_24_submissions_defaults():
    model = model_of({"j/dovecot.conf": "dovecot_config_version = 2.4.0\nprotocols = imap sieve submission\n"})
    ports = sorted(listener.port for listener in model.listeners)
    assert ports == [143, 465, 587, 993, 4190]
    sieve = next(listener for listener in model.listeners if listener.port == 4190)
    assert sieve.protocol is MailProtocol.SIEVE and sieve.version.value == Version((2, 4, 0))
    old = model_of({"k/dovecot.conf": "protocols = submission\n"})
    assert [listener.port for listener in old.listeners] == [587]  # 2.3 lists only `submission`


def test_version_from_model_wins():
    model = model_of({"l/dovecot.conf": "dovecot_config_version = 2.4.0\n"},
                     versions={(None, Product.DOVECOT): Setting(Version((2, 4, 2)), None, "image tag")})
    assert model.dovecot[0].version.value == Version((2, 4, 2))


def test_global_ssl_no():
    model = model_of({"m/dovecot.conf": "ssl = no\nprotocols = imap\nservice imap-login {\n"
                                        "  inet_listener imaps {\n    ssl = yes\n  }\n}\n"})
    listeners = listeners_by_name(model)
    assert listeners["imap"].tls.value is TlsMode.NONE
    assert listeners["imap"].tls.span == Span("m/dovecot.conf", 1, 1, 1, 9)
    # TL07: Dovecot drops ssl listeners when ssl = no; the model keeps what the user wrote
    assert listeners["imaps"].tls.value is TlsMode.IMPLICIT
    assert listeners["imaps"].tls.span == Span("m/dovecot.conf", 5, 5, 5, 14)


def test_24_prefixed_listener_settings_and_address():
    model = model_of({"n/dovecot.conf": "protocols = imap\nlisten = 127.0.0.1\nservice imap-login {\n"
                                        "  inet_listener imap {\n    inet_listener_haproxy = yes\n"
                                        "    inet_listener_imap_port = 10143\n  }\n}\n"})
    imap = listeners_by_name(model)["imap"]
    assert imap.port == 10143 and imap.accepts_proxy.value is ProxyHeader.ANY
    assert imap.address == "127.0.0.1"
    assert listeners_by_name(model)["imaps"].address == "127.0.0.1"


def test_custom_listener_without_port_does_not_listen():
    model = model_of({"o/dovecot.conf": "protocols = lmtp\nservice lmtp {\n  inet_listener lmtp {\n"
                                        "    port = 24\n  }\n}\n"
                                        "service imap-login {\n  inet_listener extra {\n  }\n}\n"})
    assert [(listener.name, listener.port, listener.protocol) for listener in model.listeners] == [
        ("lmtp", 24, MailProtocol.LMTP)]


@pytest.mark.parametrize("text, networks, invalid", [
    ("10.0.0.1 192.168.0.0/24", ["10.0.0.1/32", "192.168.0.0/24"], None),
    ("10.0.0.1, 2001:db8::/32", ["10.0.0.1/32", "2001:db8::/32"], None),  # commas split too
    ("172.16.42.5/16", ["172.16.0.0/16"], None),  # host bits allowed
    ("10.0.0.1 traefik 10.0.0.2", ["10.0.0.1/32"], "traefik"),  # stop at the first invalid
    ("10.0.0.0/33 10.0.0.2", [], "10.0.0.0/33"),
    ("10.0.0.0/255.0.0.0", [], "10.0.0.0/255.0.0.0"),
    ("[::1]", ["::1/128"], None),
    (", ", [], None),
])
def test_parse_trusted_networks(text, networks, invalid):
    found, bad = parse_trusted_networks(text)
    assert [str(n) for n in found] == networks and bad == invalid


def test_invalid_trusted_network_entry_in_listener():
    model = model_of({"p/dovecot.conf": "protocols = imap\nhaproxy_trusted_networks = 10.0.0.1 traefik 10.0.0.2\n"})
    trusted = model.listeners[0].trusted_proxies
    assert trusted.value == (ipaddress.ip_network("10.0.0.1/32"),)
    assert "'traefik'" in trusted.origin


def test_missing_trusted_networks_is_an_empty_default():
    model = model_of({"q/dovecot.conf": "protocols = imap\n"})
    assert model.listeners[0].trusted_proxies.value == () and model.listeners[0].trusted_proxies.is_default


# --------------------------------------------------------------------------------------------
# docker-mailserver
# --------------------------------------------------------------------------------------------

IMAGE_SPAN = Span("compose.yaml", 3, 5, 3, 60)


def dms(env=None, version=None, host="mailserver") -> Platform:
    settings = {k: Setting(v, None, "compose environment") for k, v in (env or {}).items()}
    return Platform("docker-mailserver", host, version, "config", settings, IMAGE_SPAN)


def test_dms_stock_only():
    model = model_of({}, platforms=[dms()])
    assert Product.DOVECOT in model.present
    assert [c.id for c in model.dovecot] == ["docker-mailserver:mailserver"]
    config = model.dovecot[0]
    assert config.settings["ssl"] == Setting("required")
    assert config.settings["ssl"].span == IMAGE_SPAN
    assert config.settings["ssl"].origin == "docker-mailserver stock dovecot"
    listeners = listeners_by_name(model)
    assert sorted(listeners) == ["imap", "imaps"]
    imaps = listeners["imaps"]
    assert (imaps.port, imaps.host, imaps.span, imaps.platform) == (993, "mailserver", IMAGE_SPAN, "docker-mailserver")
    assert imaps.tls == Setting(TlsMode.IMPLICIT) and imaps.tls.origin.startswith("docker-mailserver stock dovecot")
    assert listeners["imap"].tls.value is TlsMode.STARTTLS


def test_dms_env_enables_pop3_and_sieve_and_smtp_only_disables():
    model = model_of({}, platforms=[dms({"ENABLE_POP3": "1", "ENABLE_MANAGESIEVE": "1"})])
    assert sorted(listener.port for listener in model.listeners) == [110, 143, 993, 995, 4190]
    none = model_of({}, platforms=[dms({"SMTP_ONLY": "1"})])
    assert none.dovecot == [] and none.listeners == [] and Product.DOVECOT not in none.present


def test_dms_override_changes_stock_listener():
    cf = ("haproxy_trusted_networks = 172.16.42.2\nservice imap-login {\n  inet_listener imaps {\n"
          "    haproxy = yes\n  }\n}\n")
    model = model_of({"config/dovecot.cf": cf}, platforms=[dms(version=Setting(Version((15, 0)), IMAGE_SPAN, "tag"))])
    assert [c.id for c in model.dovecot] == ["config/dovecot.cf"]
    imaps = listeners_by_name(model)["imaps"]
    assert imaps.port == 993 and imaps.span == Span("config/dovecot.cf", 3, 3, 3, 24)
    assert imaps.accepts_proxy.value is ProxyHeader.ANY
    # stock values nobody wrote point into dovecot.cf, where a user would override them
    override_file = Span.whole_file("config/dovecot.cf")
    assert imaps.tls.value is TlsMode.IMPLICIT and imaps.tls.span == override_file
    assert imaps.version.value == Version((2, 3)) and "docker-mailserver 15.0" in imaps.version.origin
    imap = listeners_by_name(model)["imap"]
    assert imap.span == override_file and imap.accepts_proxy.value is ProxyHeader.NONE


def test_dms_edge_tag_is_dovecot_24():
    host = Host("mailserver", image=Setting("ghcr.io/docker-mailserver/docker-mailserver:edge"))
    model = model_of({}, platforms=[dms()], hosts=[host])
    assert model.dovecot[0].version.value == Version((2, 4))


def test_dovecot_cf_without_platform():
    model = model_of({"config/dovecot.cf": "haproxy_timeout = 5 secs\n"})
    config = model.dovecot[0]
    assert config.host is None and config.settings["haproxy_timeout"].value == "5 secs"
    assert sorted(listener.port for listener in model.listeners) == [143, 993]
    assert model.listeners[0].span == Span("config/dovecot.cf", 1, 1)


def test_seed_dovecot_cf_overlay():
    """Each dovecot.cf snippet of seeds 000/001 builds a DMS instance with PROXY listeners."""
    for seed, snippet in seed_dovecot_snippets():
        model = model_of({"docker-data/dms/config/dovecot.cf": snippet},
                         platforms=[dms({"ENABLE_POP3": "1", "ENABLE_MANAGESIEVE": "1"})])
        assert model.problems == [], seed
        proxied = [listener for listener in model.listeners if listener.accepts_proxy.value is ProxyHeader.ANY]
        assert proxied, seed
        for listener in proxied:
            assert listener.host == "mailserver" and listener.span.path == "docker-data/dms/config/dovecot.cf"
            assert listener.protocol is not None
            assert listener.trusted_proxies.span is not None


def test_seed_000_dovecot_cf_values():
    snippets = [s for seed, s in seed_dovecot_snippets() if seed.startswith("000_")]
    model = model_of({"config/dovecot.cf": snippets[0]}, platforms=[dms()])
    imaps = listeners_by_name(model)["imaps"]
    assert (imaps.port, imaps.tls.value, imaps.protocol) == (10993, TlsMode.IMPLICIT, MailProtocol.IMAPS)
    assert imaps.trusted_proxies.value == ()  # the copied `= , ` leaves no network (TR01)
    assert model.dovecot[0].settings["haproxy_timeout"].value == "3 secs"

