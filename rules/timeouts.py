"""MPL4xx: proxy timeouts must outlast what the mail protocols legitimately wait."""
from __future__ import annotations

from mailproxy_lint.api import Context, MailProtocol, Product, Severity, Setting, rule
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
      tags=("timeouts", "imap"), facts=("TO01", "VC05"))
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
            interval = Setting(DEFAULT_IDLE_NOTIFY, None, "the usual 2-minute IDLE keepalive")
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
            interval = Setting(DEFAULT_IDLE_NOTIFY, None,
                               f"Dovecot's default imap_idle_notify_interval of 2 minutes, assumed for port {imap[0]}")
            finding = _compare(ctx, route, interval, f"the IMAP server on port {imap[0]}", None)
            if finding is not None:
                yield finding


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
