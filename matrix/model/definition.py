"""Load and validate the declarative matrix file (TOML) into the frozen dataclasses of
model/types.py, following `extends` (a file that adds to, drops from or overrides another).

Every error names `file:line` (model/locate.py), so a typo in the matrix is found in one look;
what a matrix file may never ask for (URLs, Dockerfiles, configure options) is
model/policy.py's.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

from matrix import assets
from matrix.errors import DefinitionError
from matrix.model.imageref import reference_problem
from matrix.model.locate import KeyPath, Locator
from matrix.model.policy import (
    CONFIG_KEY_RE,
    CONFIG_VALUE_RE,
    CONFIGURE_OPTION_RE,
    DOCKERFILE_RE,
    url_refusal,
)
from matrix.model.types import (
    BaseFallback,
    ExistingImage,
    MatrixDefinition,
    Platform,
    Rule,
    Source,
    Variant,
)
from matrix.model.vocabulary import KNOWN_SCENARIOS, CellKind

SCHEMA = 1
LIBCS = ("glibc", "musl")

# Names and versions become image tags and path components: keep them boring.
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
VERSION_RE = re.compile(r"^[0-9]+\.[0-9]+\.[0-9]+[a-z0-9.-]*$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
SUITE_RE = re.compile(r"^[a-z][a-z0-9-]*$")

_TOP_KEYS = (
    "schema",
    "extends",
    "drop",
    "scenarios",
    "platforms",
    "sources",
    "variants",
    "include",
    "exclude",
)
# What a matrix file that extends another may drop of it, by name.
_DROP_KEYS = ("platforms", "sources", "variants")
DEFAULT_PARENT = "default"  # `extends = "default"`: the built-in matrix
_PLATFORM_KEYS = (
    "description",
    "dockerfile",
    "base_image",
    "libc",
    "fallback",
    "openssl",
    "image",
)
# The matrix file's `openssl` of a platform with a Dockerfile, and the kind it makes.
OPENSSL_KINDS = {"source": CellKind.COMPILED, "distro": CellKind.DISTRO}
# A platform that is an existing image, probed as it is (no Dockerfile, nothing built).
IMAGE_KIND = CellKind.IMAGE
_IMAGE_PLATFORM_KEYS = ("description", "image", "libcrypto", "modules", "fips_config", "module_mac")
MODULE_MACS = ("computed", "image")  # module-mac: computed from fips.so, or the image's own
# What discovery could not tell: an image platform's libc until its probe ran.
UNKNOWN_LIBC = "unknown"
# Paths inside an image: absolute, no control characters (each is one argv word, no shell).
IMAGE_PATH_RE = re.compile(r"^/[^\x00-\x1f\x7f]{0,1023}$")
SONAME_RE = re.compile(r"^libcrypto\.so\.[0-9]+$")
_SOURCE_KEYS = ("sha256", "urls", "debian_orig")
_VARIANT_KEYS = ("description", "configure", "module_config", "provider", "base")
_RULE_KEYS = ("platform", "version", "variant", "reason")


def load_definition(path: Path, _within: tuple[Path, ...] = ()) -> MatrixDefinition:
    """`_within`: the files that extend this one, to refuse a cycle."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DefinitionError(f"{path}: cannot read the matrix file: {exc.strerror}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DefinitionError(f"{path}: the matrix file is not UTF-8 ({exc.reason})") from exc
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _syntax_error(path, text, exc) from exc
    ctx = _Ctx(path, Locator(text))
    base = _parent(ctx, doc, (*_within, path))
    digest = hashlib.sha256(data + (base.digest.encode() if base else b"")).hexdigest()
    return _parse(ctx, doc, digest, base)


