"""No secret from the scanned files reaches any output.

Unique random canaries are planted in every secret-bearing position of every format, in files
that parse and in files that do not (where a syntax error message would quote the token it
stopped at). The CLI then runs in every output format, to standard output and to `--output`,
and no canary may appear in standard output, standard error or the report file.
"""
from __future__ import annotations

import secrets as random_source
from pathlib import Path

import pytest

from mailproxy_lint import cli
from mailproxy_lint.model import FileKind, SourceFile, Span
from mailproxy_lint.secrets import MASK, Masker, Secret, find_secrets, is_secret_name


class Canaries:
    """Makes unique canaries and remembers them."""

    def __init__(self):
        self.made: dict[str, str] = {}

    def __call__(self, where: str) -> str:
        value = "cnry" + random_source.token_hex(8)
        self.made[value] = where
        return value


def valid_tree(root: Path, c: Canaries) -> None:
    (root / "dovecot").mkdir()
    (root / "dovecot" / "conf.d").mkdir()
    (root / "dovecot" / "dovecot.conf").write_text(
        "protocols = imap\n"
        f"ssl_key_password = {c('dovecot ssl_key_password')}\n"
        "!include conf.d/*.conf\n"
        "haproxy_trusted_networks = traefik\n"  # an MPL004 finding that quotes its own line
        "service imap-login {\n  inet_listener imap {\n    port = 143\n    haproxy = yes\n  }\n}\n")
    (root / "dovecot" / "conf.d" / "auth-sql.conf").write_text(
        f"ssl_server_key_password = \"{c('dovecot 2.4 ssl_server_key_password')}\"\n"
        f"mysql db.example.com {{\n  password = {c('dovecot 2.4 mysql password')}\n}}\n")
    (root / "dovecot" / "conf.d" / "auth-ldap.conf.ext").write_text(
        f"dnpass = {c('dovecot ldap dnpass')}\n"
        f"connect = host=db dbname=mail user=mail password={c('dovecot sql connect password')}\n")
    (root / "postfix").mkdir()
    (root / "postfix" / "main.cf").write_text(
        "myhostname = mail.example.com\n"
        f"smtp_sasl_password_maps = inline:{{ [relay.example.com]:587=user:{c('postfix inline password map')} }}\n"
        "smtpd_upstream_proxy_protocol = yes\n")
    (root / "postfix" / "master.cf").write_text(
        "smtp      inet  n       -       n       -       1       postscreen\n"
        f"  -o smtp_sasl_password_maps=static:relay:{c('master.cf -o static password map')}\n"
        "smtpd     pass  -       -       n       -       -       smtpd\n")
    config = root / "docker-data" / "dms" / "config"
    config.mkdir(parents=True)
    (config / "postfix-master.cf").write_text(
        f"submission/inet/smtp_sasl_password_maps=static:u:{c('postfix-master.cf override password')}\n")
    (config / "user-patches.sh").write_text(
        "#!/bin/bash\n"
        f"postconf -e 'smtp_sasl_password_maps=static:u:{c('user-patches postconf password')}'\n"
        f"echo '[relay.example.com]:587 u:{c('user-patches sasl_passwd content')}' > /etc/postfix/sasl_passwd\n"
        f"export RELAY_PASSWORD={c('user-patches env')}\n"
        f"curl -u admin:{c('user-patches url')} https://u:{c('user-patches url password')}@example.com/\n")
    (root / "haproxy.cfg").write_text(
        "defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 1m\n    timeout server 1m\n\n"
        f"userlist admins\n    user admin password $6${c('haproxy userlist hash')}\n"
        f"    user bob insecure-password {c('haproxy insecure-password')}\n\n"
        f"listen stats\n    mode http\n    bind :8404\n    stats enable\n    stats auth admin:{c('haproxy stats auth')}\n"
        f"    http-check send hdr Authorization \"Basic {c('haproxy Authorization header')}\"\n\n"
        "frontend imap\n    bind :143\n    default_backend dovecot\n\n"
        "backend dovecot\n    server d1 10.0.0.1:143\n")
    (root / "compose.yaml").write_text(
        "services:\n"
        "  mailserver:\n"
        "    image: ghcr.io/docker-mailserver/docker-mailserver:15.0.0\n"
        "    environment:\n"
        f"      - RELAY_PASSWORD={c('compose env list')}\n"
        f"      - \"CF_DNS_API_TOKEN={c('compose env list quoted')}\"\n"
        "    labels:\n"
        f"      - traefik.http.middlewares.auth.basicauth.users=admin:$$apr1$${c('compose basicauth label')}\n"
        "  traefik:\n"
        "    image: traefik:v3.1\n"
        "    environment:\n"
        f"      TRAEFIK_PILOT_TOKEN: {c('compose env mapping')}\n"
        "    labels:\n"
        f"      traefik.http.middlewares.b.digestauth.users: \"u:r:{c('compose digestauth label')}\"\n")
    (root / "dynamic.yml").write_text(
        "http:\n  middlewares:\n    auth:\n      basicAuth:\n        users:\n"
        f"          - \"test:$apr1${c('traefik dynamic basicAuth user')}\"\n"
        f"          - \"other:{c('traefik dynamic second user')}\"\n"
        "tcp:\n  routers:\n    imap:\n      rule: HostSNI(`*`)\n      service: imap\n")
    (root / "secret.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: auth\nstringData:\n  users: |\n"
        f"    admin:{c('kubernetes Secret stringData block')}\n"
        f"data:\n  password: {c('kubernetes Secret data')}\n"
        "---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: mail\nspec:\n  template:\n    spec:\n"
        "      containers:\n        - name: mail\n          env:\n            - name: LDAP_BIND_PW\n"
        f"              value: {c('kubernetes container env value')}\n")


