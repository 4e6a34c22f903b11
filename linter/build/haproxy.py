"""HAProxy sections -> entrypoints (`bind`), routes (`use_backend`/`default_backend`/`listen`)
and upstreams (`server`), with every inherited value traced back to the line that set it.

HAProxy semantics applied here (facts-formats §5, HAProxy configuration.txt §4):

* A proxy takes its settings from the `defaults` section named by `from`, else from the last
  `defaults` section above it. A `defaults` section without `from` starts from HAProxy's
  built-in values; with `from` it starts from that section. Own lines override inherited ones.
* `default-server` lines apply to the `server` lines written after them in the same section,
  on top of the `default-server` lines of the inherited `defaults`.
* The client side of a route (`timeout client`, binds, `mode`) comes from the frontend; the
  server side (`timeout server`, `timeout tunnel`, servers) from the backend. In TCP mode
  `timeout tunnel` replaces both once the connection is established (TO01).
* `.if` blocks: a branch HAProxy never takes (decided from constants and, when an image tag
  gives it, the HAProxy version) is not modelled. A branch whose condition depends on the
  environment or the build is modelled with the other branches, and the objects and values
  that come from it say so (`condition`, and "condition not known" in origins).
* Server health checks, backend check options, `tcp-check` rules, per-section timeouts,
  `option independent-streams` and content inspection that waits for the client are recorded
  for the health-check, timeout and PROXY-timing rules.

Each HAProxy file is read on its own (its `defaults` do not reach other files), but a
`use_backend` may name a backend of another file.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from mailproxy_lint.build import Model
from mailproxy_lint.data import haproxy_keywords as kw
from mailproxy_lint.model import (
    Entrypoint,
    FileKind,
    Product,
    ProxyHeader,
    ProxyTls,
    Route,
    Setting,
    Upstream,
    UpstreamServer,
    Version,
)
from mailproxy_lint.parse import Parsed
from mailproxy_lint.parse.haproxy import (
    HaproxyConfig,
    Section,
    Statement,
    Word,
    parse_haproxy_time,
    split_address,
)

HAPROXY = Product.HAPROXY

# the `timeout` kinds followed through `defaults` (TO01, TO04)
_TIMEOUTS = ("client", "server", "tunnel", "connect")


# `option` keywords that choose a backend's health check (each replaces the previous one)
_CHECK_OPTIONS = frozenset({
    "ssl-hello-chk", "smtpchk", "tcp-check", "httpchk", "mysql-check", "pgsql-check", "redis-check",
    "ldap-check", "spop-check", "external-check",
})

# Sample fetches (and the built-in ACL WAIT_END) that read what the client sends: a
# `tcp-request content` rule using one, with an inspect delay, holds the connection to the server
# until the client speaks or the delay ends.
_CLIENT_DATA_FETCHES = frozenset({
    "req.len", "req_len", "req.payload", "req.payload_lv", "payload", "payload_lv", "req.proto_http",
    "req_proto_http", "req.rdp_cookie", "req_rdp_cookie", "req.rdp_cookie_cnt", "req.hdr", "WAIT_END",
}) | kw.CLIENT_HELLO_FETCHES


def build(parsed: list[Parsed], model: Model) -> None:
    files = [p for p in parsed if p.source.kind is FileKind.HAPROXY and isinstance(p.tree, HaproxyConfig)]
    known = model.version_of(HAPROXY, None)
    version = known.value if known is not None else None
    proxies = [proxy for p in files for proxy in _resolve(p.tree, version)]
    by_name: dict[str, list[_Proxy]] = {}
    for proxy in proxies:
        by_name.setdefault(proxy.name, []).append(proxy)
    for proxy in proxies:
        if proxy.kind in kw.FRONTEND_SIDE:
            model.entrypoints.extend(_entrypoints(proxy))
            model.routes.extend(_routes(proxy, by_name))
        if proxy.kind in kw.BACKEND_SIDE:
            model.upstreams.append(_upstream(proxy))


# --------------------------------------------------------------------------------------------
# defaults inheritance
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Value:
    """One setting and the line that decided it."""

    value: object
    statement: Statement
    word: Word  # the token that carries the value (for precise columns)
    where: str  # "defaults", "defaults 'mail'", "frontend 'imap'"


@dataclass
class _Proxy:
    """A proxy section after `defaults` are applied."""

    section: Section
    path: str
    where: str
    version: Version | None  # the HAProxy version, when known: decides `version_*` conditions
    settings: dict[str, _Value] = field(default_factory=dict)
    # (where, default-server statement) in the order they apply, inherited ones first
    inherited_default_servers: list[tuple[str, Statement]] = field(default_factory=list)
    # `tcp-check` rules of the last `defaults` that had some (a backend without its own uses them)
    inherited_tcp_checks: list[Statement] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return self.section.kind

    @property
    def name(self) -> str:
        return self.section.name or ""

    def setting(self, key: str) -> _Value | None:
        return self.settings.get(key)

    def condition(self, statement: Statement | None = None) -> Setting[str] | None:
        """The undecidable `.if` a line (by default the section header) depends on."""
        return condition_of(statement or self.section.header, self.path, self.version)


def condition_of(statement: Statement, path: str, version: Version | None) -> Setting[str] | None:
    """The innermost `.if` branch around `statement` whose outcome the linter cannot decide."""
    branch = statement.branch.undecided(version) if statement.branch is not None else None
    if branch is None:
        return None
    span = branch.directive.span(path)
    return Setting(branch.text, span, f"inside '{branch.text}' at {span.path}:{span.line}, condition not known")


def active_sections(config: HaproxyConfig, version: Version | None) -> list[Section]:
    """The sections and lines HAProxy may read: lines of branches it never takes are dropped.

    A section header in such a branch is not a header for HAProxy, so the lines after the
    `.endif` still belong to the section above it.
    """
    result: list[Section] = []
    for section in config.sections:
        lines = tuple(s for s in section.statements if _may_read(s, version))
        if _may_read(section.header, version):
            result.append(Section(section.header, lines))
        elif result:
            result[-1] = Section(result[-1].header, result[-1].statements + lines)
    return result


def _may_read(statement: Statement, version: Version | None) -> bool:
    return statement.branch is None or statement.branch.taken(version) is not False


def _resolve(config: HaproxyConfig, version: Version | None = None) -> list[_Proxy]:
    """Every frontend/backend/listen of a file, with the settings of its defaults folded in."""
    named: dict[str, _Proxy] = {}
    last: _Proxy | None = None
    result = []
    for section in active_sections(config, version):
        if section.kind not in kw.PROXY_SECTIONS:
            continue
        ref = section.from_defaults
        parent = named.get(ref.text) if ref is not None else (last if section.kind != "defaults" else None)
        proxy = _Proxy(section, config.path, _describe(section), version)
        if parent is not None:
            proxy.settings.update(parent.settings)
            proxy.inherited_default_servers.extend(parent.inherited_default_servers)
            proxy.inherited_tcp_checks = parent.inherited_tcp_checks
        _apply_own_lines(proxy)
        if section.kind == "defaults":
            # its own default-server lines reach every proxy that inherits it
            proxy.inherited_default_servers.extend((proxy.where, s) for s in section.find("default-server"))
            proxy.inherited_tcp_checks = section.find("tcp-check") or proxy.inherited_tcp_checks
            last = proxy
            if section.name:
                named[section.name] = proxy
        else:
            result.append(proxy)
    return result


def _describe(section: Section) -> str:
    return f"{section.kind} '{section.name}'" if section.name else section.kind


def _apply_own_lines(proxy: _Proxy) -> None:
    for statement in proxy.section.statements:
        key, value, word = _setting_of(statement)
        if key is not None:
            condition = proxy.condition(statement)
            where = proxy.where if condition is None else f"{proxy.where}, {condition.origin}"
            proxy.settings[key] = _Value(value, statement, word, where)


def _setting_of(statement: Statement) -> tuple[str | None, object, Word]:
    """(key, value, deciding word) for the statements whose value `defaults` pass on."""
    words, keyword = statement.words, statement.keyword
    if keyword == "mode" and len(words) > 1:
        return "mode", words[1].text, words[1]
    if keyword == "timeout" and len(words) > 2 and words[1].text in _TIMEOUTS:
        return f"timeout {words[1].text}", parse_haproxy_time(words[2].text), words[2]
    if keyword == "default_backend" and len(words) > 1:
        return "default_backend", words[1].text, words[1]
    negated = keyword == "no" and statement.arg(0) == "option"
    option = statement.arg(1) if negated else (statement.arg(0) if keyword == "option" else None)
    if option == "independent-streams":
        return "option independent-streams", not negated, words[0] if negated else words[1]
    if option in _CHECK_OPTIONS:
        return "health-check", None if negated else option, words[2] if negated else words[1]
    if keyword == "tcp-request" and statement.arg(0) == "inspect-delay" and len(words) > 2:
        return "inspect-delay", parse_haproxy_time(words[2].text), words[2]
    return None, None, words[0]


def _setting(proxy: _Proxy, key: str, default: object, default_origin: str) -> Setting:
    found = proxy.setting(key)
    if found is None:
        return Setting(default, None, default_origin)
    return Setting(found.value, found.statement.span(proxy.path), f"{found.statement} ({found.where})")


def _timeouts(proxy: _Proxy | None, kinds: tuple[str, ...]) -> dict[str, Setting[float]]:
    """The timeouts of `kinds` set for a proxy (own line or defaults), in seconds; 0 = none."""
    found = {}
    for kind in kinds:
        value = proxy.setting(f"timeout {kind}") if proxy is not None else None
        if value is not None and value.value is not None:
            found[kind] = Setting(float(value.value), value.statement.span(proxy.path),
                                  f"{value.statement} ({value.where})")
    return found


# --------------------------------------------------------------------------------------------
# frontends: entrypoints and routes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Bind:
    statement: Statement
    ssl: Word | None
    accept_proxy: Word | None


def _binds(proxy: _Proxy) -> list[_Bind]:
    result = []
    for statement in proxy.section.find("bind"):
        options = {w.text: w for w, _ in _options(statement.args[1:], kw.BIND_OPTIONS_WITH_VALUE)}
        result.append(_Bind(statement, options.get("ssl"), options.get("accept-proxy")))
    return result


def _entrypoints(proxy: _Proxy) -> list[Entrypoint]:
    result = []
    for bind in _binds(proxy):
        span = bind.statement.span(proxy.path)
        tls = Setting(False, None, "HAProxy default (no ssl on the bind)")
        if bind.ssl is not None:
            tls = Setting(True, bind.ssl.span(proxy.path), f"ssl on bind {bind.statement.arg(0)}")
        accepts = Setting(ProxyHeader.NONE, None, "HAProxy default (no accept-proxy)")
        if bind.accept_proxy is not None:
            # accept-proxy takes either version, detected from the first bytes
            accepts = Setting(ProxyHeader.ANY, bind.accept_proxy.span(proxy.path), "accept-proxy")
        for part in (bind.statement.arg(0) or "").split(","):
            address = split_address(part)
            # a port range (bind :2000-2100) is represented by its first port
            result.append(Entrypoint(HAPROXY, proxy.name, address.port, address.host, span, tls, accepts))
    return result


@dataclass(frozen=True, slots=True)
class _Switch:
    """A routing decision: a use_backend/default_backend line, or a listen's own servers."""

    backend: str
    statement: Statement
    condition: tuple[Word, ...]


