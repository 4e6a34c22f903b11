"""What an image reference tells us: which product it runs and which versions are inside.

`identify("mailserver/docker-mailserver:10.3.0")` answers "docker-mailserver 10.3.0, so Postfix
3.4 and Dovecot 2.3.4 (Debian 10)". Rules need versions to decide version-dependent facts
(PROXY v2 needs Postfix >= 3.5, Traefik releases with known TCP defects, Dovecot 2.4 syntax).

Tag semantics:
* an exact tag (`v3.1.2`, `15.0.0`) is that release;
* a floating tag (`v2.11`, `3`, `15.1`) is the newest release of that line, so a defect fixed
  in a later patch release is not reported for it;
* `latest` is the newest stable release, `edge` (docker-mailserver) the unreleased branch;
* a tag we cannot read (a digest only, a codename, `${TAG}`) gives no version: unknown.

Sources are named per table. Rows marked "inferred" were not read in a changelog.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from mailproxy_lint.model import Product, Version


@dataclass(frozen=True, slots=True)
class ImageRef:
    """`[registry/]path[:tag][@digest]`; `name` is the last path component."""

    repository: str  # path without registry, e.g. "mailserver/docker-mailserver", "traefik"
    name: str
    tag: str | None  # None when only a digest is given
    text: str  # as written

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        ref = text.strip()
        digest_free = ref.split("@", 1)[0]
        last_slash = digest_free.rfind("/")
        tag = None
        if ":" in digest_free[last_slash + 1:]:
            digest_free, tag = digest_free.rsplit(":", 1)
        elif "@" not in ref:
            tag = "latest"
        parts = digest_free.split("/")
        if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
            parts = parts[1:]  # a registry host: docker.io, ghcr.io, localhost:5000
        if len(parts) > 1 and parts[0] == "library":
            parts = parts[1:]  # official images: docker.io/library/traefik
        repository = "/".join(parts).lower()
        return cls(repository, parts[-1].lower() if parts else "", tag, text)


@dataclass(frozen=True, slots=True)
class ImageInfo:
    product: Product  # what the container runs: TRAEFIK, HAPROXY, DOCKER_MAILSERVER, STALWART
    image: ImageRef
    # product -> (version, how it was derived); empty when the tag says nothing
    versions: dict[Product, tuple[Version, str]] = field(default_factory=dict)
    exposed_ports: tuple[int, ...] = ()  # the image's EXPOSE list (Traefik's port detection uses it)


def identify(image: str) -> ImageInfo | None:
    """The product and versions behind an image reference, or None for other images."""
    ref = ImageRef.parse(image)
    if ref.name == "traefik":
        return ImageInfo(Product.TRAEFIK, ref, _line_versions(Product.TRAEFIK, ref, TRAEFIK_NEWEST, TRAEFIK_LATEST))
    if ref.name == "haproxy" or ref.repository.startswith("haproxytech/haproxy"):
        return ImageInfo(Product.HAPROXY, ref, _line_versions(Product.HAPROXY, ref, {}, HAPROXY_LATEST))
    if ref.name == "docker-mailserver":
        return ImageInfo(Product.DOCKER_MAILSERVER, ref, _dms_versions(ref), DMS_EXPOSED_PORTS)
    if ref.repository in ("stalwartlabs/stalwart", "stalwartlabs/mail-server"):
        return ImageInfo(Product.STALWART, ref, _exact_only(Product.STALWART, ref), STALWART_EXPOSED_PORTS)
    return None


# --------------------------------------------------------------------------------------------
# Traefik and HAProxy: version lines
# --------------------------------------------------------------------------------------------

# Newest release of each Traefik line, for floating tags. Sources: facts-traefik §0 (v2.11.53,
# v3.7 line; the Helm chart 41.3.0 ships v3.7.11) and §3.3/§4.2 (v3.5.3, v3.6.8 exist). Older
# lines are their final releases (from the project's tags as remembered; inferred, unverified
# here). v3.5 and v3.6 are lower bounds: the newest patch the facts name.
TRAEFIK_NEWEST: dict[tuple[int, int], Version] = {
    (1, 7): Version((1, 7, 34)),
    (2, 0): Version((2, 0, 7)),
    (2, 1): Version((2, 1, 9)),
    (2, 2): Version((2, 2, 11)),
    (2, 3): Version((2, 3, 7)),
    (2, 4): Version((2, 4, 14)),
    (2, 5): Version((2, 5, 7)),
    (2, 6): Version((2, 6, 7)),
    (2, 7): Version((2, 7, 3)),
    (2, 8): Version((2, 8, 8)),
    (2, 9): Version((2, 9, 10)),
    (2, 10): Version((2, 10, 7)),
    (2, 11): Version((2, 11, 53)),
    (3, 0): Version((3, 0, 4)),
    (3, 1): Version((3, 1, 7)),
    (3, 2): Version((3, 2, 5)),
    (3, 3): Version((3, 3, 7)),
    (3, 4): Version((3, 4, 5)),
    (3, 5): Version((3, 5, 3)),
    (3, 6): Version((3, 6, 8)),
    (3, 7): Version((3, 7, 11)),
}
TRAEFIK_LATEST = Version((3, 7, 11))

# HAProxy's official image: `latest` is the newest stable branch (3.4 at the facts' snapshot,
# facts-formats §0: tags up to v3.4.0, 3.5-dev on master), `lts` the newest LTS branch (even
# minors are LTS; 3.4 inferred). Floating `2.8` keeps only the branch: no rule needs its patch.
HAPROXY_LATEST = Version((3, 4))
_HAPROXY_ALIASES = {"lts": Version((3, 4))}

_TAG_SUFFIX = re.compile(r"-(alpine|bookworm|bullseye|buster|trixie|windowsservercore|nanoserver)[\w.-]*$")


def _line_versions(product: Product, ref: ImageRef, newest: dict[tuple[int, int], Version],
                   latest: Version) -> dict[Product, tuple[Version, str]]:
    tag = _TAG_SUFFIX.sub("", ref.tag or "")
    if tag in ("latest", "", "alpine") and ref.tag is not None:
        return {product: (latest, f"image {ref.text}: 'latest' is the newest release, {latest}")}
    if tag in _HAPROXY_ALIASES and product is Product.HAPROXY:
        version = _HAPROXY_ALIASES[tag]
        return {product: (version, f"image {ref.text}: '{tag}' is the {version} branch")}
    match = re.fullmatch(r"v?(\d+)(?:\.(\d+))?(?:\.(\d+))?", tag)
    if not match:
        return {}
    major, minor, patch = (int(p) if p is not None else None for p in match.groups())
    if patch is not None:
        return {product: (Version((major, minor, patch)), f"image {ref.text}")}
    if minor is not None:
        version = newest.get((major, minor), Version((major, minor)))
        what = f"newest {major}.{minor} release, {version}" if (major, minor) in newest else f"{major}.{minor} line"
        return {product: (version, f"image {ref.text}: a floating tag, the {what}")}
    lines = [v for (line_major, _), v in newest.items() if line_major == major]
    if major == latest.parts[0]:
        lines.append(latest)
    if not lines:
        return {}
    version = max(lines)
    return {product: (version, f"image {ref.text}: a floating tag, the newest {major}.x release, {version}")}


def _exact_only(product: Product, ref: ImageRef) -> dict[Product, tuple[Version, str]]:
    match = re.fullmatch(r"v?(\d+\.\d+\.\d+)", ref.tag or "")
    if not match:
        return {}
    return {product: (Version.parse(match.group(1)), f"image {ref.text}")}  # type: ignore[dict-item]


# --------------------------------------------------------------------------------------------
# docker-mailserver: release -> Debian base -> Postfix and Dovecot
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DmsRelease:
    first: Version  # first DMS release of this row (inclusive)
    debian: str
    postfix: Version
    dovecot: Version
    note: str  # where the row comes from


# Source: docker-mailserver CHANGELOG.md (snapshot c9b015ddc, 2026-08-19) unless marked.
DMS_RELEASES: tuple[DmsRelease, ...] = (
    # inferred: the docker-mailserver releases before v10.4.0 that the brief and facts describe
    # (facts-rules R.0 / rules.md) ran Debian 10; older tvial-era images are not modelled.
    DmsRelease(Version((7,)), "Debian 10", Version((3, 4)), Version((2, 3, 4)), ""),
    # CHANGELOG v10.4.0: "Base image upgraded from Debian 10 Buster to Debian 11 Bullseye",
    # Postfix 3.4 -> 3.5, Dovecot 2.3.4 -> 2.3.13.
    DmsRelease(Version((10, 4)), "Debian 11", Version((3, 5)), Version((2, 3, 13)), ""),
    # PR #2901 made the Dovecot community repository the default for v12; it then held 2.3.19.1
    # and 2.3.20 followed in Dec 2022 (inferred: the exact patch depends on the build date).
    DmsRelease(Version((12,)), "Debian 11", Version((3, 5)), Version((2, 3, 20)),
               "Dovecot from its community repository, patch inferred"),
    # CHANGELOG v14.0.0: "Dovecot version being downgraded from 2.3.21 (DMS v13.3)".
    DmsRelease(Version((13,)), "Debian 11", Version((3, 5)), Version((2, 3, 21)),
               "Dovecot from its community repository"),
    # CHANGELOG v14.0.0: Debian 12, "postfix 3.5.23 => 3.7.9", "dovecot 2.3.13 => 2.3.19",
    # community repository off by default. v15.x keeps this base (v15.1.0 is the last before 13).
    DmsRelease(Version((14,)), "Debian 12", Version((3, 7)), Version((2, 3, 19)), ""),
)
# CHANGELOG "Unreleased" (the :edge tag): "updates the base image from Debian 12 to Debian 13
# (Dovecot 2.3 -> 2.4)". Postfix 3.10 is Debian 13's package (brief, facts-formats §0).
DMS_EDGE = DmsRelease(Version((16,)), "Debian 13", Version((3, 10)), Version((2, 4)),
                      "the unreleased branch after v15.1.0, numbered 16 here")
DMS_LATEST = Version((15, 1, 0))  # newest release in the CHANGELOG snapshot
# Floating major/minor tags: the newest release of the line, where the CHANGELOG names it.
DMS_NEWEST = {(15,): Version((15, 1, 0)), (15, 1): Version((15, 1, 0)), (15, 0): Version((15, 0, 2)),
              (14,): Version((14, 0, 0)), (14, 0): Version((14, 0, 0)), (13,): Version((13, 3, 1)),
              (13, 3): Version((13, 3, 1))}
# The image's EXPOSE list (DMS Dockerfile: 25 587 143 465 993 110 995 4190).
DMS_EXPOSED_PORTS = (25, 110, 143, 465, 587, 993, 995, 4190)
# Stalwart's image EXPOSE list (inferred from its Dockerfile: the mail ports plus 443 and 8080).
STALWART_EXPOSED_PORTS = (25, 110, 143, 443, 465, 587, 993, 995, 4190, 8080)


def dms_release(version: Version) -> DmsRelease | None:
    """The row that holds for a docker-mailserver release, or None when older than the table."""
    if version >= DMS_EDGE.first:
        return DMS_EDGE
    rows = [row for row in DMS_RELEASES if version >= row.first]
    return rows[-1] if rows else None


def _dms_versions(ref: ImageRef) -> dict[Product, tuple[Version, str]]:
    tag = (ref.tag or "").removeprefix("release-")
    if tag == "edge":
        version, how = DMS_EDGE.first, f"image {ref.text}: {DMS_EDGE.note}"
        row: DmsRelease | None = DMS_EDGE
    else:
        if tag == "latest":
            version, how = DMS_LATEST, f"image {ref.text}: 'latest' is the newest release, {DMS_LATEST}"
        else:
            parsed = Version.parse(tag) if re.fullmatch(r"v?\d+(\.\d+){0,2}", tag) else None
            if parsed is None:
                return {}
            version = DMS_NEWEST.get(parsed.parts, parsed)
            how = f"image {ref.text}" if version is parsed else f"image {ref.text}: the newest {tag} release, {version}"
        row = dms_release(version)
    result = {Product.DOCKER_MAILSERVER: (version, how)}
    if row is not None:
        base = f"docker-mailserver {version} ({row.debian}{'; ' + row.note if row.note else ''})"
        result[Product.POSTFIX] = (row.postfix, f"{base}: Postfix {row.postfix}")
        result[Product.DOVECOT] = (row.dovecot, f"{base}: Dovecot {row.dovecot}")
    return result
