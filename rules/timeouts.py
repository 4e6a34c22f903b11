"""MPL4xx: proxy timeouts must outlast what the mail protocols legitimately wait."""
from __future__ import annotations

from mailproxy_lint.api import Context, MailProtocol, Option, Product, Severity, Setting, rule
from mailproxy_lint.units import dovecot_seconds, human_seconds

DEFAULT_IDLE_NOTIFY = 120.0  # imap_idle_notify_interval default, Dovecot 2.3 and 2.4
IMAP_PORTS = {143, 993}


def idle_notify_interval(ctx: Context, instance: str) -> Setting[float]:
    """Dovecot's effective `imap_idle_notify_interval` for a config instance, in seconds."""
    config = next((c for c in ctx.model.dovecot if c.id == instance), None)
    if config is not None:
        for key in ("protocol imap/imap_idle_notify_interval", "imap_idle_notify_interval"):
            written = config.settings.get(key)
            if written is not None:
                seconds = dovecot_seconds(written.value)
                if seconds is not None and written.span is not None:
                    return Setting(seconds, written.span, f"imap_idle_notify_interval = {written.value}")
    return Setting(DEFAULT_IDLE_NOTIFY, None, "Dovecot's default imap_idle_notify_interval of 2 minutes")


@rule("MPL401", "idle-timeout-too-short", Severity.ERROR,
      summary="The proxy's idle timeout on an IMAP path is not longer than Dovecot's IDLE keepalive",
      tags=("timeouts", "imap"), facts=("TO01", "VC05"),
      options=(Option("assumed-idle-interval", DEFAULT_IDLE_NOTIFY,
                      "IDLE keepalive interval assumed when the IMAP server's own config is not scanned",
                      kind="duration"),))
def idle_timeout_too_short(ctx: Context):
    """## Why it matters
    An IMAP client in IDLE sends nothing for up to 29 minutes; Dovecot keeps the connection alive
    by sending `* OK Still here` every `imap_idle_notify_interval` (2 minutes by default). A proxy
    whose idle timeout is not longer than that interval cuts every IDLE session: mail arrives
    late, clients reconnect in a loop, and the logs show nothing but disconnects. HAProxy's
    common `timeout client 50s` / `timeout server 50s` defaults are the classic case; in TCP mode
    `timeout tunnel`, when set, replaces both.

    ## Bad
    ```
    defaults
        mode tcp
        timeout client 50s
        timeout server 50s
    ```

    ## Good
    ```
    defaults
        mode tcp
        timeout client 31m
        timeout server 31m
    ```

    ## Fix
    Raise the proxy's idle timeout on IMAP routes well above `imap_idle_notify_interval` (HAProxy:
    `timeout client`/`timeout server` of 30 minutes or more, or `timeout tunnel 31m` in the IMAP
    backend). A value below twice the interval is reported as a warning: one delayed keepalive
    is then enough to cut the session.

    When the IMAP server's own config is not among the scanned files, a 2-minute keepalive is
    assumed; set the rule option `assumed-idle-interval` (for example `"10m"`) to the interval
    your server really uses.
    """
    reported: set[int] = set()
    for lk in ctx.model.links:
        route = lk.route
        if route is None or route.idle_timeout.value is None or id(route) in reported:
            continue
        proto = lk.listener.protocol
        if proto not in (MailProtocol.IMAP, MailProtocol.IMAPS):
            continue
        if lk.listener.product is Product.DOVECOT:
            interval = idle_notify_interval(ctx, lk.listener.instance)
        else:
            interval = _assumed_interval(ctx, "the usual 2-minute IDLE keepalive")
        finding = _compare(ctx, route, interval, lk.listener.describe(), lk.listener.span)
        if finding is not None:
            reported.add(id(route))
            yield finding
    # One side alone: a short timeout in front of an IMAP port breaks IDLE whatever the server.
    for route in ctx.model.routes:
        paths = ctx.model.paths
        if id(route) in reported or route.idle_timeout.value is None or paths.links_of(route):
            continue
        upstream = paths.upstream_of(route)
        ports = {s.port for s in upstream.servers} if upstream else set()
        ports |= {ep.port for ep in paths.entrypoints_of(route)}
        imap = sorted(p for p in ports if p in IMAP_PORTS)
        if imap:
            interval = _assumed_interval(
                ctx, f"Dovecot's default imap_idle_notify_interval of 2 minutes, assumed for port {imap[0]}")
            finding = _compare(ctx, route, interval, f"the IMAP server on port {imap[0]}", None)
            if finding is not None:
                yield finding


