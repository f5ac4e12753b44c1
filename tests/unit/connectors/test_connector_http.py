"""How source HTTP answers are classified and retried."""

from __future__ import annotations

import pytest
from aiohttp import web

from pipeline.connectors import metrics
from pipeline.backoff import Backoff
from pipeline.connectors.http import (
    ApiClient,
    FatalSourceError,
    RetryPolicy,
    TransientSourceError,
    http_error,
)
from tests.unit.connectors.recorded_api import json_reply

NOW = 1_700_000_000.0


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, None),
        (304, None),
        (429, TransientSourceError),
        (500, TransientSourceError),
        (503, TransientSourceError),
        (401, FatalSourceError),
        (403, FatalSourceError),
        (404, FatalSourceError),
        (400, FatalSourceError),
    ],
)
def test_http_statuses_map_to_retry_or_stop(status, expected):
    error = http_error(status, {}, b"{}", "http://api/x", NOW)
    assert (error is None) if expected is None else isinstance(error, expected)


def test_a_401_names_the_credentials_and_a_429_carries_the_servers_wait():
    unauthorised = http_error(401, {}, b'{"detail":"Unauthorized"}', "http://api/2/tweets", NOW)
    assert "access token" in str(unauthorised) and "Unauthorized" in str(unauthorised)
    limited = http_error(429, {"x-rate-limit-reset": str(int(NOW) + 3)}, b"", "http://api", NOW)
    assert limited.retry_after == 3 and limited.kind == "http_429"


def fast_retry(attempts: int = 4) -> RetryPolicy:
    return RetryPolicy(max_attempts=attempts, backoff=Backoff(base_s=0.01, cap_s=0.02))


def sample(metric, **labels) -> float:
    return metric.labels(**labels)._value.get()


async def test_client_retries_5xx_then_returns_the_success(recorded_api):
    api = await recorded_api(
        {"/ok": lambda r: _ok()},
        failures=[lambda: web.Response(status=502), lambda: web.Response(status=503)],
    )
    retries_before = sample(metrics.RETRIES, connector="http-test")
    async with ApiClient("http-test", api.base_url, retry=fast_retry()) as client:
        assert await client.get_json("/ok") == {"ok": True}
    assert len(api.requests) == 3
    assert sample(metrics.RETRIES, connector="http-test") - retries_before == 2


async def test_client_gives_up_after_max_attempts_with_the_last_transient_error(recorded_api):
    api = await recorded_api({"/ok": lambda r: _ok()}, failures=[lambda: web.Response(status=500)] * 5)
    async with ApiClient("http-test", api.base_url, retry=fast_retry(3)) as client:
        with pytest.raises(TransientSourceError):
            await client.get_json("/ok")
    assert len(api.requests) == 3


async def test_client_treats_a_truncated_json_body_as_transient(recorded_api):
    api = await recorded_api({"/ok": lambda r: _ok()}, failures=[lambda: json_reply(b'{"statuses": [')])
    async with ApiClient("http-test", api.base_url, retry=fast_retry()) as client:
        assert await client.get_json("/ok") == {"ok": True}


async def test_client_retries_a_refused_connection(unused_tcp_port):
    async with ApiClient("http-test", f"http://127.0.0.1:{unused_tcp_port}", retry=fast_retry(2)) as client:
        with pytest.raises(TransientSourceError, match="ClientConnectorError"):
            await client.get_json("/nothing-listens-here")


async def _ok() -> web.Response:
    return json_reply({"ok": True})
