"""Unit tests of the consecutive-failure fallback policy."""

from __future__ import annotations

import pytest
from kpai_npu_bridge.fallback import FallbackPolicy


def test_switches_after_n_consecutive_failures_only_once() -> None:
    p = FallbackPolicy(3)
    assert p.record_failure('e1') is False
    assert p.record_failure('e2') is False
    assert p.record_failure('boom') is True
    st = p.state()
    assert st.active and 'boom' in st.reason and '3 consecutive' in st.reason
    assert p.record_failure('again') is False  # already active
    assert p.state().total_failures == 4


def test_success_breaks_the_streak() -> None:
    p = FallbackPolicy(2)
    assert p.record_failure('a') is False
    p.record_success()
    assert p.record_failure('b') is False
    assert p.state().active is False
    assert p.record_failure('c') is True


def test_reset_returns_from_fallback_and_counts_again() -> None:
    p = FallbackPolicy(1)
    assert p.reset() is False
    assert p.record_failure('x') is True
    assert p.reset() is True
    st = p.state()
    assert not st.active and st.reason == '' and st.consecutive_failures == 0
    assert p.record_failure('y') is True


def test_zero_disables_fallback() -> None:
    p = FallbackPolicy(0)
    for _ in range(100):
        assert p.record_failure('x') is False
    assert p.state().total_failures == 100
    assert not p.state().active


def test_abandon_clears_active_state() -> None:
    p = FallbackPolicy(1)
    assert p.record_failure('x') is True
    p.abandon()
    assert not p.state().active
    assert p.record_failure('y') is True


def test_negative_rejected() -> None:
    with pytest.raises(ValueError):
        FallbackPolicy(-1)


def test_activate_enters_the_fallback_unless_disabled() -> None:
    policy = FallbackPolicy(3)
    policy.record_failure('x')
    assert policy.activate('backend acme unavailable: no device')
    state = policy.state()
    assert state.active and state.reason == 'backend acme unavailable: no device'
    assert state.consecutive_failures == 0 and state.total_failures == 1
    assert not policy.record_failure('y')  # already active: no second switch
    assert policy.reset() and not policy.state().active
    disabled = FallbackPolicy(0)
    assert not disabled.activate('no device') and not disabled.state().active
