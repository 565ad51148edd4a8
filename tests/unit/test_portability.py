"""The fallbacks for what only some systems have: each Linux- or POSIX-only call simulated away
(as macOS or Windows lacks it) while the code still does its job. The runner's stops without
process groups are beside its other tests, in test_local_sagemaker_runner.py."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from opencomposer.local import processes
from opencomposer.local.runtime import _Worker, _WorkerConfig

# --- the CPU count -----------------------------------------------------------------------------


def _without_affinity(monkeypatch: pytest.MonkeyPatch, process_cpu_count: int | None = None) -> None:
    """macOS and Windows: no `os.sched_getaffinity`; Python 3.13+ has `os.process_cpu_count`."""
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    if process_cpu_count is None:
        monkeypatch.delattr(os, "process_cpu_count", raising=False)
    else:
        monkeypatch.setattr(os, "process_cpu_count", lambda: process_cpu_count, raising=False)


@pytest.mark.skipif(not hasattr(os, "sched_getaffinity"), reason="Linux: the affinity mask")
def test_the_cpu_count_is_the_affinity_mask_where_there_is_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from gan.cpus import usable_cpus

    monkeypatch.setattr(os, "cpu_count", lambda: 64)

    assert usable_cpus() == len(os.sched_getaffinity(0))


def test_without_an_affinity_mask_the_cpu_count_is_the_processs_then_the_machines(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from gan.cpus import usable_cpus

    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    _without_affinity(monkeypatch, process_cpu_count=3)
    assert usable_cpus() == 3  # Python 3.13+

    _without_affinity(monkeypatch)
    assert usable_cpus() == 6  # macOS, Windows on Python 3.11 and 3.12

    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert usable_cpus() == 1  # a system that cannot tell


def test_a_training_without_an_affinity_mask_sets_its_threads_from_the_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    from gan.train import main

    threads: list[int] = []
    monkeypatch.setattr(torch, "set_num_threads", threads.append)
    monkeypatch.setattr(os, "cpu_count", lambda: 5)
    _without_affinity(monkeypatch)
    env = {
        "SM_MODEL_DIR": str(tmp_path / "model"),
        "SM_OUTPUT_DATA_DIR": str(tmp_path / "output" / "data"),
        "SM_INPUT_CONFIG_DIR": str(tmp_path / "input" / "config"),
        "SM_HPS": json.dumps({"batch_size": "0"}),  # fails just after the thread count is set
    }

    code = main([], env)

    assert threads == [5], "the thread count comes from os.cpu_count"
    assert code == 1 and "batch_size" in (tmp_path / "output" / "failure").read_text()


# --- the Lambda worker's replies, without select on a pipe -------------------------------------


def _windows_select(real: Any) -> Any:
    """Windows' `select`: sockets only; anything else is WinError 10038."""

    def select_(rlist: Any, wlist: Any, xlist: Any, timeout: float | None = None) -> Any:
        for obj in (*rlist, *wlist, *xlist):
            if not isinstance(obj, socket.socket):
                raise OSError(10038, "An operation was attempted on something that is not a socket")
        return real(rlist, wlist, xlist, timeout)

    return select_


HANDLER = '''
import os, time

def handle(event, context):
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("exit"):
        os._exit(event["exit"])
    return {"pid": os.getpid(), "event": event}
'''


@pytest.fixture()
def worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[_Worker]:
    monkeypatch.setattr(select, "select", _windows_select(select.select))
    code = tmp_path / "code"
    code.mkdir()
    (code / "tiny.py").write_text(HANDLER)
    env = {k: os.environ[k] for k in ("PATH", "HOME", "SYSTEMROOT") if k in os.environ}
    env.update(
        {
            "_HANDLER": "tiny.handle",
            "AWS_LAMBDA_FUNCTION_NAME": "tiny",
            "PYTHONPATH": str(code),
            "PYTHONUNBUFFERED": "1",
        }
    )
    config = _WorkerConfig(
        function_name="tiny",
        function_arn="arn:aws:lambda:us-east-1:123456789012:function:tiny",
        handler="tiny.handle",
        memory_size=128,
        code_dir=code,
        env=env,
        log_path=tmp_path / "logs" / "tiny.log",
    )
    started = _Worker(config)
    try:
        yield started
    finally:
        started.close()


def test_the_worker_answers_without_select_on_a_pipe(worker: _Worker) -> None:
    first, first_error, _ = worker.invoke({"n": 1}, timeout_s=20)
    second, second_error, _ = worker.invoke({"n": 2}, timeout_s=20)

    assert not first_error and not second_error
    assert json.loads(first)["event"] == {"n": 1} and json.loads(second)["event"] == {"n": 2}
    assert json.loads(first)["pid"] == json.loads(second)["pid"] == worker.process.pid
    assert worker.alive()


def test_the_worker_still_times_out_without_select_on_a_pipe(worker: _Worker) -> None:
    worker.invoke({"n": 0}, timeout_s=20)  # warm: the timeout below is the handler's alone
    started = time.monotonic()

    payload, error, _ = worker.invoke({"sleep": 30}, timeout_s=0.5)

    assert error and "Task timed out after 0.50 seconds" in json.loads(payload)["errorMessage"]
    assert time.monotonic() - started < 10, "the wait ended at the timeout, not the handler's end"
    assert not worker.alive(), "a timed-out environment is discarded"


