"""Dovecot builder: parsed Dovecot files -> `DovecotConfig`s and `Listener`s.

Instances. `!include` patterns are resolved among the scanned files (relative to the including
file, glob with `{a,b}`; an absolute pattern that names no scanned file also matches a scanned
file whose path ends with the same components, for repositories holding a copied `/etc`). A
file no other scanned file includes is a *root*; each root with everything it includes is one
Dovecot instance. docker-mailserver is one more instance: the stock Dovecot of the image
(`data/dms_dovecot.py`, chosen by `ENABLE_POP3`, `ENABLE_MANAGESIEVE`, ... of the platform)
overlaid by `dovecot.cf`, read last at top level as DMS's `local.conf`.

Walking. Statements are read in include order with one section stack per instance, so a `}`
in an included file closes a section of its includer, as in Dovecot. An unbalanced stack for
the whole include tree (a `}` closing nothing, a section still open at the end) is reported
here as a `ParseProblem` (doveconf refuses it), and the instance is then not built.

`DovecotConfig.settings` keys:
- top-level settings by name: `haproxy_trusted_networks`;
- settings inside sections and filters by their section path, each level written
  `type name` (or `type` when unnamed) and joined by `/`:
  `protocol imap/imap_idle_notify_interval`, `local 10.0.0.1/protocol imap/ssl`,
  `service imap-login/inet_listener imaps/port`, `plugin/sieve`;
- last definition wins; `$name` (2.3) and `$SET:name` (2.4) are expanded from what is known at
  that point (the current section, then top level, then a Dovecot default); `$ENV:` and
  runtime `%{}` variables stay as written;
- a few Dovecot defaults the rules need (`ssl`, `protocols`, `imap_idle_notify_interval`,
  `haproxy_timeout`, `listen`) are present with `span=None` and origin "Dovecot default" when
  the files do not set them.

Listeners. Every `service X { inet_listener Y { ... } }` becomes a `Listener` (span: the last
`inet_listener` line that configured it). Dovecot's built-in listeners of enabled protocols
(imap 143, imaps 993 ssl, pop3 110, pop3s 995 ssl, sieve 4190, submission 587, and submissions
465 ssl from 2.4) exist without being written; a written block of the same service and name
changes them, and `port = 0` removes a listener. Written listeners are kept even when their
protocol is not in `protocols` (its value is often set by files outside the scan).
`tls` is IMPLICIT for `ssl = yes` (even under a global `ssl = no`, which makes Dovecot drop
the listener: rule TL07 compares), NONE under a global `ssl = no`, else STARTTLS.
Unwritten docker-mailserver values point at the platform's `image:` line (or the first line of
`dovecot.cf`) with origin "docker-mailserver stock dovecot".

Versions: what the model knows for the host (image tags) first, then the docker-mailserver
release table, then `dovecot_config_version` (a lower bound written by the user).
An absolute `!include` under a folder of the configuration's `paths` mapping resolves in the
mapped folder of the scanned tree instead.
`!include` targets missing among the scanned files are listed in `IncludeGraph.missing`. Each
instance's `include_problems` (data for MPL003) holds, for the `!include` lines it reads: a
pattern that matches no file on disk inside the scanned root (doveconf: `No matches`), a pattern
that points outside the scanned root (so its files were not checked), and recursive includes.
Includes in docker-mailserver's `dovecot.cf` resolve inside the container and are not judged.
"""
from __future__ import annotations

import fnmatch
import glob
import ipaddress
import os
import posixpath
import re
from dataclasses import dataclass, field
from typing import Sequence

from mailproxy_lint.data import dms_dovecot
from mailproxy_lint.data.versions import ImageRef
from mailproxy_lint.model import (
    DovecotConfig,
    FileKind,
    IPNetwork,
    Listener,
    MailProtocol,
    ParseProblem,
    Product,
    ProxyHeader,
    Setting,
    SourceFile,
    Span,
    TlsMode,
    Version,
)
from mailproxy_lint.parse import Parsed
from mailproxy_lint.parse.dovecot import (
    DovecotFile,
    Include,
    KeyValue,
    SectionBegin,
    SectionEnd,
    ValueKind,
    split_logical_lines,
)

from . import Model, Platform

