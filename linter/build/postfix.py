"""Postfix syntax trees -> `PostfixConfig` instances and their `Listener`s.

Two kinds of instance:

* a plain Postfix: a `main.cf` and a `master.cf` in the same directory belong together;
* a docker-mailserver (DMS) container: the stock DMS main.cf/master.cf of its version
  (`data/dms_postfix.py`) with the user's override files applied in the order DMS applies them
  at start-up: `postfix-master.cf` (`postconf -P` per line), then `postfix-main.cf` (appended,
  last wins), then the `postconf` commands of `user-patches.sh`.

Every value keeps the span of the line that decided it. Overrides that change nothing (a
`postconf -P` for a service that does not exist, a line DMS skips) are kept as data for rule
MPL504, never reported here.

`expand()` and `effective_setting()` resolve `$name` references and built-in defaults for rules.

Two economies, because a tree of many stacks holds many docker-mailserver containers: every
container of one docker-mailserver release shares the same stock `Setting` objects and the same
`-o` table of each stock service it leaves untouched (they are never changed after the build),
and the Postfix parsers and stock tables are imported only when a Postfix or docker-mailserver
input exists (rules import this module for `expand()` on every run).
"""
from __future__ import annotations

import functools
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Iterator

from mailproxy_lint.build import Model, Platform
from mailproxy_lint.data import postfix_defaults
from mailproxy_lint.model import (
    FileKind,
    Listener,
    MailProtocol,
    PostfixConfig,
    PostfixService,
    Product,
    ProxyHeader,
    Setting,
    SourceFile,
    Span,
    TlsMode,
    Version,
)
from mailproxy_lint.parse import Parsed

if TYPE_CHECKING:
    from mailproxy_lint.data import dms_postfix
    from mailproxy_lint.parse import postfix as syntax
    from mailproxy_lint.parse import user_patches as patches

DMS_PLATFORM = "docker-mailserver"
DMS_KINDS = (FileKind.POSTFIX_MAIN, FileKind.DMS_POSTFIX_MASTER, FileKind.DMS_USER_PATCHES)
WELL_KNOWN_PORTS = {"smtp": 25, "submission": 587, "submissions": 465, "smtps": 465}
PORT_PROTOCOLS = {25: MailProtocol.SMTP, 587: MailProtocol.SUBMISSION, 465: MailProtocol.SUBMISSIONS}
PROXY_PARAMETER = {"postscreen": "postscreen_upstream_proxy_protocol", "smtpd": "smtpd_upstream_proxy_protocol"}


# --------------------------------------------------------------------------------------------
# Instances under construction
# --------------------------------------------------------------------------------------------


@dataclass
class _Service:
    name: str
    type: str
    fields: tuple[str, str, str, str, str]  # private, unprivileged, chroot, wakeup, process_limit
    command: str
    span: Span
    options: dict[str, Setting[str]] = field(default_factory=dict)
    extra_args: list[str] = field(default_factory=list)  # daemon arguments other than -o
    origin: str = ""
    cloned_from: _Service | None = None
    shared_options: bool = False  # `options` is a stock table other containers share

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.type)

    def own_options(self) -> dict[str, Setting[str]]:
        """`options`, ready to edit: a shared stock table is copied first."""
        if self.shared_options:
            self.options, self.shared_options = dict(self.options), False
        return self.options


@dataclass
class _Instance:
    id: str
    main: dict[str, Setting[str]] = field(default_factory=dict)
    services: list[_Service] = field(default_factory=list)
    version: Setting[Version] | None = None
    host: str | None = None
    main_span: Span | None = None
    master_known: bool = True
    unapplied: list[Setting[str]] = field(default_factory=list)  # overrides that changed nothing
    not_analyzed: list[Span] = field(default_factory=list)  # script lines the linter cannot follow
    platform: str | None = None  # "docker-mailserver" for a DMS container

    def service(self, name: str, type_: str) -> _Service | None:
        return next((s for s in self.services if s.key == (name, type_)), None)

    def put(self, service: _Service) -> None:
        """Add an entry; an existing one with the same name/type is replaced (last one wins)."""
        self.services = [s for s in self.services if s.key != service.key] + [service]


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------


