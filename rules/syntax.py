"""MPL0xx: input the linter could not read."""
import re

from mailproxy_lint.api import Context, Severity, rule

# Template tags (Jinja, Helm and Go templates): the template engine rewrites a line holding one
# before the daemon reads the file, and MPL005 reports the template. A parse error on that line
# is the template's echo, not a mistake of its own. `${{...}}` and `:{{...}}` are Postfix's own.
_TEMPLATE_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}")


@rule("MPL001", "syntax-error", Severity.ERROR,
      summary="A config file does not parse; the daemon would refuse it",
      tags=("input",))
def syntax_error(ctx: Context):
    """## Why it matters
    The daemon that owns the file refuses to start (doveconf, haproxy) or skips the line
    (postconf), and nothing written after the error takes effect. mailproxy-lint reports where the
    parse stopped and what it expected there; the other files are still checked, but rules that
    need this file's side stay silent rather than guess. A line holding template tags
    (`{{ }}`, `{% %}`), or joined to one by Jinja's whitespace control (`-%}` before it, `{%-`
    after it), is not reported: the template engine rewrites it before the daemon reads the
    file, and not-analyzed (MPL005) already says the file is a template.

    ## Bad
    ```
    service imap-login {
      inet_listener imaps {
        haproxy = yes
    }
    ```

    ## Good
    ```
    service imap-login {
      inet_listener imaps {
        haproxy = yes
      }
    }
    ```

    ## Fix
    Correct the file at the reported line and column. Check it with the daemon's own tool
    (`doveconf -n`, `postconf -n`, `haproxy -c -f FILE`) before deploying.
    """
    broken = {problem.span.path for problem in ctx.model.problems}
    lines = {source.path: source.text.split("\n") for source in ctx.model.files if source.path in broken}
    for problem in ctx.model.problems:
        text = lines.get(problem.span.path, [])
        if not _template_line(text, problem.span.line) and not _joined_by_template(text, problem.span.line):
            yield ctx.finding(problem.span, problem.message)


def _template_line(lines: list[str], number: int) -> bool:
    line = lines[number - 1] if 0 < number <= len(lines) else ""
    return any(line[max(m.start() - 1, 0):m.start()] not in ("$", ":") for m in _TEMPLATE_TAG.finditer(line))


def _joined_by_template(lines: list[str], number: int) -> bool:
    """Jinja's `-%}` strips the line break after a tag and `{%-` the one before it, so the line
    is glued to its neighbour when the template is rendered."""
    before = lines[number - 2].rstrip() if 1 < number <= len(lines) + 1 else ""
    after = lines[number].lstrip() if 0 < number < len(lines) else ""
    return before.endswith("-%}") or after.startswith("{%-")
