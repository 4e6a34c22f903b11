"""Secrets in the scanned files never reach a report.

Config directories hold passwords: Dovecot `ssl_key_password` and SQL `connect = ... password=`,
Postfix `inline:{ relay=user:pass }` password maps, HAProxy `userlist` users and `stats auth`,
Traefik `basicAuth.users`, compose and Kubernetes environment variables such as `*_PASSWORD`,
`*_SECRET`, `*_TOKEN`. Reports end up in CI logs, SARIF uploads and pull-request annotations, so
no finding may echo one, not even a syntax error that quotes the token it stopped at.

The secrets are found by reading the *text* of every file line by line, by setting name (not
through the parse trees), so a file that does not parse is covered too. Every finding message is
then masked:

* every secret value (and its quoted/escaped spellings) anywhere in any message;
* any run of 8 or more characters a message shares with a secret (a parser may quote part of one);
* on findings located on a secret's own line, any shared run of 4 or more characters, and short
  secrets as whole words.

The file texts handed to reporters (SARIF hashes lines for its fingerprints) get the secret
characters replaced in place, so columns and line lengths do not move.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Iterable

from mailproxy_lint.model import FileKind, SourceFile

MASK = "****"
GLOBAL_RUN = 8  # shared characters masked in any message
LINE_RUN = 4  # shared characters masked in a message about the secret's own line


@dataclass(frozen=True, slots=True)
class Secret:
    path: str
    line: int
    start: int  # 0-based offsets in the line, end exclusive
    end: int
    setting: str  # what holds it: "ssl_key_password", "stats auth", "basicAuth.users", ...
    value: str  # the value without surrounding quotes


# --------------------------------------------------------------------------------------------
# Which names hold secrets
# --------------------------------------------------------------------------------------------

_SECRET_WORD = re.compile(
    r"passw|passphrase|secret|token|api_?key|apikey|dnpass|credential|private_?key|(^|[_-])(pw|pass|pwd)$", re.I)
# names that hold a file name, a scheme or the name of a secret, not the secret itself
_NOT_A_VALUE = re.compile(r"(file|path|name|ref|refs|scheme|schemes|command|_maps|secrets|dir|query|_attrs|_filter)$",
                         re.I)  # (Dovecot `password_query`, `pass_attrs`, `pass_filter`: SQL/LDAP, not a secret)
_MAP_NAME = re.compile(r"passw.*_maps$", re.I)  # Postfix password maps: only inline tables hold secrets


def is_secret_name(name: str) -> bool:
    """True for a setting, label or variable name whose value is a secret."""
    segments = [s for s in re.split(r"[./]", name.strip("\"'")) if s]
    if not segments:
        return False
    last = segments[-1].lower()
    previous = segments[-2].lower() if len(segments) > 1 else ""
    if last == "users" and previous in ("basicauth", "digestauth"):
        return True
    if _NOT_A_VALUE.search(last):
        return False
    return bool(_SECRET_WORD.search(last))


# --------------------------------------------------------------------------------------------
# Finding the secrets in a file's text
# --------------------------------------------------------------------------------------------

# `name = value`, `name: value`, `- NAME=value`, `- "NAME=value"`, `export NAME=value`, `svc/type/name=value`
_ASSIGNMENT = re.compile(
    r"""^(?P<lead>\s*(?:-\s+)?(?:export\s+)?["']?)(?P<name>[A-Za-z_][\w.\-/]*)["']?\s*(?:=|:(?=\s|$))[ \t]*(?P<value>.*)$""")
# `name value` without `=`: a line a parser rejects may still name its secret first
_SPACED = re.compile(r"""^\s*["']?(?P<name>[A-Za-z_][\w.\-/]*)["']?\s+(?P<value>\S.*)$""")
# `name=value` inside a line (Dovecot `connect = host=db password=x`, `-o name=value`, `postconf -e`)
_EMBEDDED = re.compile(r"""(?<![\w.\-/])(?P<name>[A-Za-z_][\w.\-/]*)=(?P<value>"[^"]*"|'[^']*'|[^\s'",;}]+)""")
_URL_PASSWORD = re.compile(r"[A-Za-z][\w+.\-]*://[^\s/:@'\"]*:(?P<value>[^\s/@'\"]+)@")
_AUTH_HEADER = re.compile(r"""(?i)\bauthorization["']?[\s:=]+["']?(?:(?:basic|bearer|token|digest)\s+)?(?P<value>[^\s"']+)""")
_HAPROXY_USER = re.compile(r"^\s*user\s+\S+\s+(?:insecure-password|password)\s+(?P<value>\S+)")
_HAPROXY_STATS = re.compile(r"^\s*stats\s+auth\s+[^:\s]*:(?P<value>\S+)")
_INLINE_TABLE = re.compile(r"\b(?:inline|static|texthash):\{(?P<value>[^}]*)\}?|\bstatic:(?P<plain>[^\s{,]+)")
_USER_OPTION = re.compile(r"""(?:^|\s)(?:-u|--user)[ =]?["']?[^\s:'"]*:(?P<value>[^\s'"]+)""")  # curl -u user:pass
_LONG_OPTION = re.compile(r"""--(?P<name>[\w-]+)[= ](?P<value>"[^"]*"|'[^']*'|[^\s'"]+)""")
_ECHO_INTO_FILE = re.compile(r"""^\s*(?:echo|printf)\s+(?P<value>"[^"]*"|'[^']*'|[^>|]*?)\s*>>?\s*\S*(?:passw|secret|token|sasl)""", re.I)
_REFERENCE = re.compile(r"""^["']?(?:\$\{?[A-Za-z_][\w.]*(?:[-:?][^}]*)?\}?|%\{[^}]*\})["']?$""")
_YAML_KEY = re.compile(r"""^(?P<indent>\s*)(?:-\s+)?["']?(?P<key>[^\s"':#][^"':#]*?)["']?\s*:(?:\s|$)""")
_YAML_KINDS = {FileKind.COMPOSE, FileKind.TRAEFIK_STATIC, FileKind.TRAEFIK_DYNAMIC, FileKind.KUBERNETES}


def find_secrets(source: SourceFile) -> list[Secret]:
    """Every secret value written in `source`, with its position."""
    found: list[Secret] = []
    lines = source.text.split("\n")
    for number, line in enumerate(lines, 1):
        found.extend(_line_secrets(source, number, line))
    if source.kind in _YAML_KINDS:
        found.extend(_yaml_block_secrets(source.path, lines))
    return _unique(found)


def _line_secrets(source: SourceFile, number: int, line: str) -> Iterable[Secret]:
    path = source.path
    match = _ASSIGNMENT.match(line)
    if match and is_secret_name(match.group("name")):
        yield from _value(path, number, line, match.start("value"), _trim(line, match.start("value"), source.kind),
                          match.group("name"))
    if match and _MAP_NAME.search(match.group("name").rsplit("/", 1)[-1]):
        yield from _inline_tables(path, number, line, match.group("name"))
    spaced = _SPACED.match(line)
    if not match and spaced and is_secret_name(spaced.group("name")):  # `name value`: a broken assignment
        yield from _value(path, number, line, spaced.start("value"), len(line), spaced.group("name"))
    for embedded in _EMBEDDED.finditer(line):
        if is_secret_name(embedded.group("name")):
            yield from _value(path, number, line, embedded.start("value"), embedded.end("value"), embedded.group("name"))
        if _MAP_NAME.search(embedded.group("name")):
            yield from _inline_tables(path, number, line, embedded.group("name"))
    for option in _LONG_OPTION.finditer(line):
        if is_secret_name(option.group("name")):
            yield from _value(path, number, line, option.start("value"), option.end("value"), option.group("name"))
    for pattern, setting in ((_URL_PASSWORD, "URL password"), (_AUTH_HEADER, "Authorization header"),
                             (_HAPROXY_USER, "userlist password"), (_HAPROXY_STATS, "stats auth"), (_USER_OPTION, "user:password option"),
                             (_ECHO_INTO_FILE, "password file content")):
        for found in pattern.finditer(line):
            yield from _value(path, number, line, found.start("value"), found.end("value"), setting)


def _trim(line: str, start: int, kind: FileKind) -> int:
    """End of a value that runs to the end of the line: before a comment where the format has
    trailing comments (a `#` after whitespace), and before the quote closing a `- "K=V"` item."""
    end = len(line)
    if kind is not FileKind.POSTFIX_MAIN:  # Postfix has whole-line comments only
        comment = re.search(r"\s#", line[start:])
        if comment:
            end = start + comment.start()
    return end


def _inline_tables(path: str, number: int, line: str, name: str) -> Iterable[Secret]:
    for table in _INLINE_TABLE.finditer(line):
        group = "value" if table.group("value") is not None else "plain"
        yield from _value(path, number, line, table.start(group), table.end(group), name)


def _value(path: str, number: int, line: str, start: int, end: int, setting: str) -> Iterable[Secret]:
    text = line[start:end]
    stripped = text.strip()
    if not stripped:
        return
    if len(stripped) >= 2 and stripped[0] == stripped[-1] and stripped[0] in "\"'":
        stripped = stripped[1:-1]
    elif stripped[:1] in "\"'" and stripped[0] not in stripped[1:]:
        stripped = stripped[1:]  # an unclosed quote: the rest of the line is the value
    elif stripped[-1:] in "\"'" and stripped[-1] not in stripped[:-1]:
        stripped = stripped[:-1]  # `- "NAME=value"`: the quote closes the list item
    if not stripped.strip() or _REFERENCE.match(stripped) or stripped in ("|", ">", "|-", ">-", "{}", "[]"):
        return
    offset = start + text.index(stripped)
    yield Secret(path, number, offset, offset + len(stripped), setting, stripped)


def _yaml_block_secrets(path: str, lines: list[str]) -> Iterable[Secret]:
    """Secrets YAML writes over several lines: the items or block scalar under a secret key
    (`basicAuth: users: [...]`, `password: |`), everything under `data:`/`stringData:` of a
    Kubernetes Secret, and `value:` next to `- name: SOME_PASSWORD` in a container's env."""
    stack: list[tuple[int, str]] = []  # (indent, key) of the open mappings
    secret_block: int | None = None  # indent of the key whose nested lines are all secret
    env_secret: int | None = None  # indent of the `- name: X_PASSWORD` item
    is_secret_document = False
    for number, line in enumerate(lines, 1):
        if line.strip() == "---":
            stack, secret_block, env_secret, is_secret_document = [], None, None, False
            continue
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        indent = len(line) - len(line.lstrip(" -"))
        if re.match(r"^kind:\s*Secret\s*$", line):
            is_secret_document = True
        if secret_block is not None:
            if indent > secret_block:
                yield from _block_line(path, number, line, ".".join(k for _, k in stack))
                continue
            secret_block = None
        key = _YAML_KEY.match(line)
        if key is None:
            continue
        while stack and stack[-1][0] >= indent:
            stack.pop()
        name = key.group("key").strip()
        stack.append((indent, name))
        dotted = ".".join(k for _, k in stack)
        rest = line[key.end():].strip()
        opens_block = not rest or rest.startswith(("|", ">", "#"))
        if opens_block and (is_secret_name(dotted) or is_secret_document and name in ("data", "stringData")):
            secret_block = indent
        elif not opens_block and is_secret_name(dotted) and not is_secret_name(name):  # `users: ["u:hash"]`
            start = key.end() + (len(line[key.end():]) - len(line[key.end():].lstrip()))
            yield from _value(path, number, line, start, _trim(line, start, FileKind.KUBERNETES), dotted)
        if name == "name" and is_secret_name(rest.strip("\"'")):
            env_secret = indent
        elif name == "value" and env_secret == indent and rest:
            start = key.end() + (len(line[key.end():]) - len(line[key.end():].lstrip()))
            yield from _value(path, number, line, start, _trim(line, start, FileKind.KUBERNETES), "environment value")
        elif line.lstrip().startswith("- "):
            env_secret = None


def _block_line(path: str, number: int, line: str, setting: str) -> Iterable[Secret]:
    content = line.strip()
    if content.startswith("- "):
        content = content[2:].strip()
    key = _YAML_KEY.match(line)
    if key is not None and line[key.end():].strip():  # `user: hash` inside a Secret's data
        content = line[key.end():].strip()
    start = line.index(content) if content else 0
    yield from _value(path, number, line, start, start + len(content), setting)


def _unique(found: list[Secret]) -> list[Secret]:
    return sorted(set(found), key=lambda s: (s.line, s.start, -s.end))


# --------------------------------------------------------------------------------------------
# Masking
# --------------------------------------------------------------------------------------------


def _spellings(value: str) -> set[str]:
    """The ways a message may quote a value: as is, repr-escaped, JSON-escaped, word by word."""
    forms = {value, repr(value)[1:-1], value.replace("\\", "\\\\").replace('"', '\\"')}
    return {f for f in forms if f}


class Masker:
    """Masks the secrets of a set of files in finding messages and file texts."""

    def __init__(self, secrets: Iterable[Secret]):
        self.secrets = list(secrets)
        self.values = sorted({form for s in self.secrets for form in _spellings(s.value)}, key=len, reverse=True)
        self._by_line: dict[tuple[str, int], list[str]] = {}
        for s in self.secrets:
            self._by_line.setdefault((s.path, s.line), []).extend(_spellings(s.value))

    def __bool__(self) -> bool:
        return bool(self.secrets)

    def message(self, text: str, spans: Iterable = ()) -> str:
        """`text` with every secret masked; `spans` are the locations the message is about."""
        if not self.secrets:
            return text
        for value in self.values:
            if len(value) >= LINE_RUN:
                text = text.replace(value, MASK)
        text = _mask_shared_runs(text, self.values, GLOBAL_RUN)
        near = [v for span in spans for line in _lines_of(span) for v in self._by_line.get((span.path, line), ())]
        if near:
            text = _mask_shared_runs(text, near, LINE_RUN)
            for value in near:
                if len(value) < LINE_RUN:
                    text = re.sub(rf"(?<![\w]){re.escape(value)}(?![\w])", MASK, text)
        return text

    def source(self, source: SourceFile) -> SourceFile:
        """The file with its secret characters replaced by `*` (same length, same columns)."""
        mine = [s for s in self.secrets if s.path == source.path]
        if not mine:
            return source
        lines = source.text.split("\n")
        for s in mine:
            line = lines[s.line - 1]
            lines[s.line - 1] = line[: s.start] + "*" * (s.end - s.start) + line[s.end:]
        return dataclasses.replace(source, text="\n".join(lines))


def _lines_of(span) -> range:
    last = span.end_line if span.end_line and span.end_line >= span.line else span.line
    return range(span.line, min(last, span.line + 200) + 1)


def _mask_shared_runs(text: str, values: Iterable[str], run: int) -> str:
    """Mask every stretch of `text` of `run` or more characters that also occurs in a value."""
    covered = [False] * len(text)
    for value in values:
        if len(value) < run:
            continue
        pieces = {value[i:i + run] for i in range(len(value) - run + 1)}
        for i in range(len(text) - run + 1):
            if text[i:i + run] in pieces:
                for j in range(i, i + run):
                    covered[j] = True
    if not any(covered):
        return text
    out, i = [], 0
    while i < len(text):
        if covered[i]:
            while i < len(text) and covered[i]:
                i += 1
            out.append(MASK)
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def masker_for(files: Iterable[SourceFile]) -> Masker:
    return Masker(s for source in files for s in find_secrets(source))


def mask_findings(findings: list, files: Iterable[SourceFile]) -> list:
    """The findings with every secret of `files` masked in their messages."""
    masker = masker_for(files)
    return [_masked(f, masker) for f in findings] if masker else list(findings)


def _masked(finding, masker: Masker):
    spans = [finding.span, *(r.span for r in finding.related)]
    related = tuple(dataclasses.replace(r, message=masker.message(r.message, spans)) for r in finding.related)
    return dataclasses.replace(finding, message=masker.message(finding.message, spans), related=related)


def mask_run(findings: list, deployments: list) -> tuple[list, list]:
    """What `engine.run` reports: findings and deployments (whose file texts reporters read)
    with every secret of the scanned files masked."""
    if not findings:
        return findings, deployments  # nothing will be shown: no file needs scanning for secrets
    files = [f for d in deployments for f in d.files]
    masker = masker_for(files)
    if not masker:
        return findings, deployments
    masked = [_masked(f, masker) for f in findings]
    shown = [dataclasses.replace(d, files=tuple(masker.source(f) for f in d.files)) for d in deployments]
    return masked, shown
