"""Stage 2: text -> syntax tree, one module per format.

`parse_file` dispatches on the file's kind and imports the format's module only when a file of
that kind exists. A parser returns a `Parsed` whose `tree` is the format's own syntax objects
(with spans) and whose `problems` list what could not be read. Parsers know nothing of rules.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from mailproxy_lint.model import Comment, FileKind, ParseProblem, SourceFile

# kind -> module in this package with `parse(source: SourceFile) -> Parsed`
_PARSERS: dict[FileKind, str] = {
    FileKind.DOVECOT: "dovecot",
    FileKind.POSTFIX_MAIN: "postfix",
    FileKind.POSTFIX_MASTER: "postfix",
    FileKind.DMS_POSTFIX_MASTER: "postfix",
    FileKind.DMS_USER_PATCHES: "user_patches",
    FileKind.HAPROXY: "haproxy",
    FileKind.COMPOSE: "yamlfile",
    FileKind.TRAEFIK_STATIC: "yamlfile",
    FileKind.TRAEFIK_DYNAMIC: "yamlfile",
    FileKind.KUBERNETES: "yamlfile",
    FileKind.STALWART: "toml",
}
# Traefik reads its static and dynamic files in TOML as well as YAML (by the file's suffix)
_TOML_KINDS = {FileKind.TRAEFIK_STATIC, FileKind.TRAEFIK_DYNAMIC}


@dataclass
class Parsed:
    source: SourceFile
    tree: Any = None  # None when the file could not be parsed at all
    problems: list[ParseProblem] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.tree is not None and not self.problems


def parse_file(source: SourceFile) -> Parsed:
    module_name = _PARSERS.get(source.kind)
    if source.kind in _TOML_KINDS and source.path.lower().endswith(".toml"):
        module_name = "toml"
    if module_name is None:
        return Parsed(source)
    return importlib.import_module(f"{__name__}.{module_name}").parse(source)
