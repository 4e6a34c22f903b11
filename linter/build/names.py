"""Collector: every HAProxy keyword and Traefik label key as written -> `WrittenName`s.

Rule MPL002 (unknown-setting) compares names with what the product knows. Postfix and Dovecot
names already live in the model with their spans (`PostfixConfig.main`, service `-o` options,
`DovecotConfig.settings` and `.sections`); HAProxy keywords and Traefik label keys do not, since
the topology builders keep only what they interpret. This stage walks the parsed trees once more
and records the names, so the product builders stay about topology.

HAProxy: the first word of every statement, per section kind, and `option <name>` (also after
`no`/`default`). Statements inside `.if` blocks are left out: the block may be meant for
another HAProxy version, which is exactly when it holds keywords this one does not know.
Traefik: the keys of compose `labels:` and `deploy.labels:` that Traefik decodes (list items
`key=value` or mapping keys), with the span of the key.
"""
from __future__ import annotations

from mailproxy_lint.build import Model
from mailproxy_lint.data import traefik_labels
from mailproxy_lint.model import FileKind, Product, Span, WrittenName
from mailproxy_lint.parse import Parsed
from mailproxy_lint.parse.haproxy import HaproxyConfig, Statement
from mailproxy_lint.parse.yamlfile import YamlMap, YamlScalar, YamlSeq, YamlTree

# keyword prefixes that take another keyword after them (HAProxy: `no option x`, `default option x`)
_PREFIXES = ("no", "default")


def build(parsed: list[Parsed], model: Model) -> None:
    for item in parsed:
        if item.source.kind is FileKind.HAPROXY and isinstance(item.tree, HaproxyConfig):
            model.names.extend(_haproxy_names(item.tree))
        elif item.source.kind is FileKind.COMPOSE and isinstance(item.tree, YamlTree):
            model.names.extend(_label_names(item.tree, item.source.path))


# --------------------------------------------------------------------------------------------
# HAProxy
# --------------------------------------------------------------------------------------------


def _haproxy_names(config: HaproxyConfig) -> list[WrittenName]:
    conditional = _conditional_lines(config.directives)
    names = []
    for section in config.sections:
        for statement in section.statements:
            if statement.line in conditional:
                continue
            written = _keyword(statement, config.path)
            if written is not None:
                name, span = written
                names.append(WrittenName(Product.HAPROXY, name, span, section.kind, section.name or ""))
    return names


def _keyword(statement: Statement, path: str) -> tuple[str, Span] | None:
    """(`keyword` or `option name`, span of the word that names it), skipping `no`/`default`."""
    words = list(statement.words)
    if len(words) > 1 and words[0].text in _PREFIXES:
        words = words[1:]
    if words[0].text == "option":
        if len(words) < 2:
            return None
        return f"option {words[1].text}", words[1].span(path)
    return words[0].text, words[0].span(path)


def _conditional_lines(directives: tuple[Statement, ...]) -> set[int]:
    """Line numbers inside `.if` ... `.endif` blocks (nesting followed)."""
    lines: set[int] = set()
    depth, start = 0, 0
    for directive in directives:
        if directive.keyword == ".if":
            if depth == 0:
                start = directive.line
            depth += 1
        elif directive.keyword == ".endif" and depth:
            depth -= 1
            if depth == 0:
                lines.update(range(start, directive.line + 1))
    if depth:  # an unterminated block runs to the end of the file
        lines.update(range(start, start + 1_000_000))
    return lines


# --------------------------------------------------------------------------------------------
# Traefik labels in compose files
# --------------------------------------------------------------------------------------------


def _label_names(tree: YamlTree, path: str) -> list[WrittenName]:
    root = tree.root
    services = root.get("services") if isinstance(root, YamlMap) else None
    if not isinstance(services, YamlMap):
        return []
    names = []
    for service_name, _, service in services.items():
        if not isinstance(service, YamlMap):
            continue
        deploy = service.get("deploy")
        for labels in (service.get("labels"), deploy.get("labels") if isinstance(deploy, YamlMap) else None):
            for key, span in _label_keys(labels, path):
                if traefik_labels.decoded(key):
                    names.append(WrittenName(Product.TRAEFIK, key, span, "label", service_name, service_name))
    return names


def _label_keys(labels, path: str) -> list[tuple[str, Span]]:
    """(key, span of the key) of every label, list form (`- key=value`) or mapping form."""
    found = []
    if isinstance(labels, YamlSeq):
        for item in labels.items:
            if isinstance(item, YamlScalar):
                raw = item.as_text()
                key = raw.partition("=")[0]
                stripped = key.strip()
                line, column = item.position_of(len(key) - len(key.lstrip()))
                found.append((stripped, Span(path, line, column, line, column + len(stripped))))
    elif isinstance(labels, YamlMap):
        for key, key_node, _ in labels.items():
            found.append((key, key_node.span(path)))
    return found
