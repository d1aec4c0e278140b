"""Reading a space file: YAML through a safe loader, every failure a one-line UserError.

The loader is PyYAML's SafeLoader (no tag ever constructs a Python object) with two
changes: `1e-5` is read as a float (YAML 1.2; YAML 1.1 reads it as a string), and a
key given twice in one mapping is an error instead of silently keeping the last.

A space file is small, and a hostile one must not take the machine's memory: the file
may hold at most MAX_SPACE_BYTES, nest at most MAX_NESTING levels, and expand to at most
MAX_NODES nodes once its aliases are followed (a "billion laughs" file is a few lines of
anchors, each a list of nine aliases of the last, and expands to 9^9 nodes). The node
count is taken on the composed node graph, before any Python object is built.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from rsearch import storage
from rsearch.errors import UserError

MAX_SPACE_BYTES = 1_000_000
MAX_NESTING = 32
MAX_NODES = 100_000


class SpaceTooLarge(Exception):
    """The composed document is nested too deeply or expands to too many nodes."""


class SpaceLoader(yaml.SafeLoader):
    """SafeLoader + YAML 1.2 floats + duplicate-key errors + size limits."""

    def get_single_data(self):
        node = self.get_single_node()
        if node is None:
            return None
        _expanded_size(node, {}, 0)
        return self.construct_document(node)

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


SpaceLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def _expanded_size(node, sizes: dict, depth: int) -> int:
    """Nodes in `node` with every alias followed (shared nodes counted each time they are used)."""
    if depth > MAX_NESTING:
        raise SpaceTooLarge(f"nested more than {MAX_NESTING} levels deep (or a recursive alias)")
    if id(node) in sizes:
        return sizes[id(node)]
    if isinstance(node, yaml.SequenceNode):
        children = node.value
    elif isinstance(node, yaml.MappingNode):
        children = [n for pair in node.value for n in pair]
    else:
        children = []
    total = 1 + sum(_expanded_size(child, sizes, depth + 1) for child in children)
    if total > MAX_NODES:
        raise SpaceTooLarge(f"more than {MAX_NODES:,} values once its aliases are expanded")
    sizes[id(node)] = total
    return total


def read_yaml(path: str | os.PathLike) -> dict:
    """The top-level mapping of the YAML file at `path` (a local path or a pyarrow URI)."""
    try:
        text = _read_text(path)
    except FileNotFoundError:
        raise UserError(f"{path}: no such space file") from None
    except IsADirectoryError:
        raise UserError(f"{path}: is a directory; expected a space file (.yaml)") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # ValueError: a URI pyarrow can't open
        raise UserError(f"{path}: cannot read: {exc}") from None
    try:
        mapping: Any = yaml.load(text, Loader=SpaceLoader)  # noqa: S506 -- SpaceLoader is a SafeLoader
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: invalid YAML: {_describe(exc)}") from None
    except SpaceTooLarge as exc:
        raise UserError(f"{path}: too large for a space file: {exc}") from None
    except RecursionError:  # PyYAML composes recursively: a very deep file ends here first
        raise UserError(
            f"{path}: too large for a space file: nested more than {MAX_NESTING} levels deep"
        ) from None
    if mapping is None:
        raise UserError(f"{path}: empty file; expected a mapping of search-space sections")
    if not isinstance(mapping, dict):
        raise UserError(
            f"{path}: expected a mapping of search-space sections at the top, "
            f"got {type(mapping).__name__}"
        )
    return mapping


def _read_text(path) -> str:
    """The file's text; at most MAX_SPACE_BYTES of it are ever read."""
    if storage.is_uri(path):  # a resumed experiment's space.yaml in an object store
        fs, inner = storage.filesystem(path)
        with fs.open_input_stream(inner) as stream:
            data = stream.read(MAX_SPACE_BYTES + 1)
    else:
        with open(Path(path).expanduser(), "rb") as f:
            data = f.read(MAX_SPACE_BYTES + 1)
    if len(data) > MAX_SPACE_BYTES:
        raise ValueError(f"larger than {MAX_SPACE_BYTES:,} bytes; a space file is a few kB")
    return data.decode("utf-8")


def _describe(exc: yaml.YAMLError) -> str:
    """'<problem> (line L, column C)' -- PyYAML's own str() spans several lines."""
    problem = getattr(exc, "problem", None) or str(exc)
    mark = getattr(exc, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return f"{problem}{where}"