def _switches(proxy: _Proxy) -> list[_Switch]:
    result = []
    for statement in proxy.section.find("use_backend"):
        if statement.args:
            result.append(_Switch(statement.args[0].text, statement, statement.args[1:]))
    default = proxy.setting("default_backend")
    if default is not None:
        result.append(_Switch(str(default.value), default.statement, ()))
    elif proxy.kind == "listen":
        result.append(_Switch(proxy.name, proxy.section.header, ()))
    return result


def _routes(proxy: _Proxy, by_name: dict[str, list[_Proxy]]) -> list[Route]:
    binds = _binds(proxy)
    acls = _acls(proxy.section)
    hello_wait = _client_hello_wait(proxy, acls)
    result = []
    for switch in _switches(proxy):
        own_servers = proxy.kind == "listen" and switch.backend == proxy.name
        backend = _find_backend(switch.backend, proxy, by_name)
        layer = _layer(proxy, backend)
        idle, related = _idle_timeout(proxy, backend, layer.value)
        condition = proxy.condition(switch.statement) or proxy.condition()
        result.append(Route(
            product=HAPROXY,
            name=proxy.name if own_servers else f"{proxy.name}/{switch.backend}",
            entrypoints=(proxy.name,),
            upstream=switch.backend,
            span=switch.statement.span(proxy.path),
            tls=_route_tls(proxy, binds, hello_wait),
            sni=_sni(proxy, switch, acls),
            layer=layer,
            idle_timeout=idle,
            idle_timeout_related=related,
            section_span=proxy.section.header.span(proxy.path),
            timeouts=_timeouts(proxy, ("client",)),
            independent_streams=_independent_streams(proxy, backend),
            waits_for_client=_waits_for_client(proxy, acls),
            condition=condition,
        ))
    return result


