"""Building blocks of the VDA 5050 models: strict JSON types, the header, enums."""

from __future__ import annotations

import re
from enum import Enum
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

__all__ = [
    'PROTOCOL_VERSION', 'BlockingType', 'Header', 'Int8Percent', 'Message', 'Model',
    'NonNegative', 'Uint32', 'minor_version',
]

PROTOCOL_VERSION = '2.0.0'
UINT32_MAX = 2**32 - 1


def _integral(value: Any) -> Any:
    """Accept a JSON number written with a fraction of zero (43.0) where an integer is due."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# The specification's uint32: a JSON number without a fractional part, 0 ... 2^32-1.
Uint32 = Annotated[int, BeforeValidator(_integral), Field(ge=0, le=UINT32_MAX)]
# batteryHealth: int8 in percent, range [0 ... 100].
Int8Percent = Annotated[int, BeforeValidator(_integral), Field(ge=0, le=100)]
NonNegative = Annotated[float, Field(ge=0)]


class Model(BaseModel):
    """Strict JSON types (no "7" for 7, no "true" for true), camelCase names, extras ignored.

    Unknown fields are ignored so that additive changes of newer 2.x versions pass.
    """

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra='ignore',
                              allow_inf_nan=False, strict=True)

    def to_json(self) -> bytes:
        """Serialise with the VDA 5050 field names, leaving out unset optional fields."""
        return self.model_dump_json(by_alias=True, exclude_none=True).encode()


# Checked by the Rust core of pydantic (fast): the fleet server validates every state.
TIMESTAMP = (r'^\d{4}-[01]\d-[0-3]\dT[0-2]\d:[0-5]\d:[0-6]\d(\.\d{1,9})?'
             r'(Z|z|[+-][0-2]\d:?[0-5]\d)$')
VERSION = r'^2\.\d+\.\d+$'
NAME = r'^[^/+#]+$'


def minor_version(version: str) -> int:
    """Return the minor number of a 2.x.y version string (0 when it cannot be read)."""
    m = re.match(r'^\d+\.(\d+)\.', version)
    return int(m.group(1)) if m else 0


class Message(Model):
    """The header fields of any message; headerId and timestamp may lack in a 2.1 factsheet."""

    header_id: Uint32 | None = None
    timestamp: str | None = Field(default=None, pattern=TIMESTAMP)
    version: str = Field(pattern=VERSION)
    manufacturer: str = Field(pattern=NAME)
    serial_number: str = Field(pattern=NAME)


class Header(Message):
    """The protocol header: headerId, timestamp, version, manufacturer, serialNumber."""

    header_id: Uint32
    timestamp: str = Field(pattern=TIMESTAMP)


class BlockingType(str, Enum):
    """How an action blocks driving and other actions."""

    NONE = 'NONE'
    SOFT = 'SOFT'
    HARD = 'HARD'
