"""Stage 1: find the config files under the scanned paths and decide what each one is.

Classification is by name first (the names the products and docker-mailserver use), then by a
cheap look at the content for generic names (`*.cfg`, `*.yml`). Files are read as bytes and
decoded here, so every later stage gets text; files that cannot be read become `ParseProblem`s.
Nothing outside the given paths is read, and symbolic links are not followed out of them.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from mailproxy_lint.model import FileKind, ParseProblem, SourceFile, Span

MAX_FILE_BYTES = 5 * 1024 * 1024  # configs are small; a larger file is reported, not read
SKIP_DIRS = {".git", ".hg", ".svn", "node_modules", "__pycache__", ".venv", "venv", ".tox", ".mypy_cache",
             ".pytest_cache", ".ruff_cache"}
YAML_SUFFIXES = (".yml", ".yaml")


@dataclass
class Loaded:
    sources: list[SourceFile] = field(default_factory=list)
    problems: list[ParseProblem] = field(default_factory=list)


def display_path(path: Path, cwd: Path | None = None) -> str:
    """The path as findings show it: relative to the working directory when inside it."""
    cwd = cwd or Path.cwd()
    try:
        return path.resolve().relative_to(cwd.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def classify(path: Path, head: str | None = None) -> tuple[FileKind, bool] | None:
    """(kind, is a docker-mailserver override) for a file, or None when it is not ours.

    `head` is the start of the file's text, used only for generic names.
    """
    name = path.name.lower()
    parent = path.parent.name.lower()
    # docker-mailserver override files (config/ directory mounted at /tmp/docker-mailserver)
    if name == "postfix-main.cf":
        return FileKind.POSTFIX_MAIN, True
    if name == "postfix-master.cf":
        return FileKind.DMS_POSTFIX_MASTER, True
    if name == "dovecot.cf":
        return FileKind.DOVECOT, True
    if name == "user-patches.sh":
        return FileKind.DMS_USER_PATCHES, True
    # the products' own names
    if name == "main.cf":
        return FileKind.POSTFIX_MAIN, False
    if name == "master.cf":
        return FileKind.POSTFIX_MASTER, False
    if name == "dovecot.conf" or name.startswith("dovecot-") and name.endswith(".conf") and head and _looks_dovecot(head):
        return FileKind.DOVECOT, False
    if parent == "conf.d" and (name.endswith(".conf") or name.endswith(".conf.ext")):
        if path.parent.parent.name.lower() == "dovecot" or (path.parent.parent / "dovecot.conf").exists():
            return FileKind.DOVECOT, False
        if head is not None and _looks_dovecot(head):
            return FileKind.DOVECOT, False
    if parent == "dovecot" and (name.endswith(".conf") or name.endswith(".conf.ext")) and name != "dovecot-sql.conf.ext":
        # `dovecot-*.conf` beside dovecot.conf is often a dict/SQL/LDAP file: let the content decide
        if (head is None and not name.startswith("dovecot-")) or (head is not None and _looks_dovecot(head)):
            return FileKind.DOVECOT, False
    if name.endswith(".cfg") and (name.startswith("haproxy") or parent == "haproxy" or head and _looks_haproxy(head)):
        return FileKind.HAPROXY, False
    if name.endswith(YAML_SUFFIXES):
        stem = name.rsplit(".", 1)[0]
        if stem in {"compose", "docker-compose"} or stem.startswith(("docker-compose", "compose.", "compose-")):
            return FileKind.COMPOSE, False
        if stem == "traefik":
            return FileKind.TRAEFIK_STATIC, False
        if head is not None:
            return _classify_yaml(head)
    if name == "traefik.toml":
        return FileKind.TRAEFIK_STATIC, False
    if name.endswith(".toml") and head is not None:
        return _classify_toml(head)
    return None


_HAPROXY_SECTION = re.compile(r"^\s*(frontend|backend|listen|defaults|global)\b", re.M)
_DOVECOT_HINT = re.compile(r"^\s*(service\s+[\w-]+\s*\{|namespace\s+[\w-]*\s*\{|protocols\s*=|!include|inet_listener"
                           r"|haproxy_trusted_networks|mail_location)", re.M)
# Dovecot's dict-sql, SQL and LDAP files share the syntax family but not the settings; their
# keys stand at top level (in dovecot.conf 2.4, `iterate_query` etc. sit inside a passdb/userdb).
_DOVECOT_AUXILIARY = re.compile(r"^(connect\s*=|map\s*\{|(password|user|iterate)_query\s*=|dnpass\s*=)", re.M)


def _looks_haproxy(head: str) -> bool:
    return bool(_HAPROXY_SECTION.search(head)) and re.search(r"^\s*(server|bind|mode)\s", head, re.M) is not None


def _looks_dovecot(head: str) -> bool:
    return bool(_DOVECOT_HINT.search(head)) and not _DOVECOT_AUXILIARY.search(head)


def _classify_yaml(head: str) -> tuple[FileKind, bool] | None:
    if re.search(r"^apiVersion:\s*\S", head, re.M) and re.search(r"^kind:\s*\S", head, re.M):
        return FileKind.KUBERNETES, False
    if re.search(r"^services:\s*$", head, re.M):
        return FileKind.COMPOSE, False
    if re.search(r"^(tcp|http|udp|tls):\s*$", head, re.M):
        return FileKind.TRAEFIK_DYNAMIC, False
    if re.search(r"^(entryPoints|entrypoints|providers):\s*$", head, re.M):
        return FileKind.TRAEFIK_STATIC, False
    if _looks_helm_traefik_values(head):
        return FileKind.TRAEFIK_STATIC, False
    return None


# TOML by content: Stalwart's listeners, Traefik's static sections, Traefik's dynamic sections
_STALWART_TOML = re.compile(r'^[ \t]*(\[[ \t]*server[ \t]*\.[ \t]*listener\b|server\.listener\.|\[[ \t]*server\.proxy\]|server\.proxy\.trusted-networks)', re.M)
_TRAEFIK_STATIC_TOML = re.compile(r"^[ \t]*\[[ \t]*(entryPoints|providers)\b", re.M | re.I)
_TRAEFIK_DYNAMIC_TOML = re.compile(r"^[ \t]*\[\[?[ \t]*(tcp|http|udp|tls)[ \t]*[.\]]", re.M)


def _classify_toml(head: str) -> tuple[FileKind, bool] | None:
    if _STALWART_TOML.search(head):
        return FileKind.STALWART, False
    if _TRAEFIK_STATIC_TOML.search(head):
        return FileKind.TRAEFIK_STATIC, False
    if _TRAEFIK_DYNAMIC_TOML.search(head):
        return FileKind.TRAEFIK_DYNAMIC, False
    return None


def _looks_helm_traefik_values(head: str) -> bool:
    """Traefik Helm chart values: a top-level `ports:` map whose entries set `port:` (and
    usually `expose:`/`exposedPort:`), without compose or Kubernetes markers."""
    block = re.search(r"^ports:[ \t]*(?:#.*)?\n((?:[ \t]+.*\n?|[ \t]*#.*\n?|[ \t]*\n)+)", head, re.M)
    if block is None:
        return False
    entries = re.findall(r"^  [A-Za-z0-9_-]+:[ \t]*\n((?:    .*\n?)+)", block.group(1), re.M)
    return any(re.search(r"^    port:\s*\d+\s*$", body, re.M) for body in entries) and any(
        re.search(r"^    (expose|exposedPort|protocol|containerPort):", body, re.M) for body in entries)


def _decode(data: bytes, path: str) -> tuple[str | None, ParseProblem | None]:
    if b"\x00" in data:
        line = data[: data.index(b"\x00")].count(b"\n") + 1
        return None, ParseProblem(Span(path, line, 1), "binary content (NUL byte); expected a text file")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        return None, ParseProblem(Span(path, line, column), f"not valid UTF-8 (byte 0x{data[exc.start]:02x}); expected UTF-8 text")
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n"), None


def read_source(path: Path, kind: FileKind, dms_override: bool, shown: str, loaded: Loaded) -> None:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            loaded.problems.append(ParseProblem(Span(shown, 1, 1), f"file is {size} bytes; files over {MAX_FILE_BYTES} bytes are not read"))
            return
        data = path.read_bytes()
    except OSError as exc:
        loaded.problems.append(ParseProblem(Span(shown, 1, 1), f"cannot read file: {exc.strerror or exc}"))
        return
    text, problem = _decode(data, shown)
    if problem is not None:
        loaded.problems.append(problem)
        return
    loaded.sources.append(SourceFile(shown, kind, text, str(path), dms_override))


def head(path: Path) -> str | None:
    try:
        with path.open("rb") as fh:
            return fh.read(8192).decode("utf-8", "replace")
    except OSError:
        return None


def load(paths: list[Path], forced_kind: FileKind | None = None, cwd: Path | None = None,
         exclude: Callable[[Path], bool] | None = None) -> Loaded:
    """Read every file of a known kind under `paths`.

    A file named directly is read even with an unknown name when `forced_kind` is given.
    `exclude` (the configuration's `exclude` globs) skips files found by walking a folder;
    a file named directly is always read.
    """
    loaded = Loaded()
    seen: set[str] = set()
    for root in paths:
        if root.is_file():
            candidates = [(root, True)]
        else:
            candidates = [(p, False) for p in _walk(root)]
        for path, named in candidates:
            real = os.path.realpath(path)
            if real in seen or (exclude is not None and not named and exclude(path)):
                continue
            seen.add(real)
            shown = display_path(path, cwd)
            if named and forced_kind is not None:
                read_source(path, forced_kind, path.name.lower() in _DMS_NAMES, shown, loaded)
                continue
            found = classify(path) or classify(path, head(path))
            if found is not None:
                read_source(path, found[0], found[1], shown, loaded)
    loaded.sources.sort(key=lambda s: s.path)
    return loaded


_DMS_NAMES = {"postfix-main.cf", "postfix-master.cf", "dovecot.cf", "user-patches.sh"}


def _walk(root: Path):
    # os.walk does not follow symlinked directories; symlinked files must resolve inside root
    root_real = os.path.realpath(root)
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        for filename in sorted(filenames):
            path = Path(dirpath) / filename
            if path.is_symlink():
                target = os.path.realpath(path)
                if not (target == root_real or target.startswith(root_real + os.sep)) or not os.path.isfile(target):
                    continue
            yield path
