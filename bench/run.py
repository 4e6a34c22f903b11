#!/usr/bin/env python3
"""Benchmark mailproxy-lint against the daemons' own config checks ("fast enough to forget it").

    python bench/run.py [--quick] [--json OUT] [--runs N] [--no-daemons] [--linter CMD]

Three parts, each timing whole processes (start-up included, as a user or a hook sees it):

(a) deployments — `mailproxy-lint DIR` on realistic deployments (the shipped example, the
    scenario directories with Postfix/Dovecot/HAProxy files, and a generated HAProxy + Postfix +
    Dovecot deployment) against the sum of `postconf -c DIR -n`, `doveconf -c FILE -n` and
    `haproxy -c -f FILE` on the same files, measured interleaved in the same run;
(b) scaling — generated haproxy.cfg, main.cf/master.cf, Dovecot conf.d trees and compose /
    Kubernetes YAML trees of growing size: time and peak RSS of the child process, and the
    daemon's time on the same input where there is one;
(c) start-up — `python -c pass` (the floor), `mailproxy-lint --version`, and one small file.

Peak memory is the child's own `ru_maxrss`, read with `os.wait4` on that child alone. Generated
inputs go to a temporary directory. The results are printed as a table and written as JSON
(default `bench/results-<date>.json`, which git ignores). Only the standard library and the
installed project are used; a daemon that is not installed is skipped and the JSON says so.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import inputs  # noqa: E402  (the sibling module with the generated configs)

REPO = Path(__file__).resolve().parent.parent
SCHEMA = "mailproxy-lint-bench/1"
SLOW_RUN_SECONDS = 10.0  # after one run this slow, a size is measured once only
# HAProxy resolves server names at check time; fail fast offline (as check-config does).
DAEMON_ENV = {**os.environ, "RES_OPTIONS": "timeout:1 attempts:1"}

FULL = {
    "runs": 7, "startup_runs": 15, "scaling_runs": 3,
    "haproxy_lines": [1000, 10000, 50000],
    "postfix_lines": [1000, 5000, 20000],
    "dovecot_files": [10, 100, 500],
    "yaml_files": [200, 2000],
}
QUICK = {
    "runs": 1, "startup_runs": 1, "scaling_runs": 1,
    "haproxy_lines": [100, 300],
    "postfix_lines": [100],
    "dovecot_files": [3],
    "yaml_files": [4],
}

# --- measuring one process ------------------------------------------------------------------


@dataclass
class Sample:
    wall_ms: float
    cpu_ms: float
    peak_rss_mb: float
    exit_code: int


def backdate(root: Path, seconds: int = 120) -> None:
    """Postfix re-reads a file whose mtime is the current second (it may still be being
    written), costing ~0.3 s per read; freshly generated inputs must not pay that."""
    when = time.time() - seconds
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            os.utime(os.path.join(dirpath, name), (when, when))


def run_once(argv: list[str], cwd: Path | None = None, env: dict | None = None) -> Sample:
    """Spawn, wait for this child alone (wait4 gives its own rusage), discard its output."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # so Popen does not wait again
    return Sample(wall * 1000, (usage.ru_utime + usage.ru_stime) * 1000, usage.ru_maxrss / 1024, proc.returncode)


@dataclass
class Timing:
    """Medians over several runs of one command."""
    argv: list[str]
    runs_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    peak_rss_mb: float = 0.0
    exit_code: int | None = None

    def add(self, sample: Sample) -> None:
        self.runs_ms.append(round(sample.wall_ms, 2))
        self.cpu_ms.append(round(sample.cpu_ms, 2))
        self.peak_rss_mb = max(self.peak_rss_mb, round(sample.peak_rss_mb, 1))
        self.exit_code = sample.exit_code

    @property
    def median_ms(self) -> float:
        return round(statistics.median(self.runs_ms), 2) if self.runs_ms else float("nan")

    def to_json(self) -> dict:
        return {"argv": self.argv, "median_ms": self.median_ms, "runs_ms": self.runs_ms,
                "median_cpu_ms": round(statistics.median(self.cpu_ms), 2) if self.cpu_ms else None,
                "peak_rss_mb": self.peak_rss_mb, "exit_code": self.exit_code}


