"""MPL7xx: syntax the deployed release no longer reads, and releases with known defects on the path."""
from __future__ import annotations

import re

from mailproxy_lint.api import Context, FileKind, Product, ProxyTls, Route, Setting, Severity, Span, Version, rule
from mailproxy_lint.data.dovecot_renames import NEW_NAMES, REMOVED_SECTIONS, removed_section, rename_for

from mailproxy_lint.rules.routing import MAIL_PORTS

DOVECOT_24 = Version((2, 4))
TRAEFIK_V3 = Version((3,))
# from v3.5.2 the serversTransport's proxyProtocol replaces the load balancer's (facts-traefik §4.3)
TRAEFIK_TRANSPORT_PROXY = Version((3, 5, 2))


def version_text(product: Product, version: Setting[Version]) -> str:
    """`Traefik 3.5.2 (image traefik:v3.5.2, compose.yaml:4:12)`: the version and where it was learnt."""
    where = ", ".join(part for part in (version.origin, str(version.span) if version.span else "") if part)
    return f"{product} {version.value} ({where})" if where else f"{product} {version.value}"


def _written(setting: Setting[str]) -> bool:
    """A value the user wrote (not a product or platform default)."""
    return setting.span is not None and not setting.origin.startswith("docker-mailserver stock")


def traefik_version(ctx: Context) -> Setting[Version] | None:
    """The Traefik version of the scanned deployment, when one is known."""
    return ctx.model.version_of(Product.TRAEFIK, None)


# --------------------------------------------------------------------------------------------
# MPL701
# --------------------------------------------------------------------------------------------


@rule("MPL701", "removed-or-deprecated-syntax", Severity.ERROR,
      summary="Syntax the deployed release no longer reads, or will stop reading",
      tags=("versions",), facts=("VC06", "TK05", "TK06"))
def removed_or_deprecated_syntax(ctx: Context):
    """## Why it matters
    Configuration outlives upgrades. Dovecot 2.4 renamed many settings (`ssl_cert` became
    `ssl_server_cert_file`, `disable_plaintext_auth = yes` became `auth_allow_cleartext = no`)
    and refuses to start on the 2.3 names; docker-mailserver's `:edge` image moved to Dovecot
    2.4, and a custom `dovecot.cf` written for 2.3 no longer loads. Traefik v3 ignores
    Kubernetes resources of the removed `traefik.containo.us` API group (they silently route
    nothing) and disables a router whose rule gives a matcher several arguments
    (``HostSNI(`a`, `b`)``, fine in v2). From Traefik v3.5.2 the load balancer's
    `proxyProtocol` is deprecated in favour of the serversTransport's, and a transport named on
    the service silently replaces it.

    ## Bad
    ```
    # dovecot.cf on docker-mailserver :edge (Dovecot 2.4)
    ssl_cert = </etc/dovecot/tls/fullchain.pem
    ssl_key = </etc/dovecot/tls/privkey.pem
    ```

    ## Good
    ```
    ssl_server_cert_file = /etc/dovecot/tls/fullchain.pem
    ssl_server_key_file = /etc/dovecot/tls/privkey.pem
    ```

    ## Fix
    Use the names the deployed release reads: the Dovecot 2.4 names (file settings take a path,
    without `<`), `apiVersion: traefik.io/v1alpha1`, one argument per matcher (``HostSNI(`a`) ||
    HostSNI(`b`)``), and `proxyProtocol` in a `tcp.serversTransports` entry. Removed syntax is an
    error when the version is known; with no version known, a `traefik.containo.us` resource or
    a v2-only rule is a note (the current Traefik line is v3), and a Dovecot config mixing 2.3
    and 2.4 names is a note. The load balancer `proxyProtocol` deprecation is a note.
    """
    yield from _dovecot_old_names(ctx)
    yield from _traefik_removed_syntax(ctx)
    yield from _deprecated_lb_proxy_protocol(ctx)


