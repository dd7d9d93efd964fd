"""Type aliases shared across the package, kept in one place so signatures read the same everywhere."""
from __future__ import annotations

from typing import Any, Union

JSON = Any
"""A decoded JSON value (dict, list, str, int, float, bool or None)."""

JSONObject = dict[str, Any]

PathPart = Union[str, int]
"""One step of a JSON path: an object key or an array index."""
