"""MPL006, MPL007: inline suppressions that do not work, or no longer do anything.

A suppression that silently fails is worse than none: the user believes a finding is handled.
These rules run after every other rule (`late=True`) and report what the engine's review of
the `# mailproxy-lint: disable-...` comments found (`linter/suppressions.py`).
"""
from __future__ import annotations

from mailproxy_lint.api import Context, Severity, rule


@rule("MPL006", "invalid-suppression", Severity.WARNING,
      summary="A suppression comment that is malformed, lacks a reason, names an unknown rule, or is not allowed",
      tags=("input", "suppression"), late=True)
def invalid_suppression(ctx: Context):
    """## Why it matters
    A suppression comment the linter cannot read suppresses nothing, and the finding it was
    meant for comes back; worse, a typo such as `disable-nextline` or a missing colon looks
    right to a reviewer. Every suppression needs a reason after ` -- `, so the next reader knows
    why the finding does not apply. When a central CI runs with `--no-inline-suppressions`,
    every suppression comment is reported here and the findings stay.

    ## Bad
    ```
    # mailproxy-lint: disable-nextline=MPL401
    timeout client 50s
    ```

    ## Good
    ```
    # mailproxy-lint: disable-next-line=MPL401 -- this port serves only POP3 clients
    timeout client 50s
    ```

    ## Fix
    Write the comment on a line of its own as
    `# mailproxy-lint: disable-next-line=ID[,ID] -- reason` (or `disable-file=`), with rule ids
    or names from `--list-rules`. `MPL006` and `MPL007` themselves can only be switched off with
    `ignore` in the configuration file.
    """
    if ctx.review is None:
        return
    for span, message in ctx.review.invalid:
        yield ctx.finding(span, message)


@rule("MPL007", "unused-suppression", Severity.NOTE,
      summary="A suppression comment for a rule that reports nothing there",
      tags=("input", "suppression"), late=True)
def unused_suppression(ctx: Context):
    """## Why it matters
    A suppression outlives the problem it was written for: after the config is fixed, or the
    line below it changes, the comment suppresses nothing, and would silently hide the next
    real finding of that rule on that line. Only rules that ran are judged: a suppression of a
    rule left out by `--select`, `ignore` or `per-file-ignores` is not reported. While a file
    fails to parse, nothing is reported here, since rules that need that file stayed silent.

    ## Bad
    ```
    # mailproxy-lint: disable-next-line=MPL401 -- legacy clients
    timeout client 31m
    ```

    ## Good
    ```
    timeout client 31m
    ```

    ## Fix
    Remove the comment, or the rule ids in it that no longer report anything on that line (or,
    for `disable-file`, in that file).
    """
    if ctx.review is None:
        return
    for span, message in ctx.review.unused:
        yield ctx.finding(span, message)
