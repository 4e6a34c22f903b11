"""docker-mailserver `user-patches.sh` -> the `postconf` edits it makes (never executed).

DMS runs this script at the end of start-up. Only the idioms its documentation uses to change
Postfix are understood:

* `postconf -e 'name=value' ...` (also without `-e`), `postconf -X name`: main.cf edits;
* `postconf -P service/type/parameter=value ...`, `postconf -PX service/type/parameter`;
* `postconf -M service/type='entry'`, `postconf -MX service/type`, `postconf -M# service/type`;
* the clone idiom `postconf -Mf submission/inet | sed -e s/^submission/10587/ ... >> /etc/postfix/master.cf`
  (the builder renders the named service as `postconf -M` prints it and applies the `sed`
  substitutions line by line, as sed would).

Every other command is kept as a `NotAnalyzed` line so rule MPL005 can say what was not checked.
Lines are split with `shlex` (POSIX quoting); no Lark grammar is needed for this.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Callable

from mailproxy_lint.model import Comment, SourceFile, Span
from mailproxy_lint.parse import Parsed

MASTER_CF = "/etc/postfix/master.cf"


# --------------------------------------------------------------------------------------------
# Tree
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MainEdit:
    """`postconf -e name=value` (value None: `postconf -X name` removes the parameter)."""

    name: str
    value: str | None
    span: Span


@dataclass(frozen=True, slots=True)
class ServiceParameterEdit:
    """`postconf -P service/type/parameter=value` (value None: `-PX` removes the `-o`)."""

    service: str
    type: str
    parameter: str
    value: str | None
    span: Span
    text: str  # the argument as written


@dataclass(frozen=True, slots=True)
class ServiceEdit:
    """`postconf -M service/type=entry` (action "set"), `-MX` ("remove"), `-M#` ("comment")."""

    service: str
    type: str
    action: str
    entry: str | None  # the new master.cf entry text for "set"
    span: Span


@dataclass(frozen=True, slots=True)
class SedSubstitution:
    """One sed `s/pattern/replacement/flags` command, translated to Python's `re`."""

    regex: re.Pattern
    replacement: Callable[[re.Match], str]
    count: int  # 0 = every match (g), 1 = the first
    text: str  # as written

    def apply(self, line: str) -> str:
        return self.regex.sub(self.replacement, line, count=self.count)


