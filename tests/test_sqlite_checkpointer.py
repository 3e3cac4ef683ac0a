"""The SQLite checkpointer beyond the conformance suite: real graphs, real files, real processes."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from langgraph.checkpoint.conformance.test_utils import (
    generate_checkpoint,
    generate_config,
    generate_metadata,
)
from langgraph.checkpoint.sqlite import SqliteSaver

from durable_graph.checkpointers import open_checkpointer
from durable_graph.checkpointers.memory import MemoryCheckpointer
from durable_graph.checkpointers.sqlite import SqliteCheckpointer
from durable_graph.errors import (
    BackendUnavailableError,
    CorruptCheckpointError,
    SchemaVersionError,
    ThreadNotFoundError,
)
from tests.checkpoint_graphs import appending_graph, delta_graph, thread

REPO = Path(__file__).resolve().parent.parent


def rows(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql, params).fetchall()


def count(path: Path, table: str, thread_id: str | None = None) -> int:
    where = "" if thread_id is None else " WHERE thread_id = ?"
    return int(
        rows(path, f"SELECT count(*) FROM {table}{where}", () if thread_id is None else (thread_id,))[0][0]
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "checkpoints.db"


# -- graphs, sync and async, resumed by a new saver -----------------------------------------------


def test_graph_state_survives_reopening_the_file(db: Path) -> None:
    with open_checkpointer(f"sqlite:///{db}") as saver:
        appending_graph(saver, nodes=3).invoke({"count": 0}, thread("t1"))
    with open_checkpointer(f"sqlite:///{db}") as saver:
        graph = appending_graph(saver, nodes=3)
        assert graph.get_state(thread("t1")).values == {"items": ["x-0-1", "x-1-2", "x-2-3"], "count": 3}
        graph.invoke({"count": 10}, thread("t1"))
        assert graph.get_state(thread("t1")).values["items"][3:] == ["x-0-11", "x-1-12", "x-2-13"]
        assert len(list(saver.list(thread("t1")))) == 10
    assert rows(db, "PRAGMA journal_mode")[0][0] == "wal"


async def test_async_invoke_and_sync_read_share_the_file(db: Path) -> None:
    async with open_checkpointer(f"sqlite:///{db}") as saver:
        graph = appending_graph(saver, nodes=2)
        await graph.ainvoke({"count": 0}, thread("a1"))
        assert (await graph.aget_state(thread("a1"))).values["items"] == ["x-0-1", "x-1-2"]
        listed = [t async for t in saver.alist(None, limit=2)]
        assert len(listed) == 2
    with open_checkpointer(f"sqlite:///{db}") as saver:
        assert appending_graph(saver, nodes=2).get_state(thread("a1")).values["count"] == 2


def test_forks_do_not_share_channel_versions(db: Path) -> None:
    """Both branches reach the same version counter; each must keep its own value."""
    with open_checkpointer(f"sqlite:///{db}") as saver:
        graph = appending_graph(saver, nodes=3)
        graph.invoke({"count": 0}, thread("f"))
        history = list(graph.get_state_history(thread("f")))
        after_first = next(s for s in history if s.values.get("items") == ["x-0-1"])
        fork = graph.update_state(after_first.config, {"items": ["forked"]})
        graph.invoke(None, fork)
        assert graph.get_state(fork).values["items"][:2] == ["x-0-1", "forked"]
        original_head = history[0]
        assert graph.get_state(original_head.config).values["items"] == ["x-0-1", "x-1-2", "x-2-3"]


def test_metadata_filters_match_the_memory_backend(db: Path) -> None:
    """The SQL metadata filter gives the same answers as plain dict comparison."""
    memory = MemoryCheckpointer()
    filters: list[dict[str, Any]] = [
        {"source": "loop"},
        {"step": 1},
        {"flag": True},
        {"flag": False},
        {"step": 3, "source": "loop"},
        {"missing": None},
        {"nested": {"a": [1, 2]}},
        {"name": "1"},
        {"name": 1},
    ]
    with open_checkpointer(f"sqlite:///{db}") as saver:
        for backend in (saver, memory):
            for k in range(4):
                meta = generate_metadata(
                    source="loop" if k % 2 else "input",
                    step=k,
                    flag=k % 2 == 0,
                    name=str(k),
                    nested={"a": [1, k]},
                )
                backend.put(generate_config("m"), generate_checkpoint(), meta, {})
        for f in filters:
            ours = [t.checkpoint["id"] for t in saver.list(generate_config("m"), filter=f)]
            theirs = [t.checkpoint["id"] for t in memory.list(generate_config("m"), filter=f)]
            assert len(ours) == len(theirs), f
            assert ours or f == {"name": 1}, f
        with pytest.raises(ValueError, match="quotes"):
            list(saver.list(None, filter={'bad"key': 1}))


# -- storage: chunks are deduplicated and growth is linear ----------------------------------------


def test_list_items_are_stored_once_per_thread(db: Path) -> None:
    with open_checkpointer(f"sqlite:///{db}") as saver:
        graph = appending_graph(saver, nodes=4, item="payload" * 50)
        for _ in range(5):
            graph.invoke({"count": 0}, thread("dedup"))
        items = graph.get_state(thread("dedup")).values["items"]
    # 5 runs of 4 nodes append 20 items, but each run restarts count at 0: only 4 distinct items.
    assert len(items) == 20 and len(set(items)) == 4
    assert count(db, "dg_checkpoint_chunks", "dedup") == 4
    # A version of the list holds only its references, never the items themselves.
    (inline,) = rows(db, "SELECT count(*) FROM dg_checkpoint_blobs WHERE instr(data, ?) > 0", (b"payload",))[
        0
    ]
    assert inline == 0


def _our_bytes(path: Path) -> int:
    return sum(
        int(r[0] or 0)
        for r in rows(
            path,
            """SELECT sum(length(checkpoint) + length(metadata) + length(channel_versions))
            FROM dg_checkpoints
            UNION ALL SELECT sum(coalesce(length(data), 0) + coalesce(length(refs), 0))
            FROM dg_checkpoint_blobs
            UNION ALL SELECT sum(length(data)) FROM dg_checkpoint_chunks
            UNION ALL SELECT sum(length(data)) FROM dg_checkpoint_writes""",
        )
    )


def _their_bytes(path: Path) -> int:
    return sum(
        int(r[0] or 0)
        for r in rows(
            path,
            """SELECT sum(length(checkpoint) + length(metadata)) FROM checkpoints
            UNION ALL SELECT sum(length(value)) FROM writes""",
        )
    )


def test_storage_grows_linearly_with_an_appending_list(tmp_path: Path) -> None:
    """Each turn appends a 1 KB item: we store it once, SqliteSaver stores the whole list again."""
    ours, theirs = tmp_path / "ours.db", tmp_path / "theirs.db"
    turns = 60
    sizes: dict[str, list[int]] = {"ours": [], "theirs": []}
    with (
        open_checkpointer(f"sqlite:///{ours}") as saver,
        sqlite3.connect(theirs, check_same_thread=False) as conn,
    ):
        reference = SqliteSaver(conn)
        for name, backend, measure, path in (
            ("ours", saver, _our_bytes, ours),
            ("theirs", reference, _their_bytes, theirs),
        ):
            graph = appending_graph(backend, nodes=1, item="z" * 1000)
            for turn in range(turns):
                graph.invoke({"count": turn}, thread("grow"))
                if turn in (0, turns // 2, turns - 1):
                    sizes[name].append(measure(path))
    for name, (first, middle, last) in sizes.items():
        print(
            f"{name}: {first} -> {middle} -> {last} bytes; second half / first half growth:",
            round((last - middle) / (middle - first), 2),
        )
    first, middle, last = sizes["ours"]
    assert (last - middle) / (middle - first) < 1.5, sizes
    t_first, t_middle, t_last = sizes["theirs"]
    assert (t_last - t_middle) / (t_middle - t_first) > 2.0, sizes  # the measure tells the two apart
    assert last * 5 < t_last, sizes


# -- maintenance removes what nothing uses any more -----------------------------------------------


def test_delete_for_runs_removes_the_run_and_its_unused_items(db: Path) -> None:
    with open_checkpointer(f"sqlite:///{db}") as saver:
        graph = appending_graph(saver, nodes=2)
        graph.invoke({"count": 0}, thread("r", metadata={"run_id": "run-a"}))
        graph.invoke({"count": 5}, thread("r", metadata={"run_id": "run-b"}))
        assert count(db, "dg_checkpoint_chunks", "r") == 4
        saver.delete_for_runs(["run-b"])
        state = graph.get_state(thread("r"))
        assert state.values["items"] == ["x-0-1", "x-1-2"]
        assert count(db, "dg_checkpoint_chunks", "r") == 2
        assert {t.metadata.get("run_id") for t in saver.list(thread("r"))} == {"run-a"}
        # every stored value is used by a remaining checkpoint
        unused = rows(
            db,
            """SELECT count(*) FROM dg_checkpoint_blobs v WHERE NOT EXISTS (
                SELECT 1 FROM dg_checkpoints c, json_each(c.channel_versions) j
                WHERE c.thread_id = v.thread_id AND j.key = v.channel AND j.value = v.version)""",
        )[0][0]
        assert unused == 0


def test_prune_keep_latest_keeps_a_loadable_head(db: Path) -> None:
    with open_checkpointer(f"sqlite:///{db}") as saver:
        graph = appending_graph(saver, nodes=3)
        graph.invoke({"count": 0}, thread("p"))
        before = graph.get_state(thread("p")).values
        values_before = count(db, "dg_checkpoint_blobs", "p")
        saver.prune(["p"])
        (head,) = list(saver.list(thread("p")))
        assert head.parent_config is None
        assert graph.get_state(thread("p")).values == before
        assert count(db, "dg_checkpoint_blobs", "p") < values_before
        graph.invoke({"count": 3}, thread("p"))
        assert graph.get_state(thread("p")).values["count"] == 6
        saver.prune(["p"], strategy="delete")
        assert all(
            count(db, t, "p") == 0 for t in ("dg_checkpoints", "dg_checkpoint_blobs", "dg_checkpoint_chunks")
        )
        with pytest.raises(ValueError, match="unknown prune strategy"):
            saver.prune(["p"], strategy="newest")
        with pytest.raises(TypeError, match="not the string"):
            saver.prune("p")


def test_prune_refuses_delta_channel_threads_and_deletes_nothing(db: Path) -> None:
    with open_checkpointer(f"sqlite:///{db}") as saver:
        graph = delta_graph(saver)
        for _ in range(5):
            graph.invoke({}, thread("d"))
        assert graph.get_state(thread("d")).values["log"] == [f"entry-{i}" for i in range(5)]
        checkpoints = count(db, "dg_checkpoints", "d")
        with pytest.raises(NotImplementedError, match="DeltaChannel: d"):
            saver.prune(["d"])
        assert count(db, "dg_checkpoints", "d") == checkpoints
    with open_checkpointer(f"sqlite:///{db}") as saver:
        assert delta_graph(saver).get_state(thread("d")).values["log"][-1] == "entry-4"


def test_copy_thread_is_independent_of_its_source(db: Path) -> None:
    with open_checkpointer(f"sqlite:///{db}") as saver:
        graph = appending_graph(saver, nodes=2)
        graph.invoke({"count": 0}, thread("src"))
        graph.invoke({"count": 0}, thread("busy"))
        saver.copy_thread("src", "dst")
        saver.delete_thread("src")
        assert graph.get_state(thread("dst")).values["items"] == ["x-0-1", "x-1-2"]
        with pytest.raises(ThreadNotFoundError, match="'src'"):
            saver.copy_thread("src", "other")
        with pytest.raises(ValueError, match="already has checkpoints"):
            saver.copy_thread("dst", "busy")
        assert graph.get_state(thread("busy")).values["items"] == ["x-0-1", "x-1-2"]


# -- damage and bad input -------------------------------------------------------------------------


def test_corrupt_blobs_raise_an_error_naming_thread_and_checkpoint(db: Path) -> None:
    with open_checkpointer(f"sqlite:///{db}") as saver:
        graph = appending_graph(saver, nodes=2)
        graph.invoke({"count": 0}, thread("bad"))
        graph.invoke({"count": 0}, thread("good"))
        head = saver.get_tuple(thread("bad"))
        assert head is not None
        head_id = head.checkpoint["id"]
        with sqlite3.connect(db) as conn:
            conn.execute(
                "UPDATE dg_checkpoint_chunks SET type = 'msgpack', data = x'c1' WHERE thread_id = 'bad'"
            )
        with pytest.raises(CorruptCheckpointError, match=f"thread 'bad', checkpoint '{head_id}'") as err:
            saver.get_tuple(thread("bad"))
        assert err.value.thread_id == "bad" and err.value.checkpoint_id == head_id
        with sqlite3.connect(db) as conn:
            conn.execute(
                "UPDATE dg_checkpoint_blobs SET refs = x'0102' WHERE thread_id = 'bad' AND type = 'chunks'"
            )
        with pytest.raises(CorruptCheckpointError, match="list references of 2 bytes"):
            saver.get_tuple(thread("bad"))
        with sqlite3.connect(db) as conn:
            conn.execute("UPDATE dg_checkpoints SET checkpoint = x'c1' WHERE thread_id = 'bad'")
        with pytest.raises(CorruptCheckpointError, match="thread 'bad'"):
            list(saver.list(thread("bad")))
        assert graph.get_state(thread("good")).values["count"] == 2


def test_missing_list_item_is_reported(db: Path) -> None:
    with open_checkpointer(f"sqlite:///{db}") as saver:
        appending_graph(saver, nodes=2).invoke({"count": 0}, thread("gap"))
        with sqlite3.connect(db) as conn:
            conn.execute(
                "DELETE FROM dg_checkpoint_chunks "
                "WHERE hash = (SELECT hash FROM dg_checkpoint_chunks LIMIT 1)"
            )
        with pytest.raises(CorruptCheckpointError, match="list item [0-9a-f]+ is missing"):
            saver.get_tuple(thread("gap"))


def test_newer_schema_is_refused_and_the_file_left_alone(db: Path) -> None:
    with open_checkpointer(f"sqlite:///{db}") as saver:
        appending_graph(saver, nodes=1).invoke({"count": 0}, thread("v"))
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA user_version = 99")
    digest = hashlib.sha256(db.read_bytes()).hexdigest()
    with pytest.raises(SchemaVersionError, match="schema version 99.*knows versions up to 1"):
        open_checkpointer(f"sqlite:///{db}").__enter__()
    assert hashlib.sha256(db.read_bytes()).hexdigest() == digest
    assert count(db, "dg_checkpoints", "v") > 0


def test_bad_paths_give_clear_errors(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir" / "x.db"
    with pytest.raises(BackendUnavailableError, match="does not exist"):
        open_checkpointer(f"sqlite:///{missing}").__enter__()
    assert not missing.parent.exists()
    with pytest.raises(BackendUnavailableError, match="is a directory"):
        SqliteCheckpointer(str(tmp_path)).open()
    not_a_db = tmp_path / "notes.txt"
    not_a_db.write_bytes(b"these are my notes, not a database\n" * 200)
    with pytest.raises(BackendUnavailableError, match="notes.txt.*not a database"):
        SqliteCheckpointer(str(not_a_db)).open()
    assert not_a_db.read_bytes() == b"these are my notes, not a database\n" * 200
    closed = SqliteCheckpointer(str(tmp_path / "closed.db"))
    with pytest.raises(RuntimeError, match="is not open"):
        closed.get_tuple(thread("x"))
    with closed as saver:
        assert saver.get_tuple(thread("x")) is None
    with pytest.raises(RuntimeError, match="is not open"):
        closed.put_writes({"configurable": {"thread_id": "x", "checkpoint_id": "c"}}, [("ch", 1)], "task")
    with open_checkpointer("sqlite:///:memory:") as saver, pytest.raises(ValueError, match="names no thread"):
        saver.get_tuple({"configurable": {}})


# -- several processes on one file ----------------------------------------------------------------

_WORKER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from durable_graph.checkpointers import open_checkpointer
    from tests.checkpoint_graphs import appending_graph, thread

    db, name, go = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    with open_checkpointer("sqlite:///" + db) as saver:
        graph = appending_graph(saver, nodes=3, item=name)
        while not go.exists():
            time.sleep(0.01)
        for k in range(15):
            graph.invoke({"count": 0}, thread(f"{name}-{k}"))
            graph.invoke({"count": 100}, thread("shared-" + name))
    print("done", name)
    """
)


def test_two_processes_write_one_file_at_once(db: Path, tmp_path: Path) -> None:
    go = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(db), name, str(go)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("alpha", "beta")
    ]
    go.touch()
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert out.startswith("done")
    with open_checkpointer(f"sqlite:///{db}") as saver:
        for name in ("alpha", "beta"):
            graph = appending_graph(saver, nodes=3, item=name)
            for k in range(15):
                assert graph.get_state(thread(f"{name}-{k}")).values["items"] == [
                    f"{name}-0-1",
                    f"{name}-1-2",
                    f"{name}-2-3",
                ]
            assert len(graph.get_state(thread("shared-" + name)).values["items"]) == 45
        # and a thread written by one process is resumed by this one
        graph = appending_graph(saver, nodes=3, item="alpha")
        graph.invoke({"count": 0}, thread("alpha-0"))
        assert len(graph.get_state(thread("alpha-0")).values["items"]) == 6
