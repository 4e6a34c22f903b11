"""Stalwart `config.toml` (v0.5 to v0.15) -> `Listener`s with their PROXY trust lists.

Stalwart reads its TOML into flat keys (`server.listener.smtp.bind.0000`): tables, dotted keys
and arrays are only different spellings of the same key, and webadmin exports the flat form.
This builder flattens the parsed tree the same way and reads (facts-formats §7, facts-rules PP09):

* `server.listener.<id>.bind`: one `Listener` per bound `address:port` (a string or a list);
* `server.listener.<id>.protocol`: smtp / lmtp / imap / pop3 / managesieve / http. An smtp
  listener on 587 is submission, on an implicit-TLS listener submissions; HTTP listeners are
  kept (protocol None) because a trust list applies to them too (PP09 b);
* `server.listener.<id>.tls.implicit`: implicit TLS, else STARTTLS;
* `server.proxy.trusted-networks` (global; `server.proxy-trusted-networks` before 0.5.3) and
  `server.listener.<id>.proxy.trusted-networks`, which replaces the global list for that
  listener. Stalwart expects a PROXY header (v1 or v2) from every source in the listener's list
  and treats other sources as direct clients, so a listener with a non-empty list
  `accepts_proxy`, and the list is its `trusted_proxies` (span: the line that sets it).

Files of one directory tree are one Stalwart instance (v0.5 split its config into
`common/*.toml`, `smtp/listener.toml`, ...). The instance runs on the compose service whose
image is Stalwart's, when the tree holds exactly one such service near the file; the version
comes from that image's tag.

Not modelled: settings kept outside the file (Stalwart ≥ 0.11 stores most settings in its
database and only the bootstrap keys in `config.toml`; the JSON settings of newer releases;
environment variables and `%{env:...}%` macros, which are left as written), a global
`server.tls.implicit`, `server.listener.<id>.proxy.override` (needed by some old releases), and
Stalwart's own TOML dialect beyond TOML 1.0 (bare-word values, `{a, b}` sets), which the TOML
parser reports as syntax errors.
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from mailproxy_lint.build import Model
from mailproxy_lint.data.versions import identify
from mailproxy_lint.model import (
    FileKind,
    IPNetwork,
    Listener,
    MailProtocol,
    Product,
    ProxyHeader,
    Setting,
    Span,
    TlsMode,
    Version,
)
from mailproxy_lint.parse import Parsed
from mailproxy_lint.parse.yamlfile import YamlMap, YamlNode, YamlScalar, YamlSeq

STALWART = Product.STALWART
GLOBAL_TRUST = "server.proxy.trusted-networks"
OLD_GLOBAL_TRUST = "server.proxy-trusted-networks"
RENAMED_IN = Version((0, 5, 3))  # the global list got its current name in 0.5.3 (UPGRADING.md)
_PROTOCOLS = {
    "smtp": MailProtocol.SMTP,
    "lmtp": MailProtocol.LMTP,
    "imap": MailProtocol.IMAP,
    "pop3": MailProtocol.POP3,
    "managesieve": MailProtocol.SIEVE,
}
_IMPLICIT = {MailProtocol.SMTP: MailProtocol.SUBMISSIONS, MailProtocol.IMAP: MailProtocol.IMAPS,
             MailProtocol.POP3: MailProtocol.POP3S}
_BIND = re.compile(r"(?P<host>\[[^\]]*\]|[^:\[\]]*):(?P<port>\d+)")
_INDEX = re.compile(r"\d+")


@dataclass(frozen=True)
class FlatValue:
    """One flattened key: the scalar written and the span of its line (key through value)."""

    node: YamlScalar
    span: Span


def build(parsed: list[Parsed], model: Model) -> None:
    files = [p for p in parsed if p.source.kind is FileKind.STALWART and isinstance(p.tree.root, YamlMap)]
    for folder, members in _instances(files).items():
        keys: dict[str, FlatValue] = {}
        for item in members:
            flatten(item.tree.root, "", item.source.path, keys, _line_starts(item.source.text))
        host = _stalwart_host(model, folder)
        version = model.version_of(STALWART, host)
        _Instance(folder, keys, host, version, model).add_listeners()


def _instances(files: list[Parsed]) -> dict[str, list[Parsed]]:
    """Files grouped by the outermost folder holding a Stalwart file (split configs are one)."""
    roots: dict[str, list[Parsed]] = {}
    for item in sorted(files, key=lambda p: (len(PurePosixPath(p.source.path).parts), p.source.path)):
        folder = str(PurePosixPath(item.source.path).parent)
        owner = next((root for root in roots if folder == root or folder.startswith(root.rstrip("/") + "/")
                      or root == "."), folder)
        roots.setdefault(owner, []).append(item)
    return roots


def flatten(node: YamlNode, prefix: str, path: str, out: dict[str, FlatValue], line_starts: dict[int, int],
            line_span: Span | None = None) -> None:
    """Stalwart's flat keys: `a.b` for tables, `a.0000` for array items, as its parser makes them.

    Each value's span runs from the start of its key's line (the whole `tls.implicit = true`
    statement) to the end of the value.
    """
    if isinstance(node, YamlMap):
        for name, key, value in node.items():
            here = f"{prefix}.{name}" if prefix else name
            span = Span(path, key.line, line_starts.get(key.line, key.column), value.end_line, value.end_column)
            flatten(value, here, path, out, line_starts, None if isinstance(value, YamlMap) else span)
    elif isinstance(node, YamlSeq):
        for index, item in enumerate(node.items):
            flatten(item, f"{prefix}.{index:04d}", path, out, line_starts, line_span)
    elif isinstance(node, YamlScalar):
        out[prefix] = FlatValue(node, line_span or node.span(path))


def _line_starts(text: str) -> dict[int, int]:
    """Line number -> column of its first non-blank character."""
    return {number: len(line) - len(line.lstrip(" \t")) + 1 for number, line in enumerate(text.split("\n"), start=1)}


def values_under(keys: dict[str, FlatValue], key: str) -> list[FlatValue]:
    """The value of `key` itself, or of its indexed entries (`key.0000`, `key.1`, ...), in order."""
    if key in keys:
        return [keys[key]]
    prefix = key + "."
    indexed = [(int(k[len(prefix):]), v) for k, v in keys.items()
               if k.startswith(prefix) and _INDEX.fullmatch(k[len(prefix):])]
    return [v for _, v in sorted(indexed, key=lambda pair: pair[0])]


def networks(values: list[FlatValue]) -> tuple[IPNetwork, ...]:
    """The entries Stalwart's `IpAddrMask` reads: an address, or address/bits (bits >= 8)."""
    found = []
    for value in values:
        text = value.node.as_text().strip()
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError:
            continue
        if "/" in text and network.prefixlen < 8:
            continue  # Stalwart refuses masks shorter than 8 bits
        found.append(network)
    return tuple(found)


