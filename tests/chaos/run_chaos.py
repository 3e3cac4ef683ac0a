"""Bounded chaos: run many agent threads in subprocesses, SIGKILL them at random moments (and, with
``--restart-postgres`` or ``--restart-every``, crash-restart the Postgres server while they run),
resume every thread, and check:

- every thread finishes, with the final state of an undisturbed run of the same task;
- no durable tool ran twice, except in the documented window between a tool's claim and the
  recording of its result (its runner was killed or lost its lease meanwhile; such re-runs are
  counted in the tool log's ``attempts``, and reported);
- no checkpoint is missing or corrupt: every checkpoint decodes and every parent is there;
- no thread was advanced by two runners at once (checkpoints of a runner after those of one that
  took the thread's lease later), forked (a checkpoint with two children) or went backwards (its latest
  checkpoint is not its furthest step).

    python -m tests.chaos.run_chaos --seed 1 --threads 40 --kills 100 --restart-postgres
    python -m tests.chaos.run_chaos --seed 2 --threads 400 --kills 1000 --restart-every 10

Without ``--url`` it starts an embedded Postgres of its own in the work dir (needed to restart it).
The agent is ``build_agent`` with the offline ``ScriptedModel`` and the demo tools made durable; the
model and the tools sleep a little so that kills land inside runs, not only at process start.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.runnables import RunnableConfig, ensure_config
from langchain_core.tools import BaseTool
from pydantic import ConfigDict

ROOT = Path(__file__).resolve().parents[2]
ORDER_KEY = "chaos_runner"
LEASE_LOST = 8  # the CLI's exit code for it
CONTENDER_START = 2.5  # seconds a second runner takes to start and ask for the lease
WORDS = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa"]
TASKS = [
    "compute {a} * ({b} + {c})",
    "find {w} in the files",
    "read notes.txt",
    "list files",
    "compute {a} + {b} and write a report",
    "find {w} in the files and write a report",
]


# -- what a thread does -----------------------------------------------------------------------------


def task_for(seed: int, index: int) -> str:
    rng = random.Random(f"{seed}:task:{index}")
    template = rng.choice(TASKS)
    return template.format(
        a=rng.randint(2, 99), b=rng.randint(2, 99), c=rng.randint(2, 99), w=rng.choice(WORDS)
    )


def seed_workdir(seed: int, index: int, workdir: Path) -> None:
    rng = random.Random(f"{seed}:files:{index}")
    workdir.mkdir(parents=True, exist_ok=True)
    for name in ("notes.txt", "more.md"):
        lines = [" ".join(rng.choice(WORDS) for _ in range(4)) for _ in range(3)]
        (workdir / name).write_text("\n".join(lines) + "\n")


class CountedTool(BaseTool):
    """A tool that appends one line per real run to a file, so runs can be counted afterwards."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    inner: BaseTool
    effects: Path
    jitter: float = 0.0

    def _run(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("use invoke()")

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        from durable_graph.durable_tools import call_key

        config = ensure_config(config)
        key = call_key(config, self.name, input)
        time.sleep(random.uniform(0, self.jitter))
        output = self.inner.invoke(input, config, **kwargs)
        with open(self.effects, "a") as f:
            f.write(json.dumps({"key": asdict(key) if key else None, "pid": os.getpid()}) + "\n")
        time.sleep(random.uniform(0, self.jitter / 5))  # the window before the result is recorded
        return output


class PausedTool(BaseTool):
    """Logs each call, runs the (durable) tool, then pauses: a kill in the pause hits a node whose
    tool already ran and was recorded, so the re-run must get the recorded result."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    inner: BaseTool
    calls: Path
    jitter: float = 0.0

    def _run(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("use invoke()")

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        from durable_graph.durable_tools import call_key

        config = ensure_config(config)
        output = self.inner.invoke(input, config, **kwargs)
        key = call_key(config, self.name, input)
        with open(self.calls, "a") as f:
            f.write(json.dumps({"key": asdict(key) if key else None, "pid": os.getpid()}) + "\n")
        time.sleep(random.uniform(0, self.jitter))
        return output


def build(workdir: Path, effects: Path, jitter: float, *, plain_tools: bool = False) -> Any:
    """The agent: ScriptedModel (slowed down by ``jitter``) and durable, counted demo tools
    (``plain_tools``: not durable, to show that the checks catch a tool that runs twice)."""
    from durable_graph.durable_tools import durable
    from durable_graph.graphs import ScriptedModel, build_agent, demo_tools
    from durable_graph.graphs.approval import needs_approval, requires_approval

    class SlowModel(ScriptedModel):
        def _generate(self, *args: Any, **kwargs: Any) -> Any:
            time.sleep(random.uniform(0, jitter))
            return super()._generate(*args, **kwargs)

    tools = []
    for tool in demo_tools(workdir):
        counted: BaseTool = CountedTool(
            name=tool.name,
            description=tool.description,
            args_schema=tool.args_schema,
            inner=tool,
            effects=effects,
            jitter=jitter,
        )
        paused: BaseTool = PausedTool(
            name=tool.name,
            description=tool.description,
            args_schema=tool.args_schema,
            inner=counted if plain_tools else durable(counted),
            calls=effects.with_name("calls.log"),
            jitter=jitter,
        )
        if needs_approval(tool):
            requires_approval(paused)
        tools.append(paused)
    return build_agent(SlowModel(), tools)


def drive(graph: Any, config: Any, task: str, progress: Any = None) -> dict[str, Any]:
    """Start, resume or approve the thread until it ends; returns its final values."""
    from durable_graph.graphs import agent_input, approve

    while True:
        state = graph.get_state(config)
        if not state.created_at:
            inputs: Any = agent_input(task)
        elif state.interrupts:
            inputs = approve()
        elif state.tasks:
            # Not ``state.next``: it leaves out tasks that finished, and a run killed after its last
            # task's writes were stored, before the step's checkpoint, has only such tasks left.
            inputs = None
        else:
            return dict(state.values)
        for update in graph.stream(inputs, config, stream_mode="updates", durability="sync"):
            if progress:
                progress(",".join(update))


# -- the worker process -----------------------------------------------------------------------------


def worker(args: argparse.Namespace) -> None:
    from durable_graph.checkpointers import open_checkpointer
    from durable_graph.leases import thread_lease

    def say(line: str) -> None:
        print(line, flush=True)

    from durable_graph.errors import LeaseLostError

    workdir = Path(args.workdir)
    try:
        with (
            thread_lease(args.url, args.thread, wait=True, timeout=60) as lease,
            open_checkpointer(args.url) as saver,
        ):
            say("leased")
            # LangGraph copies the config's metadata into every checkpoint: each names the runner that
            # wrote it, in the order runners took the thread (its lease epoch; on SQLite, which has
            # one runner per thread at a time here, the launch number).
            order = lease.epoch if lease.epoch is not None else args.launch
            config = {"configurable": {"thread_id": args.thread}, "metadata": {ORDER_KEY: order}}
            effects = workdir / "effects.jsonl"
            graph = build(workdir / "files", effects, args.jitter, plain_tools=args.plain_tools)
            drive(graph.compile(checkpointer=saver), config, args.task, say)
    except LeaseLostError:
        say("lease lost")
        sys.exit(LEASE_LOST)
    say("done")


# -- the orchestrator -------------------------------------------------------------------------------


@dataclass
class Report:
    threads: int = 0
    kills_requested: int = 0
    kills: int = 0
    postgres_restarts: int = 0
    worker_launches: int = 0
    worker_errors: int = 0
    contenders: int = 0
    leases_lost: int = 0
    tool_calls: int = 0
    tool_runs: int = 0
    tool_results_replayed: int = 0
    tool_reruns_in_doubt_window: int = 0
    tool_reruns_unexplained: int = 0
    unfinished_threads: list[str] = field(default_factory=list)
    state_mismatches: list[str] = field(default_factory=list)
    checkpoint_problems: list[str] = field(default_factory=list)
    two_runner_threads: list[str] = field(default_factory=list)
    forked_threads: list[str] = field(default_factory=list)
    threads_gone_backwards: list[str] = field(default_factory=list)
    checkpoints_checked: int = 0
    seconds: float = 0.0

    @property
    def losses(self) -> int:
        return (
            len(self.unfinished_threads)
            + len(self.state_mismatches)
            + len(self.checkpoint_problems)
            + len(self.two_runner_threads)
            + len(self.forked_threads)
            + len(self.threads_gone_backwards)
            + self.tool_reruns_unexplained
        )


Trigger = Callable[[list[str]], bool]


def kill_trigger(rng: random.Random) -> Trigger:
    """When to start the countdown to a kill, from the lines a worker printed so far."""
    if rng.random() < 0.5:
        lines = rng.randint(0, 3)  # "leased", then one line per finished node
        return lambda seen: len(seen) > lines
    # the node after the first plan runs: often the tool node (a resumed run may have no plan left)
    return lambda seen: "plan" in seen or len(seen) > 2


class Running:
    """One worker process and what the orchestrator plans for it."""

    def __init__(self, proc: subprocess.Popen[str], kill_when: Trigger | None, kill_delay: float) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self.kill_when = kill_when
        self.kill_delay = kill_delay
        self.kill_at: float | None = None
        self.killed = False
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.strip())


def normalize_state(values: dict[str, Any]) -> Any:
    """A thread's final values without what differs between runs of the same task (message ids)."""
    out = dict(values)
    out["messages"] = [
        (m.type, m.content, [(c["name"], c["args"], c["id"]) for c in getattr(m, "tool_calls", [])])
        for m in values.get("messages", [])
    ]
    return out


def run(args: argparse.Namespace) -> Report:
    started = time.monotonic()
    rng = random.Random(args.seed)
    report = Report(threads=args.threads, kills_requested=args.kills)
    base = Path(args.workdir or tempfile.mkdtemp(prefix="dg-chaos-"))
    base.mkdir(parents=True, exist_ok=True)
    server = None
    url = args.url
    if url is None:
        from tests.chaos.pgserver import OwnPostgres

        server = OwnPostgres(base / "pg")
        url = server.url
    elif args.restart_postgres or args.restart_every:
        raise SystemExit("restarting Postgres needs the chaos run's own server: leave out --url")
    names = [f"chaos-{args.seed}-{i}" for i in range(args.threads)]
    tasks = {name: task_for(args.seed, i) for i, name in enumerate(names)}
    for i, name in enumerate(names):
        shutil.rmtree(base / name, ignore_errors=True)
        seed_workdir(args.seed, i, base / name / "files")
    try:
        refuse_existing_threads(url, names)
        drive_workers(args, rng, url, base, names, tasks, server, report)
        verify(args, url, base, names, tasks, report)
    finally:
        if server is not None:
            server.close()
    report.seconds = round(time.monotonic() - started, 1)
    return report


def refuse_existing_threads(url: str, names: list[str]) -> None:
    from durable_graph.checkpointers import open_checkpointer

    with open_checkpointer(url) as saver:
        for name in names:
            if saver.get_tuple({"configurable": {"thread_id": name}}) is not None:
                raise SystemExit(f"thread {name!r} already exists in {url}: use another --seed or database")


def spawn(
    args: argparse.Namespace, url: str, base: Path, name: str, task: str, report: Report
) -> subprocess.Popen[str]:
    """A worker process that takes the thread's lease (waiting for it) and drives the thread to its end."""
    command = [sys.executable, "-m", "tests.chaos.run_chaos", "worker", "--url", url]
    command += ["--thread", name, "--task", task, "--workdir", str(base / name)]
    command += ["--jitter", str(args.jitter), "--launch", str(report.worker_launches)]
    command += ["--plain-tools"] if args.plain_tools else []
    report.worker_launches += 1
    with open(base / name / "stderr.log", "a") as stderr:
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=ROOT)