DEFAULT_ORIGIN = "Dovecot default"
# how an include problem that the linter could not check starts (MPL003 reports it as a warning)
OUTSIDE_ROOT = "include leaves the scanned directory"
# Section paths are recorded (for MPL002) this deep at most: real configs nest four or five
# levels, and recording every level of a hostile 10 000-deep file would take quadratic time.
MAX_RECORDED_DEPTH = 32

# Dovecot defaults the rules read (2.3 and 2.4 agree on these)
DEFAULT_SETTINGS: dict[str, str] = {
    "protocols": "imap pop3 lmtp",
    "ssl": "yes",
    "listen": "*, ::",
    "imap_idle_notify_interval": "2 mins",
    "haproxy_timeout": "3 secs",
}


@dataclass(frozen=True, slots=True)
class BuiltinListener:
    service: str
    name: str
    port: int
    ssl: bool
    protocol: str  # the `protocols` entry that starts the service
    since: Version | None = None  # first Dovecot version with this default listener


# Built-in `inet_listener`s of the login services (imap-login-settings.c, pop3-login-settings.c,
# submission-login-settings.c; Pigeonhole managesieve-login). 2.3 defines `submissions` but
# leaves it out of the default list; 2.4 lists it.
BUILTIN_LISTENERS: tuple[BuiltinListener, ...] = (
    BuiltinListener("imap-login", "imap", 143, False, "imap"),
    BuiltinListener("imap-login", "imaps", 993, True, "imap"),
    BuiltinListener("pop3-login", "pop3", 110, False, "pop3"),
    BuiltinListener("pop3-login", "pop3s", 995, True, "pop3"),
    BuiltinListener("managesieve-login", "sieve", 4190, False, "sieve"),
    BuiltinListener("submission-login", "submission", 587, False, "submission"),
    BuiltinListener("submission-login", "submissions", 465, True, "submission", Version((2, 4))),
)

# service -> (protocol without TLS, protocol with `ssl = yes`)
SERVICE_PROTOCOLS: dict[str, tuple[MailProtocol, MailProtocol]] = {
    "imap-login": (MailProtocol.IMAP, MailProtocol.IMAPS),
    "pop3-login": (MailProtocol.POP3, MailProtocol.POP3S),
    "managesieve-login": (MailProtocol.SIEVE, MailProtocol.SIEVE),
    "submission-login": (MailProtocol.SUBMISSION, MailProtocol.SUBMISSIONS),
    "lmtp": (MailProtocol.LMTP, MailProtocol.LMTP),
}

LISTENER_FIELDS = ("port", "address", "listen", "ssl", "haproxy", "reuse_port", "type")
_ALL_INTERFACES = {"*", "::", "[::]", "*, ::", "*,::", "* ::"}


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def build(parsed: list[Parsed], model: Model) -> None:
    files = [p for p in parsed if p.source.kind is FileKind.DOVECOT and isinstance(p.tree, DovecotFile)]
    graph = IncludeGraph(files, _broken_dovecot_sources(model, files), model.root,
                         model.config.paths if model.config is not None else None)
    overrides = [p for p in files if p.source.dms_override]
    for root in graph.roots():
        _add_instance(_plain_instance(graph, root, model), model)
    for platform, override in _dms_pairs(model, overrides):
        instance = _dms_instance(graph, platform, override, model)
        if instance is not None:
            _add_instance(instance, model)
    if any(p.name == "docker-mailserver" and dms_dovecot.runs_dovecot(_env(p)) for p in model.platforms):
        model.present.add(Product.DOVECOT)


def _broken_dovecot_sources(model: Model, files: list[Parsed]) -> list[SourceFile]:
    """Dovecot files that failed to parse: their includes still decide which files are roots."""
    ok = {p.source.path for p in files}
    return [s for s in model.files if s.kind is FileKind.DOVECOT and s.path not in ok]


def _broken_overrides(model: Model, overrides: list[Parsed]) -> list[SourceFile]:
    ok = {p.source.path for p in overrides}
    return [s for s in model.files if s.kind is FileKind.DOVECOT and s.dms_override and s.path not in ok]


# --------------------------------------------------------------------------------------------
# Includes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IncludeProblem:
    """An include that does not resolve among the scanned files, or that loops (data for MPL003)."""

    include: Include
    reason: str  # "no matching file among the scanned files" / "recursive include of <path>"


