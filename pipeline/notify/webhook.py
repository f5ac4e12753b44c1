"""An example Alertmanager webhook receiver: what a desk tool, chat bridge or ticket system does.

    python -m pipeline.notify.webhook --port 8080 --token-file /run/secrets/webhook_token --out notifications.jsonl

Alertmanager POSTs one JSON document per notification of a group (webhook payload version 4:
status, receiver, group and common labels, and the alerts with their labels, annotations,
startsAt/endsAt and generatorURL) to every ``webhook_configs`` URL of the receiver; the path
names the receiver here (``/hk-desk``, ``/operators``, ...), as in deploy/alertmanager. This
receiver checks the bearer token Alertmanager sends (``http_config.authorization``), validates
the payload and appends it as one JSON line to `--out` (stdout by default); replace
`WebhookReceiver.handle` with what your desk needs. It listens on loopback unless told otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import sys
from pathlib import Path
from typing import IO

import msgspec
import orjson
from aiohttp import web


class NotifiedAlert(msgspec.Struct, frozen=True):
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    startsAt: str  # noqa: N815 - Alertmanager's field names
    endsAt: str  # noqa: N815
    generatorURL: str = ""  # noqa: N815
    fingerprint: str = ""


class Notification(msgspec.Struct, frozen=True):
    """Alertmanager's webhook payload (version 4); fields it may add later are ignored."""

    version: str
    status: str
    receiver: str
    alerts: list[NotifiedAlert]
    groupKey: str = ""  # noqa: N815
    groupLabels: dict[str, str] = {}  # noqa: N815
    commonLabels: dict[str, str] = {}  # noqa: N815
    commonAnnotations: dict[str, str] = {}  # noqa: N815
    externalURL: str = ""  # noqa: N815
    truncatedAlerts: int = 0  # noqa: N815


_decoder = msgspec.json.Decoder(Notification)


async def _healthz(_request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


class WebhookReceiver:
    """Keeps every notification (with the path it came to) and writes it to `out` as a JSON line."""

    def __init__(self, *, token: str | None = None, out: IO[bytes] | None = None):
        self.token = token
        self.out = out
        self.notifications: list[tuple[str, Notification]] = []

    def _authorised(self, request: web.Request) -> bool:
        if self.token is None:
            return True
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        return scheme.lower() == "bearer" and hmac.compare_digest(credentials.strip().encode(), self.token.encode())

    async def handle(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return web.Response(status=401, headers={"WWW-Authenticate": "Bearer"})
        body = await request.read()
        try:
            notification = _decoder.decode(body)
        except msgspec.DecodeError as exc:
            return web.json_response({"error": str(exc)}, status=400)  # Alertmanager logs it; no retry helps
        self.notifications.append((request.path, notification))
        if self.out is not None:
            self.out.write(orjson.dumps({"path": request.path, **msgspec.to_builtins(notification)}) + b"\n")
            self.out.flush()
        return web.Response(status=200)

    def app(self) -> web.Application:
        app = web.Application(client_max_size=4 << 20)
        app.router.add_get("/healthz", _healthz)
        app.router.add_post("/{receiver}", self.handle)
        return app


async def serve(receiver: WebhookReceiver, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(receiver.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m pipeline.notify.webhook", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--token-file", type=Path, default=None, help="bearer token Alertmanager must send")
    parser.add_argument("--out", type=Path, default=None, help="JSON lines file (default: stdout)")
    args = parser.parse_args(argv)
    token = args.token_file.read_text().strip() if args.token_file else None
    out = args.out.open("ab") if args.out else sys.stdout.buffer

    async def run() -> None:
        runner = await serve(WebhookReceiver(token=token, out=out), args.host, args.port)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
