import asyncio
import logging
import subprocess
import sys
import threading
import time
from fractions import Fraction

import numpy as np
import pytest
from labelled_answers import LABELLED

from revisual_verl.reward.accuracy import AccuracyChecker, accuracy_reward, clean_ground_truth
from revisual_verl.reward.killable_pool import KillablePool


class CountingPool(KillablePool):
    """A real pool that counts the tasks submitted to it."""

    submitted = 0

    def submit(self, *args, **kwargs):
        self.submitted += 1
        return super().submit(*args, **kwargs)


class DoneOnReturnPool(KillablePool):
    """A real pool whose futures are already finished when ``submit`` returns, as happens when the submitting
    thread is descheduled until the worker has answered."""

    def submit(self, *args, **kwargs):
        future = super().submit(*args, **kwargs)
        future.result(timeout=60)
        return future


class UnreadableGroundTruth:
    def tolist(self):
        raise RuntimeError("corrupt array")


@pytest.fixture(scope="module")
def checker():
    pool = CountingPool(max_workers=2, preload=("revisual_verl.reward.symbolic",))
    yield AccuracyChecker(timeout_s=3.0, pool=pool)
    pool.shutdown()


def test_agrees_with_math_verify_on_the_labelled_set(checker):
    def respond(answer):
        return f"<think>work</think> The answer is $\\boxed{{{answer}}}$."

    verdicts = [checker.check(respond(a), g) for a, g, _ in LABELLED]
    wrong = [(a, g, v.decided_by) for (a, g, label), v in zip(LABELLED, verdicts) if v.correct != label]
    assert wrong == []
    assert {v.decided_by for v in verdicts} == {"quick", "symbolic"}


def test_a_set_of_both_signs_matches_a_plus_minus_ground_truth(checker):
    """Issue 18: ``\\boxed{{-2021, 2021}}`` against ``\\pm 2021``, which math-verify accepts, is accepted here too,
    and the near misses are refused by both."""
    from verl.utils.reward_score.math_verify import compute_score

    right = "<think>x^2 = 2021^2</think> So $x = \\boxed{{-2021, 2021}}$."
    verdict = checker.check(right, "\\pm 2021")
    assert (verdict.correct, verdict.answer) == (True, "{-2021, 2021}")
    assert compute_score(right, "\\pm 2021") == 1.0  # math-verify reading the whole response, as verl's scorer does
    for wrong in ("\\boxed{2021}", "\\boxed{{-2021, 2020}}", "\\boxed{{2021}}"):
        assert not checker.check(wrong, "\\pm 2021").correct, wrong
        assert compute_score(wrong, "\\pm 2021") == 0.0, wrong


def test_a_final_answer_sentence_after_the_last_box_is_not_read(checker):
    """The one case of math-verify's own test suite where the verdicts differ (docs/reward.md): math-verify ranks
    a "final answer is" sentence above a box; the recipe's answer is the last box."""
    from verl.utils.reward_score.math_verify import compute_score

    response = (
        "So the interest is $0.05 \\cdot 10200 \\cdot \\frac{1}{2} = \\boxed{255}$ and she has $10,455. "
        "Final Answer: The final answer is $10,455$. I hope it is correct."
    )
    verdict = checker.check(response, "10455")
    assert (verdict.correct, verdict.answer) == (False, "255")
    assert checker.check(response, "255").correct
    assert compute_score(response, "10455") == 1.0


def test_accuracy_reward_function():
    assert accuracy_reward("<think>t</think> \\boxed{\\dfrac{1}{2}}", "0.5") == 1.0
    assert accuracy_reward("<think>t</think> \\boxed{3}", "4") == 0.0
    assert accuracy_reward("<answer>7</answer>", 7) == 1.0
    assert accuracy_reward("no answer", "4") == 0.0


