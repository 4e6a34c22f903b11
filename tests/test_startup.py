"""Start-up stays cheap: a run imports only what its files need, and grammars are analysed once.

The import checks run the real command in a subprocess with `python -X importtime` and read the
modules it reports, so they see exactly what a user's process loads. The cache checks exercise
`parse/_lark.py`'s per-user parser cache: an entry is used only when it is private, current and
intact; everything else falls back to analysing the grammar.
"""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from mailproxy_lint.parse import _lark

REPO = Path(__file__).resolve().parents[1]
HEAVY_FOR_TEXT = {"ruamel", "yaml", "sarif_om"}

sys.path.insert(0, str(REPO / "bench"))
try:
    import inputs  # the benchmark's generated configurations
finally:
    sys.path.remove(str(REPO / "bench"))


def imported_modules(args: list[str], cache_dir: Path) -> tuple[set[str], subprocess.CompletedProcess]:
    """Top-level package names a `mailproxy-lint ARGS` process imports."""
    env = {**os.environ, _lark.CACHE_ENV: str(cache_dir)}
    env.pop("GITHUB_ACTIONS", None)
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "mailproxy_lint", *args],
                          capture_output=True, text=True, env=env, timeout=60)
    names = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    assert "mailproxy_lint" in names, proc.stderr[-2000:]
    return names, proc


def test_version_imports_no_parser_or_format_library(tmp_path):
    names, proc = imported_modules(["--version"], tmp_path / "cache")
    assert proc.returncode == 0 and "mailproxy-lint" in proc.stdout
    assert not names & (HEAVY_FOR_TEXT | {"lark"})


def test_text_run_without_yaml_imports_no_yaml_sarif_or_parser_library(tmp_path):
    deployment = inputs.small_deployment(tmp_path / "deployment")  # haproxy + postfix + dovecot
    names, proc = imported_modules([str(deployment)], tmp_path / "cache")
    assert proc.returncode in (0, 1), proc.stderr
    assert "4 files checked" in proc.stdout, proc.stdout
    assert not names & (HEAVY_FOR_TEXT | {"lark"})  # every line took a fast path


def test_a_syntax_error_is_worded_by_the_grammar(tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "haproxy.cfg").write_text('global\n    log "stdout\n')  # unterminated quote
    names, proc = imported_modules([str(broken)], tmp_path / "cache")
    assert proc.returncode == 1 and "haproxy.cfg:2:9" in proc.stdout, proc.stdout + proc.stderr
    assert "lark" in names


def test_sarif_is_imported_for_sarif_only(tmp_path):
    deployment = inputs.small_deployment(tmp_path / "deployment")
    names, proc = imported_modules([str(deployment), "--format", "sarif"], tmp_path / "cache")
    assert proc.returncode in (0, 1), proc.stderr
    assert "sarif_om" in names


# --- the parser cache ------------------------------------------------------------------------

HAPROXY_TEXT = "defaults\n    mode tcp\n\nfrontend imap\n    bind :143 # plain\n    default_backend b\n"


def build_fresh(grammar: str = "haproxy", start: str = "start"):
    """`parser()` without the in-process memo, so each call goes to the cache or the grammar."""
    return _lark.parser.__wrapped__(grammar, start)


def shape(node) -> object:
    """A tree as nested tuples, every token with its type, text and positions."""
    from lark import Token

    if isinstance(node, Token):
        return (node.type, str(node), node.line, node.column, node.end_line, node.end_column, node.start_pos)
    meta = node.meta
    where = (meta.line, meta.column, meta.end_line, meta.end_column) if not meta.empty else None
    return (str(node.data), where, tuple(shape(child) for child in node.children))


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    directory = tmp_path / "cache"
    monkeypatch.setenv(_lark.CACHE_ENV, str(directory))
    return directory


@pytest.fixture
def no_analysis(monkeypatch):
    """Make analysing a grammar fail, so only a cache entry can produce a parser."""
    import lark

    class NoAnalysis(lark.Lark):
        def __init__(self, *args, **kwargs):
            raise AssertionError("grammar analysed although a valid cache entry exists")

    monkeypatch.setattr(lark, "Lark", NoAnalysis)


