"""MPL002: a setting, keyword or label key the product does not know.

Every name a file writes is compared with the product's own table (`data/known_names.py`:
`postfix_parameters.txt`, `dovecot23_settings.txt`, `dovecot24_settings.txt`,
`haproxy_keywords.txt`; `data/traefik_labels.py`), with a "did you mean" from the same table.
What the product does decides the severity: doveconf and haproxy refuse to start (error),
Traefik skips every router of the container (error), postconf only warns that the parameter is
unused and drops it (warning).

The tables were made from one release line of each product (Postfix 3.7, Dovecot 2.3.19 and
2.4, HAProxy 2.6) plus a hand-written Traefik table. When the deployed release is newer than the
table (Dovecot 2.5, say), or unknown where that matters, a name missing from the table may simply
be newer than the table; the rule then reports only names that look like a misspelling of a
known name. Dovecot 2.4 is read the way 2.4 reads it: every setting is global, and a key inside
a filter is tried with the filter's prefix (`port` in `inet_listener imap { }` is
`inet_listener_port`). Names that are someone else's finding are left alone: Dovecot 2.3 names
that 2.4 renamed, and `plugin { }` keys, under 2.4 (MPL701), Traefik labels the compose builder
already reported as undecodable (MPL001).
"""
from __future__ import annotations

import difflib
import re
from typing import Iterable, Iterator

from mailproxy_lint.api import (
    Context,
    DovecotConfig,
    Finding,
    PostfixConfig,
    Product,
    Setting,
    Severity,
    Span,
    Version,
    WrittenName,
    rule,
)
from mailproxy_lint.data import known_names, traefik_labels
from mailproxy_lint.data.dovecot_renames import REMOVED_SECTIONS, removed_section, rename_for

# Dovecot sections whose keys are free-form (plugin settings, dict URIs)
DOVECOT_FREE_FORM = frozenset({"plugin", "dict"})
# Dovecot filters: they hold global settings
DOVECOT_FILTERS = frozenset({"protocol", "local", "remote", "local_name"})
_PATH_NAMED = frozenset({"unix_listener", "fifo_listener", "dict_map"})  # names that may hold `/`
_REFERENCE = re.compile(r"\$(?:\{|\()?\s*([A-Za-z0-9_]+)")


@rule("MPL002", "unknown-setting", Severity.ERROR,
      summary="A setting, keyword or label key the product does not know",
      tags=("input",))
def unknown_setting(ctx: Context):
    """## Why it matters
    A misspelt name is not a harmless no-op. Dovecot refuses to start on a setting it does not
    know (`Unknown setting: haproxy_trusted_network`), and so does HAProxy on a keyword
    (`unknown keyword 'timout' in 'defaults' section`). Traefik reads a container's labels in one
    go: one key it cannot place (`field not found, node: entrypoint`) makes it skip every router
    and service of that container, so all its ports go dark. Postfix only warns (`unused
    parameter: smtpd_upstream_proxy_protocl=haproxy`) and ignores the line, so the setting you
    meant is silently not applied; docker-mailserver even drops it from main.cf.

    The names come from each product's own tables (`postconf -d`, `doveconf -a` of 2.3, the
    settings Dovecot 2.4's sources define, HAProxy's keyword list, Traefik's label structure).
    Under Dovecot 2.4 a key inside a filter counts under its prefixed name too (`port` inside
    `inet_listener imap { }` is `inet_listener_port`), as doveconf looks it up. When the deployed
    release is newer than the table, or unknown, only names that look like a misspelling of a
    known one are reported.
    Postfix names used as `$name` elsewhere, listed in `smtpd_restriction_classes`, or made of a
    master.cf service name and a per-service suffix (`dovecot_destination_recipient_limit`)
    are user-defined and fine; keys inside Dovecot `plugin { }` are free-form.

    ## Bad
    ```
    # dovecot.conf
    haproxy_trusted_network = 172.16.0.10
    # main.cf
    smtpd_upstream_proxy_protocl = haproxy
    # compose.yaml labels
    - traefik.tcp.routers.smtp.entrypoint=smtp
    ```

    ## Good
    ```
    haproxy_trusted_networks = 172.16.0.10
    smtpd_upstream_proxy_protocol = haproxy
    - traefik.tcp.routers.smtp.entrypoints=smtp
    ```

    ## Fix
    Use the name the message suggests, or check the product's documentation for the release you
    run. If the name is new in a release newer than the one detected, set the image tag (or
    `compatibility_level`, `dovecot_config_version`) so the linter knows the version.
    """
    seen: set[tuple[Span, str]] = set()
    checks = (_postfix(ctx), _dovecot(ctx), _haproxy(ctx), _traefik(ctx))
    for finding in (f for check in checks for f in check):
        key = (finding.span, finding.message)
        if key not in seen:
            seen.add(key)
            yield finding


