"""The distribution registry: each search-space kind in YAML maps to one typed class.

    depth: 50                                   -> Fixed      (a scalar)
    depth: [26, 50]                             -> Grid       (a plain list)
    dropout: {kind: choice, values: [0, 0.25]}  -> Choice
    weight_decay: {kind: loguniform, low: 1.0e-5, high: 1.0e-3}

Every class validates its own parameters (the error names the key path), converts
itself to a Ray Tune domain (`to_tune()`, imported lazily so validation never
imports Ray), enumerates its values when it has finitely many (`values()`), and
writes itself back as YAML (`to_yaml()`, the inverse of `parse_dimension`).
Range checks that depend on the field (depth >= 14, dropout < 1) live in rsearch.bounds;
`points()` gives them the values to check, each with its key path.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from rsearch.bounds import is_integer, is_number
from rsearch.errors import UserError

Scalar = (bool, int, float, str)
# quniform / randint with more values than this count as continuous (values() is None):
# nobody pre-measures a million architectures, and listing them would hang.
MAX_ENUMERATED = 10_000


@dataclass(frozen=True)
class Point:
    """One value a dimension can take (or one of its bounds), with where it came from."""

    path: str
    value: Any
    note: str = ""  # appended to a range error, e.g. why randint's high is not drawn


@dataclass(frozen=True)
class Dimension:
    kind: ClassVar[str]
    params: ClassVar[tuple[str, ...]]  # the keys of its YAML mapping, besides `kind`
    is_grid: ClassVar[bool] = False  # enumerated by Tune's grid search (not sampled)

    @classmethod
    def from_mapping(cls, raw: dict, path: str) -> Dimension:
        return cls(**{name: raw[name] for name in cls.params})._validated(path)

    def _validated(self, path: str) -> Dimension:
        return self

    def values(self) -> list | None:
        """Every value it can take, when finitely many; None for continuous ones."""
        return None

    def points(self, path: str) -> list[Point]:
        """The values a field's range check must accept (all values, or the bounds)."""
        raise NotImplementedError

    def to_tune(self) -> Any:
        raise NotImplementedError

    def to_yaml(self) -> Any:
        return {"kind": self.kind, **{name: getattr(self, name) for name in self.params}}


@dataclass(frozen=True)
class Fixed(Dimension):
    kind: ClassVar[str] = "fixed"
    params: ClassVar[tuple[str, ...]] = ("value",)
    value: Any

    def _validated(self, path):
        if not isinstance(self.value, Scalar):
            raise UserError(
                f"{path}.value: expected a number, string or boolean, got {self.value!r}"
            )
        return self

    def values(self):
        return [self.value]

    def points(self, path):
        return [Point(path, self.value)]

    def to_tune(self):
        return self.value  # Tune passes constants through unchanged

    def to_yaml(self):
        return self.value


@dataclass(frozen=True)
class Finite(Dimension):
    """A list of distinct scalars. `plain` remembers a YAML plain list (for error paths)."""

    params: ClassVar[tuple[str, ...]] = ("values",)
    values_: tuple
    plain: bool = field(default=False, compare=False)

    @classmethod
    def from_mapping(cls, raw, path):
        return cls.from_list(raw["values"], f"{path}.values")

    @classmethod
    def from_list(cls, values: Any, path: str, plain: bool = False) -> Finite:
        if not isinstance(values, list):
            raise UserError(f"{path}: expected a list of values, got {values!r}")
        if not values:
            raise UserError(f"{path}: expected a non-empty list, got []")
        for i, value in enumerate(values):
            if not isinstance(value, Scalar):
                raise UserError(f"{path}[{i}]: expected a number, string or boolean, got {value!r}")
            if _same_value(value, values[:i]):
                raise UserError(f"{path}[{i}]: expected distinct values, got {value!r} twice")
        return cls(tuple(values), plain=plain)

    def _path(self, path: str) -> str:
        return path if self.plain else f"{path}.values"

    def values(self):
        return list(self.values_)

    def points(self, path):
        return [Point(f"{self._path(path)}[{i}]", v) for i, v in enumerate(self.values_)]

    def to_yaml(self):
        return {"kind": self.kind, "values": list(self.values_)}


def _same_value(value, earlier: list) -> bool:
    # 1 == True and 1 == 1.0 in Python; only the same type counts as a duplicate.
    return any(type(value) is type(e) and value == e for e in earlier)


@dataclass(frozen=True)
class Grid(Finite):
    """Every value is tried (Tune's grid search, crossed with the other grid dimensions)."""

    kind: ClassVar[str] = "grid"
    is_grid: ClassVar[bool] = True

    def to_tune(self):
        from ray import tune

        return tune.grid_search(list(self.values_))

    def to_yaml(self):
        return list(self.values_)  # a plain list means grid (under the grid algorithm)

    def as_choice(self) -> Choice:
        return Choice(self.values_, plain=self.plain)


@dataclass(frozen=True)
class Choice(Finite):
    """One value drawn per trial (uniformly; TPE learns which ones pay)."""

    kind: ClassVar[str] = "choice"

    def to_tune(self):
        from ray import tune

        return tune.choice(list(self.values_))


