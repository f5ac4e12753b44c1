"""Built-in live dashboard: one static page plus a JSON API over the named analytics views.

It runs inside the worker process (embedded mode lets only one process own the chdb path), so
every query goes through the worker's blocking `query` callable on a worker thread: the event
loop that also drives the stream agents is never blocked by a dashboard request.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

import orjson
from aiohttp import web

from pipeline.analytics.report import REPORT_CONTENT_TYPES, build_report, parse_instant, render
from pipeline.analytics.views import VIEWS, run_view
from pipeline.sinks import metrics
from pipeline.web.timerange import parse_time_range, parse_watch

Query = Callable[[str, dict | None], list[tuple]]

STATIC_DIR = Path(__file__).resolve().parent / "static"
log = logging.getLogger(__name__)

_QUERY = web.AppKey("query", object)
_DB = web.AppKey("db", str)
_EXECUTOR = web.AppKey("executor", Executor)

# The page loads nothing from elsewhere and runs no inline script; the policy makes that a rule.
_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; "
    "script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def _json(payload: object, status: int = 200) -> web.Response:
    body = orjson.dumps(payload, option=orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z)
    return web.Response(body=body, status=status, content_type="application/json", charset="utf-8")


def _bind_parameters(wanted: frozenset[str], args, now: datetime) -> dict:
    """The query parameters a view declares, taken from the request (ValueError when invalid)."""
    params: dict = {}
    if wanted & {"start", "end", "bucket"}:
        time_range = parse_time_range(args, now)
        params |= {"start": time_range.start, "end": time_range.end, "bucket": time_range.bucket}
    if "watch" in wanted:
        params["watch"] = parse_watch(args)
    return {name: value for name, value in params.items() if name in wanted}


async def _run_blocking(request: web.Request, func: Callable, *args, **kwargs):
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(request.app[_EXECUTOR], partial(func, *args, **kwargs))


async def view_rows(request: web.Request) -> web.Response:
    """``GET /api/views/{name}?from=&to=&bucket=&watch=`` -> the view's rows as JSON objects."""
    name = request.match_info["name"]
    view = VIEWS.get(name)
    if view is None:
        return _json({"error": f"unknown view {name!r}", "views": sorted(VIEWS)}, status=404)
    try:
        params = _bind_parameters(view.parameters, request.query, datetime.now(timezone.utc))
    except ValueError as exc:
        return _json({"error": str(exc)}, status=400)
    try:
        rows = await _run_blocking(request, run_view, request.app[_QUERY], request.app[_DB], name, **params)
    except Exception as exc:  # the database's message is what the operator needs to see
        log.warning("dashboard view %s failed: %s", name, exc)
        return _json({"error": f"{type(exc).__name__}: {exc}"}, status=502)
    return _json(
        {"view": name, "title": view.title, "kind": view.kind, "columns": view.columns, "params": params, "rows": rows}
    )


async def view_catalogue(_request: web.Request) -> web.Response:
    """``GET /api/views`` -> every view's name, title, kind, columns and parameters."""
    return _json(
        [
            {"name": v.name, "title": v.title, "kind": v.kind, "columns": v.columns, "parameters": sorted(v.parameters)}
            for v in VIEWS.values()
        ]
    )


async def process_counters(_request: web.Request) -> web.Response:
    """``GET /api/process`` -> dead letters by reason since this worker started.

    Dead letters never reach ClickHouse, so the count comes from the worker's own Prometheus
    counter (the dashboard runs in the worker process); Grafana reads the same counter.
    """
    by_reason = {
        sample.labels["reason"]: int(sample.value)
        for family in metrics.DLQ.collect()
        for sample in family.samples
        if sample.name.endswith("_total")
    }
    return _json({"dlq_total": sum(by_reason.values()), "dlq_by_reason": by_reason})


async def account_report(request: web.Request) -> web.Response:
    """``GET /api/report?account=&from=&to=&format=text|csv|json&top=&source=`` -> the account report.

    `python -m pipeline report` comes here when the worker holds the embedded chdb path.
    """
    args = request.query
    try:
        fmt = args.get("format", "text")
        if fmt not in REPORT_CONTENT_TYPES:
            raise ValueError(f"format must be one of {sorted(REPORT_CONTENT_TYPES)}")
        report = await _run_blocking(
            request,
            build_report,
            request.app[_QUERY],
            request.app[_DB],
            args["account"],
            parse_instant(args["from"]),
            parse_instant(args["to"]),
            top_n=int(args.get("top", 5)),
            source=args.get("source") or None,
        )
    except (KeyError, ValueError) as exc:
        return _json({"error": f"bad report request: {exc}"}, status=400)
    return web.Response(text=render(report, fmt), content_type=REPORT_CONTENT_TYPES[fmt], charset="utf-8")


async def healthz(request: web.Request) -> web.Response:
    """200 when the database answers a trivial query, 503 otherwise."""
    try:
        await _run_blocking(request, request.app[_QUERY], "SELECT 1", None)
    except Exception as exc:
        return _json({"status": "error", "error": f"{type(exc).__name__}: {exc}"}, status=503)
    return _json({"status": "ok"})


async def index(_request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html")


@web.middleware
async def _headers(request: web.Request, handler):
    response = await handler(request)
    response.headers.update(_SECURITY_HEADERS)
    # Live data must never come from a cache; the small assets are revalidated on every load.
    response.headers["Cache-Control"] = "no-store" if request.path.startswith("/api/") else "no-cache"
    return response


def create_app(query: Query, db: str, *, executor: Executor | None = None) -> web.Application:
    """The dashboard app; `query` is blocking (e.g. `ClickHouseSink.query`) and runs on `executor`.

    Without an executor the app owns a one-thread pool (a chdb session runs one query at a time
    anyway) and shuts it down on cleanup.
    """
    app = web.Application(middlewares=[_headers])
    app[_QUERY] = query
    app[_DB] = db
    if executor is None:
        owned = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dashboard-query")
        app[_EXECUTOR] = owned

        async def _shutdown(_app: web.Application) -> None:
            owned.shutdown(wait=False, cancel_futures=True)

        app.on_cleanup.append(_shutdown)
    else:
        app[_EXECUTOR] = executor
    app.router.add_get("/", index)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/api/process", process_counters)
    app.router.add_get("/api/report", account_report)
    app.router.add_get("/api/views", view_catalogue)
    app.router.add_get("/api/views/{name}", view_rows)
    app.router.add_static("/static/", STATIC_DIR, follow_symlinks=False)
    return app
