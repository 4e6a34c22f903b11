"""HAProxy builder: defaults inheritance, idle timeouts (TO01), entrypoints, routes, servers.

Every fixture here passes `haproxy -c` (2.6), apart from missing certificate files.
"""
from __future__ import annotations

import csv
import re

import pytest

from mailproxy_lint.build import Model
from mailproxy_lint.build.haproxy import build
from mailproxy_lint.model import FileKind, Product, ProxyHeader, ProxyTls, Setting, SourceFile, Version
from mailproxy_lint.parse import parse_file
from tests.conftest import shared_path


def model_of(text: str, path: str = "haproxy.cfg") -> Model:
    parsed = parse_file(SourceFile(path, FileKind.HAPROXY, text))
    assert parsed.ok, parsed.problems
    model = Model(root=".")
    build([parsed], model)
    return model


def route(model: Model, name: str):
    return next(r for r in model.routes if r.name == name)


def server(model: Model, upstream: str, name: str):
    ups = next(u for u in model.upstreams if u.name == upstream)
    return next(s for s in ups.servers if s.name == name)


def at(setting) -> tuple[int, int] | None:
    return None if setting.span is None else (setting.span.line, setting.span.column)


# --------------------------------------------------------------------------------------------
# defaults inheritance
# --------------------------------------------------------------------------------------------

INHERITED = """\
defaults
    mode http
    timeout client 50s
    timeout server 50s
    timeout connect 5s
    default-server send-proxy-v2 check
frontend imap
    bind :143
    default_backend dovecot
backend dovecot
    server d1 10.0.0.1:143
"""


def test_mode_and_timeouts_come_from_defaults():
    r = route(model_of(INHERITED), "imap/dovecot")
    assert r.layer.value == "http"
    assert at(r.layer) == (2, 5)
    assert r.layer.origin == "mode http (defaults)"
    assert r.idle_timeout.value == 50.0
    assert at(r.idle_timeout) == (3, 5)  # client and server tie: the first (client) is reported
    assert r.idle_timeout.origin == "timeout client 50s (defaults)"
    assert [(s.value, at(s)) for s in r.idle_timeout_related] == [(50.0, (4, 5))]


def test_default_server_in_defaults_reaches_the_servers():
    s = server(model_of(INHERITED), "dovecot", "d1")
    assert s.send_proxy.value is ProxyHeader.V2
    assert at(s.send_proxy) == (6, 20)
    assert s.send_proxy.origin == "default-server send-proxy-v2 in defaults"


NAMED = """\
defaults base
    mode tcp
    timeout client 31m
    timeout server 31m
defaults web from base
    mode http
defaults other
    timeout client 10s
frontend imaps from base
    bind :993
    default_backend dovecot
frontend www from web
    bind :80
    default_backend site
frontend last
    bind :110
    default_backend dovecot
backend dovecot from base
    server d1 10.0.0.1:993
backend site from web
    server w 10.0.0.5:80
"""


def test_named_defaults_and_from():
    model = model_of(NAMED)
    imaps = route(model, "imaps/dovecot")
    assert (imaps.layer.value, imaps.layer.origin) == ("tcp", "mode tcp (defaults 'base')")
    assert imaps.idle_timeout.value == 1860.0
    www = route(model, "www/site")
    # `defaults web from base` overrides the mode and keeps the timeouts of `base`
    assert (www.layer.value, at(www.layer)) == ("http", (6, 5))
    assert www.idle_timeout.value == 1860.0


def test_without_from_the_last_defaults_section_applies():
    last = route(model_of(NAMED), "last/dovecot")
    assert (last.layer.value, last.layer.origin) == ("tcp", "HAProxy default (mode tcp)")
    assert last.layer.span is None
    assert last.idle_timeout.value == 10.0  # client 10s from `defaults other`; the backend has 31m
    assert last.idle_timeout.origin == "timeout client 10s (defaults 'other')"


def test_own_lines_override_defaults():
    text = INHERITED.replace("    bind :143\n", "    bind :143\n    mode tcp\n    timeout client 31m\n")
    text = text.replace("backend dovecot\n", "backend dovecot\n    mode tcp\n")
    r = route(model_of(text), "imap/dovecot")
    assert (r.layer.value, r.layer.origin) == ("tcp", "mode tcp (frontend 'imap')")
    assert r.idle_timeout.value == 50.0  # the backend's `timeout server 50s` from defaults
    assert r.idle_timeout.origin == "timeout server 50s (defaults)"