@dataclass(frozen=True, slots=True)
class ServiceClone:
    """`postconf -M[f] service/type | sed ... >> /etc/postfix/master.cf`."""

    service: str
    type: str
    folded: bool  # -Mf prints one `-o` per line, so sed sees each on its own line
    substitutions: tuple[SedSubstitution, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class NotAnalyzed:
    text: str
    span: Span


Command = MainEdit | ServiceParameterEdit | ServiceEdit | ServiceClone


@dataclass
class UserPatches:
    commands: list[Command] = field(default_factory=list)  # in script order
    not_analyzed: list[NotAnalyzed] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# Script lines
# --------------------------------------------------------------------------------------------

# lines that change nothing Postfix sees: shell options and messages
_HARMLESS = re.compile(r"^(set\s+[-+][\w-]*(\s+[-+]?\w+)*|:|true|exit(\s+\d+)?|echo\b[^>|]*|printf\b[^>|]*)\s*$")


def parse(source: SourceFile) -> Parsed:
    tree = UserPatches()
    comments: list[Comment] = []
    for text, span in _commands(source, comments):
        for segment in _segments(text):
            if not segment:
                continue
            command = _command(segment, span)
            if command is None:
                if not _HARMLESS.match(" ".join(segment)):
                    tree.not_analyzed.append(NotAnalyzed(text, span))
                    break
            elif command != ():
                tree.commands.extend(command)
    return Parsed(source, tree, [], comments)


def _commands(source: SourceFile, comments: list[Comment]):
    """(command text, span) per logical shell line; backslash-newline joins lines."""
    lines = source.text.split("\n")
    number = 0
    while number < len(lines):
        start = number
        raw = lines[number]
        number += 1
        stripped = raw.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            comments.append(Comment(start + 1, len(raw) - len(raw.lstrip()) + 1, stripped))
            continue
        text = raw
        while text.endswith("\\") and number < len(lines):
            text = text[:-1] + " " + lines[number]
            number += 1
        column = len(raw) - len(raw.lstrip()) + 1
        last = lines[number - 1]
        yield text.strip(), Span(source.path, start + 1, column, number, len(last.rstrip()) + 1)


def _segments(text: str) -> list[list[str]]:
    """Shell words split into commands at `;`, `&&` and `||` (pipes stay inside a command)."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        words = list(lexer)
    except ValueError:  # unbalanced quotes
        return [[text]]
    segments: list[list[str]] = [[]]
    for word in words:
        if word.startswith("#"):
            break  # a trailing comment
        if word in (";", "&&", "||", "&"):
            segments.append([])
        else:
            segments[-1].append(word)
    return segments


def _command(words: list[str], span: Span) -> list[Command] | tuple | None:
    """The edits one command makes; () for a harmless display command; None if not understood."""
    if words[0] not in ("postconf", "/usr/sbin/postconf"):
        return None
    if "|" in words:
        clone = _clone(words, span)
        return None if clone is None else [clone]
    if any(w in (">", ">>", "<", "|", "(", ")") for w in words):
        return None
    flags, operands = _postconf_arguments(words[1:])
    if flags is None:
        return None
    if "P" in flags:
        edits = [_parameter_edit(op, "X" in flags, span) for op in operands]
        return None if any(e is None for e in edits) else edits
    if "M" in flags:
        return _service_edits(flags, operands, span)
    if flags & set("FdnxfhpqvoTHl"):
        return None if "F" in flags else ()  # -F edits are not modelled; the rest only print
    if "X" in flags:
        return [MainEdit(name, None, span) for name in operands]
    if "#" in flags:
        return None
    edits = [_main_edit(op, span) for op in operands]
    if not edits:
        return ()
    if all(e is None for e in edits):
        return () if "e" not in flags else None  # `postconf name` only prints
    return None if any(e is None for e in edits) else edits


def _postconf_arguments(words: list[str]) -> tuple[set[str] | None, list[str]]:
    flags: set[str] = set()
    operands: list[str] = []
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if word.startswith("-") and len(word) > 1 and not operands:
            if word == "-c":  # configuration directory: only the stock one is modelled
                if index >= len(words) or words[index].rstrip("/") != "/etc/postfix":
                    return None, []
                index += 1
                continue
            flags.update(word[1:])
        else:
            operands.append(word)
    return flags, operands


def _main_edit(operand: str, span: Span) -> MainEdit | None:
    match = re.match(r"^\s*([^\s=]+)\s*=(.*)$", operand, re.S)
    if match is None or "\n" in operand:
        return None
    return MainEdit(match.group(1), match.group(2).strip(), span)


def _parameter_edit(operand: str, remove: bool, span: Span) -> ServiceParameterEdit | None:
    if remove:
        parts = operand.split("/")
        value = None
    else:
        match = re.match(r"^\s*([^\s=]+)\s*=(.*)$", operand, re.S)
        if match is None:
            return None
        parts, value = match.group(1).split("/"), match.group(2).strip()
        if re.search(r"\s", value):
            return None  # postconf -P refuses whitespace in the value
    if len(parts) != 3 or not all(parts):
        return None
    return ServiceParameterEdit(parts[0], parts[1], parts[2], value, span, operand)


def _service_edits(flags: set[str], operands: list[str], span: Span) -> list[Command] | tuple | None:
    edits: list[Command] = []
    for operand in operands:
        name, equals, entry = operand.partition("=")
        parts = name.strip().split("/")
        if len(parts) != 2:
            return None
        if "X" in flags:
            edits.append(ServiceEdit(parts[0], parts[1], "remove", None, span))
        elif "#" in flags:
            edits.append(ServiceEdit(parts[0], parts[1], "comment", None, span))
        elif equals:
            edits.append(ServiceEdit(parts[0], parts[1], "set", entry.strip(), span))
        else:
            return ()  # `postconf -M service/type` only prints the entry
    return edits or ()


# --------------------------------------------------------------------------------------------
# The clone idiom: postconf -Mf service/type | sed ... >> /etc/postfix/master.cf
# --------------------------------------------------------------------------------------------


def _clone(words: list[str], span: Span) -> ServiceClone | None:
    if words.count("|") != 1:
        return None
    bar = words.index("|")
    producer, consumer = words[:bar], words[bar + 1:]
    flags, operands = _postconf_arguments(producer[1:])
    if flags is None or "M" not in flags or flags - {"M", "f"} or len(operands) != 1:
        return None
    service, _, service_type = operands[0].partition("/")
    if not service or not service_type or "/" in service_type:
        return None
    if len(consumer) < 3 or consumer[-2] != ">>" or consumer[-1] != MASTER_CF:
        return None
    substitutions = _sed(consumer[:-2])
    if substitutions is None:
        return None
    return ServiceClone(service, service_type, "f" in flags, tuple(substitutions), span)


def _sed(words: list[str]) -> list[SedSubstitution] | None:
    """The substitutions of a `sed` command that reads stdin; None if it does anything else."""
    if not words or words[0] != "sed":
        return None
    scripts: list[str] = []
    extended = False
    index = 1
    while index < len(words):
        word = words[index]
        index += 1
        if word == "-e" and index < len(words):
            scripts.append(words[index])
            index += 1
        elif word.startswith("--expression="):
            scripts.append(word.split("=", 1)[1])
        elif word in ("-E", "-r", "--regexp-extended"):
            extended = True
        elif not scripts and not word.startswith("-"):
            scripts.append(word)  # sed SCRIPT without -e
        else:
            return None  # an input file, -i, -n, ...: not the documented idiom
    substitutions: list[SedSubstitution] = []
    for script in scripts:
        parsed = _sed_script(script, extended)
        if parsed is None:
            return None
        substitutions.extend(parsed)
    return substitutions


def _sed_script(script: str, extended: bool) -> list[SedSubstitution] | None:
    result: list[SedSubstitution] = []
    rest = script.strip()
    while rest:
        if len(rest) < 2 or rest[0] != "s" or rest[1] in "\\\n ":
            return None
        delimiter = rest[1]
        pieces, rest = _split_sed(rest[2:], delimiter)
        if pieces is None:
            return None
        pattern, replacement = pieces
        flags = re.match(r"^[gI0-9]*", rest).group()
        rest = rest[len(flags):].lstrip()
        if rest.startswith(";") or rest.startswith("\n"):
            rest = rest[1:].lstrip()
        elif rest:
            return None
        if re.search(r"[0-9]", flags):
            return None  # "replace the Nth match" is not needed by the documented idiom
        try:
            regex = re.compile(pattern if extended else _bre_to_python(pattern), re.I if "I" in flags else 0)
        except re.error:
            return None
        text = f"s{delimiter}{pattern}{delimiter}{replacement}{delimiter}{flags}"
        result.append(SedSubstitution(regex, _replacement(replacement), 0 if "g" in flags else 1, text))
    return result


def _split_sed(text: str, delimiter: str) -> tuple[tuple[str, str] | None, str]:
    """Split `pattern<d>replacement<d>rest`; `\\<d>` stands for a literal delimiter."""
    parts: list[str] = []
    current = ""
    index = 0
    while index < len(text) and len(parts) < 2:
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            following = text[index + 1]
            current += following if following == delimiter else char + following
            index += 2
            continue
        if char == delimiter:
            parts.append(current)
            current = ""
        else:
            current += char
        index += 1
    if len(parts) < 2:
        return None, ""
    return (parts[0], parts[1]), text[index:]


def _bre_to_python(pattern: str) -> str:
    """A POSIX basic regular expression as a Python one (`\\(` groups, `+?|(){}` literal)."""
    out: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            following = pattern[index + 1]
            if following in "(){}":
                out.append(following)
            elif following.isdigit() or following in "wWsSbB":
                out.append("\\" + following)
            elif following == "n":
                out.append("\n")
            else:
                out.append(re.escape(following))
            index += 2
            continue
        if char == "[":
            end = _bracket_end(pattern, index)
            out.append(pattern[index:end].replace("\\", "\\\\"))
            index = end
            continue
        out.append(re.escape(char) if char in "+?|(){}" else char)
        index += 1
    return "".join(out)


def _bracket_end(pattern: str, start: int) -> int:
    index = start + 1
    if index < len(pattern) and pattern[index] == "^":
        index += 1
    if index < len(pattern) and pattern[index] == "]":
        index += 1
    close = pattern.find("]", index)
    return len(pattern) if close < 0 else close + 1


def _replacement(text: str) -> Callable[[re.Match], str]:
    """sed's replacement: `&` is the match, `\\1`-`\\9` groups, `\\&` a literal `&`."""
    parts: list[str | int] = []
    index = 0
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            following = text[index + 1]
            parts.append(int(following) if following.isdigit() else ("\n" if following == "n" else following))
            index += 2
            continue
        parts.append(0 if char == "&" else char)
        index += 1

    def render(match: re.Match) -> str:
        return "".join(match.group(p) or "" if isinstance(p, int) else p for p in parts)

    return render

