"""Bad, broken and hostile input: a clear finding for what could not be read, never a crash,
and the other files are always still checked."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mailproxy_lint.engine import run
from mailproxy_lint.load import MAX_FILE_BYTES

GOOD_DOVECOT = "protocols = imap\nservice imap-login {\n  inet_listener imap {\n    port = 143\n  }\n}\n"
BAD_HAPROXY = (
    "defaults\n    mode tcp\n    timeout client 1m\n    timeout server 1m\n\n"
    "frontend imap\n    bind :143\n    default_backend d\n\nbackend d\n    server d1 10.0.0.1:143\n"
)


def findings_of(root: Path):
    cwd = os.getcwd()
    os.chdir(root)
    try:
        return run([Path(".")])
    finally:
        os.chdir(cwd)


def syntax_errors(result):
    return [(f.span.path, f.span.line, f.span.column, f.message) for f in result.findings if f.rule_id == "MPL001"]


def test_non_utf8_file_is_reported_and_others_still_checked(tmp_path):
    (tmp_path / "dovecot.conf").write_bytes(b"protocols = imap\nlogin_greeting = caf\xe9\n")
    (tmp_path / "haproxy.cfg").write_text(BAD_HAPROXY)
    result = findings_of(tmp_path)
    assert syntax_errors(result) == [("dovecot.conf", 2, 21, "not valid UTF-8 (byte 0xe9); expected UTF-8 text")]
    assert any(f.rule_id == "MPL401" for f in result.findings), "the HAProxy file must still be checked"


def test_nul_byte_is_binary(tmp_path):
    (tmp_path / "main.cf").write_bytes(b"myhostname = mail.example.com\n\x00\x01\x02")
    result = findings_of(tmp_path)
    assert syntax_errors(result) == [("main.cf", 2, 1, "binary content (NUL byte); expected a text file")]


def test_oversized_file_is_reported_not_read(tmp_path):
    big = tmp_path / "haproxy.cfg"
    with big.open("w") as fh:
        line = "# " + "x" * 1000 + "\n"
        for _ in range(MAX_FILE_BYTES // len(line) + 2):
            fh.write(line)
    result = findings_of(tmp_path)
    [(path, line_no, _, message)] = syntax_errors(result)
    assert path == "haproxy.cfg" and line_no == 1
    assert f"files over {MAX_FILE_BYTES} bytes are not read" in message


def test_empty_files_are_fine(tmp_path):
    for name in ("dovecot.conf", "main.cf", "master.cf", "haproxy.cfg", "compose.yaml"):
        (tmp_path / name).write_text("")
    result = findings_of(tmp_path)
    assert [f for f in result.findings if f.rule_id == "MPL001" and "haproxy" not in f.span.path] == []


def test_deeply_nested_dovecot_sections_do_not_crash(tmp_path):
    depth = 10_000
    text = "".join(f"s{i} {{\n" for i in range(depth)) + "".join("}\n" for _ in range(depth))
    (tmp_path / "dovecot.conf").write_text(text)
    findings_of(tmp_path)  # must not raise (RecursionError included)


def test_deeply_nested_yaml_does_not_crash(tmp_path):
    depth = 10_000
    (tmp_path / "compose.yaml").write_text("services: " + "[" * depth + "]" * depth + "\n")
    findings_of(tmp_path)


def test_yaml_alias_bomb_is_not_expanded(tmp_path):
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [{','.join('*' + prev for _ in range(9))}]")
    (tmp_path / "compose.yaml").write_text("services: {}\n" + "\n".join(lines) + "\n")
    proc = subprocess.run([sys.executable, "-m", "mailproxy_lint", str(tmp_path)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr


def test_yaml_custom_tags_are_never_constructed(tmp_path):
    marker = tmp_path / "pwned"
    (tmp_path / "compose.yaml").write_text(
        "services:\n  x:\n    image: !!python/object/apply:os.system ['touch " + str(marker) + "']\n")
    findings_of(tmp_path)
    assert not marker.exists()


def test_symlink_loop_and_escaping_links_are_not_followed(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "loop").symlink_to(root, target_is_directory=True)
    outside = tmp_path / "secret.cf"
    outside.write_text("myhostname = outside\n")
    (root / "main.cf").symlink_to(outside)
    (root / "dovecot.conf").write_text(GOOD_DOVECOT)
    result = findings_of(root)
    assert result.files == ["dovecot.conf"]


def test_dovecot_include_loop_is_finite(tmp_path):
    (tmp_path / "dovecot.conf").write_text("!include a.conf\n")
    (tmp_path / "a.conf").write_text("!include dovecot.conf\nprotocols = imap\n")
    findings_of(tmp_path)  # must terminate


def test_include_of_system_path_is_never_read_from_this_machine(tmp_path):
    (tmp_path / "dovecot.conf").write_text("!include_try /etc/passwd\nprotocols = imap\n")
    result = findings_of(tmp_path)
    assert result.files == ["dovecot.conf"]


def test_unreadable_file_is_reported(tmp_path, monkeypatch):
    (tmp_path / "main.cf").write_text("myhostname = x\n")
    (tmp_path / "dovecot.conf").write_text(GOOD_DOVECOT)
    real_read = Path.read_bytes

    def read_bytes(self):  # the tests run as root, so permissions cannot make a file unreadable
        if self.name == "main.cf":
            raise PermissionError(13, "Permission denied")
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    result = findings_of(tmp_path)
    assert syntax_errors(result) == [("main.cf", 1, 1, "cannot read file: Permission denied")]
    assert result.files == ["dovecot.conf"]


def test_many_files(tmp_path):
    conf = tmp_path / "conf.d"
    conf.mkdir()
    (tmp_path / "dovecot.conf").write_text("!include conf.d/*.conf\n")
    for i in range(2000):
        (conf / f"{i:05d}-x.conf").write_text(f"# fragment {i}\nmail_max_userip_connections = {i}\n")
    result = findings_of(tmp_path)
    assert len(result.files) == 2001


# --------------------------------------------------------------------------------------------
# Safety: a run writes nothing but its report, opens no socket and starts no process
# --------------------------------------------------------------------------------------------

FIXTURES = Path(__file__).parent / "fixtures"
SCENARIOS = sorted(p for p in (FIXTURES / "scenarios").iterdir() if p.is_dir())
RULE_CASES = sorted(p for p in (FIXTURES / "rules").glob("*/*") if p.is_dir())


def tree_state(root: Path) -> dict[str, tuple]:
    """Every entry under root: kind, bytes and modification time (ns)."""
    state = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        content = path.read_bytes() if path.is_file() and not path.is_symlink() else None
        state[path.relative_to(root).as_posix()] = (info.st_mode, content, info.st_mtime_ns)
    return state


def test_a_run_writes_nothing_but_the_report(tmp_path, monkeypatch, capsys):
    import shutil

    from mailproxy_lint import cli

    scanned = tmp_path / "scanned"
    for scenario in SCENARIOS:
        shutil.copytree(scenario, scanned / scenario.name, symlinks=True)
    reports = tmp_path / "reports"
    reports.mkdir()
    before = tree_state(scanned)
    monkeypatch.chdir(scanned)
    for scenario in SCENARIOS:
        for fmt in ("text", "json", "sarif", "github"):
            report = reports / f"{scenario.name}.{fmt}"
            assert cli.main([scenario.name, "--format", fmt, "--output", str(report)]) in (0, 1)
            assert report.stat().st_size > 0
    capsys.readouterr()
    assert tree_state(scanned) == before
    assert sorted(p.name for p in reports.iterdir()) == sorted(
        f"{s.name}.{fmt}" for s in SCENARIOS for fmt in ("text", "json", "sarif", "github"))


def _forbidden(what: str):
    def refuse(*args, **kwargs):
        raise AssertionError(f"a run must not use {what}")
    return refuse


def test_a_run_opens_no_socket_and_starts_no_process(monkeypatch):
    import io
    import socket

    from mailproxy_lint.report import REPORTERS

    for name in ("socket", "create_connection", "socketpair", "getaddrinfo", "gethostbyname"):
        monkeypatch.setattr(socket, name, _forbidden(f"socket.{name}"))
    monkeypatch.setattr(subprocess, "Popen", _forbidden("subprocess.Popen"))
    for name in ("system", "popen", "fork", "execv", "execve", "execvp", "spawnv", "spawnve", "posix_spawn", "posix_spawnp"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, _forbidden(f"os.{name}"))
    for case in SCENARIOS + RULE_CASES:
        monkeypatch.chdir(case)
        result = run([Path(".")])
        if case in SCENARIOS:
            for reporter in REPORTERS.values():
                reporter(result, io.StringIO(), False)
