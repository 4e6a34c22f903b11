"""MPL0xx: input the linter could not read."""
from mailproxy_lint.api import Context, Severity, rule


@rule("MPL001", "syntax-error", Severity.ERROR,
      summary="A config file does not parse; the daemon would refuse it",
      tags=("input",))
def syntax_error(ctx: Context):
    """## Why it matters
    The daemon that owns the file refuses to start (doveconf, haproxy) or skips the line
    (postconf), and nothing written after the error takes effect. mailproxy-lint reports where the
    parse stopped and what it expected there; the other files are still checked, but rules that
    need this file's side stay silent rather than guess.

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
    for problem in ctx.model.problems:
        yield ctx.finding(problem.span, problem.message)