def drive_workers(
    args: argparse.Namespace,
    rng: random.Random,
    url: str,
    base: Path,
    names: list[str],
    tasks: dict[str, str],
    server: Any,
    report: Report,
) -> None:
    waiting = list(names)
    running: dict[str, Running] = {}
    restart_after = args.kills // 2 if args.restart_postgres else None
    # Each kill is given to a thread up front; a thread's next launch is killed while it has some left.
    quota = Counter(rng.choice(names) for _ in range(args.kills))
    restarter = None
    contenders: list[subprocess.Popen[str]] = []

    contender_rng = random.Random(f"{args.seed}:contenders")  # the driver's stream stays as it was

    def contend(name: str) -> bool:
        if contender_rng.random() >= args.contenders:
            return False
        contenders.append(spawn(args, url, base, name, tasks[name], report))
        return True

    if args.restart_every:
        restarter = Restarter(server, args.restart_every, running, report, contend)
        restarter.start()
    try:
        _drive(args, rng, url, base, tasks, server, report, waiting, running, quota, restart_after)
    finally:
        if restarter is not None:
            restarter.stop()
        for proc in contenders:
            code = proc.wait()
            report.contenders += 1
            report.leases_lost += code == LEASE_LOST


class Restarter(threading.Thread):
    """Crash-restarts Postgres every ``every`` seconds while a worker is inside a run. Before that, each
    thread that is mid-run is offered to ``contend``, which may start a second runner for it: that one
    waits for the thread's lease and, at the restart, races the first runner taking its lease back
    (the race that fencing decides)."""

    def __init__(
        self,
        server: Any,
        every: float,
        running: dict[str, Running],
        report: Report,
        contend: Callable[[str], bool],
    ) -> None:
        super().__init__(daemon=True)
        self._server, self._every, self._running, self._report = server, every, running, report
        self._contend = contend
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(self._every):
            mid_run = self._mid_run()
            while not mid_run and not self._stopped.wait(0.1):
                mid_run = self._mid_run()
            if mid_run:
                if any([self._contend(name) for name in mid_run]):
                    time.sleep(CONTENDER_START)  # let them start and wait for the lease
                self._server.restart("immediate")
                self._report.postgres_restarts += 1

    def _mid_run(self) -> list[str]:
        workers = list(self._running.items())
        return [name for name, w in workers if len(w.lines) >= 2 and w.proc.poll() is None]

    def stop(self) -> None:
        self._stopped.set()
        self.join()