class _Instance:
    """One Stalwart configuration: its listeners and trust lists, as flat keys."""

    def __init__(self, folder: str, keys: dict[str, FlatValue], host: str | None,
                 version: Setting[Version] | None, model: Model) -> None:
        self.folder, self.keys, self.host, self.version, self.model = folder, keys, host, version, model
        self.global_trust = self._global_trust()

    def add_listeners(self) -> None:
        self.model.present.add(STALWART)
        ids = dict.fromkeys(k.split(".")[2] for k in self.keys if k.startswith("server.listener.") and k.count(".") >= 3)
        for listener_id in ids:
            self._listener(listener_id)

    def _global_trust(self) -> Setting[tuple[IPNetwork, ...]]:
        written = values_under(self.keys, GLOBAL_TRUST)
        if written:
            return Setting(networks(written), written[0].span, GLOBAL_TRUST)
        old = values_under(self.keys, OLD_GLOBAL_TRUST)
        if old and (self.version is None or self.version.value < RENAMED_IN):
            return Setting(networks(old), old[0].span, OLD_GLOBAL_TRUST)
        return Setting((), None, "Stalwart default: no trusted proxy networks")

    def _listener(self, listener_id: str) -> None:
        base = f"server.listener.{listener_id}"
        protocol_value = self.keys.get(f"{base}.protocol")
        written_protocol = protocol_value.node.as_text().strip().lower() if protocol_value else ""
        implicit = self.keys.get(f"{base}.tls.implicit")
        is_implicit = implicit is not None and implicit.node.as_text().lower() == "true"
        tls = Setting(TlsMode.IMPLICIT, implicit.span, f"{base}.tls.implicit") if is_implicit else \
            Setting(TlsMode.STARTTLS, implicit.span if implicit else None,
                    "Stalwart listener without tls.implicit: STARTTLS")
        trust = self._trust(base)
        accepts = Setting(ProxyHeader.ANY, trust.span, f"{trust.origin}: Stalwart expects PROXY v1 or v2 from these "
                          "sources") if trust.value else \
            Setting(ProxyHeader.NONE, trust.span, "Stalwart listener without trusted proxy networks")
        for bind in values_under(self.keys, f"{base}.bind"):
            match = _BIND.fullmatch(bind.node.as_text().strip())
            port = int(match.group("port")) if match else None
            address = match.group("host").strip("[]") if match else None
            self.model.listeners.append(Listener(
                STALWART, written_protocol or "unknown", listener_id, port, address, bind.span,
                protocol=_protocol(written_protocol, port, is_implicit),
                tls=tls, accepts_proxy=accepts, trusted_proxies=trust, version=self.version, host=self.host,
                instance=f"stalwart:{self.folder}",
            ))

    def _trust(self, base: str) -> Setting[tuple[IPNetwork, ...]]:
        """The listener's own list when written (it replaces the global one), else the global one."""
        key = f"{base}.proxy.trusted-networks"
        own = values_under(self.keys, key)
        if own:
            return Setting(networks(own), own[0].span, key)
        return self.global_trust


def _protocol(written: str, port: int | None, implicit: bool) -> MailProtocol | None:
    protocol = _PROTOCOLS.get(written)
    if protocol is None:
        return None  # http, or a protocol this linter does not follow
    if implicit:
        return _IMPLICIT.get(protocol, protocol)
    if protocol is MailProtocol.SMTP and port == 587:
        return MailProtocol.SUBMISSION
    return protocol


def _stalwart_host(model: Model, folder: str) -> str | None:
    """The compose service running Stalwart for a config in `folder`: the one nearest to it."""
    candidates = [h for h in model.hosts if h.image is not None and h.span is not None
                  and (info := identify(h.image.value)) is not None and info.product is STALWART]
    if len(candidates) <= 1:
        return candidates[0].name if candidates else None
    parts = PurePosixPath(folder).parts

    def shared(host) -> int:
        other = PurePosixPath(host.span.path).parent.parts
        return next((i for i, (a, b) in enumerate(zip(parts, other)) if a != b), min(len(parts), len(other)))

    best = max(shared(h) for h in candidates)
    nearest = [h for h in candidates if shared(h) == best]
    return nearest[0].name if len(nearest) == 1 else None
