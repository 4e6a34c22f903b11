"""MPL201-MPL203: who a mail server believes when a PROXY header claims a client address.

Dovecot accepts a PROXY header only from sources in `haproxy_trusted_networks`, Stalwart only
from `server.proxy.trusted-networks` (or a listener's own `proxy.trusted-networks`). The list must
hold the proxy's real source address (else every proxied connection fails) and nothing much
wider (else anyone in the range can claim any client address). The proxy's address is
known when compose pins it (`ipv4_address`/`ipv6_address` of the proxy's container); otherwise
these rules stay silent about it.
"""
from __future__ import annotations

import ipaddress
from collections import defaultdict

from mailproxy_lint.api import Context, Entrypoint, Host, Link, Listener, Product, Setting, Severity, rule
from mailproxy_lint.api import NetworkAttachment, Subnet
from mailproxy_lint.data.versions import ImageRef
from mailproxy_lint.units import network_text

# Whole private ranges (RFC 1918, RFC 4193): trusting one trusts every host of a LAN or VPC
PRIVATE_RANGES = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"))


# Mail servers that read PROXY only from a list of trusted sources
TRUST_PRODUCTS = (Product.DOVECOT, Product.STALWART)


def _proxy_listeners(ctx: Context) -> list[Listener]:
    """Listeners that accept PROXY from a trust list: Dovecot `haproxy = yes`, Stalwart listeners
    with trusted networks (the only ones that consult a trust list)."""
    from_environment = {c.id for c in ctx.model.dovecot if "$ENV:" in _raw_value(ctx, c.id)}
    return [lst for lst in ctx.model.listeners
            if lst.product in TRUST_PRODUCTS and lst.accepts_proxy.value.sends and lst.trusted_proxies is not None
            and lst.instance not in from_environment]  # `$ENV:NAME`: known only when Dovecot starts


def trust_key(listener: Listener) -> str:
    """The setting that holds a listener's trust list, as its config spells it."""
    if listener.product is Product.STALWART and listener.trusted_proxies is not None:
        return listener.trusted_proxies.origin  # the key as written: global or the listener's own
    return "haproxy_trusted_networks"


def untrusted_outcome(listener: Listener) -> str:
    """What the mail server does with a PROXY header from a source outside its trust list."""
    if listener.product is Product.STALWART:
        return ("Stalwart treats the proxy as a direct client and reads the PROXY header as protocol data "
                "(SMTP answers '500 5.5.1 Invalid command.')")
    return "Dovecot closes every proxied connection with 'Client not trusted'"


def accepts_proxy_note(listener: Listener) -> tuple:
    """(span, text) for a finding's related locations: the line that makes `listener` accept PROXY."""
    return listener.accepts_proxy.span or listener.span, f"{listener.describe()} accepts PROXY"


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
        host = ctx.model.host(entrypoint.host)
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
    compose (`ipv4_address`) so the list stays right. Stays silent when the list is taken from
    the environment (`$ENV:NAME`) or when an `!include` outside the scanned directory may set it.
    """
    for instance, listeners in _by_instance(_proxy_listeners(ctx)).items():
        trusted = listeners[0].trusted_proxies
        if trusted.value or trusted.span is None and _includes_outside(ctx, instance):
            continue  # set, or possibly set in an included file outside the scanned directory
        first = listeners[0]
        others = [(lst.accepts_proxy.span or lst.span, f"{lst.describe()} also accepts PROXY") for lst in listeners[1:]]
        if trusted.span is not None:
            yield ctx.finding(
                trusted.span,
                f"`haproxy_trusted_networks = {_raw_value(ctx, instance)}` {_why_empty(trusted)}, but "
                f"{first.describe()} accepts PROXY: Dovecot trusts nobody and closes every proxied connection "
                f"with 'Client not trusted'; list the proxy's address",
                related=[accepts_proxy_note(first), *others],
            )
        else:
            yield ctx.finding(
                first.accepts_proxy.span or first.span,
                f"{first.describe()} accepts PROXY, but `haproxy_trusted_networks` is not set: Dovecot trusts "
                f"nobody and closes every proxied connection with 'Client not trusted'; add "
                f"`haproxy_trusted_networks = <proxy address>` at top level",
                related=others,
            )


def _includes_outside(ctx: Context, instance: str) -> bool:
    config = next((c for c in ctx.model.dovecot if c.id == instance), None)
    return config is not None and bool(config.unread_includes)


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
    Stalwart reads the header only from sources in `server.proxy.trusted-networks` (or the
    listener's own `proxy.trusted-networks`) and treats every other source as a direct client, so
    a PROXY header from an untrusted proxy reaches the SMTP or IMAP parser as a bad command.

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
    Put the proxy's address (as the mail server sees it) in `haproxy_trusted_networks` (Stalwart:
    the listener's `proxy.trusted-networks` or `server.proxy.trusted-networks`), or pin the proxy
    to the address the list names.
    """
    untrusted = [(lk, proxy, (proxy, how)) for lk, proxy, how in _links_checking_trust(ctx)
                 if _known_and_untrusted(proxy, lk.listener.trusted_proxies.value)]
    for links, (proxy, how) in _per_trust_list(untrusted):
        yield _not_trusted(ctx, links, proxy, how)
    yield from _unpinned_not_trusted(ctx)


