"""The configuration file: discovery, every key's effect on a real run, and errors with lines."""
from __future__ import annotations

from pathlib import Path

import pytest

from conftest import SHORT_IDLE_HAPROXY, write_tree
from mailproxy_lint.config import Config, ConfigError, discover, glob_matches, key_line, load
from mailproxy_lint.engine import all_rules, run
from mailproxy_lint.model import Product, Version

RULES = all_rules()

# Dovecot accepts PROXY on port 143 without trusting anyone: MPL201 on `haproxy = yes` (line 5).
DOVECOT_NO_TRUST = """\
protocols = imap
service imap-login {
  inet_listener imap {
    port = 143
    haproxy = yes
  }
}
"""


def config_from(tmp_path: Path, text: str, name: str = ".mailproxy-lint.toml") -> Config:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return load(path, RULES, cwd=tmp_path)


def found(tmp_path: Path, config: Config, paths=(".",), **kwargs) -> set[tuple[str, int, str, str]]:
    result = run([Path(p) for p in paths], config=config, **kwargs)
    return {(f.span.path, f.span.line, f.rule_id, str(f.severity)) for f in result.findings}


# --------------------------------------------------------------------------------------------
# Locating keys
# --------------------------------------------------------------------------------------------

LOCATE = """\
# comment
select = ["MPL1"]

[severity]
MPL401 = "note"
"idle-timeout-too-short" = "warning"

[options.MPL401]
assumed-idle-interval = "10m"

[versions]
postfix = "3.4"
mailserver.dovecot = "2.3.19"
inline = { a = 1 }

[ "tool" . 'mailproxy-lint' . hosts ]
mailserver = ["10.0.0.5"]
"""


@pytest.mark.parametrize("keys, line", [
    (("select",), 2),
    (("severity",), 4),
    (("severity", "MPL401"), 5),
    (("severity", "idle-timeout-too-short"), 6),
    (("options", "MPL401", "assumed-idle-interval"), 9),
    (("versions", "postfix"), 12),
    (("versions", "mailserver", "dovecot"), 13),
    (("versions", "inline", "a"), 14),  # inside an inline table: the line of the table
    (("versions", "missing"), 11),  # not written: its nearest written parent
    (("tool", "mailproxy-lint", "hosts", "mailserver"), 17),
    (("nowhere",), 1),
])
def test_key_line(keys, line):
    assert key_line(LOCATE, keys) == line


# --------------------------------------------------------------------------------------------
# Globs
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("pattern, path, expected", [
    ("*.bak", "haproxy/haproxy.cfg.bak", True),
    ("*.bak", "haproxy/haproxy.cfg", False),
    ("old", "docker/old/main.cf", True),  # a name matches a folder at any depth
    ("old/", "old/main.cf", True),
    ("docker/old/*.cf", "docker/old/main.cf", True),
    ("docker/old/*.cf", "other/docker/old/main.cf", False),  # a pattern with / is anchored
    ("docker/*.cf", "docker/old/main.cf", False),  # * does not cross folders
    ("docker/**/*.cf", "docker/a/b/main.cf", True),
    ("docker/**/*.cf", "docker/main.cf", True),
    ("./staging", "staging/haproxy.cfg", True),
    ("stag?ng", "staging/haproxy.cfg", True),
])
def test_glob_matches(pattern, path, expected):
    assert glob_matches(pattern, path) is expected


# --------------------------------------------------------------------------------------------
# Discovery
# --------------------------------------------------------------------------------------------


def test_discovery_walks_upwards_and_nearest_wins(tmp_path):
    write_tree(tmp_path, {
        "pyproject.toml": "[tool.mailproxy-lint]\nignore = ['MPL401']\n",
        "deploy/mail/haproxy/haproxy.cfg": SHORT_IDLE_HAPROXY,
        "deploy/.mailproxy-lint.toml": "ignore = ['MPL403']\n",
    })
    assert discover(tmp_path / "deploy" / "mail" / "haproxy") == tmp_path / "deploy" / ".mailproxy-lint.toml"
    assert discover(tmp_path / "deploy" / "mail" / "haproxy" / "haproxy.cfg") == tmp_path / "deploy" / ".mailproxy-lint.toml"
    assert discover(tmp_path) == tmp_path / "pyproject.toml"