def build(parsed: list[Parsed], model: Model) -> None:
    plain: dict[str, dict[FileKind, Parsed]] = defaultdict(dict)
    dms_groups: dict[int | str, list[Parsed]] = defaultdict(list)
    dms_platforms = [p for p in model.platforms if p.name == DMS_PLATFORM]
    for item in parsed:
        source = item.source
        if source.dms_override and source.kind in DMS_KINDS:
            platform = model.platform_for(source) if dms_platforms else None
            key = id(platform) if platform is not None else _directory(source)
            dms_groups[key].append(item)
        elif source.kind in (FileKind.POSTFIX_MAIN, FileKind.POSTFIX_MASTER):
            plain[_directory(source)][source.kind] = item
    found = False
    for instance in _instances(plain, dms_groups, dms_platforms, model):
        config = _freeze(instance)
        model.postfix.append(config)
        clones = {s.name: s.cloned_from.name for s in instance.services if s.cloned_from is not None}
        model.listeners.extend(listeners(config, clones, instance.platform))
        found = True
    if found:
        model.present.add(Product.POSTFIX)


def _instances(plain: dict[str, dict[FileKind, Parsed]], dms_groups: dict[int | str, list[Parsed]],
               dms_platforms: list[Platform], model: Model) -> Iterator[_Instance]:
    """Plain instances by directory, then docker-mailserver containers, then docker-mailserver
    override folders no container claims; one at a time (a tree may hold a thousand)."""
    for directory, files in sorted(plain.items()):
        yield _plain_instance(directory, files, model)
    for platform in dms_platforms:
        yield _dms_instance(platform, dms_groups.pop(id(platform), []), model)
    for directory, files in sorted((k, v) for k, v in dms_groups.items() if isinstance(k, str)):
        yield _dms_instance(None, files, model, directory)


def _directory(source: SourceFile) -> str:
    return str(PurePosixPath(source.path).parent)


# --------------------------------------------------------------------------------------------
# Plain Postfix
# --------------------------------------------------------------------------------------------


def _plain_instance(directory: str, files: dict[FileKind, Parsed], model: Model) -> _Instance:
    instance = _Instance(id=directory, version=model.version_of(Product.POSTFIX, None))
    main = files.get(FileKind.POSTFIX_MAIN)
    if main is not None:
        instance.main_span = Span.whole_file(main.source.path)
        for entry in main.tree.entries:
            instance.main[entry.name] = Setting(entry.value, entry.span, "main.cf")
    master = files.get(FileKind.POSTFIX_MASTER)
    if master is None:
        instance.master_known = False
    else:
        for entry in master.tree.entries:
            instance.put(_from_entry(entry, "master.cf", "master.cf"))
    return instance


def _from_entry(entry: syntax.MasterEntry, origin: str, option_origin: str) -> _Service:
    service = _Service(
        entry.service, entry.type,
        (entry.private, entry.unprivileged, entry.chroot, entry.wakeup, entry.process_limit),
        entry.command, entry.span, origin=origin, extra_args=_other_args(entry.args),
    )
    for option in entry.options:
        service.options[option.name] = Setting(option.value, option.span, option_origin)
    return service


def _other_args(args: tuple[syntax.Word, ...]) -> list[str]:
    """The daemon arguments that are not `-o` overrides (the parser reads those)."""
    other: list[str] = []
    after_flag = False
    for word in args:
        if after_flag:
            after_flag = False
        elif word.text == "-o":
            after_flag = True
        elif not word.text.startswith("-o"):
            other.append(word.text)
    return other


# --------------------------------------------------------------------------------------------
# docker-mailserver
# --------------------------------------------------------------------------------------------


