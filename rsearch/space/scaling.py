"""The space's `scaling` section: which model families, and each family's own dimensions.

One family (the default, ResNet-RS) takes its dimensions flat, as every older space does:

    scaling: {depth: [26, 50], width: [0.25, 0.5], resolution: [32, 48]}
    scaling: {family: efficientnet, model: [efficientnet-b0, efficientnet-b1], resolution: 64}

Several families give each its own section, and every architecture is enumerated (the
families' grids are a union, no product, so they travel to Tune as one `arch` dimension):

    scaling:
      family: [resnetrs, efficientnet]
      resnetrs: {depth: 26, width: [0.25, 0.5], resolution: 32}
      efficientnet: {model: efficientnet-b0, resolution: [32, 48]}

An EfficientNet is a named preset (`model`) or its two multipliers (`depth_mult`,
`width_mult`); its depth is a multiplier, so `depth` and `width` are ResNet-RS keys only.
EfficientNet-RS is this family at lower resolutions than the compound rule's.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from rsearch.architecture import EFFICIENTNET, FAMILIES, RESNETRS, Architecture
from rsearch.bounds import FIELDS, Bound
from rsearch.errors import UserError
from rsearch.models.registry import EFFICIENTNET_PRESETS
from rsearch.space.distributions import Dimension, Fixed, Grid, Range, parse_dimension
from rsearch.space.fields import check_dimension

FAMILY_KEY = "family"
MODEL_KEY = "model"
MULTIPLIERS = ("depth_mult", "width_mult")

# Each family's dimensions and their rules (rsearch.bounds: a trial accepts the same values).
FAMILY_DIMENSIONS: dict[str, dict[str, Bound]] = {
    RESNETRS: {key: FIELDS[key] for key in ("depth", "width", "resolution")},
    EFFICIENTNET: {
        MODEL_KEY: Bound("str", options=tuple(EFFICIENTNET_PRESETS)),
        **{key: FIELDS[key] for key in (*MULTIPLIERS, "resolution")},
    },
}
_FAMILY_BOUND = Bound("str", options=FAMILIES)


@dataclass(frozen=True)
class Scaling:
    families: dict[str, dict[str, Dimension]]  # family -> its dimensions, in the space's order
    as_grid: bool  # lists are grids (search.algorithm grid), else choices

    @property
    def single(self) -> str | None:
        """The family, when the space searches one."""
        return next(iter(self.families)) if len(self.families) == 1 else None

    def architectures(self) -> list[Architecture] | None:
        """Every architecture a trial can get, family by family; None when a dimension is a
        sampled range (never enumerated: its trials cost themselves)."""
        archs: list[Architecture] = []
        for family, dims in self.families.items():
            if any(isinstance(dim, Range) for dim in dims.values()):
                return None
            archs += _enumerate(family, dims)
        return archs

    def trial_dimensions(self) -> dict[str, Dimension]:
        """What a trial config carries: one family's dimensions flat (with its name unless it
        is ResNet-RS, so that older trial configs read as they were), or every family's
        architectures as one `arch` dimension."""
        family = self.single
        if family is not None:
            named = {} if family == RESNETRS else {FAMILY_KEY: Fixed(family)}
            return {**named, **self.families[family]}
        archs = Grid(tuple(arch.to_list() for arch in self.architectures()))
        return {"arch": archs if self.as_grid else archs.as_choice()}

    def to_yaml(self) -> dict:
        as_yaml = lambda dims: {key: dim.to_yaml() for key, dim in dims.items()}  # noqa: E731
        family = self.single
        if family == RESNETRS:
            return as_yaml(self.families[family])
        if family is not None:
            return {FAMILY_KEY: family, **as_yaml(self.families[family])}
        return {
            FAMILY_KEY: list(self.families),
            **{f: as_yaml(d) for f, d in self.families.items()},
        }


def parse_scaling(raw, as_grid: bool) -> Scaling:
    """The validated `scaling` section (UserError naming the key path)."""
    if not isinstance(raw, dict):
        raise UserError(f"scaling: expected a mapping, got {raw!r}")
    families = _families(raw.get(FAMILY_KEY, RESNETRS))
    sections = [key for key in raw if key in FAMILIES]
    for key in sections:
        if key not in families:
            raise UserError(
                f"scaling.{key}: {key} is not in scaling.family ({', '.join(families)}); "
                "expected a section for each listed family only"
            )
    flat = {key: value for key, value in raw.items() if key != FAMILY_KEY and key not in FAMILIES}
    if len(families) > 1 and flat:
        key = next(iter(flat))
        if not any(key in dims for dims in FAMILY_DIMENSIONS.values()):
            expected = ", ".join((FAMILY_KEY, *families))
            raise UserError(f"scaling.{key}: unknown key; expected one of {expected}")
        raise UserError(
            f"scaling.{key}: with more than one family, expected each family's dimensions "
            f"under scaling.<family> ({', '.join(f'scaling.{f}' for f in families)})"
        )
    parsed = {}
    for family in families:
        if len(families) > 1 and family not in raw:
            raise UserError(
                f"scaling.{family}: missing; expected a section for each family in "
                f"scaling.family ({', '.join(families)})"
            )
        if family in raw and flat:
            raise UserError(
                f"scaling.{next(iter(flat))}: expected the dimensions either flat or under "
                f"scaling.{family}, not both"
            )
        path = f"scaling.{family}" if family in raw else "scaling"
        section = raw[family] if family in raw else flat
        parsed[family] = _family_dimensions(family, section, path, as_grid)
        if len(families) > 1:
            _check_enumerable(parsed[family], path)
    return Scaling(parsed, as_grid)


def _families(raw) -> list[str]:
    values = raw if isinstance(raw, list) else [raw]
    if not values:
        raise UserError("scaling.family: expected a family or a non-empty list of families, got []")
    for i, value in enumerate(values):
        path = f"scaling.family[{i}]" if isinstance(raw, list) else "scaling.family"
        if not _FAMILY_BOUND.has_type(value) or not _FAMILY_BOUND.in_range(value):
            raise UserError(f"{path}: expected one of {', '.join(FAMILIES)}, got {value!r}")
        if value in values[:i]:
            raise UserError(f"{path}: expected distinct families, got {value!r} twice")
    return list(values)


def _family_dimensions(family: str, raw, path: str, as_grid: bool) -> dict[str, Dimension]:
    if not isinstance(raw, dict):
        raise UserError(f"{path}: expected a mapping of {family} dimensions, got {raw!r}")
    rules = FAMILY_DIMENSIONS[family]
    for key in raw:
        if key not in rules:
            raise UserError(f"{path}.{key}: {_not_a_dimension(family, key)}")
    for key in _required(family, raw):
        if key not in raw:
            raise UserError(f"{path}.{key}: missing; {path} needs {_needs(family)}")
    if family == EFFICIENTNET and MODEL_KEY in raw and any(k in raw for k in MULTIPLIERS):
        key = next(k for k in MULTIPLIERS if k in raw)
        raise UserError(
            f"{path}.{key}: expected either model (a named preset) or depth_mult and "
            "width_mult, not both"
        )
    dims = {}
    for key, value in raw.items():
        dim = parse_dimension(value, f"{path}.{key}")
        check_dimension(dim, rules[key], f"{path}.{key}")
        dims[key] = dim if as_grid or not isinstance(dim, Grid) else dim.as_choice()
    return dims


def _required(family: str, raw: dict) -> tuple[str, ...]:
    if family == RESNETRS:
        return ("depth", "width", "resolution")
    return ("resolution",) + (() if MODEL_KEY in raw else MULTIPLIERS)


def _needs(family: str) -> str:
    if family == RESNETRS:
        return "depth, width, resolution"
    return "resolution and model (or depth_mult and width_mult)"


def _not_a_dimension(family: str, key: str) -> str:
    expected = ", ".join(FAMILY_DIMENSIONS[family])
    if family == EFFICIENTNET and key in ("depth", "width"):
        why = f"; an EfficientNet's {key} is a multiplier, {key}_mult, or a named model"
    elif family == RESNETRS and key in (MODEL_KEY, *MULTIPLIERS):
        why = "; that is an EfficientNet dimension: set scaling.family to efficientnet"
    else:
        why = ""
    return f"unknown key; expected one of {expected} (the {family} family's dimensions{why})"


def _check_enumerable(dims: dict[str, Dimension], path: str) -> None:
    for key, dim in dims.items():
        if isinstance(dim, Range):
            raise UserError(
                f"{path}.{key}: with more than one family, expected a value or a list (the "
                f"families' architectures are enumerated), got kind {dim.kind}"
            )


def _enumerate(family: str, dims: dict[str, Dimension]) -> list[Architecture]:
    resolutions = dims["resolution"].values()
    if family == RESNETRS:
        grid = itertools.product(dims["depth"].values(), dims["width"].values(), resolutions)
        return [Architecture.of(d, w, r) for d, w, r in grid]
    if MODEL_KEY in dims:
        mults = [EFFICIENTNET_PRESETS[name] for name in dims[MODEL_KEY].values()]
        pairs = [(p.depth_mult, p.width_mult) for p in mults]
    else:
        pairs = list(itertools.product(*(dims[key].values() for key in MULTIPLIERS)))
    return [
        Architecture.of(d, w, r, EFFICIENTNET)
        for (d, w), r in itertools.product(pairs, resolutions)
    ]