def test_pyproject_counts_only_with_our_table(tmp_path):
    write_tree(tmp_path, {
        "pyproject.toml": "[tool.mailproxy-lint]\nignore = ['MPL401']\n",
        "sub/pyproject.toml": "[project]\nname = 'unrelated'\n[tool.ruff]\nline-length = 100\n",
    })
    assert discover(tmp_path / "sub") == tmp_path / "pyproject.toml"


def test_dotfile_comes_before_pyproject_in_one_folder(tmp_path):
    write_tree(tmp_path, {"pyproject.toml": "[tool.mailproxy-lint]\n", ".mailproxy-lint.toml": ""})
    assert discover(tmp_path) == tmp_path / ".mailproxy-lint.toml"


def test_no_file_means_no_configuration(tmp_path):
    # the temporary folder's parents hold no configuration in a normal test environment
    found_file = discover(tmp_path)
    assert found_file is None or tmp_path not in found_file.parents


def test_pyproject_table_is_read(tmp_path):
    config = config_from(tmp_path, '[project]\nname = "x"\n\n[tool.mailproxy-lint]\nignore = ["MPL401"]\n',
                         name="pyproject.toml")
    assert config.ignore == ("MPL401",) and config.path == "pyproject.toml"


# --------------------------------------------------------------------------------------------
# Errors: file and line, no traceback
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, message", [
    ('select = ["MPL1"]\n\nbogus = true\n', ".mailproxy-lint.toml:3: bogus: unknown key"),
    ('select = "MPL999"\n', ".mailproxy-lint.toml:1: select: unknown rule 'MPL999'"),
    ('ignore = [1, 2]\n', ".mailproxy-lint.toml:1: ignore: expected a list of strings"),
    ('[severity]\nMPL401 = "fatal"\n', ".mailproxy-lint.toml:2: severity.MPL401: expected one of error, warning, note"),
    ('[severity]\nno-such-rule = "note"\n', ".mailproxy-lint.toml:2: severity.no-such-rule: unknown rule"),
    ('\n[per-file-ignores]\n"old/*" = ["MPL401", "MPL9"]\n', ".mailproxy-lint.toml:3: per-file-ignores.old/*: unknown rule 'MPL9'"),
    ('[options.MPL401]\nidle = "2m"\n', ".mailproxy-lint.toml:2: options.MPL401.idle: MPL401 has no option 'idle'"),
    ('[options.MPL401]\nassumed-idle-interval = "soon"\n', ".mailproxy-lint.toml:2: options.MPL401.assumed-idle-interval: expected a duration"),
    ('[options.MPL888]\n', ".mailproxy-lint.toml:1: options.MPL888: unknown rule"),
    ('[versions]\npostfix = 3.4\n', '.mailproxy-lint.toml:2: versions.postfix: expected a version string such as "3.5"'),
    ('[versions]\npostfix = "three"\n', ".mailproxy-lint.toml:2: versions.postfix: expected a version"),
    ('[versions.mailserver]\nexim = "4.96"\n', ".mailproxy-lint.toml:2: versions.mailserver.exim: unknown product"),
    ('[hosts]\nmailserver = 5\n', ".mailproxy-lint.toml:2: hosts.mailserver: expected a list of strings"),
    ('[paths]\n"etc/dovecot" = "."\n', ".mailproxy-lint.toml:2: paths.etc/dovecot: expected an absolute path"),
    ('[paths]\n"/etc/dovecot" = "no-such-folder"\n', ".mailproxy-lint.toml:2: paths./etc/dovecot: 'no-such-folder' is not a folder"),
    ('exclude = "*.bak"\nselect = [\n', ".mailproxy-lint.toml:2: not valid TOML"),
    ('severity = ["MPL401"]\n', ".mailproxy-lint.toml:1: severity: expected a table"),
])
def test_configuration_errors_name_file_and_line(tmp_path, text, message):
    with pytest.raises(ConfigError) as caught:
        config_from(tmp_path, text)
    assert str(caught.value).startswith(message), str(caught.value)
    assert "\n" not in str(caught.value)


