#!/usr/bin/env python3
"""Mutation fuzzer: mutated real configs through the whole pipeline, in-process.

Seeds are the real configs in `../shared/corpus/files/` (each checked on its own) and the
deployments under `tests/fixtures/` (one file of the deployment is mutated, its siblings stay as
they are, so the builders and the linker see a whole traffic path). Each input is made from a seed
by one to four mutations: delete, duplicate or swap lines, flip bytes, truncate, insert tokens
that matter to the formats (`{`, `"`, `\\`, `${`, `send-proxy-v2`, ...), or splice two files of
the same kind.

Every input runs through load's decoding, parse, build, link, every rule, and secret masking,
exactly as `mailproxy-lint` runs, but without a process per input. An input "crashes" when the
pipeline raises, takes longer than `--timeout` seconds, or reports a span outside the file. Each
crasher is saved as `<out>/<format>/<hash>.input` (plus the sibling files it needs, if any) with
`<hash>.traceback` beside it, and the summary table counts inputs, crashes, distinct crash sites
and CPU seconds per format. Formats are interleaved, so a run stopped early (Ctrl-C, SIGTERM)
still prints the table for the inputs run so far.

    python tools/fuzz.py --inputs 100000 --out /tmp/fuzz-crashers

Runs are reproducible: input i of a format is made from `random.Random(f"{seed}:{format}:{i}")`.
"""
from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import random
import signal
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO.parent / "shared" / "corpus" / "files"
FIXTURES = REPO / "tests" / "fixtures"

# Tokens that change how the formats tokenize or what the builders see.
TOKENS = [
    "{", "}", "{{", "}}", "{%", "%}", "${", "$", "$$", "%{", "%", '"', "'", "`", "\\", "\\\n", "#", "=", ":",
    ";", ",", "/", "[", "]", "(", ")", "!", "*", "&", "|", ">>", "-o", "-e", "-P", "\t", " ", "\n", "\r",
    "\u00e9", "\u200b", "\ufeff", "0", "-1", "99999999999999999999", "65536", ":0", "0.0.0.0/0", "::/0",
    "[::1]:25", "localhost:", "send-proxy-v2", "send-proxy", "accept-proxy", "ssl", "check", "haproxy = yes",
    "inet_listener imap {", "service imap-login {", "!include", "!include_try ", "frontend f", "backend b",
    "defaults", "listen l", "mode tcp", "bind :25", "server s 127.0.0.1:25", "timeout client 0", "inet",
    "smtpd", "postscreen", "n - n - - smtpd", "submission/inet/", "postconf -e", "postconf -P", "sed -e",
    "s/^a/b/", "traefik.tcp.routers.r.rule=HostSNI(`*`)", "HostSNI(", "ClientIP(", "&&", "||", "!",
    "entryPoints:", "proxyProtocol:", "- ", "? ", "&a", "*a", "<<: *a", "!!python/object", "---", "...",
    "\x00", "\x7f", "\ud7ff", "a" * 300,
]


@dataclass(frozen=True)
class Seed:
    """A file to mutate, with the files that stay beside it (display path -> text)."""

    path: str
    kind: str
    text: str
    dms_override: bool
    siblings: tuple[tuple[str, str, str, bool], ...] = ()  # (path, kind, text, dms_override)


# --------------------------------------------------------------------------------------------
# Seeds
# --------------------------------------------------------------------------------------------


def _classify(path: Path, display_name: str):
    from mailproxy_lint.load import classify, head

    named = path.with_name(display_name)
    return classify(named) or classify(named, head(path))


def corpus_seeds(corpus: Path) -> list[Seed]:
    """Each corpus file alone, classified by its original file name (after the last `__`)."""
    seeds = []
    for path in sorted(corpus.glob("*/*")):
        if not path.is_file():
            continue
        name = path.name.rsplit("__", 1)[-1]
        if "." not in name or name.startswith("block"):  # doc blocks: use the folder as a hint
            name = {"traefik-compose": "compose.yaml", "traefik-static": "traefik.yml", "haproxy": "haproxy.cfg",
                    "dovecot": "dovecot.conf", "postfix-main": "main.cf", "postfix-master": "master.cf"}.get(
                path.parent.name, name)
        found = _classify(path, name)
        text = path.read_bytes().decode("utf-8", "replace")
        if found is not None:
            seeds.append(Seed(f"{path.parent.name}/{name}", found[0].value, text, found[1]))
    return seeds


