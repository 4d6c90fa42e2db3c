"""Request bodies as JSON objects, refused with a catalog code when they cannot be used.

Two kinds of valid JSON still cannot go anywhere: a lone UTF-16 surrogate (`"\\ud800"`) is not
encodable as UTF-8, so neither PostgreSQL nor a vendor can take it, and NUL (`"\\u0000"`) is
refused by PostgreSQL's text and jsonb columns. Both are refused here, before anything is held,
queued or stored. Deep nesting (the parser's RecursionError) is invalid JSON, like any other
unparsable body.

Cost on the hot path: one bytes regex search over the raw body; the parsed object is walked only
when the raw bytes contain an escape or encoding that could produce such a character.
"""

import json
import math
import re
from typing import Any

from .errors import ApiError

# \u escapes of surrogates or NUL, or UTF-8 encoded surrogates (json.loads(bytes) lets them through)
_SUSPECT = re.compile(rb"\\u(?:[dD][89a-fA-F]|0000)|\xed[\xa0-\xbf]")
_BAD_CHAR = re.compile("[\x00\ud800-\udfff]")
BAD_TEXT_REASON = "text must not contain NUL characters or unpaired UTF-16 surrogates"


def loads(raw: bytes | str) -> Any:
    """Parse JSON (any value); invalid_json for anything unparsable, deep nesting included."""
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        raise ApiError("invalid_json") from None
    if _SUSPECT.search(raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw):
        check_text(value)
    return value


def loads_object(raw: bytes) -> dict[str, Any]:
    body = loads(raw or b"null")
    if not isinstance(body, dict):
        raise ApiError("invalid_json", "The request body must be a JSON object.")
    return body


def bad_text_path(value: Any) -> str | None:
    """The path (e.g. messages[0].content) of the first string holding NUL or a lone surrogate."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, str):
            if _BAD_CHAR.search(item):
                return path or "request"
        elif isinstance(item, dict):
            for key, inner in item.items():
                name = f"{path}.{key}" if path else str(key)
                if _BAD_CHAR.search(key):
                    return name.encode("utf-8", "backslashreplace").decode()
                stack.append((name, inner))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", inner) for i, inner in enumerate(item))
    return None


def check_text(value: Any) -> None:
    path = bad_text_path(value)
    if path is not None:
        raise ApiError("invalid_parameter", field=path, reason=BAD_TEXT_REASON, meta={"field": path})


def storable(value: Any) -> Any:
    """A copy of parsed JSON that PostgreSQL can store: NUL and unpaired surrogates in strings and
    keys become U+FFFD, a non-finite number (1e400 parses as inf) becomes null. For bodies recorded
    as they came (payment webhooks), where refusing an authentic event would lose it. Nesting deeper
    than the stack allows raises RecursionError, as json.loads does."""
    if isinstance(value, str):
        return _BAD_CHAR.sub("\ufffd", value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {storable(key): storable(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [storable(inner) for inner in value]
    return value


def as_object(value: object) -> dict[str, Any]:
    """`value` when it is a JSON object, else an empty one: optional nested objects of a request
    or a vendor's answer read with .get() whatever was sent in their place."""
    return value if isinstance(value, dict) else {}
