"""Unique (not secret) identifiers for request ids, idempotency keys and rate-limit members, and the
shape a client-given id must have before a lookup by it is made.

A PRNG seeded once from the OS: os.urandom per call (uuid4) costs ~0.1 ms on some VMs, which is
a measurable share of the hot path. Anything secret (API keys, signing) uses `secrets` instead.
"""

import os
import random
import re

_rng = random.Random(int.from_bytes(os.urandom(32), "big"))

# what follows the prefix of every id this project makes or stores (hex, rails' ids, UUIDs)
_ID_BODY = re.compile(r"[A-Za-z0-9_-]+")


def unique_hex(bits: int = 128) -> str:
    return f"{_rng.getrandbits(bits):0{bits // 4}x}"


def could_be_id(value: object, *, prefix: str = "", max_length: int = 64) -> bool:
    """Whether a client-given id (a path segment, a query value) can be a stored id: `prefix`, then
    ASCII letters, digits, '_' or '-', no longer than the column. Anything else is not found without
    asking the database: PostgreSQL refuses a NUL in a text parameter (a DataError, so a 500) where
    SQLite just finds nothing."""
    return (
        isinstance(value, str)
        and len(prefix) < len(value) <= max_length
        and value.startswith(prefix)
        and _ID_BODY.fullmatch(value, len(prefix)) is not None
    )
