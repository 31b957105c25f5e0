"""Accuracy verdicts for untrusted responses: cheap rules in-process, math-verify in killable workers.

The order keeps most verdicts off the symbolic parser: no answer -> 0; an absurdly long answer -> 0
unparsed; a multiple-choice row (options given) -> the letter settles it here, or the answer is compared with
the right option's text from here on (:mod:`choices`); an answer the cheap rules settle (normalised string,
number, choice letter) -> decided here;
an answer too costly to evaluate (``(10^{100})!``) -> 0 unparsed; the rest ->
:func:`symbolic.symbolic_verdict` in a :class:`KillablePool` worker under a hard timeout.
Symbolic verdicts are cached per (answer, ground truth), and identical requests in flight share one
task, so the eight rollouts of a prompt that give the same answer cost one parse.
"""

import asyncio
import dataclasses
import logging
import math
import numbers
import os
import threading
import time
import weakref
from collections import OrderedDict, deque
from concurrent.futures import Future, wait
from dataclasses import dataclass

from revisual_verl.reward.answer_screen import too_costly
from revisual_verl.reward.choices import choice_target, clean_choices
from revisual_verl.reward.extract import extract_answer
from revisual_verl.reward.killable_pool import KillablePool, TaskTimeout, shared_pool
from revisual_verl.reward.quick_verdict import quick_verdict

logger = logging.getLogger(__name__)

SYMBOLIC_MODULE = "revisual_verl.reward.symbolic"
MAX_GROUND_TRUTH_CHARS = 10_000
_CACHE_SIZE = 20_000
_CACHE_MAX_KEY_CHARS = 2_000  # long (answer, ground truth) pairs are not cached: bounds the cache's memory
_WARN_FIRST = 10  # log the first few problems of each kind, then every _WARN_EVERY-th
_WARN_EVERY = 1000
# Longest stretch of in-process checking (extraction, cheap rules, screening) between two yields to the event loop.
LANE_SLICE_S = 0.01


@dataclass(frozen=True)
class AccuracyResult:
    correct: bool
    answer: str | None
    decided_by: str  # no_answer | quick | oversize | too_costly | symbolic | timeout | worker_error | bad_ground_truth
    latency_s: float = 0.0  # compute time of this verdict: in-process work + time in a worker (not queueing)

    @property
    def timed_out(self) -> bool:
        return self.decided_by == "timeout"

    @property
    def bad_ground_truth(self) -> bool:
        return self.decided_by == "bad_ground_truth"


def clean_ground_truth(ground_truth) -> tuple[str | None, str]:
    """``(ground truth as a string, "")``, or ``(None, why it is unusable)``; never raises.

    Accepts a string or a real number, or a one-element list of them (numpy arrays included, as parquet
    rows arrive); a boxed ground truth is unwrapped.
    """
    try:
        return _clean_ground_truth(ground_truth)
    except Exception as error:  # noqa: BLE001  a dataset row must not crash a step, whatever it holds
        return None, f"ground truth could not be read: {error!r}"[:300]


