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
* Lines inside `.if` blocks are all taken as active: conditions depend on the environment.

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


def build(parsed: list[Parsed], model: Model) -> None:
    files = [p for p in parsed if p.source.kind is FileKind.HAPROXY and isinstance(p.tree, HaproxyConfig)]
    proxies = [proxy for p in files for proxy in _resolve(p.tree)]
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
    settings: dict[str, _Value] = field(default_factory=dict)
    # (where, default-server statement) in the order they apply, inherited ones first
    inherited_default_servers: list[tuple[str, Statement]] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return self.section.kind

    @property
    def name(self) -> str:
        return self.section.name or ""

    def setting(self, key: str) -> _Value | None:
        return self.settings.get(key)


def _resolve(config: HaproxyConfig) -> list[_Proxy]:
    """Every frontend/backend/listen of a file, with the settings of its defaults folded in."""
    named: dict[str, _Proxy] = {}
    last: _Proxy | None = None
    result = []
    for section in config.sections:
        if section.kind not in kw.PROXY_SECTIONS:
            continue
        ref = section.from_defaults
        parent = named.get(ref.text) if ref is not None else (last if section.kind != "defaults" else None)
        proxy = _Proxy(section, config.path, _describe(section))
        if parent is not None:
            proxy.settings.update(parent.settings)
            proxy.inherited_default_servers.extend(parent.inherited_default_servers)
        _apply_own_lines(proxy)
        if section.kind == "defaults":
            # its own default-server lines reach every proxy that inherits it
            proxy.inherited_default_servers.extend((proxy.where, s) for s in section.find("default-server"))
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
            proxy.settings[key] = _Value(value, statement, word, proxy.where)


def _setting_of(statement: Statement) -> tuple[str | None, object, Word]:
    """(key, value, deciding word) for the statements whose value `defaults` pass on."""
    words, keyword = statement.words, statement.keyword
    if keyword == "mode" and len(words) > 1:
        return "mode", words[1].text, words[1]
    if keyword == "timeout" and len(words) > 2 and words[1].text in _TIMEOUTS:
        return f"timeout {words[1].text}", parse_haproxy_time(words[2].text), words[2]
    if keyword == "default_backend" and len(words) > 1:
        return "default_backend", words[1].text, words[1]
    if keyword == "option" and statement.arg(0) == "independent-streams":
        return "option independent-streams", True, words[1]
    if keyword == "no" and statement.arg(0) == "option" and statement.arg(1) == "independent-streams":
        return "option independent-streams", False, words[0]
    if keyword == "tcp-request" and statement.arg(0) == "inspect-delay" and len(words) > 2:
        return "inspect-delay", parse_haproxy_time(words[2].text), words[2]
    return None, None, words[0]


def _setting(proxy: _Proxy, key: str, default: object, default_origin: str) -> Setting:
    found = proxy.setting(key)
    if found is None:
        return Setting(default, None, default_origin)
    return Setting(found.value, found.statement.span(proxy.path), f"{found.statement} ({found.where})")


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
        options = {w.text: w for w in _options(statement.args[1:], kw.BIND_OPTIONS_WITH_VALUE)}
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
        ))
    return result


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
    return Upstream(HAPROXY, proxy.name, tuple(servers), proxy.section.header.span(proxy.path))


def _server(proxy: _Proxy, statement: Statement, defaults: list[tuple[str, Statement]]) -> UpstreamServer:
    name = statement.args[0].text
    address = split_address(statement.args[1].text)
    flags: dict[str, Setting[bool]] = {}  # PROXY protocol flag -> the word that set it
    cancelled: Setting[bool] | None = None
    tls = Setting(False, None, "HAProxy default (no ssl: plain TCP to the server)")
    sources = [(f"default-server {{}} in {where}", d.args) for where, d in defaults]
    sources.append((f"{{}} on server {name}", statement.args[2:]))
    for template, words in sources:
        for word in _options(words, kw.SERVER_OPTIONS_WITH_VALUE):
            option = word.text
            setting = Setting(True, word.span(proxy.path), template.format(option))
            if option in kw.SEND_PROXY_FLAGS:
                flags.update({flag: setting for flag in kw.SEND_PROXY_FLAGS[option]})
            elif option in kw.NO_SEND_PROXY_FLAGS:
                for flag in kw.NO_SEND_PROXY_FLAGS[option]:
                    flags.pop(flag, None)
                cancelled = setting
            elif option in ("ssl", "no-ssl"):
                tls = Setting(option == "ssl", setting.span, setting.origin)
    return UpstreamServer(
        product=HAPROXY, upstream=proxy.name, name=name, host=address.host, port=address.port,
        span=statement.span(proxy.path), send_proxy=_send_proxy(flags, cancelled), tls=tls,
    )


def _send_proxy(flags: dict[str, Setting[bool]], cancelled: Setting[bool] | None) -> Setting[ProxyHeader]:
    """v1 wins when both versions are set (make_proxy_line checks SRV_PP_V1 first)."""
    for flag, header in (("v1", ProxyHeader.V1), ("v2", ProxyHeader.V2)):
        if flag in flags:
            return Setting(header, flags[flag].span, flags[flag].origin)
    if cancelled is not None:
        return Setting(ProxyHeader.NONE, cancelled.span, cancelled.origin)
    return Setting(ProxyHeader.NONE, None, "HAProxy default (no send-proxy)")


def _options(words: tuple[Word, ...] | list[Word], with_value: frozenset[str]) -> list[Word]:
    """The option words of a bind/server line in order, stepping over the options' values."""
    found: list[Word] = []
    i = 0
    while i < len(words):
        found.append(words[i])
        i += 2 if words[i].text in with_value else 1
    return found