def _dms_instance(platform: Platform | None, files: list[Parsed], model: Model, directory: str | None = None) -> _Instance:
    from mailproxy_lint.data import dms_postfix

    dms_version = platform.version.value if platform is not None and platform.version is not None else None
    line = dms_postfix.release(dms_version)
    host = platform.host if platform is not None else None
    instance = _Instance(
        id=f"{DMS_PLATFORM}:{host}" if host else (directory or DMS_PLATFORM),
        host=host,
        platform=DMS_PLATFORM,
        version=model.version_of(Product.POSTFIX, host) or _dms_postfix_version(platform, line),
    )
    stock_span = _stock_span(platform, files)
    stock = f"docker-mailserver {line.label} stock"
    env = platform.env if platform is not None else {}
    _stock_main(instance, f"{stock} main.cf", env)
    amavis = dms_postfix.amavis_enabled(env["ENABLE_AMAVIS"].value if "ENABLE_AMAVIS" in env else None)
    for stock_service, options in _stock_services(dms_version, amavis, f"{stock} master.cf"):
        instance.put(_from_stock(stock_service, options, stock_span, f"{stock} master.cf"))
    by_kind = {kind: [p for p in files if p.source.kind is kind] for kind in DMS_KINDS}
    for item in by_kind[FileKind.DMS_POSTFIX_MASTER]:
        _apply_override_file(instance, item.tree, f"{stock} master.cf")
    for item in by_kind[FileKind.POSTFIX_MAIN]:
        instance.main_span = Span.whole_file(item.source.path)
        for entry in item.tree.entries:
            instance.main[entry.name] = Setting(entry.value, entry.span, "docker-mailserver postfix-main.cf")
    for item in by_kind[FileKind.DMS_USER_PATCHES]:
        _apply_user_patches(instance, item.tree)
    return instance


def _dms_postfix_version(platform: Platform | None, line: dms_postfix.DmsRelease) -> Setting[Version]:
    detail = f"{line.debian}: Postfix {line.postfix}"
    if platform is not None and platform.version is not None:
        return Setting(line.postfix, platform.version.span, f"docker-mailserver {platform.version.value} image ({detail})")
    return Setting(line.postfix, platform.span if platform else None,
                   f"docker-mailserver image of unknown version, taken as the newest release {line.label} ({detail})")


def _stock_span(platform: Platform | None, files: list[Parsed]) -> Span:
    """Where findings about untouched stock services point: the override file a user would edit
    (postfix-master.cf), else the container's image line, else another docker-mailserver file."""
    paths = sorted(p.source.path for p in files if p.source.kind is FileKind.DMS_POSTFIX_MASTER)
    if paths:
        return Span.whole_file(paths[0])
    if platform is not None and platform.span is not None:
        return platform.span
    for kind in (FileKind.DMS_USER_PATCHES, FileKind.POSTFIX_MAIN):
        paths = sorted(p.source.path for p in files if p.source.kind is kind)
        if paths:
            return Span.whole_file(paths[0])
    return Span.whole_file(".")


def _stock_main(instance: _Instance, origin: str, env: dict[str, Setting[str]]) -> None:
    from mailproxy_lint.data import dms_postfix

    instance.main.update(_stock_main_settings(origin))
    for variable, names in dms_postfix.ENV_TO_MAIN.items():
        if variable in env and env[variable].value.strip():
            setting = env[variable]
            for name in names:
                instance.main[name] = Setting(setting.value.strip(), setting.span, f"docker-mailserver {variable}")


@functools.cache
def _stock_main_settings(origin: str) -> dict[str, Setting[str]]:
    """The stock main.cf parameters as settings, made once per release line (never edited)."""
    from mailproxy_lint.data import dms_postfix

    return {name: Setting(value, None, origin) for name, value in dms_postfix.MAIN.items()}


@functools.cache
def _stock_services(dms_version: Version | None, amavis: bool, origin: str,
                    ) -> tuple[tuple[dms_postfix.StockService, dict[str, Setting[str]]], ...]:
    """The stock master.cf services of a release, each with its `-o` table, made once per
    release (never edited: a container that changes one copies it first)."""
    from mailproxy_lint.data import dms_postfix

    return tuple((stock, {name: Setting(value, None, origin) for name, value in stock.options})
                 for stock in dms_postfix.master_services(dms_version, amavis))


def _from_stock(stock: dms_postfix.StockService, options: dict[str, Setting[str]], span: Span,
                origin: str) -> _Service:
    return _Service(
        stock.service, stock.type,
        (stock.private, stock.unprivileged, stock.chroot, stock.wakeup, stock.process_limit),
        stock.command, span, options=options, origin=origin, shared_options=True,
    )


