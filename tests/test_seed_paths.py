"""Every seed setup, read as one traffic path per line: entrypoint -> route -> server -> listener.

The scenarios under tests/fixtures/scenarios are the setups users copy (the docker-mailserver
Traefik tutorials for v2 and v3 labels, its Kubernetes IngressRouteTCP page with Helm ports,
Stalwart's Traefik compose, Dovecot's HAProxy page with its TLS variants). Each is modelled and
linked exactly as the CLI does, then printed as sorted lines; a change anywhere in the model shows
up here as a readable diff of paths, before any rule looks at it.

Line format:
    <entrypoint:port>[+accept-proxy],... -> <layer> route <name> [tls=<mode>]
        -> <upstream> <host>:<port> [proxy=<header>] [tls] -> <listener> [accepts=<header>]
A route whose names resolve to nothing prints `-` / `(no upstream)`; a server nothing answers
prints `(no listener)`; an upstream no route uses starts with `(no route)`.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mailproxy_lint.engine import analyse
from mailproxy_lint.model import Deployment

SCENARIOS = Path(__file__).parent / "fixtures" / "scenarios"


def path_lines(deployment: Deployment) -> list[str]:
    paths = deployment.paths
    lines = []
    routed = set()
    for route in deployment.routes:
        entrypoints = ",".join(f"{e.name}:{e.port}{'+accept-proxy' if e.accepts_proxy.value.sends else ''}"
                               for e in paths.entrypoints_of(route)) or "-"
        tls = f" tls={route.tls.value}" if route.tls.value.value != "none" else ""
        head = f"{entrypoints} -> {route.layer.value} route {route.name}{tls}"
        upstream = paths.upstream_of(route)
        if upstream is None:
            lines.append(f"{head} -> (no upstream)")
            continue
        routed.add(id(upstream))
        lines.extend(_server_lines(deployment, head, upstream, route))
    for upstream in deployment.upstreams:
        if id(upstream) not in routed:
            lines.extend(_server_lines(deployment, "(no route)", upstream, None))
    return sorted(lines)


def _server_lines(deployment: Deployment, head: str, upstream, route) -> list[str]:
    lines = []
    for server in upstream.servers:
        target = f"{server.host or server.target_host or '?'}:{server.port}"
        proxy = f" proxy={server.send_proxy.value}" if server.send_proxy.value.sends else ""
        tls = " tls" if server.tls.value else ""
        listeners = sorted({
            lk.listener.describe() + (f" accepts={lk.listener.accepts_proxy.value}"
                                      if lk.listener.accepts_proxy.value.sends else "")
            for lk in deployment.paths.links_of(server) if lk.route is route})
        for listener in listeners or ["(no listener)"]:
            lines.append(f"{head} -> {upstream.name} {target}{proxy}{tls} -> {listener}")
    return lines


def model_of(directory: Path, monkeypatch) -> Deployment:
    monkeypatch.chdir(directory)
    return analyse(".", [Path(".")])


EXPECTED = {
    # docker-mailserver tutorial, Traefik v3 labels as the page prints them: the routers name
    # entrypoints and services that do not exist (smtp, smtp-submissions), so no route reaches
    # the services the labels define.
    "dms-tutorial-traefik": [
        "(no route) -> mail-smtp dms:25 proxy=v2 -> Postfix service 'smtp' (postscreen) on port 25 accepts=v1 or v2",
        "(no route) -> mail-submissions dms:465 proxy=v2 -> Postfix service 'submissions' (smtpd) on port 465 accepts=v1 or v2",
        "- -> tcp route mail-smtp -> (no upstream)",
        "- -> tcp route mail-submissions -> (no upstream)",
    ],
    # the same tutorial with Traefik v2 labels
    "dms-tutorial-traefik-v2": [
        "imap-ssl:993 -> tcp route imap-ssl -> imap-ssl mailserver:10993 proxy=v2 -> Dovecot listener imap-login/imaps on port 10993 accepts=v1 or v2",
        "sieve:4190 -> tcp route sieve -> sieve mailserver:4190 -> (no listener)",
        "smtp-ssl:465 -> tcp route smtp-ssl -> smtp-ssl mailserver:465 proxy=v1 -> Postfix service 'submissions' (smtpd) on port 465",
        "smtp:25 -> tcp route smtp -> smtp mailserver:25 proxy=v1 -> Postfix service 'smtp' (postscreen) on port 25 accepts=v1 or v2",
    ],
    # the tutorial's separate PROXY-only ports (user-patches.sh clones)
    "dms-tutorial-separate-ports": [
        "mail-imap:143 -> tcp route mail-imap -> mail-imap dms:10143 proxy=v2 -> Dovecot listener imap-login/imap-proxied on port 10143 accepts=v1 or v2",
        "mail-imaps:993 -> tcp route mail-imaps -> mail-imaps dms:10993 proxy=v2 -> Dovecot listener imap-login/imaps-proxied on port 10993 accepts=v1 or v2",
        "mail-managesieve:4190 -> tcp route mail-managesieve -> mail-managesieve dms:14190 proxy=v2 -> Dovecot listener managesieve-login/sieve-proxied on port 14190 accepts=v1 or v2",
        "mail-pop3:110 -> tcp route mail-pop3 -> mail-pop3 dms:10110 proxy=v2 -> Dovecot listener pop3-login/pop3-proxied on port 10110 accepts=v1 or v2",
        "mail-pop3s:995 -> tcp route mail-pop3s -> mail-pop3s dms:10995 proxy=v2 -> Dovecot listener pop3-login/pop3s-proxied on port 10995 accepts=v1 or v2",
        "mail-smtp:25 -> tcp route mail-smtp -> mail-smtp dms:12525 proxy=v2 -> Postfix service '12525' (postscreen) on port 12525 accepts=v1 or v2",
        "mail-submission:587 -> tcp route mail-submission -> mail-submission dms:10587 proxy=v2 -> Postfix service '10587' (smtpd) on port 10587 accepts=v1 or v2",
        "mail-submissions:465 -> tcp route mail-submissions -> mail-submissions dms:10465 proxy=v2 -> Postfix service '10465' (smtpd) on port 10465 accepts=v1 or v2",
    ],
    # Kubernetes IngressRouteTCP with Helm ports: the named port `imap` of Service `mda` is not in
    # the scanned files, so the server's port (and any listener) stays unknown
    "dms-kubernetes-traefik-ingressroutetcp": [
        "imap:33143 -> tcp route ingress-imap -> ingress-imap mda:None proxy=v2 -> (no listener)",
    ],
    # Stalwart's Traefik page: TLS terminated at Traefik, PROXY v2 to the plain ports; the
    # scenario has no config.toml, so no Stalwart listener answers
    "stalwart-traefik": [
        "imapsecure:993 -> tcp route imapsecure tls=terminate -> imap stalwart:143 proxy=v2 -> (no listener)",
        "smtpsecure:465 -> tcp route smtpsecure tls=terminate -> smtp stalwart:587 proxy=v2 -> (no listener)",
    ],
    # Dovecot's HAProxy page, its four TLS variants
    "dovecot-haproxy-passthrough": [
        "imap_tls:993 -> tcp route imap_tls/dovecot_imap_tls -> dovecot_imap_tls 10.0.0.1:993 proxy=v2 -> Dovecot listener imap-login/imaps on port 993 accepts=v1 or v2",
    ],
    "dovecot-haproxy-plaintext-backend": [
        "imap_tls:993 -> tcp route imap_tls/dovecot_imap tls=terminate -> dovecot_imap 10.0.0.1:143 proxy=v2 -> Dovecot listener imap-login/imap on port 143 accepts=v1 or v2",
    ],
    "dovecot-haproxy-short-timeouts": [
        "imap:143 -> tcp route imap/dovecot_imap -> dovecot_imap 10.0.0.1:143 proxy=v2 -> Dovecot listener imap-login/imap on port 143 accepts=v1 or v2",
        "imap_tls:993 -> tcp route imap_tls/dovecot_imap_tls -> dovecot_imap_tls 10.0.0.1:993 proxy=v2 -> Dovecot listener imap-login/imaps on port 993 accepts=v1 or v2",
    ],
    "dovecot-haproxy-tls-backend": [
        "imap_tls:993 -> tcp route imap_tls/dovecot_imap_tls tls=terminate -> dovecot_imap_tls 10.0.0.1:993 proxy=v2 tls -> Dovecot listener imap-login/imaps on port 993 accepts=v1 or v2",
    ],
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_seed_paths(name, monkeypatch):
    deployment = model_of(SCENARIOS / name, monkeypatch)
    lines = path_lines(deployment)
    print("\n".join(lines))
    assert lines == EXPECTED[name]


def test_every_scenario_has_expected_paths():
    assert sorted(p.name for p in SCENARIOS.iterdir() if p.is_dir()) == sorted(EXPECTED)


# Stalwart's compose with the config.toml its PROXY page describes: the default listeners and
# the page's global trust list. Traefik's address is not pinned, so the trust rules stay silent;
# the paths show that the labels' ports 587 and 143 reach the submission and imap listeners.
STALWART_CONFIG = """\
[server.listener."smtp"]
bind = ["[::]:25"]
protocol = "smtp"