def test_http_backend_makes_the_route_http():
    text = ("frontend imap\n    mode tcp\n    bind :143\n    default_backend web\n"
            "backend web\n    mode http\n    server w 10.0.0.1:80\n")
    r = route(model_of(text), "imap/web")
    assert (r.layer.value, at(r.layer)) == ("http", (6, 5))


# --------------------------------------------------------------------------------------------
# idle timeout (TO01)
# --------------------------------------------------------------------------------------------

TIMEOUTS = """\
defaults
    mode tcp
    timeout connect 5s
    timeout client 1m
    timeout server 30s
frontend imap
    bind :143
    default_backend plain
    use_backend tunnelled if { dst_port 993 }
backend plain
    server d1 10.0.0.1:143
backend tunnelled
    timeout tunnel 1h
    server d1 10.0.0.1:993
"""


def test_min_of_client_and_server_without_tunnel():
    r = route(model_of(TIMEOUTS), "imap/plain")
    assert r.idle_timeout.value == 30.0
    assert r.idle_timeout.origin == "timeout server 30s (defaults)"
    assert [s.origin for s in r.idle_timeout_related] == ["timeout client 1m (defaults)"]


def test_tunnel_supersedes_client_and_server_in_tcp_mode():
    r = route(model_of(TIMEOUTS), "imap/tunnelled")
    assert r.idle_timeout.value == 3600.0
    assert at(r.idle_timeout) == (13, 5)
    assert r.idle_timeout.origin == "timeout tunnel 1h (backend 'tunnelled')"
    assert sorted(s.value for s in r.idle_timeout_related) == [30.0, 60.0]
    assert r.span.line == 9  # the use_backend line


def test_tunnel_does_not_apply_in_http_mode():
    text = TIMEOUTS.replace("    mode tcp\n", "    mode http\n")
    assert route(model_of(text), "imap/tunnelled").idle_timeout.value == 30.0


def test_tunnel_in_a_frontend_is_ignored():
    text = TIMEOUTS.replace("    bind :143\n", "    bind :143\n    timeout tunnel 2h\n")
    assert route(model_of(text), "imap/plain").idle_timeout.value == 30.0


def test_no_timeouts_means_no_idle_limit():
    r = route(model_of("listen imap\n    bind :143\n    server d1 10.0.0.1:143\n"), "imap")
    assert r.idle_timeout.value is None and r.idle_timeout.span is None
    assert r.idle_timeout_related == ()


def test_zero_means_no_timeout():
    text = "listen imap\n    bind :143\n    timeout client 0\n    timeout server 2m\n    server d 10.0.0.1:143\n"
    assert route(model_of(text), "imap").idle_timeout.value == 120.0


# --------------------------------------------------------------------------------------------
# entrypoints, routes, SNI
# --------------------------------------------------------------------------------------------


def test_listen_is_entrypoint_route_and_upstream():
    text = ("listen smtp\n"
            "    bind :25,127.0.0.1:2525 accept-proxy\n"
            "    bind [::]:26-27\n"
            "    server pf mail:10025 send-proxy\n")
    model = model_of(text)
    assert [(e.name, e.port, e.address) for e in model.entrypoints] == [
        ("smtp", 25, ""), ("smtp", 2525, "127.0.0.1"), ("smtp", 26, "::")]
    first = model.entrypoints[0]
    assert first.accepts_proxy.value is ProxyHeader.ANY and at(first.accepts_proxy) == (2, 29)
    assert first.tls.value is False and first.host is None
    assert model.entrypoints[2].accepts_proxy.value is ProxyHeader.NONE
    r = route(model, "smtp")
    assert (r.entrypoints, r.upstream, r.span.line) == (("smtp",), "smtp", 1)
    assert r.tls.value is ProxyTls.NONE
    s = server(model, "smtp", "pf")
    assert (s.host, s.port, s.send_proxy.value, at(s.send_proxy)) == ("mail", 10025, ProxyHeader.V1, (4, 26))


