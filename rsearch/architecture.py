"""One network of a search, of either family: what the space, the plan, the cost tables, the
latency cache, the trials and the results name by one key.

ResNet-RS: `depth` is the number of layers (an int), `width` the width multiplier.
EfficientNet: `depth` and `width` are the depth and width multipliers of the B0 stage table
(efficientnet-b1 is depth 1.1, width 1.0). EfficientNet-RS is the same family searched at
lower resolutions than the compound rule gives, so it is no family of its own.
In the results store `depth` is a layer or block count (an integer column), and an
EfficientNet's multiplier has a column of its own (`columns()`).
The keys of ResNet-RS networks are what older versions stored ("26,0.25,32"); another
family's key starts with its name.
"""

from __future__ import annotations

from dataclasses import dataclass

from rsearch import metrics as M

RESNETRS = "resnetrs"
EFFICIENTNET = "efficientnet"
FAMILIES = (RESNETRS, EFFICIENTNET)


@dataclass(frozen=True)
class Architecture:
    depth: float  # ResNet-RS: layers (published table, or the depth rule); EfficientNet: multiplier
    width: float  # width multiplier
    resolution: int  # train/eval image size
    family: str = RESNETRS

    @classmethod
    def of(cls, depth, width, resolution, family=RESNETRS) -> Architecture:
        """From loosely typed values: YAML, JSON, numpy scalars, Ray samplers' floats (32.0)."""
        family = str(family or RESNETRS)
        depth = int(depth) if family == RESNETRS else float(depth)
        return cls(depth, float(width), int(round(resolution)), family)

    @classmethod
    def from_list(cls, values) -> Architecture:
        """From `to_list()`'s form: [depth, width, resolution] or [..., family]."""
        return cls.of(*values)

    def to_list(self) -> list:
        """As a trial config and Ray's grid dimension carry it (JSON): a ResNet-RS network as
        the [depth, width, resolution] older plans stored, any other with its family last."""
        values = [self.depth, self.width, self.resolution]
        return values if self.family == RESNETRS else [*values, self.family]

    @classmethod
    def from_row(cls, row) -> Architecture:
        """From a results or cost row (`columns()`'s form); rows without a family are older
        ResNet-RS rows."""
        family = row.get(M.FAMILY) or RESNETRS
        depth = row[M.DEPTH] if family == RESNETRS else row[M.DEPTH_MULT]
        return cls.of(depth, row[M.WIDTH], row[M.RESOLUTION], family)

    def columns(self) -> dict:
        """Its results-store columns. `depth` is always a layer or block count (an integer
        column): an EfficientNet's multiplier goes to `depth_mult`."""
        if self.family == RESNETRS:
            depth, depth_mult = self.depth, None
        else:
            from rsearch.models.registry import efficientnet_blocks  # names and rules only

            depth, depth_mult = efficientnet_blocks(self.depth), self.depth
        return {
            M.FAMILY: self.family,
            M.DEPTH: depth,
            M.DEPTH_MULT: depth_mult,
            M.WIDTH: self.width,
            M.RESOLUTION: self.resolution,
        }

    @property
    def key(self) -> str:
        """How cost tables, the latency cache and trial configs name it: "26,0.25,32", or
        "efficientnet:1.1,1,240"."""
        return arch_key(self.depth, self.width, self.resolution, self.family)


def arch_key(depth, width, resolution, family=RESNETRS) -> str:
    """The stored key of an architecture; `Architecture.key` is this."""
    family = family or RESNETRS
    if family == RESNETRS:
        return f"{int(depth)},{float(width):g},{int(resolution)}"
    return f"{family}:{float(depth):g},{float(width):g},{int(resolution)}"


def row_phrase(row) -> str:
    """A results row's network, for a line of text: "depth 26 width 0.25" for ResNet-RS, the
    model's name ("efficientnet-b1") for a family whose depth and width are multipliers."""
    if (row.get(M.FAMILY) or RESNETRS) == RESNETRS:
        return f"depth {row[M.DEPTH]} width {row[M.WIDTH]:g}"
    return str(row.get(M.MODEL))