def test_pyproject_named_without_our_table_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match=r"pyproject.toml: has no \[tool.mailproxy-lint\] table"):
        config_from(tmp_path, "[project]\nname = 'x'\n", name="pyproject.toml")


def test_pyproject_error_lines_count_from_the_top_of_the_file(tmp_path):
    text = '[project]\nname = "x"\n\n[tool.mailproxy-lint.severity]\nMPL401 = "loud"\n'
    with pytest.raises(ConfigError, match=r"^pyproject.toml:5: severity.MPL401: "):
        config_from(tmp_path, text, name="pyproject.toml")


# --------------------------------------------------------------------------------------------
# Each key, on a real run
# --------------------------------------------------------------------------------------------


def test_select_ignore_and_extend_select(tmp_path, monkeypatch):
    monkeypatch.chdir(write_tree(tmp_path, {"haproxy.cfg": SHORT_IDLE_HAPROXY, "dovecot/dovecot.conf": DOVECOT_NO_TRUST}))
    everything = found(tmp_path, Config())
    assert {f[2] for f in everything} >= {"MPL401", "MPL201"}
    assert {f[2] for f in found(tmp_path, config_from(tmp_path, 'select = ["MPL2"]\n'))} == {"MPL201"}
    assert "MPL401" not in {f[2] for f in found(tmp_path, config_from(tmp_path, 'ignore = ["idle-timeout-too-short"]\n'))}
    both = config_from(tmp_path, 'select = ["MPL2"]\nextend-select = ["MPL401"]\n')
    assert {f[2] for f in found(tmp_path, both)} == {"MPL201", "MPL401"}


def test_command_line_wins_over_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir(write_tree(tmp_path, {"haproxy.cfg": SHORT_IDLE_HAPROXY, "dovecot/dovecot.conf": DOVECOT_NO_TRUST}))
    config = config_from(tmp_path, 'select = ["MPL2"]\nignore = ["MPL401"]\n')
    # --select replaces the file's select; a rule named on the command line is not ignored by the file
    assert {f[2] for f in found(tmp_path, config, select=["MPL401"])} == {"MPL401"}
    # a command-line --ignore adds to the file's
    assert {f[2] for f in found(tmp_path, config, ignore=["MPL201"])} == set()


def test_per_file_ignores(tmp_path, monkeypatch):
    monkeypatch.chdir(write_tree(tmp_path, {
        "staging/haproxy.cfg": SHORT_IDLE_HAPROXY,
        "prod/haproxy.cfg": SHORT_IDLE_HAPROXY,
    }))
    config = config_from(tmp_path, '[per-file-ignores]\n"staging/*.cfg" = ["idle-timeout-too-short"]\n')
    result = found(tmp_path, config)
    assert ("prod/haproxy.cfg", 7, "MPL401", "error") in result
    assert not any(f[0].startswith("staging/") and f[2] == "MPL401" for f in result)


def test_severity_override(tmp_path, monkeypatch):
    monkeypatch.chdir(write_tree(tmp_path, {"haproxy.cfg": SHORT_IDLE_HAPROXY}))
    config = config_from(tmp_path, '[severity]\nMPL401 = "note"\n')
    result = run([Path(".")], config=config)
    assert [(f.rule_id, str(f.severity)) for f in result.findings] == [("MPL401", "note")]
    assert next(r for r in result.rules if r.id == "MPL401").severity.name == "NOTE"  # SARIF's default level


def test_rule_option_changes_the_result(tmp_path, monkeypatch):
    # 5 minutes is more than twice the assumed 2-minute keepalive: fine by default
    monkeypatch.chdir(write_tree(tmp_path, {"haproxy.cfg": SHORT_IDLE_HAPROXY.replace("50s", "5m")}))
    assert not any(f[2] == "MPL401" for f in found(tmp_path, Config()))
    config = config_from(tmp_path, '[options.idle-timeout-too-short]\nassumed-idle-interval = "10m"\n')
    assert config.options == {"MPL401": {"assumed-idle-interval": 600.0}}
    result = run([Path(".")], config=config)
    finding = next(f for f in result.findings if f.rule_id == "MPL401")
    assert finding.span.line == 7 and str(finding.severity) == "error"
    assert "assumed-idle-interval" in finding.message
    # a number is taken as seconds
    assert config_from(tmp_path, '[options.MPL401]\nassumed-idle-interval = 90\n').options["MPL401"] == {
        "assumed-idle-interval": 90.0}


