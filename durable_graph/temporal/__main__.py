"""``python -m durable_graph.temporal worker|dev-server``: the adapter's processes without the CLI."""

from __future__ import annotations

import argparse

from durable_graph.processes import stop_on_signals
from durable_graph.temporal.devserver import run_dev_server
from durable_graph.temporal.models import DEFAULT_TASK_QUEUE
from durable_graph.temporal.worker import run_worker


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m durable_graph.temporal")
    commands = parser.add_subparsers(dest="command", required=True)
    worker = commands.add_parser("worker", help="run a worker until Ctrl-C or SIGTERM")
    worker.add_argument("--address", default="localhost:7233", help="Temporal server host:port")
    worker.add_argument("--task-queue", default=DEFAULT_TASK_QUEUE)
    worker.add_argument(
        "--url", default=None, help="backend URL (default: $DURABLE_GRAPH_URL or embedded://)"
    )
    worker.add_argument("--namespace", default="default")
    server = commands.add_parser("dev-server", help="run the Temporal dev server until Ctrl-C or SIGTERM")
    server.add_argument("--port", type=int, default=7233)
    server.add_argument("--ui-port", type=int, default=None)
    server.add_argument("--db-filename", default=None, help="keep workflows in this SQLite file")
    args = parser.parse_args(argv)
    stop_on_signals()
    if args.command == "worker":
        run_worker(args.address, task_queue=args.task_queue, url=args.url, namespace=args.namespace)
        return 0
    return run_dev_server(args.port, ui_port=args.ui_port, db_filename=args.db_filename)


if __name__ == "__main__":
    raise SystemExit(main())
