"""Request bodies as JSON objects, refused with a catalog code when they cannot be used.

Two kinds of valid JSON still cannot go anywhere: a lone UTF-16 surrogate (`"\\ud800"`) is not
encodable as UTF-8, so neither PostgreSQL nor a vendor can take it, and NUL (`"\\u0000"`) is
refused by PostgreSQL's text and jsonb columns. Both are refused here, before anything is held,
queued or stored. Deep nesting (the parser's RecursionError) is invalid JSON, like any other
unparsable body.

Numbers no double holds (1e400 parses as inf, NaN and Infinity are taken, a 400-digit integer
overflows every float conversion) are refused the same way: neither jsonb nor a vendor reads them.

Cost on the hot path: one bytes regex search over the raw body, and one call per number literal;
the parsed object is walked only when the raw bytes contain an escape or encoding that could
produce such a character.
"""

import json
import math
import re
import sys
from typing import Any

from .errors import ApiError

# \u escapes of surrogates or NUL, or UTF-8 encoded surrogates (json.loads(bytes) lets them through)
_SUSPECT = re.compile(rb"\\u(?:[dD][89a-fA-F]|0000)|\xed[\xa0-\xbf]")
_BAD_CHAR = re.compile("[\x00\ud800-\udfff]")
_MAX_DOUBLE = int(sys.float_info.max)  # an integer past it overflows every float conversion
BAD_TEXT_REASON = "text must not contain NUL characters or unpaired UTF-16 surrogates"
BAD_NUMBER_REASON = "numbers must be finite and within a 64-bit float's range"


class _BadNumber(ValueError):
    pass


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # 1e400
        raise _BadNumber(text)
    return value


def _int(text: str) -> int:
    value = int(text)  # past 4,300 digits a ValueError: invalid_json, as before
    if abs(value) > _MAX_DOUBLE:
        raise _BadNumber(text)
    return value


def _constant(name: str) -> float:  # NaN, Infinity, -Infinity: Python's parser takes them, JSON has none
    raise _BadNumber(name)


# the number hooks run per number literal only (a few per body): free where no number is
_DECODER = json.JSONDecoder(parse_float=_float, parse_int=_int, parse_constant=_constant)


def loads(raw: bytes | str) -> Any:
    """Parse JSON (any value); invalid_json for anything unparsable, deep nesting included;
    invalid_parameter, naming the field, for text or a number nothing downstream can take."""
    try:
        text = raw.decode(json.detect_encoding(raw), "surrogatepass") if isinstance(raw, bytes) else raw
        value = _DECODER.decode(text)  # what json.loads(raw) does, with the number hooks
    except _BadNumber:
        raise _refusal(_number_path(raw)) from None
    except (ValueError, RecursionError):
        raise ApiError("invalid_json") from None
    if _SUSPECT.search(raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw):
        check_values(value)
    return value


def _number_path(raw: bytes | str) -> tuple[str, str]:
    """Where the refused number is: the default parser takes it, so the parsed body is walked."""
    try:
        return first_unusable(json.loads(raw)) or ("request", BAD_NUMBER_REASON)
    except (ValueError, RecursionError):
        return "request", BAD_NUMBER_REASON


def _refusal(found: tuple[str, str]) -> ApiError:
    path, reason = found
    return ApiError("invalid_parameter", field=path, reason=reason, meta={"field": path})


def loads_object(raw: bytes) -> dict[str, Any]:
    body = loads(raw or b"null")
    if not isinstance(body, dict):
        raise ApiError("invalid_json", "The request body must be a JSON object.")
    return body


def _unusable(item: Any) -> str | None:
    """Why a scalar cannot be stored or sent on (PostgreSQL, a vendor's JSON), or None."""
    if isinstance(item, str):
        return BAD_TEXT_REASON if _BAD_CHAR.search(item) else None
    if isinstance(item, float):
        return None if math.isfinite(item) else BAD_NUMBER_REASON
    if isinstance(item, int) and not isinstance(item, bool) and abs(item) > _MAX_DOUBLE:
        return BAD_NUMBER_REASON
    return None


def first_unusable(value: Any) -> tuple[str, str] | None:
    """(path, reason) of the first value holding NUL, a lone surrogate or a number no double
    holds (e.g. messages[0].content), or None."""
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        path, item = stack.pop()
        if isinstance(item, dict):
            for key, inner in item.items():
                name = f"{path}.{key}" if path else str(key)
                if _BAD_CHAR.search(key):
                    return name.encode("utf-8", "backslashreplace").decode(), BAD_TEXT_REASON
                stack.append((name, inner))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", inner) for i, inner in enumerate(item))
        elif reason := _unusable(item):
            return path or "request", reason
    return None


def check_values(value: Any) -> None:
    found = first_unusable(value)
    if found is not None:
        raise _refusal(found)


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