DMS_COMPOSE = """\
services:
  reverse-proxy:
    image: traefik:v2.11
    command:
      - --providers.docker.exposedbydefault=false
      - --entrypoints.smtp.address=:25
    ports:
      - "25:25"

  mailserver:
    image: docker.io/mailserver/docker-mailserver:10.4.0
    volumes:
      - ./docker-data/dms/config/:/tmp/docker-mailserver/
    labels:
      - traefik.enable=true
      - traefik.tcp.routers.smtp.rule=HostSNI(`*`)
      - traefik.tcp.routers.smtp.entrypoints=smtp
      - traefik.tcp.routers.smtp.service=smtp
      - traefik.tcp.services.smtp.loadbalancer.server.port=25
      - traefik.tcp.services.smtp.loadbalancer.proxyProtocol.version=2
"""
DMS_MASTER = "smtp/inet/postscreen_upstream_proxy_protocol=haproxy\n"


def _dms(tmp_path, monkeypatch):
    monkeypatch.chdir(write_tree(tmp_path, {"compose.yaml": DMS_COMPOSE,
                                       "docker-data/dms/config/postfix-master.cf": DMS_MASTER}))


def test_versions_win_over_image_tags(tmp_path, monkeypatch):
    _dms(tmp_path, monkeypatch)
    # docker-mailserver 10.4.0 ships Postfix 3.5, which reads PROXY v2: nothing to report
    assert not any(f[2] == "MPL103" for f in found(tmp_path, Config()))
    config = config_from(tmp_path, '# what production runs\n[versions]\npostfix = "3.4"\n')
    result = run([Path(".")], config=config)
    postfix = next(lst for lst in result.deployments[0].listeners if lst.port == 25)
    assert postfix.version.value == Version((3, 4))
    assert str(postfix.version.span) == ".mailproxy-lint.toml:3:1"
    assert postfix.version.origin == "mailproxy-lint configuration"
    assert all(v.value == Version((3, 4)) for (host, product), v in result.deployments[0].versions.items()
               if product is Product.POSTFIX)
    finding = next(f for f in result.findings if f.rule_id == "MPL103")
    assert ".mailproxy-lint.toml:3" in finding.message or any(".mailproxy-lint.toml" in r.span.path for r in finding.related)


def test_versions_per_host_and_platform_version(tmp_path, monkeypatch):
    _dms(tmp_path, monkeypatch)
    # docker-mailserver 10.3 is Debian 10: Postfix 3.4, which reads only PROXY v1
    config = config_from(tmp_path, '[versions.mailserver]\ndocker-mailserver = "10.3.0"\n')
    assert config.versions[("mailserver", Product.DOCKER_MAILSERVER)].value == Version((10, 3, 0))
    result = run([Path(".")], config=config)
    postfix = next(lst for lst in result.deployments[0].listeners if lst.port == 25)
    assert postfix.version.value == Version((3, 4))
    assert any(f.rule_id == "MPL103" for f in result.findings)
    # a pin for another host changes nothing here
    other = config_from(tmp_path, '[versions.elsewhere]\ndocker-mailserver = "10.3.0"\n')
    assert not any(f.rule_id == "MPL103" for f in run([Path(".")], config=other).findings)


ALIAS_COMPOSE = """\
services:
  mailserver:
    image: ghcr.io/docker-mailserver/docker-mailserver:14.0
    hostname: mail.example.org
"""
ALIAS_HAPROXY = """\
defaults
    mode tcp
    timeout connect 5s
    timeout client 31m
    timeout server 31m

frontend imaps
    bind :993
    default_backend mail_imaps

backend mail_imaps
    server mail1 10.0.0.5:993 send-proxy-v2
"""


