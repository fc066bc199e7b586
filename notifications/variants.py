"""A/B template variants: weighted alternatives of a milestone's templates.

A milestone's template folder may hold ``variants.yaml``::

    variants:
      a: {weight: 50}          # no folder: the base templates are this variant
      b: {weight: 50, description: "Shorter request, list first"}

and, per variant, a folder ``variants/<name>/`` with any of the milestone's own template
files (``subject.txt.j2``, ``body.txt.j2``, ``body.html.j2``, ``sms.txt.j2``). A file a variant
lacks falls back to the base one, so a variant may change only its subject.

Assignment is deterministic and needs no state: the SHA-256 of ``f"{case_ref}:{milestone}"``,
read as a big-endian integer, modulo the total weight, picks a bucket; buckets follow the
variants in file order. The same case always gets the same variant of a milestone (in every
process, on every Python version), and different milestones split independently.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictInt, ValidationError

from notifications.milestones import Milestone

VARIANTS_FILE = "variants.yaml"
VARIANTS_DIR = "variants"
NAME_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
"""A variant's name: what the ``notifications.variant`` column (40 chars) stores."""
MAX_WEIGHT = 1_000_000
TEMPLATE_FILES = ("subject.txt.j2", "body.txt.j2", "body.html.j2", "sms.txt.j2")
"""The files a variant may override (those of them the milestone itself has)."""

VariantName = Annotated[str, Field(pattern=NAME_PATTERN)]


class VariantConfigError(ValueError):
    """A ``variants.yaml`` (or a variant's folder) is invalid; the message says what and where."""


class UnknownVariantError(ValueError):
    """``render(variant=...)`` named a variant the milestone does not declare."""


class VariantSpec(BaseModel):
    """One variant: its share of cases (relative to the others) and what it tries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    weight: Annotated[StrictInt, Field(ge=1, le=MAX_WEIGHT)]
    description: Annotated[str, Field(min_length=1, max_length=200)] | None = None


class VariantsFile(BaseModel):
    """The contents of ``variants.yaml``: at least two named, weighted variants."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    variants: Annotated[dict[VariantName, VariantSpec], Field(min_length=2, max_length=26)]


def bucket_of(case_ref: str, milestone: str, total: int) -> int:
    """``sha256(f"{case_ref}:{milestone}")`` as a big-endian integer, modulo ``total``."""
    digest = hashlib.sha256(f"{case_ref}:{milestone}".encode()).digest()
    return int.from_bytes(digest, "big") % total


@dataclass(frozen=True, slots=True)
class VariantSet:
    """The variants of one milestone, in file order, and the template files each overrides."""

    milestone: str
    variants: tuple[tuple[str, int], ...]
    """(name, weight) in the order of ``variants.yaml``: the order of the hash buckets."""
    overrides: Mapping[str, frozenset[str]]
    """Per variant, the template files of its own folder (empty: the base templates)."""
    descriptions: Mapping[str, str | None]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.variants)

    @property
    def total_weight(self) -> int:
        return sum(weight for _, weight in self.variants)

    def share(self, name: str) -> float:
        """The expected share of cases that get ``name`` (its weight over the total)."""
        return dict(self.variants)[name] / self.total_weight

    def pick(self, case_ref: str) -> str:
        """The variant this case gets: the same answer every time, everywhere."""
        bucket = bucket_of(case_ref, self.milestone, self.total_weight)
        for name, weight in self.variants:
            if bucket < weight:
                return name
            bucket -= weight
        raise AssertionError("unreachable: the bucket is below the total weight")