def python_env(pycache: Path | None) -> dict:
    """The environment for the linter: bytecode cached (as after `pip install`), in `pycache`
    so nothing is written into the repository; None = the project's modules compiled at every
    start (PYTHONDONTWRITEBYTECODE, as on the measuring machine; site-packages keep their .pyc)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
    if PARSER_CACHE:  # the linter's analysed grammars: in the temp dir, warm after the first run
        env[PARSER_CACHE_ENV] = PARSER_CACHE
    if pycache is None:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    else:
        env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


LINTER_ENV: dict = {}  # set in main() once the temporary directory exists
PARSER_CACHE_ENV = "MAILPROXY_LINT_CACHE_DIR"
PARSER_CACHE = ""  # set in main(): the linter's parser cache, kept apart from the user's own


LINTER_COMMAND: list[str] = []  # --linter: another command to time instead of the installed one


def linter_argv() -> list[str]:
    """The console script users run, from the same environment as this interpreter."""
    if LINTER_COMMAND:
        return list(LINTER_COMMAND)
    script = Path(sys.executable).parent / "mailproxy-lint"
    return [str(script)] if script.exists() else [sys.executable, "-m", "mailproxy_lint"]


# --- the daemons ----------------------------------------------------------------------------


def find_daemon(name: str) -> str | None:
    return shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)), None)


def daemon_versions(daemons: dict[str, str | None]) -> dict[str, str | None]:
    def first_line(argv: list[str], pattern: str) -> str | None:
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            return None
        found = re.search(pattern, out)
        return found.group(1) if found else None

    versions: dict[str, str | None] = {}
    if daemons["postconf"]:
        versions["postconf"] = first_line([daemons["postconf"], "-d", "mail_version"], r"=\s*(\S+)")
    if daemons["doveconf"]:
        dovecot = find_daemon("dovecot")
        versions["doveconf"] = first_line([dovecot, "--version"], r"^(\S+)") if dovecot else None
    if daemons["haproxy"]:
        versions["haproxy"] = first_line([daemons["haproxy"], "-v"], r"version (\S+)")
    return versions


@dataclass
class DaemonCall:
    name: str  # postconf | doveconf | haproxy
    argv: list[str]
    cwd: Path | None
    inputs: list[str]  # the files it checks (display names)
    accepted: bool | None = None
    detail: str = ""


_CERT_OPTIONS = re.compile(r"(\b(?:crt|ca-file|crl-file|crt-list)\s+)(\S+)")
_SERVER_HOST = re.compile(r"^(\s*server\s+\S+\s+)([A-Za-z][\w.-]*)(:\d+)", re.M)


def dummy_pem(stage: Path) -> Path | None:
    """A self-signed certificate + key in one PEM (what HAProxy's `crt` wants), or None."""
    pem = stage / "dummy.pem"
    if pem.exists():
        return pem
    openssl = shutil.which("openssl")
    if not openssl:
        return None
    key, crt = stage / "dummy.key", stage / "dummy.crt"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=bench",
                    "-keyout", str(key), "-out", str(crt)], capture_output=True, check=False)
    if not (key.exists() and crt.exists()):
        return None
    pem.write_text(crt.read_text() + key.read_text())
    return pem


def haproxy_copy(cfg: Path, stage: Path) -> tuple[Path, list[str]]:
    """A copy that needs nothing from the author's machine: missing certs -> a dummy PEM,
    host names -> 127.0.0.1 (HAProxy resolves them at check time)."""
    text = cfg.read_text(encoding="utf-8")
    notes: list[str] = []
    pem = None

    def cert(match: re.Match) -> str:
        nonlocal pem
        if Path(match.group(2)).exists():
            return match.group(0)
        pem = pem or dummy_pem(stage)
        notes.append(f"{match.group(2)} -> dummy PEM")
        return match.group(1) + str(pem or match.group(2))

    text = _CERT_OPTIONS.sub(cert, text)
    text, hosts = _SERVER_HOST.subn(lambda m: m.group(1) + "127.0.0.1" + m.group(3), text)
    if hosts:
        notes.append(f"{hosts} server host name(s) -> 127.0.0.1")
    copy = stage / f"haproxy-{abs(hash(str(cfg)))}.cfg"
    copy.write_text(text, encoding="utf-8")
    return copy, notes