def test_host_aliases_link_an_address_to_a_host(tmp_path, monkeypatch):
    monkeypatch.chdir(write_tree(tmp_path, {"compose.yaml": ALIAS_COMPOSE, "haproxy.cfg": ALIAS_HAPROXY}))
    plain = run([Path(".")])
    assert not plain.deployments[0].links  # 10.0.0.5 is nobody the scanned files describe
    config = config_from(tmp_path, '[hosts]\nmailserver = ["10.0.0.5", "mail.internal"]\n')
    assert [a.value for a in config.hosts["mailserver"]] == ["10.0.0.5", "mail.internal"]
    result = run([Path(".")], config=config)
    links = result.deployments[0].links
    assert links and {lk.listener.host for lk in links} == {"mailserver"}
    assert "host alias, .mailproxy-lint.toml:2:1" in links[0].evidence
    assert any(f.rule_id == "MPL101" for f in result.findings)  # DMS's imaps listener takes no PROXY


DOVECOT_ROOT = """\
protocols = imap
haproxy_trusted_networks = 10.0.0.2
!include /etc/dovecot/conf.d/*.conf
"""
DOVECOT_MASTER = """\
service imap-login {
  inet_listener imap {
    port = 143
    haproxy = yes
  }
}
"""


def test_paths_map_absolute_includes_into_the_tree(tmp_path, monkeypatch):
    monkeypatch.chdir(write_tree(tmp_path, {"docker/dovecot/dovecot.conf": DOVECOT_ROOT,
                                       "docker/dovecot/conf.d/10-master.conf": DOVECOT_MASTER}))
    plain = run([Path(".")])
    # without a mapping: reported, never read from this machine
    assert ("docker/dovecot/dovecot.conf", 3, "MPL003") in {(f.span.path, f.span.line, f.rule_id) for f in plain.findings}
    assert len(plain.deployments[0].dovecot) == 2  # the fragment counts as its own root
    config = config_from(tmp_path, '[paths]\n"/etc/dovecot/" = "docker/dovecot"\n')
    mapped = run([Path(".")], config=config)
    assert not {f.rule_id for f in mapped.findings} & {"MPL003", "MPL201"}
    (instance,) = mapped.deployments[0].dovecot
    assert instance.settings["service imap-login/inet_listener imap/haproxy"].value == "yes"
    assert instance.settings["haproxy_trusted_networks"].value == "10.0.0.2"


def test_paths_mapping_to_an_empty_folder_reports_the_include(tmp_path, monkeypatch):
    monkeypatch.chdir(write_tree(tmp_path, {"docker/dovecot/dovecot.conf": DOVECOT_ROOT}))
    (tmp_path / "docker" / "dovecot" / "conf.d").mkdir()
    config = config_from(tmp_path, '[paths]\n"/etc/dovecot" = "docker/dovecot"\n')
    findings = [f for f in run([Path(".")], config=config).findings if f.rule_id == "MPL003"]
    assert len(findings) == 1 and "No matches" in findings[0].message


def test_exclude(tmp_path, monkeypatch):
    monkeypatch.chdir(write_tree(tmp_path, {"haproxy/haproxy.cfg": SHORT_IDLE_HAPROXY,
                                       "old/haproxy.cfg": SHORT_IDLE_HAPROXY,
                                       "haproxy/backup.cfg": "this is { not haproxy\nfrontend\n  bind :143\n  mode tcp\n"}))
    config = config_from(tmp_path, 'exclude = ["old", "haproxy/backup.cfg"]\n')
    result = run([Path(".")], config=config)
    assert result.files == ["haproxy/haproxy.cfg"]
    # a file named on the command line is read even when excluded
    assert run([Path("old/haproxy.cfg")], config=config).files == ["old/haproxy.cfg"]


def test_globs_are_relative_to_the_configuration_file(tmp_path, monkeypatch):
    write_tree(tmp_path, {"repo/mail/old/haproxy.cfg": SHORT_IDLE_HAPROXY, "repo/mail/haproxy.cfg": SHORT_IDLE_HAPROXY})
    config = config_from(tmp_path / "repo", 'exclude = ["mail/old/*"]\n')
    monkeypatch.chdir(tmp_path / "repo" / "mail")
    assert run([Path(".")], config=config).files == ["haproxy.cfg"]
