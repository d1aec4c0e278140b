"""The search-space file: YAML in, a validated SearchSpace out (see search_spaces/README.md).

distributions.py  the registry: one class per distribution kind (fixed, grid, choice, ...)
fields.py         what each searched key accepts (depth >= 14, dropout in [0, 1), ...)
schema.py         the plain sections (data, constraints, search, resources, ...) and defaults
loader.py         safe YAML reading
space.py          SearchSpace, parse_space, load_space
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