def daemon_calls(deployment: Path, stage: Path, daemons: dict[str, str | None]) -> tuple[list[DaemonCall], list[str]]:
    """The daemon checks of a deployment's files, and notes on what is not checked (and why)."""
    calls: list[DaemonCall] = []
    notes: list[str] = []
    files = sorted(p for p in deployment.rglob("*") if p.is_file())
    rel = {p: p.relative_to(deployment).as_posix() for p in files}

    haproxy_files = [p for p in files if p.suffix == ".cfg" and (p.name.startswith("haproxy") or p.parent.name == "haproxy")]
    main = next((p for p in files if p.name in ("main.cf", "postfix-main.cf")), None)
    master = next((p for p in files if p.name == "master.cf"), None)
    dovecot = next((p for p in files if p.name == "dovecot.conf"), None) or next((p for p in files if p.name == "dovecot.cf"), None)

    for cfg in haproxy_files:
        if not daemons["haproxy"]:
            notes.append(f"haproxy not installed: {rel[cfg]} not timed")
            continue
        copy, rewrites = haproxy_copy(cfg, stage)
        notes += [f"haproxy copy of {rel[cfg]}: {r}" for r in rewrites]
        calls.append(DaemonCall("haproxy", [daemons["haproxy"], "-c", "-f", str(copy)], cfg.parent, [rel[cfg]]))
    if main or master:
        if daemons["postconf"]:
            postfix_dir = stage / f"postfix-{len(calls)}"
            postfix_dir.mkdir()
            # postconf wants both names in DIR; an absent one is an empty file (no warning)
            shutil.copyfile(main, postfix_dir / "main.cf") if main else (postfix_dir / "main.cf").touch()
            shutil.copyfile(master, postfix_dir / "master.cf") if master else (postfix_dir / "master.cf").touch()
            checked = [rel[p] for p in (main, master) if p]
            calls.append(DaemonCall("postconf", [daemons["postconf"], "-c", str(postfix_dir), "-n"], None, checked))
        else:
            notes.append("postconf not installed: Postfix files not timed")
    if dovecot:
        if daemons["doveconf"]:
            calls.append(DaemonCall("doveconf", [daemons["doveconf"], "-c", str(dovecot), "-n"], None, [rel[dovecot]]))
        else:
            notes.append("doveconf not installed: Dovecot files not timed")
    for p in files:
        if p.name == "postfix-master.cf":
            notes.append(f"{rel[p]}: docker-mailserver override, no daemon command checks it on its own")
        elif p.suffix in (".yaml", ".yml", ".sh", ".env"):
            notes.append(f"{rel[p]}: no daemon here checks this kind (linter only)")
    return calls, notes


def verify(call: DaemonCall) -> None:
    """Run once with output kept: a timing only means something for a file the daemon accepts."""
    proc = subprocess.run(call.argv, cwd=call.cwd, env=DAEMON_ENV, capture_output=True, text=True)
    # haproxy exits 2 for "no error but will not start (no listener)": accepted
    call.accepted = proc.returncode == 0 or (call.name == "haproxy" and "has no error" in proc.stdout + proc.stderr)
    if not call.accepted:
        errors = [line for line in (proc.stderr + proc.stdout).splitlines() if re.search(r"fatal|ALERT|Error", line, re.I)]
        call.detail = (errors or ["exit %d" % proc.returncode])[0].strip()[:200]


# --- the three parts ------------------------------------------------------------------------


def scenario_deployments() -> list[tuple[str, Path]]:
    """The example and every scenario directory holding a Postfix, Dovecot or HAProxy file."""
    found = [("examples/dms-traefik", REPO / "examples" / "dms-traefik")]
    scenarios = REPO / "tests" / "fixtures" / "scenarios"
    for d in sorted(p for p in scenarios.iterdir() if p.is_dir()) if scenarios.is_dir() else []:
        names = {p.name for p in d.rglob("*") if p.is_file()}
        if names & {"main.cf", "master.cf", "postfix-main.cf", "postfix-master.cf", "dovecot.conf", "dovecot.cf"} \
                or any(n.endswith(".cfg") and n.startswith("haproxy") for n in names):
            found.append((f"scenarios/{d.name}", d))
    return found