def _parent(ctx: _Ctx, doc: dict[str, Any], chain: tuple[Path, ...]) -> MatrixDefinition | None:
    """The definition `extends` names ("default": the built-in one; else a path relative to
    this file), loaded with its own file's errors; None without `extends`."""
    if "extends" not in doc:
        if "drop" in doc:
            ctx.fail(("drop",), "drop is for a matrix file that extends another")
        return None
    name = doc["extends"]
    if not isinstance(name, str) or not name:
        ctx.fail(("extends",), f'extends = {name!r}: want "default" or a matrix file\'s path')
    parent = assets.DEFAULT_MATRIX if name == DEFAULT_PARENT else ctx.path.parent / name
    if parent.resolve() in {p.resolve() for p in chain}:
        ctx.fail(("extends",), f"extends = {name!r}: a cycle ({' -> '.join(map(str, chain))})")
    if not parent.is_file():
        ctx.fail(("extends",), f"extends = {name!r}: no such matrix file ({parent})")
    return load_definition(parent, chain)


# --- parsing ---------------------------------------------------------------------------


def _parse(
    ctx: _Ctx, doc: dict[str, Any], digest: str, base: MatrixDefinition | None = None
) -> MatrixDefinition:
    # a file that extends another needs only what it adds, drops or overrides
    ctx.check_keys(
        doc, (), _TOP_KEYS, ("schema",) if base else ("schema", "scenarios", "platforms")
    )
    schema = doc["schema"]
    if type(schema) is not int or schema != SCHEMA:
        ctx.fail(("schema",), f"schema = {schema!r} is not supported; this tool reads schema = 1")
    own_platforms = {
        name: _platform(ctx, name, value)
        for name, value in ctx.named_tables(doc, "platforms", NAME_RE, optional=bool(base)).items()
    }
    own_sources = {
        version: _source(ctx, version, value)
        for version, value in ctx.named_tables(doc, "sources", VERSION_RE, optional=True).items()
    }
    own_variants = {
        name: _variant(ctx, name, value)
        for name, value in ctx.named_tables(doc, "variants", NAME_RE, optional=True).items()
    }
    here = ctx.path
    origins = {
        **_kept(ctx, doc, base),
        **{("platforms", n): here for n in own_platforms},
        **{("sources", v): here for v in own_sources},
        **{("variants", n): here for n in own_variants},
    }

    def merged(kind: str, own: dict[str, Any], inherited: Mapping[str, Any]) -> dict[str, Any]:
        return {**{k: v for k, v in inherited.items() if (kind, k) in origins}, **own}

    platforms: dict[str, Platform] = merged(
        "platforms", own_platforms, base.platforms if base else {}
    )
    sources: dict[str, Source] = merged("sources", own_sources, base.sources if base else {})
    variants: dict[str, Variant] = merged("variants", own_variants, base.variants if base else {})
    # Sources and variants are what a platform of OpenSSL built here is built from.
    if any(p.kind == CellKind.COMPILED for p in platforms.values()):
        if base is None:
            ctx.check_keys(doc, (), _TOP_KEYS, ("sources", "variants"))
        for key, have in (("sources", sources), ("variants", variants)):
            if not have:  # the extended file had them, and this one dropped them all
                ctx.fail(("drop", key), f"the platforms built from source need {key}")
    own_rules = (_rules(ctx, doc, "include"), _rules(ctx, doc, "exclude"))
    defn = MatrixDefinition(
        path=ctx.path,
        platforms=platforms,
        sources=sources,
        variants=variants,
        scenarios=(
            _scenarios(ctx, doc["scenarios"]) if "scenarios" in doc or not base else base.scenarios
        ),
        include=own_rules[0],
        exclude=own_rules[1],
        digest=digest,
        origins=origins,
    )
    if base is not None:
        # the parent's rules come first; one that matches no cell any more (its platform was
        # dropped) is moot here, not a typo of this file's
        inherited = [dataclasses.replace(r, inherited=True) for r in (*base.include, *base.exclude)]
        defn = dataclasses.replace(
            defn,
            include=(*inherited[: len(base.include)], *defn.include),
            exclude=(*inherited[len(base.include) :], *defn.exclude),
        )
    for name, variant in list(variants.items()):
        # an inherited variant is checked again: this file may have dropped what it names
        kp: KeyPath = ("variants", name) if name in own_variants else ("drop",)
        if variant.provider is None:
            if variant.base != "default":
                ctx.fail((*kp, "base"), "base is for a variant with provider (version skew)")
            continue
        if variant.provider not in sources:
            ctx.fail(
                kp + (("provider",) if name in own_variants else ()),
                f"variant {name!r}: provider = {variant.provider!r} is not a source version",
            )
        base_variant = variants.get(variant.base)
        if base_variant is None or base_variant.provider is not None:
            ctx.fail(
                kp + (("base",) if name in own_variants else ()),
                f"variant {name!r}: base = {variant.base!r} must name a variant without provider",
            )
        # the skew cell runs its module as its base builds do
        variants[name] = dataclasses.replace(variant, module_config=base_variant.module_config)
    return defn  # its rules are checked against its cells (model/cells.py's expand)