SNI = """\
frontend tls
    mode tcp
    bind :443
    tcp-request inspect-delay 5s
    tcp-request content accept if { req_ssl_hello_type 1 }
    acl is_mail req.ssl_sni -i mail.example.com
    use_backend imaps if is_mail
    use_backend other if { req_ssl_sni -m end .example.org }
    default_backend web
frontend terminated
    mode tcp
    bind :993 ssl crt /etc/haproxy/site.pem
    use_backend imaps if { ssl_fc_sni imap.example.com }
backend imaps
    server d 10.0.0.1:993
backend other
    server o 10.0.0.2:993
backend web
    server w 10.0.0.3:443
"""


def test_sni_routing_waits_for_the_client_hello():
    model = model_of(SNI)
    mail = route(model, "tls/imaps")
    assert (mail.sni.value, mail.sni.span.line) == ("mail.example.com", 7)
    assert mail.sni.origin == "req.ssl_sni mail.example.com"
    assert mail.tls.value is ProxyTls.PASSTHROUGH
    assert at(mail.tls) == (5, 37)  # the first rule that reads the ClientHello
    assert route(model, "tls/other").sni.value == ".example.org"
    web = route(model, "tls/web")
    assert web.sni is None and web.tls.value is ProxyTls.PASSTHROUGH


def test_sni_of_a_terminated_session():
    r = route(model_of(SNI), "terminated/imaps")
    assert r.sni.value == "imap.example.com"
    assert r.tls.value is ProxyTls.TERMINATE and at(r.tls) == (12, 15)


# --------------------------------------------------------------------------------------------
# servers and default-server
# --------------------------------------------------------------------------------------------

SERVERS = """\
backend mail
    server plain 10.0.0.1:25
    default-server send-proxy-v2 ssl verify none
    server a 10.0.0.1:993
    server b 10.0.0.2:25 no-send-proxy-v2 no-ssl
    server c [2001:db8::1]:993 send-proxy
    server d 10.0.0.4
    server e 10.0.0.5:143 send-proxy-v2-ssl-cn
    server f 10.0.0.6:143 ca-file ssl send-proxy-v2
"""


def test_default_server_applies_to_later_servers_only():
    model = model_of(SERVERS)
    plain = server(model, "mail", "plain")
    assert plain.send_proxy.value is ProxyHeader.NONE and plain.send_proxy.span is None
    assert plain.tls.value is False
    a = server(model, "mail", "a")
    assert (a.send_proxy.value, at(a.send_proxy)) == (ProxyHeader.V2, (3, 20))
    assert a.send_proxy.origin == "default-server send-proxy-v2 in backend 'mail'"
    assert (a.tls.value, at(a.tls)) == (True, (3, 34))


def test_no_options_cancel_inherited_ones():
    b = server(model_of(SERVERS), "mail", "b")
    assert (b.send_proxy.value, at(b.send_proxy)) == (ProxyHeader.NONE, (5, 26))
    assert b.send_proxy.origin == "no-send-proxy-v2 on server b"
    assert (b.tls.value, at(b.tls)) == (False, (5, 43))


def test_v1_wins_over_v2_and_addresses_split():
    model = model_of(SERVERS)
    c = server(model, "mail", "c")
    assert (c.host, c.port, c.send_proxy.value) == ("2001:db8::1", 993, ProxyHeader.V1)
    d = server(model, "mail", "d")
    assert (d.host, d.port) == ("10.0.0.4", None)  # no port: the client's destination port
    e = server(model, "mail", "e")
    assert (e.send_proxy.value, e.send_proxy.origin) == (ProxyHeader.V2, "send-proxy-v2-ssl-cn on server e")


def test_option_values_are_not_read_as_options():
    f = server(model_of(SERVERS), "mail", "f")
    assert at(f.tls) == (3, 34)  # from default-server: the `ssl` on line 9 names the CA file
    assert at(f.send_proxy) == (9, 39)


def test_upstream_span_is_the_backend_header():
    model = model_of(SERVERS)
    assert [(u.name, u.span.line, len(u.servers)) for u in model.upstreams] == [("mail", 1, 7)]