def _hostile_corpus(sentinel):
    code = [
        f"__import__('os').system('touch {sentinel}')",
        f"open('{sentinel}', 'w').write('x')",
        f"exec(\"open('{sentinel}','w')\")",
        f"eval(compile('open(\\'{sentinel}\\',\\'w\\')','x','exec'))",
        f"[c for c in ().__class__.__base__.__subclasses__()]; open('{sentinel}','w')",
        f"lambda: open('{sentinel}', 'w')",
        f"import os; os.system('touch {sentinel}')",
        f"1+1 if open('{sentinel}','w') else 2",
        f"__import__('pathlib').Path('{sentinel}').touch()",
    ]
    responses = [f"<think>x</think> \\boxed{{{c}}}" for c in code]
    responses += [f"<think>x</think> {c}" for c in code]  # bare code, no box
    responses += [f"<answer>{c}</answer>" for c in code]
    responses += [
        "\\boxed{(10^{100})!}",
        "\\boxed{9^{9^{9}}}",
        "\\boxed{10^{10000}}",
        "\\boxed{2^{1000000}}",
        "\\boxed{" + "\\frac{1}{" * 300 + "2" + "}{3}" * 300 + "}",  # 300 levels: too long to parse
        "\\boxed{" + "(" * 120 + "1" + ")" * 120 + "}",  # deep parentheses, short enough to parse
        "\\boxed{" + "\\frac{1}{" * 2000,  # unbalanced
        "\\boxed{" * 20_000,
        "\\boxed{" + "9" * 5000 + "}",  # a 5,000-digit integer
        "\\boxed{" + "1" * 40 + "." + "1" * 40 + "}",
        "\\boxed{" + "x" * 900 + "}",
        "\\boxed{\\sqrt{\\sqrt{\\sqrt{\\sqrt{\\sqrt{\\sqrt{2}}}}}}}",
        "\\boxed{\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}^{100}}",
        "\\boxed{\\int_0^{\\infty} e^{-x^2} dx}",
        "\\boxed{\\sum_{n=1}^{\\infty} \\frac{1}{n^2}}",
        "0" * 32_000 + " \\boxed{1}",
        "\\boxed{\x00\x01\ufffd}",
        "\\boxed{\\frac{}{}}",
        "\\boxed{\\left(\\right.}",
        "\\boxed{$$$$}",
        "<think>" * 1000 + "</think>" * 1000 + "\\boxed{1}",
    ]
    return responses


def test_hostile_corpus_completes_in_bound_scores_everything_and_runs_no_code(checker, tmp_path):
    sentinel = tmp_path / "code-was-evaluated"
    corpus = _hostile_corpus(sentinel)
    started = time.perf_counter()
    verdicts = [checker.check(text, "2") for text in corpus]
    assert time.perf_counter() - started < 90  # hang guard: a few timeouts at 3 s, everything else quick
    assert len(verdicts) == len(corpus)
    assert all(v.correct is False for v in verdicts[:-2])
    assert not sentinel.exists()
    assert all(v.latency_s < checker.timeout_s + 2 for v in verdicts)


def test_a_parse_that_runs_past_the_timeout_scores_zero_and_is_counted(tmp_path):
    pool = KillablePool(max_workers=1, preload=("revisual_verl.reward.symbolic",))
    checker = AccuracyChecker(timeout_s=0.05, pool=pool)
    try:
        # sympy needs far more than 50 ms for this; the worker is killed, not left running
        verdict = checker.check("\\boxed{\\int_0^{1} x^{17} \\sin(x)^{9} dx + \\sqrt{12}}", "\\sqrt{3}")
        again = checker.check("\\boxed{\\int_0^{1} x^{17} \\sin(x)^{9} dx + \\sqrt{12}}", "\\sqrt{3}")
    finally:
        pool.shutdown()
    assert verdict.timed_out and not verdict.correct
    assert verdict.latency_s < 2
    assert pool.killed == 1
    assert again.timed_out and pool.killed == 1  # a cached verdict is still reported as a timeout
    assert checker.counts["timeout"] == 2


