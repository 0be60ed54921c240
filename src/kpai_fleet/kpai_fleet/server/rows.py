"""Rows the store writes in batches, and their JSON form for the on-disk spool."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ['Batch', 'ConnectionRow', 'EventRow', 'OrderUpdate', 'SampleRow', 'StateRow',
           'decode_row', 'encode_row', 'singles']


@dataclass(frozen=True)
class StateRow:
    """One received state, with the summary columns the API filters and sorts on."""

    robot_id: str
    ts: float
    received: float
    header_id: int
    order_id: str
    x: float | None
    y: float | None
    theta: float | None
    battery: float
    driving: bool
    payload: str
    manufacturer: str = 'KPAI'
    serial_number: str = ''
    n_errors: int = 0
    model: Any = field(default=None, compare=False, repr=False)  # the validated message


@dataclass(frozen=True)
class EventRow:
    """A connection change, error, rejected message or order transition."""

    robot_id: str
    ts: float
    kind: str
    level: str
    detail: str


@dataclass(frozen=True)
class ConnectionRow:
    """A robot's connection state changed."""

    robot_id: str
    manufacturer: str
    serial_number: str
    ts: float
    state: str


@dataclass(frozen=True)
class OrderUpdate:
    """An order's status changed (the order row exists or is created)."""

    order_id: str
    robot_id: str
    status: str
    ts: float
    reason: str = ''  # why it was rejected or failed ('' keeps the stored one)


@dataclass(frozen=True)
class SampleRow:
    """One point of a robot's KPI series (a safety stop began, an inference latency)."""

    robot_id: str
    ts: float      # server receive time
    kind: str      # 'safety_stop' (value 1) or 'inference_p99_ms'
    value: float


@dataclass
class Batch:
    """Rows written in one transaction."""

    states: list[StateRow] = field(default_factory=list)
    events: list[EventRow] = field(default_factory=list)
    connections: list[ConnectionRow] = field(default_factory=list)
    orders: list[OrderUpdate] = field(default_factory=list)
    samples: list[SampleRow] = field(default_factory=list)

    def __len__(self) -> int:
        return (len(self.states) + len(self.events) + len(self.connections) + len(self.orders)
                + len(self.samples))

    def add(self, row: Any) -> None:
        """Append a row to the list of its kind."""
        if isinstance(row, StateRow):
            self.states.append(row)
        elif isinstance(row, EventRow):
            self.events.append(row)
        elif isinstance(row, ConnectionRow):
            self.connections.append(row)
        elif isinstance(row, SampleRow):
            self.samples.append(row)
        else:
            self.orders.append(row)


def singles(batch: Batch) -> list[Batch]:
    """Split a batch into one-row batches."""
    return ([Batch(states=[r]) for r in batch.states] + [Batch(events=[e]) for e in batch.events]
            + [Batch(connections=[c]) for c in batch.connections]
            + [Batch(orders=[o]) for o in batch.orders]
            + [Batch(samples=[m]) for m in batch.samples])


_KINDS: dict[str, type[Any]] = {'state': StateRow, 'event': EventRow,
                                'connection': ConnectionRow, 'order': OrderUpdate,
                                'sample': SampleRow}
_NAMES = {cls: name for name, cls in _KINDS.items()}


def encode_row(row: Any) -> dict[str, Any]:
    """Return the JSON form of a row (a state's validated model is left out)."""
    data = asdict(row) if not isinstance(row, StateRow) else {
        k: v for k, v in row.__dict__.items() if k != 'model'}
    data['_row'] = _NAMES[type(row)]
    return data


def decode_row(data: dict[str, Any]) -> Any:
    """Rebuild a row from encode_row's output; raise ValueError if it is not one."""
    fields = dict(data)
    cls = _KINDS.get(str(fields.pop('_row', '')))
    if cls is None:
        raise ValueError(f'not a spooled row: {sorted(data)}')
    try:
        return cls(**fields)
    except TypeError as err:
        raise ValueError(f'not a spooled row: {err}') from None