def _independent_streams(frontend: _Proxy, backend: _Proxy | None) -> Setting[str] | None:
    """`option independent-streams` in effect on the client side, else on the server side."""
    for proxy, side in ((frontend, "frontend"), (backend, "backend")):
        found = proxy.setting("option independent-streams") if proxy is not None else None
        if found is not None and found.value:
            return Setting(side, found.statement.span(proxy.path), f"{found.statement} ({found.where})")
    return None


def _waits_for_client(proxy: _Proxy, acls: dict[str, list[Statement]]) -> Setting[str] | None:
    """The fetch that holds the server connection until the client speaks (or the delay ends)."""
    delay = proxy.setting("inspect-delay")
    if delay is None or not delay.value:
        return None
    for statement in proxy.section.statements:
        if statement.keyword != "tcp-request" or statement.arg(0) != "content":
            continue
        names = [(w, w.text.lstrip("!")) for w in statement.args]  # WAIT_END is used by name
        hits = [w for w, name in names if name == "WAIT_END"]
        hits += [fetch for fetch, _ in _condition_terms(statement.args, acls)
                 if _fetch_name(fetch.text) in _CLIENT_DATA_FETCHES]
        if hits:
            origin = (f"'{statement}' with 'tcp-request inspect-delay {delay.word.text}' ({delay.where}) waits "
                      "for the client's first bytes")
            # the content rule is the line to change, even when a named ACL holds the fetch
            return Setting(_fetch_name(hits[0].text), statement.span(proxy.path), origin)
    return None