def test_backend_in_another_file_is_found():
    front = parse_file(SourceFile("a.cfg", FileKind.HAPROXY,
                                  "frontend f\n    bind :143\n    timeout client 1h\n    default_backend b\n"))
    back = parse_file(SourceFile("b.cfg", FileKind.HAPROXY,
                                 "backend b\n    timeout server 2m\n    server s 10.0.0.1:143\n"))
    model = Model(root=".")
    build([front, back], model)
    r = route(model, "f/b")
    assert (r.idle_timeout.value, r.idle_timeout.span.path) == (120.0, "b.cfg")


# --------------------------------------------------------------------------------------------
# seed 004: the HAProxy examples of Dovecot's HAProxy page (read from ../shared/corpus)
# --------------------------------------------------------------------------------------------

DOVECOT_PAGE = "dovecot__documentation__docs__core__config__proxy__haproxy.md__block{}"


def corpus_text(block: int) -> str:
    return shared_path("corpus", "files", "haproxy", DOVECOT_PAGE.format(block)).read_text(encoding="utf-8")


def join_continuations(text: str) -> str:
    """What the page's author meant: lines ending in `\\` joined with the next one."""
    return re.sub(r"[ \t]*\\\n[ \t]*", " ", text)


def test_seed_tls_to_dovecot():
    model = model_of(corpus_text(1))
    (ep,) = model.entrypoints
    assert (ep.name, ep.port, ep.tls.value, at(ep.tls)) == ("imap_tls", 993, True, (2, 16))
    r = route(model, "imap_tls/dovecot_imap_tls")
    assert (r.tls.value, r.layer.value, r.idle_timeout.value) == (ProxyTls.TERMINATE, "tcp", None)
    s = server(model, "dovecot_imap_tls", "dovecot1")
    assert (s.host, s.port, s.tls.value) == ("10.0.0.1", 993, True)
    assert (s.send_proxy.value, s.send_proxy.origin) == (ProxyHeader.V2, "send-proxy-v2-ssl on server dovecot1")


@pytest.mark.parametrize(("block", "line", "column"), [(4, 5, 54), (13, 4, 60)])
def test_seed_line_continuations_are_refused_like_haproxy_does(block, line, column):
    parsed = parse_file(SourceFile("haproxy.cfg", FileKind.HAPROXY, corpus_text(block)))
    assert parsed.tree is None
    problem = parsed.problems[0]
    assert (problem.span.line, problem.span.column) == (line, column)
    assert "HAProxy has no line continuation" in problem.message


def test_seed_mtls_backend_once_joined():
    s = server(model_of(join_continuations(corpus_text(4))), "dovecot_imap_tls", "dovecot1")
    assert (s.port, s.tls.value, s.send_proxy.value) == (993, True, ProxyHeader.V2)
    assert "send-proxy-v2-ssl" in s.send_proxy.origin


def test_seed_health_check_backend_once_joined():
    s = server(model_of(join_continuations(corpus_text(13))), "dovecot_imap_tls", "dovecot1")
    assert (s.port, s.tls.value, s.send_proxy.value) == (993, True, ProxyHeader.V2)


def test_seed_plaintext_backend():
    model = model_of(corpus_text(6))
    r = route(model, "imap_tls/dovecot_imap")
    assert r.tls.value is ProxyTls.TERMINATE
    s = server(model, "dovecot_imap", "dovecot1")
    assert (s.port, s.tls.value, s.send_proxy.value) == (143, False, ProxyHeader.V2)
    assert s.tls.span is None


def test_seed_passthrough():
    model = model_of(corpus_text(10))
    (ep,) = model.entrypoints
    assert (ep.port, ep.tls.value) == (993, False)
    r = route(model, "imap_tls/dovecot_imap_tls")
    assert r.tls.value is ProxyTls.NONE and r.sni is None
    s = server(model, "dovecot_imap_tls", "dovecot1")
    assert (s.port, s.tls.value, s.send_proxy.value) == (993, False, ProxyHeader.V2)


def test_seed_timeouts_in_defaults():
    # the page's defaults block, followed by a proxy that uses it
    text = corpus_text(12) + "listen imap\n    bind :143\n    server d 10.0.0.1:143\n"
    r = route(model_of(text), "imap")
    assert (r.idle_timeout.value, r.idle_timeout.origin) == (1860.0, "timeout client 31m (defaults)")
    assert r.layer.origin == "mode tcp (defaults)"