def broken_tree(root: Path, c: Canaries) -> None:
    """Secret-bearing lines that the parsers reject, so MPL001 messages point at them."""
    (root / "dovecot.conf").write_text(
        f"ssl_key_password {c('dovecot line without =')}\n"
        f"ssl_key_password = \"{c('dovecot unclosed quote')}\n"
        "service imap-login {\n")
    (root / "main.cf").write_text(
        f"  smtp_sasl_password {c('postfix leading space continuation')}\n"
        f"smtp_sasl_password {c('postfix line without =')}\n")
    (root / "master.cf").write_text(
        f"smtp inet n - n - 1 postscreen -o smtp_sasl_password_maps=static:{c('master.cf extra field')} {{\n"
        f"  -o relay_password={c('master.cf -o without service')}\n")
    (root / "postfix-master.cf").write_text(f"smtp/inet/relay_password = {c('override with spaces')}\n")
    (root / "haproxy.cfg").write_text(
        "userlist admins\n"
        f"    user admin insecure-password \"{c('haproxy unclosed quote')}\n"
        f"    user bob password {c('haproxy bad escape')}\\x\n"
        f"listen stats\n    stats auth admin:{c('haproxy stats auth in a bad file')}'\n"
        "    timeout client 1x\n")
    (root / "compose.yaml").write_text(
        "services:\n  mailserver:\n    environment:\n"
        f"      - \"RELAY_PASSWORD={c('compose unclosed quote')}\n"
        f"      MY_SECRET: {c('compose mapping in a list')}: x\n")
    (root / "dynamic.yml").write_text(
        f"http:\n  middlewares:\n    auth:\n      basicAuth:\n        users: [\"u:{c('traefik unclosed flow')}\"\n")
    (root / "traefik.yml").write_text(
        f"metrics:\n  influxDB2:\n    token: {c('traefik static token')}\n"
        f"    token: {c('traefik duplicate key')}\n  bad: [\n")


OUTPUTS = ("text", "json", "sarif", "github")


def run_everywhere(root: Path, out_dir: Path, capsys, monkeypatch) -> str:
    """stdout, stderr and report files of the CLI in every format, concatenated."""
    monkeypatch.chdir(root)
    seen = []
    for fmt in OUTPUTS:
        assert cli.main([".", "--format", fmt]) in (0, 1)
        captured = capsys.readouterr()
        seen += [captured.out, captured.err]
        report = out_dir / f"report.{fmt}"
        assert cli.main([".", "--format", fmt, "--output", str(report)]) in (0, 1)
        captured = capsys.readouterr()
        seen += [captured.out, captured.err, report.read_text()]
    return "\n".join(seen)


@pytest.mark.parametrize("make_tree", [valid_tree, broken_tree], ids=["valid", "broken"])
def test_no_canary_in_any_output(make_tree, tmp_path, capsys, monkeypatch):
    root, out_dir = tmp_path / "scan", tmp_path / "out"
    root.mkdir()
    out_dir.mkdir()
    canaries = Canaries()
    make_tree(root, canaries)
    everything = run_everywhere(root, out_dir, capsys, monkeypatch)
    assert "MPL" in everything  # the runs reported something
    leaked = {where for value, where in canaries.made.items() if value in everything}
    assert leaked == set()


