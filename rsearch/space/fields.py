"""What each searchable key accepts: its value type and its range.

A dimension (fixed, list or distribution) is checked value by value -- or bound by
bound for continuous ones -- against the rule of the key it sets.  The recipe's
ranges are not repeated here: a value is checked by building a Recipe with it
(rsearch.recipe is the one place that knows dropout must be in [0, 1)).
"""

from __future__ import annotations

import dataclasses
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rsearch.errors import UserError
from rsearch.models import TOTAL_STRIDE
from rsearch.models.registry import MAX_DEPTH, MAX_RESOLUTION, MAX_WIDTH, MIN_DEPTH
from rsearch.recipe import PRESETS, Recipe
from rsearch.space.distributions import Dimension, RandInt, Range, is_integer, is_number

# Checks a value of the right type: None if accepted, else "expected ..." for the error.
Check = Callable[[Any], "str | None"]

_TYPE_EXPECTED = {
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "bool": "true or false",
}
_TYPE_NOUN = {"int": "integers", "float": "numbers", "str": "strings", "bool": "true/false"}
_TYPE_TEST = {
    "int": is_integer,
    "float": is_number,
    "str": lambda v: isinstance(v, str),
    "bool": lambda v: isinstance(v, bool),
}


@dataclass(frozen=True)
class Rule:
    type: str  # int | float | str | bool
    check: Check = lambda value: None

    def allowed_kinds(self) -> tuple[str, ...]:
        """Distribution kinds whose draws have this type (uniform draws floats, ...)."""
        if self.type == "float":
            return ("fixed", "grid", "choice", "uniform", "loguniform", "quniform", "randint")
        if self.type == "int":
            return ("fixed", "grid", "choice", "randint")
        return ("fixed", "grid", "choice")


def check_dimension(dim: Dimension, rule: Rule, path: str) -> None:
    """Raise a UserError naming the key path if `dim` can yield a value `rule` refuses."""
    if isinstance(dim, Range) and dim.kind not in rule.allowed_kinds():
        raise UserError(
            f"{path}.kind: expected one of {', '.join(rule.allowed_kinds())} "
            f"(the field takes {_TYPE_NOUN[rule.type]}), got {dim.kind!r}"
        )
    for point in dim.points(path):
        if not _TYPE_TEST[rule.type](point.value):
            raise UserError(
                f"{point.path}: expected {_TYPE_EXPECTED[rule.type]}, got {point.value!r}"
            )
        expected = rule.check(point.value)
        if expected:
            shown = (
                dim.high
                if isinstance(dim, RandInt) and point.path.endswith(".high")
                else point.value
            )
            raise UserError(f"{point.path}: {expected}, got {shown!r}{point.note}")


def _at_least(low: int, what: str, high: int | None = None) -> Check:
    if high is None:
        return lambda v: None if v >= low else f"expected {what} >= {low}"
    return lambda v: None if low <= v <= high else f"expected {what} in [{low}, {high}]"


# --- scaling: the three dimensions of the paper's study (all required) ---
SCALING: dict[str, Rule] = {
    "depth": Rule(
        "int", _at_least(MIN_DEPTH, "an integer", MAX_DEPTH)
    ),  # >= one bottleneck per stage
    "width": Rule(
        "float",
        lambda v: None if 0 < v <= MAX_WIDTH else f"expected a number in (0, {MAX_WIDTH:g}]",
    ),
    "resolution": Rule(
        "int", _at_least(TOTAL_STRIDE, "an integer", MAX_RESOLUTION)
    ),  # >= 1 pixel after 5 strides
}

# --- recipe: every Recipe field, plus `preset` (the additive-study step) ---
_RECIPE_TYPES: dict[str, str] = {
    f.name: typing.get_type_hints(Recipe)[f.name].__name__ for f in dataclasses.fields(Recipe)
}
_RECIPE_MESSAGE = re.compile(r"^recipe\.\w+: (expected .*?), got .*$")


def _recipe_check(name: str) -> Check:
    def check(value):
        try:
            Recipe().replace(**{name: value})
        except UserError as exc:
            match = _RECIPE_MESSAGE.match(str(exc))
            return match.group(1) if match else str(exc)
        return None

    return check


RECIPE: dict[str, Rule] = {
    "preset": Rule(
        "str", lambda v: None if v in PRESETS else f"expected one of {', '.join(PRESETS)}"
    ),
    **{name: Rule(kind, _recipe_check(name)) for name, kind in _RECIPE_TYPES.items()},
}

# --- regularization: the recipe's numeric knobs the paper tunes per model size on minival ---
REGULARIZATION_KEYS = (
    "dropout",
    "stochastic_depth",
    "label_smoothing",
    "randaugment_magnitude",
    "randaugment_ops",
    "weight_decay",
    "ema_decay",
    "base_lr",
    "momentum",
    "warmup_epochs",
)
REGULARIZATION: dict[str, Rule] = {name: RECIPE[name] for name in REGULARIZATION_KEYS}
