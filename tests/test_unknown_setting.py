"""MPL002 (unknown-setting) and the typed-value checks of MPL004, below the fixture level.

The fixtures in `tests/fixtures/rules/MPL002` and `MPL004` show the rules end to end; these
tests pin the pieces: the name tables, how section paths and `$macros` are read, which values
Dovecot and Postfix accept (each case below was run through doveconf 2.3.19 or Postfix 3.7's
`bad time value or unit` check), and that no configuration the real daemons accepted in the
shared corpus gets a finding.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from test_corpus import CORPUS, KIND_BY_TYPE, ROWS, dms_override_kind

from mailproxy_lint.data import known_names, traefik_labels
from mailproxy_lint.engine import all_rules, analyse, check, run
from mailproxy_lint.model import FileKind, Product, Version
from mailproxy_lint.rules.input import dovecot_bool_error, dovecot_port_error, dovecot_time_error
from mailproxy_lint.rules.unknown_setting import dovecot24_value_type, section_kind, split_path, suggestion

RULES = [r for r in all_rules() if r.id in ("MPL002", "MPL004")]


def findings(tmp_path: Path, files: dict[str, str], rule_id: str = "MPL002"):
    for name, text in files.items():
        target = tmp_path / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    deployment = analyse(str(tmp_path), [tmp_path])
    return sorted((f for f in check(deployment, RULES) if f.rule_id == rule_id), key=lambda f: f.sort_key())


# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------


def test_postfix_table_knows_names_versions_and_service_patterns():
    table = known_names.postfix()
    assert table.built_from >= Version((3, 7))
    assert table.since["smtpd_upstream_proxy_protocol"] == Version((2, 10))
    assert table.since["postscreen_upstream_proxy_protocol"] == Version((2, 10))
    assert "postscreen_blacklist_action" in table.since  # renamed in 3.6, still accepted
    assert "smtpd_upstream_proxy_timeout" in table.time_parameters
    services = {"dovecot": "pipe", "relay": "smtp", "submission": "smtpd"}
    assert table.pattern_for("dovecot_destination_recipient_limit", services) is not None
    assert table.pattern_for("dovecot_time_limit", services) is not None
    assert table.pattern_for("relay_time_limit", services) is None  # only pipe/spawn have it
    assert table.pattern_for("submission_destination_concurrency_limit", services) is None


def test_dovecot_table_has_sections_types_and_hidden_settings():
    table = known_names.dovecot23()
    assert table.type_of("inet_listener", "haproxy") == "bool"
    assert table.type_of("inet_listener", "port") == "port"
    assert table.type_of("-", "imap_idle_notify_interval") == "time"
    assert table.type_of("-", "haproxy_timeout") == "time"
    assert table.type_of("-", "service") == "section"
    assert table.known_anywhere("mail_cache_min_mail_count")  # accepted, but not printed by -a
    assert not table.known_anywhere("haproxy_trusted_network")


def test_haproxy_table_has_keywords_per_section_and_options():
    table = known_names.haproxy()
    assert table.built_from == Version((2, 6, 12))
    assert {"timeout", "bind", "default_backend", "option"} <= table.keywords["frontend"]
    assert "server" in table.keywords["backend"] and "server" not in table.keywords["frontend"]
    assert {"maxconn", "master-worker", "tune.ssl.default-dh-param"} <= table.keywords["global"]
    assert {"tcplog", "tcp-check", "splice-auto"} <= table.options["listen"]
    assert {"user", "group"} <= table.keywords["userlist"]


def test_dovecot_24_table_has_types_filters_and_plugin_settings():
    table = known_names.dovecot24()
    assert table.built_from == Version((2, 4))
    assert len(table.settings) > 700
    assert table.settings["ssl_server_cert_file"] == "string"
    assert table.settings["inet_listener_haproxy"] == "bool"
    assert table.settings["inet_listener_port"] == "port"
    assert table.settings["haproxy_timeout"] == "time"
    assert table.settings["login_proxy_timeout"] == "time_ms"
    assert table.settings["quota_storage_size"] == "size"
    assert table.settings["service"] == "list_filter" and table.settings["ssl_server"] == "filter"
    assert table.settings["protocols"] == "boollist" and table.settings["import_environment"] == "strlist"
    # plugin settings are global settings now: quota, sieve, imapsieve, fts, mail-crypt
    assert {"quota_driver", "sieve_script_path", "imapsieve_from", "fts_autoindex", "crypt_write_algorithm"} \
        <= set(table.settings)
    # 2.3 names 2.4 renamed, and the documentation drafts 2.4.0 replaced, are not 2.4 names
    assert not {"ssl_cert", "disable_plaintext_auth", "mail_location", "ssl_cert_file", "sieve_after"} \
        & set(table.settings)


@pytest.mark.parametrize(("frames", "key", "name"), [
    ([], "ssl_server_cert_file", "ssl_server_cert_file"),
    (["ssl_server"], "cert_file", "ssl_server_cert_file"),
    (["service imap-login", "inet_listener imaps"], "haproxy", "inet_listener_haproxy"),
    (["service imap-login", "inet_listener imaps"], "inet_listener_port", "inet_listener_port"),
    (["passdb sql"], "query", "passdb_sql_query"),  # `<filter>_<name>_<key>` first
    (["passdb ldap"], "ldap_base", "ldap_base"),  # then the global name
    (["quota user"], "warning", "quota_warning"),  # a filter's own kind is prefixed too
    (["quota user", "warning warn-80", "execute quota-warning"], "args", "execute_args"),
    (["protocol imap"], "mail_plugins", "mail_plugins"),  # connection filters add no prefix
    (["local 10.0.0.0/8", "protocol imap"], "imap_idle_notify_interval", "imap_idle_notify_interval"),
    (["group @mysql default"], "host", "mysql_host"),  # a group's label is the prefix
    (["namespace inbox", 'mailbox "Sent Messages"'], "special_use", "mailbox_special_use"),
    (["service imap-login", "inet_listener imaps"], "prot", None),
    ([], "ssl_server_cert_fle", None),
])
def test_dovecot_24_lookup_follows_filter_prefixes(frames, key, name):
    assert known_names.dovecot24().resolve(frames, key) == name


def test_dovecot_24_value_types_for_typed_checks():
    assert dovecot24_value_type(["service imap-login", "inet_listener imap"], "haproxy") == "bool"
    assert dovecot24_value_type(["service imap-login", "inet_listener imap"], "port") == "port"
    assert dovecot24_value_type([], "haproxy_timeout") == "time"
    assert dovecot24_value_type(["import_environment"], "TZ") is None  # a free key
    assert dovecot24_value_type(["plugin"], "quota") is None


@pytest.mark.parametrize(("key", "unknown"), [
    ("traefik.tcp.routers.Smtp.EntryPoints", None),
    ("traefik.tcp.routers.imaps.tls.domains[0].main", None),
    ("traefik.tcp.services.s.loadBalancer.proxyProtocol.version", None),
    ("traefik.http.middlewares.x.redirectscheme.scheme", None),
    ("traefik.tcp.serverstransports.pp.proxyprotocol.version", None),
    ("traefik.http.routers.web.entrypoint", 4),
    ("traefik.docker.netwrk", 2),
    ("traefik.tcp.services.s.loadbalancer.servers.port", 5),
])
def test_traefik_label_tree(key, unknown):
    found = traefik_labels.unknown_segment(key)
    assert (found[0] if found else None) == unknown


def test_traefik_decodes_only_its_prefixes():
    assert traefik_labels.decoded("traefik.enable")
    assert traefik_labels.decoded("TRAEFIK.tcp.routers.x.rule")
    assert not traefik_labels.decoded("traefik.foo")  # no filter matches: Traefik ignores it
    assert not traefik_labels.decoded("com.example.backup")


# --------------------------------------------------------------------------------------------
# Paths, suggestions, values
# --------------------------------------------------------------------------------------------


def test_split_path_keeps_listener_names_with_slashes():
    assert split_path("service auth/unix_listener login/director/mode") == [
        "service auth", "unix_listener login/director", "mode"]
    assert split_path("passdb ldap/fields/password") == ["passdb ldap", "fields", "password"]
    assert split_path("dict acl/dict_map shared/quota/$user/value_field v/type") == [
        "dict acl", "dict_map shared/quota/$user", "value_field v", "type"]
    assert section_kind(["local 10.0.0.0/8", "protocol imap"]) == "-"
    assert section_kind(["service imap-login", "inet_listener imap"]) == "inet_listener"
    assert section_kind(["plugin"]) is None


def test_suggestion_uses_the_closest_name():
    assert suggestion("haproxy_trusted_network", known_names.dovecot23().settings["-"]) == "haproxy_trusted_networks"
    assert suggestion("zzzz", ["haproxy"]) is None


@pytest.mark.parametrize(("value", "error"), [
    ("2 mins", None), ("2m", None), ("2 M", None), ("2 mi", None), ("30s", None), ("2 second", None),
    ("2 w", None), ("0", None), ("02m", None),
    ("120", "Time interval '120' is missing units (add e.g. 's' for seconds)"),
    ("2 hrs", "Invalid time interval: 2 hrs"), ("1.5m", "Invalid time interval: 1.5m"),
    ("2mins30s", "Invalid time interval: 2mins30s"), ("+2m", "Invalid time interval: +2m"),
    ("infinite", "Invalid time interval: infinite"), ("2 secss", "Invalid time interval: 2 secss"),
    ("2 ms", "Milliseconds not supported for this setting: 2 ms"),
    ("2 mil", "Milliseconds not supported for this setting: 2 mil"),
])
def test_dovecot_time_values_as_doveconf_reads_them(value, error):
    assert dovecot_time_error(value, milliseconds=False) == error


def test_dovecot_booleans_and_ports():
    assert [v for v in ("yes", "Yes", "y", "Y", "1", "no", "NO") if dovecot_bool_error(v)] == []
    assert dovecot_bool_error("on") == "Invalid boolean value: on (use yes or no)"
    assert dovecot_bool_error("0") and dovecot_bool_error("true")
    assert dovecot_port_error("0") is None and dovecot_port_error("00143") is None
    assert dovecot_port_error("65536") == "Invalid port number 65536"
    assert dovecot_port_error("imap") == "Invalid port number imap"


# --------------------------------------------------------------------------------------------
# Whole-rule behaviour
# --------------------------------------------------------------------------------------------


def test_dovecot_finding_points_at_the_setting_with_a_suggestion(tmp_path):
    (finding,) = findings(tmp_path, {"dovecot.conf": "protocols = imap\nservice imap-login {\n"
                                                      "  inet_listener imap {\n    hproxy = yes\n  }\n}\n"})
    assert (finding.span.line, finding.span.column) == (4, 5)
    assert "Unknown setting: hproxy" in finding.message and "did you mean `haproxy`" in finding.message
    assert str(finding.severity) == "error"


def test_dovecot_24_name_without_any_version_is_left_alone(tmp_path):
    assert findings(tmp_path, {"dovecot.conf": "ssl_server_cert_file = /etc/cert.pem\n"}) == []


DOVECOT_24_HEAD = "dovecot_config_version = {}\ndovecot_storage_version = 2.4.0\n"


def test_dovecot_24_reports_every_unknown_name_with_its_filter(tmp_path):
    text = DOVECOT_24_HEAD.format("2.4.1") + (
        "proxy_protocol_trusted = yes\n"                               # line 3: not a misspelling
        "service imap-login {\n  inet_listener imap {\n    send_proxy = yes\n  }\n}\n"  # line 6
        "tls {\n  min_protocol = TLSv1.2\n}\n"                         # line 9: unknown filter
        "mail_location = maildir:~/Maildir\n"                          # line 12: a 2.3 name
    )
    got = findings(tmp_path, {"dovecot.conf": text})
    assert [(f.span.line, f.span.column) for f in got] == [(3, 1), (6, 5), (9, 1), (12, 1)]
    assert "`proxy_protocol_trusted` is not a Dovecot 2.4.1 setting" in got[0].message
    assert "`send_proxy` inside `inet_listener { }`" in got[1].message
    assert "Unknown section name: tls" in got[2].message
    assert "a Dovecot 2.3 name that 2.4 no longer has" in got[3].message
    assert all(str(f.severity) == "error" for f in got)


def test_dovecot_24_leaves_renamed_23_names_and_free_lists_alone(tmp_path):
    text = DOVECOT_24_HEAD.format("2.4.0") + (
        "ssl_cert = </etc/dovecot/cert.pem\n"          # MPL701 names the 2.4 replacement
        "plugin {\n  sieve = file:~/sieve\n}\n"        # removed section: MPL701 as well
        "import_environment {\n  ANY_NAME = 1\n}\n"   # strlist: free keys
        "protocols {\n  imap = yes\n}\n"              # boollist: free keys
        "passdb passwd-file {\n  passwd_file_path = /etc/dovecot/users\n  fields {\n    any = x\n  }\n}\n"
        "dict_server {\n  dict acl {\n    dict_map shared/shared-boxes/user/$to/$from {\n"
        "      sql_table = share_folder\n      value_field dummy {\n      }\n    }\n  }\n}\n"
        "@mysql = default\n"
    )
    assert findings(tmp_path, {"dovecot.conf": text}) == []


def test_dovecot_newer_than_the_table_gets_only_misspellings(tmp_path):
    text = DOVECOT_24_HEAD.format("2.5.0") + "proxy_protocol_trusted = yes\nssl_server_cert_fle = /c.pem\n"
    (finding,) = findings(tmp_path, {"dovecot.conf": text})
    assert finding.span.line == 4
    assert "2.5.0 may add names" in finding.message and "did you mean `ssl_server_cert_file`" in finding.message


def test_dovecot_24_fragment_without_version_is_checked_as_24(tmp_path):
    text = "mail_driver = maildir\nmail_pth = ~/Maildir\nservice lmtp {\n  clientlimit = 1\n}\n"
    got = findings(tmp_path, {"dovecot/conf.d/10-mail.conf": text})
    assert [f.span.line for f in got] == [2, 4]
    assert "did you mean `mail_path`" in got[0].message and "did you mean `client_limit`" in got[1].message


def test_postfix_unknown_is_a_warning_and_macros_are_defined(tmp_path):
    files = {
        "main.cf": "compatibility_level = 3.6\nsmtpd_upstream_proxy_protocl = haproxy\n"
                   "own_checks = permit_mynetworks\n",
        "master.cf": "smtp inet n - y - 1 postscreen\nsubmission inet n - y - - smtpd\n"
                     "  -o smtpd_client_restrictions=$own_checks\n",
    }
    (finding,) = findings(tmp_path, files)
    assert (finding.span.path.endswith("main.cf"), finding.span.line) == (True, 2)
    assert str(finding.severity) == "warning"
    assert "did you mean `smtpd_upstream_proxy_protocol`" in finding.message


def test_postfix_name_newer_than_the_known_release(tmp_path):
    files = {
        "compose.yaml": "services:\n  mail:\n    image: ghcr.io/docker-mailserver/docker-mailserver:10.3.0\n"
                        "    volumes:\n      - ./config/:/tmp/docker-mailserver/\n",
        "config/postfix-main.cf": "maillog_file = /dev/stdout\ndnssec_probe = ns:.\n",
    }
    (finding,) = findings(tmp_path, files)  # maillog_file is 3.4: fine on docker-mailserver 10.3
    assert (Path(finding.span.path).name, finding.span.line) == ("postfix-main.cf", 2)
    assert "`dnssec_probe` (main.cf) exists only from Postfix 3.6 on, and this is Postfix 3.4" in finding.message


def test_haproxy_version_blocks_and_options(tmp_path):
    text = ("global\n    maxconn 10\n.if version_atleast(9.0)\n    tune.future 1\n.endif\n"
            "defaults\n    mode tcp\n    no option dontlognull\n    option tcplogg\n    timout client 1m\n")
    got = findings(tmp_path, {"haproxy.cfg": text})
    assert [(f.span.line, f.span.column) for f in got] == [(9, 12), (10, 5)]
    assert "unknown option 'tcplogg'" in got[0].message and "did you mean `tcplog`" in got[0].message
    assert "unknown keyword 'timout' in 'defaults' section" in got[1].message


def test_haproxy_unknown_name_without_lookalike_only_when_version_is_covered(tmp_path):
    text = "global\n    maxconn 10\n    frobnicate 1\n"
    assert findings(tmp_path / "a", {"haproxy.cfg": text}) == []  # version unknown: maybe newer
    compose = "services:\n  lb:\n    image: haproxy:2.6\n    volumes:\n      - ./haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg\n"
    got = findings(tmp_path / "b", {"haproxy.cfg": text, "compose.yaml": compose})  # haproxy:2.6 = the table's
    assert [(f.span.line, f.span.column) for f in got] == [(3, 5)]
    assert "unknown keyword 'frobnicate' in 'global' section" in got[0].message


def test_traefik_label_finding_names_the_container(tmp_path):
    compose = ("services:\n  webmail:\n    image: nginx\n    labels:\n"
               "      - traefik.http.routers.web.entrypoint=websecure\n")
    (finding,) = findings(tmp_path, {"compose.yaml": compose})
    assert (finding.span.line, finding.span.column) == (5, 9)
    assert "'webmail'" in finding.message and "did you mean `entrypoints`" in finding.message


@pytest.mark.parametrize(("label", "suggestion"), [
    ("traefik.tcp.services.s.loadbalancer.servers.port=25", "`server`"),
    ("traefik.tcp.routers.r.entrypoint=smtp", "`entrypoints`"),
    ("traefik.enabled=true", "`enable`"),
])
def test_unknown_tcp_label_key_is_reported_once_as_mpl002(tmp_path, label, suggestion):
    compose = ("services:\n  mailserver:\n    image: mailserver/docker-mailserver:15.0.0\n    labels:\n"
               f"      - traefik.tcp.routers.ok.rule=HostSNI(`*`)\n      - {label}\n")
    (tmp_path / "compose.yaml").write_text(compose, encoding="utf-8")
    got = [f for f in run([tmp_path], select=["MPL001", "MPL002"]).findings]
    assert [(f.rule_id, f.span.line) for f in got] == [("MPL002", 6)]
    assert suggestion in got[0].message


def test_postfix_time_and_port_values(tmp_path):
    files = {
        "main.cf": "smtpd_upstream_proxy_timeout = 5 m\nipc_timeout = 5m\npostscreen_upstream_proxy_timeout = $x\n",
        "master.cf": "smtp inet n - y - 1 postscreen\n70000 inet n - y - - smtpd\n",
    }
    got = findings(tmp_path, files, "MPL004")
    assert [(Path(f.span.path).name, f.span.line) for f in got] == [("main.cf", 1), ("master.cf", 2)]
    assert "bad time value or unit: 5 m" in got[0].message


# --------------------------------------------------------------------------------------------
# The corpus: what the daemons accepted must stay silent
# --------------------------------------------------------------------------------------------

ACCEPTED = [r for r in ROWS if r["oracle_verdict"].startswith("accepted")]


@pytest.mark.skipif(not ACCEPTED, reason="../shared/corpus not available")
@pytest.mark.parametrize("row", ACCEPTED, ids=lambda r: r["path"].rsplit("/", 1)[-1][:80])
def test_accepted_corpus_files_get_no_name_or_value_findings(row):
    kind = dms_override_kind(row["path"]) if row["type"] == "postfix-dms-override" else KIND_BY_TYPE.get(row["type"])
    if kind is None or kind is FileKind.STALWART:
        pytest.skip(f"type {row['type']!r} has no table")
    path = CORPUS / row["path"]
    deployment = analyse(str(path.parent), [path], forced_kind=kind)
    assert [f"{f.span}: {f.message}" for f in check(deployment, RULES)] == []
    assert all(n.product in (Product.HAPROXY, Product.TRAEFIK) for n in deployment.names)