def _links_checking_trust(ctx: Context) -> list[tuple[Link, Host, str]]:
    """Links whose listener checks the proxy's source against a non-empty trust list before it
    reads PROXY, with the proxy's host and how that was learnt (links whose proxy is unknown are
    left out)."""
    checking = []
    for lk in ctx.model.links:
        listener = lk.listener
        if listener.product not in TRUST_PRODUCTS or not listener.accepts_proxy.value.sends:
            continue
        if listener.product is Product.STALWART and not lk.server.send_proxy.value.sends:
            continue  # Stalwart serves untrusted sources as direct clients: no header, no problem
        trusted = listener.trusted_proxies
        if trusted is None or not trusted.value:
            continue  # MPL201
        found = proxy_host(ctx, lk.entrypoint)
        if found is not None:
            checking.append((lk, found[0], found[1]))
    return checking


def _per_trust_list(found: list[tuple[Link, Host, tuple]]) -> list[tuple[list[Link], tuple]]:
    """(links, details) per trust list and proxy, each listener once, with the details last seen:
    one finding per group, since every listener behind one list fails the same way."""
    groups: dict[tuple, list[Link]] = defaultdict(list)
    details: dict[tuple, tuple] = {}
    for lk, proxy, detail in found:
        key = (lk.listener.instance, proxy.name, lk.listener.trusted_proxies.span)  # Stalwart: one list per listener
        details[key] = detail
        if all(other.listener is not lk.listener for other in groups[key]):
            groups[key].append(lk)
    return [(links, details[key]) for key, links in groups.items()]


def _known_and_untrusted(proxy: Host, networks) -> bool:
    """The proxy's pinned addresses are known, and none of them is in `networks`."""
    addresses = _addresses(proxy)
    return bool(addresses) and not any(_is_trusted(address, networks) for address, _ in addresses)


def proxy_outside_trust(ctx: Context, link: Link) -> bool:
    """True when the proxy's known address is outside the listener's trust list: Stalwart then
    serves the proxy as a direct client and expects no PROXY header from it."""
    trusted = link.listener.trusted_proxies
    found = proxy_host(ctx, link.entrypoint)
    if trusted is None or found is None:
        return False
    return _known_and_untrusted(found[0], trusted.value)


def _is_trusted(address, networks) -> bool:
    return any(address in network for network in networks if network.version == address.version)


def _not_trusted(ctx: Context, links: list[Link], host: Host, how: str):
    trusted = links[0].listener.trusted_proxies
    addresses = _addresses(host)
    shown = ", ".join(str(a) for a, _ in addresses)
    networks = " ".join(network_text(n) for n in trusted.value)
    key = trust_key(links[0].listener)
    if trusted.origin != key:
        networks += f"; {trusted.origin}"
    return _outside_trust_finding(
        ctx, links,
        f"from {shown} ({how}, {addresses[0][1].origin}), which is not in `{key}` ({networks})",
        f"add {addresses[0][0]} to the list",
        [(addresses[0][1].span, f"the proxy's address ({host.name!r})")],
    )


def _outside_trust_finding(ctx: Context, links: list[Link], source_and_list: str, fix: str, related: list):
    """MPL202's finding: the proxy of `links` connects from outside their listeners' one trust list."""
    first = links[0]
    targets = ", ".join(lk.listener.describe() for lk in links)
    return ctx.finding(
        first.listener.trusted_proxies.span or first.listener.span,
        f"{first.server.product} connects to {targets} {source_and_list}: {untrusted_outcome(first.listener)}; {fix}",
        related=[*related, *(accepts_proxy_note(lk.listener) for lk in links)],
    )


# --------------------------------------------------------------------------------------------
# MPL203
# --------------------------------------------------------------------------------------------


@rule("MPL203", "trust-too-broad", Severity.WARNING,
      summary="The trusted proxy networks are much wider than the proxy",
      tags=("proxy-protocol", "trust", "security"), security_severity=7.5, facts=("TR03",))
