"""What each searchable key accepts: its rule in rsearch.bounds (type, range, wording).

A dimension (fixed, list or distribution) is checked value by value -- or bound by
bound for continuous ones -- against the rule of the key it sets. The ranges are not
repeated here: scaling.depth and recipe.dropout read the same table as TrainConfig and
Recipe, so a space accepts exactly the values a trial can train with.
"""

from __future__ import annotations

import dataclasses

from rsearch.bounds import FIELDS, TYPE_EXPECTED, Bound
from rsearch.errors import UserError
from rsearch.recipe import PRESETS, REGULARIZATION_KNOBS, Recipe
from rsearch.space.distributions import Dimension, RandInt, Range

_TYPE_NOUN = {"int": "integers", "float": "numbers", "str": "strings", "bool": "true/false"}
# Distribution kinds whose draws have each type (uniform draws floats, ...).
_KINDS = {
    "float": ("fixed", "grid", "choice", "uniform", "loguniform", "quniform", "randint"),
    "int": ("fixed", "grid", "choice", "randint"),
    "str": ("fixed", "grid", "choice"),
    "bool": ("fixed", "grid", "choice"),
}


def check_dimension(dim: Dimension, rule: Bound, path: str) -> None:
    """Raise a UserError naming the key path if `dim` can yield a value `rule` refuses."""
    kinds = _KINDS[rule.type]
    if isinstance(dim, Range) and dim.kind not in kinds:
        raise UserError(
            f"{path}.kind: expected one of {', '.join(kinds)} "
            f"(the field takes {_TYPE_NOUN[rule.type]}), got {dim.kind!r}"
        )
    for point in dim.points(path):
        if not rule.has_type(point.value):
            raise UserError(
                f"{point.path}: expected {TYPE_EXPECTED[rule.type]}, got {point.value!r}"
            )
        if not rule.in_range(point.value):
            # randint's point is its largest draw (high - 1): the message shows what was written
            randint_high = isinstance(dim, RandInt) and point.path.endswith(".high")
            shown = dim.high if randint_high else point.value
            raise UserError(f"{point.path}: expected {rule.expected()}, got {shown!r}{point.note}")


# --- scaling: the three dimensions of the paper's study (all required) ---
SCALING: dict[str, Bound] = {key: FIELDS[key] for key in ("depth", "width", "resolution")}

# --- recipe: every Recipe field, plus `preset` (the additive-study step) ---
RECIPE: dict[str, Bound] = {
    "preset": Bound("str", options=tuple(PRESETS)),
    **{f.name: FIELDS[f.name] for f in dataclasses.fields(Recipe)},
}

# --- regularization: the recipe's numeric knobs the paper tunes per model size on minival ---
REGULARIZATION: dict[str, Bound] = {name: RECIPE[name] for name in REGULARIZATION_KNOBS}
