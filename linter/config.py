"""The project configuration: `[tool.mailproxy-lint]` in pyproject.toml, or `.mailproxy-lint.toml`.

The file is found upwards from the scanned path (the nearest folder holding one wins; within a
folder `.mailproxy-lint.toml` comes before `pyproject.toml`, and a pyproject.toml counts only
when it has a `[tool.mailproxy-lint]` table). `--config FILE` names one, `--isolated` ignores
them all. See docs/configuration.md for every key.

Values are read with `tomllib`; a mistake (unknown key, wrong type, unknown rule id, bad
version) is a `ConfigError` whose message names the file and the line of the key, found by a
small scan of the text (`key_line`), since tomllib keeps no positions. Globs (`exclude`,
`per-file-ignores`) and relative folders (`paths`) are relative to the folder of the file.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Callable, Iterable

from mailproxy_lint.model import Product, Setting, Span, Version

CONFIG_FILE = ".mailproxy-lint.toml"
PYPROJECT = "pyproject.toml"
SECTION = ("tool", "mailproxy-lint")
SEVERITIES = ("error", "warning", "note")
PRODUCTS = {
    "postfix": Product.POSTFIX,
    "dovecot": Product.DOVECOT,
    "haproxy": Product.HAPROXY,
    "traefik": Product.TRAEFIK,
    "stalwart": Product.STALWART,
    "docker-mailserver": Product.DOCKER_MAILSERVER,
}
ORIGIN = "mailproxy-lint configuration"


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class Config:
    """What a configuration file asks for, with rule names resolved to ids.

    The default instance (no file) changes nothing. `select is None` means "not set".
    """

    path: str | None = None  # display path of the file read
    base: Path = field(default_factory=Path.cwd)  # folder globs and relative paths start from
    select: tuple[str, ...] | None = None
    extend_select: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    per_file_ignores: tuple[tuple[str, frozenset[str]], ...] = ()  # (glob, rule ids)
    severity: dict[str, str] = field(default_factory=dict)  # rule id -> error|warning|note
    options: dict[str, dict[str, Any]] = field(default_factory=dict)  # rule id -> option -> value
    versions: dict[tuple[str | None, Product], Setting[Version]] = field(default_factory=dict)
    hosts: dict[str, tuple[Setting[str], ...]] = field(default_factory=dict)  # host -> its aliases
    paths: dict[str, str] = field(default_factory=dict)  # production folder -> local folder (absolute)
    exclude: tuple[str, ...] = ()

    def pinned(self, product: Product, host: str | None) -> Setting[Version] | None:
        """The version the file sets for `product` on `host` (or for every host)."""
        return self.versions.get((host, product)) or self.versions.get((None, product))

    def excluded(self, path: Path) -> bool:
        """True when `path` matches an `exclude` glob and must not be read."""
        relative = self.relative(path)
        return any(glob_matches(pattern, relative) for pattern in self.exclude)

    def ignored_here(self, rule_id: str, path: Path) -> bool:
        """True when `per-file-ignores` switches `rule_id` off for the file at `path`."""
        relative = self.relative(path)
        return any(rule_id in ids and glob_matches(pattern, relative) for pattern, ids in self.per_file_ignores)

    def relative(self, path: Path) -> str:
        """`path` relative to the config's folder, as POSIX text (absolute when outside it)."""
        for resolve in (os.path.abspath, os.path.realpath):
            try:
                return Path(resolve(path)).relative_to(resolve(self.base)).as_posix()
            except ValueError:
                continue
        return Path(os.path.abspath(path)).as_posix()


# --------------------------------------------------------------------------------------------
# Finding the file
# --------------------------------------------------------------------------------------------

_PYPROJECT_SECTION = re.compile(r"""^\s*(\[\s*tool\s*\.\s*["']?mailproxy-lint["']?\s*[.\]]|tool\s*\.\s*["']?mailproxy-lint["']?\s*[.=])""", re.M)