def suggestion(name: str, known: Iterable[str], cutoff: float = 0.75) -> str | None:
    """The closest known name, or None (difflib ratio, as a "did you mean")."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=cutoff)
    return close[0] if close else None


def _did_you_mean(match: str | None) -> str:
    return f"; did you mean `{match}`?" if match else ""


def _covers(table: Version, deployed: Setting[Version] | None) -> bool:
    """True when the table was built from this release line or a newer one."""
    if deployed is None:
        return False
    return Version(deployed.value.parts[:2]) <= table


# --------------------------------------------------------------------------------------------
# Postfix
# --------------------------------------------------------------------------------------------


def _postfix(ctx: Context) -> Iterator[Finding]:
    table = known_names.postfix()
    for config in ctx.model.postfix:
        # without master.cf a name may be a macro that master.cf uses: only misspellings then
        complete = _covers(table.built_from, config.version) and config.master_known
        defined = _user_defined(config)
        services = {s.name: s.command for s in config.services}
        seen: set[int] = set()
        for name, setting, where in _postfix_names(config):
            if id(setting) in seen or setting.span is None:
                continue
            seen.add(id(setting))
            if name in defined or table.pattern_for(name, services) is not None:
                continue
            yield from _postfix_name(ctx, config, table, name, setting, where, complete)


def _postfix_names(config: PostfixConfig) -> Iterator[tuple[str, Setting[str], str]]:
    for name, setting in config.main.items():
        yield name, setting, "main.cf"
    for service in config.services:
        for name, setting in service.options.items():
            yield name, setting, f"master.cf service {service.name!r}"


def _user_defined(config: PostfixConfig) -> set[str]:
    """Names postconf counts as user-defined: referenced as `$name`, or restriction classes."""
    values = [s.value for s in config.main.values()]
    values += [s.value for service in config.services for s in service.options.values()]
    defined = {m.group(1) for value in values for m in _REFERENCE.finditer(value)}
    classes = config.main.get("smtpd_restriction_classes")
    if classes is not None:
        defined |= {c for c in re.split(r"[\s,]+", classes.value) if c and not c.startswith("$")}
    return defined


def _postfix_name(ctx: Context, config: PostfixConfig, table, name: str, setting: Setting[str], where: str,
                  complete: bool) -> Iterator[Finding]:
    if name in table.since:
        since = table.since[name]
        deployed = config.version
        # a patch-level release means a backport to several lines: not comparable
        if since is not None and len(since.parts) == 2 and deployed is not None and deployed.value < since:
            yield ctx.finding(
                setting.span,
                f"`{name}` ({where}) exists only from Postfix {since} on, and this is Postfix "
                f"{deployed.value} ({deployed.describe_origin()}): postconf warns 'unused parameter' "
                f"and the setting has no effect",
                severity=Severity.WARNING,
            )
        return
    match = suggestion(name, table.since)
    # a name of one's own (`mua_sender_restrictions`, used as `$mua_sender_restrictions` by a
    # master.cf the scan does not hold) often resembles a parameter; a misspelling keeps the
    # parameter's daemon prefix
    if not complete and (match is None or match.split("_", 1)[0] != name.split("_", 1)[0]):
        return
    dropped = " (docker-mailserver's `postconf -n` also drops it from main.cf)" if config.platform else ""
    yield ctx.finding(
        setting.span,
        f"`{name}` ({where}) is not a Postfix parameter: postconf warns 'unused parameter: "
        f"{name}={setting.value.strip()}' and the setting has no effect{dropped}{_did_you_mean(match)}",
        severity=Severity.WARNING,
    )


# --------------------------------------------------------------------------------------------
# Dovecot
# --------------------------------------------------------------------------------------------


def _dovecot(ctx: Context) -> Iterator[Finding]:
    for config in ctx.model.dovecot:
        is_24 = is_dovecot_24(config)
        exact = is_24 and _table_covers_24(config)
        bad_sections = set()
        for section in config.sections:
            if section.origin or section.span is None:
                continue
            if is_24:
                finding = _dovecot24_section(ctx, config, section, exact)
            else:  # without any version a file may be a 2.4 fragment, whose filters 2.3 lacks
                finding = _dovecot_section(ctx, section, config.version is None)
            if finding is not None:
                bad_sections.add(section.value)
                yield finding
        for key, setting in config.settings.items():
            if setting.span is None or setting.origin:
                continue  # defaults and docker-mailserver stock values
            if any(key.startswith(p + "/") for p in bad_sections):
                continue
            *frames, name = split_path(key)
            if is_24:
                finding = _dovecot24_setting(ctx, config, key, frames, name, setting, exact)
            else:
                finding = _dovecot_setting(ctx, config, frames, name, setting)
            if finding is not None:
                yield finding


def is_dovecot_24(config: DovecotConfig) -> bool:
    """2.4 rules apply: `dovecot_config_version` is written, the known version is 2.4+, or, the
    version being unknown, the files use names only 2.4 has (a fragment of a 2.4 configuration).
    Keys of 2.3's free-form `plugin { }` and `dict { }` sections say nothing about the version."""
    written = config.settings.get("dovecot_config_version")
    if written is not None and written.span is not None:
        return True
    if config.version is not None:
        return config.version.value >= Version((2, 4))
    table, table_24 = known_names.dovecot23(), known_names.dovecot24()
    names = set()
    for key, setting in config.settings.items():
        *frames, name = split_path(key)
        if setting.span is not None and not setting.origin and section_kind(frames) is not None:
            names.add(name)
    names |= {split_path(s.value + "/-")[-2].split(" ", 1)[0] for s in config.sections} - DOVECOT_FREE_FORM
    return any(n in table_24.settings and not table.known_anywhere(n) for n in names)