def _find_backend(name: str, frontend: _Proxy, by_name: dict[str, list[_Proxy]]) -> _Proxy | None:
    candidates = [p for p in by_name.get(name, []) if p.kind in kw.BACKEND_SIDE]
    same_file = [p for p in candidates if p.path == frontend.path]
    return (same_file or candidates or [None])[0]


def _layer(frontend: _Proxy, backend: _Proxy | None) -> Setting[str]:
    """The mode the traffic is handled in: http as soon as either side is in mode http."""
    default_origin = "HAProxy default (mode tcp)"
    fe = _setting(frontend, "mode", "tcp", default_origin)
    if backend is not None and backend is not frontend:
        be = _setting(backend, "mode", "tcp", default_origin)
        if be.value == "http" and fe.value != "http":
            return be
    return fe


def _route_tls(proxy: _Proxy, binds: list[_Bind], hello_wait: Setting[ProxyTls] | None) -> Setting[ProxyTls]:
    ssl = next((b for b in binds if b.ssl is not None), None)
    if ssl is not None and ssl.ssl is not None:
        return Setting(ProxyTls.TERMINATE, ssl.ssl.span(proxy.path), f"ssl on bind {ssl.statement.arg(0)}")
    if hello_wait is not None:
        return hello_wait
    return Setting(ProxyTls.NONE, None, "no ssl on the binds: bytes passed as they come")


