"""The command line as a user (or CI) runs it: output, exit codes, no tracebacks."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mailproxy_lint import __version__
from mailproxy_lint.cli import main

BROKEN_DOVECOT = "service imap-login {\n  inet_listener imap {\n    port = 143\n}\n"
CLEAN_DOVECOT = "protocols = imap\nservice imap-login {\n  inet_listener imap {\n    port = 143\n  }\n}\n"


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_COLOR": "1"}
    return subprocess.run([sys.executable, "-m", "mailproxy_lint", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=120)


def test_version():
    proc = cli("--version")
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"mailproxy-lint {__version__}"


def test_list_rules_shows_every_rule_with_severity():
    proc = cli("--list-rules")
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert any(line.startswith("MPL101  proxy-header-not-accepted") and " error " in line for line in lines)
    assert any(line.startswith("MPL001  syntax-error") for line in lines)


def test_explain_by_id_and_name(capsys):
    assert main(["--explain", "MPL401"]) == 0
    by_id = capsys.readouterr().out
    assert main(["--explain", "idle-timeout-too-short"]) == 0
    assert capsys.readouterr().out == by_id
    assert "## Why it matters" in by_id and "## Fix" in by_id


def test_unknown_rule_is_a_usage_error(tmp_path):
    proc = cli("--explain", "MPL999")
    assert proc.returncode == 2 and "unknown rule" in proc.stderr
    proc = cli("--select", "no-such-rule", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.startswith("mailproxy-lint: unknown rule 'no-such-rule'")
    assert "Traceback" not in proc.stderr


def test_missing_path_is_a_usage_error(tmp_path):
    proc = cli(str(tmp_path / "nope"))
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"mailproxy-lint: {tmp_path / 'nope'}: no such file or directory"


def test_syntax_error_exits_1_and_clean_exits_0(tmp_path):
    bad = tmp_path / "bad" / "dovecot"
    bad.mkdir(parents=True)
    (bad / "dovecot.conf").write_text(BROKEN_DOVECOT)
    proc = cli(".", cwd=tmp_path / "bad")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.startswith("dovecot/dovecot.conf:")
    assert " MPL001 [error] " in proc.stdout
    good = tmp_path / "good" / "dovecot"
    good.mkdir(parents=True)
    (good / "dovecot.conf").write_text(CLEAN_DOVECOT)
    proc = cli(".", cwd=tmp_path / "good")
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.strip() == "No problems found (1 file checked)."


def test_exit_zero_and_fail_on(tmp_path):
    (tmp_path / "dovecot.conf").write_text(BROKEN_DOVECOT)
    assert cli("--exit-zero", str(tmp_path)).returncode == 0
    assert cli("--ignore", "MPL001", str(tmp_path)).returncode == 0
    assert cli("--select", "syntax-error", str(tmp_path)).returncode == 1


def test_kind_forces_the_kind_of_a_named_file(tmp_path):
    odd = tmp_path / "imap-proxy.settings"
    odd.write_text(BROKEN_DOVECOT)
    proc = cli(str(odd))
    assert proc.returncode == 2 and "use --kind" in proc.stderr
    proc = cli("--kind", "dovecot", str(odd))
    assert proc.returncode == 1 and "MPL001" in proc.stdout
    assert cli("--kind", "dovecot", str(tmp_path)).returncode == 2


def test_output_file_is_written_and_stdout_stays_empty(tmp_path):
    (tmp_path / "dovecot.conf").write_text(BROKEN_DOVECOT)
    report = tmp_path / "out" / "report.json"
    report.parent.mkdir()
    proc = cli("--format", "json", "--output", str(report), str(tmp_path))
    assert proc.returncode == 1 and proc.stdout == ""
    doc = json.loads(report.read_text())
    assert doc["findings"][0]["rule"] == "MPL001"
    assert [p.name for p in report.parent.iterdir()] == ["report.json"]  # no temporary file left behind
    proc = cli("--output", str(tmp_path / "missing-dir" / "r.txt"), str(tmp_path))
    assert proc.returncode == 2 and "cannot write" in proc.stderr


def test_user_files_are_never_written(tmp_path):
    conf = tmp_path / "dovecot.conf"
    conf.write_text(BROKEN_DOVECOT)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")}
    cli(str(tmp_path))
    cli("--format", "sarif", str(tmp_path))
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*")} == before


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root can read anything")
def test_unreadable_directory_is_a_usage_error(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0)
    try:
        proc = cli(str(locked))
        assert proc.returncode == 2 and "not readable" in proc.stderr
    finally:
        locked.chmod(0o755)


# --------------------------------------------------------------------------------------------
# Configuration file, suppressions and baseline on the command line
# --------------------------------------------------------------------------------------------

# the `short_idle` fixture (conftest.py): a project whose one finding is MPL401 at haproxy/haproxy.cfg:7


def test_configuration_is_found_upwards_and_named_when_verbose(short_idle, monkeypatch, capsys):
    (short_idle / "pyproject.toml").write_text('[tool.mailproxy-lint]\nignore = ["MPL401"]\n')
    monkeypatch.chdir(short_idle / "haproxy")
    assert main(["-v", "."]) == 0
    captured = capsys.readouterr()
    assert captured.err == f"mailproxy-lint: configuration: {short_idle / 'pyproject.toml'}\n"
    assert main(["--format", "json", "."]) == 0
    assert json.loads(capsys.readouterr().out)["config"] == str(short_idle / "pyproject.toml")
    assert main(["--isolated", "-v", "."]) == 1
    assert capsys.readouterr().err == "mailproxy-lint: configuration: none (defaults)\n"


def test_config_option_names_the_file(short_idle, capsys):
    (short_idle / ".mailproxy-lint.toml").write_text('ignore = ["MPL401"]\n')
    (short_idle / "strict.toml").write_text('select = ["MPL401"]\n')
    assert main(["."]) == 0
    assert main(["--config", "strict.toml", "."]) == 1
    capsys.readouterr()
    assert main(["--config", "missing.toml", "."]) == 2
    assert capsys.readouterr().err == "mailproxy-lint: missing.toml: no such configuration file\n"


def test_severity_override_changes_the_exit_status(short_idle, capsys):
    assert main(["--fail-on", "error", "."]) == 1
    (short_idle / ".mailproxy-lint.toml").write_text('[severity]\nidle-timeout-too-short = "warning"\n')
    assert main(["--fail-on", "error", "."]) == 0
    assert " MPL401 [warning] " in capsys.readouterr().out
    assert main(["--fail-on", "warning", "."]) == 1


def test_command_line_selection_wins_over_the_file(short_idle, capsys):
    (short_idle / ".mailproxy-lint.toml").write_text('select = ["MPL2"]\n')
    assert main(["."]) == 0
    assert main(["--extend-select", "MPL401", "."]) == 1
    assert main(["--select", "MPL4", "."]) == 1


def test_configuration_error_is_one_line_and_exit_2(short_idle):
    (short_idle / ".mailproxy-lint.toml").write_text('select = ["MPL401"]\n\n[severity]\nMPL401 = "loud"\n')
    proc = cli(".", cwd=short_idle)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == ('mailproxy-lint: .mailproxy-lint.toml:4: severity.MPL401: expected one of error, warning, '
                           "note, got a string ('loud')\n")


def test_explain_lists_rule_options(capsys):
    assert main(["--explain", "MPL401"]) == 0
    out = capsys.readouterr().out
    assert out.endswith("\n## Options\nassumed-idle-interval (duration, default 2m): IDLE keepalive interval "
                        "assumed when the IMAP server's own config is not scanned\n")