def _dovecot_old_names(ctx: Context):
    for config in ctx.model.dovecot:
        old = [(key, s) for key, s in config.settings.items()
               if _written(s) and (rename_for(key) is not None or removed_section(key) is not None)]
        if not old:
            continue
        is_24 = config.version is not None and config.version.value >= DOVECOT_24
        new = next(((k, s) for k, s in config.settings.items() if _written(s) and k.split("/")[-1] in NEW_NAMES),
                   None)
        if not is_24 and (config.version is not None or new is None):
            continue  # a 2.3 configuration, or nothing says it is meant for 2.4
        for key, setting in old:
            yield _old_name_finding(ctx, config, key, setting, is_24, new)


def _old_name_finding(ctx: Context, config, key: str, setting: Setting[str], is_24: bool, new):
    rename = rename_for(key)
    name = key.split("/")[-1]
    if rename is not None:
        replacement = f"Dovecot 2.4 calls it {rename.advice()}"
    else:
        section = removed_section(key)
        replacement = f"2.4 has no `{section} {{ }}` section: {REMOVED_SECTIONS[section]}"
    if is_24:
        return ctx.finding(
            setting.span,
            f"`{name}` is the Dovecot 2.3 name, but this configuration runs on "
            f"{version_text(Product.DOVECOT, config.version)}, which does not know it and refuses to start; "
            f"{replacement}",
            related=[(config.version.span, "where the version comes from")],
        )
    new_key, new_setting = new
    return ctx.finding(
        setting.span,
        f"`{name}` is a Dovecot 2.3 name, while `{new_key.split('/')[-1]}` ({new_setting.span}) is a 2.4 name: no "
        f"Dovecot version reads both, so this configuration fails on either; {replacement}",
        related=[(new_setting.span, "the 2.4 setting")],
        severity=Severity.NOTE,
    )


def _traefik_removed_syntax(ctx: Context):
    version = traefik_version(ctx)
    v3 = version is not None and version.value >= TRAEFIK_V3
    if version is not None and not v3:
        return
    severity = Severity.ERROR if v3 else Severity.NOTE
    running = (version_text(Product.TRAEFIK, version) if v3 else
               "Traefik v3 (no version is known; v3 is the current line)")
    version_source = [(version.span if version else None, "where the version comes from")]
    for route in ctx.model.routes:
        if route.product is not Product.TRAEFIK:
            continue
        group = route.api_group
        if group is not None and group.value == "traefik.containo.us":
            yield ctx.finding(
                group.span or route.span,
                f"{route.describe()} uses the API group traefik.containo.us, which {running} no longer watches: "
                f"the resource routes nothing, silently; use apiVersion: traefik.io/v1alpha1 (available since v2.10)",
                related=version_source,
                severity=severity,
            )
        for form in route.v2_rule_forms:
            yield ctx.finding(
                form.span or route.span,
                f"{route.describe()} writes {form.value}, a {form.origin}: {running} takes one argument per "
                f"matcher and disables the router ('unexpected number of parameters'); join single-argument "
                f"matchers with || instead",
                related=version_source,
                severity=severity,
            )


def _deprecated_lb_proxy_protocol(ctx: Context):
    version = traefik_version(ctx)
    if version is None or version.value < TRAEFIK_TRANSPORT_PROXY:
        return  # deprecated only from v3.5.2; with no version known, nothing to advise yet
    for upstream in ctx.model.upstreams:
        for server in upstream.servers:
            written = server.lb_proxy_protocol
            if server.product is not Product.TRAEFIK or written is None:
                continue
            from_labels = written.span is not None and any(
                f.path == written.span.path and f.kind is FileKind.COMPOSE for f in ctx.model.files)
            where = ("Docker labels cannot define serversTransports, so keep the label or move this service to the "
                     "file provider" if from_labels else
                     "move it to a tcp.serversTransports entry (proxyProtocol.version) and name that transport here")
            yield ctx.finding(
                written.span or server.span,
                f"{server.describe()} sets loadBalancer.proxyProtocol, deprecated since Traefik v3.5.2 in favour of "
                f"the serversTransport's, and this deployment runs {version_text(Product.TRAEFIK, version)}; {where}",
                severity=Severity.NOTE,
            )
            break  # one server line per service is enough: they share the setting