def _table_covers_24(config: DovecotConfig) -> bool:
    """The 2.4 table describes this configuration completely: it is for Dovecot 2.4 (or, no
    version being known, for the current 2.4 line). A newer release may have names the table
    lacks, so then only misspellings are reported."""
    if config.version is None:
        return True
    return Version(config.version.value.parts[:2]) <= known_names.dovecot24().built_from


def split_path(key: str) -> list[str]:
    """`service auth/unix_listener login/auth/mode` -> its frames and name.

    Builder keys join frames with `/`, and listener paths and 2.4 `dict_map` patterns may
    contain `/` themselves (`unix_listener login/director`): after such a frame, a piece without
    a section name of its own, and not the last, rejoins the name before it.
    """
    parts: list[str] = []
    pieces = key.split("/")
    for index, piece in enumerate(pieces):
        last = index == len(pieces) - 1
        # only listener paths and dict_map patterns hold `/` (`unix_listener login/director`),
        # and what follows them is their setting or a named section, never an unnamed one
        continues_name = parts and parts[-1].split(" ", 1)[0] in _PATH_NAMED and " " not in piece
        if continues_name and not last:
            parts[-1] += "/" + piece
        else:
            parts.append(piece)
    return parts


def section_kind(frames: list[str]) -> str | None:
    """The 2.3 table section a setting inside `frames` belongs to: "-" for global, None if free-form."""
    kinds = [f.split(" ", 1)[0] for f in frames]
    if any(k in DOVECOT_FREE_FORM for k in kinds):
        return None
    own = [k for k in kinds if k not in DOVECOT_FILTERS and k != "group"]
    return own[-1] if own else "-"


# ---- Dovecot 2.3 (and configurations without any version or 2.4 name) ----


def _dovecot_section(ctx: Context, section: Setting[str], lenient: bool) -> Finding | None:
    frames = split_path(section.value + "/-")[:-1]
    kind = frames[-1].split(" ", 1)[0]
    if section_kind(frames[:-1]) is None or kind in DOVECOT_FREE_FORM | DOVECOT_FILTERS or kind == "group":
        return None
    table = known_names.dovecot23()
    sections = {n for names in table.settings.values() for n, t in names.items() if t == "section"}
    if kind in sections or (lenient and kind in known_names.dovecot24().settings):
        return None
    match = suggestion(kind, sections | DOVECOT_FREE_FORM | DOVECOT_FILTERS)
    return ctx.finding(
        section.span,
        f"`{kind} {{` is not a Dovecot section: doveconf stops with 'Unknown setting: {kind}' (or 'Unknown "
        f"section name') and Dovecot does not start{_did_you_mean(match)}",
    )