def _kept(
    ctx: _Ctx, doc: dict[str, Any], base: MatrixDefinition | None
) -> dict[tuple[str, str], Path]:
    """The parent's origins less what `drop` names; a name it does not have is a typo."""
    if base is None:
        return {}
    drop = ctx.table(doc.get("drop", {}), ("drop",))
    ctx.check_keys(drop, ("drop",), _DROP_KEYS, ())
    kept = dict(base.origins)
    for kind in _DROP_KEYS:
        for name in ctx.string_list(drop, ("drop",), kind):
            if (kind, name) not in kept:
                have = sorted(n for k, n in kept if k == kind)
                ctx.fail(
                    ("drop", kind),
                    f"drop: {kind} {name!r} is not in the matrix this file extends "
                    f"({kind}: {', '.join(have)})",
                )
            del kept[(kind, name)]
    return kept


def _platform(ctx: _Ctx, name: str, t: dict[str, Any]) -> Platform:
    kp: KeyPath = ("platforms", name)
    if "image" in t:
        return _image_platform(ctx, name, t)
    ctx.check_keys(t, kp, _PLATFORM_KEYS, ("dockerfile", "base_image", "libc"))
    dockerfile = ctx.string(t, kp, "dockerfile")
    if not DOCKERFILE_RE.match(dockerfile):
        ctx.fail(
            (*kp, "dockerfile"),
            f"dockerfile = {dockerfile!r}: give a bare file name ending in .Dockerfile "
            "(it is looked up in dockerfiles/)",
        )
    image = ctx.string(t, kp, "base_image")
    why = reference_problem(image)
    if why is not None:
        ctx.fail((*kp, "base_image"), f"base_image = {image!r} is not an image reference: {why}")
    libc = ctx.string(t, kp, "libc")
    if libc not in LIBCS:
        ctx.fail((*kp, "libc"), f"libc = {libc!r}: must be one of {', '.join(LIBCS)}")
    fallback: BaseFallback | None = None
    if "fallback" in t:
        fb = ctx.table(t["fallback"], (*kp, "fallback"))
        ctx.check_keys(fb, (*kp, "fallback"), ("debootstrap",), ("debootstrap",))
        suite = ctx.string(fb, (*kp, "fallback"), "debootstrap")
        if not SUITE_RE.match(suite):
            ctx.fail((*kp, "fallback"), f"debootstrap = {suite!r} is not a Debian suite name")
        fallback = BaseFallback(debootstrap=suite)
    description = ctx.string(t, kp, "description", default="")
    kind = OPENSSL_KINDS[ctx.choice(t, kp, "openssl", tuple(OPENSSL_KINDS))]
    return Platform(name, dockerfile, image, libc, fallback, description, kind)


def _image_platform(ctx: _Ctx, name: str, t: dict[str, Any]) -> Platform:
    """An existing image: nothing built, one cell, probed as it is."""
    kp: KeyPath = ("platforms", name)
    ctx.check_keys(t, kp, _IMAGE_PLATFORM_KEYS, ("image",))
    module_mac = ctx.choice(t, kp, "module_mac", MODULE_MACS)
    paths: dict[str, str | None] = {}
    for key in ("libcrypto", "modules", "fips_config"):
        value = ctx.string(t, kp, key, default="") or None
        if value is not None and not (
            IMAGE_PATH_RE.match(value) or (key == "libcrypto" and SONAME_RE.match(value))
        ):
            also = " or a bare soname such as libcrypto.so.3" if key == "libcrypto" else ""
            ctx.fail((*kp, key), f"{key} = {value!r}: want an absolute path in the image{also}")
        paths[key] = value
    ref = ctx.string(t, kp, "image")
    why = reference_problem(ref)
    if why is not None:
        ctx.fail((*kp, "image"), f"image = {ref!r} is not an image reference: {why}")
    image = ExistingImage(
        ref, paths["libcrypto"], paths["modules"], paths["fips_config"], module_mac
    )
    description = ctx.string(t, kp, "description", default="")
    return Platform(name, "", ref, UNKNOWN_LIBC, None, description, IMAGE_KIND, image)