class IncludeGraph:
    """Which scanned Dovecot file includes which (resolved once for every instance)."""

    def __init__(self, files: list[Parsed], broken: Sequence[SourceFile] = (), root: str | None = None,
                 path_map: dict[str, str] | None = None):
        self.files = files
        self.root = root
        # production folder -> absolute local folder (`paths` in the configuration), longest first
        self.path_map = sorted((path_map or {}).items(), key=lambda item: -len(item[0]))
        self._by_key = {_file_key(p.source): p for p in files}
        self._targets: dict[Include, list[Parsed]] = {}
        self.missing: list[IncludeProblem] = []
        included: set[str] = set()
        for item in files:
            for include in item.tree.includes():
                targets = self._resolve(item.source, include.pattern)
                self._targets[include] = targets
                included.update(_file_key(t.source) for t in targets if t is not item)
                if not targets and not include.optional:
                    self.missing.append(IncludeProblem(include, "no matching file among the scanned files"))
        for source in broken:
            for pattern in _raw_includes(source):
                included.update(_file_key(t.source) for t in self._resolve(source, pattern))
        self._included = included
        self._missing = {problem.include for problem in self.missing}

    def problem(self, source: SourceFile, include: Include) -> str | None:
        """Why a non-optional include that matched no scanned file is a problem, or None.

        Judged on disk, inside the scanned root only: the file may exist without being a kind
        of file the linter reads, which is no problem.
        """
        if include not in self._missing or self.root is None or source.dms_override:
            return None
        if self.leaves_root(source, include):
            return (f"{OUTSIDE_ROOT}: `!include {include.pattern}` points outside the scanned directory, so the files it "
                    f"includes were not checked")
        if any(glob.glob(variant) for variant in _expand_braces(self._on_disk(source, include))):
            return None
        return f"no file matches `!include {include.pattern}`: doveconf refuses the configuration ('No matches')"

    def leaves_root(self, source: SourceFile, include: Include) -> bool:
        """The include (or include_try) names files outside the scanned root (after path mapping)."""
        if self.root is None:
            return False
        resolved = self._on_disk(source, include)
        root = os.path.normpath(os.path.abspath(self.root))
        return resolved != root and not resolved.startswith(root.rstrip(os.sep) + os.sep)

    def _on_disk(self, source: SourceFile, include: Include) -> str:
        base = posixpath.dirname(_file_key(source))
        full = self._mapped(include.pattern) if include.pattern.startswith("/") else posixpath.join(base, include.pattern)
        return os.path.normpath(os.path.abspath(full))

    def targets(self, include: Include) -> list[Parsed]:
        return self._targets.get(include, [])

    def roots(self) -> list[Parsed]:
        """Plain (non docker-mailserver) files that no other scanned file includes."""
        return [p for p in self.files if not p.source.dms_override and _file_key(p.source) not in self._included]

    def _resolve(self, source: SourceFile, pattern: str) -> list[Parsed]:
        if not pattern:
            return []
        base = posixpath.dirname(_file_key(source))
        mapped = self._mapped(pattern) if pattern.startswith("/") else None
        if mapped is not None and mapped != pattern and not base.startswith("/"):
            mapped = os.path.relpath(mapped).replace(os.sep, "/")  # the form of relative file keys
        full = mapped if mapped is not None else posixpath.join(base, pattern)
        matches = []
        for variant in _expand_braces(posixpath.normpath(full)):
            matches.extend(self._match(variant))
        if not matches and pattern.startswith("/") and mapped == pattern:
            for variant in _expand_braces(posixpath.normpath(pattern)):
                matches.extend(self._match(variant, suffix=True))
        unique = {_file_key(m.source): m for m in matches}
        return [unique[k] for k in sorted(unique)]  # glob() order

    def _mapped(self, pattern: str) -> str:
        """An absolute production path moved into the scanned tree by the `paths` mapping."""
        for production, local in self.path_map:
            if pattern == production or pattern.startswith(production.rstrip("/") + "/"):
                return local.rstrip("/") + pattern[len(production.rstrip("/")):]
        return pattern

    def _match(self, pattern: str, suffix: bool = False) -> list[Parsed]:
        wanted = [c for c in pattern.split("/") if c]
        found = []
        for key, item in self._by_key.items():
            parts = [c for c in key.split("/") if c]
            if suffix:
                parts = parts[-len(wanted):] if len(parts) >= len(wanted) else []
            if len(parts) == len(wanted) and all(fnmatch.fnmatchcase(p, w) for p, w in zip(parts, wanted)):
                found.append(item)
        return found