def test_seed_tcp_check_with_unquoted_pattern_is_refused():
    parsed = parse_file(SourceFile("haproxy.cfg", FileKind.HAPROXY, corpus_text(14)))
    assert parsed.tree is None
    assert (parsed.problems[0].span.line, parsed.problems[0].span.column) == (4, 31)
    fixed = corpus_text(14).replace("string * OK", 'string "* OK"')
    s = server(model_of(fixed), "dovecot_imap", "dovecot1")
    assert (s.port, s.send_proxy.value, s.tls.value) == (143, ProxyHeader.V2, False)


def test_every_accepted_corpus_file_builds():
    manifest = shared_path("corpus", "manifest.tsv")
    with manifest.open(encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle, delimiter="\t")
                if r["type"] == "haproxy" and r["oracle_verdict"].startswith("accepted")]
    for row in rows:
        text = (manifest.parent / row["path"]).read_text(encoding="utf-8", errors="replace")
        model = model_of(text, row["path"])
        for r in model.routes:
            assert r.layer.value in {"tcp", "http", "log", "spop"} or "$" in r.layer.value


# --------------------------------------------------------------------------------------------
# `.if` blocks (every text below passes haproxy 2.6 -c)
# --------------------------------------------------------------------------------------------

CONDITIONAL = """\
defaults
    mode tcp
    timeout connect 5s
    timeout client 31m
    timeout server 31m
frontend imaps
    bind :993
    default_backend dovecot
backend dovecot
.if defined(DOVECOT_TLS)
    server d1 10.0.0.1:993 ssl verify none send-proxy-v2-ssl
.else
    server d1 10.0.0.1:143 send-proxy-v2
.endif
.if 0
    server never 10.0.0.9:143
.endif
.if version_atleast(2.8)
    server new 10.0.0.2:143 send-proxy-v2
.endif
"""


def test_unknown_conditions_keep_both_branches_and_say_so():
    model = model_of(CONDITIONAL)
    servers = next(u for u in model.upstreams if u.name == "dovecot").servers
    assert [(s.name, s.port) for s in servers] == [("d1", 993), ("d1", 143), ("new", 143)]
    first, second = servers[0], servers[1]
    assert first.condition.value == ".if defined(DOVECOT_TLS)" and at(first.condition) == (10, 1)
    assert first.condition.origin == "inside '.if defined(DOVECOT_TLS)' at haproxy.cfg:10, condition not known"
    assert second.condition.value == ".else" and at(second.condition) == (12, 1)
    assert servers[2].condition.value == ".if version_atleast(2.8)"  # no version known


def test_known_version_decides_version_predicates():
    parsed = parse_file(SourceFile("haproxy.cfg", FileKind.HAPROXY, CONDITIONAL))
    model = Model(root=".")
    model.versions[("haproxy", Product.HAPROXY)] = Setting(Version((2, 6, 12)), None, "image haproxy:2.6.12")
    build([parsed], model)
    servers = next(u for u in model.upstreams if u.name == "dovecot").servers
    assert [s.name for s in servers] == ["d1", "d1"]


def test_a_header_haproxy_never_reads_leaves_its_lines_to_the_section_above():
    text = ("defaults\n    timeout client 1m\n.if 0\nfrontend old\n    bind :110\n.endif\n"
            "    timeout client 31m\nfrontend imap\n    bind :143\n    default_backend b\n"
            "backend b\n    server s 10.0.0.1:143\n")
    model = model_of(text)
    assert [ep.name for ep in model.entrypoints] == ["imap"]
    assert route(model, "imap/b").timeouts["client"].value == 1860.0  # line 7 belongs to defaults


def test_settings_from_unknown_branches_say_so_in_their_origin():
    text = ("defaults\n.if defined(SHORT)\n    timeout client 1m\n.endif\n    timeout server 31m\n"
            "frontend imap\n    bind :143\n    default_backend b\nbackend b\n    server s 10.0.0.1:143\n")
    timeout = route(model_of(text), "imap/b").timeouts["client"]
    assert timeout.origin == ("timeout client 1m (defaults, inside '.if defined(SHORT)' at haproxy.cfg:2, "
                              "condition not known)")


# --------------------------------------------------------------------------------------------
# health checks, PROXY options, timeouts, independent streams, content inspection
# --------------------------------------------------------------------------------------------

