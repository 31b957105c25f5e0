"""Run a stage's driver in a session of its own, and stop what it leaves behind.

A local Ray cluster started by the driver (GCS, raylet, agents, workers) stays in the driver's session
even where Ray gives a worker a process group of its own. After the driver exits, however it exits
(a SIGKILL included), the processes of its session are stopped: SIGTERM, then SIGKILL after a grace
period. The recipes record the session in the stage's directory, so that launching the stage again
first stops whatever an earlier launch left. Processes of a cluster the driver only attached to are
not in its session and are left alone.

    python -m revisual_verl.recipes.reap --new-session -- python -m revisual_verl.main_ppo ...
    python -m revisual_verl.recipes.reap --session 12345 [--grace 5]
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time

KILL_WAIT_S = 10.0


def session_of(pid: int, proc: str = "/proc") -> int | None:
    """The session id of ``pid`` (None when it is gone or unreadable)."""
    try:
        with open(os.path.join(proc, str(pid), "stat"), "rb") as handle:
            stat = handle.read()
    except OSError:
        return None
    # "pid (comm) state ppid pgrp session ...": comm may hold spaces and parentheses, so split after the last ")".
    fields = stat[stat.rfind(b")") + 2 :].split()
    return int(fields[3]) if len(fields) > 3 else None


def session_processes(session: int, proc: str = "/proc") -> list[int]:
    """Live pids (not this process, not zombies) whose session is ``session``."""
    found = []
    for name in os.listdir(proc):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        pid = int(name)
        if session_of(pid, proc) == session and not _is_zombie(pid, proc):
            found.append(pid)
    return sorted(found)


def _is_zombie(pid: int, proc: str) -> bool:
    try:
        with open(os.path.join(proc, str(pid), "stat"), "rb") as handle:
            stat = handle.read()
    except OSError:
        return True
    return stat[stat.rfind(b")") + 2 :].split()[:1] == [b"Z"]


def _signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, signum)
        except (ProcessLookupError, PermissionError):
            pass


def reap(session: int, grace_s: float = 5.0) -> list[int]:
    """Stop every process of ``session``; returns the pids found. Never this process's own session."""
    if session <= 1 or session == os.getsid(0):
        raise ValueError(f"refusing to stop session {session} (this process's own, or not a session)")
    pids = session_processes(session)
    if not pids:
        return []
    _signal_all(pids, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and session_processes(session):
        time.sleep(0.2)
    _signal_all(session_processes(session), signal.SIGKILL)
    # SIGKILL is delivered asynchronously: return once they are gone.
    deadline = time.monotonic() + KILL_WAIT_S
    while time.monotonic() < deadline and session_processes(session):
        time.sleep(0.05)
    return pids


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--session", type=int, help="stop the processes of this session (a driver's pid)")
    action.add_argument("--new-session", action="store_true", help="run the command after -- in a new session")
    parser.add_argument("--grace", type=float, default=5.0, help="seconds between SIGTERM and SIGKILL")
    parser.add_argument("--what", default="leftover", help="how to name what was stopped in the message")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- and the command (with --new-session)")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if args.new_session:
        if not command:
            parser.error("--new-session needs a command after --")
        os.setsid()
        os.execvp(command[0], command)
    if command:
        parser.error("a command is only taken with --new-session")
    try:
        pids = reap(args.session, args.grace)
    except ValueError as error:
        parser.error(str(error))
    if pids:
        print(f"[revisual] stopped {len(pids)} {args.what} process(es) of the stage's driver session", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
