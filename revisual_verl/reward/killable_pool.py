"""A small pool of worker processes where a task that runs past its timeout is killed, not abandoned.

``concurrent.futures.ProcessPoolExecutor`` cannot do this: a timed-out future keeps its worker busy
forever, and ``signal.alarm`` only works in a main thread (not in Ray actors' threads). Here every worker
slot is a parent-side thread that owns one child process; when a task overruns, the slot kills the child
and starts a fresh one for the next task. The timeout clock starts when the task reaches a ready worker,
so queueing and process start-up are never charged to a task.

Safe to call from any thread; ``submit`` returns a ``concurrent.futures.Future``, so asyncio code awaits it
with ``asyncio.wrap_future`` without blocking its loop.

Workers die with their owner, even one stuck in C code that holds the GIL: if the owner is killed
(SIGKILL, OOM killer) nothing runs ``shutdown``, and a worker left computing ``(10^{100})!`` would burn a
core until the node restarts. Two guards: the kernel's parent-death signal (the worker's parent is the
fork server, which exits as soon as its owner's end of a pipe closes), and a thread in the worker that
polls whether the owner's pid still exists (for a fork server kept alive by a forked child of the owner,
and for platforms without the signal).
"""

import atexit
import ctypes
import logging
import math
import multiprocessing
import multiprocessing.forkserver
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

logger = logging.getLogger(__name__)

_READY = "ready"
_STARTUP_TIMEOUT_S = 120.0  # importing sympy in a fresh worker on a loaded node can take a while
_OWNER_POLL_S = 0.5
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


class TaskTimeout(TimeoutError):
    """The task ran past its timeout; its worker process was killed."""


class WorkerCrashed(RuntimeError):
    """The worker process died while running the task (e.g. out of memory, os._exit)."""


def _owner_alive(owner_pid: int) -> bool:
    try:
        os.kill(owner_pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def _watch_owner(owner_pid: int) -> None:
    while _owner_alive(owner_pid):
        time.sleep(_OWNER_POLL_S)
    os._exit(1)


def _die_with_owner(owner_pid: int) -> None:
    """Make this worker exit when ``owner_pid`` does (see the module docstring)."""
    # A fork-server child inherits the write end of the fork server's "alive" pipe (so that it could start
    # processes of its own), and the fork server only exits once every copy is closed: kept, it would keep our
    # parent alive after the owner's death, and the parent-death signal would never fire. The worker starts no
    # processes, so it lets go. The attribute is CPython's (3.4 on); where it is missing only the watcher is left.
    fork_server = getattr(multiprocessing.forkserver, "_forkserver", None)
    alive_fd = getattr(fork_server, "_forkserver_alive_fd", None)
    if isinstance(alive_fd, int):
        try:
            os.close(alive_fd)
        except OSError:
            pass
        fork_server._forkserver_alive_fd = None
    if sys.platform.startswith("linux"):
        parent = os.getppid()
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass  # no prctl here; the watcher thread still covers it
        if os.getppid() != parent:
            os._exit(1)  # the parent died before the signal was armed
    if not _owner_alive(owner_pid):
        os._exit(1)
    threading.Thread(target=_watch_owner, args=(owner_pid,), name="owner-watch", daemon=True).start()


def _worker_main(conn, preload: tuple[str, ...], owner_pid: int | None = None) -> None:
    """Child process loop: run ``fn(*args)`` for each message, send back ``(ok, value)``."""
    import importlib

    if owner_pid is not None:
        _die_with_owner(owner_pid)
    for module in preload:
        importlib.import_module(module)
    conn.send(_READY)
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return  # parent went away
        if message is None:
            return
        fn, args = message
        try:
            reply = (True, fn(*args))
        except BaseException as error:  # noqa: BLE001  the parent decides what a failure means
            reply = (False, error)
        try:
            conn.send(reply)
        except Exception as error:  # noqa: BLE001  an unpicklable result or exception must still get a reply
            conn.send((False, RuntimeError(f"worker could not send its result back: {error!r}")))


def _default_context() -> multiprocessing.context.BaseContext:
    # fork is unsafe in a threaded process (Ray actors are); forkserver forks from a clean, preloaded server.
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")


class _Slot:
    """One parent thread driving one (replaceable) child process."""

    def __init__(self, pool: "KillablePool", index: int):
        self.pool = pool
        self.index = index
        self.process = None
        self.conn = None
        self.thread = threading.Thread(target=self._run, name=f"killable-pool-slot-{index}", daemon=True)
        self.thread.start()

    def _start_process(self) -> None:
        parent_conn, child_conn = self.pool.context.Pipe(duplex=True)
        process = self.pool.context.Process(
            target=_worker_main,
            args=(child_conn, self.pool.preload, self.pool.owner_pid),
            name=f"killable-pool-worker-{self.index}",
        )
        process.daemon = True
        process.start()
        child_conn.close()
        if not parent_conn.poll(_STARTUP_TIMEOUT_S) or parent_conn.recv() != _READY:
            self._kill_process(process, parent_conn)
            raise WorkerCrashed(f"worker {self.index} did not start within {_STARTUP_TIMEOUT_S:.0f} s")
        self.process, self.conn = process, parent_conn
        with self.pool._lock:
            self.pool.started += 1

    @staticmethod
    def _kill_process(process, conn) -> None:
        if process.is_alive():
            process.kill()
        process.join(timeout=10)
        conn.close()

    def stop_process(self) -> None:
        if self.process is not None:
            self._kill_process(self.process, self.conn)
            self.process, self.conn = None, None

    def _run(self) -> None:
        while True:
            task = self.pool.tasks.get()
            if task is None:
                self.stop_process()
                return
            self.pool.note_taken()
            fn, args, timeout_s, future = task
            if not future.set_running_or_notify_cancel():
                self.pool.note_done()
                continue
            try:
                self._run_task(fn, args, timeout_s, future)
            finally:
                self.pool.note_done()

    def _run_task(self, fn, args, timeout_s, future: Future) -> None:
        try:
            if self.process is None or not self.process.is_alive():
                self.stop_process()
                self._start_process()
            started = time.perf_counter()
            self.conn.send((fn, args))
            ready = self.conn.poll(timeout_s)
            elapsed = time.perf_counter() - started
            if not ready:
                pid = self.process.pid
                self.stop_process()
                with self.pool._lock:
                    self.pool.killed += 1
                future.service_s = elapsed
                future.set_exception(TaskTimeout(f"task exceeded {timeout_s:g} s; worker pid {pid} killed"))
                return
            ok, value = self.conn.recv()
            future.service_s = time.perf_counter() - started
        except (EOFError, OSError, BrokenPipeError) as error:
            self.stop_process()
            future.service_s = 0.0
            future.set_exception(WorkerCrashed(f"worker {self.index} died: {error!r}"))
            return
        except BaseException as error:  # noqa: BLE001  never let a slot thread die with a pending future
            self.stop_process()
            future.service_s = 0.0
            future.set_exception(error)
            return
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)