def test_a_worker_that_exits_mid_invocation_is_reported_without_select(worker: _Worker) -> None:
    payload, error, _ = worker.invoke({"exit": 3}, timeout_s=20)

    assert error and json.loads(payload)["errorMessage"] == "Runtime exited with error: 3"
    assert not worker.alive()


# --- signals and process groups ----------------------------------------------------------------

STUBBORN = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('up', flush=True); time.sleep(60)"
)


def _started(code: str) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-c", code]
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, **processes.new_session())
    assert process.stdout is not None and process.stdout.readline() == b"up\n"
    return process


def test_without_process_groups_a_stop_still_reaches_the_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "killpg")  # Windows
    polite = _started("import time; print('up', flush=True); time.sleep(60)")
    stubborn = _started(STUBBORN)
    try:
        processes.signal_group(polite, signal.SIGTERM)
        processes.signal_group(stubborn, signal.SIGTERM)
        assert polite.wait(timeout=10) == -signal.SIGTERM
        with pytest.raises(subprocess.TimeoutExpired):
            stubborn.wait(timeout=0.5)  # it ignores SIGTERM, so

        processes.signal_group(stubborn, processes.SIGKILL)

        assert stubborn.wait(timeout=10) == -processes.SIGKILL
        processes.signal_group(stubborn, processes.SIGKILL)  # an ended process: nothing to do
    finally:
        for process in (polite, stubborn):
            process.kill()
            process.wait()
            assert process.stdout is not None
            process.stdout.close()


def test_a_process_is_out_of_the_terminals_group_on_every_system(monkeypatch: pytest.MonkeyPatch) -> None:
    assert processes.new_session() == {"start_new_session": True}  # POSIX: a session of its own

    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0x200, raising=False)
    assert processes.new_session() == {"creationflags": 0x200}  # start_new_session is ignored there


# A training's threads start after `lower_priority` (torch's pools): they must inherit it.
NICENESS_OF_A_LATER_THREAD = """
import os, sys, threading
sys.stdin.readline()  # the parent has lowered the priority by now
seen = []
thread = threading.Thread(target=lambda: seen.append(os.getpriority(os.PRIO_PROCESS, 0)))
thread.start(); thread.join()
print(seen[0], flush=True)
"""


def test_a_training_runs_below_the_stacks_priority_threads_included() -> None:
    process = subprocess.Popen([sys.executable, "-c", NICENESS_OF_A_LATER_THREAD],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # fmt: skip
    processes.lower_priority(process)
    out, _ = process.communicate(b"go\n", timeout=30)

    assert int(out) == min(19, os.getpriority(os.PRIO_PROCESS, 0) + processes.TRAINING_NICENESS)


def test_without_setpriority_a_training_keeps_the_normal_priority(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(os, "setpriority")  # Windows
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    processes.lower_priority(process)  # nothing to do, and no error
    assert process.wait(timeout=30) == 0


@pytest.mark.parametrize("platform", ["darwin", "win32"])
def test_the_parent_death_signal_is_linux_only(monkeypatch: pytest.MonkeyPatch, platform: str) -> None:
    monkeypatch.setattr(sys, "platform", platform)

    assert processes.die_with_parent() is None  # Popen's preexec_fn: none (Windows refuses one)


def test_forcing_a_stop_kills_no_unknown_children_without_proc(monkeypatch: pytest.MonkeyPatch) -> None:
    from opencomposer.local import serve

    child = _started("import time; print('up', flush=True); time.sleep(60)")
    killed: list[int] = []
    try:
        with monkeypatch.context() as patch:
            patch.setattr(sys, "platform", "darwin")
            patch.setattr(os, "killpg", lambda pid, sig: killed.append(pid))
            patch.setattr(os, "kill", lambda pid, sig: killed.append(pid))
            patch.delattr(os, "getpgid")  # not reached: nothing reads /proc off Linux

            serve._kill_children()

        assert killed == []  # the stack's own list (kill_processes) is what a forced stop kills
        assert child.poll() is None
    finally:
        child.kill()
        child.wait()
        assert child.stdout is not None
        child.stdout.close()


def test_the_stack_imports_and_signals_without_sigkill_or_sighup() -> None:
    # In a fresh interpreter: the modules import once as here, then again as on Windows, which
    # has neither (the constants are read at import).
    script = textwrap.dedent(
        """
        import importlib, signal
        from opencomposer.local import processes, sagemaker_runner, serve, stack
        del signal.SIGKILL, signal.SIGHUP
        for module in (processes, sagemaker_runner, stack, serve):
            importlib.reload(module)
        assert processes.SIGKILL == signal.SIGTERM, processes.SIGKILL
        assert serve.SIGKILL == signal.SIGTERM
        assert serve.STOP_SIGNALS == (signal.SIGINT, signal.SIGTERM), serve.STOP_SIGNALS
        print("ok")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
