from __future__ import annotations

import pytest

from kvsim.engine.loop import EventLoop, Phase


def test_events_pop_by_time_then_phase_then_fifo() -> None:
    loop = EventLoop()
    seen: list[str] = []

    def rec(_t: float, tag: str) -> None:
        seen.append(tag)

    loop.push(2.0, Phase.ARRIVAL, rec, "arrival@2")
    loop.push(1.0, Phase.SCHEDULE, rec, "schedule@1")
    loop.push(1.0, Phase.ARRIVAL, rec, "arrival@1-first")
    loop.push(1.0, Phase.STEP_END, rec, "step_end@1")
    loop.push(1.0, Phase.ARRIVAL, rec, "arrival@1-second")
    loop.run()
    assert seen == ["step_end@1", "arrival@1-first", "arrival@1-second", "schedule@1", "arrival@2"]
    assert loop.num_events == 5
    assert loop.now == 2.0


def test_pushing_into_the_past_is_an_error() -> None:
    loop = EventLoop()
    loop.push(1.0, Phase.ARRIVAL, lambda t, a: loop.push(0.5, Phase.ARRIVAL, lambda *_: None))
    with pytest.raises(ValueError, match="before now"):
        loop.run()


def test_run_until_stops_before_later_events_and_calls_on_advance() -> None:
    loop = EventLoop()
    times: list[float] = []
    for t in (0.0, 1.0, 1.0, 3.0):
        loop.push(t, Phase.ARRIVAL, lambda *_: None)
    loop.run(until_s=2.0, on_advance=times.append)
    assert times == [1.0]  # the clock starts at 0, so only the move to 1.0 is an advance
    assert loop.peek_time() == 3.0
    assert len(loop) == 1


def test_cancelled_events_neither_run_nor_move_the_clock() -> None:
    from kvsim.engine.loop import EventLoop, Phase

    loop = EventLoop()
    seen: list[tuple[float, str]] = []
    advanced: list[float] = []
    loop.push(1.0, Phase.ARRIVAL, lambda t, a: seen.append((t, a)), "a")
    late = loop.push(5.0, Phase.STEP_END, lambda t, a: seen.append((t, a)), "stale")
    loop.push(2.0, Phase.STEP_END, lambda t, a: seen.append((t, a)), "b")
    loop.cancel(late)
    loop.run(on_advance=advanced.append)
    assert seen == [(1.0, "a"), (2.0, "b")]
    assert advanced == [1.0, 2.0]
    assert loop.now == 2.0 and loop.num_events == 2 and len(loop) == 0