def _clean_ground_truth(ground_truth) -> tuple[str | None, str]:
    if hasattr(ground_truth, "tolist") and not isinstance(ground_truth, str):
        ground_truth = ground_truth.tolist()  # numpy scalar or array
    if isinstance(ground_truth, (list, tuple)):
        if len(ground_truth) != 1:
            return None, f"expected one ground truth, got a sequence of {len(ground_truth)}"
        ground_truth = ground_truth[0]
    if isinstance(ground_truth, bool) or ground_truth is None:
        return None, f"ground truth is {ground_truth!r}"
    if isinstance(ground_truth, numbers.Integral):
        # Counted in bits, not converted: str() of a huge int is slow and refused past Python's digit limit.
        digits = int(abs(int(ground_truth)).bit_length() * math.log10(2)) + 1
        if digits > MAX_GROUND_TRUTH_CHARS:
            return None, f"ground truth is an integer of about {digits} digits (limit {MAX_GROUND_TRUTH_CHARS})"
        ground_truth = str(int(ground_truth))
    elif isinstance(ground_truth, numbers.Real):
        if not math.isfinite(ground_truth):
            return None, f"ground truth is {ground_truth!r}"
        ground_truth = str(ground_truth)
    if not isinstance(ground_truth, str):
        return None, f"ground truth has type {type(ground_truth).__name__}, expected str"
    if len(ground_truth) > MAX_GROUND_TRUTH_CHARS:
        return None, f"ground truth is {len(ground_truth)} characters long (limit {MAX_GROUND_TRUTH_CHARS})"
    text = ground_truth.strip()
    if "\\boxed" in text or "\\fbox" in text:
        text = extract_answer(text) or ""
    if not text:
        return None, "ground truth is empty"
    return text, ""


def _symbolic_in_worker(answer: str, gold: str) -> bool:
    # Pickled by reference, so the reward process never imports sympy: importing it on the first symbolic check
    # would stall the reward worker's event loop for a good fraction of a second.
    from revisual_verl.reward.symbolic import symbolic_verdict

    return symbolic_verdict(answer, gold)


