"""The search-space file: YAML in, a validated SearchSpace out (see search_spaces/README.md).

distributions.py  the registry: one class per distribution kind (fixed, grid, choice, ...)
fields.py         what each searched key accepts: its rule in rsearch.bounds
schema.py         the plain sections as typed, frozen dataclasses (SearchSpec, Resources,
                  LatencySpec, ...), every default filled
loader.py         safe YAML reading
space.py          SearchSpace, parse_space, load_space

No module of this package imports the package itself (`from rsearch.space import ...`):
this file imports them all, so each imports its siblings by their own names.
"""

from rsearch.space.distributions import DISTRIBUTIONS, Dimension, parse_dimension
from rsearch.space.space import SearchSpace, load_space, parse_space

__all__ = [
    "DISTRIBUTIONS",
    "Dimension",
    "SearchSpace",
    "load_space",
    "parse_dimension",
    "parse_space",
]
