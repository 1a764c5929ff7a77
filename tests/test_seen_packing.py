"""``State.applied`` keeps an applied event's ``Seen`` packed into one int: it must read
back as the same ``Seen``, order by time as the ``Seen`` does, and leave alone what it
cannot pack exactly."""

from __future__ import annotations

import datetime as dt

from hypothesis import given
from hypothesis import strategies as st

from revrules.state import Seen, pack_seen, seen_before, unpack_seen

ZONES = st.integers(-14 * 60, 14 * 60).map(lambda m: dt.timezone(dt.timedelta(minutes=m)))
TIMES = st.datetimes(dt.datetime(1900, 1, 2), dt.datetime(2999, 12, 30), timezones=ZONES)
DIGESTS = st.text("0123456789abcdef", min_size=32, max_size=32)


@given(DIGESTS, TIMES)
def test_an_applied_event_packs_and_reads_back_the_same(digest: str, at: dt.datetime) -> None:
    seen = Seen(digest, at)
    packed = pack_seen(seen)
    assert isinstance(packed, int)
    again = unpack_seen(packed)
    assert again == seen and again.digest == digest and again.at == at
    assert again.at.utcoffset() == dt.timedelta(0)  # read back in UTC, the same instant
    assert pack_seen(again) == packed


@given(DIGESTS, TIMES, TIMES)
def test_packed_and_unpacked_agree_on_the_replay_window(digest: str, at: dt.datetime,
                                                        cutoff: dt.datetime) -> None:
    assert seen_before(pack_seen(Seen(digest, at)), cutoff) == (at < cutoff)
    assert seen_before(Seen(digest, at), cutoff) == (at < cutoff)


def test_what_cannot_be_packed_exactly_is_kept_as_it_is() -> None:
    at = dt.datetime(2026, 11, 15, tzinfo=dt.UTC)
    for seen in (Seen("", at),  # an id from a state file without digests
                 Seen("0123456789ABCDEF" * 2, at),  # not as the engine writes a digest
                 Seen("0123456789abcdef" * 2, at, "not_due", "not due"),  # a refusal
                 Seen("0123456789abcdef" * 2, dt.datetime(1899, 12, 31, tzinfo=dt.UTC)),
                 Seen("0x23456789abcdef0123456789abcdef", at)):
        assert pack_seen(seen) is seen
        assert unpack_seen(seen) is seen
