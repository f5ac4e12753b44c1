"""`python -m pipeline <command>`: the one entry point for operators and engineers."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
import threading
from pathlib import Path

from pipeline.settings import Settings

log = logging.getLogger("pipeline")


def wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


def cmd_stack(args: argparse.Namespace, settings: Settings) -> None:
    from pipeline.stack import EmbeddedStack, describe
    from pipeline.topics import ensure_topics

    with EmbeddedStack(settings, persistent=args.persist):
        created = asyncio.run(ensure_topics(settings))
        print(f"embedded stack up: {describe(settings)}; topics created: {created or 'none (already there)'}")
        print("Ctrl-C stops it.", flush=True)
        wait_for_signal()


def cmd_worker(args: argparse.Namespace, settings: Settings) -> None:
    from pipeline.worker import run_worker

    run_worker(settings)


def cmd_topics(args: argparse.Namespace, settings: Settings) -> None:
    from pipeline.topics import ensure_topics

    print("created:", asyncio.run(ensure_topics(settings)) or "none")


def cmd_run(args: argparse.Namespace, settings: Settings) -> None:
    from pipeline.demo import run_demo

    run_demo(settings, sample=args.sample, persistent=args.persist, speed=args.speed)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    stack = sub.add_parser("stack", help="run the embedded broker (and S3 with --persist) until Ctrl-C")
    stack.add_argument("--persist", action="store_true", help="keep topics on disk via a loopback S3 server")
    stack.set_defaults(func=cmd_stack)

    sub.add_parser("worker", help="run the faust worker against the configured Kafka/ClickHouse").set_defaults(
        func=cmd_worker
    )
    sub.add_parser("topics", help="create the namespace's topics if missing").set_defaults(func=cmd_topics)

    run = sub.add_parser("run", help="embedded stack + worker + the bundled sample stream; Ctrl-C stops all")
    run.add_argument("--sample", type=Path, default=None, help="JSONL of raw posts (default: generated sample)")
    run.add_argument("--speed", type=float, default=0.0, help="replay speed-up by post timestamps; 0 = max")
    run.add_argument("--persist", action="store_true")
    run.set_defaults(func=cmd_run)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    args.func(args, Settings())


if __name__ == "__main__":
    main(sys.argv[1:])