def _source(ctx: _Ctx, version: str, t: dict[str, Any]) -> Source:
    kp: KeyPath = ("sources", version)
    ctx.check_keys(t, kp, _SOURCE_KEYS, ("sha256",))
    sha = ctx.string(t, kp, "sha256")
    if not SHA256_RE.match(sha):
        ctx.fail((*kp, "sha256"), f"sha256 = {sha!r}: want 64 lowercase hex digits")
    urls = ctx.string_list(t, kp, "urls")
    for url in urls:
        why = url_refusal(url)
        if why:
            ctx.fail((*kp, "urls"), f"url {url!r}: {why}")
    debian_orig = t.get("debian_orig", False)
    if not isinstance(debian_orig, bool):
        ctx.fail((*kp, "debian_orig"), f"debian_orig = {debian_orig!r}: want true or false")
    if not urls and not debian_orig:
        ctx.fail(kp, f"source {version!r} has no urls and debian_orig = false: nowhere to fetch")
    return Source(version, sha, urls, debian_orig)


def _variant(ctx: _Ctx, name: str, t: dict[str, Any]) -> Variant:
    kp: KeyPath = ("variants", name)
    ctx.check_keys(t, kp, _VARIANT_KEYS, ())
    if "provider" in t and ("configure" in t or "module_config" in t):
        ctx.fail(kp, "a variant with provider takes its builds from variant `base`: no configure")
    t = {"configure": [], **t}
    configure = ctx.string_list(t, kp, "configure")
    for opt in configure:
        if not CONFIGURE_OPTION_RE.match(opt):
            ctx.fail(
                (*kp, "configure"),
                f"configure option {opt!r}: one word of letters, digits and -_.,=+/: per entry",
            )
    module_config = t.get("module_config", {})
    if not isinstance(module_config, dict):
        ctx.fail((*kp, "module_config"), 'module_config must be a table of KEY = "VALUE"')
    for key, value in module_config.items():
        if not CONFIG_KEY_RE.match(key) or not isinstance(value, str):
            ctx.fail(
                (*kp, "module_config"), f"module_config {key!r}: keys are words, values strings"
            )
        if not CONFIG_VALUE_RE.match(value):
            ctx.fail((*kp, "module_config"), f"module_config {key} = {value!r}: not a plain value")
    provider = ctx.string(t, kp, "provider", default="") or None
    return Variant(
        name,
        configure,
        ctx.string(t, kp, "description", default=""),
        tuple(sorted(module_config.items())),
        provider,
        ctx.string(t, kp, "base", default="default"),
    )


def _scenarios(ctx: _Ctx, value: Any) -> tuple[str, ...]:
    kp: KeyPath = ("scenarios",)
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value) or not value:
        ctx.fail(kp, "scenarios: want a non-empty list of strings")
    for s in value:
        if s not in KNOWN_SCENARIOS:
            ctx.fail(kp, f"unknown scenario {s!r}; known: {', '.join(KNOWN_SCENARIOS)}")
        if value.count(s) > 1:
            ctx.fail(kp, f"scenario {s!r} is listed twice")
    return tuple(value)