def _file_key(source: SourceFile) -> str:
    return posixpath.normpath((source.abspath or source.path).replace("\\", "/"))


def _expand_braces(pattern: str) -> list[str]:
    """glob(GLOB_BRACE): `a{b,c}d` -> `abd`, `acd` (innermost-first, nested braces work)."""
    match = re.search(r"\{([^{}]*)\}", pattern)
    if match is None:
        return [pattern]
    head, tail = pattern[: match.start()], pattern[match.end():]
    out: list[str] = []
    for choice in match.group(1).split(","):
        out.extend(_expand_braces(head + choice + tail))
    return out


_INCLUDE_LINE = re.compile(r"!include(?:_try)?[ \t]+(\S.*)$")


def _raw_includes(source: SourceFile) -> list[str]:
    """Include patterns of a file that failed to parse (its logical lines are still readable)."""
    lines = split_logical_lines(source.text, source.path).logical
    return [m.group(1) for m in (_INCLUDE_LINE.match(line.text) for line in lines) if m]


# --------------------------------------------------------------------------------------------
# Walking one instance
# --------------------------------------------------------------------------------------------


@dataclass
class _ListenerDraft:
    service: str
    name: str
    span: Span  # the last `inet_listener` line that configured it
    fields: dict[str, Setting[str]] = field(default_factory=dict)


@dataclass
class _Instance:
    id: str
    root_span: Span
    host: str | None = None
    version: Setting[Version] | None = None
    is_24: bool = False
    settings: dict[str, Setting[str]] = field(default_factory=dict)
    drafts: dict[tuple[str, str], _ListenerDraft] = field(default_factory=dict)
    problems: list[ParseProblem] = field(default_factory=list)
    loops: list[IncludeProblem] = field(default_factory=list)
    include_problems: list[tuple[Span, str]] = field(default_factory=list)
    unread_includes: list[Span] = field(default_factory=list)  # !include / !include_try outside the scan
    sections: list[Setting[str]] = field(default_factory=list)  # section headers as written
    # default listeners: which built-ins, and the span/origin of the unwritten ones
    builtins: tuple[BuiltinListener | dms_dovecot.StockListener, ...] = ()
    default_span: Span | None = None
    default_origin: str = DEFAULT_ORIGIN
    platform: str | None = None  # "docker-mailserver" for the DMS instance