@dataclass(frozen=True)
class Range(Dimension):
    params: ClassVar[tuple[str, ...]] = ("low", "high")
    low: float
    high: float

    def _validated(self, path):
        for name in self.params:
            value = getattr(self, name)
            if not is_number(value) or not math.isfinite(value):
                raise UserError(f"{path}.{name}: expected a finite number, got {value!r}")
        if not self.low < self.high:
            raise UserError(
                f"{path}.high: expected a number > low ({self.low!r}), got {self.high!r}"
            )
        return self

    def points(self, path):
        return [Point(f"{path}.low", self.low), Point(f"{path}.high", self.high)]


@dataclass(frozen=True)
class Uniform(Range):
    kind: ClassVar[str] = "uniform"

    def to_tune(self):
        from ray import tune

        return tune.uniform(self.low, self.high)


@dataclass(frozen=True)
class LogUniform(Range):
    kind: ClassVar[str] = "loguniform"

    def _validated(self, path):
        super()._validated(path)
        if self.low <= 0:
            raise UserError(f"{path}.low: expected a number > 0 (log scale), got {self.low!r}")
        return self

    def to_tune(self):
        from ray import tune

        return tune.loguniform(self.low, self.high)


@dataclass(frozen=True)
class QUniform(Range):
    """Uniform, rounded to a multiple of q; low and high must be multiples of q, both drawn."""

    kind: ClassVar[str] = "quniform"
    params: ClassVar[tuple[str, ...]] = ("low", "high", "q")
    q: float = 1.0

    def _validated(self, path):
        super()._validated(path)
        if not is_number(self.q) or self.q <= 0:
            raise UserError(f"{path}.q: expected a number > 0, got {self.q!r}")
        for name in ("low", "high"):
            # Tune rounds samples to multiples of q: a bound off the lattice would be
            # rounded outside [low, high].
            if not _is_multiple(getattr(self, name), self.q):
                value = getattr(self, name)
                expected = f"a multiple of q={self.q!r}"
                raise UserError(f"{path}.{name}: expected {expected}, got {value!r}")
        return self

    def values(self):
        count = round((self.high - self.low) / self.q) + 1
        if count > MAX_ENUMERATED:
            return None
        return [_tidy(self.low + k * self.q) for k in range(count)]

    def to_tune(self):
        from ray import tune

        return tune.quniform(self.low, self.high, self.q)


def _is_multiple(value: float, q: float) -> bool:
    ratio = value / q
    return math.isclose(ratio, round(ratio), rel_tol=0, abs_tol=1e-9)


def _tidy(value: float) -> float:
    return float(f"{value:.12g}")  # 0.1 * 3 -> 0.3, not 0.30000000000000004


@dataclass(frozen=True)
class RandInt(Range):
    """An integer in [low, high): high is exclusive, as in Ray Tune and numpy."""

    kind: ClassVar[str] = "randint"
    low: int
    high: int

    def _validated(self, path):
        for name in self.params:
            if not is_integer(getattr(self, name)):
                raise UserError(f"{path}.{name}: expected an integer, got {getattr(self, name)!r}")
        return super()._validated(path)

    def values(self):
        return list(range(self.low, self.high)) if self.high - self.low <= MAX_ENUMERATED else None

    def points(self, path):
        # The largest value drawn is high - 1: that is what the field must accept.
        return [
            Point(f"{path}.low", self.low),
            Point(
                f"{path}.high",
                self.high - 1,
                note=f" (high is exclusive: {self.high} draws at most {self.high - 1})",
            ),
        ]

    def to_tune(self):
        from ray import tune

        return tune.randint(self.low, self.high)


# kind in YAML -> class. The order is the one error messages list.
DISTRIBUTIONS: dict[str, type[Dimension]] = {
    cls.kind: cls for cls in (Fixed, Grid, Choice, Uniform, LogUniform, QUniform, RandInt)
}


def parse_dimension(raw: Any, path: str) -> Dimension:
    """A YAML value -> a Dimension: scalar = fixed, plain list = grid, mapping = by `kind`."""
    if isinstance(raw, list):
        return Grid.from_list(raw, path, plain=True)
    if isinstance(raw, dict):
        return _from_mapping(raw, path)
    if isinstance(raw, Scalar):
        return Fixed(raw)
    raise UserError(f"{path}: expected a value, a list or a mapping with `kind`, got {raw!r}")


def _from_mapping(raw: dict, path: str) -> Dimension:
    known = ", ".join(DISTRIBUTIONS)
    if "kind" not in raw:
        raise UserError(f"{path}.kind: missing; expected one of {known}")
    kind = raw["kind"]
    if kind not in DISTRIBUTIONS:
        raise UserError(f"{path}.kind: expected one of {known}, got {kind!r}")
    cls = DISTRIBUTIONS[kind]
    allowed = ("kind", *cls.params)
    for key in raw:
        if key not in allowed:
            raise UserError(
                f"{path}.{key}: unknown key for kind {kind}; expected one of {', '.join(allowed)}"
            )
    for key in cls.params:
        if key not in raw:
            raise UserError(f"{path}.{key}: missing; kind {kind} needs {', '.join(cls.params)}")
    return cls.from_mapping(raw, path)
