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


def wait_for_signal() -> None:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()


def cmd_stack(args: argparse.Namespace, settings: Settings) -> None:
    from pipeline.stack import EmbeddedStack, describe
    from pipeline.topics import ensure_topics

    with EmbeddedStack(settings, persistent=not args.memory) as stack:
        created = asyncio.run(ensure_topics(settings))
        print(f"embedded stack up: {describe(settings, stack)}; topics created: {created or 'none (already there)'}")
        print("Ctrl-C stops it.", flush=True)
        wait_for_signal()


def cmd_worker(args: argparse.Namespace, settings: Settings) -> None:
    from pipeline.worker import run_worker

    run_worker(settings)


def cmd_topics(args: argparse.Namespace, settings: Settings) -> None:
    from pipeline.topics import apply_topic_configs, ensure_topics

    print("created:", asyncio.run(ensure_topics(settings)) or "none")
    print("configs changed:", asyncio.run(apply_topic_configs(settings)) or "none")


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> None:
    from pipeline.sinks.clickhouse import connect, migrate

    client = connect(settings.resolved_clickhouse_url, settings.clickhouse_database)
    try:
        print("applied:", migrate(client, settings.clickhouse_database, settings.clickhouse_ttl_days) or "none")
    finally:
        client.close()


def cmd_run(args: argparse.Namespace, settings: Settings) -> None:
    from pipeline.demo import run_demo

    run_demo(settings, sample=args.sample, persistent=not args.memory, speed=args.speed)


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


def parse_options(pairs: list[str]) -> dict:
    """`key=value` pairs; values that parse as YAML scalars (numbers, booleans) are typed."""
    import yaml

    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"option {pair!r}: expected key=value")
        options[key.replace("-", "_")] = yaml.safe_load(value) if value else ""
    return options


SECRET_OPTIONS = ("token", "access_token", "bearer_token", "password")


def secrets_from_files(options: dict) -> dict:
    """A secret is never taken from the command line (every user sees it in `ps`): `token=...`
    is refused, `token_file=PATH` reads it as a string (the connectors also read their env vars)."""
    for name in SECRET_OPTIONS:
        if name in options:
            raise SystemExit(f"option {name}= would show the secret in `ps`: pass {name}_file=PATH or the env var")
        path = options.pop(f"{name}_file", None)
        if path is not None:
            options[name] = Path(str(path)).read_text(encoding="utf-8").strip()
    return options


def cmd_connect(args: argparse.Namespace, settings: Settings) -> None:
    from pipeline.connectors import run_connector
    from pipeline.sinks import metrics

    try:
        metrics.serve(settings.metrics_host, settings.metrics_port)  # pd_connector_* and /healthz
    except OSError as exc:  # e.g. a worker on this machine holds the default port
        logging.getLogger(__name__).warning("no /metrics for this connector (%s): set METRICS_PORT", exc)
    try:
        run_connector(args.connector, settings, **secrets_from_files(parse_options(args.options)))
    except ValueError as exc:  # bad configuration, found before anything is served or produced
        raise SystemExit(f"connect {args.connector}: {exc}") from exc


def cmd_bridge(args: argparse.Namespace, settings: Settings) -> None:
    from pipeline.notify.alertmanager import run_bridge

    run_bridge(settings)


def cmd_replay(args: argparse.Namespace, settings: Settings) -> None:
    """Copy a time range of posts.raw into the run's own namespace; point a worker at it to re-process."""
    from pipeline.analytics.report import parse_instant
    from pipeline.backtest_range import backtest_range, default_run_id

    start, end = parse_instant(args.start), parse_instant(args.end)
    run_id = args.run_id or default_run_id(start, end)
    target, stats = asyncio.run(backtest_range(settings, start, end, run_id=run_id, speed=args.speed))
    print(f"replayed {stats.produced} of {stats.scanned} scanned records into namespace {target.topic_prefix!r}")
    print(f"re-process with: TOPIC_PREFIX={target.topic_prefix} APP_ID={target.app_id} "
          f"CLICKHOUSE_DATABASE={target.clickhouse_database} python -m pipeline worker")


def cmd_backtest(args: argparse.Namespace, settings: Settings) -> None:
    from pipeline.alerting.watches import load_watches
    from pipeline.analytics.report import parse_instant
    from pipeline.backtest import (
        load_incidents,
        read_enriched,
        render,
        run_watches,
        score,
    )

    posts = asyncio.run(read_enriched(settings, parse_instant(args.start), parse_instant(args.end)))
    alerts = run_watches(posts, load_watches(args.watches or settings.watches_dir))
    print(f"{len(posts)} enriched posts in range from {settings.topic('posts.enriched')}")
    print(render(alerts, score(alerts, load_incidents(args.incidents))), end="")