def discover(start: Path) -> Path | None:
    """The configuration file nearest to `start` (a file or folder), searching upwards."""
    folder = Path(os.path.abspath(start))
    if not folder.is_dir():
        folder = folder.parent
    for directory in (folder, *folder.parents):
        candidate = directory / CONFIG_FILE
        if candidate.is_file():
            return candidate
        candidate = directory / PYPROJECT
        if candidate.is_file() and _has_section(candidate):
            return candidate
    return None


def _has_section(pyproject: Path) -> bool:
    try:
        return bool(_PYPROJECT_SECTION.search(pyproject.read_text(encoding="utf-8", errors="replace")))
    except OSError:
        return False


# --------------------------------------------------------------------------------------------
# Reading it
# --------------------------------------------------------------------------------------------


def load(path: Path, rules: list, cwd: Path | None = None) -> Config:
    """Read and check the configuration file at `path`; `rules` is the rule catalog."""
    import tomllib

    from mailproxy_lint.load import display_path

    shown = display_path(path, cwd)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{shown}: cannot read configuration: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"at line (\d+)", str(exc))
        number = line.group(1) if line else max(len(text.splitlines()), 1)  # "at end of document"
        where = f"{shown}:{number}"
        raise ConfigError(f"{where}: not valid TOML: {re.sub(r' [(]at .*', '', str(exc))}") from None
    prefix: tuple[str, ...] = ()
    if path.name == PYPROJECT:
        prefix = SECTION
        data = data.get("tool", {}).get("mailproxy-lint")
        if not isinstance(data, dict):
            raise ConfigError(f"{shown}: has no [tool.mailproxy-lint] table")
    return _Reader(shown, text, prefix, rules, path.parent).read(data)


