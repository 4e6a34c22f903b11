"""Smoke test of the benchmark script: `bench/run.py --quick` runs and writes its JSON document.

Not a timed test: it asserts the shape of the report and that the linter actually ran, never a
speed. The daemons are switched off (`--no-daemons`) so the suite never calls them.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_quick_run_writes_the_report(tmp_path):
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--quick", "--no-daemons", "--json", str(out)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert "targets" in proc.stdout and str(out) in proc.stdout

    report = json.loads(out.read_text())
    assert report["schema"] == "mailproxy-lint-bench/1"
    assert report["mode"] == "quick"
    assert {"date", "config", "linter_argv", "machine", "startup", "deployments", "scaling", "targets"} <= report.keys()
    assert {"nproc", "mem_total_mb", "python", "daemons", "rss_floor_mb"} <= report["machine"].keys()
    assert report["machine"]["daemons"] == {"postconf": None, "doveconf": None, "haproxy": None}

    # every timed linter run really linted: exit 0 (clean) or 1 (findings), never 2 (error)
    timed = [d["linter"] for d in report["deployments"]] + [s["linter"] for s in report["scaling"]] + report["startup"]
    for timing in timed:
        assert timing["exit_code"] in (0, 1), timing["argv"]
        assert timing["median_ms"] > 0 and timing["peak_rss_mb"] > 0

    names = [d["name"] for d in report["deployments"]]
    assert names[0] == "generated/haproxy+postfix+dovecot" and "examples/dms-traefik" in names
    for deployment in report["deployments"]:
        assert deployment["daemons"] == [] and deployment["ratio"] is None
        assert any("not installed" in note for note in deployment["notes"])

    series = {s["series"] for s in report["scaling"]}
    assert series == {"haproxy.cfg", "main.cf+master.cf", "dovecot conf.d", "compose+k8s YAML"}
    assert all(s["lines"] > 0 and s["daemon"] is None for s in report["scaling"])
    assert [s["name"] for s in report["startup"]][1:] == [
        "mailproxy-lint --version", "mailproxy-lint DIR (one small haproxy.cfg, text)",
        "mailproxy-lint DIR (one small haproxy.cfg, text), no .pyc cache",
        "mailproxy-lint DIR (one small haproxy.cfg, text), no parser cache"]

    verdicts = {t["target"].split(" ")[0]: t["met"] for t in report["targets"]}
    assert verdicts["small"] is None  # no daemons, no ratio
    assert all(t["met"] in (True, False, None) and t["measured"] for t in report["targets"])


def test_generated_inputs_have_the_asked_size(tmp_path):
    sys.path.insert(0, str(REPO / "bench"))
    try:
        import inputs
    finally:
        sys.path.remove(str(REPO / "bench"))
    assert 1000 <= inputs.haproxy_cfg(tmp_path / "h" / "haproxy.cfg", 1000) < 1012
    assert (tmp_path / "h" / "haproxy.cfg").read_text().count("\n") >= 1000
    assert 400 <= inputs.postfix_tree(tmp_path / "p", 400) < 410
    assert inputs.dovecot_tree(tmp_path / "d", 4) == 7 + 4 * 16
    assert len(list((tmp_path / "d" / "conf.d").glob("*.conf"))) == 4
    inputs.yaml_tree(tmp_path / "y", 6)
    assert len(list((tmp_path / "y").rglob("*.yaml"))) == 6