CHECKS = """\
defaults mail
    mode tcp
    timeout connect 5s
    timeout client 10m
    option independent-streams
    tcp-request inspect-delay 5s
    default-server send-proxy-v2 proxy-v2-options ssl check
frontend smtp
    bind :25
    tcp-request content accept if { req.len gt 0 }
    default_backend postfix
backend postfix
    option smtpchk
    timeout tunnel 15m
    server a 10.0.0.2:12525 check port 12525 inter 10s
    server b 10.0.0.2:25 no-send-proxy-v2 no-check
    server c 10.0.0.3:465 ssl verify none check-send-proxy
    server d 10.0.0.3:465 ssl verify none addr 10.0.0.9
backend dovecot
    option tcp-check
    tcp-check connect port 10143 send-proxy
    tcp-check expect string "* OK"
    server e 10.0.0.1:10143
"""


def test_server_health_check_fields():
    model = model_of(CHECKS)
    a = server(model, "postfix", "a")
    assert (a.check.value, at(a.check)) == (True, (15, 29))
    assert (a.check_port.value, at(a.check_port), a.check_port.origin) == (12525, (15, 40), "port 12525 on server a")
    assert a.check_send_proxy.value is False and a.check_tls.value is False
    b = server(model, "postfix", "b")
    assert (b.check.value, at(b.check), b.check.origin) == (False, (16, 43), "no-check on server b")
    c = server(model, "postfix", "c")
    assert (c.check_send_proxy.value, at(c.check_send_proxy)) == (True, (17, 43))
    assert (c.check.value, at(c.check)) == (True, (7, 55))  # from default-server
    assert (c.check_tls.value, at(c.check_tls)) == (True, (17, 27))  # inherited from ssl: no override
    d = server(model, "postfix", "d")
    assert (d.check_addr.value, d.check_tls.value) == ("10.0.0.9", False)  # addr: checks leave TLS aside


def test_proxy_defaults_cancels_and_tls_facts():
    model = model_of(CHECKS)
    a = server(model, "postfix", "a")
    assert [(o.value, at(o)) for o in a.proxy_defaults] == [("send-proxy-v2", (7, 20)),
                                                           ("proxy-v2-options ssl", (7, 34))]
    assert a.proxy_tls_facts.value is True and at(a.proxy_tls_facts) == (7, 34)
    b = server(model, "postfix", "b")
    assert b.send_proxy.value is ProxyHeader.NONE
    assert [(o.value, at(o)) for o in b.proxy_cancels] == [("no-send-proxy-v2", (16, 26))]
    assert b.proxy_tls_facts.value is False  # no v2 header left to carry it


def test_backend_check_option_tcp_checks_and_timeouts():
    model = model_of(CHECKS)
    postfix = next(u for u in model.upstreams if u.name == "postfix")
    assert (postfix.health_check.value, at(postfix.health_check)) == ("smtpchk", (13, 5))
    assert set(postfix.timeouts) == {"connect", "tunnel"} and postfix.timeouts["tunnel"].value == 900.0
    dovecot = next(u for u in model.upstreams if u.name == "dovecot")
    assert dovecot.health_check.value == "tcp-check"
    assert [(t.value, at(t)) for t in dovecot.tcp_checks] == [
        (("connect", "port", "10143", "send-proxy"), (21, 5)), (("expect", "string", "* OK"), (22, 5))]


def test_route_timeouts_independent_streams_and_waiting_for_the_client():
    r = route(model_of(CHECKS), "smtp/postfix")
    assert (r.section_span.line, r.section_span.column) == (8, 1)
    assert (r.timeouts["client"].value, at(r.timeouts["client"])) == (600.0, (4, 5))
    assert (r.independent_streams.value, at(r.independent_streams)) == ("frontend", (5, 5))
    assert (r.waits_for_client.value, at(r.waits_for_client)) == ("req.len", (10, 5))
    assert "waits for the client's first bytes" in r.waits_for_client.origin


def test_no_inspect_delay_means_no_wait():
    text = CHECKS.replace("    tcp-request inspect-delay 5s\n", "")
    assert route(model_of(text.replace("defaults mail", "defaults")), "smtp/postfix").waits_for_client is None