def _drive(
    args: argparse.Namespace,
    rng: random.Random,
    url: str,
    base: Path,
    tasks: dict[str, str],
    server: Any,
    report: Report,
    waiting: list[str],
    running: dict[str, Running],
    quota: Counter[str],
    restart_after: int | None,
) -> None:
    errors: Counter[str] = Counter()
    not_before: dict[str, float] = {}
    while waiting or running:
        now = time.monotonic()
        for name in [n for n in waiting if not_before.get(n, 0) <= now][: args.parallel - len(running)]:
            waiting.remove(name)
            proc = spawn(args, url, base, name, tasks[name], report)
            trigger = kill_trigger(rng) if quota[name] else None
            running[name] = Running(proc, trigger, rng.uniform(0, 2.5 * args.jitter))
        for name, worker in list(running.items()):
            if worker.kill_when is not None and not worker.killed:
                if worker.kill_at is None and worker.kill_when(worker.lines):
                    worker.kill_at = now + worker.kill_delay
                if worker.kill_at is not None and now >= worker.kill_at and worker.proc.poll() is None:
                    worker.proc.send_signal(signal.SIGKILL)
                    worker.killed = True
                    report.kills += 1
                    quota[name] -= 1
            code = worker.proc.poll()
            if code is None:
                continue
            del running[name]
            if worker.killed or code == 0:
                errors[name] = 0
            if code == LEASE_LOST:  # another launch took the thread over; this one stopped, fenced
                report.leases_lost += 1
                waiting.append(name)
                continue
            if code == 0 and "done" in worker.lines:
                others = waiting + list(running)
                if quota[name] and others:  # pass kills this thread did not use to one still going
                    quota[rng.choice(others)] += quota.pop(name)
                continue
            if not worker.killed:
                report.worker_errors += 1
                errors[name] += 1
                if errors[name] > args.max_errors:
                    raise RuntimeError(f"thread {name} failed {errors[name]} times in a row; giving up")
                not_before[name] = time.monotonic() + min(2.0, 0.1 * 2 ** errors[name])
            waiting.append(name)
        mid_run = any(len(w.lines) >= 2 and w.proc.poll() is None for w in running.values())
        if restart_after is not None and report.kills >= restart_after and mid_run:
            server.restart("immediate")  # like a crash: the server replays its write-ahead log
            report.postgres_restarts += 1
            restart_after = None
        time.sleep(0.005)