# ---- content inspection and SNI --------------------------------------------------------------


def _acls(section: Section) -> dict[str, list[Statement]]:
    acls: dict[str, list[Statement]] = {}
    for statement in section.find("acl"):
        if len(statement.args) >= 2:
            acls.setdefault(statement.args[0].text, []).append(statement)
    return acls


def _fetch_name(text: str) -> str:
    """`req.ssl_sni,lower` -> `req.ssl_sni`; `req_ssl_sni(…)` -> `req_ssl_sni`."""
    return text.split(",", 1)[0].split("(", 1)[0]


def _condition_terms(condition: tuple[Word, ...], acls: dict[str, list[Statement]]) -> list[tuple[Word, list[Word]]]:
    """(fetch word, pattern words) of every ACL a condition uses, inline `{ }` or named."""
    terms: list[tuple[Word, list[Word]]] = []
    words = list(condition)
    i = 0
    while i < len(words):
        text = words[i].text
        if text == "{":
            end = next((j for j in range(i + 1, len(words)) if words[j].text == "}"), len(words))
            if end > i + 1:
                terms.append((words[i + 1], _patterns(words[i + 2:end])))
            i = end + 1
            continue
        for acl in acls.get(text.lstrip("!"), []):
            terms.append((acl.args[1], _patterns(list(acl.args[2:]))))
        i += 1
    return terms


_ACL_FLAGS_WITH_VALUE = {"-m", "-f", "-u", "-M"}


def _patterns(words: list[Word]) -> list[Word]:
    """The patterns of an ACL after its flags (-i, -m end, -f file, --)."""
    i = 0
    while i < len(words) and words[i].text.startswith("-"):
        if words[i].text == "--":
            i += 1
            break
        i += 2 if words[i].text in _ACL_FLAGS_WITH_VALUE else 1
    return words[i:]


def _client_hello_wait(proxy: _Proxy, acls: dict[str, list[Statement]]) -> Setting[ProxyTls] | None:
    """PASSTHROUGH when the frontend reads the TLS ClientHello before choosing a backend."""
    for statement in proxy.section.statements:
        if statement.keyword == "use_backend" or (statement.keyword == "tcp-request" and statement.arg(0) == "content"):
            for fetch, _ in _condition_terms(statement.args, acls):
                if _fetch_name(fetch.text) in kw.CLIENT_HELLO_FETCHES:
                    origin = f"{fetch.text} in '{statement}' reads the TLS ClientHello"
                    return Setting(ProxyTls.PASSTHROUGH, fetch.span(proxy.path), origin)
    return None


def _sni(proxy: _Proxy, switch: _Switch, acls: dict[str, list[Statement]]) -> Setting[str] | None:
    sni_fetches = kw.SNI_FETCHES_PASSTHROUGH | kw.SNI_FETCHES_TERMINATED
    for fetch, patterns in _condition_terms(switch.condition, acls):
        if _fetch_name(fetch.text) in sni_fetches and patterns:
            value = " ".join(p.text for p in patterns)
            return Setting(value, switch.statement.span(proxy.path), f"{fetch.text} {value}")
    return None


# ---- idle timeout (TO01) ---------------------------------------------------------------------


def _timeout(proxy: _Proxy | None, kind: str) -> Setting[float] | None:
    """A set, non-zero timeout of `proxy` in seconds (0 means "no timeout" to HAProxy)."""
    found = proxy.setting(f"timeout {kind}") if proxy is not None else None
    if found is None or not found.value:
        return None
    return Setting(float(found.value), found.statement.span(proxy.path), f"{found.statement} ({found.where})")