def fixture_seeds(root: Path) -> list[Seed]:
    """One seed per file of each fixture deployment, with the deployment's other files."""
    from mailproxy_lint.load import display_path, load

    seeds = []
    deployments = sorted(p for p in root.glob("scenarios/*") if p.is_dir())
    deployments += sorted(p for p in root.glob("rules/*/*") if p.is_dir())
    for directory in deployments:
        loaded = load([directory], cwd=directory)
        files = [(s.path, s.kind.value, s.text, s.dms_override) for s in loaded.sources]
        for index, (path, kind, text, dms) in enumerate(files):
            siblings = tuple(files[:index] + files[index + 1:])
            seeds.append(Seed(f"{display_path(directory, REPO / 'tests' / 'fixtures')}/{path}", kind, text, dms,
                              siblings))
    return seeds


def seeds_by_kind(corpus: Path | None) -> dict[str, list[Seed]]:
    from mailproxy_lint.parse import _PARSERS

    seeds = (corpus_seeds(corpus) if corpus and corpus.is_dir() else []) + fixture_seeds(FIXTURES)
    grouped: dict[str, list[Seed]] = {}
    for seed in seeds:
        if any(k.value == seed.kind for k in _PARSERS):
            grouped.setdefault(seed.kind, []).append(seed)
    return dict(sorted(grouped.items()))


# --------------------------------------------------------------------------------------------
# Mutations (on lines, or on UTF-8 bytes)
# --------------------------------------------------------------------------------------------


def _lines(text: str) -> list[str]:
    return text.split("\n")


def delete_line(rng: random.Random, text: str, _: list[Seed]) -> str:
    lines = _lines(text)
    del lines[rng.randrange(len(lines))]
    return "\n".join(lines)


def duplicate_line(rng: random.Random, text: str, _: list[Seed]) -> str:
    lines = _lines(text)
    i = rng.randrange(len(lines))
    lines.insert(rng.randrange(len(lines) + 1), lines[i])
    return "\n".join(lines)


def swap_lines(rng: random.Random, text: str, _: list[Seed]) -> str:
    lines = _lines(text)
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    lines[i], lines[j] = lines[j], lines[i]
    return "\n".join(lines)


def flip_bytes(rng: random.Random, text: str, _: list[Seed]) -> str:
    data = bytearray(text.encode("utf-8", "surrogatepass"))
    if not data:
        return text
    for _ in range(rng.randint(1, 4)):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
    return _decode_like_load(bytes(data))


def truncate(rng: random.Random, text: str, _: list[Seed]) -> str:
    return text[: rng.randrange(len(text) + 1)]


def insert_token(rng: random.Random, text: str, _: list[Seed]) -> str:
    at = rng.randrange(len(text) + 1)
    token = rng.choice(TOKENS) if rng.random() < 0.8 else _word_from(rng, text)
    return text[:at] + token + text[at:]


def splice(rng: random.Random, text: str, others: list[Seed]) -> str:
    other = rng.choice(others).text
    a, b = _lines(text), _lines(other)
    return "\n".join(a[: rng.randrange(len(a) + 1)] + b[rng.randrange(len(b) + 1):])


def _word_from(rng: random.Random, text: str) -> str:
    words = text.split()
    return rng.choice(words) if words else "x"


def _decode_like_load(data: bytes) -> str:
    """What the parsers get: load's decoding, or (for bytes load would reject) a lossy decode,
    so byte flips still reach the parsers instead of stopping at the loader."""
    from mailproxy_lint.load import _decode

    text, problem = _decode(data, "fuzz")
    if problem is None:
        return text
    return data.decode("utf-8", "replace").replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n")


MUTATIONS = [delete_line, duplicate_line, swap_lines, flip_bytes, truncate, insert_token, insert_token, splice]


def mutate(rng: random.Random, seed: Seed, same_kind: list[Seed]) -> str:
    text = seed.text
    for _ in range(rng.randint(1, 4)):
        text = rng.choice(MUTATIONS)(rng, text, same_kind)
    # the parsers get text as load hands it over: UTF-8, no NUL, CR and CRLF turned into LF
    return _decode_like_load(text.encode("utf-8", "surrogatepass"))


# --------------------------------------------------------------------------------------------
# Running one input
# --------------------------------------------------------------------------------------------