def verify(
    args: argparse.Namespace, url: str, base: Path, names: list[str], tasks: dict[str, str], report: Report
) -> None:
    from durable_graph.checkpointers import open_checkpointer
    from durable_graph.durable_tools import open_tool_log

    reference_dir = base / "reference"
    with open_checkpointer(url) as saver, open_tool_log(url) as log, open_checkpointer("memory://") as memory:
        for i, name in enumerate(names):
            config = {"configurable": {"thread_id": name}}
            graph = build(base / name / "files", base / name / "effects.jsonl", 0).compile(checkpointer=saver)
            state = graph.get_state(config)
            # Finished: nothing left to run. (An agent that found nothing stops at max_steps without
            # a final answer, as the undisturbed run does; the comparison below checks the rest.)
            if state.tasks or not state.values:
                report.unfinished_threads.append(name)
                continue
            # the same task, undisturbed, in a fresh copy of the thread's files
            shutil.rmtree(reference_dir / name, ignore_errors=True)
            seed_workdir(args.seed, i, reference_dir / name / "files")
            ref_graph = build(reference_dir / name / "files", reference_dir / name / "effects.jsonl", 0)
            expected = drive(ref_graph.compile(checkpointer=memory), config, tasks[name])
            if normalize_state(state.values) != normalize_state(expected):
                report.state_mismatches.append(name)
            check_tool_runs(name, base / name / "effects.jsonl", log.records(name), report)
            check_checkpoints(name, saver, report)