class _Walker:
    """Reads statements in include order with one section stack (Dovecot's config parser)."""

    def __init__(self, graph: IncludeGraph, instance: _Instance):
        self.graph = graph
        self.instance = instance
        self.stack: list[SectionBegin] = []
        self.chain: list[str] = []
        self.sources: list[SourceFile] = []

    def walk(self, item: Parsed) -> None:
        key = _file_key(item.source)
        self.chain.append(key)
        self.sources.append(item.source)
        for statement in item.tree.statements:
            if isinstance(statement, Include):
                self._include(statement)
            elif isinstance(statement, SectionBegin):
                self._open(statement)
            elif isinstance(statement, SectionEnd):
                self._close(statement)
            else:
                self._assign(statement)
        self.chain.pop()
        self.sources.pop()

    def finish(self, end: Span) -> None:
        """Sections still open at the end of the root file (Dovecot: Missing '}')."""
        if self.stack:
            opened = self.stack[-1]
            self.instance.problems.append(ParseProblem(
                end,
                f"unexpected end of file; expected '}}' closing '{_frame(opened)}' opened at {opened.span}",
                ("'}'",),
            ))
            self.stack.clear()

    def _include(self, include: Include) -> None:
        targets = self.graph.targets(include)
        if not targets:
            reason = self.graph.problem(self.sources[-1], include)
            if reason is not None:
                self.instance.include_problems.append((include.span, reason))
            if self.graph.leaves_root(self.sources[-1], include):
                self.instance.unread_includes.append(include.span)
        for target in targets:
            key = _file_key(target.source)
            if key in self.chain:
                self.instance.loops.append(IncludeProblem(include, f"recursive include of {target.source.path}"))
                if not self.sources[-1].dms_override:
                    self.instance.include_problems.append((include.span, (
                        f"`!include {include.pattern}` includes {target.source.path}, which is already being read: "
                        f"doveconf refuses the configuration ('Recursive include file')")))
                continue
            self.walk(target)

    def _open(self, begin: SectionBegin) -> None:
        self.stack.append(begin)
        if len(self.stack) <= MAX_RECORDED_DEPTH:
            self.instance.sections.append(Setting("/".join(_frame(s) for s in self.stack), begin.span))
        listener = self._listener_key()
        if listener is not None:
            draft = self.instance.drafts.get(listener)
            if draft is None:
                self.instance.drafts[listener] = _ListenerDraft(*listener, begin.span)
            else:
                draft.span = begin.span

    def _close(self, end: SectionEnd) -> None:
        if self.stack:
            self.stack.pop()
            return
        self.instance.problems.append(ParseProblem(
            Span(end.span.path, end.span.line, end.span.column),
            "unexpected '}'; expected a setting, a section or !include (no section is open)",
            ("a setting", "a section", "!include"),
        ))

    def _assign(self, kv: KeyValue) -> None:
        prefix = "/".join(_frame(s) for s in self.stack)
        value = self._expand(kv, prefix) if kv.kind is ValueKind.VARIABLE else kv.value
        setting = Setting(value, kv.span)
        self.instance.settings[f"{prefix}/{kv.key}" if prefix else kv.key] = setting
        listener = self._listener_key()
        if listener is not None:
            name = _listener_field(kv.key, listener[1])
            if name is not None:
                self.instance.drafts[listener].fields[name] = setting

    def _listener_key(self) -> tuple[str, str] | None:
        if len(self.stack) == 2 and self.stack[0].type == "service" and self.stack[1].type == "inet_listener":
            return self.stack[0].name or "", self.stack[1].name or ""
        return None

    def _expand(self, kv: KeyValue, prefix: str) -> str:
        """Dovecot's `$` expansion (facts-formats §1.4): tokens split on single spaces."""
        out = []
        for token in kv.value.split():
            name = _variable_name(token, self.instance.is_24)
            known = self._lookup(name, prefix) if name is not None else None
            out.append(known if known is not None else token)
        return " ".join(out)

    def _lookup(self, name: str, prefix: str) -> str | None:
        for key in (f"{prefix}/{name}" if prefix else None, name):
            if key is not None and key in self.instance.settings:
                return self.instance.settings[key].value
        return DEFAULT_SETTINGS.get(name)


def _variable_name(token: str, is_24: bool) -> str | None:
    """The setting a `$` token refers to, or None when it is kept literally."""
    if is_24:
        return token[len("$SET:"):] if token.startswith("$SET:") else None
    if token.startswith("$") and not token.startswith("$ENV:") and len(token) > 1:
        return token[1:]
    return None


def _frame(section: SectionBegin) -> str:
    parts = [section.type, section.label, section.name]
    return " ".join(p for p in parts if p)


def _listener_field(key: str, listener_name: str) -> str | None:
    """`port`, `inet_listener_port` and `inet_listener_imaps_port` all mean `port` (2.4 prefixes)."""
    for prefix in (f"inet_listener_{listener_name}_", "inet_listener_"):
        if key.startswith(prefix):
            key = key[len(prefix):]
            break
    return key if key in LISTENER_FIELDS else None


def _plain_instance(graph: IncludeGraph, root: Parsed, model: Model) -> _Instance:
    """A Dovecot instance from a root file and everything it includes."""
    instance = _Instance(id=root.source.path, root_span=Span.whole_file(root.source.path))
    instance.version = _known_version(model, None) or _config_version(root)
    instance.is_24 = _is_24(instance.version)
    instance.settings.update(_defaults())
    instance.builtins = tuple(
        b for b in BUILTIN_LISTENERS
        if b.since is None or (instance.version is not None and instance.version.value >= b.since)
    )
    _read(graph, instance, root)
    protocols = instance.settings["protocols"]
    instance.default_span = protocols.span or instance.root_span
    return instance