class KillablePool:
    """Up to ``max_workers`` child processes, started on demand, each task bounded by its own timeout.

    ``preload`` names modules every worker imports before it reports ready (with forkserver they are also
    imported once in the fork server, so replacing a killed worker is quick).
    """

    def __init__(self, max_workers: int, preload: tuple[str, ...] = (), context=None):
        if max_workers < 1:
            raise ValueError(f"max_workers must be >= 1, got {max_workers}")
        self.max_workers = max_workers
        self.preload = tuple(preload)
        self.context = context or _default_context()
        if self.context.get_start_method() == "forkserver" and self.preload:
            # "__main__" stays first, as in multiprocessing's default: where the fork server honours it (CPython
            # gh-126631, fixed after 3.12), workers stop re-running the owner's main script; on 3.11 it is a no-op.
            self.context.set_forkserver_preload(["__main__", *self.preload])
        self.tasks: queue.SimpleQueue = queue.SimpleQueue()
        self._waiting = 0  # submitted, not yet taken by a slot
        self._busy = 0  # taken by a slot, not finished
        self.slots: list[_Slot] = []
        self.killed = 0  # tasks whose worker was killed on timeout
        self.started = 0  # worker processes started, replacements included
        self._lock = threading.Lock()
        self._closed = False
        self.owner_pid = os.getpid()

    def submit(self, fn: Callable, *args: Any, timeout_s: float) -> Future:
        """Run ``fn(*args)`` in a worker; the future raises :class:`TaskTimeout` if it overruns ``timeout_s``.

        ``fn`` and ``args`` must pickle (a module-level function). The future carries ``service_s``, the
        seconds the task spent in a worker, once done.
        """
        if not (math.isfinite(timeout_s) and timeout_s > 0):
            raise ValueError(f"timeout_s must be a finite number > 0, got {timeout_s}")
        future: Future = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("KillablePool is shut down")
            self._waiting += 1
            free_slots = len(self.slots) - self._busy
            if self._waiting > free_slots and len(self.slots) < self.max_workers:
                self.slots.append(_Slot(self, len(self.slots)))
            self.tasks.put((fn, args, timeout_s, future))
        return future

    @property
    def closed(self) -> bool:
        """True once :meth:`shutdown` has run; a closed pool refuses new tasks."""
        return self._closed

    def note_taken(self) -> None:
        with self._lock:
            self._waiting -= 1
            self._busy += 1

    def note_done(self) -> None:
        with self._lock:
            self._busy -= 1

    def worker_pids(self) -> list[int]:
        return [slot.process.pid for slot in self.slots if slot.process is not None and slot.process.is_alive()]

    def shutdown(self) -> None:
        """Stop every worker; queued tasks that never started are cancelled, running ones end within their timeout."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            while True:
                try:
                    task = self.tasks.get_nowait()
                except queue.Empty:
                    break
                task[3].cancel()
            for _ in self.slots:
                self.tasks.put(None)
        for slot in self.slots:
            slot.thread.join(timeout=15)
            slot.stop_process()


_shared_pool: KillablePool | None = None
_shared_lock = threading.Lock()


def shared_pool(max_workers: int, preload: tuple[str, ...] = ()) -> KillablePool:
    """The process-wide pool, created on first use (and again in a forked child, which cannot reuse it).

    The first caller fixes its size; later callers share it whatever they ask for.
    """
    global _shared_pool
    with _shared_lock:
        if _shared_pool is None or _shared_pool.owner_pid != os.getpid() or _shared_pool.closed:
            _shared_pool = KillablePool(max_workers=max_workers, preload=preload)
            atexit.register(_shared_pool.shutdown)
        return _shared_pool
