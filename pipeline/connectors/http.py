"""HTTP access to source APIs: request-rate limit, retries with backoff, and error classification.

Transient failures (connection errors, timeouts, 5xx, 429) are retried, honouring the server's
Retry-After / x-rate-limit-reset; anything that will not fix itself (401, 403, other 4xx) raises
`FatalSourceError` with a message that says what to check.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from pipeline.connectors import metrics
from pipeline.backoff import Backoff, retry_after_seconds
from pipeline.connectors.ratelimit import TokenBucket


class SourceError(Exception):
    """A source request failed."""


class FatalSourceError(SourceError):
    """Retrying cannot help (bad credentials, bad request): stop the connector and tell the operator."""


class TransientSourceError(SourceError):
    """Worth retrying; `retry_after` is the server's own hint in seconds, when it gave one."""

    def __init__(self, message: str, *, kind: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]
    body: bytes
    url: str

    def json(self) -> Any:
        return orjson.loads(self.body)


_AUTH_HINT = {401: "check the access token / bearer token", 403: "the credentials lack permission for this endpoint"}


def http_error(status: int, headers: Mapping[str, str], body: bytes, url: str, now: float) -> SourceError | None:
    """The error an HTTP status means for a source API, or None when the response is usable (2xx, 304)."""
    if 200 <= status < 300 or status == 304:
        return None
    snippet = body[:300].decode("utf-8", "replace")
    if status == 429:
        return TransientSourceError(
            f"{url}: rate limited (429)", kind="http_429", retry_after=retry_after_seconds(headers, now)
        )
    if status >= 500 or status == 408:
        return TransientSourceError(
            f"{url}: HTTP {status}: {snippet}",
            kind=f"http_{status // 100}xx",
            retry_after=retry_after_seconds(headers, now),
        )
    hint = _AUTH_HINT.get(status, "the request was rejected")
    return FatalSourceError(f"{url}: HTTP {status} ({hint}): {snippet}")


Classifier = Callable[[Response, float], "SourceError | None"]


def default_classifier(response: Response, now: float) -> SourceError | None:
    return http_error(response.status, response.headers, response.body, response.url, now)


@dataclass
class RetryPolicy:
    max_attempts: int = 8
    backoff: Backoff = field(default_factory=Backoff)
    max_wait_s: float = 900.0
    """Longest server-requested wait we accept (X resets can be 15 minutes away)."""


class ApiClient:
    """One aiohttp session per connector, with its request-rate bucket and retry policy."""

    def __init__(
        self,
        connector: str,
        base_url: str = "",
        *,
        headers: Mapping[str, str] | None = None,
        requests_per_s: float | None = None,
        retry: RetryPolicy | None = None,
        timeout_s: float = 30.0,
    ) -> None:
        self.connector = connector
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self._bucket = TokenBucket(requests_per_s)
        self._headers = dict(headers or {})
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=timeout_s, sock_read=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ApiClient:
        self._session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    def url(self, path: str) -> str:
        return path if path.startswith(("http://", "https://")) else f"{self.base_url}{path}"

    async def _wait_for_token(self) -> None:
        waited = await self._bucket.acquire()
        if waited:
            metrics.RATE_LIMIT_WAIT.labels(self.connector).inc(waited)

    async def _back_off(self, error: TransientSourceError, attempt: int) -> None:
        """Count the failure, then sleep the server's hint or our backoff; re-raise when out of attempts."""
        metrics.FETCH_ERRORS.labels(self.connector, error.kind).inc()
        if attempt + 1 >= self.retry.max_attempts:
            raise error
        if error.retry_after is not None:
            delay = min(error.retry_after, self.retry.max_wait_s)
            metrics.RATE_LIMIT_WAIT.labels(self.connector).inc(delay)
        else:
            delay = self.retry.backoff.delay(attempt)
        metrics.RETRIES.labels(self.connector).inc()
        await asyncio.sleep(delay)

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        classify: Classifier = default_classifier,
    ) -> Response:
        """Send with retries; returns a usable response or raises FatalSourceError / the last TransientSourceError."""
        assert self._session is not None, "use `async with ApiClient(...)`"
        url = self.url(path)
        for attempt in range(self.retry.max_attempts):
            await self._wait_for_token()
            try:
                async with self._session.request(
                    method, url, params=_clean(params), headers=headers, json=json
                ) as resp:
                    response = Response(resp.status, resp.headers, await resp.read(), url)
                error = classify(response, time.time())
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError) as exc:
                error = TransientSourceError(f"{url}: {type(exc).__name__}: {exc}", kind=_network_kind(exc))
            if error is None:
                return response
            if isinstance(error, FatalSourceError):
                metrics.FETCH_ERRORS.labels(self.connector, "fatal").inc()
                raise error
            await self._back_off(error, attempt)
        raise AssertionError("unreachable")

    async def get_json(
        self, path: str, *, params: Mapping[str, Any] | None = None, classify: Classifier = default_classifier
    ) -> Any:
        """GET a JSON document; a body that does not parse counts as transient (cut short by a proxy, say)."""

        def classify_with_body(response: Response, now: float) -> SourceError | None:
            error = classify(response, now)
            if error is None:
                try:
                    orjson.loads(response.body)
                except orjson.JSONDecodeError as exc:
                    return TransientSourceError(f"{response.url}: response is not JSON ({exc})", kind="bad_body")
            return error

        return (await self.request("GET", path, params=params, classify=classify_with_body)).json()

    async def stream_lines(self, path: str, *, params: Mapping[str, Any] | None = None) -> AsyncIterator[bytes]:
        """Lines of a long-lived streaming response; connecting is retried, the end of the stream just returns."""
        assert self._session is not None, "use `async with ApiClient(...)`"
        url = self.url(path)
        for attempt in range(self.retry.max_attempts):
            await self._wait_for_token()
            received = False
            try:
                async with self._session.get(url, params=_clean(params)) as resp:
                    if resp.status != 200:
                        response = Response(resp.status, resp.headers, await resp.read(), url)
                        error = default_classifier(response, time.time())
                        if isinstance(error, FatalSourceError):
                            metrics.FETCH_ERRORS.labels(self.connector, "fatal").inc()
                            raise error
                        await self._back_off(error, attempt)
                        continue
                    async for line in resp.content:
                        received = True
                        yield line
                    return
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, asyncio.TimeoutError) as exc:
                error = TransientSourceError(f"{url}: {type(exc).__name__}: {exc}", kind=_network_kind(exc))
                if received:  # a stream that worked and then dropped: the caller reconnects afresh
                    metrics.FETCH_ERRORS.labels(self.connector, error.kind).inc()
                    return
                await self._back_off(error, attempt)
        raise AssertionError("unreachable")


def _clean(params: Mapping[str, Any] | None) -> dict[str, str] | None:
    """Drop unset parameters and stringify the rest (aiohttp refuses ints in some versions)."""
    if params is None:
        return None
    return {k: str(v) for k, v in params.items() if v is not None}


def _network_kind(exc: BaseException) -> str:
    return "timeout" if isinstance(exc, asyncio.TimeoutError) else "connection"


def jittered(seconds: float) -> float:
    """Poll intervals with +-10% jitter so many connectors do not hit a source in lockstep."""
    return seconds * random.uniform(0.9, 1.1)