def bench_deployments(tmp: Path, cfg: dict, daemons: dict, quick: bool) -> list[dict]:
    deployments = [("generated/haproxy+postfix+dovecot", inputs.small_deployment(tmp / "small"))]
    scenarios = scenario_deployments()
    deployments += scenarios[:2] if quick else scenarios
    results = []
    for name, path in deployments:
        stage = tmp / "stage" / name.replace("/", "_")
        stage.mkdir(parents=True)
        calls, notes = daemon_calls(path, stage, daemons)
        backdate(tmp)
        for call in calls:
            verify(call)
        linter = Timing(linter_argv() + [str(path)])
        timings = [Timing(c.argv) for c in calls]
        rounds = cfg["runs"] if quick else cfg["runs"] + 1  # full mode: first round is a warm-up
        for i in range(rounds):
            samples = [run_once(linter.argv, REPO, LINTER_ENV)] + [run_once(c.argv, c.cwd, DAEMON_ENV) for c in calls]
            if quick or i > 0:
                for timing, sample in zip([linter] + timings, samples):
                    timing.add(sample)
        daemon_sum = round(sum(t.median_ms for t in timings), 2) if calls else None
        results.append({
            "name": name,
            "files": sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file() and p.name != "expected.txt"),
            "linter": linter.to_json(),
            "daemons": [{"name": c.name, "inputs": c.inputs, "accepted": c.accepted, "detail": c.detail, **t.to_json()}
                        for c, t in zip(calls, timings)],
            "daemons_sum_ms": daemon_sum,
            "ratio": round(linter.median_ms / daemon_sum, 2) if daemon_sum else None,
            "notes": notes,
        })
    return results


def measure(argv: list[str], runs: int, cwd: Path | None = None, env: dict | None = None) -> Timing:
    timing = Timing(argv)
    for _ in range(runs):
        sample = run_once(argv, cwd, env)
        timing.add(sample)
        if sample.wall_ms > SLOW_RUN_SECONDS * 1000:
            break  # one run this slow is enough to see the size does not scale
    return timing


def bench_scaling(tmp: Path, cfg: dict, daemons: dict) -> list[dict]:
    series = []
    for lines in cfg["haproxy_lines"]:
        root = tmp / f"haproxy-{lines}"
        n = inputs.haproxy_cfg(root / "haproxy.cfg", lines)
        daemon = [daemons["haproxy"], "-c", "-f", str(root / "haproxy.cfg")] if daemons["haproxy"] else None
        series.append(("haproxy.cfg", f"{lines} lines", root, n, 1, daemon))
    for lines in cfg["postfix_lines"]:
        root = tmp / f"postfix-{lines}"
        n = inputs.postfix_tree(root, lines)
        daemon = [daemons["postconf"], "-c", str(root), "-n"] if daemons["postconf"] else None
        series.append(("main.cf+master.cf", f"{lines} lines", root, n, 2, daemon))
    for files in cfg["dovecot_files"]:
        root = tmp / f"dovecot-{files}" / "dovecot"
        n = inputs.dovecot_tree(root, files)
        daemon = [daemons["doveconf"], "-c", str(root / "dovecot.conf"), "-n"] if daemons["doveconf"] else None
        series.append(("dovecot conf.d", f"{files} files", root, n, files + 1, daemon))
    for files in cfg["yaml_files"]:
        root = tmp / f"yaml-{files}"
        n = inputs.yaml_tree(root, files)
        series.append(("compose+k8s YAML", f"{files} files", root, n, files, None))

    backdate(tmp)
    results = []
    for kind, size, root, lines, nfiles, daemon in series:
        run_once(linter_argv() + ["--version"], REPO, LINTER_ENV)  # bytecode cache warm
        linter = measure(linter_argv() + [str(root)], cfg["scaling_runs"], REPO, LINTER_ENV)
        daemon_timing = measure(daemon, cfg["scaling_runs"], env=DAEMON_ENV) if daemon else None
        results.append({
            "series": kind, "size": size, "lines": lines, "files": nfiles,
            "linter": linter.to_json(),
            "linter_us_per_line": round(linter.median_ms * 1000 / lines, 2),
            "daemon": daemon_timing.to_json() if daemon_timing else None,
            "daemon_us_per_line": round(daemon_timing.median_ms * 1000 / lines, 2) if daemon_timing else None,
            "ratio": round(linter.median_ms / daemon_timing.median_ms, 2) if daemon_timing else None,
        })
    return results


