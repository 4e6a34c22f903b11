"""The names each product knows, for rule MPL002 (unknown-setting) and MPL004's value types.

The big tables are text files next to this module, written by `tools/known_names.py` from the
daemons of a Debian 12 machine (each file says which release in its first lines):

* `postfix_parameters.txt`: Postfix parameter names with the release that introduced them,
  and the service-defined patterns (`<transport>_destination_concurrency_limit`, ...);
* `dovecot23_settings.txt`: Dovecot 2.3 settings per section kind, with their value type;
* `haproxy_keywords.txt`: HAProxy keywords per section kind, and `option` names.

* `dovecot24_settings.txt`: Dovecot 2.4 settings with their value type (no 2.4 daemon was
  available, so the script reads them from Dovecot's documentation and C sources).

Traefik label keys are in `traefik_labels.py`. Files are read once, on first use, so a run that meets no file of
a product never reads its table.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from mailproxy_lint.model import Version

_HERE = Path(__file__).parent


def _rows(filename: str) -> tuple[str, list[list[str]]]:
    """(first comment line, data rows split on tabs) of a table file."""
    text = (_HERE / filename).read_text(encoding="utf-8")
    lines = text.splitlines()
    first = lines[0].lstrip("# ") if lines else ""
    return first, [line.split("\t") for line in lines if line and not line.startswith("#")]


def _table_version(first_line: str, product: str) -> Version:
    """The release a table was built from, read from its first line ("... of Postfix 3.7.11")."""
    match = re.search(rf"{product}\D*?(\d+(?:\.\d+)+)", first_line)
    return Version.parse(match.group(1)) if match else Version((0,))


# --------------------------------------------------------------------------------------------
# Postfix
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServicePattern:
    """A service-defined parameter: `<service>` + suffix, for services running these commands."""

    suffix: str  # "_destination_concurrency_limit"
    since: Version | None
    commands: frozenset[str]


@dataclass(frozen=True, slots=True)
class PostfixNames:
    built_from: Version
    since: dict[str, Version | None]  # every known parameter -> release that introduced it
    patterns: tuple[ServicePattern, ...]
    time_parameters: frozenset[str]  # parameters whose value is a time (number + s/m/h/d/w)

    def pattern_for(self, name: str, services: dict[str, str]) -> ServicePattern | None:
        """The pattern that makes `name` a service-defined parameter of a master.cf service.

        `services` maps service names to their commands (`dovecot` -> `pipe`).
        """
        for pattern in self.patterns:
            if name.endswith(pattern.suffix):
                service = name[: -len(pattern.suffix)]
                if services.get(service) in pattern.commands:
                    return pattern
        return None


@functools.cache
def postfix() -> PostfixNames:
    first, rows = _rows("postfix_parameters.txt")
    since: dict[str, Version | None] = {}
    patterns = []
    times = set()
    for row in rows:
        if row[0] == "pattern":
            patterns.append(ServicePattern(row[1], Version.parse(row[2]), frozenset(row[3].split(","))))
            continue
        since[row[0]] = Version.parse(row[1]) if len(row) > 1 and row[1] else None
        if row[-1] == "time":
            times.add(row[0])
    return PostfixNames(_table_version(first, "Postfix"), since, tuple(patterns), frozenset(times))


# --------------------------------------------------------------------------------------------
# Dovecot 2.3
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DovecotNames:
    built_from: Version
    # section kind -> setting -> type; "-" holds the global settings (also valid in filters).
    # Types: bool, time, time_ms, size, port, uint, enum, string, other, section.
    settings: dict[str, dict[str, str]]

    def known_anywhere(self, name: str) -> bool:
        return any(name in names for names in self.settings.values())

    def type_of(self, section: str, name: str) -> str | None:
        return self.settings.get(section, {}).get(name)


@functools.cache
def dovecot23() -> DovecotNames:
    first, rows = _rows("dovecot23_settings.txt")
    settings: dict[str, dict[str, str]] = {}
    for section, name, kind in rows:
        settings.setdefault(section, {})[name] = kind
    return DovecotNames(_table_version(first, "Dovecot"), settings)


# --------------------------------------------------------------------------------------------
# Dovecot 2.4
# --------------------------------------------------------------------------------------------

# filters that select a connection (`protocol imap {`): they add no prefix to the keys inside
DOVECOT24_CONNECTION_FILTERS = frozenset({"protocol", "local", "remote", "local_name"})
# what a section header may open: a named (list) filter, or a list of free keys
DOVECOT24_SECTION_TYPES = frozenset({"filter", "list_filter", "strlist", "boollist"})


@dataclass(frozen=True, slots=True)
class Dovecot24Names:
    """Dovecot 2.4 settings. 2.4 has no settings hierarchy: every name is global, and a key
    inside a filter is looked up with the innermost filter's prefix first."""

    built_from: Version
    settings: dict[str, str]  # name -> type (the 2.3 type words, plus filter/list_filter/strlist/boollist)

    def resolve(self, frames: list[str], key: str) -> str | None:
        """The setting `key` names inside `frames` (section headers, outermost first), or None.

        Inside `inet_listener imaps { ssl = yes }` Dovecot tries `inet_listener_imaps_ssl`,
        `inet_listener_ssl`, then `ssl`; a frame's own kind is resolved the same way (`warning`
        inside `quota user { }` is `quota_warning`).
        """
        for candidate in self._candidates(frames, key):
            if candidate in self.settings:
                return candidate
        return None

    def type_of(self, frames: list[str], key: str) -> str | None:
        name = self.resolve(frames, key)
        return self.settings[name] if name is not None else None

    def prefix(self, frames: list[str]) -> str | None:
        """The prefix keys inside `frames` are tried with (`inet_listener`), or None at top level."""
        for index in range(len(frames) - 1, -1, -1):
            kind, _, label = frames[index].partition(" ")
            if kind in DOVECOT24_CONNECTION_FILTERS:
                continue
            if kind == "group":  # `group @mysql default {`: keys get the label's prefix
                return label.split(" ", 1)[0].lstrip("@")
            return self.resolve(frames[:index], kind) or kind
        return None

    def _candidates(self, frames: list[str], key: str) -> list[str]:
        prefix = self.prefix(frames)
        if prefix is None:
            return [key]
        innermost = [f for f in frames if f.partition(" ")[0] not in DOVECOT24_CONNECTION_FILTERS][-1]
        name = innermost.partition(" ")[2].strip().strip('"')
        named = [f"{prefix}_{name}_{key}"] if name and not innermost.startswith("group ") else []
        return [*named, f"{prefix}_{key}", key]


@functools.cache
def dovecot24() -> Dovecot24Names:
    _, rows = _rows("dovecot24_settings.txt")
    return Dovecot24Names(Version((2, 4)), {row[0]: row[1] for row in rows})


# --------------------------------------------------------------------------------------------
# HAProxy
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HaproxyNames:
    built_from: Version
    keywords: dict[str, frozenset[str]]  # section kind -> keywords
    options: dict[str, frozenset[str]]  # proxy section kind -> `option` names

    def all_keywords(self) -> frozenset[str]:
        return frozenset().union(*self.keywords.values())


@functools.cache
def haproxy() -> HaproxyNames:
    first, rows = _rows("haproxy_keywords.txt")
    keywords: dict[str, set[str]] = {}
    options: dict[str, set[str]] = {}
    for row in rows:
        if len(row) == 3 and row[1] == "option":
            options.setdefault(row[0], set()).add(row[2])
        else:
            keywords.setdefault(row[0], set()).add(row[1])
    return HaproxyNames(
        _table_version(first, "HAProxy"),
        {k: frozenset(v) for k, v in keywords.items()},
        {k: frozenset(v) for k, v in options.items()},
    )