def _apply_override_file(instance: _Instance, tree: syntax.OverrideFile, stock: str) -> None:
    for line in tree.lines:
        if line.skipped is not None:
            instance.unapplied.append(Setting(line.text, line.span, line.skipped))
        elif line.applies:
            _set_option(instance, line.service, line.type, line.parameter, line.value, line.span,
                        "docker-mailserver postfix-master.cf", line.text, stock)


def _set_option(instance: _Instance, service_name: str, type_: str, parameter: str, value: str | None,
                span: Span, origin: str, text: str, where: str) -> None:
    """`postconf -P` (value None: `-PX`): edit one service's `-o`, or record that nothing matched."""
    service = instance.service(service_name, type_)
    if service is None:
        instance.unapplied.append(Setting(
            text, span, f'postconf: unmatched service_name/type: no "{service_name}/{type_}" entry in {where}',
        ))
        return
    if value is None:
        service.own_options().pop(parameter, None)
    else:
        service.own_options()[parameter] = Setting(value, span, origin)


def _apply_user_patches(instance: _Instance, tree: patches.UserPatches) -> None:
    from mailproxy_lint.parse import user_patches as patches

    where = "master.cf at that point of user-patches.sh"
    for command in tree.commands:
        if isinstance(command, patches.MainEdit):
            if command.value is None:
                instance.main.pop(command.name, None)
            else:
                instance.main[command.name] = Setting(command.value, command.span, "user-patches.sh postconf -e")
        elif isinstance(command, patches.ServiceParameterEdit):
            _set_option(instance, command.service, command.type, command.parameter, command.value, command.span,
                        "user-patches.sh postconf -P", command.text, where)
        elif isinstance(command, patches.ServiceEdit):
            _edit_service(instance, command)
        elif isinstance(command, patches.ServiceClone):
            _clone_service(instance, command)
    instance.not_analyzed.extend(item.span for item in tree.not_analyzed)


def _edit_service(instance: _Instance, command: patches.ServiceEdit) -> None:
    from mailproxy_lint.parse import postfix as syntax

    if command.action != "set":  # -MX removes the entry, -M# comments it out: both disable it
        instance.services = [s for s in instance.services if s.key != (command.service, command.type)]
        return
    entries, problems = syntax.entries_from_text(command.entry or "", command.span)
    if problems or len(entries) != 1:
        reason = problems[0].message if problems else "not exactly one master.cf entry"
        instance.unapplied.append(Setting(command.entry or "", command.span, f"postconf -M entry not usable: {reason}"))
        return
    instance.put(_from_entry(entries[0], "user-patches.sh postconf -M", "user-patches.sh postconf -M"))


def _clone_service(instance: _Instance, command: patches.ServiceClone) -> None:
    from mailproxy_lint.parse import postfix as syntax

    source = instance.service(command.service, command.type)
    if source is None:  # postconf -M prints nothing (a warning), so nothing is appended
        instance.unapplied.append(Setting(
            f"postconf -M {command.service}/{command.type}", command.span,
            f'postconf: unmatched request: no "{command.service}/{command.type}" entry to copy',
        ))
        return
    lines = [_apply_sed(line, command.substitutions) for line in render_entry(source, command.folded)]
    entries, problems = syntax.entries_from_text("\n".join(lines), command.span)
    origin = f"user-patches.sh copy of {command.service}/{command.type}"
    for entry in entries:
        clone = _from_entry(entry, origin, origin)
        clone.cloned_from = source
        # options the sed left untouched are still the source's: keep where they were decided
        for name, setting in clone.options.items():
            kept = source.options.get(name)
            if kept is not None and kept.value == setting.value:
                clone.options[name] = kept
        instance.put(clone)
    if problems:
        instance.unapplied.append(Setting("\n".join(lines), command.span, f"copied entry does not parse: {problems[0].message}"))


def render_entry(service: _Service, folded: bool) -> list[str]:
    """The entry as `postconf -M` prints it (`-Mf`: one `-o` per line), for sed to edit."""
    first = " ".join([f"{service.name:<10}", f"{service.type:<5}", *(f"{f:<7}" for f in service.fields), service.command])
    first = " ".join([first, *service.extra_args]).rstrip()
    options = [_render_option(name, setting.value) for name, setting in service.options.items()]
    if folded:
        return [first, *(f"    {option}" for option in options)]
    return [" ".join([first, *options])]