ONE_FILE = "mailproxy-lint DIR (one small haproxy.cfg, text)"


def bench_startup(tmp: Path, cfg: dict) -> list[dict]:
    small = inputs.one_small_file(tmp / "one-file")
    no_cache = python_env(None)
    cases = [
        ("python -c pass (interpreter floor)", [sys.executable, "-c", "pass"], LINTER_ENV),
        ("mailproxy-lint --version", linter_argv() + ["--version"], LINTER_ENV),
        (ONE_FILE, linter_argv() + [str(small)], LINTER_ENV),
        (ONE_FILE + ", no .pyc cache", linter_argv() + [str(small)], no_cache),
        (ONE_FILE + ", no parser cache", linter_argv() + [str(small)], {**LINTER_ENV, PARSER_CACHE_ENV: ""}),
    ]
    results = []
    for name, argv, env in cases:
        run_once(argv, REPO, env)  # warm-up: page cache, .pyc files
        timing = measure(argv, cfg["startup_runs"], REPO, env)
        results.append({"name": name, **timing.to_json()})
    return results


# --- verdicts, machine, output --------------------------------------------------------------


def targets(report: dict) -> list[dict]:
    """The issue's targets, each with what was measured and whether it is met (None: not measured)."""
    out = []
    small = next((d for d in report["deployments"] if d["name"].startswith("generated/")), None)
    ratio = small and small["ratio"]
    out.append({"target": "small deployment <= 1.0 x (postconf + doveconf + haproxy -c)",
                "measured": f"{ratio} x" if ratio else "daemons not measured", "met": ratio <= 1.0 if ratio else None})
    one_file = next(s["median_ms"] for s in report["startup"] if s["name"] == ONE_FILE)
    out.append({"target": "start-up to output, one small file, text <= 60 ms",
                "measured": f"{one_file} ms", "met": one_file <= 60})

    haproxy = [s for s in report["scaling"] if s["series"] == "haproxy.cfg"]
    if len(haproxy) >= 3:
        # marginal cost per line between consecutive sizes (start-up cancels out)
        a, b, c = haproxy[-3:]
        early = (b["linter"]["median_ms"] - a["linter"]["median_ms"]) / (b["lines"] - a["lines"])
        late = (c["linter"]["median_ms"] - b["linter"]["median_ms"]) / (c["lines"] - b["lines"])
        growth = round(late / early, 2) if early > 0 else None
        out.append({"target": "linear scaling on haproxy.cfg (marginal ms/line, largest step / smaller step <= 1.5)",
                    "measured": f"{growth} x ({early * 1000:.1f} -> {late * 1000:.1f} us/line)",
                    "met": growth is not None and growth <= 1.5})
    if haproxy:
        largest = haproxy[-1]
        r = largest["ratio"]
        out.append({"target": f"<= 3 x haproxy -c per line on the largest haproxy.cfg ({largest['size']})",
                    "measured": f"{r} x" if r else "haproxy not measured", "met": r <= 3 if r else None})
    yaml = [s for s in report["scaling"] if s["series"] == "compose+k8s YAML"]
    if yaml:
        largest = yaml[-1]
        mb = largest["linter"]["peak_rss_mb"]
        out.append({"target": f"peak memory <= 100 MB on the YAML tree ({largest['size']})",
                    "measured": f"{mb} MB", "met": mb <= 100})
    return out


def machine(daemons: dict) -> dict:
    mem = None
    cpu = platform.processor() or None
    try:
        meminfo = Path("/proc/meminfo").read_text()
        mem = int(re.search(r"MemTotal:\s+(\d+)", meminfo).group(1)) // 1024
        cpu = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text()).group(1).strip()
    except (OSError, AttributeError):
        pass
    versions = daemon_versions(daemons)
    try:
        from mailproxy_lint import __version__ as linter_version
    except ImportError:
        linter_version = None
    return {
        "nproc": os.cpu_count(), "mem_total_mb": mem, "cpu": cpu,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],  # other work on the machine adds noise
        "python": platform.python_version(), "platform": platform.platform(),
        "linter_version": linter_version,
        "daemons": {name: versions.get(name) for name in daemons},
    }


