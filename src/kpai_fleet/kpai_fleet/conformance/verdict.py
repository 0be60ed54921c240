"""The conformance checks by name, their results and the overall verdict with its exit code."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

__all__ = ['CHECKS', 'EXIT_CODES', 'CheckResult', 'CheckSpec', 'Status', 'Verdict', 'decide']


class Status(str, Enum):
    """The outcome of one check."""

    PASS = 'pass'
    FAIL = 'fail'
    SKIP = 'skip'


class Verdict(str, Enum):
    """The outcome of a run: pass, fail, or incomplete (something could not be checked)."""

    PASS = 'pass'
    FAIL = 'fail'
    INCOMPLETE = 'incomplete'


# 0 pass, 1 a check failed, 3 a required check could not run (2 is a usage/config error).
EXIT_CODES = {Verdict.PASS: 0, Verdict.FAIL: 1, Verdict.INCOMPLETE: 3}


@dataclass(frozen=True)
class CheckSpec:
    """A named check: what it verifies and when a skip of it is acceptable."""

    name: str
    title: str
    # skips with one of these reason codes do not make the run incomplete
    allowed_skips: tuple[str, ...] = ()


CHECKS: dict[str, CheckSpec] = {c.name: c for c in (
    CheckSpec('connection', 'connection topic: a retained, valid ONLINE message'),
    CheckSpec('last_will', 'last will: CONNECTIONBROKEN published (retained) by the broker '
              'when the vehicle connection breaks', allowed_skips=('will_not_forced',)),
    CheckSpec('state_cadence', 'state at least every 30 s and on events'),
    CheckSpec('header_ids', 'headerId strictly increasing per topic'),
    CheckSpec('factsheet', 'factsheet (factsheetRequest answered, strict 2.0 model)'),
    CheckSpec('order_pick_drop', 'order with predefined pick and drop: accepted, actions '
              'through their states to FINISHED, nodes traversed and released',
              allowed_skips=('not_declared',)),
    CheckSpec('order_update', 'order update: same orderId, orderUpdateId + 1, horizon '
              'released and base appended'),
    CheckSpec('pause', 'startPause/stopPause: paused flag, no driving while paused, order '
              'resumed', allowed_skips=('not_declared',)),
    CheckSpec('cancel_order', 'cancelOrder: vehicle stops, node/edge states cleared, '
              'orderId kept, cancelOrder FINISHED'),
    CheckSpec('cancel_without_order', 'cancelOrder without an order: FAILED and a '
              'noOrderToCancel warning referencing the actionId'),
    CheckSpec('unsupported_instant_action', 'an instant action the factsheet does not '
              'declare is failed with a reason, not executed'),
    CheckSpec('unsupported_order_action', 'an order with an undeclared node action is '
              'rejected with an orderError/validationError, not taken over'),
    CheckSpec('message_validation', 'every message of the vehicle valid against the strict '
              'models'),
)}


@dataclass
class CheckResult:
    """The result of one check: status, a one-line reason and the figures behind it."""

    name: str
    status: Status
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
    skip_code: str = ''

    @property
    def title(self) -> str:
        spec = CHECKS.get(self.name)
        return spec.title if spec else self.name

    @property
    def skip_allowed(self) -> bool:
        """Return True for a skip the kit documents as acceptable (e.g. the last will)."""
        spec = CHECKS.get(self.name)
        return (self.status is Status.SKIP and spec is not None
                and self.skip_code in spec.allowed_skips)

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        return {'name': self.name, 'title': self.title, 'status': self.status.value,
                'reason': self.reason, 'skip_code': self.skip_code,
                'skip_allowed': self.skip_allowed, 'details': self.details}


def decide(results: list[CheckResult]) -> Verdict:
    """Return fail on any failure, incomplete on a missing check or an undocumented skip."""
    if any(r.status is Status.FAIL for r in results):
        return Verdict.FAIL
    seen = {r.name for r in results}
    if any(name not in seen for name in CHECKS):
        return Verdict.INCOMPLETE
    if any(r.status is Status.SKIP and not r.skip_allowed for r in results):
        return Verdict.INCOMPLETE
    return Verdict.PASS
