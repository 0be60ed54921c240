"""Check a raw JSON payload for hostile shapes before any JSON parser recurses into it."""

from __future__ import annotations

import math
import re
from itertools import accumulate

from kpai_fleet.errors import ValidationRejected

__all__ = ['MAX_DEPTH', 'MAX_NUMBER_CHARS', 'check_json_bytes']

# The deepest VDA 5050 message (an order: nodes > node > actions > action > actionParameters >
# parameter > value) is about 8 levels; 32 leaves room for structured parameter values while
# keeping every recursive parser (pydantic's, the json module's) far from its stack limit.
MAX_DEPTH = 32
# A double needs at most 24 characters (-1.2345678901234567e-308); 40 allows long decimal
# renderings but no 400-digit integer that a float() or a BIGINT column cannot hold.
MAX_NUMBER_CHARS = 40

_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
# a number longer than the limit, or one whose exponent has 3+ digits (it may pass 1e308)
_RISKY_NUMBER = re.compile(rb'[-+0-9.eE]{%d,}|[0-9.][eE][-+]?[0-9]{3,}' % (MAX_NUMBER_CHARS + 1))
_NUMBER_AROUND = re.compile(rb'-?[0-9.]*[eE][-+]?[0-9]+')
# '[' and '{' become +1, ']' and '}' become -1 (0xff as a signed byte), anything else 0
_DEPTH_STEP = bytes.maketrans(b'[{]}', b'\x01\x01\xff\xff')
_NOT_BRACKET = bytes(set(range(256)) - set(b'[]{}'))


def check_json_bytes(payload: bytes | str, *, max_bytes: int) -> None:
    """Reject a payload too large, not UTF-8, nested too deep or holding unsafe numbers."""
    raw = payload.encode() if isinstance(payload, str) else bytes(payload)
    if len(raw) > max_bytes:
        raise ValidationRejected(
            f'payload of {len(raw)} bytes exceeds the {max_bytes} byte limit')
    try:
        raw.decode('utf-8')
    except UnicodeDecodeError as err:
        raise ValidationRejected(f'malformed JSON: payload is not UTF-8 ({err.reason} at byte '
                                 f'{err.start})') from None
    # strings can hold any character: drop them, then only structure and literals remain
    if b'\\' in raw:
        bare = _STRING.sub(b'""', raw)
    else:  # no escapes: every quote opens or closes a string (the common case, 10x faster)
        bare = b''.join(raw.split(b'"')[0::2])
    steps = bare.translate(_DEPTH_STEP, _NOT_BRACKET)
    if steps and max(accumulate(memoryview(steps).cast('b'))) > MAX_DEPTH:
        raise ValidationRejected(f'malformed JSON: nesting deeper than {MAX_DEPTH} levels')
    if b'NaN' in bare or b'Infinity' in bare:
        raise ValidationRejected('malformed JSON: NaN and Infinity are not JSON numbers')
    risky = _RISKY_NUMBER.search(bare)
    if risky is None:
        return
    text = risky.group()
    if len(text) > MAX_NUMBER_CHARS:
        raise ValidationRejected(f'malformed JSON: a number of {len(text)} characters '
                                 f'(at most {MAX_NUMBER_CHARS})')
    for m in _NUMBER_AROUND.finditer(bare, max(0, risky.start() - MAX_NUMBER_CHARS)):
        try:
            value = float(m.group())
        except ValueError:
            continue  # not a number after all: the JSON parser reports it
        if not math.isfinite(value):
            raise ValidationRejected(f'malformed JSON: number {m.group().decode()} is out of '
                                     'the double range')
