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


def cmd_report(args: argparse.Namespace, settings: Settings) -> None:
    """Account analytics (Tables 1-3, Figures 1-2 of the WeChat-diplomacy paper) for one account."""
    from pipeline.analytics.report import build_report, parse_instant, render
    from pipeline.sinks.clickhouse import EngineBusy, connect

    try:
        client = connect(settings.resolved_clickhouse_url, settings.clickhouse_database)
    except EngineBusy:
        print(report_from_worker(args, settings), end="")
        return
    try:
        report = build_report(
            lambda sql, params: client.query(sql, parameters=params).result_rows,
            settings.clickhouse_database,
            args.account,
            parse_instant(args.start),
            parse_instant(args.end),
            top_n=args.top,
            source=args.source,
        )
        print(render(report, args.format), end="")
    finally:
        client.close()


def report_from_worker(args: argparse.Namespace, settings: Settings) -> str:
    """The embedded chdb path belongs to the running worker: ask its dashboard server instead."""
    import urllib.parse
    import urllib.request

    query = {"account": args.account, "from": args.start, "to": args.end, "format": args.format, "top": args.top}
    if args.source:
        query["source"] = args.source
    url = f"http://{settings.metrics_host}:{settings.web_port}/api/report?{urllib.parse.urlencode(query)}"
    with urllib.request.urlopen(url, timeout=60) as response:
        return response.read().decode()


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

    report = sub.add_parser("report", help="account analytics: issue shares, top articles, per month, correlation")
    report.add_argument("--account", required=True)
    report.add_argument("--from", dest="start", required=True, help="ISO date/time (UTC when naive), inclusive")
    report.add_argument("--to", dest="end", required=True, help="ISO date/time, exclusive")
    report.add_argument("--format", choices=("text", "csv", "json"), default="text")
    report.add_argument("--top", type=int, default=5, help="rows in the top-article tables")
    report.add_argument("--source", default=None, help="restrict to one source, e.g. wechat")
    report.set_defaults(func=cmd_report)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    args.func(args, Settings())


if __name__ == "__main__":
    main(sys.argv[1:])