def _read(graph: IncludeGraph, instance: _Instance, item: Parsed) -> None:
    """Read a file (and its includes) at top level into `instance`; braces must balance."""
    walker = _Walker(graph, instance)
    walker.walk(item)
    walker.finish(item.tree.end or Span.whole_file(item.source.path))
    if instance.version is None:
        instance.version = _written_config_version(instance)


def _defaults() -> dict[str, Setting[str]]:
    return {k: Setting(v, None, DEFAULT_ORIGIN) for k, v in DEFAULT_SETTINGS.items()}


# --------------------------------------------------------------------------------------------
# docker-mailserver
# --------------------------------------------------------------------------------------------


def _env(platform: Platform) -> dict[str, str]:
    return {k: s.value for k, s in platform.env.items()}


def _dms_pairs(model: Model, overrides: list[Parsed]) -> list[tuple[Platform | None, Parsed | None]]:
    """Each docker-mailserver platform with its `dovecot.cf` (or None), and orphan `dovecot.cf`s.

    A platform whose `dovecot.cf` failed to parse is left out: its Dovecot is unknown, not stock.
    """
    platforms = [p for p in model.platforms if p.name == "docker-mailserver"]
    chosen: dict[int, Parsed] = {}
    orphans: list[tuple[Platform | None, Parsed | None]] = []
    for override in overrides:
        platform = model.platform_for(override.source)
        if any(platform is p for p in platforms) and id(platform) not in chosen:
            chosen[id(platform)] = override
        else:
            orphans.append((None, override))
    broken = {id(model.platform_for(source)) for source in _broken_overrides(model, overrides)}
    pairs = [(p, chosen.get(id(p))) for p in platforms if id(p) in chosen or id(p) not in broken]
    return pairs + orphans


def _dms_instance(graph: IncludeGraph, platform: Platform | None, override: Parsed | None,
                  model: Model) -> _Instance | None:
    """Stock docker-mailserver Dovecot for the platform's environment, then its `dovecot.cf`."""
    env = _env(platform) if platform is not None else {}
    if not dms_dovecot.runs_dovecot(env):
        return None
    host = platform.host if platform is not None else None
    first_line = Span.whole_file(override.source.path) if override is not None else None
    # Untouched stock listeners point where the user would change them: dovecot.cf if it exists
    stock_span = first_line or (platform.span if platform is not None else None)
    instance = _Instance(
        id=override.source.path if override is not None else f"docker-mailserver:{host}",
        root_span=first_line or stock_span or Span.whole_file(model.root),
        host=host,
        platform="docker-mailserver",
    )
    instance.version = _known_version(model, host) or _dms_version(model, platform, stock_span)
    instance.is_24 = _is_24(instance.version)
    instance.settings.update(_defaults())
    stock = dict(dms_dovecot.STOCK_SETTINGS)
    stock["protocols"] = " ".join(dms_dovecot.enabled_protocols(env))
    listen = dms_dovecot.listen_for(env)
    if listen is not None:
        stock["listen"] = listen
    for key, value in stock.items():
        instance.settings[key] = Setting(value, stock_span, dms_dovecot.ORIGIN)
    instance.builtins = dms_dovecot.STOCK_LISTENERS
    instance.default_span = stock_span or instance.root_span
    instance.default_origin = dms_dovecot.ORIGIN
    if override is not None:
        _read(graph, instance, override)
    return instance


def _dms_version(model: Model, platform: Platform | None, span: Span | None) -> Setting[Version] | None:
    if platform is None:
        return None
    tag = _image_tag(model, platform.host)
    dms = platform.version.value if platform.version is not None else None
    version = dms_dovecot.dovecot_version(dms, tag)
    if version is None:
        return None
    which = f"docker-mailserver {dms}" if dms is not None else f"docker-mailserver:{tag}"
    origin_span = platform.version.span if platform.version is not None and platform.version.span else span
    return Setting(version, origin_span, f"{which} ships Dovecot {version}")


def _image_tag(model: Model, host_name: str) -> str | None:
    for host in model.hosts:
        if host.name == host_name and host.image is not None:
            return ImageRef.parse(host.image.value).tag or "latest"
    return None


# --------------------------------------------------------------------------------------------
# Versions
# --------------------------------------------------------------------------------------------


def _known_version(model: Model, host: str | None) -> Setting[Version] | None:
    return model.version_of(Product.DOVECOT, host)