class Hang(Exception):
    """The input took longer than the per-input time limit."""


def _alarm(signum, frame):
    raise Hang("input took longer than the time limit")


def run_pipeline(files: list[tuple[str, str, str, bool]]) -> None:
    """Parse, build, link, check and mask `files` as the CLI would; raise on any violated invariant."""
    from mailproxy_lint.build import build
    from mailproxy_lint.engine import all_rules, check
    from mailproxy_lint.link import link
    from mailproxy_lint.model import FileKind, SourceFile
    from mailproxy_lint.parse import parse_file

    sources = [SourceFile(path, FileKind(kind), text, "/nonexistent/" + path, dms) for path, kind, text, dms in files]
    parsed = [parse_file(source) for source in sources]
    model = build(".", parsed)
    deployment = model.freeze(link(model))
    findings = check(deployment, all_rules())
    try:
        from mailproxy_lint.secrets import mask_findings
    except ImportError:  # older trees: nothing to mask with
        mask_findings = None
    if mask_findings is not None:
        findings = mask_findings(findings, deployment.files)
    _check_spans(findings, {s.path: s.text for s in sources})


def _check_spans(findings, texts: dict[str, str]) -> None:
    for finding in findings:
        for span in [finding.span, *(r.span for r in finding.related)]:
            text = texts.get(span.path)
            if text is None:
                continue  # a built-in default or a path outside the input (stock docker-mailserver)
            line_count = text.count("\n") + 1
            if not (1 <= span.line <= line_count and span.column >= 1):
                raise AssertionError(f"{finding.rule_id} span {span} outside the file ({line_count} lines)")


def _crash_site(exc_text: str) -> str:
    """Where it failed (last frame in our code, and the exception type): groups crashers."""
    lines = exc_text.strip().splitlines()
    ours = ("/linter/", "/rules/", "mailproxy_lint")
    frames = [ln.strip() for ln in lines if ln.strip().startswith("File ") and any(m in ln for m in ours)]
    last_frame = frames[-1] if frames else (lines[-3].strip() if len(lines) >= 3 else "")
    return f"{last_frame} | {lines[-1].split(':')[0] if lines else ''}"


@dataclass
class Batch:
    kind: str
    start: int
    count: int
    seed: str
    timeout: float


_SEEDS: dict[str, list[Seed]] = {}


def _init_worker(corpus: str | None) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the pool
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _SEEDS.update(seeds_by_kind(Path(corpus) if corpus else None))
    signal.signal(signal.SIGALRM, _alarm)
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 1000))


def run_batch(batch: Batch) -> tuple[str, int, list[tuple[str, str, list[tuple[str, str, str, bool]]]], float]:
    """Run inputs [start, start+count) of a kind; return the crashers (site, traceback, files)
    and the CPU seconds spent."""
    started = time.process_time()
    seeds = _SEEDS[batch.kind]
    crashes = []
    for i in range(batch.start, batch.start + batch.count):
        rng = random.Random(f"{batch.seed}:{batch.kind}:{i}")
        seed = rng.choice(seeds)
        text = mutate(rng, seed, seeds)
        files = [(seed.path, seed.kind, text, seed.dms_override), *seed.siblings]
        signal.setitimer(signal.ITIMER_REAL, batch.timeout)
        try:
            run_pipeline(files)
        except BaseException as exc:  # noqa: BLE001 - every failure is a finding of the fuzzer
            if isinstance(exc, KeyboardInterrupt):
                raise
            tb = traceback.format_exc()
            crashes.append((_crash_site(tb), f"input {i} from seed {seed.path}\n{tb}", files))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    return batch.kind, batch.count, crashes, time.process_time() - started


def save_crasher(out: Path, kind: str, report: str, files: list[tuple[str, str, str, bool]]) -> Path:
    digest = hashlib.sha1(files[0][2].encode("utf-8", "surrogatepass")).hexdigest()[:16]
    folder = out / kind
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{digest}.input").write_bytes(files[0][2].encode("utf-8", "surrogatepass"))
    (folder / f"{digest}.traceback").write_text(
        f"file: {files[0][0]} (kind {kind})\n"
        f"siblings: {', '.join(p for p, *_ in files[1:]) or 'none'}\n{report}")
    if len(files) > 1:  # the deployment it needs, to replay with the CLI
        for path, _, text, _ in files[1:]:
            target = folder / f"{digest}.siblings" / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(text.encode("utf-8", "surrogatepass"))
    return folder / f"{digest}.input"


