"""Unique (not secret) identifiers for request ids, idempotency keys and rate-limit members.

A PRNG seeded once from the OS: os.urandom per call (uuid4) costs ~0.1 ms on some VMs, which is
a measurable share of the hot path. Anything secret (API keys, signing) uses `secrets` instead.
"""

import os
import random

_rng = random.Random(int.from_bytes(os.urandom(32), "big"))


def unique_hex(bits: int = 128) -> str:
    return f"{_rng.getrandbits(bits):0{bits // 4}x}"
