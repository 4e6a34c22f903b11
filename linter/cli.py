"""The command line: arguments -> `engine.run` -> a reporter -> an exit code.

This is the only module that prints. Every failure a user can cause ends in one line on stderr
and exit code 2; no traceback reaches a user.
"""
from __future__ import annotations

import argparse
import io
import os
import sys
from enum import IntEnum
from pathlib import Path

from mailproxy_lint import __version__


class Exit(IntEnum):
    OK = 0  # no finding at or above --fail-on
    FINDINGS = 1  # findings at or above --fail-on (syntax errors included)
    ERROR = 2  # usage error, unreadable path, or internal error


FORMATS = ("text", "json", "sarif", "github")


def build_parser() -> argparse.ArgumentParser:
    from mailproxy_lint.model import FileKind

    p = argparse.ArgumentParser(
        prog="mailproxy-lint",
        description="Check that a reverse proxy (HAProxy, Traefik) and the mail server behind it "
        "(Postfix, Dovecot, docker-mailserver) agree on PROXY protocol, TLS and timeouts.",
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help="config directories or files (default: .)")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="output format (default: text; github annotations on standard output inside GitHub Actions)")
    p.add_argument("-o", "--output", metavar="FILE", help="write the report to FILE instead of standard output")
    p.add_argument("--select", metavar="IDS", action="append", default=[],
                   help="only these rules: ids, names or id prefixes, comma-separated")
    p.add_argument("--ignore", metavar="IDS", action="append", default=[], help="skip these rules")
    p.add_argument("--extend-select", metavar="IDS", action="append", default=[],
                   help="add these rules to the selection (of --select or the configuration file)")
    p.add_argument("--kind", choices=[k.value for k in FileKind], help="treat every FILE named on the command line as this kind")
    p.add_argument("--fail-on", choices=("error", "warning", "note"), default="warning",
                   help="lowest severity that makes the exit code 1 (default: warning)")
    p.add_argument("--exit-zero", action="store_true", help="exit 0 even when there are findings")
    p.add_argument("--color", choices=("auto", "always", "never"), default="auto", help="colour text output")
    p.add_argument("--config", metavar="FILE",
                   help="read this configuration file (default: the nearest .mailproxy-lint.toml or pyproject.toml "
                        "with [tool.mailproxy-lint], searched upwards from the first PATH)")
    p.add_argument("--isolated", action="store_true", help="ignore every configuration file")
    p.add_argument("--no-inline-suppressions", "--disable-suppressions", dest="no_inline_suppressions",
                   action="store_true", help="ignore '# mailproxy-lint: disable-...' comments and report each one")
    p.add_argument("--include-suppressed", action="store_true",
                   help="also report findings suppressed inline (SARIF marks them as suppressed)")
    p.add_argument("--baseline", metavar="FILE", help="report only findings not recorded in this baseline file")
    p.add_argument("--write-baseline", metavar="FILE", help="record the current findings in this baseline file")
    p.add_argument("-v", "--verbose", action="store_true", help="say which configuration file is used")
    p.add_argument("--list-rules", action="store_true", help="list every rule and exit")
    p.add_argument("--explain", metavar="ID", help="print a rule's page (id or name) and exit")
    p.add_argument("--version", action="version", version=f"mailproxy-lint {__version__}")
    return p


def _split(values: list[str]) -> list[str]:
    return [item.strip() for value in values for item in value.split(",") if item.strip()]


def list_rules(out) -> None:
    from mailproxy_lint.engine import all_rules

    rules = all_rules()
    width = max(len(r.name) for r in rules)
    for r in rules:
        out.write(f"{r.id}  {r.name:<{width}}  {str(r.severity):<7}  {r.summary}\n")


def explain(token: str, out) -> bool:
    from mailproxy_lint.engine import all_rules

    for r in all_rules():
        if token.upper() == r.id or token.lower() == r.name:
            out.write(f"{r.id} {r.name} [{r.severity}]\n{r.summary}\n\n{r.doc}\n")
            if r.options:  # set in the configuration file: [options.<id>]
                out.write("\n## Options\n")
                from mailproxy_lint.units import human_seconds

                for option in r.options:
                    default = human_seconds(option.default) if option.kind == "duration" else repr(option.default)
                    out.write(f"{option.name} ({option.kind}, default {default}): {option.help}\n")
            return True
    return False


def default_format(environ, to_file: bool) -> str:
    """The format when --format is not given.

    Inside a GitHub Actions job (the runner sets GITHUB_ACTIONS=true) standard output becomes
    annotations; a report written with --output stays text, since the runner reads workflow
    commands only from a step's output.
    """
    return "github" if environ.get("GITHUB_ACTIONS") == "true" and not to_file else "text"


def _fail(message: str) -> int:
    sys.stderr.write(f"mailproxy-lint: {message}\n")
    return Exit.ERROR