def _problems(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        parts.append(f"{where}: {err['msg']}")
    return "; ".join(parts)


def parse_variants(data: Any, *, source: str = VARIANTS_FILE) -> VariantsFile:
    """Validate the loaded YAML of a ``variants.yaml`` (raises ``VariantConfigError``)."""
    if not isinstance(data, dict):
        raise VariantConfigError(
            f"{source}: expected a mapping with a 'variants' key, got {type(data).__name__}"
        )
    try:
        return VariantsFile.model_validate(data)
    except ValidationError as exc:
        raise VariantConfigError(f"{source}: {_problems(exc)}") from None


def load_variants(root: Traversable, milestone: str) -> VariantSet | None:
    """The variants of ``milestone`` under template folder ``root`` (``<root>/<milestone>/``),
    or None when it has no ``variants.yaml``.

    Raises ``VariantConfigError`` for an invalid file, a variant folder no variant declares,
    or a file in a variant's folder that is not one of the milestone's own templates.
    """
    folder = root.joinpath(milestone)
    config = folder.joinpath(VARIANTS_FILE)
    if not config.is_file():
        return None
    source = f"{milestone}/{VARIANTS_FILE}"
    try:
        data = yaml.safe_load(config.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise VariantConfigError(f"{source}: not valid YAML ({exc})") from None
    parsed = parse_variants(data, source=source)
    base_files = {name for name in TEMPLATE_FILES if folder.joinpath(name).is_file()}
    overrides: dict[str, frozenset[str]] = {name: frozenset() for name in parsed.variants}
    problems: list[str] = []
    variants_dir = folder.joinpath(VARIANTS_DIR)
    if variants_dir.is_dir():
        for entry in sorted(variants_dir.iterdir(), key=lambda e: e.name):
            if entry.name.startswith(".") or entry.name == "__pycache__":
                continue
            if not entry.is_dir() or entry.name not in parsed.variants:
                problems.append(f"{VARIANTS_DIR}/{entry.name} is not a declared variant")
                continue
            found = set()
            for file in sorted(entry.iterdir(), key=lambda e: e.name):
                if file.name.startswith("."):
                    continue
                if not file.is_file() or file.name not in base_files:
                    problems.append(
                        f"{VARIANTS_DIR}/{entry.name}/{file.name} is not one of the "
                        f"milestone's templates ({', '.join(sorted(base_files))})"
                    )
                    continue
                found.add(file.name)
            overrides[entry.name] = frozenset(found)
    if problems:
        raise VariantConfigError(f"{source}: " + "; ".join(problems))
    return VariantSet(
        milestone=milestone,
        variants=tuple((name, spec.weight) for name, spec in parsed.variants.items()),
        overrides=overrides,
        descriptions={name: spec.description for name, spec in parsed.variants.items()},
    )


def packaged_templates() -> Traversable:
    """The templates folder shipped with this package."""
    return files("notifications").joinpath("templates")


@lru_cache(maxsize=64)
def variant_set(milestone: str) -> VariantSet | None:
    """The packaged variants of ``milestone`` (read once per process); None when it has none
    or there is no such milestone."""
    try:
        known = Milestone(milestone)
    except ValueError:
        return None
    return load_variants(packaged_templates(), known.value)


def all_variant_sets() -> dict[str, VariantSet]:
    """Every milestone that has variants, in milestone order (validates every file)."""
    return {m.value: vs for m in Milestone if (vs := variant_set(m.value)) is not None}


def pick(milestone: str, case_ref: str) -> str | None:
    """The variant of ``milestone``'s templates that case ``case_ref`` gets, or None when the
    milestone has no variants. Deterministic: see the module docstring.

    Raises ``VariantConfigError`` if the milestone's ``variants.yaml`` is invalid.
    """
    vs = variant_set(str(milestone))
    return None if vs is None else vs.pick(case_ref)


def template_name(milestone: str, file: str, variant: str | None) -> str:
    """The template to load for one file of a message: the variant's own file if it has one,
    else the base one. Raises ``UnknownVariantError`` for a variant the milestone lacks."""
    base = f"{milestone}/{file}"
    if variant is None:
        return base
    vs = variant_set(milestone)
    if vs is None:
        raise UnknownVariantError(f"{milestone} has no variants (asked for {variant!r})")
    if variant not in vs.overrides:
        raise UnknownVariantError(
            f"{milestone} has no variant {variant!r} (it has: {', '.join(vs.names)})"
        )
    if file in vs.overrides[variant]:
        return f"{milestone}/{VARIANTS_DIR}/{variant}/{file}"
    return base
