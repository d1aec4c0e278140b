"""SearchSpace: a validated space file, and what the Tune driver asks of it.

    space = load_space("search_spaces/quickstart.yaml")   # UserError on any bad key
    for epochs in space.epochs:                            # one study per regime
        param_space = space.param_space(epochs)            # flat: depth, width, ..., epochs
        space.trial_count(epochs), space.architectures()   # the plan (latency pre-measurement)

Lists mean "grid" under `search.algorithm: grid` and "choice" otherwise: HyperOpt
cannot take a grid, and a random search draws instead of enumerating.  The
conversion happens here, once, so every Dimension already says what Tune will do.
"""

from __future__ import annotations

import importlib.util
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rsearch.architecture import RESNETRS, Architecture
from rsearch.bounds import Bound
from rsearch.errors import UserError
from rsearch.recipe import Recipe
from rsearch.space.distributions import (
    MAX_ENUMERATED,
    Dimension,
    Fixed,
    Grid,
    parse_dimension,
)
from rsearch.space.fields import RECIPE, REGULARIZATION, check_dimension
from rsearch.space.loader import read_yaml
from rsearch.space.scaling import Scaling, parse_scaling
from rsearch.space.schema import (
    LatencySpec,
    Objective,
    Resources,
    SearchSpec,
    StorageSpec,
    TrackingSpec,
    data_config_kwargs,
    parse_constraints,
    parse_data,
    parse_epochs,
    parse_name,
    parse_objective,
    parse_resources,
    parse_search,
    parse_storage,
    parse_tracking,
    strict_mapping,
)

# Trials a space may plan over all its regimes (a 10,000-trial study is large; 10^29 a typo).
MAX_PLANNED_TRIALS = 100_000

SECTIONS = (
    "name",
    "data",
    "epochs",
    "scaling",
    "regularization",
    "recipe",
    "objective",
    "constraints",
    "search",
    "resources",
    "storage",
    "tracking",
)
DEFAULT_PRESET = "rs"


@dataclass(frozen=True)
class SearchSpace:
    name: str
    data: dict  # rsearch.data.DataConfig keyword arguments (YAML `dir` is `data_dir` here)
    epochs: list[int]  # the regimes
    scaling: Scaling  # the model families, each with its own dimensions
    regularization: dict[str, Dimension]  # searched recipe knobs
    recipe: dict[str, Dimension]  # preset + fixed (or gridded) recipe fields
    objective: Objective  # metric, mode
    latency: LatencySpec | None  # constraints.latency_ms: the budget and the method
    max_params: float | None
    max_flops: float | None
    search: SearchSpec  # algorithm, num_samples, scheduler, max_concurrent, seed, confirm
    resources: Resources  # workers, cpus_per_worker, gpus_per_worker
    storage: StorageSpec  # path
    tracking: TrackingSpec = TrackingSpec()  # mlflow: the tracking URI trials are logged to

    def dimensions(self) -> dict[str, Dimension]:
        """Every trial parameter, flat (keys never repeat across sections)."""
        return {**self.scaling.trial_dimensions(), **self.regularization, **self.recipe}

    def param_space(self, epochs: int | None = None) -> dict[str, Any]:
        """Ray Tune's param_space for one regime (imports Ray)."""
        space = {key: dim.to_tune() for key, dim in self.dimensions().items()}
        if epochs is not None:
            space["epochs"] = self._regime(epochs)
        return space

    def grid_size(self) -> int:
        """Trials in one pass over the grid dimensions (1 when there are none)."""
        return math.prod(len(dim.values()) for dim in self.dimensions().values() if dim.is_grid)

    def trial_count(self, regime_epochs: int) -> int | None:
        """Trials planned in one regime: grid x num_samples (Tune's rule), or num_samples."""
        self._regime(regime_epochs)
        return self.grid_size() * self.search.num_samples

    def architectures(self) -> list[Architecture] | None:
        """Every architecture a trial can get, when each dimension is a value or a list the
        user wrote. A sampled range (randint, quniform, ...) is never enumerated: a 1-trial search
        over randint(14, 1000) must not measure 986 architectures; its trials cost themselves."""
        return self.scaling.architectures()

    def resolved(self) -> dict:
        """The whole space with every default filled, as YAML (saved beside the results)."""
        as_yaml = lambda dims: {key: dim.to_yaml() for key, dim in dims.items()}  # noqa: E731
        return {
            "name": self.name,
            "data": {
                ("dir" if key == "data_dir" else key): value for key, value in self.data.items()
            },
            "epochs": list(self.epochs),
            "scaling": self.scaling.to_yaml(),
            "regularization": as_yaml(self.regularization),
            "recipe": as_yaml(self.recipe),
            "objective": self.objective.to_dict(),
            "constraints": {
                "latency_ms": None if self.latency is None else self.latency.to_dict(),
                "max_params": self.max_params,
                "max_flops": self.max_flops,
            },
            "search": self.search.to_dict(),
            "resources": self.resources.to_dict(),
            "storage": self.storage.to_dict(),
            "tracking": self.tracking.to_dict(),
        }

    def _regime(self, epochs: int) -> int:
        if epochs not in self.epochs:
            raise ValueError(f"{epochs} is not one of this space's regimes {self.epochs}")
        return epochs