@pytest.mark.parametrize(
    "ground_truth",
    [
        None,
        "",
        "   ",
        [],
        ["1", "2"],
        {"a": 1},
        float("nan"),
        True,
        "9" * 20_000,
        object(),
        10**5000,  # past Python's int-to-str digit limit (4,300)
        10**20_000,  # longer than any ground truth may be
        Fraction(10**400, 3),  # past float range: math.isfinite overflows
        UnreadableGroundTruth(),
    ],
    ids=lambda value: type(value).__name__,  # repr/str of a 5,000-digit int raises
)
def test_a_broken_ground_truth_is_a_counted_warning_not_a_crash(checker, ground_truth, caplog):
    checker = AccuracyChecker(pool=checker.pool)  # fresh counters: only the first few warnings are logged
    before = checker.counts["bad_ground_truth"]
    with caplog.at_level(logging.WARNING, logger="revisual_verl.reward.accuracy"):
        verdict = checker.check("<think>t</think> \\boxed{1}", ground_truth)
    assert verdict.bad_ground_truth and not verdict.correct
    assert checker.counts["bad_ground_truth"] == before + 1
    assert "ground truth" in caplog.text


def test_ground_truth_shapes_that_are_fine():
    assert clean_ground_truth(np.array(["12"], dtype=object)) == ("12", "")
    assert clean_ground_truth(np.int64(5)) == ("5", "")
    assert clean_ground_truth(2.5) == ("2.5", "")
    assert clean_ground_truth("\\boxed{\\frac{1}{2}}") == ("\\frac{1}{2}", "")
    assert clean_ground_truth(["A"]) == ("A", "")
    assert clean_ground_truth(10**30) == ("1" + "0" * 30, "")
    assert clean_ground_truth(np.array([-7])) == ("-7", "")


def test_clean_ground_truth_never_raises():
    gold, problem = clean_ground_truth(UnreadableGroundTruth())
    assert gold is None and "corrupt array" in problem
    assert clean_ground_truth(10**20_000)[1].startswith("ground truth is an integer of about 20001 digits")


def test_an_integer_ground_truth_past_float_range_is_compared_exactly(checker):
    assert clean_ground_truth(10**400) == ("1" + "0" * 400, "")  # math.isfinite(10**400) would overflow
    assert checker.check("\\boxed{1" + "0" * 400 + "}", 10**400).correct
    assert not checker.check("\\boxed{1" + "0" * 399 + "1}", 10**400).correct


def test_a_group_sharing_an_answer_costs_one_symbolic_check(checker):
    text = "<think>t</think> \\boxed{\\sqrt{27}}"
    submitted, cached = checker.pool.submitted, len(checker._verdicts)

    async def group():
        return await asyncio.gather(*(checker.check_async(text, "3\\sqrt{3}") for _ in range(8)))

    verdicts = asyncio.run(group())
    assert all(v.correct and v.decided_by == "symbolic" for v in verdicts)
    assert checker.pool.submitted == submitted + 1  # one task in flight, shared by all eight
    assert len(checker._verdicts) == cached + 1
    assert sum(v.latency_s > 0 for v in verdicts) == 8
    assert checker.check(text, "3\\sqrt{3}").correct and checker.pool.submitted == submitted + 1  # then cached


def test_a_future_already_done_at_submit_does_not_deadlock():
    pool = DoneOnReturnPool(max_workers=1, preload=("revisual_verl.reward.symbolic",))
    checker = AccuracyChecker(timeout_s=10.0, pool=pool)
    verdicts = []
    # A daemon thread, so that a deadlock fails the test instead of hanging the run.
    thread = threading.Thread(target=lambda: verdicts.append(checker.check("\\boxed{\\sqrt{12}}", "2\\sqrt{3}")))
    thread.daemon = True
    try:
        thread.start()
        thread.join(timeout=60)
        assert not thread.is_alive(), "check() deadlocked on its own lock"
        assert verdicts[0].correct and verdicts[0].decided_by == "symbolic"
        assert checker._in_flight == {}
        assert checker.check("\\boxed{\\sqrt{12}}", "2\\sqrt{3}").correct  # from the cache, lock free again
    finally:
        pool.shutdown()