def table(rows: list[list], header: list[str]) -> str:
    cells = [header] + [["" if v is None else str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def print_report(report: dict) -> None:
    print(f"\nmailproxy-lint benchmark ({report['mode']}), {report['date']}, "
          f"{report['machine']['nproc']} CPUs, Python {report['machine']['python']}")
    print("\n(a) deployments: linter vs the daemons' checks (medians, ms)\n")
    print(table([[d["name"], d["linter"]["median_ms"], d["daemons_sum_ms"],
                  " + ".join(f"{c['name']} {c['median_ms']}" + ("" if c["accepted"] else " (rejected)") for c in d["daemons"]),
                  d["ratio"], d["linter"]["peak_rss_mb"]] for d in report["deployments"]],
                ["deployment", "linter", "daemons", "daemon parts", "ratio", "RSS MB"]))
    print("\n(b) scaling (medians)\n")
    print(table([[s["series"], s["size"], s["lines"], s["linter"]["median_ms"], s["linter_us_per_line"],
                  s["linter"]["peak_rss_mb"], s["daemon"] and s["daemon"]["median_ms"], s["daemon_us_per_line"],
                  s["daemon"] and s["daemon"]["peak_rss_mb"], s["ratio"]] for s in report["scaling"]],
                ["input", "size", "lines", "linter ms", "us/line", "RSS MB", "daemon ms", "us/line", "RSS MB", "ratio"]))
    print("\n(c) start-up (medians)\n")
    print(table([[s["name"], s["median_ms"], s["peak_rss_mb"]] for s in report["startup"]], ["command", "ms", "RSS MB"]))
    print("\ntargets\n")
    print(table([[t["target"], t["measured"], {True: "met", False: "MISSED", None: "not measured"}[t["met"]]]
                 for t in report["targets"]], ["target", "measured", "verdict"]))
    skipped = [n for d in report["deployments"] for n in d["notes"] if "not installed" in n]
    if skipped:
        print("\nskipped: " + "; ".join(dict.fromkeys(skipped)))


def main(argv: list[str] | None = None) -> int:
    global PARSER_CACHE
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes, one run each (a smoke test, not a measurement)")
    ap.add_argument("--json", metavar="OUT", help="write the results here (default: bench/results-<date>.json)")
    ap.add_argument("--runs", type=int, help="runs per deployment (default: 7, quick: 1)")
    ap.add_argument("--no-daemons", action="store_true", help="do not run postconf/doveconf/haproxy even if installed")
    ap.add_argument("--linter", metavar="CMD", help="time this command instead of the installed mailproxy-lint "
                                                   "(e.g. another checkout's, to compare two versions)")
    args = ap.parse_args(argv)
    if args.linter:
        LINTER_COMMAND[:] = shlex.split(args.linter)

    cfg = dict(QUICK if args.quick else FULL)
    if args.runs:
        cfg["runs"] = args.runs
    names = ("postconf", "doveconf", "haproxy")
    daemons = {n: None if args.no_daemons else find_daemon(n) for n in names}
    now = dt.datetime.now().astimezone()
    report: dict = {"schema": SCHEMA, "date": now.isoformat(timespec="seconds"),
                    "mode": "quick" if args.quick else "full", "config": cfg,
                    "linter_argv": linter_argv(), "machine": machine(daemons),
                    "bytecode": "linter runs with .pyc files cached (PYTHONPYCACHEPREFIX in the temp dir), "
                                "except the start-up case marked 'no .pyc cache'; analysed grammars are "
                                "cached in the temp dir, except the case marked 'no parser cache'"}
    with tempfile.TemporaryDirectory(prefix="mailproxy-lint-bench-") as tmp_name:
        tmp = Path(tmp_name)
        PARSER_CACHE = str(tmp / "parser-cache")
        LINTER_ENV.update(python_env(tmp / "pycache"))
        report["startup"] = bench_startup(tmp, cfg)
        report["deployments"] = bench_deployments(tmp, cfg, daemons, args.quick)
        report["scaling"] = bench_scaling(tmp, cfg, daemons)
    report["targets"] = targets(report)
    # A child's ru_maxrss starts from this process's RSS at fork (vfork/exec keeps the high-water
    # mark), so a smaller peak reads as this floor; the linter's own peaks are well above it.
    report["machine"]["rss_floor_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)

    out = Path(args.json) if args.json else Path(__file__).resolve().parent / f"results-{now:%Y-%m-%d}.json"
    out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print_report(report)
    print(f"\nJSON: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