def _assumed_interval(ctx: Context, default_origin: str) -> Setting[float]:
    """The keepalive interval assumed when the server's config is not scanned (rule option)."""
    seconds = ctx.option("assumed-idle-interval")
    if seconds == DEFAULT_IDLE_NOTIFY:
        return Setting(seconds, None, default_origin)
    return Setting(seconds, None, "the IDLE keepalive interval set by the assumed-idle-interval option")


def _compare(ctx, route, interval: Setting[float], target: str, target_span):
    timeout = route.idle_timeout
    limit = interval.value
    if timeout.value > 2 * limit:
        return None
    severity = Severity.ERROR if timeout.value <= limit else Severity.WARNING
    verdict = "is not longer than" if severity is Severity.ERROR else "is less than twice"
    origin = f" ({timeout.origin})" if timeout.origin else ""
    related = [(target_span, "the IMAP listener"), (interval.span, "the keepalive interval")]
    related += [(s.span, s.origin or "also decides the idle timeout") for s in route.idle_timeout_related]
    return ctx.finding(
        timeout.span or route.span,
        f"{route.describe()} closes idle connections after {human_seconds(timeout.value)}{origin}, which "
        f"{verdict} {interval.origin} ({human_seconds(limit)}) for {target}: IMAP IDLE sessions are cut; "
        f"raise it to 30m or more",
        related=related,
        severity=severity,
    )


# --------------------------------------------------------------------------------------------
# MPL402-MPL404: HAProxy timeouts on SMTP paths, missing timeouts, independent streams
# --------------------------------------------------------------------------------------------

SMTP_WAIT = 300.0  # RFC 5321 §4.5.3.2: 5 minutes for the greeting, MAIL, RCPT
SMTP_DATA_WAIT = 600.0  # 10 minutes for the reply after the final dot
SMTP_PORTS = {25: "SMTP", 587: "submission", 465: "submissions", 2525: "SMTP", 12525: "SMTP",
              10587: "submission", 10465: "submissions"}
SMTP_PROTOCOLS = {MailProtocol.SMTP, MailProtocol.SUBMISSION, MailProtocol.SUBMISSIONS}
IMAP_PROXY_PORTS = IMAP_PORTS | {10143, 10993}
RE_IDLE = 1800.0  # RFC 2177: clients re-issue IDLE every 29 minutes


def _path_kind(ctx: Context, route, protocols, ports: dict[int, str] | set[int]) -> str | None:
    """What makes the route a path of this protocol: a linked listener, else a port convention."""
    links = ctx.model.paths.links_of(route)
    for lk in links:
        if lk.listener.protocol in protocols:
            return lk.listener.describe()
    if any(lk.listener.protocol is not None for lk in links):
        return None
    upstream = ctx.model.paths.upstream_of(route)
    candidates = [s.port for s in upstream.servers] if upstream is not None else []
    candidates += [ep.port for ep in ctx.model.paths.entrypoints_of(route)]
    for port in candidates:
        if port in ports:
            name = ports[port] if isinstance(ports, dict) else "IMAP"
            return f"port {port} ({name}, assumed from the port number)"
    return None


@rule("MPL402", "smtp-timeout-too-short", Severity.WARNING,
      summary="An SMTP route's proxy timeout is shorter than the waits RFC 5321 allows",
      tags=("timeouts", "smtp"), facts=("TO03",))