def _idle_timeout(frontend: _Proxy, backend: _Proxy | None, layer: str) -> tuple[Setting, tuple[Setting[float], ...]]:
    client = _timeout(frontend, "client")
    server = _timeout(backend, "server")
    tunnel = _timeout(backend, "tunnel") if layer == "tcp" else None
    present = [s for s in (client, server, tunnel) if s is not None]
    if tunnel is not None:
        winner = tunnel
    elif client is not None or server is not None:
        winner = min((s for s in (client, server) if s is not None), key=lambda s: s.value)
    else:
        return Setting(None, None, "no timeout client/server/tunnel: HAProxy never closes idle connections"), ()
    return winner, tuple(s for s in present if s is not winner)


# --------------------------------------------------------------------------------------------
# backends: upstreams and servers
# --------------------------------------------------------------------------------------------


def _upstream(proxy: _Proxy) -> Upstream:
    servers = []
    local_defaults: list[tuple[str, Statement]] = []
    for statement in proxy.section.statements:
        if statement.keyword == "default-server":
            local_defaults.append((proxy.where, statement))
        elif statement.keyword == "server" and len(statement.args) >= 2:
            defaults = proxy.inherited_default_servers + local_defaults
            servers.append(_server(proxy, statement, defaults))
    check = proxy.setting("health-check")
    health_check = None
    if check is not None and check.value is not None:
        health_check = Setting(str(check.value), check.statement.span(proxy.path), f"{check.statement} ({check.where})")
    tcp_checks = proxy.section.find("tcp-check") or proxy.inherited_tcp_checks
    return Upstream(
        HAPROXY, proxy.name, tuple(servers), proxy.section.header.span(proxy.path),
        health_check=health_check,
        tcp_checks=tuple(Setting(tuple(w.text for w in t.args), t.span(proxy.path), str(t)) for t in tcp_checks),
        timeouts=_timeouts(proxy, ("connect", "server", "tunnel")),
        condition=proxy.condition(),
    )


@dataclass
class _ServerOptions:
    """The options of one server, folded from its `default-server` lines and its own line."""

    name: str
    flags: dict[str, Setting[bool]] = field(default_factory=dict)  # PROXY flag -> word that set it
    cancelled: Setting[bool] | None = None  # the last no-send-proxy* option
    switches: dict[str, Setting[bool]] = field(default_factory=dict)  # ssl, check, check-ssl, ...
    values: dict[str, Setting[str]] = field(default_factory=dict)  # port, addr
    proxy_defaults: list[Setting[str]] = field(default_factory=list)
    proxy_cancels: list[Setting[str]] = field(default_factory=list)


# on/off server options (`no-<name>` turns each off), with what a rule calls them
_SWITCHES = ("ssl", "check", "check-ssl", "check-send-proxy")


def _literal(text: str) -> str:
    """`text` for use inside an origin template that is later filled with str.format."""
    return text.replace("{", "{{").replace("}", "}}")


def _server(proxy: _Proxy, statement: Statement, defaults: list[tuple[str, Statement]]) -> UpstreamServer:
    name = statement.args[0].text
    address = split_address(statement.args[1].text)
    options = _ServerOptions(name)
    for where, line in defaults:
        _read_server_options(options, proxy, line.args, f"default-server {{}} in {_literal(where)}", inherited=True)
    _read_server_options(options, proxy, statement.args[2:], f"{{}} on server {_literal(name)}", inherited=False)
    switch = options.switches.get
    tls = switch("ssl") or Setting(False, None, "HAProxy default (no ssl: plain TCP to the server)")
    check_port = _check_port(options.values.get("port"))
    check_addr = options.values.get("addr")
    return UpstreamServer(
        product=HAPROXY, upstream=proxy.name, name=name, host=address.host, port=address.port,
        span=statement.span(proxy.path), send_proxy=_send_proxy(options.flags, options.cancelled), tls=tls,
        check=switch("check") or Setting(False, None, "HAProxy default (no health checks)"),
        check_port=check_port,
        check_addr=check_addr,
        check_send_proxy=switch("check-send-proxy") or Setting(False, None, "HAProxy default (no check-send-proxy)"),
        check_tls=_check_tls(switch("check-ssl"), tls, check_port, check_addr),
        proxy_tls_facts=_proxy_tls_facts(options.flags),
        proxy_defaults=tuple(options.proxy_defaults),
        proxy_cancels=tuple(options.proxy_cancels),
        condition=proxy.condition(statement) or proxy.condition(),
    )