def cmd_forecast(args: argparse.Namespace, settings: Settings) -> None:
    from pipeline.forecasting.command import ForecastUnavailable, forecast_command

    try:
        print(forecast_command(settings, watch=args.watch, key=args.key, metric=args.metric,
                               resolution=args.resolution, refit=args.refit, fmt=args.format), end="")  # fmt: skip
    except ForecastUnavailable as exc:
        raise SystemExit(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    stack = sub.add_parser("stack", help="run the embedded broker (on a loopback S3 server: persistent) until Ctrl-C")
    stack.add_argument("--memory", action="store_true", help="keep topics in memory only (lost when it stops)")
    stack.set_defaults(func=cmd_stack)

    sub.add_parser("worker", help="run the faust worker against the configured Kafka/ClickHouse").set_defaults(
        func=cmd_worker
    )
    sub.add_parser("topics", help="create the namespace's topics if missing and apply their configs").set_defaults(
        func=cmd_topics
    )
    sub.add_parser("migrate", help="apply the ClickHouse migrations (under a lock)").set_defaults(func=cmd_migrate)

    run = sub.add_parser("run", help="embedded stack + worker + the bundled sample stream; Ctrl-C stops all")
    run.add_argument("--sample", type=Path, default=None, help="JSONL of raw posts (default: generated sample)")
    run.add_argument("--speed", type=float, default=0.0, help="replay speed-up by post timestamps; 0 = max")
    run.add_argument("--memory", action="store_true", help="broker in memory: every run starts afresh")
    run.set_defaults(func=cmd_run)

    report = sub.add_parser("report", help="account analytics: issue shares, top articles, per month, correlation")
    report.add_argument("--account", required=True)
    report.add_argument("--from", dest="start", required=True, help="ISO date/time (UTC when naive), inclusive")
    report.add_argument("--to", dest="end", required=True, help="ISO date/time, exclusive")
    report.add_argument("--format", choices=("text", "csv", "json"), default="text")
    report.add_argument("--top", type=int, default=5, help="rows in the top-article tables")
    report.add_argument("--source", default=None, help="restrict to one source, e.g. wechat")
    report.set_defaults(func=cmd_report)

    connect = sub.add_parser("connect", help="run a source connector onto posts.raw (jsonl, csv, rss, weibo, ...)")
    connect.add_argument("connector")
    connect.add_argument("options", nargs="*", help="key=value, e.g. path=posts.jsonl speed=60")
    connect.set_defaults(func=cmd_connect)

    sub.add_parser("bridge", help="post every alert transition to Alertmanager (API v2) until stopped").set_defaults(
        func=cmd_bridge
    )

    replay = sub.add_parser("replay", help="copy a time range of posts.raw into an isolated backtest namespace")
    replay.add_argument("--from", dest="start", required=True, help="by the records' own timestamps (post time)")
    replay.add_argument("--to", dest="end", required=True)
    replay.add_argument("--run-id", default=None, help="namespace backtest-<run-id>. (default from the range)")
    replay.add_argument("--speed", type=float, default=0.0, help="0 = as fast as possible, 60 = 1 min of posts/s")
    replay.set_defaults(func=cmd_replay)

    backtest = sub.add_parser("backtest", help="run the watches over a range; precision, recall, lead time")
    backtest.add_argument("--from", dest="start", required=True)
    backtest.add_argument("--to", dest="end", required=True)
    backtest.add_argument("--incidents", type=Path, required=True, help="YAML of labelled incidents")
    backtest.add_argument("--watches", type=Path, default=None, help="watch directory (default WATCHES_DIR)")
    backtest.set_defaults(func=cmd_backtest)
    forecast = sub.add_parser("forecast", help="the newest forecast of a watch key, topic, country or public")
    forecast.add_argument("--watch", default="", help="watch name (omit for all posts)")
    forecast.add_argument("--key", required=True, help="all | topic:<topic> | country:<code> | attitude:<public>")
    forecast.add_argument("--metric", choices=("volume", "negative_share", "net_score"), default="volume")
    forecast.add_argument("--resolution", choices=("hour", "day"), default="hour")
    forecast.add_argument("--refit", action="store_true", help="refit every series from ClickHouse first")
    forecast.add_argument("--format", choices=("text", "json"), default="text")
    forecast.set_defaults(func=cmd_forecast)
    return parser


def main(argv: list[str] | None = None) -> None:
    from pipeline.logs import setup_logging

    args = build_parser().parse_args(argv)
    settings = Settings()
    setup_logging("INFO" if args.verbose and settings.log_level == "WARNING" else settings.log_level, settings.log_format)
    args.func(args, settings)


if __name__ == "__main__":
    main(sys.argv[1:])