def _config_version(root: Parsed) -> Setting[Version] | None:
    """`dovecot_config_version` written at top level of the root (2.4 wants it first)."""
    for statement in root.tree.statements:
        if isinstance(statement, KeyValue) and statement.key == "dovecot_config_version":
            version = Version.parse(statement.value)
            if version is not None:
                return Setting(version, statement.span, "dovecot_config_version")
    return None


def _written_config_version(instance: _Instance) -> Setting[Version] | None:
    written = instance.settings.get("dovecot_config_version")
    if written is None or written.span is None:
        return None
    version = Version.parse(written.value)
    return Setting(version, written.span, "dovecot_config_version") if version is not None else None


def _is_24(version: Setting[Version] | None) -> bool:
    return version is not None and version.value >= Version((2, 4))


# --------------------------------------------------------------------------------------------
# Instance -> model objects
# --------------------------------------------------------------------------------------------


def _add_instance(instance: _Instance, model: Model) -> None:
    if instance.problems:
        # a fragment shared by two roots would otherwise be reported twice
        model.problems.extend(p for p in instance.problems if p not in model.problems)
        model.unknown.add(Product.DOVECOT)
        return
    model.dovecot.append(DovecotConfig(
        id=instance.id,
        settings=dict(instance.settings),
        version=instance.version,
        host=instance.host,
        root_span=instance.root_span,
        include_problems=tuple(dict.fromkeys(instance.include_problems)),
        unread_includes=tuple(dict.fromkeys(instance.unread_includes)),
        sections=tuple(instance.sections),
    ))
    model.listeners.extend(_listeners(instance))


def _listeners(instance: _Instance) -> list[Listener]:
    enabled = set(instance.settings["protocols"].value.replace(",", " ").split())
    trusted = trusted_networks_setting(instance.settings.get("haproxy_trusted_networks"))
    builtins = {(b.service, b.name): b for b in instance.builtins}
    out = []
    for key, builtin in builtins.items():
        if key not in instance.drafts and builtin.protocol in enabled:
            out.append(_listener(instance, None, builtin, trusted))
    for key, draft in instance.drafts.items():
        out.append(_listener(instance, draft, builtins.get(key), trusted))
    return [listener for listener in out if listener is not None]


def _listener(instance: _Instance, draft: _ListenerDraft | None, builtin, trusted) -> Listener | None:
    fields = draft.fields if draft is not None else {}
    port = _port(fields.get("port"), builtin)
    if not port:
        return None  # port 0 (or never given): Dovecot does not listen
    service = draft.service if draft is not None else builtin.service
    name = draft.name if draft is not None else builtin.name
    tls = _tls(instance, fields.get("ssl"), builtin)
    plain_protocol, tls_protocol = SERVICE_PROTOCOLS.get(_service_kind(instance, service), (None, None))
    return Listener(
        product=Product.DOVECOT,
        service=service,
        name=name,
        port=port,
        address=_address(instance, fields),
        span=draft.span if draft is not None else instance.default_span,
        protocol=tls_protocol if tls.value is TlsMode.IMPLICIT else plain_protocol,
        tls=tls,
        accepts_proxy=_accepts_proxy(instance, fields.get("haproxy"), draft),
        trusted_proxies=trusted,
        version=instance.version,
        host=instance.host,
        daemon=service,
        instance=instance.id,
        platform=instance.platform,
    )


def _port(written: Setting[str] | None, builtin) -> int | None:
    if written is None:
        return builtin.port if builtin is not None else None
    text = written.value.strip()
    return int(text) if text.isdigit() and int(text) < 65536 else None


def _tls(instance: _Instance, written: Setting[str] | None, builtin) -> Setting[TlsMode]:
    if written is not None and is_yes(written.value):
        return Setting(TlsMode.IMPLICIT, written.span, "inet_listener ssl = yes")
    if written is None and builtin is not None and builtin.ssl:
        return Setting(TlsMode.IMPLICIT, _default_span(instance), f"{instance.default_origin} (ssl = yes)")
    global_ssl = instance.settings["ssl"]
    if global_ssl.value.strip().lower() == "no":
        return Setting(TlsMode.NONE, global_ssl.span, global_ssl.origin or "ssl = no")
    if written is not None:
        return Setting(TlsMode.STARTTLS, written.span, "inet_listener ssl = no")
    return Setting(TlsMode.STARTTLS, global_ssl.span, global_ssl.origin)