def smtp_timeout_too_short(ctx: Context):
    """## Why it matters
    RFC 5321 lets an SMTP server take up to 5 minutes to answer the greeting, MAIL and RCPT,
    and up to 10 minutes to answer the final dot of a message while it runs content filters.
    Nothing crosses the connection while the client waits, so a proxy timeout shorter than
    that (the `1m` or `50s` of many sample haproxy.cfg files) cuts the session: slow deliveries
    fail, and a cut after the final dot makes the sender retry a message the server already
    accepted, which delivers duplicates.

    ## Bad
    ```
    defaults
        mode tcp
        timeout client 1m
        timeout server 1m
    frontend smtp
        bind :25
        default_backend postfix
    ```

    ## Good
    ```
    defaults
        mode tcp
        timeout client 1m
        timeout server 1m
    backend postfix
        timeout tunnel 15m
        server mx 10.0.0.2:25 send-proxy
    ```

    ## Fix
    Give SMTP routes an idle timeout of at least 10 minutes (HAProxy: `timeout tunnel 15m` in
    the SMTP backend, or `timeout client`/`timeout server` of that length). Under 5 minutes is a
    warning; under 10 minutes, where only the wait after the final dot is cut, a note.
    """
    for route in ctx.model.routes:
        timeout = route.idle_timeout
        if timeout.value is None or timeout.value >= SMTP_DATA_WAIT:
            continue
        target = _path_kind(ctx, route, SMTP_PROTOCOLS, SMTP_PORTS)
        if target is None:
            continue
        severity = Severity.WARNING if timeout.value < SMTP_WAIT else Severity.NOTE
        limit = ("the 5 minutes RFC 5321 allows for the greeting, MAIL and RCPT replies"
                 if severity is Severity.WARNING else "the 10 minutes RFC 5321 allows for the reply after the final dot")
        origin = f" ({timeout.origin})" if timeout.origin else ""
        yield ctx.finding(
            timeout.span or route.span,
            f"{route.describe()} closes idle connections after {human_seconds(timeout.value)}{origin}, less than "
            f"{limit}, on the way to {target}: slow SMTP sessions are cut and messages may be delivered twice; "
            "raise it to 10m or more (for example `timeout tunnel 15m` in the backend)",
            related=[(s.span, s.origin or "also decides the idle timeout") for s in route.idle_timeout_related],
            severity=severity,
        )


@rule("MPL403", "timeouts-missing", Severity.NOTE,
      summary="A HAProxy proxy section without client, connect or server timeouts",
      tags=("timeouts", "haproxy"), facts=("TO04",))
def timeouts_missing(ctx: Context):
    """## Why it matters
    HAProxy has no default for `timeout client`, `timeout connect` and `timeout server`: unset
    (or 0) means infinite. Connections whose peer vanished without a FIN stay open for ever and
    pile up until `maxconn` is reached, and HAProxy warns `missing timeouts for frontend ...` at
    every start. Not a mail breakage by itself, hence a note.

    ## Bad
    ```
    frontend imap
        bind :143
        default_backend dovecot
    backend dovecot
        server d1 10.0.0.1:143 send-proxy-v2
    ```

    ## Good
    ```
    defaults
        mode tcp
        timeout connect 5s
        timeout client 31m
        timeout server 31m
    ```

    ## Fix
    Set `timeout connect`, `timeout client` and `timeout server` in `defaults` (long ones for
    mail: 30 minutes or more, see idle-timeout-too-short). In `mode tcp` a backend's
    `timeout tunnel` takes the place of `timeout server`. A file of only `global` and `defaults`
    sections counts for the files after it in its folder, which `haproxy -f <folder>` loads
    after it as one configuration.
    """
    missing: dict[object, tuple[list[str], str]] = {}
    for route in ctx.model.routes:
        if route.product is not Product.HAPROXY or route.section_span is None:
            continue
        if not _set(route.timeouts.get("client")):
            kinds, _ = missing.setdefault(route.section_span, ([], _section_name(route)))
            if "client" not in kinds:
                kinds.append("client")
    for upstream in ctx.model.upstreams:
        if upstream.product is not Product.HAPROXY:
            continue
        http = any(r.layer.value == "http" for r in ctx.model.paths.routes_using(upstream))
        lacking = [k for k in ("connect", "server") if not _set(upstream.timeouts.get(k))]
        if "server" in lacking and not http and _set(upstream.timeouts.get("tunnel")):
            lacking.remove("server")  # mode tcp: timeout tunnel takes its place
        if lacking:
            kinds, _ = missing.setdefault(upstream.span, ([], f"backend {upstream.name!r}"))
            kinds.extend(k for k in lacking if k not in kinds)
    preludes = _defaults_preludes(ctx)
    for span, (kinds, name) in missing.items():
        if any(_loaded_after(prelude, span.path) for prelude in preludes):
            continue  # `haproxy -f <folder>` reads the prelude first, and its `defaults` reach this file
        written = " and ".join(f"`timeout {k}`" for k in kinds)
        yield ctx.finding(
            span,
            f"HAProxy {name} sets no {written} (nor inherits one from `defaults`): idle connections are never "
            f"closed and HAProxy warns 'missing timeouts'; set {written} in `defaults` or here",
        )


