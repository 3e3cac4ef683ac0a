"""Research agent: searches a folder of notes for a topic and writes a markdown report about it.

    .venv/bin/python examples/research_agent.py                      # sample notes, topic "apples"
    .venv/bin/python examples/research_agent.py --workdir ~/notes --topic "budget"
    .venv/bin/python examples/research_agent.py --model openai:gpt-4o-mini   # a real model

The agent plans with the model, searches the files with ``search_files``, and asks to write its
findings with ``write_report``, a tool that waits for human approval. This script plays the human:
it shows each request and approves it (``--ask`` asks you at the terminal instead). Every node is
checkpointed to ``$DURABLE_GRAPH_URL`` (else the embedded Postgres), so the thread id printed at the
start is all it takes to look at the run later: ``durable-graph show <id>``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from langgraph.types import Command

from durable_graph.checkpointers import open_checkpointer
from durable_graph.graphs import agent_input, approve, build_agent, demo_tools, load_model, reject
from durable_graph.runs import RunSettings, new_thread_id, thread_config
from durable_graph.urls import default_url

SAMPLE_NOTES = {
    "field-notes.txt": "Apples ripen early this year.\nThe north orchard has 40 apple trees.\n",
    "market.md": "# Market\n\nApples sell for 2.10 a kilo; pears for 2.40.\n",
    "todo.txt": "fix the fence\norder crates for the apples\n",
}


def sample_workdir() -> Path:
    workdir = Path(tempfile.mkdtemp(prefix="research-agent-"))
    for name, text in SAMPLE_NOTES.items():
        (workdir / name).write_text(text, encoding="utf-8")
    return workdir


def decide(request: dict, ask: bool) -> Command:
    """The human's answer to an approval request: approve, or (with ``--ask``) whatever they type."""
    print(f"\n  approval needed: {request['tool']}({', '.join(request['args'])})")
    if not ask:
        print("  -> approved by the script")
        return approve()
    reply = input("  approve? [y/N, or a reason to reject] ").strip()
    return approve() if reply.lower() in ("y", "yes") else reject(reply or "declined at the terminal")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default=default_url(), help="backend URL (default: %(default)s)")
    parser.add_argument("--workdir", type=Path, help="folder to research (default: sample notes)")
    parser.add_argument("--topic", default="apples", help="what to look for (default: %(default)s)")
    parser.add_argument("--model", help="model spec such as openai:gpt-4o-mini (default: offline scripted)")
    parser.add_argument("--ask", action="store_true", help="ask at the terminal before writing the report")
    args = parser.parse_args()

    workdir = (args.workdir or sample_workdir()).expanduser().resolve()
    task = f"search for {args.topic} in my files and write a report"
    settings = RunSettings(model=args.model, workdir=str(workdir))
    thread_id = new_thread_id()
    config = thread_config(thread_id, settings)  # run settings saved with the thread, for the CLI
    print(f"thread: {thread_id}\ntask:   {task}\nfolder: {workdir}")

    with open_checkpointer(args.url) as saver:
        graph = build_agent(load_model(args.model), demo_tools(workdir)).compile(checkpointer=saver)
        value: object = agent_input(task)
        while True:
            for update in graph.stream(value, config, stream_mode="updates", durability="sync"):
                for node in update:
                    if node != "__interrupt__":
                        print(f"  ✓ {node}")
            state = graph.get_state(config)
            if not state.interrupts:
                break
            value = decide(state.interrupts[0].value, args.ask)

    print(f"\nanswer:\n{state.values.get('final_answer')}")
    for report in sorted((workdir / "reports").glob("*.md")) if (workdir / "reports").is_dir() else []:
        print(f"\n--- {report.relative_to(workdir)} ---\n{report.read_text(encoding='utf-8')}")
    print(f"inspect the run: durable-graph show {thread_id} --url {args.url}")


if __name__ == "__main__":
    main()