class _Reader:
    """Checks the table key by key; every error names the line of the key at fault."""

    def __init__(self, shown: str, text: str, prefix: tuple[str, ...], rules: list, base: Path):
        self.shown, self.text, self.prefix, self.rules = shown, text, prefix, rules
        self.base = Path(os.path.abspath(base))

    def fail(self, keys: tuple[str, ...], message: str) -> ConfigError:
        line = key_line(self.text, self.prefix + keys)
        return ConfigError(f"{self.shown}:{line}: {'.'.join(keys)}: {message}")

    def span(self, keys: tuple[str, ...]) -> Span:
        return Span(self.shown, key_line(self.text, self.prefix + keys), 1)

    def read(self, data: dict) -> Config:
        readers: dict[str, Callable[[Any, tuple[str, ...]], dict]] = {
            "select": lambda v, k: {"select": tuple(self.rule_tokens(v, k))},
            "extend-select": lambda v, k: {"extend_select": tuple(self.rule_tokens(v, k))},
            "ignore": lambda v, k: {"ignore": tuple(self.rule_tokens(v, k))},
            "per-file-ignores": lambda v, k: {"per_file_ignores": self.per_file_ignores(v, k)},
            "severity": lambda v, k: {"severity": self.severity(v, k)},
            "options": lambda v, k: {"options": self.options(v, k)},
            "versions": lambda v, k: {"versions": self.versions(v, k)},
            "hosts": lambda v, k: {"hosts": self.hosts(v, k)},
            "paths": lambda v, k: {"paths": self.paths(v, k)},
            "exclude": lambda v, k: {"exclude": tuple(self.strings(v, k))},
        }
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key not in readers:
                raise self.fail((key,), f"unknown key (known: {', '.join(sorted(readers))})")
            values.update(readers[key](value, (key,)))
        return Config(path=self.shown, base=self.base, **values)

    # --- value types --------------------------------------------------------------------

    def table(self, value: Any, keys: tuple[str, ...]) -> dict:
        if not isinstance(value, dict):
            raise self.fail(keys, f"expected a table, got {_describe(value)}")
        return value

    def strings(self, value: Any, keys: tuple[str, ...]) -> list[str]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(keys, f"expected a list of strings, got {_describe(value)}")
        return value

    def rule_tokens(self, value: Any, keys: tuple[str, ...]) -> list[str]:
        """Rule ids, names or id prefixes, as `--select` takes them; each must name a rule."""
        tokens = [t.strip() for item in self.strings(value, keys) for t in item.split(",") if t.strip()]
        self.rule_ids(tokens, keys)
        return tokens

    def rule_ids(self, tokens: Iterable[str], keys: tuple[str, ...]) -> set[str]:
        from mailproxy_lint.engine import RuleSelectionError, resolve_rules

        try:
            return resolve_rules(self.rules, list(tokens))
        except RuleSelectionError as exc:
            raise self.fail(keys, str(exc)) from None

    # --- keys ---------------------------------------------------------------------------

    def per_file_ignores(self, value: Any, keys: tuple[str, ...]) -> tuple[tuple[str, frozenset[str]], ...]:
        out = []
        for pattern, ids in self.table(value, keys).items():
            out.append((pattern, frozenset(self.rule_ids(self.rule_tokens(ids, keys + (pattern,)), keys + (pattern,)))))
        return tuple(out)

    def severity(self, value: Any, keys: tuple[str, ...]) -> dict[str, str]:
        out: dict[str, str] = {}
        for token, level in self.table(value, keys).items():
            where = keys + (token,)
            if not isinstance(level, str) or level.lower() not in SEVERITIES:
                raise self.fail(where, f"expected one of {', '.join(SEVERITIES)}, got {_describe(level)}")
            for rule_id in self.rule_ids([token], where):
                out[rule_id] = level.lower()
        return out

    def options(self, value: Any, keys: tuple[str, ...]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for token, settings in self.table(value, keys).items():
            where = keys + (token,)
            rule_ = next((r for r in self.rules if r.id == token.upper() or r.name == token.lower()), None)
            if rule_ is None:
                raise self.fail(where, f"unknown rule {token!r} (options take a rule id or name)")
            for name, raw in self.table(settings, where).items():
                option = rule_.option(name)
                if option is None:
                    known = ", ".join(o.name for o in rule_.options) or "none"
                    raise self.fail(where + (name,), f"{rule_.id} has no option {name!r} (its options: {known})")
                try:
                    out.setdefault(rule_.id, {})[name] = option.convert(raw)
                except ValueError as exc:
                    raise self.fail(where + (name,), str(exc)) from None
        return out

    def versions(self, value: Any, keys: tuple[str, ...]) -> dict[tuple[str | None, Product], Setting[Version]]:
        out: dict[tuple[str | None, Product], Setting[Version]] = {}
        for name, item in self.table(value, keys).items():
            if isinstance(item, dict):  # [versions.<host>] product = "x.y"
                for product, text in item.items():
                    out[(name, self.product(product, keys + (name, product)))] = self.version(text, keys + (name, product))
            else:
                out[(None, self.product(name, keys + (name,)))] = self.version(item, keys + (name,))
        return out

    def product(self, name: str, keys: tuple[str, ...]) -> Product:
        if name.lower() not in PRODUCTS:
            raise self.fail(keys, f"unknown product (known: {', '.join(PRODUCTS)}; a table names a host)")
        return PRODUCTS[name.lower()]

    def version(self, text: Any, keys: tuple[str, ...]) -> Setting[Version]:
        if not isinstance(text, str):
            raise self.fail(keys, f'expected a version string such as "3.5", got {_describe(text)}')
        version = Version.parse(text)
        if version is None or not re.fullmatch(r"\s*[vV]?\d+(\.\d+)*\s*", text):
            raise self.fail(keys, f'expected a version such as "3.5" or "2.3.19", got {text!r}')
        return Setting(version, self.span(keys), ORIGIN)

    def hosts(self, value: Any, keys: tuple[str, ...]) -> dict[str, tuple[Setting[str], ...]]:
        out = {}
        for host, aliases in self.table(value, keys).items():
            span = self.span(keys + (host,))
            out[host] = tuple(Setting(a.strip(), span, ORIGIN) for a in self.strings(aliases, keys + (host,)) if a.strip())
        return out

    def paths(self, value: Any, keys: tuple[str, ...]) -> dict[str, str]:
        out = {}
        for production, local in self.table(value, keys).items():
            where = keys + (production,)
            if not production.startswith("/"):
                raise self.fail(where, "expected an absolute path of the production system (such as /etc/dovecot)")
            if not isinstance(local, str):
                raise self.fail(where, f"expected a folder of the scanned tree, got {_describe(local)}")
            folder = Path(os.path.normpath(self.base / local))
            if not folder.is_dir():
                raise self.fail(where, f"{local!r} is not a folder (relative paths start at the configuration file's folder)")
            out[PurePosixPath(production).as_posix().rstrip("/") or "/"] = folder.as_posix()
        return out


def _describe(value: Any) -> str:
    names = {bool: "a boolean", int: "a number", float: "a number", str: "a string", list: "a list", dict: "a table"}
    return f"{names.get(type(value), type(value).__name__)} ({value!r})" if not isinstance(value, dict) else "a table"


# --------------------------------------------------------------------------------------------
# Where a key is written (tomllib keeps no positions)
# --------------------------------------------------------------------------------------------

_BARE = r"[A-Za-z0-9_-]+"
_KEY_PART = rf'(?:{_BARE}|"(?:[^"\\]|\\.)*"|\'[^\']*\')'
_DOTTED = rf"{_KEY_PART}(?:\s*\.\s*{_KEY_PART})*"
_HEADER = re.compile(rf"^\s*\[\[?\s*({_DOTTED})\s*\]\]?\s*(?:#.*)?$")
_ASSIGN = re.compile(rf"^\s*({_DOTTED})\s*=")


def split_key(dotted: str) -> tuple[str, ...]:
    """`a."b.c".d` -> ("a", "b.c", "d")."""
    parts = re.findall(_KEY_PART, dotted)
    return tuple(p[1:-1] if p[:1] in "\"'" else p for p in parts)


def key_line(text: str, keys: tuple[str, ...]) -> int:
    """The 1-based line where the key `keys` is written; else the line of its nearest written
    parent (an inline table, a table header); else 1."""
    table: tuple[str, ...] = ()
    best_line, best_depth = 1, 0
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            table = split_key(header.group(1))
            written = table
        else:
            assign = _ASSIGN.match(line)
            if not assign:
                continue
            written = table + split_key(assign.group(1))
        if written == keys:
            return number
        if len(written) > best_depth and keys[: len(written)] == written:
            best_line, best_depth = number, len(written)
    return best_line


# --------------------------------------------------------------------------------------------
# Globs
# --------------------------------------------------------------------------------------------


def glob_matches(pattern: str, relative: str) -> bool:
    """gitignore-style matching of a path relative to the configuration's folder.

    A pattern without `/` matches any file or folder name at any depth (`*.bak`, `vendor`); a
    pattern with `/` is anchored at the configuration's folder (`docker/old/*.cf`); `**`
    crosses folders. A pattern that matches a folder matches everything under it.
    """
    pattern = pattern.strip()
    if pattern.startswith("./"):
        pattern = pattern[2:]
    anchored = "/" in pattern.rstrip("/")
    pattern = pattern.strip("/")
    if not pattern:
        return False
    parts = relative.split("/")
    if not anchored:
        regex = re.compile(_glob_regex(pattern))
        return any(regex.fullmatch(part) for part in parts)
    regex = re.compile(_glob_regex(pattern))
    return any(regex.fullmatch("/".join(parts[:depth])) for depth in range(1, len(parts) + 1))


def _glob_regex(pattern: str) -> str:
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)