def _defaults_preludes(ctx: Context) -> list[str]:
    """HAProxy files with only `global` and `defaults` sections, the defaults setting timeouts.

    Such a file does nothing alone: it is written to be loaded before the other files of its
    folder (`haproxy -f <folder>` reads `*.cfg` in alphabetical order, as one configuration).
    """
    sections: dict[str, set[str]] = {}
    with_timeouts: set[str] = set()
    for written in ctx.model.names:
        if written.product is Product.HAPROXY:
            sections.setdefault(written.span.path, set()).add(written.section)
            if written.section == "defaults" and written.name == "timeout":
                with_timeouts.add(written.span.path)
    return [path for path, kinds in sections.items() if kinds <= {"global", "defaults"} and path in with_timeouts]


def _loaded_after(prelude: str, path: str) -> bool:
    folder, name = path.rpartition("/")[::2]
    prelude_folder, prelude_name = prelude.rpartition("/")[::2]
    return folder == prelude_folder and prelude_name < name


def _set(setting: Setting[float] | None) -> bool:
    return setting is not None and bool(setting.value)


def _section_name(route) -> str:
    return f"section {route.entrypoints[0]!r}" if route.entrypoints else f"route {route.name!r}"


@rule("MPL404", "independent-streams", Severity.WARNING,
      summary="option independent-streams on an IMAP path with a timeout shorter than the 29-minute IDLE cadence",
      tags=("timeouts", "imap", "haproxy"), facts=("TO02",))
def independent_streams(ctx: Context):
    """## Why it matters
    By default, data HAProxy writes to one side also refreshes that side's read timeout, so
    Dovecot's `* OK Still here` keepalives during IMAP IDLE keep the client side alive. With
    `option independent-streams` they no longer do: the client side times out unless the
    client itself sends something, and an idle IMAP client sends nothing for up to 29 minutes
    between IDLE commands (RFC 2177). Every IDLE session shorter-lived than that is cut.

    ## Bad
    ```
    frontend imap
        bind :143
        option independent-streams
        timeout client 10m
        default_backend dovecot
    ```

    ## Good
    ```
    frontend imap
        bind :143
        timeout client 10m
        default_backend dovecot
    ```

    ## Fix
    Remove `option independent-streams` from IMAP frontends and backends, or make the timeout
    on that side at least 30 minutes (`timeout client 31m`, or `timeout tunnel 31m` in the
    backend, which takes over in TCP mode).
    """
    for route in ctx.model.routes:
        option = route.independent_streams
        if option is None:
            continue
        timeout = _side_timeout(ctx, route, option.value)
        if timeout is None or timeout.value >= RE_IDLE:
            continue
        target = _path_kind(ctx, route, {MailProtocol.IMAP, MailProtocol.IMAPS}, IMAP_PROXY_PORTS)
        if target is None:
            continue
        yield ctx.finding(
            option.span or route.span,
            f"{route.describe()} has `option independent-streams` ({option.origin}) on the way to {target}: "
            f"Dovecot's IDLE keepalives no longer refresh the {option.value} side, which then closes after "
            f"{human_seconds(timeout.value)} ({timeout.origin}), before an idle client re-issues IDLE (29 minutes); "
            "remove the option or raise that timeout to 31m",
            related=[(timeout.span, "the timeout that cuts IDLE sessions")],
        )


def _side_timeout(ctx: Context, route, side: str) -> Setting[float] | None:
    """The timeout that closes the side the option is on; `timeout tunnel` wins in TCP mode."""
    upstream = ctx.model.paths.upstream_of(route)
    tunnel = upstream.timeouts.get("tunnel") if upstream is not None else None
    if tunnel is not None and tunnel.value and route.layer.value == "tcp":
        return tunnel
    if side == "frontend":
        found = route.timeouts.get("client")
    else:
        found = upstream.timeouts.get("server") if upstream is not None else None
    return found if found is not None and found.value else None