def entries(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.json"))


def key_of(entry: Path) -> str:
    return entry.stem.rsplit(".", 1)[1]  # <grammar>.<start>.<key>.json


def test_an_entry_is_written_privately_and_read_back(cache, request):
    built = build_fresh()
    [entry] = entries(cache)
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    assert not list(cache.glob(".entry-*"))  # no temporary file left behind
    request.getfixturevalue("no_analysis")
    loaded = build_fresh()
    assert shape(loaded.parse(HAPROXY_TEXT)) == shape(built.parse(HAPROXY_TEXT))


@pytest.mark.parametrize("grammar, start", [
    ("haproxy", "start"), ("dovecot", "start"), ("postfix_main", "start"),
    ("postfix_master", "start"), ("postfix_master", "override"), ("traefik_rule", "start"),
])
def test_every_grammar_round_trips_exactly(grammar, start, cache):
    from lark.grammar import Rule
    from lark.lexer import TerminalDef

    built = build_fresh(grammar, start)
    data, memo = built.memo_serialize([TerminalDef, Rule])
    [entry] = entries(cache)
    document = json.loads(entry.read_text(), object_hook=_lark._untag)
    assert document["data"] == data and document["memo"] == memo


def test_an_entry_others_can_write_is_not_read(cache, monkeypatch):
    build_fresh()
    [entry] = entries(cache)
    entry.chmod(0o666)
    assert _lark._read_entry(entry, key_of(entry)) is None
    entry.chmod(0o600)
    cache.chmod(0o777)
    assert _lark._read_entry(entry, key_of(entry)) is None
    cache.chmod(0o700)
    assert _lark._read_entry(entry, key_of(entry)) is not None


def test_a_symlinked_entry_is_not_followed(cache, tmp_path):
    build_fresh()
    [entry] = entries(cache)
    elsewhere = tmp_path / "elsewhere.json"
    entry.rename(elsewhere)
    entry.symlink_to(elsewhere)
    assert _lark._read_entry(entry, key_of(entry)) is None


def test_an_entry_for_another_grammar_text_is_not_read(cache):
    build_fresh("postfix_main")
    build_fresh("dovecot")
    main_entry, dovecot_entry = sorted(entries(cache), key=lambda p: p.stat().st_size)
    # an entry copied under another key (another grammar text or Lark version) does not match
    dovecot_entry.write_bytes(main_entry.read_bytes())
    assert _lark._read_entry(dovecot_entry, key_of(dovecot_entry)) is None


def test_a_damaged_entry_is_replaced(cache):
    build_fresh()
    [entry] = entries(cache)
    entry.write_text('{"key": "' + key_of(entry) + '", "data": {"broken": true}, "memo": {}}')
    parser = build_fresh()  # loading fails, the grammar is analysed again
    assert parser.parse(HAPROXY_TEXT).data == "start"
    assert json.loads(entry.read_text())["data"] != {"broken": True}


def test_an_entry_of_an_older_grammar_version_is_removed(cache, monkeypatch):
    build_fresh("postfix_main")
    [old] = entries(cache)
    assert old.name.startswith("postfix_main.start.")
    monkeypatch.setattr(_lark, "CACHE_FORMAT", _lark.CACHE_FORMAT + 1)  # as if the grammar changed
    build_fresh("postfix_main")
    [new] = entries(cache)
    assert new != old and not old.exists()


def test_the_cache_can_be_switched_off(tmp_path, monkeypatch):
    monkeypatch.setenv(_lark.CACHE_ENV, "")
    assert _lark.cache_dir() is None
    assert build_fresh("postfix_main").parse("a = b").data == "start"


def test_the_default_place_is_the_users_cache_directory(tmp_path, monkeypatch):
    monkeypatch.delenv(_lark.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _lark.cache_dir() == tmp_path / "xdg" / "mailproxy-lint"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")
    assert _lark.cache_dir() == Path.home() / ".cache" / "mailproxy-lint"