def _dovecot_setting(ctx: Context, config: DovecotConfig, frames: list[str], name: str,
                     setting: Setting[str]) -> Finding | None:
    kind = section_kind(frames)
    if kind is None:
        return None
    table = known_names.dovecot23()
    if kind not in table.settings:
        return None  # inside a section the table does not describe
    known = table.settings[kind]
    if name in known and known[name] != "section":
        return None
    if known_names.dovecot24().resolve(frames, name) is not None:
        return _dovecot_24_name_under_23(ctx, config, name, setting)
    where = "" if kind == "-" else f" inside `{kind} {{ }}`"
    candidates = [n for n, t in known.items() if t != "section"]
    return ctx.finding(
        setting.span,
        f"`{name}`{where} is not a Dovecot {table.built_from.parts[0]}.{table.built_from.parts[1]} setting: doveconf "
        f"stops with 'Unknown setting: {name}' and Dovecot does not start{_did_you_mean(suggestion(name, candidates))}",
    )


def _dovecot_24_name_under_23(ctx: Context, config: DovecotConfig, name: str, setting: Setting[str]) -> Finding | None:
    """A 2.4 name in a file without `dovecot_config_version`: wrong only when 2.3 is known to run."""
    if config.version is None:
        return None  # a fragment of a 2.4 configuration, most likely
    return ctx.finding(
        setting.span,
        f"`{name}` is a Dovecot 2.4 setting, and this is Dovecot {config.version.value} "
        f"({config.version.describe_origin()}): doveconf stops with 'Unknown setting: {name}'",
    )


# ---- Dovecot 2.4 ----


def _frames_24(frames: list[str]) -> str:
    """"ok" when keys inside `frames` are settings; "free" inside a list of free keys
    (`import_environment { }`) or a removed `plugin { }` (MPL701's); "unknown" inside a section
    2.4 does not know (reported on its header)."""
    table = known_names.dovecot24()
    for index, frame in enumerate(frames):
        kind = frame.split(" ", 1)[0]
        if kind in DOVECOT_FILTERS or kind == "group":
            continue
        if kind in REMOVED_SECTIONS:
            return "free"
        value_type = table.type_of(frames[:index], kind)
        if value_type is None:
            return "unknown"
        if value_type in ("strlist", "boollist"):
            return "free"
    return "ok"


def dovecot24_value_type(frames: list[str], name: str) -> str | None:
    """The 2.4 type of the setting `name` inside `frames` (for MPL004's value checks), or None
    when it is unknown or a free key (`import_environment { TZ = ... }`)."""
    if _frames_24(frames) != "ok":
        return None
    return known_names.dovecot24().type_of(frames, name)


def _short_names(prefix: str | None) -> set[str]:
    """Every 2.4 name, and inside a filter also the names without its prefix (`port`)."""
    names = set(known_names.dovecot24().settings)
    if prefix is not None:
        names |= {n[len(prefix) + 1:] for n in names if n.startswith(prefix + "_")}
    return names


def _dovecot24_section(ctx: Context, config: DovecotConfig, section: Setting[str], exact: bool) -> Finding | None:
    frames = split_path(section.value + "/-")[:-1]
    kind = frames[-1].split(" ", 1)[0]
    if kind in DOVECOT_FILTERS or kind == "group" or kind in REMOVED_SECTIONS or _frames_24(frames[:-1]) != "ok":
        return None
    table = known_names.dovecot24()
    if table.resolve(frames[:-1], kind) is not None:
        return None
    prefix = table.prefix(frames[:-1])
    openers = {n for n in _short_names(prefix) if table.type_of(frames[:-1], n) in known_names.DOVECOT24_SECTION_TYPES}
    match = suggestion(kind, openers | DOVECOT_FILTERS)
    if not exact and match is None:
        return None
    return ctx.finding(
        section.span,
        f"`{kind} {{` is not a Dovecot {_release_24(config)} filter or list{_inside(frames[:-1])}: doveconf stops "
        f"with 'Unknown section name: {kind}' and Dovecot does not start{_did_you_mean(match)}",
    )