def load_space(path: str | os.PathLike, *, with_table: bool = True) -> SearchSpace:
    """Read and validate a space file; the experiment name defaults to the file's stem.
    with_table=False leaves constraints.latency_ms.table unread (rsearch cost --space makes it)."""
    return parse_space(read_yaml(path), source=str(path), with_table=with_table)


def parse_space(mapping: dict, source: str = "<space>", *, with_table: bool = True) -> SearchSpace:
    """Validate a space mapping (as read from YAML). Raises UserError naming the key path."""
    if not isinstance(mapping, dict):
        raise UserError(f"{source}: expected a mapping of search-space sections, got {mapping!r}")
    raw = strict_mapping(mapping, "", SECTIONS)
    for key in ("epochs", "scaling"):
        if key not in raw:
            raise UserError(
                f"{key}: missing; every space needs {key} (see search_spaces/README.md)"
            )
    epochs = parse_epochs(raw["epochs"])
    search = parse_search(raw.get("search"), epochs)
    resources = parse_resources(raw.get("resources"))
    constraints = parse_constraints(raw.get("constraints"), with_table=with_table)
    as_grid = search.algorithm == "grid"
    scaling = parse_scaling(raw["scaling"], as_grid)
    regularization = _dimensions(
        raw.get("regularization"), "regularization", REGULARIZATION, as_grid
    )
    recipe = _dimensions(raw.get("recipe"), "recipe", RECIPE, as_grid)
    if scaling.single == RESNETRS:  # older spaces' trial configs name the preset always
        recipe = {"preset": recipe.pop("preset", Fixed(DEFAULT_PRESET)), **recipe}
    space = SearchSpace(
        name=parse_name(raw.get("name", _default_name(source)), "name"),
        data=data_config_kwargs(parse_data(raw.get("data"))),
        epochs=epochs,
        scaling=scaling,
        regularization=regularization,
        recipe=recipe,
        objective=parse_objective(raw.get("objective")),
        latency=constraints.latency,
        max_params=constraints.max_params,
        max_flops=constraints.max_flops,
        search=search,
        resources=resources,
        storage=parse_storage(raw.get("storage")),
        tracking=parse_tracking(raw.get("tracking")),
    )
    _check_across_sections(space)
    return space


def _default_name(source: str) -> str:
    stem = Path(source).stem
    return stem if stem and not source.startswith("<") else "experiment"


def _dimensions(
    raw: Any,
    section: str,
    rules: dict[str, Bound],
    as_grid: bool,
    required: tuple[str, ...] = (),
) -> dict[str, Dimension]:
    raw = strict_mapping(raw, section, tuple(rules))
    for key in required:
        if key not in raw:
            raise UserError(f"{section}.{key}: missing; {section} needs {', '.join(required)}")
    dims = {}
    for key, value in raw.items():
        path = f"{section}.{key}"
        dim = parse_dimension(value, path)
        check_dimension(dim, rules[key], path)
        dims[key] = dim if as_grid or not isinstance(dim, Grid) else dim.as_choice()
    return dims