def _read_server_options(options: _ServerOptions, proxy: _Proxy, words, template: str, inherited: bool) -> None:
    for word, value in _options(words, kw.SERVER_OPTIONS_WITH_VALUE):
        option = word.text
        setting = Setting(True, word.span(proxy.path), template.format(option))
        if option in kw.SEND_PROXY_FLAGS:
            options.flags.update({flag: setting for flag in kw.SEND_PROXY_FLAGS[option]})
        elif option in kw.NO_SEND_PROXY_FLAGS:
            for flag in kw.NO_SEND_PROXY_FLAGS[option]:
                options.flags.pop(flag, None)
            options.cancelled = setting
            if not inherited:
                options.proxy_cancels.append(Setting(option, setting.span, setting.origin))
        elif option == "proxy-v2-options" and value is not None:
            # proxy-v2-options ssl,cert-cn,...: TLVs added to a v2 header (and, before the VC07
            # fix, a reason to send a header at all)
            if "ssl" in value.text.split(","):
                options.flags["ssl"] = setting
            option = f"proxy-v2-options {value.text}"
        elif option in _SWITCHES or (option.startswith("no-") and option[3:] in _SWITCHES):
            on = not option.startswith("no-")
            options.switches[option if on else option[3:]] = Setting(on, setting.span, setting.origin)
        elif option in ("port", "addr") and value is not None:
            options.values[option] = Setting(value.text, value.span(proxy.path), template.format(f"{option} {value.text}"))
        if inherited and (option in kw.SEND_PROXY_FLAGS or option.startswith("proxy-v2-options")):
            options.proxy_defaults.append(Setting(option, setting.span, template.format(option)))


def _check_port(written: Setting[str] | None) -> Setting[int] | None:
    if written is None or not written.value.isdigit():
        return None
    return Setting(int(written.value), written.span, written.origin)


def _check_tls(check_ssl: Setting[bool] | None, tls: Setting[bool], port, addr) -> Setting[bool]:
    """Checks speak TLS with `check-ssl`, or with `ssl` when no `port`/`addr` sends them elsewhere."""
    if check_ssl is not None:
        return check_ssl
    if tls.value and port is None and addr is None:
        return Setting(True, tls.span, f"{tls.origin}: health checks inherit TLS (no port/addr override)")
    return Setting(False, None, "HAProxy default (checks in plaintext)")


def _proxy_tls_facts(flags: dict[str, Setting[bool]]) -> Setting[bool]:
    """The client's TLS facts travel only in a v2 header (v1 wins when both are set)."""
    if "ssl" in flags and "v2" in flags and "v1" not in flags:
        return flags["ssl"]
    return Setting(False, None, "no send-proxy-v2-ssl / proxy-v2-options ssl")


def _send_proxy(flags: dict[str, Setting[bool]], cancelled: Setting[bool] | None) -> Setting[ProxyHeader]:
    """v1 wins when both versions are set (make_proxy_line checks SRV_PP_V1 first)."""
    for flag, header in (("v1", ProxyHeader.V1), ("v2", ProxyHeader.V2)):
        if flag in flags:
            return Setting(header, flags[flag].span, flags[flag].origin)
    if cancelled is not None:
        return Setting(ProxyHeader.NONE, cancelled.span, cancelled.origin)
    return Setting(ProxyHeader.NONE, None, "HAProxy default (no send-proxy)")


def _options(words, with_value: frozenset[str]) -> list[tuple[Word, Word | None]]:
    """(option, its value) of a bind/server line in order, stepping over the options' values."""
    found: list[tuple[Word, Word | None]] = []
    i = 0
    while i < len(words):
        takes_value = words[i].text in with_value
        found.append((words[i], words[i + 1] if takes_value and i + 1 < len(words) else None))
        i += 2 if takes_value else 1
    return found