def _default_span(instance: _Instance) -> Span | None:
    """Span for a value nobody wrote: the DMS image line; None for Dovecot's own defaults."""
    return instance.default_span if instance.default_origin != DEFAULT_ORIGIN else None


def _accepts_proxy(instance: _Instance, written: Setting[str] | None, draft) -> Setting[ProxyHeader]:
    if written is not None:
        accepted = ProxyHeader.ANY if is_yes(written.value) else ProxyHeader.NONE
        return Setting(accepted, written.span, f"inet_listener haproxy = {written.value}")
    origin = instance.default_origin if draft is None else DEFAULT_ORIGIN
    return Setting(ProxyHeader.NONE, None, f"{origin} (haproxy = no)")


def _address(instance: _Instance, fields: dict[str, Setting[str]]) -> str | None:
    written = fields.get("address") or fields.get("listen") or instance.settings.get("listen")
    if written is None or written.value.strip() in _ALL_INTERFACES or not written.value.strip():
        return None
    return written.value.strip()


def _service_kind(instance: _Instance, service: str) -> str:
    """The login service a custom service runs (`executable = imap-login`), else its name."""
    if service in SERVICE_PROTOCOLS:
        return service
    executable = instance.settings.get(f"service {service}/executable")
    if executable is not None and executable.value.split():
        return posixpath.basename(executable.value.split()[0])
    return service


# --------------------------------------------------------------------------------------------
# Value helpers (public: rules re-use them)
# --------------------------------------------------------------------------------------------


def is_yes(value: str) -> bool:
    """Dovecot booleans: `yes`, `y` (any case) and `1` are true."""
    return value.strip().lower() in ("yes", "y", "1")


def parse_trusted_networks(text: str) -> tuple[tuple[IPNetwork, ...], str | None]:
    """(networks Dovecot uses, first invalid entry or None).

    Entries are split on spaces and commas; each must be an IP literal with an optional
    `/bits`. At the first invalid entry Dovecot logs an error and ignores it and every later
    entry (facts-rules TR04).
    """
    networks: list[IPNetwork] = []
    for entry in re.split(r"[ ,]+", text.strip()):
        if not entry:
            continue
        network = _network(entry)
        if network is None:
            return tuple(networks), entry
        networks.append(network)
    return tuple(networks), None


def _network(entry: str) -> IPNetwork | None:
    address, _, bits = entry.partition("/")
    if address.startswith("[") and address.endswith("]"):
        address = address[1:-1]
    if "/" in entry and not bits.isdigit():
        return None
    try:
        ip = ipaddress.ip_address(address)
        return ipaddress.ip_network(f"{ip}/{bits or ip.max_prefixlen}", strict=False)
    except ValueError:
        return None


def trusted_networks_setting(written: Setting[str] | None) -> Setting[tuple[IPNetwork, ...]]:
    if written is None:
        return Setting((), None, f"{DEFAULT_ORIGIN} (no trusted networks)")
    networks, invalid = parse_trusted_networks(written.value)
    origin = "haproxy_trusted_networks"
    if invalid is not None:
        origin += f" (invalid entry {invalid!r}: it and every later entry are ignored)"
    return Setting(networks, written.span, origin)


# Dovecot's `protocol <name> { }` filter for a listener's protocol
FILTER_PROTOCOL = {
    MailProtocol.IMAP: "imap", MailProtocol.IMAPS: "imap", MailProtocol.POP3: "pop3", MailProtocol.POP3S: "pop3",
    MailProtocol.SUBMISSION: "submission", MailProtocol.SUBMISSIONS: "submission",
    MailProtocol.SIEVE: "sieve", MailProtocol.LMTP: "lmtp",
}


def setting_for(config: DovecotConfig, name: str, protocol: MailProtocol | None = None) -> Setting[str] | None:
    """The value a login for `protocol` sees: its `protocol X { }` filter, else the top level.

    None when neither is written and Dovecot's default is not one the builder records.
    """
    filtered = FILTER_PROTOCOL.get(protocol) if protocol is not None else None
    if filtered is not None and f"protocol {filtered}/{name}" in config.settings:
        return config.settings[f"protocol {filtered}/{name}"]
    return config.settings.get(name)