def _render_option(name: str, value: str) -> str:
    if re.search(r"\s", value) or value.startswith("{"):
        return f"-o {{ {name} = {value} }}"
    return f"-o {name}={value}"


def _apply_sed(line: str, substitutions: tuple[patches.SedSubstitution, ...]) -> str:
    for substitution in substitutions:
        line = substitution.apply(line)
    return line


# --------------------------------------------------------------------------------------------
# Freezing and listeners
# --------------------------------------------------------------------------------------------


def _freeze(instance: _Instance) -> PostfixConfig:
    # the option tables are handed over, not copied: the instance is dropped after this
    services = tuple(
        PostfixService(s.name, s.type, s.command, s.span, s.options, s.origin) for s in instance.services
    )
    return PostfixConfig(
        id=instance.id, main=dict(instance.main), services=services, version=instance.version,
        host=instance.host, main_span=instance.main_span, master_known=instance.master_known,
        platform=instance.platform, unapplied=tuple(instance.unapplied), not_analyzed=tuple(instance.not_analyzed),
    )


def listeners(config: PostfixConfig, clones: dict[str, str] | None = None, platform: str | None = None) -> list[Listener]:
    """A `Listener` for every `inet` service of the config.

    `clones` maps a service name to the service it was copied from (user-patches.sh), whose
    protocol a copy on an unusual port inherits.
    """
    return [_listener(config, service, clones or {}, platform) for service in config.services if service.type == "inet"]


def _listener(config: PostfixConfig, service: PostfixService, clones: dict[str, str], platform: str | None) -> Listener:
    address, port = inet_address(service.name)
    return Listener(
        product=Product.POSTFIX,
        service=service.name,
        name=service.name,
        port=port,
        address=address,
        span=service.span,
        protocol=_protocol(config, service, port, clones),
        tls=_tls(config, service),
        accepts_proxy=_accepts_proxy(config, service),
        trusted_proxies=None,
        version=config.version,
        host=config.host,
        daemon=service.command,
        instance=config.id,
        platform=platform,
    )


def inet_address(name: str) -> tuple[str | None, int | None]:
    """(host, port) of an inet service name: `25`, `smtp`, `127.0.0.1:10025`, `[::1]:10026`."""
    host: str | None = None
    port_text = name
    if name.startswith("[") and "]:" in name:
        host, port_text = name[1:].split("]:", 1)
    elif ":" in name:
        host, port_text = name.rsplit(":", 1)
    if port_text.isdigit():
        return host or None, int(port_text)
    return host or None, WELL_KNOWN_PORTS.get(port_text)


def _protocol(config: PostfixConfig, service: PostfixService, port: int | None, clones: dict[str, str],
              depth: int = 0) -> MailProtocol:
    if port in PORT_PROTOCOLS:
        return PORT_PROTOCOLS[port]
    source = next((s for s in config.services if s.name == clones.get(service.name) and s.type == "inet"), None)
    if source is not None and depth < 5:
        return _protocol(config, source, inet_address(source.name)[1], clones, depth + 1)
    syslog = expand(config, effective_setting(config, service, "syslog_name").value, service)
    if "submissions" in syslog or "smtps" in syslog:
        return MailProtocol.SUBMISSIONS
    if "submission" in syslog:
        return MailProtocol.SUBMISSION
    if service.command == "smtpd" and _is_yes(expand(config, effective_setting(config, service, "smtpd_tls_wrappermode").value, service)):
        return MailProtocol.SUBMISSIONS
    return MailProtocol.SMTP


def _tls(config: PostfixConfig, service: PostfixService) -> Setting[TlsMode]:
    if service.command != "smtpd":
        return Setting(TlsMode.STARTTLS, None, f"{service.command} has no TLS wrapper mode")
    setting = effective_setting(config, service, "smtpd_tls_wrappermode")
    mode = TlsMode.IMPLICIT if _is_yes(expand(config, setting.value, service)) else TlsMode.STARTTLS
    return Setting(mode, setting.span, setting.origin)


