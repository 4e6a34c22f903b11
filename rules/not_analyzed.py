"""MPL005: parts of the scanned files that shape the traffic path but were not interpreted.

Two kinds of text are read without being understood:

* templates: `{{ }}` / `{% %}` (Helm, Jinja, Go templates of Traefik's file provider) in any
  file, `%{name}` placeholders in Postfix files (Postfix defines no `%{}`; Dovecot and HAProxy
  do, so there it is configuration), and compose `${VAR}`/`$VAR` interpolation in the settings
  that decide the path (ports, labels, addresses, image, command, volumes). `$$` is compose's
  escaped dollar, and Dovecot `$var`/`%{var}` and Postfix `$name`/`${name}` are the products'
  own expansions: none of these is a template;
* `user-patches.sh` commands beyond the `postconf` idioms docker-mailserver documents (the
  Postfix builder records them in `PostfixConfig.not_analyzed`).

The rule reads the file texts of the deployment (the scan already holds them) and reports one
note per file and template syntax, and one per script command, so the user knows what was not
checked. Everything else in those files is still checked as usual.
"""
from __future__ import annotations

import re
from typing import Iterator

from mailproxy_lint.api import Context, FileKind, Severity, SourceFile, Span, rule

_POSTFIX_KINDS = {FileKind.POSTFIX_MAIN, FileKind.POSTFIX_MASTER, FileKind.DMS_POSTFIX_MASTER}
# `{{ expr }}` starts with a name, `.`, `$`, a quote or `(` (Postfix's own `inline:{{!1.2.3.4 REJECT}}`
# and `{{@a=@b}}` nest braces and do not); `{% tag ... %}` starts with a word
_JINJA = re.compile(r"""\{\{-?\s*[.$A-Za-z_("'][^{}]*?-?\}\}|\{%-?\s*\w[^%]*?-?%\}""")
_POSTFIX_TABLE_ENTRY = re.compile(r"(?<![=!<>])=(?!=)")  # `{{name=value}}` is a Postfix table, not a template
_PERCENT_PLACEHOLDER = re.compile(r"%\{[A-Za-z_][\w.\-]*\}")
# compose keys whose values decide the path; interpolation anywhere below them is reported
_PATH_KEYS = {"ports", "expose", "labels", "image", "ipv4_address", "ipv6_address", "subnet", "gateway", "ip_range",
              "hostname", "container_name", "aliases", "command", "entrypoint", "volumes", "network_mode"}
_YAML_KEY = re.compile(r"""^(?P<indent>\s*)(?:-\s+)?["']?(?P<key>[^\s"'#:-][^"':#]*?)["']?\s*:(?:\s|$)""")


@rule("MPL005", "not-analyzed", Severity.NOTE,
      summary="A file that shapes the path could not be interpreted (a template, a shell command), "
              "so that part was not checked",
      tags=("input",))
def not_analyzed(ctx: Context):
    """## Why it matters
    mailproxy-lint checks what the daemons will read. A template (`{{ .Values.port }}`,
    `{% if %}`, `%{db_driver}`, compose `${SMTP_PORT}`) is filled in later by another tool, and a
    shell command in docker-mailserver's `user-patches.sh` (`sed -i`, `cp`, a loop) edits files
    in ways the linter does not follow. The values there are unknown, so a missing PROXY setting
    or a wrong port behind them cannot be found: silence about them is not a clean bill of
    health. The rest of the files is still checked.

    ## Bad
    ```
    # compose.yaml
    services:
      mailserver:
        ports:
          - "${SMTP_PORT}:25"
    # user-patches.sh
    sed -i 's/^#submission/submission/' /etc/postfix/master.cf
    ```

    ## Good
    ```
    services:
      mailserver:
        ports:
          - "25:25"
    # user-patches.sh
    postconf -M submission/inet='submission inet n - n - - smtpd'
    ```

    ## Fix
    Lint the rendered files (`helm template`, `docker compose config`, your template engine's
    output) instead of the templates, and write `user-patches.sh` changes with `postconf -e`,
    `postconf -P` and `postconf -M`, which are checked. A note you accept can be ignored with
    `--ignore MPL005`.
    """
    for source in ctx.model.files:
        for span, message in _templates(source):
            yield ctx.finding(span, message)
    for config in ctx.model.postfix:
        for span in config.not_analyzed:
            yield ctx.finding(span, _script_message(ctx, span))


