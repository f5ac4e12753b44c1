"""`python -m pipeline forecast`: the stored forecast of one series, optionally refit first."""

from __future__ import annotations

import orjson

from pipeline.alerting.watches import load_watches
from pipeline.forecasting.api import current_forecast, render_text
from pipeline.settings import Settings
from pipeline.sinks.clickhouse import ClickHouseSink, EngineBusy


class ForecastUnavailable(RuntimeError):
    """The database cannot be opened from here (the embedded engine is the running worker's)."""


def forecast_command(
    settings: Settings, *, watch: str, key: str, metric: str, resolution: str, refit: bool, fmt: str
) -> str:
    try:
        sink = ClickHouseSink.open(settings)
    except EngineBusy as exc:
        raise ForecastUnavailable(
            f"{exc}: the worker refits every FORECAST_REFIT_S and its dashboard shows the forecasts "
            "(pipeline.forecasting.api); stop it to read or refit them from here"
        ) from exc
    try:
        if refit:
            from pipeline.analytics.attitude import Registry, sync_registry
            from pipeline.forecasting.service import Refitter

            sync_registry(sink.insert_rows, Registry.load(settings.publics_path))
            result = Refitter(sink, settings.clickhouse_database, load_watches(settings.watches_dir)).refit()
            if result.warnings:  # recorded so the worker continues these episodes; not published from here
                sink.insert_alerts(result.warnings)
        found = current_forecast(sink.query, settings.clickhouse_database, watch, key, metric, resolution)
    finally:
        sink.close()
    if fmt == "json":
        return orjson.dumps(found, option=orjson.OPT_INDENT_2 | orjson.OPT_UTC_Z).decode() + "\n"
    return render_text(found)