def check_tool_runs(name: str, effects: Path, records: list[Any], report: Report) -> None:
    runs: Counter[str] = Counter()
    ran_in: set[tuple[str, int]] = set()
    for line in effects.read_text().splitlines() if effects.exists() else []:
        key, pid = _key_and_pid(line)
        runs[key] += 1
        ran_in.add((key, pid))
    calls = effects.with_name("calls.log")
    for line in calls.read_text().splitlines() if calls.exists() else []:
        report.tool_calls += 1
        # a call that returned without the tool running in that process got a recorded result
        report.tool_results_replayed += _key_and_pid(line) not in ran_in
    attempts = {json.dumps(asdict(r.key), sort_keys=True): r.attempts for r in records}
    report.tool_runs += sum(runs.values())
    for key, count in runs.items():
        if count > 1 and count <= attempts.get(key, 0):
            report.tool_reruns_in_doubt_window += count - 1
        elif count > 1:
            report.tool_reruns_unexplained += count - 1
    for record in records:
        if not record.done:
            report.checkpoint_problems.append(
                f"{name}: tool call {record.key.call_id} has no recorded result"
            )


def _key_and_pid(line: str) -> tuple[str, int]:
    entry = json.loads(line)
    return json.dumps(entry["key"], sort_keys=True), int(entry["pid"])