def _rules(ctx: _Ctx, doc: dict[str, Any], key: str) -> tuple[Rule, ...]:
    if key not in doc:
        return ()
    value = doc[key]
    if not isinstance(value, list):
        ctx.fail((key,), f"{key}: want an array of tables, written [[{key}]]")
    rules = []
    for i, item in enumerate(value):
        kp: KeyPath = (key, i)
        t = ctx.table(item, kp)
        ctx.check_keys(t, kp, _RULE_KEYS, ())
        if not any(k in t for k in ("platform", "version", "variant")):
            ctx.fail(kp, f"[[{key}]] names no platform, version or variant")
        rules.append(
            Rule(
                platform=ctx.string(t, kp, "platform", default="*"),
                version=ctx.string(t, kp, "version", default="*"),
                variant=ctx.string(t, kp, "variant", default="*"),
                reason=ctx.string(t, kp, "reason", default=""),
                line=ctx.locator.line_of(kp),
            )
        )
    return tuple(rules)


def _syntax_error(path: Path, text: str, exc: tomllib.TOMLDecodeError) -> DefinitionError:
    # Python 3.11's TOMLDecodeError has no lineno attribute: read it from the message.
    msg = str(exc)
    m = re.search(r"\(at line (\d+), column \d+\)", msg)
    if m:
        line = int(m.group(1))
    elif "at end of document" in msg:
        line = max(1, len(text.splitlines()))
    else:
        line = 1
    return DefinitionError(f"{path}:{line}: invalid TOML: {msg}")


class _Ctx:
    """The file being parsed: turns a key path into `path:line: message` errors."""

    def __init__(self, path: Path, locator: Locator) -> None:
        self.path = path
        self.locator = locator

    def fail(self, kp: KeyPath, msg: str) -> NoReturn:
        raise DefinitionError(f"{self.path}:{self.locator.line_of(kp)}: {msg}")

    def table(self, value: Any, kp: KeyPath) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(kp, f"{_dotted(kp)}: want a table, got {type(value).__name__}")
        return value

    def check_keys(
        self, t: Mapping[str, Any], kp: KeyPath, allowed: tuple[str, ...], required: tuple[str, ...]
    ) -> None:
        for key in t:
            if key not in allowed:
                hint = difflib.get_close_matches(key, allowed, n=1)
                did = f"did you mean {hint[0]!r}? " if hint else ""
                self.fail(
                    (*kp, key),
                    f"{_where(kp)}unknown key {key!r} ({did}allowed: {', '.join(allowed)})",
                )
        for key in required:
            if key not in t:
                self.fail(kp, f"{_where(kp)}missing key {key!r}")

    def string(
        self, t: Mapping[str, Any], kp: KeyPath, key: str, default: str | None = None
    ) -> str:
        if key not in t and default is not None:
            return default
        value = t[key]
        if not isinstance(value, str):
            self.fail((*kp, key), f"{_where(kp)}{key} = {value!r}: want a string")
        return value

    def choice(self, t: Mapping[str, Any], kp: KeyPath, key: str, choices: tuple[str, ...]) -> str:
        """A string that must be one of `choices`; the first is the default."""
        value = self.string(t, kp, key, default=choices[0])
        if value not in choices:
            self.fail((*kp, key), f"{key} = {value!r}: must be one of {', '.join(choices)}")
        return value

    def string_list(self, t: Mapping[str, Any], kp: KeyPath, key: str) -> tuple[str, ...]:
        value = t.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail((*kp, key), f"{_where(kp)}{key} = {value!r}: want a list of strings")
        return tuple(value)

    def named_tables(
        self, doc: dict[str, Any], key: str, name_re: re.Pattern[str], optional: bool = False
    ) -> dict[str, dict[str, Any]]:
        if optional and key not in doc:
            return {}
        group = self.table(doc[key], (key,))
        if not group:
            self.fail((key,), f"[{key}] is empty: declare at least one [{key}.NAME]")
        for name, value in group.items():
            if not name_re.match(name):
                self.fail((key, name), f"{key} name {name!r} must match {name_re.pattern}")
            self.table(value, (key, name))
        return group


def _dotted(kp: KeyPath) -> str:
    return ".".join(str(k) for k in kp)


def _where(kp: KeyPath) -> str:
    if not kp:
        return ""
    if isinstance(kp[-1], int):
        return f"[[{_dotted(kp[:-1])}]] #{kp[-1] + 1}: "
    return f"[{_dotted(kp)}]: "
