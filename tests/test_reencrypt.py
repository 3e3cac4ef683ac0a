"""``durable-graph reencrypt`` on real Postgres and SQLite: threads written under an old key or none
end up under the newest key, a run killed halfway is finished by the next, nothing is lost."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from langchain_core.runnables import RunnableConfig
from typer.testing import CliRunner

from durable_graph.checkpointers import open_checkpointer
from durable_graph.cli import app
from durable_graph.encryption import KEY_ENV, OLD_KEYS_ENV, Keys
from durable_graph.reencrypt import reencrypt
from tests.test_encryption import NEW, OLD, note_graph, run_thread

ROOT = Path(__file__).resolve().parents[1]


def values_of(url: str, thread_ids: list[str], keys: Keys) -> dict[str, dict]:
    with open_checkpointer(url, keys=keys) as saver:
        graph = note_graph(1).compile(checkpointer=saver)
        found = {}
        for thread_id in thread_ids:
            config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
            found[thread_id] = dict(graph.get_state(config).values)
            found[thread_id]["history"] = len(list(graph.get_state_history(config)))
        return found


def test_old_key_and_plaintext_threads_end_under_the_newest_key(url: str) -> None:
    old_keys, rotated = Keys(OLD.encode()), Keys(NEW.encode(), [OLD.encode()])
    threads = [run_thread(url, old_keys), run_thread(url, None)]
    before = values_of(url, threads, rotated)

    done = reencrypt(url, threads, keys=rotated)
    assert done.threads == 2 and done.blobs > 0
    assert values_of(url, threads, Keys(NEW.encode())) == before  # the old key is no longer needed
    assert reencrypt(url, threads, keys=rotated).blobs == 0  # nothing left to do


def test_a_reencryption_killed_halfway_is_finished_by_the_next(url: str) -> None:
    threads = [run_thread(url, Keys(OLD.encode()), steps=2) for _ in range(12)]
    rotated = Keys(NEW.encode(), [OLD.encode()])
    before = values_of(url, threads, rotated)
    slow = textwrap.dedent(
        f"""
        import sys, time
        from durable_graph.reencrypt import reencrypt

        def done(thread_id, blobs):
            print(thread_id, flush=True)
            time.sleep(0.3)

        reencrypt({url!r}, {threads!r}, on_thread=done)
        """
    )
    env = {**os.environ, KEY_ENV: NEW, OLD_KEYS_ENV: OLD}
    proc = subprocess.Popen(
        [sys.executable, "-c", slow], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT
    )
    assert proc.stdout is not None
    finished = [proc.stdout.readline().strip() for _ in range(3)]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert finished == threads[:3]

    result = CliRunner().invoke(
        app, ["reencrypt", "--all", "--url", url], env={KEY_ENV: NEW, OLD_KEYS_ENV: OLD}
    )
    assert result.exit_code == 0, result.output
    assert values_of(url, threads, Keys(NEW.encode())) == before


def test_reencrypt_needs_a_key_and_a_choice_of_threads(url: str) -> None:
    runner = CliRunner()
    without_key = runner.invoke(app, ["reencrypt", "--all", "--url", url], env={KEY_ENV: ""})
    assert without_key.exit_code == 2 and KEY_ENV in without_key.output
    neither = runner.invoke(app, ["reencrypt", "--url", url], env={KEY_ENV: NEW})
    assert neither.exit_code == 2 and "--all" in neither.output
