"""Reading a space file: YAML through a safe loader, every failure a one-line UserError.

The loader is PyYAML's SafeLoader (no tag ever constructs a Python object) with two
changes: `1e-5` is read as a float (YAML 1.2; YAML 1.1 reads it as a string), and a
key given twice in one mapping is an error instead of silently keeping the last.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from rsearch import storage
from rsearch.errors import UserError


class SpaceLoader(yaml.SafeLoader):
    """SafeLoader + YAML 1.2 floats + duplicate-key errors."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


SpaceLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


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
    if mapping is None:
        raise UserError(f"{path}: empty file; expected a mapping of search-space sections")
    if not isinstance(mapping, dict):
        raise UserError(f"{path}: expected a mapping of search-space sections at the top, got {type(mapping).__name__}")
    return mapping


def _read_text(path) -> str:
    if storage.is_uri(path):  # a resumed experiment's space.yaml in an object store
        fs, inner = storage.filesystem(path)
        with fs.open_input_stream(inner) as stream:
            return stream.read().decode("utf-8")
    return Path(path).expanduser().read_text(encoding="utf-8")


def _describe(exc: yaml.YAMLError) -> str:
    """'<problem> (line L, column C)' -- PyYAML's own str() spans several lines."""
    problem = getattr(exc, "problem", None) or str(exc)
    mark = getattr(exc, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return f"{problem}{where}"
