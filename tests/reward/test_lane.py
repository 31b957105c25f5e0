"""The in-process part of asyncio checks runs in slices, so a batch started in one loop turn cannot hold the loop.

No timings here (they are the benchmark's stall column): the slice is set to 0, so the lane must yield after every
item, and the test checks the order in which the loop ran things.
"""

import asyncio

import pytest

from revisual_verl.reward import accuracy
from revisual_verl.reward.accuracy import AccuracyChecker, InProcessLane


@pytest.fixture
def no_slice(monkeypatch):
    monkeypatch.setattr(accuracy, "LANE_SLICE_S", 0.0)


def _longest_run(log, entry):
    longest = run = 0
    for item in log:
        run = run + 1 if item == entry else 0
        longest = max(longest, run)
    return longest


def test_a_batch_started_in_one_turn_lets_other_coroutines_run_between_its_checks(no_slice, monkeypatch):
    checker = AccuracyChecker()
    log = []
    start = checker._start

    def logged_start(*args):
        log.append("check")
        return start(*args)

    monkeypatch.setattr(checker, "_start", logged_start)

    async def main():
        done = False

        async def other():
            while not done:
                log.append("other")
                await asyncio.sleep(0)

        other_task = asyncio.create_task(other())
        await asyncio.sleep(0)
        results = await asyncio.gather(*(checker.check_async(f"\\boxed{{{i}}}", str(i % 3)) for i in range(60)))
        done = True
        await other_task
        return results

    results = asyncio.run(main())
    assert [r.correct for r in results] == [i % 3 == i for i in range(60)]
    assert log.count("check") == 60
    # Every check was its own slice: the other coroutine ran between any two of them (run in one turn, the 60
    # checks would follow each other with nothing in between).
    assert _longest_run(log, "check") == 1


def test_the_lane_keeps_order_skips_cancelled_waiters_and_hands_back_errors(no_slice):
    calls = []

    def work(value):
        calls.append(value)
        if value == "boom":
            raise ValueError("bad input")
        return value * 2

    async def main():
        lane = InProcessLane()
        first, cancelled, failing, last = (
            lane.run(work, 1),
            lane.run(work, 2),
            lane.run(work, "boom"),
            lane.run(work, 4),
        )
        cancelled.cancel()
        results = await asyncio.gather(first, failing, last, return_exceptions=True)
        again = await lane.run(work, 5)  # the drain task ended with the queue; a new request starts another
        return results, again

    (first, failing, last), again = asyncio.run(main())
    assert (first, last, again) == (2, 8, 10)
    assert isinstance(failing, ValueError)
    assert calls == [1, "boom", 4, 5]


def test_one_lane_per_event_loop():
    checker = AccuracyChecker()

    async def lane_of_this_loop():
        return checker.lane(), checker.lane()

    first_a, first_b = asyncio.run(lane_of_this_loop())
    second_a, _ = asyncio.run(lane_of_this_loop())
    assert first_a is first_b and second_a is not first_a
