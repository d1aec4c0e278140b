"""One network of a search: what the cost tables, the latency cache, the trials and the results
name by one key. A second model family adds a field here (with a default, so that the keys of
today's ResNet-RS networks stay as they are stored)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Architecture:
    depth: int  # network depth (published ResNet-RS table, or the depth rule)
    width: float  # width multiplier
    resolution: int  # train/eval image size

    @classmethod
    def of(cls, depth, width, resolution) -> Architecture:
        """From loosely typed values: YAML, JSON, numpy scalars, Ray samplers' floats (32.0)."""
        return cls(int(depth), float(width), int(round(resolution)))

    @property
    def key(self) -> str:
        """How cost tables, the latency cache and trial configs name it: "26,0.25,32"."""
        return arch_key(self.depth, self.width, self.resolution)

    def __iter__(self) -> Iterator:
        # Plans, budgets and Ray's grid dimension carry the (depth, width, resolution) triple:
        # an Architecture unpacks into it.
        return iter((self.depth, self.width, self.resolution))


def arch_key(depth, width, resolution) -> str:
    """The stored key of a (depth, width, resolution) triple; `Architecture.key` is this."""
    return f"{int(depth)},{float(width):g},{int(resolution)}"