# --------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--inputs", type=int, default=100_000, help="inputs per format (default 100000)")
    p.add_argument("--out", type=Path, default=Path("fuzz-crashers"), help="folder for crasher inputs and tracebacks")
    p.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="corpus folder (default ../shared/corpus/files)")
    p.add_argument("--formats", default="", help="comma-separated kinds (default: every kind with a parser)")
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="worker processes (default 2)")
    p.add_argument("--seed", default="0", help="random seed (default 0)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds before an input counts as a hang")
    p.add_argument("--batch", type=int, default=250, help="inputs per work unit")
    p.add_argument("--keep", type=int, default=20, help="crasher inputs saved per crash site (all are counted)")
    args = p.parse_args(argv)

    corpus = str(args.corpus) if args.corpus.is_dir() else None
    kinds = seeds_by_kind(Path(corpus) if corpus else None)
    wanted = [k.strip() for k in args.formats.split(",") if k.strip()] or list(kinds)
    unknown = [k for k in wanted if k not in kinds]
    if unknown:
        p.error(f"no seeds for {', '.join(unknown)} (have: {', '.join(kinds)})")
    print(f"seeds: {', '.join(f'{k} {len(kinds[k])}' for k in wanted)}; corpus: {corpus or 'absent'}", flush=True)

    results = {k: {"inputs": 0, "crashes": 0, "sites": {}, "seconds": 0.0} for k in wanted}
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    pool = multiprocessing.Pool(args.jobs, _init_worker, (corpus,))
    try:
        fuzz(pool, wanted, args, results)
        pool.close()
    except KeyboardInterrupt:
        print("interrupted: the table counts the inputs run so far", flush=True)
        pool.terminate()
    pool.join()
    print_table(results, args.out)
    return 1 if any(r["crashes"] for r in results.values()) else 0


def fuzz(pool, kinds: list[str], args, results: dict[str, dict]) -> None:
    """Run every format's batches interleaved, so an early stop leaves every format covered alike."""
    per_kind = [[Batch(kind, start, min(args.batch, args.inputs - start), args.seed, args.timeout)
                 for start in range(0, args.inputs, args.batch)] for kind in kinds]
    batches = [b for group in zip(*per_kind) for b in group]
    started = time.monotonic()
    for n, (kind, count, crashed, seconds) in enumerate(pool.imap_unordered(run_batch, batches), 1):
        r = results[kind]
        r["inputs"] += count
        r["seconds"] += seconds
        for site, report, files in crashed:
            r["crashes"] += 1
            saved = r["sites"].setdefault(site, [None, 0])
            saved[1] += 1
            if saved[1] <= args.keep:
                path = save_crasher(args.out, kind, report, files)
                if saved[0] is None:
                    saved[0] = path
                    print(f"  {kind}: new crash site {site} -> {path}", flush=True)
        if n % (4 * len(kinds)) == 0 or n == len(batches):
            done = sum(x["inputs"] for x in results.values())
            print(f"  {done} inputs ({args.inputs * len(kinds)} planned), "
                  f"{sum(x['crashes'] for x in results.values())} crashes, {time.monotonic() - started:.0f} s", flush=True)


def print_table(results: dict[str, dict], out: Path) -> None:
    """format, inputs, crashes, distinct crash sites, and CPU seconds spent in the workers."""
    print()
    print(f"{'format':<20} {'inputs':>8} {'crashes':>8} {'sites':>6} {'cpu s':>8}")
    for kind, r in results.items():
        print(f"{kind:<20} {r['inputs']:>8} {r['crashes']:>8} {len(r['sites']):>6} {r['seconds']:>8.0f}")
    total = {k: sum(r[k] for r in results.values()) for k in ("inputs", "crashes", "seconds")}
    print(f"{'total':<20} {total['inputs']:>8} {total['crashes']:>8} "
          f"{sum(len(r['sites']) for r in results.values()):>6} {total['seconds']:>8.0f}")
    for kind, r in results.items():
        for site, (path, count) in r["sites"].items():
            print(f"{kind}: {count} x {site}\n    {path}")
    if total["crashes"]:
        print(f"crashers saved under {out}")


if __name__ == "__main__":
    sys.exit(main())
