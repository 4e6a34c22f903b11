"""MPL201-MPL203: who a mail server believes when a PROXY header claims a client address.

Dovecot accepts a PROXY header only from sources in `haproxy_trusted_networks`. The list must
hold the proxy's real source address (else every proxied connection is dropped) and nothing
much wider (else anyone in the range can claim any client address). The proxy's address is
known when compose pins it (`ipv4_address`/`ipv6_address` of the proxy's container); otherwise
these rules stay silent about it.
"""
from __future__ import annotations

import ipaddress
from collections import defaultdict

from mailproxy_lint.api import Context, Entrypoint, Host, Link, Listener, Product, Setting, Severity, rule
from mailproxy_lint.data.versions import ImageRef
from mailproxy_lint.units import network_text

# Whole private ranges (RFC 1918, RFC 4193): trusting one trusts every host of a LAN or VPC
PRIVATE_RANGES = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"))


def _proxy_listeners(ctx: Context) -> list[Listener]:
    """Dovecot listeners with `haproxy = yes` (the only ones that consult the trust list)."""
    return [lst for lst in ctx.model.listeners
            if lst.product is Product.DOVECOT and lst.accepts_proxy.value.sends and lst.trusted_proxies is not None]


def _by_instance(listeners: list[Listener]) -> dict[str, list[Listener]]:
    grouped: dict[str, list[Listener]] = defaultdict(list)
    for listener in listeners:
        grouped[listener.instance].append(listener)
    return grouped


def proxy_host(ctx: Context, entrypoint: Entrypoint | None) -> tuple[Host, str] | None:
    """The Host the proxy of an entrypoint runs on, and how that was learnt; None when unknown.

    Traefik entrypoints from compose name their container. HAProxy configs do not say where they
    run: a single compose service running an `haproxy` image is taken to be it.
    """
    if entrypoint is None:
        return None
    if entrypoint.host is not None:
        host = next((h for h in ctx.model.hosts if h.name == entrypoint.host), None)
        return (host, f"{entrypoint.product} runs in container {host.name!r}") if host is not None else None
    if entrypoint.product is Product.HAPROXY:
        candidates = [h for h in ctx.model.hosts if h.image is not None and ImageRef.parse(h.image.value).name == "haproxy"]
        if len(candidates) == 1:
            host = candidates[0]
            return host, f"HAProxy is taken to be the compose service {host.name!r} (image {host.image.value})"
    return None


def _addresses(host: Host) -> list[tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, Setting[str]]]:
    out = []
    for setting in host.addresses:
        try:
            address = ipaddress.ip_address(setting.value.strip().strip("[]"))
        except ValueError:
            continue
        # Dovecot compares IPv4-mapped IPv6 addresses as IPv4 (net_is_in_network)
        mapped = getattr(address, "ipv4_mapped", None)
        out.append((mapped or address, setting))
    return out


# --------------------------------------------------------------------------------------------
# MPL201
# --------------------------------------------------------------------------------------------


@rule("MPL201", "trusted-networks-missing", Severity.ERROR,
      summary="A Dovecot listener accepts PROXY but haproxy_trusted_networks is empty or unset",
      tags=("proxy-protocol", "trust", "dovecot"), facts=("TR01",))
def trusted_networks_missing(ctx: Context):
    """## Why it matters
    A Dovecot listener with `haproxy = yes` accepts the PROXY header only from addresses in
    `haproxy_trusted_networks`. With the setting unset or empty nobody is trusted: every
    connection, including the proxy's, is closed at once and the log shows
    `haproxy: Client not trusted (rip=<proxy address>)`.

    ## Bad
    ```
    service imap-login {
      inet_listener imap {
        haproxy = yes
      }
    }
    ```

    ## Good
    ```
    haproxy_trusted_networks = 172.16.42.2
    service imap-login {
      inet_listener imap {
        haproxy = yes
      }
    }
    ```

    ## Fix
    Set `haproxy_trusted_networks` at top level to the proxy's address (or the few addresses it
    connects from); with docker-mailserver put it in `dovecot.cf`, and pin the proxy's address in
    compose (`ipv4_address`) so the list stays right.
    """
    for instance, listeners in _by_instance(_proxy_listeners(ctx)).items():
        trusted = listeners[0].trusted_proxies
        if trusted.value:
            continue
        first = listeners[0]
        others = [(lst.accepts_proxy.span or lst.span, f"{lst.describe()} also accepts PROXY") for lst in listeners[1:]]
        if trusted.span is not None:
            yield ctx.finding(
                trusted.span,
                f"`haproxy_trusted_networks = {_raw_value(ctx, instance)}` {_why_empty(trusted)}, but "
                f"{first.describe()} accepts PROXY: Dovecot trusts nobody and closes every proxied connection "
                f"with 'Client not trusted'; list the proxy's address",
                related=[(first.accepts_proxy.span or first.span, f"{first.describe()} accepts PROXY"), *others],
            )
        else:
            yield ctx.finding(
                first.accepts_proxy.span or first.span,
                f"{first.describe()} accepts PROXY, but `haproxy_trusted_networks` is not set: Dovecot trusts "
                f"nobody and closes every proxied connection with 'Client not trusted'; add "
                f"`haproxy_trusted_networks = <proxy address>` at top level",
                related=others,
            )