class InProcessLane:
    """Runs the in-process part of the checks started on one event loop, a slice at a time.

    A reward worker starts a whole batch of requests in one turn of its event loop. Were each request to do its
    in-process part (a fraction of a millisecond) before it first waits, that turn would last as long as all of
    them together, about a second for 4,096 responses, and every other coroutine on the loop would wait that
    long. Here each request queues its part and waits; one drain task works through the queue in order and yields
    to the loop once every :data:`LANE_SLICE_S` seconds. A waiter cancelled before its turn is skipped.
    """

    def __init__(self):
        # No reference to the loop: lanes are kept in a WeakKeyDictionary keyed by their loop.
        self._queue: deque = deque()
        self._drain_task: asyncio.Task | None = None

    def run(self, function, *args) -> asyncio.Future:
        """A future for ``function(*args)``, called by the drain task; from inside the lane's loop only."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.append((future, function, args))
        if self._drain_task is None:
            self._drain_task = loop.create_task(self._drain())
        return future

    async def _drain(self) -> None:
        try:
            while self._queue:
                slice_end = time.perf_counter() + LANE_SLICE_S
                while True:  # at least one item a slice, so the queue empties whatever the slice
                    future, function, args = self._queue.popleft()
                    if not future.done():  # done: its waiter was cancelled
                        try:
                            future.set_result(function(*args))
                        except Exception as error:  # noqa: BLE001  handed to the waiter
                            future.set_exception(error)
                    if not self._queue or time.perf_counter() >= slice_end:
                        break
                await asyncio.sleep(0)
        finally:
            self._drain_task = None
            while self._queue:  # only when the drain task itself is cancelled (its loop shutting down)
                self._queue.popleft()[0].cancel()


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, which containers and Ray may narrow)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


class AccuracyChecker:
    """Thread-safe and asyncio-friendly accuracy scorer with per-process counters of what went wrong.

    ``timeout_s`` bounds one symbolic check; ``workers`` sizes the process-wide worker pool (default: the
    CPUs this process may use); ``max_answer_chars`` is the longest answer worth parsing.
    """

    def __init__(
        self,
        timeout_s: float = 5.0,
        workers: int | None = None,
        max_answer_chars: int = 1000,
        pool: KillablePool | None = None,
    ):
        if not (math.isfinite(timeout_s) and timeout_s > 0):
            raise ValueError(f"timeout_s must be a finite number > 0, got {timeout_s}")
        if max_answer_chars < 1:
            raise ValueError(f"max_answer_chars must be >= 1, got {max_answer_chars}")
        self.timeout_s = float(timeout_s)
        self.workers = workers or usable_cpus()
        self.max_answer_chars = max_answer_chars
        self._pool = pool
        self._uses_shared_pool = False
        self._lock = threading.Lock()
        self._verdicts: OrderedDict[tuple[str, str], tuple[bool, str]] = OrderedDict()
        self._in_flight: dict[tuple[str, str], Future] = {}
        self.counts = {"timeout": 0, "bad_ground_truth": 0, "worker_error": 0, "symbolic": 0, "quick": 0}
        self._lanes: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    @property
    def pool(self) -> KillablePool:
        if self._pool is None or self._uses_shared_pool and (self._pool.closed or self._pool.owner_pid != os.getpid()):
            self._uses_shared_pool = True
            self._pool = shared_pool(self.workers, preload=(SYMBOLIC_MODULE,))
        return self._pool

    def _count(self, kind: str, detail: str = "") -> None:
        with self._lock:
            self.counts[kind] = self.counts.get(kind, 0) + 1
            seen = self.counts[kind]
        if detail and (seen <= _WARN_FIRST or seen % _WARN_EVERY == 0):
            logger.warning("revisual reward: %s (#%d in this process): %s", kind, seen, detail)

    def _decide_in_process(self, text, ground_truth, choices=None) -> AccuracyResult | tuple[str, str, str]:
        """The verdict, or what the symbolic check must compare: (the answer, the text to compare, the gold)."""
        gold, problem = clean_ground_truth(ground_truth)
        if gold is None:
            self._count("bad_ground_truth", f"{problem}; the response scores 0")
            return AccuracyResult(False, None, "bad_ground_truth")
        answer = extract_answer(text) if isinstance(text, str) else None
        if answer is None:
            return AccuracyResult(False, None, "no_answer")
        if len(answer) > self.max_answer_chars:
            return AccuracyResult(False, answer, "oversize")
        compared = answer
        options = clean_choices(choices) if choices is not None else None
        if options is not None:
            target = choice_target(answer, gold, options)
            if isinstance(target, bool):
                self._count("quick")
                return AccuracyResult(target, answer, "quick")
            if target is not None:
                compared, gold = target
        verdict = quick_verdict(compared, gold)
        if verdict is not None:
            self._count("quick")
            return AccuracyResult(verdict, answer, "quick")
        if too_costly(compared) is not None:
            return AccuracyResult(False, answer, "too_costly")
        return answer, compared, gold

    def _symbolic_future(self, answer: str, gold: str) -> tuple[Future | None, tuple[bool, str] | None]:
        key = (answer, gold)
        with self._lock:
            cached = self._verdicts.get(key)
            if cached is not None:
                self._verdicts.move_to_end(key)
                return None, cached
            future = self._in_flight.get(key)
            if future is not None:
                return future, None
            future = self.pool.submit(_symbolic_in_worker, answer, gold, timeout_s=self.timeout_s)
            self._in_flight[key] = future
        # Outside the lock: a future that is already done runs the callback here, and _remember takes the lock.
        future.add_done_callback(lambda done: self._remember(key, done))
        return future, None

    def _remember(self, key, future: Future) -> None:
        outcome = self._outcome(future)
        with self._lock:
            self._in_flight.pop(key, None)
            # A crash may be the machine's fault, not the answer's, so it is not remembered.
            if outcome[1] != "worker_error" and len(key[0]) + len(key[1]) <= _CACHE_MAX_KEY_CHARS:
                self._verdicts[key] = outcome
                if len(self._verdicts) > _CACHE_SIZE:
                    self._verdicts.popitem(last=False)

    @staticmethod
    def _outcome(future: Future) -> tuple[bool, str]:
        if future.cancelled():
            return False, "worker_error"
        error = future.exception()
        if error is None:
            return bool(future.result()), "symbolic"
        if isinstance(error, TaskTimeout):
            return False, "timeout"
        return False, "worker_error"

    def _finish(
        self, answer: str, future: Future | None, cached: tuple[bool, str] | None, in_process_s: float
    ) -> AccuracyResult:
        if future is not None:
            correct, decided_by = self._outcome(future)
            service_s = getattr(future, "service_s", 0.0)
        else:
            (correct, decided_by), service_s = cached, 0.0
        if decided_by == "timeout":
            self._count("timeout", f"symbolic check over {self.timeout_s:g} s for answer {answer[:80]!r}...")
        elif decided_by == "worker_error":
            # future.exception() raises on a cancelled future (a pool shut down with the task still queued).
            why = "cancelled" if future is None or future.cancelled() else repr(future.exception())
            self._count("worker_error", f"symbolic check failed: {why}")
        else:
            self._count("symbolic")
        return AccuracyResult(correct, answer, decided_by, in_process_s + service_s)

    def _start(self, text: str, ground_truth, choices=None):
        """The in-process verdict, or what the symbolic worker must finish: (answer, future, cached, seconds)."""
        started = time.perf_counter()
        decided = self._decide_in_process(text, ground_truth, choices)
        if isinstance(decided, AccuracyResult):
            return dataclasses.replace(decided, latency_s=time.perf_counter() - started)
        answer, compared, gold = decided
        future, cached = self._symbolic_future(compared, gold)
        return answer, future, cached, time.perf_counter() - started

    def check(self, text: str, ground_truth, choices=None) -> AccuracyResult:
        """Blocking verdict; safe from any thread. ``choices``: the options of a multiple-choice row, in letter
        order (see :mod:`revisual_verl.reward.choices`); None or an unusable value for any other row."""
        started = self._start(text, ground_truth, choices)
        if isinstance(started, AccuracyResult):
            return started
        answer, future, cached, in_process_s = started
        if future is not None:
            wait([future])  # the pool guarantees it ends within the timeout
        return self._finish(answer, future, cached, in_process_s)

    def lane(self) -> InProcessLane:
        """The running loop's lane for in-process work (one per loop: a checker may serve several)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            lane = self._lanes.get(loop)
            if lane is None:
                lane = self._lanes[loop] = InProcessLane()
        return lane

    async def check_async(self, text: str, ground_truth, choices=None) -> AccuracyResult:
        """Same verdict as :meth:`check`, awaiting the worker without blocking the event loop.

        The in-process part runs in the loop's :class:`InProcessLane`, so a batch of requests started together
        holds the loop for at most about :data:`LANE_SLICE_S` at a time.
        """
        started = await self.lane().run(self._start, text, ground_truth, choices)
        if isinstance(started, AccuracyResult):
            return started
        answer, future, cached, in_process_s = started
        if future is not None:
            try:
                # Shielded: the future is shared by every request for this (answer, ground truth), so one
                # cancelled waiter must not cancel it for the others.
                await asyncio.shield(asyncio.wrap_future(future))
            except asyncio.CancelledError:
                if not future.cancelled():
                    raise  # our own task was cancelled; a cancelled pool task is just a failed verdict
            except Exception as error:  # noqa: BLE001  every failure becomes a 0 verdict in _finish
                logger.debug("symbolic check failed: %r", error)
        return self._finish(answer, future, cached, in_process_s)


_default_checker: AccuracyChecker | None = None
_default_lock = threading.Lock()


def default_checker() -> AccuracyChecker:
    global _default_checker
    with _default_lock:
        if _default_checker is None:
            _default_checker = AccuracyChecker()
        return _default_checker


def accuracy_reward(text: str, ground_truth, choices=None) -> float:
    """1.0 when the response's final answer equals the ground truth by math-verify's rules, else 0.0; for a
    multiple-choice row (``choices``), the right option's letter or text (see :mod:`revisual_verl.reward.choices`).

    Never raises and never hangs: no answer, a broken ground truth or a check over the timeout all give 0.
    """
    return 1.0 if default_checker().check(text, ground_truth, choices).correct else 0.0
