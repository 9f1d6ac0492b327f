"""The packed per-unit record of a map: it round-trips whatever it holds, stays within its
bound, and refuses what is not one."""

import base64
import zlib

import pytest
from hypothesis import given, settings, strategies as st

from ferry.api import items
from ferry.api.resource import Phase

unit = st.tuples(st.sampled_from(items.PHASES), st.integers(0, items.MAX_ATTEMPTS), st.integers(0, 255),
                 st.integers(0, 255))


def build(units: list[tuple]) -> items.Record:
    record = items.Record(len(units))
    for at, (phase, attempt, own, infrastructure) in enumerate(units):
        record.set(at, phase, attempt)
        record.failures[at], record.infrastructure[at] = own, infrastructure
    return record


def same(a: items.Record, b: items.Record) -> bool:
    return (a.phases, a.attempts, a.failures, a.infrastructure) == (b.phases, b.attempts, b.failures, b.infrastructure)


@settings(max_examples=300, deadline=None)
@given(st.lists(unit, max_size=3000))
def test_a_record_round_trips_and_stays_within_its_bound(units):
    record = build(units)
    text = record.encode()
    items._DECODED.clear()  # decode for real, not from the memo of the last encode
    assert same(items.Record.decode(text, len(units)), record)
    assert len(text) <= items.max_encoded(len(units))
    if not any(own or infrastructure for _, _, own, infrastructure in units):
        # Without failures in flight, two bytes a unit: at most 4/3 of 2 per unit, and a little.
        assert len(text) <= 4 / 3 * 2 * len(units) * (1 + 1 / 4096 + 1 / 16384) + 24


def test_the_bound_holds_for_the_least_compressible_record():
    units = 100_000
    noise = zlib.compress(bytes(range(256)) * 4)  # nothing zlib can shrink further
    record = items.Record(units)
    for array in (record.attempts, record.failures, record.infrastructure):
        array[:] = (noise * (units // len(noise) + 1))[:units]
    text = record.encode()
    assert len(text) <= items.max_encoded(units) and items.max_encoded(units) < 540_000


def test_a_record_of_alike_units_is_small():
    record = items.Record(100_000)
    assert len(record.encode()) < 1500
    record.replace((Phase.PENDING,), Phase.SUCCEEDED)
    assert len(record.encode()) < 1500 and record.count(Phase.SUCCEEDED) == 100_000


def test_clearing_a_unit_s_failures_once_it_ends_keeps_them_out_of_the_record():
    record = items.Record(3)
    record.failures[1] = 2
    assert len(zlib.decompress(base64.b64decode(record.encode()))) == 12
    record.set(1, Phase.SUCCEEDED)
    assert len(zlib.decompress(base64.b64decode(record.encode()))) == 6
    assert items.Record.decode(record.encode(), 3).phase(1) == Phase.SUCCEEDED


def test_replace_moves_phases_keeps_attempts_and_clears_failures():
    record = build([(Phase.SUCCEEDED, 1, 0, 0), (Phase.FAILED, 3, 2, 0), (Phase.RUNNING, 2, 1, 1),
                    (Phase.SKIPPED, 1, 0, 0), (Phase.PENDING, 0, 0, 0)])
    record.replace((Phase.RUNNING, Phase.FAILED, Phase.SKIPPED), Phase.PENDING)
    assert [record.phase(u) for u in range(5)] == [Phase.SUCCEEDED] + [Phase.PENDING] * 4
    assert list(record.attempts) == [1, 3, 2, 1, 0] and not any(record.failures) and not any(record.infrastructure)


def test_units_lists_a_phase_in_order_up_to_a_limit():
    record = build([(p, 1, 0, 0) for p in (Phase.RUNNING, Phase.PENDING, Phase.RUNNING, Phase.RUNNING)])
    assert record.units(Phase.RUNNING) == [0, 2, 3] and record.units(Phase.RUNNING, 2) == [0, 2]
    assert record.find(Phase.PENDING) == 1 and record.find(Phase.PENDING, 2) == -1


@pytest.mark.parametrize("text", [
    "not base64!", base64.b64encode(b"not zlib").decode(), base64.b64encode(zlib.compress(b"\0" * 5)).decode(),
    base64.b64encode(zlib.compress(b"\x07\0\0\0\0\0")).decode()])
def test_what_is_not_a_record_of_that_many_units_is_refused(text):
    items._DECODED.clear()
    with pytest.raises(ValueError, match="not a packed"):
        items.Record.decode(text, 3)


def test_an_attempt_out_of_range_is_refused():
    with pytest.raises(ValueError, match="unit 0: attempt 256"):
        items.Record(1).set(0, Phase.RUNNING, 256)


def test_encoding_what_was_decoded_unchanged_gives_the_same_text_back():
    record = build([(Phase.SUCCEEDED, 1, 0, 0), (Phase.RUNNING, 2, 1, 0)])
    text = record.encode()
    again = items.Record.decode(text, 2)
    assert again.encode(text) is text
    again.set(1, Phase.SUCCEEDED)
    assert again.encode(text) != text and items.Record.decode(again.encode(text), 2).phase(1) == Phase.SUCCEEDED
