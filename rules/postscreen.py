"""MPL50x: Postfix postscreen wiring (the temporary allowlist cache shared between daemons)."""
from __future__ import annotations

from collections import defaultdict

from mailproxy_lint.api import Context, PostfixConfig, PostfixService, Severity, rule
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