def _check_across_sections(space: SearchSpace) -> None:
    """Rules that tie two sections together."""
    for key in space.recipe:
        if key in space.regularization:
            raise UserError(
                f"recipe.{key}: already set in regularization.{key}; expected it in one section"
            )
    _check_workers(space)
    _check_plan_size(space)
    latency = space.latency
    if latency and latency.table and space.architectures() is None:
        raise UserError(
            "constraints.latency_ms.table: expected a space that lists its architectures "
            "(values or lists under scaling): a sampled range's networks are in no table"
        )
    measured_here = latency and latency.table is None  # a table's figures are read, not measured
    if measured_here and latency.method.device == "cuda" and not space.resources.gpus_per_worker:
        # Latency is measured on the kind of device the trials use (a Ray task with their
        # resources).
        raise UserError(
            "constraints.latency_ms.device: expected cpu when resources.gpus_per_worker is 0, "
            "got 'cuda'"
        )
    algorithm = space.search.algorithm
    if algorithm != "grid" and not any(_searched(d) for d in space.dimensions().values()):
        raise UserError(
            f"search.algorithm: {algorithm} needs at least one searched dimension "
            "(a list of two or more values, or a distribution); every value is fixed -- use "
            "algorithm grid"
        )
    if algorithm == "optuna":
        _check_optuna(space)
    if space.tracking.mlflow is not None:
        check_mlflow_installed("tracking.mlflow")


def _searched(dim: Dimension) -> bool:
    """A dimension a sampler has a choice in: not a value, nor a list of one."""
    if isinstance(dim, Fixed):
        return False
    values = dim.values()
    return values is None or len(values) > 1  # a list's values are distinct (checked)


def _check_optuna(space: SearchSpace) -> None:
    """Optuna is an optional extra, and its categorical choices are scalars: several families
    travel to Tune as one `arch` dimension of lists."""
    if importlib.util.find_spec("optuna") is None:
        raise UserError(
            "search.algorithm: optuna needs Optuna, an optional extra: "
            "pip install 'rsearch[optuna]' (or use hyperopt)"
        )
    if space.scaling.single is None:
        raise UserError(
            "search.algorithm: optuna searches one model family (Optuna's choices are single "
            f"values); got {len(space.scaling.families)} in scaling.family: use hyperopt or random"
        )


def check_mlflow_installed(where: str) -> None:
    """MLflow is an optional extra: asked for without it, the search stops before Ray starts."""
    if importlib.util.find_spec("mlflow") is None:
        raise UserError(
            f"{where}: experiment tracking needs MLflow, an optional extra: "
            "pip install 'rsearch[mlflow]'"
        )


def _check_plan_size(space: SearchSpace) -> None:
    """A plan larger than MAX_PLANNED_TRIALS is a typo more often than a study: refuse it."""
    total = space.trial_count(space.epochs[0]) * len(space.epochs)
    if total > MAX_PLANNED_TRIALS:
        raise UserError(
            f"search.num_samples: the plan has {total:,} trials (grid {space.grid_size():,} x "
            f"num_samples {space.search.num_samples:,} x {len(space.epochs)} regimes); expected "
            f"at most {MAX_PLANNED_TRIALS:,}: split the study into several spaces"
        )


def _check_workers(space: SearchSpace) -> None:
    """The global batch is split evenly over the workers of a trial; a CUDA-graph step
    has one worker (the DDP all-reduce is not captured)."""
    workers = space.resources.workers
    if workers == 1:
        return
    graphs = space.recipe.get("cuda_graphs")
    if graphs is not None and True in (graphs.values() or [True]):
        raise UserError(
            f"recipe.cuda_graphs: expected false with resources.workers {workers} (a CUDA-graph "
            f"step runs in one worker; the DDP all-reduce is not captured), got true"
        )
    dim = space.recipe.get("batch_size")
    values = [Recipe().batch_size] if dim is None else dim.values()
    if values is None:  # a randint too wide to list
        raise UserError(
            f"recipe.batch_size: expected a list of batch sizes with resources.workers {workers}, "
            f"got kind {dim.kind} over more than {MAX_ENUMERATED} values"
        )
    for value in values:
        if value % workers:
            raise UserError(
                f"recipe.batch_size: expected a multiple of resources.workers ({workers}), "
                f"got {value}"
            )