def test_every_planted_secret_is_found(tmp_path):
    """Each canary position is known to the scanner (so masking does not rely on luck)."""
    for make_tree in (valid_tree, broken_tree):
        root = tmp_path / make_tree.__name__
        root.mkdir()
        canaries = Canaries()
        make_tree(root, canaries)
        from mailproxy_lint.load import load

        found = {s.value for source in load([root]).sources for s in find_secrets(source)}
        missed = {where for value, where in canaries.made.items() if not any(value in f for f in found)}
        assert missed == set(), make_tree.__name__


def test_unmasked_reports_would_leak(tmp_path, capsys, monkeypatch):
    """The broken tree really makes messages quote secrets: without masking, canaries show."""
    import mailproxy_lint.secrets as secrets_module

    root, out_dir = tmp_path / "scan", tmp_path / "out"
    root.mkdir()
    out_dir.mkdir()
    canaries = Canaries()
    broken_tree(root, canaries)
    monkeypatch.setattr(secrets_module, "mask_run", lambda findings, deployments: (findings, deployments))
    everything = run_everywhere(root, out_dir, capsys, monkeypatch)
    assert any(value in everything for value in canaries.made)


# --------------------------------------------------------------------------------------------
# The scanner and the masker in detail
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [
    "ssl_key_password", "ssl_server_key_password", "RELAY_PASSWORD", "CF_DNS_API_TOKEN", "MY_SECRET", "dnpass",
    "LDAP_BIND_PW", "SMTP_PASS", "traefik.http.middlewares.a.basicauth.users", "http.middlewares.a.basicAuth.users",
    "smtp/inet/relay_password"])
def test_secret_names(name):
    assert is_secret_name(name)


@pytest.mark.parametrize("name", [
    "passdb", "tls.passthrough", "passthrough", "secretName", "PASSWORD_FILE", "smtp_sasl_password_maps",
    "default_pass_scheme", "secrets", "users", "basicauth.usersfile", "haproxy_trusted_networks",
    "password_query", "passdb_sql_query", "pass_attrs", "pass_filter"])  # SQL and LDAP lookups, no secret
def test_names_that_are_not_secrets(name):
    assert not is_secret_name(name)


def test_positions_and_values():
    source = SourceFile("dovecot.conf", FileKind.DOVECOT,
                        "ssl_key_password = \"top secret\"  # the key\nconnect = host=db password=s3cr3t user=x\n")
    found = [(s.line, s.start, s.end, s.value) for s in find_secrets(source)]
    assert found == [(1, 20, 30, "top secret"), (2, 27, 33, "s3cr3t")]


def test_references_are_not_secrets():
    source = SourceFile("compose.yaml", FileKind.COMPOSE,
                        "services:\n  a:\n    environment:\n      - DB_PASSWORD=${DB_PASSWORD}\n      TOKEN: $TOKEN\n")
    assert find_secrets(source) == []


def test_masker_masks_whole_values_parts_and_repr_forms():
    masker = Masker([Secret("main.cf", 3, 0, 0, "x", "correct horse battery"),
                     Secret("main.cf", 4, 0, 0, "y", "a\\b'c1234")])
    assert masker.message("unexpected 'correct horse battery'") == f"unexpected '{MASK}'"
    # a parser quoting one word of it, on the secret's own line
    assert masker.message("unexpected 'horse'", [Span("main.cf", 3, 5)]) == f"unexpected '{MASK}'"
    # the same word elsewhere is left alone (too short to be recognised without the line)
    assert masker.message("a horse", [Span("main.cf", 9, 1)]) == "a horse"
    # 8 shared characters are masked anywhere
    assert masker.message("found batter!") == "found batter!"
    assert masker.message("found horse battery") == f"found{MASK}"  # the shared run includes the space
    assert MASK in masker.message(repr("a\\b'c1234"))


def test_masked_source_keeps_columns():
    source = SourceFile("haproxy.cfg", FileKind.HAPROXY, "listen s\n    stats auth admin:hunter22\n")
    masker = Masker(find_secrets(source))
    assert masker.source(source).text == "listen s\n    stats auth admin:********\n"
