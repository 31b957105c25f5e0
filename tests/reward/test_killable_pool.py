import asyncio
import math
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from revisual_verl.reward.killable_pool import KillablePool, TaskTimeout, WorkerCrashed, shared_pool


@pytest.fixture
def pool():
    pool = KillablePool(max_workers=2)
    yield pool
    pool.shutdown()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_results_come_back(pool):
    assert pool.submit(math.comb, 10, 3, timeout_s=30).result() == 120
    assert pool.submit(os.getpid, timeout_s=30).result() != os.getpid()


def test_exceptions_in_the_task_come_back(pool):
    with pytest.raises(ValueError):
        pool.submit(int, "not a number", timeout_s=30).result()


def test_a_hung_task_is_killed_and_its_worker_replaced(pool):
    stuck_pid = pool.submit(os.getpid, timeout_s=30).result()
    # a C-level computation that holds the GIL and ignores signals: only killing the process stops it
    future = pool.submit(math.factorial, 10**8, timeout_s=0.5)
    with pytest.raises(TaskTimeout, match="killed"):
        future.result(timeout=30)
    assert future.service_s < 5
    assert not _alive(stuck_pid)
    assert pool.killed == 1
    fresh_pid = pool.submit(os.getpid, timeout_s=30).result()
    assert fresh_pid != stuck_pid and _alive(fresh_pid)


def test_a_crashed_worker_is_reported_and_replaced(pool):
    with pytest.raises(WorkerCrashed):
        pool.submit(os._exit, 3, timeout_s=30).result(timeout=30)
    assert pool.submit(math.comb, 5, 2, timeout_s=30).result() == 10


def test_many_threads_at_once_with_hung_tasks_all_finish_in_bound(pool):
    results = {}

    def caller(i):
        if i % 4 == 0:
            fn, args = time.sleep, (60,)
        else:
            fn, args = math.comb, (20, i)
        try:
            results[i] = pool.submit(fn, *args, timeout_s=0.5).result(timeout=60)
        except TaskTimeout:
            results[i] = "timeout"

    started = time.perf_counter()
    threads = [threading.Thread(target=caller, args=(i,)) for i in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert time.perf_counter() - started < 60  # hang guard
    assert [results[i] for i in range(0, 12, 4)] == ["timeout"] * 3
    assert all(results[i] == math.comb(20, i) for i in range(12) if i % 4)
    assert len(pool.slots) <= 2


def test_awaiting_a_hung_task_does_not_block_the_event_loop(pool):
    async def scenario():
        ticks = 0
        stop = asyncio.Event()

        async def ticker():
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                await asyncio.sleep(0.01)

        tick_task = asyncio.create_task(ticker())
        with pytest.raises(TaskTimeout):
            await asyncio.wrap_future(pool.submit(time.sleep, 60, timeout_s=0.5))
        stop.set()
        await tick_task
        return ticks

    assert asyncio.run(scenario()) > 10


def test_workers_start_on_demand_only(pool):
    assert pool.slots == [] and pool.worker_pids() == []
    pool.submit(math.comb, 4, 2, timeout_s=30).result()
    assert len(pool.worker_pids()) == 1


def test_shutdown_stops_workers_and_refuses_new_work():
    pool = KillablePool(max_workers=1)
    pid = pool.submit(os.getpid, timeout_s=30).result()
    pool.shutdown()
    assert not _alive(pid)
    with pytest.raises(RuntimeError, match="shut down"):
        pool.submit(os.getpid, timeout_s=30)


def test_bad_arguments():
    with pytest.raises(ValueError, match="max_workers"):
        KillablePool(max_workers=0)
    pool = KillablePool(max_workers=1)
    with pytest.raises(ValueError, match="timeout_s"):
        pool.submit(os.getpid, timeout_s=0)
    pool.shutdown()


def test_the_shared_pool_is_one_per_process():
    assert shared_pool(2) is shared_pool(3)


def test_closed_is_public_and_follows_shutdown():
    pool = KillablePool(max_workers=1)
    assert not pool.closed
    pool.shutdown()
    assert pool.closed


@pytest.mark.parametrize("timeout_s", [float("nan"), float("inf"), -1.0])
def test_a_timeout_that_is_not_a_finite_positive_number_is_refused(pool, timeout_s):
    with pytest.raises(ValueError, match="timeout_s"):
        pool.submit(os.getpid, timeout_s=timeout_s)


_OWNER_SCRIPT = """
import math, os, sys, time
from revisual_verl.reward.killable_pool import KillablePool

if __name__ == "__main__":
    hung_task, keep_fork_server = sys.argv[1], sys.argv[2] == "1"
    pool = KillablePool(max_workers=1)
    worker = pool.submit(os.getpid, timeout_s=60).result()
    helper = 0
    if keep_fork_server:
        # A plain fork of the owner inherits its end of the fork server's "alive" pipe, so the fork server
        # (the worker's parent) outlives the owner and no parent-death signal fires: only the watcher can act.
        helper = os.fork()
        if helper == 0:
            time.sleep(120)
            os._exit(0)
    if hung_task == "gil":
        pool.submit(math.factorial, 10**9, timeout_s=120)  # C code holding the GIL for minutes
    else:
        pool.submit(time.sleep, 120, timeout_s=120)
    print(worker, helper, flush=True)
    time.sleep(120)
"""


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"  # a zombie has exited
    except FileNotFoundError:
        return True


@pytest.mark.parametrize(
    ("hung_task", "keep_fork_server"),
    [("gil", False), ("sleep", False), ("sleep", True)],
    ids=["gil-held-parent-death-signal", "sleeping", "fork-server-kept-alive-owner-watcher"],
)
def test_a_stuck_worker_dies_with_its_killed_owner(tmp_path, hung_task, keep_fork_server):
    script = tmp_path / "owner.py"
    script.write_text(_OWNER_SCRIPT)
    owner = subprocess.Popen(
        [sys.executable, str(script), hung_task, str(int(keep_fork_server))], stdout=subprocess.PIPE, text=True
    )
    worker = helper = 0
    try:
        worker, helper = (int(pid) for pid in owner.stdout.readline().split())
        time.sleep(0.5)  # let the worker get into the hung task
        assert not _gone(worker)
        owner.kill()
        owner.wait(timeout=30)
        deadline = time.monotonic() + 10
        while not _gone(worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _gone(worker), f"worker {worker} outlived its SIGKILLed owner"
    finally:
        owner.kill()
        owner.wait(timeout=30)
        for pid in (helper, worker):  # a failed run must not leave a worker burning a core
            if pid and not _gone(pid):
                os.kill(pid, signal.SIGKILL)