def _templates(source: SourceFile) -> Iterator[tuple[Span, str]]:
    lines = source.text.split("\n")
    # whole-line comments are not read by the daemon (every format here comments with `#`)
    read = [(n, line) for n, line in enumerate(lines, 1) if not line.lstrip().startswith("#")]
    jinja = [(n, m) for n, line in read if (m := _JINJA.search(line)) and not _postfix_expression(source, line, m)]
    if jinja:
        yield _summary(source, jinja, "template syntax", "a template engine (Helm, Jinja, Go templates) fills it in")
    if source.kind in _POSTFIX_KINDS:
        placeholders = [(n, m) for n, line in read if (m := _PERCENT_PLACEHOLDER.search(line))]
        if placeholders:
            yield _summary(source, placeholders, "template placeholder",
                           "Postfix has no `%{}` syntax, so a template engine fills it in")
    if source.kind is FileKind.COMPOSE:
        for number, matches, key in _compose_interpolations(lines):
            names = ", ".join(f"`{_shown(m.group())}`" for m in matches)
            it = "its value comes" if len(matches) == 1 else "their values come"
            yield (Span(source.path, number, matches[0].start() + 1, number, matches[-1].end() + 1),
                   f"{names} in `{key}` {'is' if len(matches) == 1 else 'are'} compose interpolation: {it} from the "
                   f"environment or an .env file at deploy time, so what this line decides was not checked; "
                   f"lint the output of `docker compose config` to check it")


def _postfix_expression(source: SourceFile, line: str, match: re.Match) -> bool:
    """Postfix's own braces: `${{$a} == {b}}` comparisons and `inline:{{key=value}}` tables."""
    if source.kind not in _POSTFIX_KINDS | {FileKind.DMS_USER_PATCHES}:
        return False
    before = line[max(match.start() - 1, 0):match.start()]
    return before in ("$", ":") or bool(_POSTFIX_TABLE_ENTRY.search(match.group()))


def _summary(source: SourceFile, hits: list[tuple[int, re.Match]], what: str, why: str) -> tuple[Span, str]:
    number, match = hits[0]
    others = f" (and {len(hits) - 1} more line{'s' if len(hits) > 2 else ''})" if len(hits) > 1 else ""
    text = match.group()
    shown = text if len(text) <= 40 else text[:37] + "..."
    return (Span(source.path, number, match.start() + 1, number, match.start() + len(text) + 1),
            f"{what} `{shown}`{others}: {why} before the daemon reads the file, and the settings it decides "
            f"were not checked; lint the rendered file to have them checked")


def _compose_interpolations(lines: list[str]) -> Iterator[tuple[int, list[re.Match], str]]:
    """(line, matches, key) of `${VAR}`/`$VAR` under a path-deciding key of a compose file."""
    stack: list[tuple[int, str]] = []
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(line.lstrip(" "))
        key = _YAML_KEY.match(line)
        if key is not None:
            while stack and stack[-1][0] >= indent:
                stack.pop()
            stack.append((indent, key.group("key").strip()))
        else:
            while stack and stack[-1][0] >= indent:
                stack.pop()
        owner = next((k for _, k in reversed(stack) if k in _PATH_KEYS), None)
        if owner is None:
            continue
        comment = line.find(" #")
        found = [m for m in interpolations(line, key.end() if key is not None else 0)
                 if comment < 0 or m.start() < comment]
        if found:
            yield number, found, owner


_INTERPOLATION = re.compile(r"\$\$|\$\{[A-Za-z_]\w*(?:[^{}]*\})?|\$[A-Za-z_]\w*")


def _shown(text: str) -> str:
    return text + "...}" if text.startswith("${") and not text.endswith("}") else text


def interpolations(text: str, start: int = 0) -> Iterator[re.Match]:
    """Compose `${VAR}`, `${VAR:-default}` and `$VAR` in `text`; `$$` is a literal dollar."""
    for match in _INTERPOLATION.finditer(text, start):
        if match.group() != "$$":
            yield match


def _script_message(ctx: Context, span: Span) -> str:
    source = next((f for f in ctx.model.files if f.path == span.path), None)
    lines = source.text.split("\n") if source is not None else []
    text = lines[span.line - 1].strip() if 0 < span.line <= len(lines) else ""
    command = text.split()[0] if text.split() else "this command"
    return (f"`{command}` in user-patches.sh is not analyzed: only the `postconf -e/-X/-P/-M` commands and the "
            f"`postconf -M | sed >> master.cf` clone are understood, so what this line changes in Postfix was "
            f"not checked; write the change with `postconf` to have it checked")