def trust_too_broad(ctx: Context):
    """## Why it matters
    Every address in `haproxy_trusted_networks` (Stalwart: `proxy.trusted-networks`) may send a
    PROXY header and claim to be any client. With `0.0.0.0/0` or `::/0` anyone who reaches the port can do so: bans, rate limits
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
    change. `/0` is an error; the other patterns are warnings. The gateway case is reported when
    the list covers a compose network of the mail container (`ipam.config` subnet; its `gateway`,
    else Docker's default, the first address), or holds the proxy's pinned address and its
    network's first address.
    """
    for listeners in _by_trust_list(_proxy_listeners(ctx)):
        trusted = listeners[0].trusted_proxies
        if trusted.span is None:
            continue
        proxy = _proxy_address(ctx, listeners)
        for network in trusted.value:
            finding = _too_broad(ctx, network, trusted, listeners[0], proxy)
            if finding is not None:
                yield finding


def _by_trust_list(listeners: list[Listener]) -> list[list[Listener]]:
    """Listeners sharing one written trust list (Dovecot: one per instance; Stalwart: the global
    list or a listener's own)."""
    grouped: dict[tuple, list[Listener]] = defaultdict(list)
    for listener in listeners:
        grouped[(listener.instance, listener.trusted_proxies.span)].append(listener)
    return list(grouped.values())


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
    what = f"`{trust_key(listener)}` trusts {network}"
    related = [accepts_proxy_note(listener)]
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
    on_compose = _compose_gateway(ctx, network, listener, proxy)
    if on_compose is not None:
        return _gateway_finding(ctx, what, trusted, related, *on_compose)
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


# --------------------------------------------------------------------------------------------
# Compose network facts (subnets and gateways from `ipam.config`)
# --------------------------------------------------------------------------------------------


def _shared_networks(proxy: Host, mail: Host) -> list[NetworkAttachment]:
    """The proxy's attachments to networks the mail host joins too (it connects from one of them)."""
    theirs = {n.name for n in mail.networks}
    return [n for n in proxy.networks if n.name in theirs]


def _unpinned_not_trusted(ctx: Context):
    """MPL202 for a proxy without a pinned address whose shared compose networks have known subnets
    that the trust list does not overlap at all: wherever Docker puts it, it is not trusted."""
    found = []
    for lk, proxy, how in _links_checking_trust(ctx):
        mail = ctx.model.host(lk.listener.host)
        if mail is None or _addresses(proxy):
            continue
        shared = _shared_networks(proxy, mail)
        subnets = [s.network for n in shared for s in n.subnets]
        if not shared or any(not n.subnets for n in shared) or any(
                t.version == s.version and t.overlaps(s) for t in lk.listener.trusted_proxies.value for s in subnets):
            continue
        found.append((lk, proxy, (proxy, how, shared)))
    for links, details in _per_trust_list(found):
        yield _subnet_not_trusted(ctx, links, *details)


def _subnet_not_trusted(ctx: Context, links: list[Link], host: Host, how: str, shared: list[NetworkAttachment]):
    listener = links[0].listener
    subnets = ", ".join(f"{s.network} (compose network {n.key!r})" for n in shared for s in n.subnets)
    networks = " ".join(network_text(n) for n in listener.trusted_proxies.value)
    return _outside_trust_finding(
        ctx, links,
        f"from an address in {subnets} ({how}, address not pinned), "
        f"and `{trust_key(listener)}` ({networks}) covers none of it",
        "pin the proxy's address with `ipv4_address` and list that address",
        [(s.span, f"the subnet of compose network {n.key!r}") for n in shared for s in n.subnets],
    )


def _compose_gateway(ctx: Context, network, listener: Listener, proxy):
    """(Subnet, NetworkAttachment) of a compose network the mail host joins, lying inside the trusted
    `network`, whose gateway the trusted network therefore includes; None when there is none."""
    mail = ctx.model.host(listener.host)
    for attachment in mail.networks if mail is not None else ():
        for subnet in attachment.subnets:
            gateway = subnet.gateway_address
            if subnet.network.version != network.version or not subnet.network.subnet_of(network):
                continue
            if subnet.network.num_addresses < 4 or (proxy is not None and gateway == proxy[0]):
                continue
            return subnet, attachment
    return None


def _gateway_finding(ctx: Context, what: str, trusted, related, subnet: Subnet, attachment: NetworkAttachment):
    gateway = subnet.gateway_address
    told = f"ipam gateway, {subnet.gateway.span}" if subnet.gateway is not None and subnet.gateway.span \
        else "Docker's default gateway, the subnet's first address"
    return ctx.finding(
        trusted.span,
        f"{what}, which includes compose network {attachment.key!r} ({subnet.network}) and its gateway {gateway} "
        f"({told}): connections from outside to published ports can arrive from the gateway, and every other "
        f"container on the network may connect too; any of them can forge client addresses. Pin the proxy's "
        f"address (`ipv4_address`) and trust only that",
        related=[*related, (subnet.span, f"subnet of compose network {attachment.key!r}")],
    )