# --------------------------------------------------------------------------------------------
# MPL702
# --------------------------------------------------------------------------------------------

# Traefik releases whose TCP handling cuts mail sessions (facts-traefik §3.3, facts-rules VC05).
# Release candidates are matched on the image tag: the version table reads no pre-release tags.
LINGERING_TIMEOUT_RELEASES = {"2.11.1", "3.0.0-rc4"}  # idle TCP cut after 2 s
READ_DEADLINE_RELEASES = {"2.11.2", "3.0.0-rc5"}  # non-TLS TCP cut readTimeout after accept
PROXY_FROM_BACKEND = Version((3, 5, 2))  # PROXY header built from the backend connection (fixed 3.5.3)
_RELEASE_TAG = re.compile(r"v?(\d+\.\d+\.\d+(?:-rc\d+)?)(?:-[a-z].*)?")


def _traefik_release(ctx: Context) -> tuple[str, Setting[Version] | None, Span | None] | None:
    """(exact release such as "3.0.0-rc5", its version setting, where it was learnt) of the one Traefik."""
    version = traefik_version(ctx)
    if version is not None:
        exact = version.span is not None and "floating" not in version.origin and "'latest'" not in version.origin
        tag = _image_tag_release(ctx, version.span) if exact else None
        return (tag or (str(version.value) if exact else "")), version, version.span
    images = [h.image for h in ctx.model.hosts if h.image is not None and _is_traefik(h.image.value)]
    if len(images) == 1:
        release = _image_tag_release(ctx, images[0].span)
        if release is not None:
            return release, None, images[0].span
    return None


def _is_traefik(image: str) -> bool:
    from mailproxy_lint.data.versions import ImageRef

    return ImageRef.parse(image).name == "traefik"


def _image_tag_release(ctx: Context, span: Span | None) -> str | None:
    """The exact release an image reference at `span` names (`traefik:v3.0.0-rc5` -> 3.0.0-rc5)."""
    from mailproxy_lint.data.versions import ImageRef

    image = next((h.image for h in ctx.model.hosts if h.image is not None and h.image.span == span), None)
    if image is None:
        return None
    match = _RELEASE_TAG.fullmatch(ImageRef.parse(image.value).tag or "")
    return match.group(1) if match else None


def _release_text(release: str, version: Setting[Version] | None, span: Span | None) -> str:
    if version is not None:
        return version_text(Product.TRAEFIK, version) if str(version.value) == release else \
            f"Traefik {release} ({version.origin}, {span})"
    return f"Traefik {release} (image tag, {span})"


def _mail_tcp_routes(ctx: Context, plain_only: bool) -> list[Route]:
    routes = []
    for route in ctx.model.routes:
        if route.product is not Product.TRAEFIK or route.layer.value != "tcp":
            continue
        if plain_only and route.tls.value is not ProxyTls.NONE:
            continue
        if ctx.model.paths.links_of(route) or any(
                ep.port in MAIL_PORTS for ep in ctx.model.paths.entrypoints_of(route)):
            routes.append(route)
    return routes


@rule("MPL702", "known-bad-version", Severity.ERROR,
      summary="A proxy release with a known defect on the mail path",
      tags=("versions", "traefik"), facts=("VC04", "VC05"))
