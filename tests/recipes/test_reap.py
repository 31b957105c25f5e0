"""A stage's driver runs in a session of its own; what that session leaves is stopped
(revisual_verl.recipes.reap)."""

import os
import subprocess
import sys
import time

import pytest

from revisual_verl.recipes.reap import main, reap, session_of, session_processes

# A process that ignores SIGTERM and leaves a grandchild in its own process group, as a busy Ray worker
# (Ray gives each worker a process group of its own, inside the driver's session).
STUBBORN = (
    "import os, signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'], process_group=0); time.sleep(600)"
)
DRIVER = (
    "import subprocess, sys, time; "
    f"subprocess.Popen([sys.executable, '-c', {STUBBORN!r}]); "
    "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']); time.sleep(600)"
)


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_a_killed_drivers_session_is_stopped_and_nothing_else(capsys):
    driver = subprocess.Popen(
        [sys.executable, "-m", "revisual_verl.recipes.reap", "--new-session", "--", sys.executable, "-c", DRIVER]
    )
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    try:
        # The driver leads its own session; its children, the grandchild in its own group too, are in it.
        assert wait_for(lambda: len(session_processes(driver.pid)) == 4), session_processes(driver.pid)
        assert session_of(driver.pid) == driver.pid != os.getsid(0)
        driver.kill()
        driver.wait(timeout=10)
        # What a SIGKILLed driver leaves behind: the rest of its session.
        assert len(session_processes(driver.pid)) == 3
        assert main(["--session", str(driver.pid), "--grace", "1"]) == 0
        assert "stopped 3 leftover process(es)" in capsys.readouterr().err
        assert session_processes(driver.pid) == []
        assert bystander.poll() is None
        assert reap(driver.pid) == [] and capsys.readouterr().err == ""
    finally:
        for proc in (driver, bystander):
            if proc.poll() is None:
                proc.kill()
        if session_processes(driver.pid):
            reap(driver.pid, grace_s=0)


def test_its_own_session_is_never_reaped():
    with pytest.raises(SystemExit):
        main(["--session", str(os.getsid(0))])
    with pytest.raises(ValueError, match="refusing"):
        reap(1)
    with pytest.raises(SystemExit):
        main(["--new-session"])


def test_the_command_runs_with_its_exit_status_in_a_new_session():
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "revisual_verl.recipes.reap",
            "--new-session",
            "--",
            sys.executable,
            "-c",
            "import os, sys; print(os.getsid(0) == os.getpid()); sys.exit(3)",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 3 and out.stdout.strip() == "True"
