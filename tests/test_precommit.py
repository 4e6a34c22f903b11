"""The pre-commit hook (`.pre-commit-hooks.yaml`), checked with the real `pre-commit` program.

SLOW (about 30-60 s, needs pip to reach a package index): the end-to-end test lets pre-commit
build the hook's virtualenv and pip-install this project into it, exactly as a user's
`pre-commit run` does. Everything else here is fast.

`pre-commit try-repo` clones the hook repository at HEAD (plus uncommitted changes to tracked
files), so the test does not point it at this checkout, whose state depends on what is committed
just now; it commits a snapshot of the installable project (the files pyproject.toml names plus
the manifest) into a temporary git repository and tries that. The same test passes in a fresh
CI clone and in a working tree with uncommitted edits.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from mailproxy_lint.load import classify

REPO = Path(__file__).resolve().parents[1]
MANIFEST = REPO / ".pre-commit-hooks.yaml"
BROKEN_FIXTURE = REPO / "tests" / "fixtures" / "rules" / "MPL101" / "bad-haproxy-to-dovecot-without-haproxy"


def hook() -> dict:
    hooks = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    assert [h["id"] for h in hooks] == ["mailproxy-lint"]
    return hooks[0]


# --------------------------------------------------------------------------------------------
# The manifest (fast)
# --------------------------------------------------------------------------------------------


def test_manifest_runs_the_whole_directory_once():
    h = hook()
    assert h["entry"] == "mailproxy-lint"
    assert h["language"] == "python"
    assert h["pass_filenames"] is False  # cross-file rules need both sides
    assert h["require_serial"] is True
    assert h["always_run"] is False
    assert not h.get("args")  # the default path "." is the repository root


def test_manifest_is_valid_for_pre_commit():
    clientlib = pytest.importorskip("pre_commit.clientlib")
    clientlib.load_manifest(str(MANIFEST))  # raises InvalidManifestError on a bad field


# Paths (with the text a generic name needs) that linter/load.py reads.
READ_BY_THE_LINTER = [
    ("dovecot/dovecot.conf", None),
    ("etc/dovecot/conf.d/10-master.conf", None),
    ("dovecot/conf.d/auth-sql.conf.ext", None),
    ("docker-data/dms/config/dovecot.cf", None),
    ("postfix/main.cf", None),
    ("postfix/master.cf", None),
    ("dms/config/postfix-main.cf", None),
    ("dms/config/postfix-master.cf", None),
    ("dms/config/user-patches.sh", None),
    ("haproxy.cfg", None),
    ("lb/haproxy-mail.cfg", None),
    ("lb/edge.cfg", "frontend imap\n  bind :143\n  mode tcp\n"),
    ("compose.yaml", None),
    ("docker-compose.yml", None),
    ("docker-compose.override.yaml", None),
    ("deploy/stack.yml", "services:\n  mail:\n    image: x\n"),
    ("traefik/traefik.yml", None),
    ("traefik.toml", None),
    ("traefik/dynamic/mail.yaml", "tcp:\n  routers: {}\n"),
    ("k8s/ingressroutetcp.yaml", "apiVersion: traefik.io/v1alpha1\nkind: IngressRouteTCP\n"),
    ("Compose.YAML", None),
]


@pytest.mark.parametrize("path, head", READ_BY_THE_LINTER, ids=[p for p, _ in READ_BY_THE_LINTER])
def test_files_pattern_covers_every_file_the_linter_reads(path, head):
    assert classify(Path(path), head) is not None, "the example list is out of date with linter/load.py"
    assert re.search(hook()["files"], path), f"a change to {path} would not trigger the hook"


@pytest.mark.parametrize("path", ["README.md", "src/app.py", "Dockerfile", "scripts/deploy.sh", "main.cf.bak",
                                  "docs/haproxy.cfg.md"])
def test_files_pattern_skips_unrelated_files(path):
    assert not re.search(hook()["files"], path)


# --------------------------------------------------------------------------------------------
# End to end with pre-commit (slow)
# --------------------------------------------------------------------------------------------


def _git(cwd: Path, *args: str) -> None:
    env = {**os.environ, "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.invalid",
           "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.invalid"}
    subprocess.run(["git", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", *args], cwd=cwd,
                   env=env, check=True, capture_output=True, timeout=60)


def _commit_all(cwd: Path, message: str) -> None:
    _git(cwd, "add", "-A")
    _git(cwd, "commit", "-q", "-m", message)


def _hook_repository(target: Path) -> Path:
    """A git repository holding what pip needs to install this project, plus the manifest."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    folders = set(project["tool"]["setuptools"]["package-dir"].values())
    target.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for folder in sorted(folders):
        shutil.copytree(REPO / folder, target / folder, ignore=ignore)
    for name in ("pyproject.toml", project["project"]["readme"], MANIFEST.name):
        shutil.copy2(REPO / name, target / name)
    _git(target, "init", "-q")
    _commit_all(target, "hook repository snapshot")
    return target


def _try_repo(hook_repo: Path, project: Path, home: Path) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if key != "GITHUB_ACTIONS"}  # plain text output
    env.update(PRE_COMMIT_HOME=str(home), NO_COLOR="1", PRE_COMMIT_COLOR="never")
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "try-repo", str(hook_repo), "mailproxy-lint", "--all-files",
         "--color", "never"],
        cwd=project, env=env, capture_output=True, text=True, timeout=300)


def test_pre_commit_try_repo_fails_on_a_broken_setup_and_passes_once_fixed(tmp_path):
    """SLOW: pre-commit installs the hook into its own virtualenv and runs it, twice."""
    pytest.importorskip("pre_commit")
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    hook_repo = _hook_repository(tmp_path / "hook")
    project = tmp_path / "mail-setup"
    shutil.copytree(BROKEN_FIXTURE, project)
    (project / "README.md").write_text("not a config file\n")
    _git(project, "init", "-q")
    _commit_all(project, "mail setup with HAProxy sending PROXY v2 to a plain Dovecot listener")

    broken = _try_repo(hook_repo, project, tmp_path / "pre-commit-home")
    output = broken.stdout + broken.stderr
    assert broken.returncode == 1, output
    assert re.search(r"^mailproxy-lint \(mail server behind a reverse proxy\)\.+Failed$", output, re.M), output
    assert re.search(r"^dovecot/dovecot\.conf:\d+:\d+: MPL101 \[error\] .*sends PROXY v2", output, re.M), output
    assert "    related: haproxy/haproxy.cfg:" in output

    conf = project / "dovecot" / "dovecot.conf"
    conf.write_text(conf.read_text().replace("    port = 143\n", "    port = 143\n    haproxy = yes\n"))
    _commit_all(project, "Dovecot accepts the PROXY header")

    fixed = _try_repo(hook_repo, project, tmp_path / "pre-commit-home")
    output = fixed.stdout + fixed.stderr
    assert fixed.returncode == 0, output
    assert re.search(r"^mailproxy-lint \(mail server behind a reverse proxy\)\.+Passed$", output, re.M), output
    assert "MPL101" not in output