def _raw_value(ctx: Context, instance: str) -> str:
    config = next((c for c in ctx.model.dovecot if c.id == instance), None)
    written = config.settings.get("haproxy_trusted_networks") if config is not None else None
    return written.value.strip() if written is not None else ""


def _why_empty(trusted: Setting) -> str:
    if "invalid entry" in trusted.origin:
        return "starts with an invalid entry, so Dovecot ignores the whole list"
    return "lists no network"


# --------------------------------------------------------------------------------------------
# MPL202
# --------------------------------------------------------------------------------------------


@rule("MPL202", "proxy-not-trusted", Severity.ERROR,
      summary="The proxy's known source address is outside the mail listener's trusted networks",
      tags=("proxy-protocol", "trust", "dovecot"), facts=("TR02",))
def proxy_not_trusted(ctx: Context):
    """## Why it matters
    Dovecot checks the real TCP source of each connection against `haproxy_trusted_networks`
    before it reads the PROXY header. When the proxy connects from an address outside the list,
    every proxied connection is closed with `haproxy: Client not trusted (rip=<proxy address>)`.
    IPv4 and IPv6 entries never match each other. The rule knows the proxy's address only when
    compose pins it (`ipv4_address`/`ipv6_address` of the Traefik or HAProxy container) and
    stays silent otherwise. A proxy on several networks, or behind NAT or HAProxy `source`, may
    connect from another address than the one pinned; the message names the address it used.

    ## Bad
    ```
    # compose: traefik ... networks: { mail: { ipv4_address: 172.16.42.2 } }
    # dovecot.cf
    haproxy_trusted_networks = 172.16.42.3
    ```

    ## Good
    ```
    haproxy_trusted_networks = 172.16.42.2
    ```

    ## Fix
    Put the proxy's address (as the mail server sees it) in `haproxy_trusted_networks`, or pin
    the proxy to the address the list names.
    """
    # one finding per trust list and proxy: every listener behind it fails the same way
    groups: dict[tuple[str, str], list[Link]] = defaultdict(list)
    hosts: dict[tuple[str, str], tuple[Host, str]] = {}
    for lk in ctx.model.links:
        listener = lk.listener
        if listener.product is not Product.DOVECOT or not listener.accepts_proxy.value.sends:
            continue
        trusted = listener.trusted_proxies
        if trusted is None or not trusted.value:
            continue  # MPL201
        found = proxy_host(ctx, lk.entrypoint)
        if found is None:
            continue
        addresses = _addresses(found[0])
        if not addresses or any(_is_trusted(address, trusted.value) for address, _ in addresses):
            continue
        key = (listener.instance, found[0].name)
        hosts[key] = found
        if all(other.listener is not listener for other in groups[key]):
            groups[key].append(lk)
    for key, links in groups.items():
        yield _not_trusted(ctx, links, *hosts[key])


def _is_trusted(address, networks) -> bool:
    return any(address in network for network in networks if network.version == address.version)


def _not_trusted(ctx: Context, links: list[Link], host: Host, how: str):
    first = links[0]
    trusted = first.listener.trusted_proxies
    addresses = _addresses(host)
    shown = ", ".join(str(a) for a, _ in addresses)
    networks = " ".join(network_text(n) for n in trusted.value)
    if trusted.origin != "haproxy_trusted_networks":
        networks += f"; {trusted.origin}"
    targets = ", ".join(lk.listener.describe() for lk in links)
    return ctx.finding(
        trusted.span or first.listener.span,
        f"{first.server.product} connects to {targets} from {shown} ({how}, {addresses[0][1].origin}), "
        f"which is not in `haproxy_trusted_networks` ({networks}): Dovecot closes every proxied connection with "
        f"'Client not trusted'; add {addresses[0][0]} to the list",
        related=[(addresses[0][1].span, f"the proxy's address ({host.name!r})")]
        + [(lk.listener.accepts_proxy.span or lk.listener.span, f"{lk.listener.describe()} accepts PROXY") for lk in links],
    )