def check_checkpoints(name: str, saver: Any, report: Report) -> None:
    from durable_graph.errors import CorruptCheckpointError

    try:
        items = list(saver.list({"configurable": {"thread_id": name}}))
    except CorruptCheckpointError as exc:
        report.checkpoint_problems.append(f"{name}: {exc}")
        return
    by_ns: dict[str, set[str]] = {}
    for item in items:
        by_ns.setdefault(item.config["configurable"]["checkpoint_ns"], set()).add(
            item.config["configurable"]["checkpoint_id"]
        )
    for item in items:
        ns = item.config["configurable"]["checkpoint_ns"]
        parent = (item.parent_config or {}).get("configurable", {}).get("checkpoint_id")
        if parent is not None and parent not in by_ns[ns]:
            report.checkpoint_problems.append(f"{name}: parent {parent} of {item.config} is missing")
    for ns in by_ns:
        roots = [i for i in items if i.config["configurable"]["checkpoint_ns"] == ns and not i.parent_config]
        if len(roots) != 1:
            report.checkpoint_problems.append(f"{name}: namespace {ns!r} has {len(roots)} roots")
    report.checkpoints_checked += len(items)
    check_history(name, [i for i in items if i.config["configurable"]["checkpoint_ns"] == ""], report)


def check_history(name: str, items: list[Any], report: Report) -> None:
    """One runner at a time, no fork, no step lost: the root namespace's checkpoints, by id (time)."""
    items = sorted(items, key=lambda i: i.config["configurable"]["checkpoint_id"])
    runners = [i.metadata.get(ORDER_KEY) for i in items]
    # Runners are numbered in the order they took the thread: its checkpoints come from runners in
    # rising order unless an earlier runner wrote after a later one had started writing.
    if any(a is not None and b is not None and b < a for a, b in zip(runners, runners[1:], strict=False)):
        report.two_runner_threads.append(name)
    parents = Counter((i.parent_config or {}).get("configurable", {}).get("checkpoint_id") for i in items)
    if any(count > 1 for count in parents.values()):
        report.forked_threads.append(name)
    steps = [int(i.metadata.get("step", -1)) for i in items]
    if steps and steps[-1] != max(steps):
        report.threads_gone_backwards.append(name)


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--kills", type=int, default=6)
    parser.add_argument("--restart-postgres", action="store_true", help="crash-restart Postgres once mid-run")
    parser.add_argument(
        "--restart-every", type=float, default=0.0, help="crash-restart Postgres every this many seconds"
    )
    parser.add_argument(
        "--contenders",
        type=float,
        default=0.5,
        help="before each restart, the chance that a mid-run thread gets a second runner asking for it",
    )
    parser.add_argument("--url", help="a Postgres or SQLite URL (default: an embedded Postgres of its own)")
    parser.add_argument("--workdir", help="where thread files and the server live (default: a new temp dir)")
    parser.add_argument("--parallel", type=int, default=6, help="worker processes at once")
    parser.add_argument("--jitter", type=float, default=0.1, help="max seconds a model turn or tool sleeps")
    parser.add_argument("--plain-tools", action="store_true", help="tools not durable (checks the checks)")
    parser.add_argument(
        "--max-errors", type=int, default=30, help="failed launches of one thread before giving up"
    )
    if argv and argv[0] == "worker":
        parser.add_argument("mode")
        parser.add_argument("--thread", required=True)
        parser.add_argument("--task", required=True)
        parser.add_argument("--launch", type=int, required=True)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> Report:
    argv = sys.argv[1:] if argv is None else argv
    args = parse(argv)
    if getattr(args, "mode", None) == "worker":
        worker(args)
        return Report()
    report = run(args)
    summary = asdict(report) | {"losses": report.losses}
    width = max(map(len, summary))
    for key, value in summary.items():
        print(f"{key:<{width}}  {value}")
    return report


if __name__ == "__main__":
    result = main()
    sys.exit(1 if result.losses else 0)
