"""Stage 3: syntax trees -> the typed model (`Deployment`).

Each product has its own builder module with a `build(parsed, env)` function that reads the
parsed files of its kinds and adds objects to the shared `Model` under construction. Builders
run in a fixed order because later ones use what earlier ones found:

1. ``compose``   hosts (containers, names, static IPs), image versions, docker-mailserver
                 detection, Traefik entrypoints from `command:` and routers from labels;
   ``traefik``   static files and Helm values -> entrypoints, file provider and IngressRouteTCP ->
                 routes and upstreams, serversTransport PROXY precedence;
2. ``haproxy``   frontends/listen -> entrypoints and routes, backends -> upstreams;
3. ``postfix``   main.cf/master.cf (plus docker-mailserver overlays) -> PostfixConfig, listeners;
4. ``dovecot``   dovecot.conf trees (plus docker-mailserver dovecot.cf) -> DovecotConfig, listeners.
5. ``stalwart``  config.toml -> listeners with their PROXY trust lists;
6. ``names``     HAProxy keywords and Traefik label keys as written -> `WrittenName`s (MPL002).

Builders never report findings; a problem they notice that is not a syntax error becomes data
in the model for a rule to read.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

from mailproxy_lint.model import (
    Deployment,
    DovecotConfig,
    Entrypoint,
    FileKind,
    Host,
    KubeService,
    Listener,
    ParseProblem,
    PathIndex,
    PostfixConfig,
    Product,
    Route,
    Setting,
    SourceFile,
    Span,
    Upstream,
    Version,
    WrittenName,
    version_lookup,
)
from mailproxy_lint.parse import Parsed

BUILDERS = ("compose", "traefik", "haproxy", "postfix", "dovecot", "stalwart", "names")


@dataclass
class Platform:
    """A docker-mailserver (or similar) container found in a compose file."""

    name: str  # "docker-mailserver"
    host: str  # Host.name of the container
    version: Setting[Version] | None  # the platform's own version (from the image tag)
    config_dir: str | None = None  # display path of the mounted config dir, when known
    env: dict[str, Setting[str]] = field(default_factory=dict)  # container environment
    # where the container is declared (its `image:` line): findings about stock services that
    # the user has not overridden point here
    span: Span | None = None
    # False when some of the environment is not in the scanned files (see build/compose.py)
    env_complete: bool = True


@dataclass
class Model:
    """The deployment under construction; builders append, `freeze` makes the Deployment."""

    root: str
    files: list[SourceFile] = field(default_factory=list)
    problems: list[ParseProblem] = field(default_factory=list)
    hosts: list[Host] = field(default_factory=list)
    entrypoints: list[Entrypoint] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    upstreams: list[Upstream] = field(default_factory=list)
    listeners: list[Listener] = field(default_factory=list)
    postfix: list[PostfixConfig] = field(default_factory=list)
    dovecot: list[DovecotConfig] = field(default_factory=list)
    platforms: list[Platform] = field(default_factory=list)
    # Versions learnt from image tags or user config, per host (None = the only/unknown host).
    versions: dict[tuple[str | None, Product], Setting[Version]] = field(default_factory=dict)
    unknown: set[Product] = field(default_factory=set)
    present: set[Product] = field(default_factory=set)
    names: list[WrittenName] = field(default_factory=list)  # keywords/label keys as written (names.py)
    # The project configuration (`config.Config`): pinned versions, host aliases, include paths
    config: Any = None
    kube_services: list[KubeService] = field(default_factory=list)

    def version_of(self, product: Product, host: str | None) -> Setting[Version] | None:
        """The version of `product` on `host`; falls back to the one version known for it."""
        return version_lookup(self.effective_versions(), product, host)

    def effective_versions(self) -> dict[tuple[str | None, Product], Setting[Version]]:
        """Versions learnt from the files, overridden by those the configuration file pins
        (a pin without a host applies to every host)."""
        versions = dict(self.versions)
        pinned = self.config.versions if self.config is not None else {}
        for (host, product), setting in sorted(pinned.items(), key=lambda item: item[0][0] is not None):
            if host is None:
                versions.update({key: setting for key in versions if key[1] is product})
            versions[(host, product)] = setting
        return versions

    def platform_for(self, source: SourceFile) -> Platform | None:
        """The docker-mailserver platform a DMS override file belongs to, when one is known."""
        for platform in self.platforms:
            if platform.config_dir and (
                source.path == platform.config_dir or source.path.startswith(platform.config_dir.rstrip("/") + "/")
            ):
                return platform
        return self.platforms[0] if len(self.platforms) == 1 else None

    def freeze(self, paths: PathIndex | None = None) -> Deployment:
        paths = paths or PathIndex()
        return Deployment(
            root=self.root,
            files=tuple(self.files),
            problems=tuple(self.problems),
            hosts=tuple(self.hosts),
            entrypoints=tuple(self.entrypoints),
            routes=tuple(self.routes),
            upstreams=tuple(self.upstreams),
            listeners=tuple(self.listeners),
            links=paths.links,
            postfix=tuple(self.postfix),
            dovecot=tuple(self.dovecot),
            unknown=frozenset(self.unknown),
            present=frozenset(self.present),
            versions=self.effective_versions(),
            paths=paths,
            names=tuple(self.names),
            kube_services=tuple(self.kube_services),
        )


# which product a file kind configures (for `present` / `unknown`)
KIND_PRODUCT = {
    FileKind.DOVECOT: Product.DOVECOT,
    FileKind.POSTFIX_MAIN: Product.POSTFIX,
    FileKind.POSTFIX_MASTER: Product.POSTFIX,
    FileKind.DMS_POSTFIX_MASTER: Product.POSTFIX,
    FileKind.DMS_USER_PATCHES: Product.POSTFIX,
    FileKind.HAPROXY: Product.HAPROXY,
    FileKind.TRAEFIK_STATIC: Product.TRAEFIK,
    FileKind.TRAEFIK_DYNAMIC: Product.TRAEFIK,
    FileKind.KUBERNETES: Product.TRAEFIK,
    FileKind.STALWART: Product.STALWART,
}


# Builders that can add nothing unless a file of one of these kinds was read (broken files
# count: a builder may still look at them). Builders not listed always run: postfix and dovecot
# also model the docker-mailserver stock services a compose file implies.
_BUILDER_INPUTS: dict[str, frozenset[FileKind]] = {
    "compose": frozenset({FileKind.COMPOSE}),
    "traefik": frozenset({FileKind.COMPOSE, FileKind.TRAEFIK_STATIC, FileKind.TRAEFIK_DYNAMIC, FileKind.KUBERNETES}),
    "haproxy": frozenset({FileKind.HAPROXY}),
    "stalwart": frozenset({FileKind.STALWART}),
}


def build(root: str, parsed: list[Parsed], config: Any = None) -> Model:
    model = Model(root=root, config=config)
    for item in parsed:
        model.files.append(item.source)
        model.problems.extend(item.problems)
        product = KIND_PRODUCT.get(item.source.kind)
        if product is not None:
            model.present.add(product)
            if item.tree is None:
                model.unknown.add(product)
    kinds = {source.kind for source in model.files}
    for name in BUILDERS:
        needs = _BUILDER_INPUTS.get(name)
        if needs is not None and not kinds & needs:
            continue  # nothing it could read: do not even import it (start-up time)
        module = importlib.import_module(f"{__name__}.{name}")
        module.build([p for p in parsed if p.tree is not None], model)
        if name == "compose":
            _pin_platform_versions(model)
    return model


def _pin_platform_versions(model: Model) -> None:
    """A docker-mailserver version pinned in the configuration wins over the image tag's."""
    if model.config is None:
        return
    for platform in model.platforms:
        pinned = model.config.pinned(Product.DOCKER_MAILSERVER, platform.host)
        if pinned is not None:
            platform.version = pinned
            # what the image tag implied about the products the image ships no longer holds: the
            # builders derive them from the pinned release instead
            for product in (Product.POSTFIX, Product.DOVECOT):
                model.versions.pop((platform.host, product), None)