def main(argv: list[str] | None = None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:
        return _fail("interrupted")
    except BrokenPipeError:
        return Exit.ERROR
    except Exception as exc:  # a bug: say so in one line, never a traceback
        where = ""
        tb = exc.__traceback__
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        if tb is not None:
            where = f" at {Path(tb.tb_frame.f_code.co_filename).name}:{tb.tb_lineno}"
        # The exception's text may quote a config value (a secret among them): name only its type.
        return _fail(f"internal error: {type(exc).__name__}{where} "
                     "(this is a bug in mailproxy-lint; please report it with the config that triggers it)")


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    if args.list_rules:
        list_rules(sys.stdout)
        return Exit.OK
    if args.explain:
        return Exit.OK if explain(args.explain, sys.stdout) else _fail(f"unknown rule {args.explain!r} (see --list-rules)")

    from mailproxy_lint.engine import RuleSelectionError, run
    from mailproxy_lint.api import Severity
    from mailproxy_lint.model import FileKind

    paths = [Path(p) for p in (args.paths or ["."])]
    for path in paths:
        if not path.exists():
            return _fail(f"{path}: no such file or directory")
        if path.is_dir() and not os.access(path, os.R_OK | os.X_OK):
            return _fail(f"{path}: directory is not readable")
    if args.kind and not any(p.is_file() for p in paths):
        return _fail("--kind applies to files named on the command line; none was given")
    if not args.kind:
        from mailproxy_lint.load import classify, head

        for path in paths:
            if path.is_file() and classify(path) is None and classify(path, head(path)) is None:
                return _fail(f"{path}: cannot tell what kind of config this is; use --kind")
    from mailproxy_lint.baseline import BaselineError
    from mailproxy_lint.config import ConfigError

    try:
        config = _configuration(args, paths)
        result = run(paths, select=_split(args.select), ignore=_split(args.ignore),
                     extend_select=_split(args.extend_select), forced_kind=FileKind(args.kind) if args.kind else None,
                     config=config, inline_suppressions=not args.no_inline_suppressions,
                     include_suppressed=args.include_suppressed)
        _apply_baseline(args, result)
    except (RuleSelectionError, ConfigError, BaselineError) as exc:
        return _fail(str(exc))

    from mailproxy_lint.atomic import write_atomically
    from mailproxy_lint.report import REPORTERS

    fmt = args.format or default_format(os.environ, to_file=bool(args.output))
    buffer = io.StringIO()
    if args.output:
        REPORTERS[fmt](result, buffer, False)
        try:
            write_atomically(Path(args.output), buffer.getvalue())
        except OSError as exc:
            return _fail(f"cannot write {args.output}: {exc.strerror or exc}")
    else:
        colour = args.color == "always" or (args.color == "auto" and fmt == "text" and sys.stdout.isatty()
                                            and "NO_COLOR" not in os.environ)
        REPORTERS[fmt](result, buffer, colour)
        sys.stdout.write(buffer.getvalue())
        sys.stdout.flush()

    threshold = Severity.parse(args.fail_on)
    failing = any(f.severity >= threshold for f in result.findings)
    return Exit.FINDINGS if failing and not args.exit_zero else Exit.OK


def _configuration(args, paths: list[Path]):
    """The configuration file's settings: --config, else the nearest file, else none."""
    from mailproxy_lint.config import Config, ConfigError, discover, load
    from mailproxy_lint.engine import all_rules

    if args.isolated:
        found = None
    elif args.config:
        found = Path(args.config)
        if not found.is_file():
            raise ConfigError(f"{args.config}: no such configuration file")
    else:
        found = discover(paths[0])
    config = load(found, all_rules()) if found is not None else Config()
    if args.verbose:
        sys.stderr.write(f"mailproxy-lint: configuration: {config.path or 'none (defaults)'}\n")
    return config


def _apply_baseline(args, result) -> None:
    """--write-baseline records the findings (and leaves them out); --baseline leaves out known ones."""
    from mailproxy_lint.atomic import write_atomically
    from mailproxy_lint.baseline import Baseline, BaselineError

    file = args.write_baseline or args.baseline
    if not file:
        return
    files = [f for d in result.deployments for f in d.files]
    baseline = Baseline(Path(file), {f.path: f.text for f in files}, {f.path: f.abspath for f in files if f.abspath})
    if args.write_baseline:
        text, count = baseline.render(result.findings)
        try:
            write_atomically(Path(file), text)
        except OSError as exc:
            raise BaselineError(f"cannot write {file}: {exc.strerror or exc}") from None
        sys.stderr.write(f"mailproxy-lint: wrote {count} finding{'s' if count != 1 else ''} to {file}\n")
        result.findings, result.baselined = [], count
        return
    new, known = baseline.split(result.findings)
    result.findings, result.baselined = new, len(known)