def _accepts_proxy(config: PostfixConfig, service: PostfixService) -> Setting[ProxyHeader]:
    parameter = PROXY_PARAMETER.get(service.command)
    if parameter is None:
        return Setting(ProxyHeader.NONE, None, f"{service.command} does not read the PROXY protocol")
    setting = effective_setting(config, service, parameter)
    value = expand(config, setting.value, service).strip()
    header = ProxyHeader.ANY if value == "haproxy" else ProxyHeader.NONE
    return Setting(header, setting.span, setting.origin)


def _is_yes(value: str) -> bool:
    return value.strip().lower() in ("yes", "true", "1")


# --------------------------------------------------------------------------------------------
# Values as a daemon sees them
# --------------------------------------------------------------------------------------------


def effective_setting(config: PostfixConfig, service: PostfixService | None, name: str) -> Setting[str]:
    """The raw value a service sees: its `-o`, else main.cf, else the Postfix default ("" if unknown)."""
    found = config.effective(service, name)
    if found is not None:
        return found
    version = config.version.value if config.version is not None else None
    value = postfix_defaults.default(name, version)
    shown = f"Postfix {version}" if version is not None else "Postfix"
    return Setting(value or "", None, f"{shown} default")


def expand(config: PostfixConfig, value: str, service: PostfixService | None = None) -> str:
    """`value` with `$name`, `${name}`, `$(name)`, `${name?text}`, `${name:text}` and `$$` resolved.

    Names resolve as the daemon of `service` sees them (its `-o`, then main.cf, then the
    built-in default). Forms this helper does not know (comparisons, functions) stay as written.
    """
    return _expand(config, service, value, 0)


_NAME = re.compile(r"[A-Za-z0-9_]+")


def _expand(config: PostfixConfig, service: PostfixService | None, text: str, depth: int) -> str:
    if depth > 20 or "$" not in text:
        return text
    out: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char != "$" or index + 1 >= len(text):
            out.append(char)
            index += 1
            continue
        following = text[index + 1]
        if following == "$":
            out.append("$")
            index += 2
        elif following in "{(":
            close = _matching(text, index + 1)
            if close < 0:
                out.append(text[index:])
                break
            out.append(_expand_braced(config, service, text[index + 2:close], text[index:close + 1], depth))
            index = close + 1
        else:
            match = _NAME.match(text, index + 1)
            if match is None:
                out.append(char)
                index += 1
                continue
            out.append(_lookup(config, service, match.group(), depth))
            index = match.end()
    return "".join(out)


def _expand_braced(config: PostfixConfig, service: PostfixService | None, body: str, whole: str, depth: int) -> str:
    match = re.match(r"^\s*([A-Za-z0-9_]+)\s*(?:([?:])(.*))?$", body, re.S)
    if match is None:
        return whole  # a comparison or function: not evaluated here
    name, operator, rest = match.groups()
    value = _lookup(config, service, name, depth)
    if operator is None:
        return value
    when_set, when_empty = _alternatives(rest.strip())
    chosen = (when_set if value else when_empty) if operator == "?" else (value if value else when_set)
    return _expand(config, service, chosen, depth + 1)


def _alternatives(rest: str) -> tuple[str, str]:
    """`{a}:{b}`, `{a}:b`, `{a}` or raw `a` -> (a, b)."""
    if not rest.startswith("{"):
        return rest, ""
    close = _matching(rest, 0)
    if close < 0:
        return rest, ""
    first = rest[1:close].strip()
    tail = rest[close + 1:].strip()
    if tail.startswith(":"):
        tail = tail[1:].strip()
        if tail.startswith("{") and _matching(tail, 0) == len(tail) - 1:
            tail = tail[1:-1].strip()
        return first, tail
    return first, ""


def _matching(text: str, open_index: int) -> int:
    opening = text[open_index]
    closing = "}" if opening == "{" else ")"
    level = 0
    for index in range(open_index, len(text)):
        if text[index] == opening:
            level += 1
        elif text[index] == closing:
            level -= 1
            if level == 0:
                return index
    return -1


def _lookup(config: PostfixConfig, service: PostfixService | None, name: str, depth: int) -> str:
    return _expand(config, service, effective_setting(config, service, name).value, depth + 1)
