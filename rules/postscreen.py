"""MPL501, MPL503: Postfix postscreen wiring (the temporary allowlist cache shared between daemons, and
the proxywrite approval a `proxy:` cache needs)."""
from __future__ import annotations

import re
from collections import defaultdict

from mailproxy_lint.api import Context, PostfixConfig, PostfixService, Setting, Severity, rule
from mailproxy_lint.build.postfix import effective_setting, expand

# table types that several postscreen daemons may open at once (POSTSCREEN_README, "Sharing
# the temporary allowlist"): through proxymap, lmdb's own locking, or a memcache server
SHARED_TABLE_TYPES = ("proxy", "lmdb", "memcache")


def _postscreens(config: PostfixConfig) -> list[PostfixService]:
    return [s for s in config.services if s.type == "inet" and s.command == "postscreen"]


def _table_type(cache_map: str) -> str:
    return cache_map.split(":", 1)[0].strip().lower() if ":" in cache_map else ""


@rule("MPL501", "postscreen-cache-not-shared", Severity.ERROR,
      summary="Several postscreen services open the same postscreen cache that only one process can lock",
      tags=("postfix", "postscreen"), facts=("PF01",))
def postscreen_cache_not_shared(ctx: Context):
    """## Why it matters
    Every postscreen daemon opens `postscreen_cache_map` for writing. The default,
    `btree:$data_directory/postscreen_cache`, takes an exclusive lock, so a second postscreen
    service (a PROXY variant on port 12525 next to port 25, for example) dies at start-up with
    `fatal: btree:/var/lib/postfix/postscreen_cache: unable to get exclusive lock` and the
    master throttles it (`bad command startup -- throttling`): nothing answers on that port.

    ## Bad
    ```
    # master.cf
    smtp   inet n - n - 1 postscreen
    12525  inet n - n - 1 postscreen
      -o postscreen_upstream_proxy_protocol=haproxy
    # main.cf: postscreen_cache_map left at its default (btree:...)
    ```

    ## Good
    ```
    # main.cf (docker-mailserver: postfix-main.cf)
    postscreen_cache_map = proxy:btree:$data_directory/postscreen_cache
    ```

    ## Fix
    Share the cache through proxymap: set
    `postscreen_cache_map = proxy:btree:$data_directory/postscreen_cache` in main.cf (with
    docker-mailserver, in `postfix-main.cf` or with `postconf -e` in `user-patches.sh`), so every
    postscreen inherits it and the default `proxy_write_maps` approves it. Let only one service
    clean the cache (`-o postscreen_cache_cleanup_interval=0` on the others). An `lmdb:` table
    can also be shared directly.
    """
    for config in ctx.model.postfix:
        postscreens = _postscreens(config)
        if len(postscreens) < 2:
            continue
        by_map: dict[str, list[PostfixService]] = defaultdict(list)
        for service in postscreens:
            cache_map = expand(config, effective_setting(config, service, "postscreen_cache_map").value, service)
            by_map[cache_map.strip()].append(service)
        for cache_map, sharing in by_map.items():
            if len(sharing) < 2 or _table_type(cache_map) in SHARED_TABLE_TYPES:
                continue
            yield _finding(ctx, config, cache_map, sharing)


def _finding(ctx: Context, config: PostfixConfig, cache_map: str, sharing: list[PostfixService]):
    added = sharing[1]  # the service whose addition broke the single-daemon cache
    setting = effective_setting(config, added, "postscreen_cache_map")
    span = setting.span or added.span
    names = ", ".join(repr(s.name) for s in sharing)
    where = "postfix-main.cf" if config.platform == "docker-mailserver" else "main.cf"
    table = _table_type(cache_map) or "an unnamed"
    message = (
        f"postscreen services {names} all open the postscreen cache {cache_map!r} "
        f"({setting.origin}); a {table} table can be locked by one postscreen only, so the "
        f"others fail with 'unable to get exclusive lock'. Set "
        f"`postscreen_cache_map = proxy:btree:$data_directory/postscreen_cache` in {where}"
    )
    related = [(s.span, f"postscreen service {s.name!r} opens the same cache") for s in sharing if s is not added]
    if setting.span is not None:
        related.append((added.span, f"postscreen service {added.name!r} opens the same cache"))
    return ctx.finding(span, message, related=related)


