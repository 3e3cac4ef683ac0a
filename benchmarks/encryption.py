"""Encryption at rest: storage and per-node overhead with and without it, ours against PostgresSaver.

    .venv/bin/python benchmarks/encryption.py [--url postgresql://...] [--steps 150] [--rounds 3]
        [--varied-text]

Four savers on one Postgres server, each on a database of its own (``--url``, an admin URL that may
create databases; else an embedded server in a temporary dir): ours without and with keys
(``Keys``, AES-GCM), and LangGraph's ``PostgresSaver`` without and with its ``EncryptedSerializer``
(``from_pycryptodome_aes``, the same key). Each round runs a fresh agent-like thread of ``--steps``
steps (an AI message with a tool call and a ~1 KB tool message per step, ``add_messages``; the
tool message of words with ``--varied-text``, else one character repeated) through
every saver in turn with ``durability="sync"``, and once without a checkpointer for the baseline.
Overhead per node = time per node with the saver - time per node without; median over the rounds.
Storage = the bytes of the savers' tables (``pg_total_relation_size``) after the rounds.
A yardstick runs beside them: ``CommitOnlySaver`` (``floor_saver.py``), which stores nothing and
commits one row per checkpoint, the least any saver that makes each checkpoint durable costs here.
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import ExitStack
from typing import Any

import psycopg
from floor_saver import CommitOnlySaver
from langgraph.checkpoint.postgres import PostgresSaver
from langgraph.checkpoint.serde.encrypted import EncryptedSerializer
from postgres_databases import databases, start_embedded
from reads import loop_graph, write_thread
from rich.console import Console
from rich.table import Table

from durable_graph.checkpointers import open_checkpointer
from durable_graph.encryption import Keys

KEY = b"0123456789abcdef0123456789abcdef"
SAVERS = ("ours", "ours, encrypted", "PostgresSaver", "PostgresSaver, encrypted")
FLOOR = "yardstick: commit only"


def table_bytes(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class AS c "
            "JOIN pg_namespace AS n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'public' AND c.relkind = 'r'"
        ).fetchone()
    return int(row[0] or 0) if row else 0


def per_node_ms(graph: Any, steps: int) -> float:
    start = time.perf_counter()
    write_thread(graph, steps)
    return (time.perf_counter() - start) * 1000 / steps


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", help="Postgres admin URL (default: an embedded server in a temp dir)")
    parser.add_argument("--steps", type=int, default=150, help="steps per thread (default 150)")
    parser.add_argument("--rounds", type=int, default=3, help="threads per saver (default 3)")
    parser.add_argument(
        "--varied-text", action="store_true", help="tool messages of words rather than one character repeated"
    )
    args = parser.parse_args()
    console = Console()

    admin = args.url or start_embedded()
    labels = ["ours", "ours_enc", "theirs", "theirs_enc"]
    with ExitStack() as stack:
        urls = stack.enter_context(databases(admin, [*labels, "floor"]))
        savers: dict[str, Any] = {
            "ours": stack.enter_context(open_checkpointer(urls["ours"], keys=None)),
            "ours, encrypted": stack.enter_context(open_checkpointer(urls["ours_enc"], keys=Keys(KEY))),
        }
        for name, label, serde in (
            ("PostgresSaver", "theirs", None),
            ("PostgresSaver, encrypted", "theirs_enc", EncryptedSerializer.from_pycryptodome_aes(key=KEY)),
        ):
            saver = stack.enter_context(PostgresSaver.from_conn_string(urls[label]))
            if serde is not None:
                saver.serde = serde
            saver.setup()
            savers[name] = saver
        savers[FLOOR] = CommitOnlySaver(urls["floor"])
        stack.callback(savers[FLOOR].close)
        graph = loop_graph(agent_like=True, varied_text=args.varied_text)
        graphs = {name: graph.compile(checkpointer=s) for name, s in savers.items()}
        bare = graph.compile()

        overhead: dict[str, list[float]] = {name: [] for name in savers}
        with console.status("running threads") as status:
            for round_ in range(args.rounds):
                for name in savers:
                    status.update(f"round {round_ + 1}/{args.rounds}: {name}")
                    baseline = per_node_ms(bare, args.steps)
                    overhead[name].append(per_node_ms(graphs[name], args.steps) - baseline)
        size = {name: table_bytes(urls[label]) for name, label in zip(SAVERS, labels, strict=True)}

    table = Table(title=f"{args.rounds} threads of {args.steps} steps per saver")
    for column in ("saver", "overhead per node (ms)", "table bytes", "bytes vs unencrypted"):
        table.add_column(column, justify="left" if column == "saver" else "right")
    for name in SAVERS:
        plain = name.removesuffix(", encrypted")
        ms = statistics.median(overhead[name])
        table.add_row(name, f"{ms:.2f}", f"{size[name]:,}", f"{size[name] / size[plain]:.2f}")
    console.print(table)
    plain_ours, plain_theirs, floor = (
        statistics.median(overhead[n]) for n in ("ours", "PostgresSaver", FLOOR)
    )
    console.print(
        f"overhead, ours / PostgresSaver's: {plain_ours / plain_theirs:.2f} "
        f"(the commit-only yardstick: {floor:.2f} ms, {floor / plain_theirs:.2f})"
    )
    ours, theirs = (statistics.median(overhead[n]) for n in ("ours, encrypted", "PostgresSaver, encrypted"))
    console.print(f"overhead with encryption, ours / PostgresSaver's: {ours / theirs:.2f}")
    ratio = size["ours, encrypted"] / size["ours"]
    console.print(f"storage with encryption / ours without: {ratio:.2f} (target <= 1.2)")
    theirs_size = size["PostgresSaver, encrypted"] / size["ours, encrypted"]
    console.print(f"PostgresSaver encrypted / ours encrypted, bytes: {theirs_size:.1f}")


if __name__ == "__main__":
    main()
