"""Property tests: any text gives a result or a clean syntax problem, never an exception.

Each parser gets random text (with the characters that matter to the formats over-represented)
and "grammar-aware" text: lines of real configs of that format (the fixtures, and the corpus in
../shared when it is there) shuffled, repeated and cut, with tokens inserted. The whole pipeline
gets directories of such files. Every problem and finding must point inside its file. Examples
are bounded so the file runs in a few seconds.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import tempfile
from functools import cache
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailproxy_lint.engine import run
from mailproxy_lint.load import load
from mailproxy_lint.model import FileKind, SourceFile
from mailproxy_lint.parse import parse_file
from mailproxy_lint.parse.traefik_rule import parse_rule

REPO = Path(__file__).resolve().parents[1]
FAST = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# a file name per kind, so parsers that look at the name (TOML Traefik files) see a real one
FILE_NAMES = {
    FileKind.DOVECOT: "dovecot.conf",
    FileKind.POSTFIX_MAIN: "main.cf",
    FileKind.POSTFIX_MASTER: "master.cf",
    FileKind.DMS_POSTFIX_MASTER: "postfix-master.cf",
    FileKind.DMS_USER_PATCHES: "user-patches.sh",
    FileKind.HAPROXY: "haproxy.cfg",
    FileKind.COMPOSE: "compose.yaml",
    FileKind.TRAEFIK_STATIC: "traefik.yml",
    FileKind.TRAEFIK_DYNAMIC: "dynamic.yml",
    FileKind.KUBERNETES: "ingress.yaml",
}
if (REPO / "linter" / "parse" / "toml.py").exists():
    FILE_NAMES[FileKind.STALWART] = "config.toml"


@cache
def _fuzz_module():
    spec = importlib.util.spec_from_file_location("mailproxy_fuzz", REPO / "tools" / "fuzz.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@cache
def real_lines(kind: FileKind) -> tuple[str, ...]:
    """Lines of every real file of `kind`: the test fixtures, and the shared corpus if present."""
    texts = [s.text for s in load([REPO / "tests" / "fixtures"]).sources if s.kind is kind]
    corpus = REPO.parent / "shared" / "corpus" / "files"
    if corpus.is_dir():
        texts += [s.text for s in _fuzz_module().corpus_seeds(corpus) if s.kind == kind.value]
    lines = {line for text in texts for line in text.split("\n")}
    return tuple(sorted(lines)) or ("",)


def as_loaded(text: str) -> str:
    """Text as load hands it to the parsers: no NUL, no CR, no byte-order mark."""
    text = text.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")
    return text[1:] if text.startswith("\ufeff") else text


SPECIAL = "{}[]()\"'`\\$%#=:;,/|&*!?<>-_.@ \t\n"
random_text = st.text(alphabet=st.one_of(st.sampled_from(SPECIAL), st.characters(codec="utf-8")), max_size=400)
TOKENS = ["{", "}", "\"", "'", "\\", "${", "%{", "$$", "{{", "}}", "#", "=", ":", "-o", "!include ", "`", "[", "]",
          "send-proxy-v2", "accept-proxy", "haproxy = yes", "HostSNI(`*`)", "&&", "\t", "\n", "- ", "&a", "*a"]


@cache
def toml_lines() -> tuple[str, ...]:
    """Lines of the TOML configs: Stalwart fixtures/corpus and Traefik's TOML files in the corpus."""
    corpus = REPO.parent / "shared" / "corpus" / "files" / "traefik-static"
    texts = [p.read_text(errors="replace") for p in sorted(corpus.glob("*.toml"))] if corpus.is_dir() else []
    extra = {line for text in texts for line in text.split("\n")}
    base = set(real_lines(FileKind.STALWART)) if FileKind.STALWART in FILE_NAMES else set()
    return tuple(sorted(base | extra)) or ("[entryPoints.smtp]", "address = \":25\"")


def grammar_text(kind: FileKind, toml: bool = False):
    """Real lines of the format, in any order and number, cut anywhere, with tokens inserted."""
    line = st.sampled_from(toml_lines() if toml else real_lines(kind))
    cut_line = st.tuples(line, st.integers(0, 200)).map(lambda t: t[0][: t[1]])
    with_token = st.tuples(line, st.sampled_from(TOKENS), st.integers(0, 200)).map(
        lambda t: t[0][: t[2]] + t[1] + t[0][t[2]:])
    return st.lists(st.one_of(line, line, cut_line, with_token), max_size=30).map("\n".join)


def any_text(kind: FileKind, toml: bool = False):
    return st.one_of(random_text, grammar_text(kind, toml)).map(as_loaded)


def assert_inside(span, text: str, path: str) -> None:
    if span.path != path:
        return
    assert 1 <= span.line <= text.count("\n") + 1, span
    assert span.column >= 1, span