[server.listener."submission"]
bind = ["[::]:587"]
protocol = "smtp"

[server.listener."submissions"]
bind = ["[::]:465"]
protocol = "smtp"
tls.implicit = true

[server.listener."imap"]
bind = ["[::]:143"]
protocol = "imap"

[server.listener."imaptls"]
bind = ["[::]:993"]
protocol = "imap"
tls.implicit = true

[server.proxy]
trusted-networks = ["127.0.0.0/8", "::1", "10.0.0.0/8"]
"""


def test_stalwart_seed_with_its_config(tmp_path, monkeypatch):
    shutil.copy(SCENARIOS / "stalwart-traefik" / "compose.yaml", tmp_path / "compose.yaml")
    (tmp_path / "stalwart").mkdir()
    (tmp_path / "stalwart" / "config.toml").write_text(STALWART_CONFIG)
    lines = path_lines(model_of(tmp_path, monkeypatch))
    print("\n".join(lines))
    assert lines == [
        "imapsecure:993 -> tcp route imapsecure tls=terminate -> imap stalwart:143 proxy=v2 -> Stalwart listener 'imap' on port 143 accepts=v1 or v2",
        "smtpsecure:465 -> tcp route smtpsecure tls=terminate -> smtp stalwart:587 proxy=v2 -> Stalwart listener 'submission' on port 587 accepts=v1 or v2",
    ]
