import multiprocessing

import psycopg
import pytest

from durable_graph.errors import SchemaVersionError
from durable_graph.migrations import Migration, amigrate, migrate

MIGRATIONS = [
    Migration(1, "CREATE TABLE mig_items (id serial PRIMARY KEY, name text)"),
    Migration(2, "ALTER TABLE mig_items ADD COLUMN size int; CREATE INDEX ON mig_items (size)"),
]


def _migrate_in_process(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn, "mig-test", MIGRATIONS)


def test_ten_processes_migrate_at_once(pg_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_migrate_in_process, args=(pg_url,)) for _ in range(10)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * 10
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute(
            "SELECT version FROM durable_graph_migrations WHERE component = 'mig-test' ORDER BY 1"
        ).fetchall()
        assert rows == [(1,), (2,)]
        conn.execute("INSERT INTO mig_items (name, size) VALUES ('a', 1)")


async def test_newer_schema_is_refused_and_data_kept(pg_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(pg_url, autocommit=True) as conn:
        await amigrate(conn, "mig-newer", [Migration(1, "CREATE TABLE mig_newer (x int)")])
        await conn.execute("INSERT INTO mig_newer VALUES (7)")
        await amigrate(
            conn, "mig-newer", [Migration(1, "CREATE TABLE mig_newer (x int)"), Migration(2, "SELECT 1")]
        )
        with pytest.raises(SchemaVersionError, match="schema version 2"):
            await amigrate(conn, "mig-newer", [Migration(1, "CREATE TABLE mig_newer (x int)")])
        cur = await conn.execute("SELECT x FROM mig_newer")
        assert await cur.fetchall() == [(7,)]