def check_parse(kind: FileKind, text: str, path: str | None = None) -> None:
    path = path or FILE_NAMES[kind]
    parsed = parse_file(SourceFile(path, kind, text, "/nonexistent/" + path))
    assert parsed.tree is not None or parsed.problems, "a file that is not understood must say why"
    for problem in parsed.problems:
        assert_inside(problem.span, text, path)
        assert problem.message


KINDS = list(FILE_NAMES)


CASES = [(k, FILE_NAMES[k]) for k in KINDS]
if (REPO / "linter" / "parse" / "toml.py").exists():  # Traefik reads TOML files by their suffix
    CASES += [(FileKind.TRAEFIK_STATIC, "traefik.toml"), (FileKind.TRAEFIK_DYNAMIC, "dynamic.toml")]


@pytest.mark.parametrize("kind, name", CASES, ids=[name for _, name in CASES])
def test_parser_never_raises_on_any_text(kind, name):
    @FAST
    @given(any_text(kind, toml=name.endswith(".toml")))
    def prop(text):
        check_parse(kind, text, name)

    prop()


@FAST
@given(st.one_of(random_text, st.sampled_from(["HostSNI(`a`)", "ClientIP(`10.0.0.0/8`)", "!", "&&", "||", "(", ")",
                                                "HostSNIRegexp(`^.+$`)", "`", "\""])).map(as_loaded))
def test_traefik_rule_never_raises(text):
    tree, problem = parse_rule(text, "compose.yaml", line=3, column=7)
    assert tree is not None or problem is not None
    if problem is not None:
        assert problem.span.line >= 3 and problem.span.column >= 1


def deployment():
    """A directory of files of several kinds, each random or made of real lines."""
    kinds = st.lists(st.sampled_from(KINDS), min_size=1, max_size=4, unique=True)
    return kinds.flatmap(lambda ks: st.tuples(*[st.tuples(st.just(k), any_text(k)) for k in ks]))


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(deployment())
def test_whole_pipeline_on_a_directory(files):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        texts = {}
        for kind, text in files:
            name = FILE_NAMES[kind]
            target = root / ("docker-data/dms/config/" + name if kind is FileKind.DMS_USER_PATCHES else name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            texts[target.relative_to(root).as_posix()] = text
        cwd = os.getcwd()
        os.chdir(root)
        try:
            result = run([Path(".")])
        finally:
            os.chdir(cwd)
    for finding in result.findings:
        for span in [finding.span, *(r.span for r in finding.related)]:
            if span.path in texts:
                assert_inside(span, texts[span.path], span.path)


# Regression inputs found by tools/fuzz.py and the properties above: each once crashed.
REGRESSIONS = [
    (FileKind.DOVECOT, "ssl_key_password = \"\n"),  # an empty secret value: the masker indexed it
]


@pytest.mark.parametrize("kind, text", REGRESSIONS)
def test_regressions(kind, text):
    check_parse(kind, text)
    from mailproxy_lint.secrets import find_secrets

    find_secrets(SourceFile(FILE_NAMES[kind], kind, text))


# Whole-pipeline regressions (the crash was in a builder or a rule, not in the parser).
PIPELINE_REGRESSIONS = [
    # a brace in a server name reached str.format through the origin text of its PROXY option
    ("haproxy.cfg", "backend b\n    server m} 10.0.0.1:25 send-proxy-v2\n"),
]


@pytest.mark.parametrize("name, text", PIPELINE_REGRESSIONS)
def test_pipeline_regressions(tmp_path, name, text):
    (tmp_path / name).write_text(text, encoding="utf-8")
    result = run([tmp_path])  # raised before the fix
    assert [Path(shown).name for shown in result.files] == [name]


def test_fuzzer_runs_and_reports(tmp_path, capsys):
    """tools/fuzz.py end to end on a few inputs: mutates, runs the pipeline, prints the table."""
    fuzz = _fuzz_module()
    code = fuzz.main(["--inputs", "30", "--batch", "15", "--jobs", "1", "--formats", "dovecot,haproxy",
                      "--out", str(tmp_path / "crashers"), "--corpus", str(tmp_path / "no-corpus")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert [line.split()[:3] for line in out.splitlines() if line.startswith(("dovecot ", "haproxy "))] == [
        ["dovecot", "30", "0"], ["haproxy", "30", "0"]]
    assert not (tmp_path / "crashers").exists()


def test_fuzzer_mutations_keep_text_as_load_gives_it():
    import random

    fuzz = _fuzz_module()
    seed = fuzz.Seed("dovecot.conf", "dovecot", "protocols = imap\nservice imap-login {\n}\n", False)
    for i in range(200):
        text = fuzz.mutate(random.Random(i), seed, [seed])
        assert "\r" not in text and "\x00" not in text
