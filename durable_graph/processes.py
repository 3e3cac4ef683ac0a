"""How long-running processes stop: SIGTERM like Ctrl-C, and children that never outlive their parent.

Every long-running entry point (``durable-graph worker``, ``dev-server``, ``serve``, an Agent Server
process) calls ``stop_on_signals()`` once at start-up. SIGTERM (what systemd, Docker, Kubernetes and
supervisors send) and SIGHUP (a closed terminal) then do what Ctrl-C does: the code's
``KeyboardInterrupt`` handling runs, or, inside ``asyncio.run``, the main task is cancelled. Either way
``finally`` blocks and exit handlers run, so work in progress is finished or handed back, children are
stopped and the embedded Postgres is stopped by its last user (``durable_graph.embedded``), none of
which happens when a process dies of an unhandled signal.

An asyncio program that serves until told to stop awaits ``until_stopped()`` instead: it returns on
the first of SIGINT, SIGTERM or SIGHUP, so the program leaves its ``async with`` blocks in order, and
it works where a ``KeyboardInterrupt`` raised in the middle of the event loop would be swallowed, or
where SIGINT is ignored (a job started in the background by a shell).

``start_child`` starts a subprocess that the kernel stops (SIGTERM) when its parent dies for any
reason, SIGKILL included (Linux ``PR_SET_PDEATHSIG``; elsewhere only the parent's own clean stop
stops it); ``stop_child`` stops one politely, then firmly.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

STOP_SIGNALS: tuple[signal.Signals, ...] = (signal.SIGTERM, signal.SIGHUP)
"""The signals handled like Ctrl-C."""

_PR_SET_PDEATHSIG = 1


def _like_ctrl_c(signum: int, frame: FrameType | None) -> None:
    # Whatever handles Ctrl-C right now handles this signal too: Python's default raises
    # KeyboardInterrupt; asyncio.run's cancels the main task (and raises on a second signal).
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:
        raise KeyboardInterrupt


def stop_on_signals(signals: Sequence[signal.Signals] = STOP_SIGNALS) -> None:
    """Handle ``signals`` (default SIGTERM and SIGHUP) exactly like Ctrl-C, in this process.

    Call it from the main thread (signal handlers can only be set there); elsewhere it does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in signals:
        signal.signal(signum, _like_ctrl_c)


async def until_stopped(signals: Sequence[signal.Signals] = (signal.SIGINT, *STOP_SIGNALS)) -> int:
    """Wait in the running event loop (in the main thread) until one of ``signals`` arrives; returns
    its number. The handlers are removed again, so a second signal acts as before."""
    loop = asyncio.get_running_loop()
    received: asyncio.Future[int] = loop.create_future()
    previous = {signum: signal.getsignal(signum) for signum in signals}

    def stop(signum: int) -> None:
        if not received.done():
            received.set_result(signum)

    for signum in signals:
        loop.add_signal_handler(signum, stop, signum)
    try:
        return await received
    finally:
        for signum, handler in previous.items():
            loop.remove_signal_handler(signum)
            signal.signal(signum, handler)


def _die_with_parent(parent: int) -> Callable[[], None]:
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork: the child only calls it

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the line above took effect
            os._exit(1)

    return preexec


def start_child(command: Sequence[str], **popen_kwargs: Any) -> subprocess.Popen[Any]:
    """``subprocess.Popen(command, **popen_kwargs)`` for a child that must not outlive this process.

    On Linux the kernel sends the child SIGTERM when this process dies, however it dies. The death
    signal fires when the *thread* that started the child ends, so start children from a thread that
    lives as long as they should (the main thread, typically).
    """
    if sys.platform.startswith("linux"):
        popen_kwargs.setdefault("preexec_fn", _die_with_parent(os.getpid()))
    return subprocess.Popen(list(command), **popen_kwargs)


def stop_child(process: subprocess.Popen[Any], timeout: float = 10.0) -> int:
    """Stop ``process`` with SIGTERM, then SIGKILL if it is still running after ``timeout`` seconds;
    returns its exit code. A second Ctrl-C (or SIGTERM) while waiting kills it at once."""
    if process.poll() is not None:
        return process.returncode
    process.terminate()
    try:
        return process.wait(timeout)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        process.kill()
        return process.wait()