# --------------------------------------------------------------------------------------------
# MPL203
# --------------------------------------------------------------------------------------------


@rule("MPL203", "trust-too-broad", Severity.WARNING,
      summary="The trusted proxy networks are much wider than the proxy",
      tags=("proxy-protocol", "trust", "security"), security_severity=7.5, facts=("TR03",))
def trust_too_broad(ctx: Context):
    """## Why it matters
    Every address in `haproxy_trusted_networks` may send a PROXY header and claim to be any
    client. With `0.0.0.0/0` or `::/0` anyone who reaches the port can do so: bans, rate limits
    and IP-based exceptions stop meaning anything. A whole private range (`10.0.0.0/8`,
    `172.16.0.0/12`, `192.168.0.0/16`, `fc00::/7`) hands the same power to every machine of the
    LAN or VPC. A Docker network's subnet includes its gateway (the first address, `.1`), and
    with Docker's userland proxy, connections from outside to a published port arrive from that
    gateway address, so they too may forge a client address.

    ## Bad
    ```
    haproxy_trusted_networks = 172.16.42.0/24
    ```

    ## Good
    ```
    haproxy_trusted_networks = 172.16.42.2
    ```

    ## Fix
    List only the proxy's own address(es); pin it in compose with `ipv4_address` so it cannot
    change. `/0` is an error; the other patterns are warnings. The gateway case is reported only
    when compose pins the proxy's address inside the listed network, and assumes Docker's
    default of giving the gateway the network's first address.
    """
    for instance, listeners in _by_instance(_proxy_listeners(ctx)).items():
        trusted = listeners[0].trusted_proxies
        if trusted.span is None:
            continue
        proxy = _proxy_address(ctx, listeners)
        for network in trusted.value:
            finding = _too_broad(ctx, network, trusted, listeners[0], proxy)
            if finding is not None:
                yield finding


def _proxy_address(ctx: Context, listeners: list[Listener]):
    """(address, its Setting, host) of the proxy linked to these listeners, when compose pins one."""
    wanted = {id(lst) for lst in listeners}
    for lk in ctx.model.links:
        if id(lk.listener) in wanted:
            found = proxy_host(ctx, lk.entrypoint)
            if found is not None and _addresses(found[0]):
                address, setting = _addresses(found[0])[0]
                return address, setting, found[0]
    return None


def _too_broad(ctx: Context, network, trusted, listener: Listener, proxy):
    what = f"`haproxy_trusted_networks` trusts {network}"
    related = [(listener.accepts_proxy.span or listener.span, f"{listener.describe()} accepts PROXY")]
    if proxy is not None:
        related.append((proxy[1].span, f"the proxy's address {proxy[0]}"))
    if network.prefixlen == 0:
        return ctx.finding(
            trusted.span,
            f"{what}, every IPv{network.version} address: anyone who reaches the port can send a PROXY header "
            f"and claim any client address; list only the proxy's address",
            related=related, severity=Severity.ERROR,
        )
    whole = next((r for r in PRIVATE_RANGES if r.version == network.version and network.supernet_of(r)), None)
    if whole is not None:
        return ctx.finding(
            trusted.span,
            f"{what}, which covers the whole private range {whole}: any machine there can send a PROXY header "
            f"and claim any client address; list only the proxy's address",
            related=related,
        )
    if proxy is None or proxy[0].version != network.version or proxy[0] not in network:
        return None
    gateway = network.network_address + 1
    if network.num_addresses < 4 or gateway == proxy[0]:
        return None
    return ctx.finding(
        trusted.span,
        f"{what}, the network of the proxy's pinned address {proxy[0]} ({proxy[2].name!r}, {proxy[1].origin}) "
        f"rather than that address: it includes {gateway}, the gateway Docker gives a network with this subnet, "
        f"through which outside connections to published ports can arrive, and every other container there; "
        f"any of them can forge client addresses. Trust {proxy[0]} only",
        related=related,
    )