def _dovecot24_setting(ctx: Context, config: DovecotConfig, key: str, frames: list[str], name: str,
                       setting: Setting[str], exact: bool) -> Finding | None:
    """Under 2.4 every unknown name is reported (only misspellings when the release is newer than
    the table); 2.3 names 2.4 renamed, and `plugin { }` keys, are MPL701's (removed syntax)."""
    if name.startswith("@") or _frames_24(frames) != "ok":
        return None  # `@mysql = default` includes a group
    if rename_for(key) is not None or removed_section(key) is not None:
        return None
    table = known_names.dovecot24()
    if table.resolve(frames, name) is not None:
        return None
    match = suggestion(name, _short_names(table.prefix(frames)))
    if not exact:
        if match is None:
            return None
        return ctx.finding(
            setting.span,
            f"`{name}`{_inside(frames)} is not a Dovecot 2.4 setting, and it looks misspelt ({_release_24(config)} "
            f"may add names this linter does not know): doveconf stops with 'Unknown setting: {name}'"
            f"{_did_you_mean(match)}",
        )
    old = " (a Dovecot 2.3 name that 2.4 no longer has)" if known_names.dovecot23().known_anywhere(name) else ""
    return ctx.finding(
        setting.span,
        f"`{name}`{_inside(frames)} is not a Dovecot {_release_24(config)} setting{old}: doveconf stops with "
        f"'Unknown setting: {name}' and Dovecot does not start{_did_you_mean(match)}",
    )


def _inside(frames: list[str]) -> str:
    own = [f for f in frames if f.split(" ", 1)[0] not in DOVECOT_FILTERS]
    return f" inside `{own[-1].split(' ', 1)[0]} {{ }}`" if own else ""


def _release_24(config: DovecotConfig) -> str:
    return str(config.version.value) if config.version is not None else "2.4"


# --------------------------------------------------------------------------------------------
# HAProxy
# --------------------------------------------------------------------------------------------

_PROXY_KINDS = ("defaults", "frontend", "listen", "backend")


def _haproxy(ctx: Context) -> Iterator[Finding]:
    names = [n for n in ctx.model.names if n.product is Product.HAPROXY]
    if not names:
        return
    table = known_names.haproxy()
    complete = _covers(table.built_from, ctx.model.version_of(Product.HAPROXY, None))
    for written in names:
        finding = _haproxy_name(ctx, table, written, complete)
        if finding is not None:
            yield finding


def _haproxy_name(ctx: Context, table, written: WrittenName, complete: bool) -> Finding | None:
    kind = written.section
    if kind not in table.keywords:
        return None  # a section kind the table does not cover (cache, ring, ...)
    in_proxy = kind in _PROXY_KINDS
    if written.name.startswith("option "):
        option = written.name.split(" ", 1)[1]
        known = table.options.get(kind, frozenset())
        if not in_proxy or option in known:
            return None
        match = suggestion(option, known)
        if not complete and match is None:
            return None
        return ctx.finding(
            written.span,
            f"`option {option}` is not an HAProxy option in a {kind} section: haproxy refuses the configuration "
            f"('unknown option '{option}'.'){_did_you_mean(match)}",
        )
    known = frozenset().union(*(table.keywords[k] for k in _PROXY_KINDS)) if in_proxy else table.keywords[kind]
    if written.name in known:
        return None
    match = suggestion(written.name, known)
    if not complete and match is None:
        return None
    return ctx.finding(
        written.span,
        f"`{written.name}` is not an HAProxy keyword in a {kind} section: haproxy refuses the configuration "
        f"(\"unknown keyword '{written.name}' in '{kind}' section\"){_did_you_mean(match)}",
    )


# --------------------------------------------------------------------------------------------
# Traefik labels
# --------------------------------------------------------------------------------------------


def _traefik(ctx: Context) -> Iterator[Finding]:
    reported = {(p.span.path, p.span.line) for p in ctx.model.problems}
    for written in ctx.model.names:
        if written.product is not Product.TRAEFIK or not written.name.startswith("traefik."):
            continue  # a wrong-case root is a decode error the compose builder reports
        if (written.span.path, written.span.line) in reported:
            continue
        unknown = traefik_labels.unknown_segment(written.name)
        if unknown is None:
            continue
        index, expected = unknown
        segment = written.name.split(".")[index]
        match = suggestion(segment.split("[", 1)[0].lower(), expected, cutoff=0.6)
        yield ctx.finding(
            written.span,
            f"Traefik label `{written.name}`: `{segment}` is not a field here (Traefik: field not found, node: "
            f"{segment}), so Traefik skips every router and service of container {written.context!r}"
            f"{_did_you_mean(match)}",
        )
