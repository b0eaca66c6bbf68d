"""Request parameters as the Graph API reads them.

Parameters arrive from the query string, a form body (url-encoded or multipart) or a JSON body
(S001/S004 post JSON bodies; S003 posts forms). Form values are strings in which structured
parameters (``targeting``, ``special_ad_categories``, ``object_story_spec``…) are JSON text; JSON bodies
carry them natively. :class:`Params` normalises both so handlers read typed values and bad ones become
code 100 errors that blame the field.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Iterator, Mapping
from typing import Any

from .errors import invalid_param, missing_param

_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no", ""}


class Params(Mapping[str, Any]):
    """Read-only view of a call's parameters with Graph-style coercions."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = dict(values)

    def __getitem__(self, key: builtins.str) -> Any:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> builtins.int:
        return len(self._values)

    def raw(self) -> dict[str, Any]:
        return dict(self._values)

    def has(self, key: builtins.str) -> builtins.bool:
        value = self._values.get(key)
        return value is not None and value != ""

    def str(
        self, key: builtins.str, default: builtins.str | None = None, *, required: builtins.bool = False
    ) -> builtins.str | None:
        value = self._values.get(key)
        if value is None or value == "":
            if required:
                raise missing_param(key)
            return default
        if isinstance(value, (dict, list)):
            raise invalid_param(f"Param {key} must be a string", key)
        return str(value)

    def int(
        self, key: builtins.str, default: builtins.int | None = None, *, required: builtins.bool = False
    ) -> builtins.int | None:
        value = self._values.get(key)
        if value is None or value == "":
            if required:
                raise missing_param(key)
            return default
        try:
            if isinstance(value, bool):
                raise ValueError
            return int(str(value).strip())
        except ValueError:
            raise invalid_param(f"Param {key} must be an integer", key) from None

    def bool(self, key: builtins.str, default: builtins.bool = False) -> builtins.bool:
        value = self._values.get(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise invalid_param(f"Param {key} must be a boolean", key)

    def json(self, key: builtins.str, default: Any = None, *, required: builtins.bool = False) -> Any:
        """A structured parameter: native in JSON bodies, JSON text in forms and query strings."""
        value = self._values.get(key)
        if value is None or value == "":
            if required:
                raise missing_param(key)
            return default
        if isinstance(value, (dict, list, int, float, bool)):
            return value
        text = str(value).strip()
        try:
            return json.loads(text)
        except ValueError:
            raise invalid_param(f"Param {key} must be a JSON object or array", key) from None

    def list(
        self, key: builtins.str, default: builtins.list[Any] | None = None, *, required: builtins.bool = False
    ) -> builtins.list[Any] | None:
        """A list parameter: JSON array, ``[a,b]`` without quotes, or a comma-separated ``a,b``."""
        value = self._values.get(key)
        if value is None or value == "":
            if required:
                raise missing_param(key)
            return default
        if isinstance(value, list):
            return value
        text = str(value).strip()
        if text.startswith("[") and not text.endswith("]"):
            raise invalid_param(f"Param {key} must be a JSON object or array", key)
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except ValueError:  # ``[id1,id2]`` without quotes, as S003 writes ``?ids=[id1,id2]``
                inner = text[1:-1]
                return [p.strip().strip("'\"") for p in inner.split(",") if p.strip().strip("'\"")]
            if not isinstance(parsed, list):
                raise invalid_param(f"Param {key} must be an array", key)
            return parsed
        return [part.strip() for part in text.split(",") if part.strip()]


def split_fields(spec: str | None) -> list[str]:
    """Split a ``fields`` value at top-level commas: ``a,b{c,d},e`` → ``["a", "b{c,d}", "e"]``."""
    if not spec:
        return []
    out: list[str] = []
    depth = 0
    current: list[str] = []
    for ch in spec:
        if ch in "{(":
            depth += 1
        elif ch in "})":
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    if current:
        out.append("".join(current).strip())
    return [f for f in out if f]
