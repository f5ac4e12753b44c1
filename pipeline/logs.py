"""Logging of every process (worker, connectors, bridge, tools): one setup, `LOG_LEVEL` and `LOG_FORMAT`.

Production processes log one JSON object per line (time, level, logger, message, and the
exception when there is one), which log shippers (Loki, Elasticsearch, CloudWatch) index
without a parsing rule; `LOG_FORMAT=text` is for a terminal.
"""

from __future__ import annotations

import logging
import sys
from datetime import datetime, timezone

import orjson

_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({})))
"""Attributes every LogRecord has; anything else on a record came from `extra=` and is logged as a field."""


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        for name, value in vars(record).items():
            if name not in _RECORD_ATTRIBUTES and name not in entry:
                entry[name] = value
        return orjson.dumps(entry, default=str).decode()


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


def setup_logging(level: str = "WARNING", fmt: str = "json") -> None:
    """Root handler on stderr, replacing any earlier one (so it may be called again with other settings)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
