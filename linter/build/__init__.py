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

Builders never report findings; a problem they notice that is not a syntax error becomes data
in the model for a rule to read.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from mailproxy_lint.model import (
    Deployment,
    DovecotConfig,
    Entrypoint,
    FileKind,
    Host,
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
    version_lookup,
)
from mailproxy_lint.parse import Parsed

BUILDERS = ("compose", "traefik", "haproxy", "postfix", "dovecot")


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

    def version_of(self, product: Product, host: str | None) -> Setting[Version] | None:
        """The version of `product` on `host`; falls back to the one version known for it."""
        return version_lookup(self.versions, product, host)

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
            versions=dict(self.versions),
            paths=paths,
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


def build(root: str, parsed: list[Parsed]) -> Model:
    model = Model(root=root)
    for item in parsed:
        model.files.append(item.source)
        model.problems.extend(item.problems)
        product = KIND_PRODUCT.get(item.source.kind)
        if product is not None:
            model.present.add(product)
            if item.tree is None:
                model.unknown.add(product)
    for name in BUILDERS:
        module = importlib.import_module(f"{__name__}.{name}")
        module.build([p for p in parsed if p.tree is not None], model)
    return model