# --------------------------------------------------------------------------------------------
# MPL503
# --------------------------------------------------------------------------------------------


def _write_maps(config: PostfixConfig) -> tuple[set[str], Setting | None]:
    """The tables proxymap opens for writing (`proxy_write_maps` as the proxywrite service sees it)."""
    proxywrite = next((s for s in config.services if s.name == "proxywrite" and s.command == "proxymap"), None)
    setting = effective_setting(config, proxywrite, "proxy_write_maps")
    tables = {t for t in re.split(r"[\s,]+", expand(config, setting.value, proxywrite)) if t}
    return tables, setting


@rule("MPL503", "proxy-cache-not-writable", Severity.ERROR,
      summary="A proxy: postscreen cache is not listed in proxy_write_maps, so postscreen cannot write it",
      tags=("postfix", "postscreen"), facts=("PF02",))
def proxy_cache_not_writable(ctx: Context):
    """## Why it matters
    A `proxy:` postscreen cache is written through the proxywrite service, which opens only the
    tables named in `proxy_write_maps`. Its default lists `$postscreen_cache_map` as main.cf
    sets it, so a cache that one service sets with `-o postscreen_cache_map=proxy:btree:...`
    (a per-port cache for a PROXY variant of port 25), or a main.cf `proxy_write_maps` that drops
    `$postscreen_cache_map`, is refused: proxymap logs `warning: request for unapproved table`
    and postscreen stops with `fatal: proxywrite service is not configured for table "btree:..."`,
    so nothing answers on that port.

    ## Bad
    ```
    # master.cf
    12525 inet n - n - 1 postscreen
      -o postscreen_upstream_proxy_protocol=haproxy
      -o postscreen_cache_map=proxy:btree:$data_directory/postscreen_12525_cache
    ```

    ## Good
    ```
    # main.cf: one shared cache, approved by the default proxy_write_maps
    postscreen_cache_map = proxy:btree:$data_directory/postscreen_cache
    ```

    ## Fix
    Set the shared `proxy:` cache in main.cf (see MPL501) and drop the per-service override, or
    add each per-service table, written exactly as in `postscreen_cache_map` including the
    `proxy:` prefix, to `proxy_write_maps` in main.cf.
    """
    for config in ctx.model.postfix:
        approved, write_maps = _write_maps(config)
        seen: set[str] = set()
        for service in _postscreens(config):
            setting = effective_setting(config, service, "postscreen_cache_map")
            table = expand(config, setting.value, service).strip()
            if _table_type(table) != "proxy" or table in approved or table in seen:
                continue
            seen.add(table)
            yield _not_writable(ctx, config, service, setting, table, write_maps)


def _not_writable(ctx: Context, config: PostfixConfig, service: PostfixService, setting: Setting, table: str,
                  write_maps: Setting):
    inner = table.split(":", 1)[1]
    where = "postfix-main.cf" if config.platform == "docker-mailserver" else "main.cf"
    if setting.span is not None and service.options.get("postscreen_cache_map") is setting:
        why = f"the {service.name!r} service sets it with -o, and `proxy_write_maps` approves only main.cf's cache"
    else:
        why = f"`proxy_write_maps` ({write_maps.span or write_maps.origin}) does not list it"
    return ctx.finding(
        setting.span or write_maps.span or service.span,
        f"postscreen service {service.name!r} writes its cache {table!r} through proxywrite, but {why}: postscreen "
        f"stops with 'fatal: proxywrite service is not configured for table \"{inner}\"'; set the shared cache in "
        f"{where}, or add {table} to proxy_write_maps there",
        related=[(write_maps.span, "proxy_write_maps"), (service.span, f"postscreen service {service.name!r}")],
    )
