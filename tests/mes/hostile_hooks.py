"""schemathesis hooks (``SCHEMATHESIS_HOOKS=hostile_hooks``): hostile values in generated bodies.

schemathesis generates values that fit the schema's types, so it never sends a lone surrogate,
a NUL, a bidirectional override or an integer past any column's range. This hook puts one of
those into one field of about half the generated bodies (chosen from the drawn data, so runs
with ``--generation-deterministic`` stay deterministic). The in-process sweep in
test_hostile_input.py covers the values JSON itself cannot carry from a dict (NaN, 1e400, deep
nesting, 10 MB strings).
"""
from __future__ import annotations

from typing import Any

import schemathesis

STRINGS = ("a\ud800b", "a\x00b", "\u202eevil", "P-1\u200b00", "\ufeffx", "x" * 70_000)
NUMBERS = (10 ** 40, -(10 ** 40), 2 ** 63, -1)


def _leaves(value: Any, path: tuple = ()) -> list[tuple]:
    found: list[tuple] = []
    if isinstance(value, dict):
        for key, sub in value.items():
            found.append((*path, key))
            found.extend(_leaves(sub, (*path, key)))
    elif isinstance(value, list) and value:
        found.append((*path, 0))
        found.extend(_leaves(value[0], (*path, 0)))
    return found


@schemathesis.hook
def map_body(ctx, body):  # noqa: ANN001 - schemathesis' hook signature
    leaves = _leaves(body)
    if not leaves:
        return body
    seed = sum(len(str(p)) for p in leaves) + len(repr(body))
    if seed % 2:
        return body
    path = leaves[seed % len(leaves)]
    target = body
    for key in path[:-1]:
        target = target[key]
    current = target[path[-1]]
    hostile = NUMBERS[seed % len(NUMBERS)] if isinstance(current, (int, float)) and not isinstance(current, bool) \
        else STRINGS[seed % len(STRINGS)]
    target[path[-1]] = hostile
    return body