def known_bad_version(ctx: Context):
    """## Why it matters
    A few Traefik releases break mail even with a correct configuration. v2.11.1 and v3.0.0-rc4
    cut every TCP connection idle for 2 seconds (the short-lived `lingeringTimeout`). v2.11.2
    and v3.0.0-rc5 set a 60-second read deadline at accept that non-TLS TCP routers never
    cleared, so every SMTP, submission and IMAP session (IDLE included) died 60 seconds after
    connecting. Before v3.5.2, a service that dials its backend over TLS sent the PROXY header
    after the TLS handshake, where Dovecot and Postfix do not look for it. v3.5.2 built the PROXY
    header from its own backend connection, so the mail server logged Traefik's addresses
    instead of the clients'. A floating tag (`traefik:v2.11`, `v3.5`, `latest`) means the newest
    release of its line, which has the fixes.

    ## Bad
    ```
    services:
      traefik:
        image: traefik:v3.5.2
    ```

    ## Good
    ```
    services:
      traefik:
        image: traefik:v3.5.3
    ```

    ## Fix
    Upgrade: v2.11.3 or later, v3.0.0 or later, and v3.5.3 or later fix these defects. The message
    names the release and where it was learnt (the image tag); with no version known the rule
    stays silent.
    """
    found = _traefik_release(ctx)
    if found is None:
        return
    release, version, span = found
    text = _release_text(release, version, span) if release else version_text(Product.TRAEFIK, version)
    if release in LINGERING_TIMEOUT_RELEASES:
        routes = _mail_tcp_routes(ctx, plain_only=False)
        if routes:
            yield _routes_cut(
                ctx, span, routes,
                f"{text} cuts every TCP connection that stays idle for 2 seconds (its new lingeringTimeout), so "
                f"mail sessions through {routes[0].describe()} break mid-conversation and IMAP IDLE never lasts; "
                f"upgrade to v2.11.3 / v3.0.0 or later",
            )
    if release in READ_DEADLINE_RELEASES:
        yield from _read_deadline(ctx, text, span)
    if version is not None:
        yield from _proxy_defects(ctx, release, version, text, span)


def _read_deadline(ctx: Context, text: str, span: Span | None):
    cut = []
    for route in _mail_tcp_routes(ctx, plain_only=True):
        timeouts = [ep.read_timeout for ep in ctx.model.paths.entrypoints_of(route)]
        if timeouts and all(t is not None and t.value == 0 for t in timeouts):
            continue  # readTimeout 0: no deadline is set at accept
        cut.append(route)
    if cut:
        yield _routes_cut(
            ctx, span, cut,
            f"{text} closes every non-TLS TCP connection readTimeout (60 s by default) after it was accepted, busy "
            f"or not: SMTP deliveries and IMAP sessions through {cut[0].describe()} are cut after a minute; "
            f"upgrade to v2.11.3 / v3.0.0 or later",
        )


def _routes_cut(ctx: Context, span: Span | None, routes: list[Route], message: str):
    """A release defect that cuts `routes`: reported where the release was learnt (else at the
    first route), with every route it cuts."""
    return ctx.finding(span or routes[0].span, message, related=[(r.span, f"the route {r.name!r}") for r in routes])


def _proxy_defects(ctx: Context, release: str, version: Setting[Version], text: str, span: Span | None):
    senders = [s for u in ctx.model.upstreams if u.product is Product.TRAEFIK for s in u.servers
               if s.send_proxy.value.sends and not s.proxy_unknown]
    exact = bool(release)
    if exact and version.value == PROXY_FROM_BACKEND and senders:
        yield ctx.finding(
            span or senders[0].span,
            f"{text} builds the PROXY header from its own connection to the backend, so the mail server sees "
            f"Traefik's addresses instead of the clients' for {senders[0].describe()}: postscreen, DNSBL and rate "
            f"limits act on Traefik; upgrade to v3.5.3 or later",
            related=[(s.span, s.describe()) for s in senders],
        )
    if TRAEFIK_V3 <= version.value < PROXY_FROM_BACKEND:
        late = [s for s in senders if s.tls.value]
        if late:
            yield ctx.finding(
                span or late[0].span,
                f"{text} sends the PROXY header after the TLS handshake when it dials the backend over TLS "
                f"({late[0].describe()}), but Dovecot and Postfix expect it before TLS, so every connection fails; "
                f"upgrade to v3.5.2 or later (v3.5.3 for correct addresses), or dial the backend without TLS",
                related=[(s.tls.span, "TLS towards the backend") for s in late],
            )