def test_cancelling_one_waiter_leaves_the_shared_check_to_the_others():
    pool = KillablePool(max_workers=1, preload=("revisual_verl.reward.symbolic",))
    checker = AccuracyChecker(timeout_s=10.0, pool=pool)
    text = "<think>t</think> \\boxed{\\sqrt{48}}"

    async def scenario():
        # The only worker is busy for a while, so the shared check waits in the queue, still cancellable.
        busy = asyncio.wrap_future(pool.submit(time.sleep, 1.0, timeout_s=60))
        first = asyncio.create_task(checker.check_async(text, "4\\sqrt{3}"))
        second = asyncio.create_task(checker.check_async(text, "4\\sqrt{3}"))
        await asyncio.sleep(0.2)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        verdict = await asyncio.wait_for(second, timeout=60)
        await busy
        return verdict

    try:
        verdict = asyncio.run(scenario())
    finally:
        pool.shutdown()
    assert verdict.correct and verdict.decided_by == "symbolic"
    assert checker.counts["worker_error"] == 0


def test_a_check_queued_when_the_pool_shuts_down_scores_zero_without_raising():
    pool = KillablePool(max_workers=1, preload=("revisual_verl.reward.symbolic",))
    checker = AccuracyChecker(timeout_s=10.0, pool=pool)

    async def scenario():
        busy = asyncio.wrap_future(pool.submit(time.sleep, 1.0, timeout_s=60))
        queued = asyncio.create_task(checker.check_async("\\boxed{\\sqrt{50}}", "5\\sqrt{2}"))
        await asyncio.sleep(0.2)
        await asyncio.to_thread(pool.shutdown)  # cancels the queued check
        await busy
        return await queued

    verdict = asyncio.run(scenario())
    assert verdict.decided_by == "worker_error" and not verdict.correct
    assert checker.counts["worker_error"] == 1


def test_the_reward_process_never_imports_sympy():
    """Importing sympy takes a good fraction of a second; on the first symbolic check it would stall the loop."""
    script = (
        "import sys\n"
        "from revisual_verl.reward.accuracy import AccuracyChecker\n"
        "from revisual_verl.reward.killable_pool import KillablePool\n"
        "pool = KillablePool(1, preload=('revisual_verl.reward.symbolic',))\n"
        "verdict = AccuracyChecker(timeout_s=30, pool=pool).check('\\\\boxed{\\\\sqrt{8}}', '2\\\\sqrt{2}')\n"
        "pool.shutdown()\n"
        "print(verdict.decided_by, verdict.correct, 'sympy' in sys.modules, 'math_verify' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["symbolic", "True", "False", "False"], done.stderr


def test_threads_and_asyncio_give_the_same_verdicts(checker):
    cases = [(f"<think>t</think> \\boxed{{{a}}}", g, label) for a, g, label in LABELLED[::3]]
    from_threads = {}

    def worker(i):
        from_threads[i] = checker.check(cases[i][0], cases[i][1]).correct

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(cases))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    async def all_async():
        return await asyncio.gather(*(checker.check_async(t, g) for t, g, _ in cases))

    from_async = [v.correct for v in asyncio.run(all_async())]
    assert [from_threads[i] for i in range(len(cases))] == from_async == [label for _, _, label in cases]


def test_bad_settings():
    with pytest.raises(ValueError, match="timeout_s"):
        AccuracyChecker(timeout_s=0)
    for timeout_s in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="timeout_s"):
            AccuracyChecker(timeout_s=timeout_s)
    with pytest.raises(ValueError, match="max_answer_chars"):
        AccuracyChecker(max_answer_chars=0)
