"""The keep-alive ticker of a stream's vendor read (llm.providers.wire_body.Ticker): every silence
as long as its interval is reported, whatever the gaps between the vendor's events. A vendor that
pauses 1.4 intervals between events got no keep-alive at all when the timer, finding a recent
event, looked again a whole interval after that event's silence would have been due (seen as a
Messages stream without its `ping` events)."""

import pytest

from llm.providers.wire_body import Ticker


def ticker_at(now: float, last_event: float) -> Ticker:
    ticker = Ticker(10.0)
    ticker.clock = lambda: now  # the timer's view of the loop clock
    ticker.last_event = last_event
    return ticker


async def test_after_a_recent_event_the_timer_looks_again_when_its_silence_reaches_the_interval():
    ticker = ticker_at(now=100.0, last_event=95.0)  # the timer was armed before an event 5 s ago
    ticker._fire()
    assert ticker.handle.when() == pytest.approx(105.0)  # not 115: a 7 s silence must still tick
    assert ticker.ticked is False
    ticker.stop()


async def test_a_silence_of_an_interval_ticks_and_the_next_look_is_an_interval_later():
    ticker = ticker_at(now=100.0, last_event=88.0)
    ticker._fire()
    assert ticker.last_event == 100.0  # the tick counts as the last sign of life
    assert ticker.handle.when() == pytest.approx(110.0)
    ticker.stop()
