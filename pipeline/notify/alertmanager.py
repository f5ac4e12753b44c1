"""The Alertmanager bridge: every alert transition on `alerts` becomes Alertmanager API v2 alerts.

Alertmanager already does what getting a warning to the right person needs — routing by label
(severity, watch) to e-mail, chat or paging receivers, grouping, repeat intervals, and
acknowledging or muting through silences — so pd-monitor speaks its API instead of growing one.
`python -m pipeline bridge` runs this as its own process (one per deployment):

- **labels** (an Alertmanager alert's identity): ``alertname`` (PdSurge / PdStory / PdForecast),
  ``alert_id``, ``watch``, ``key``, ``kind``, ``severity`` (and ``scale`` for a surge). A silence
  on ``alert_id`` mutes one alert whatever it becomes; on ``watch`` a whole subject.
- **startsAt** = the alert's opening; a firing alert is posted with **endsAt** = now + 4 resend
  intervals and re-posted every `ALERTMANAGER_RESEND_S`, as Alertmanager expects of its clients
  (it ends an alert that is no longer re-sent; Prometheus does the same); the resolve posts
  endsAt = the resolving window's end.
- An escalation changes the ``severity`` label, hence the Alertmanager alert: the lower-severity
  one is ended in the same request, so it does not linger until it times out.
- **annotations**: summary, description, sample posts, terms; **generatorURL** is the alert's
  view in the dashboard, ``<DASHBOARD_URL>/?alert=<id>``.

Delivery is at-least-once: the bridge's consumer group (``<APP_ID>.bridge``) commits a batch's
offsets after Alertmanager accepted its alerts. On start the bridge reads `alerts` from the
beginning (compacted: the newest transition per alert) to rebuild which alerts are firing, and
posts only what the group had not committed; re-posting is harmless, since Alertmanager merges
alerts by their labels. Alertmanager down or refusing: the batch is retried with backoff and
consumption waits (`pd_bridge_alertmanager_requests_total{outcome="error"}`).

The dashboard asks `silences_by_alert_id` which alerts are muted, and `silence_alert` mutes one.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import signal
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

import aiohttp
from prometheus_client import Counter, Gauge

from pipeline.backoff import Backoff
from pipeline.client import AlertSubscriber, Delivery, is_newer
from pipeline.kafka import SharedProducer, count_dead_letters, send_dead_letter
from pipeline.schemas import Alert, AlertState, DeadLetter
from pipeline.sinks import metrics
from pipeline.settings import Settings

log = logging.getLogger(__name__)

ALERTNAMES = {"surge": "PdSurge", "story": "PdStory", "forecast": "PdForecast"}
RESENDS_BEFORE_EXPIRY = 4
"""A firing alert ends in Alertmanager this many resend intervals after the bridge last posted it."""
MAX_ALERTS_PER_REQUEST = 500
SAMPLE_TEXT_CHARS = 280

TRANSITIONS = Counter("pd_bridge_transitions", "Alert transitions posted to Alertmanager", ["state"])
REQUESTS = Counter("pd_bridge_alertmanager_requests", "Requests to Alertmanager's API by outcome", ["outcome"])
FIRING = Gauge("pd_bridge_firing_alerts", "Alerts the bridge keeps firing in Alertmanager")
LAST_SUCCESS = Gauge("pd_bridge_last_success_timestamp_seconds", "Unix time Alertmanager last accepted a post")


# --- what Alertmanager receives (pure) ---------------------------------------------------------


def alert_view_url(dashboard_url: str, alert_id: str) -> str:
    """The dashboard's view of one alert: ``<DASHBOARD_URL>/?alert=<id>``."""
    return f"{dashboard_url.rstrip('/')}/?alert={quote(alert_id, safe='')}"


def alert_labels(alert: Alert) -> dict[str, str]:
    labels = {
        "alertname": ALERTNAMES[alert.kind],
        "alert_id": alert.id,
        "watch": alert.watch,
        "key": alert.key,
        "kind": alert.kind,
        "severity": alert.severity,
    }
    if alert.scale:
        labels["scale"] = alert.scale
    return labels


def _utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def _expected(baseline: float | None) -> str:
    return "still learning" if baseline is None else f"{baseline:.1f} expected"


def summary(alert: Alert) -> str:
    where = f"{alert.watch}/{alert.key}"
    if alert.kind == "story" and alert.story is not None:
        return (
            f"Emerging story ({', '.join(alert.story.terms[:5])}): {alert.observed} posts, "
            f"mean sentiment {alert.story.mean_sentiment:+.2f}"
        )
    if alert.kind == "forecast" and alert.forecast is not None:
        forecast = alert.forecast
        return (
            f"{where}: {forecast.metric} forecast {forecast.forecast:.3g} (80 % bound {forecast.upper_80:.3g}) "
            f"crosses {forecast.threshold:.3g} by {forecast.horizon_end:%Y-%m-%d %H:%M} UTC"
        )
    scale = f" ({alert.scale})" if alert.scale else ""
    return (
        f"{where}: {alert.observed} posts{scale} to {alert.window_end:%Y-%m-%d %H:%M} UTC "
        f"({_expected(alert.baseline)}), {alert.negative_share:.0%} negative"
    )


def alert_annotations(alert: Alert) -> dict[str, str]:
    terms = alert.story.terms if alert.story is not None else alert.top_terms
    annotations = {
        "summary": summary(alert),
        "description": (
            f"{alert.severity} {alert.kind} alert, {alert.state.value}: window {_utc(alert.window_start)} – "
            f"{_utc(alert.window_end)}, score {alert.score:.2f}, opened {_utc(alert.opened_at)}"
        ),
        "state": alert.state.value,
        "terms": ", ".join(terms),
        "sample_posts": "\n".join(f"[{post.id}] {post.text[:SAMPLE_TEXT_CHARS]}" for post in alert.sample_posts),
    }
    return {name: value for name, value in annotations.items() if value}


def postable_alert(alert: Alert, ends_at: datetime, dashboard_url: str, now: datetime) -> dict[str, Any]:
    """One alert of ``POST /api/v2/alerts``. Its start is clamped to `now` (event time can run a
    little ahead of the wall clock) and its end to the start (Alertmanager refuses an earlier end)."""
    starts_at = min(alert.opened_at, now)
    return {
        "labels": alert_labels(alert),
        "annotations": alert_annotations(alert),
        "startsAt": _utc(starts_at),
        "endsAt": _utc(max(starts_at, ends_at)),
        "generatorURL": alert_view_url(dashboard_url, alert.id),
    }


def transition_alerts(
    alert: Alert, previous: Alert | None, *, dashboard_url: str, now: datetime, firing_for: timedelta
) -> list[dict[str, Any]]:
    """What to post for the newest transition `alert`, when Alertmanager last got `previous` of
    the same alert: the alert firing until ``now + firing_for`` or, when resolved, ended at its
    window's end; plus `previous` ended now when its labels differ (an escalation)."""
    posts = []
    if previous is not None and alert_labels(previous) != alert_labels(alert):
        posts.append(postable_alert(previous, now, dashboard_url, now))
    ends_at = min(alert.updated_at, now) if alert.state is AlertState.RESOLVED else now + firing_for
    posts.append(postable_alert(alert, ends_at, dashboard_url, now))
    return posts


# --- Alertmanager's API ------------------------------------------------------------------------


class AlertmanagerError(RuntimeError):
    """Alertmanager refused a request or could not be reached."""


@dataclass(frozen=True)
class Silence:
    id: str
    created_by: str
    comment: str
    starts_at: str
    ends_at: str
    matchers: tuple[tuple[str, str, bool, bool], ...]
    """(name, value, is_regex, is_equal) as Alertmanager stores them."""

    @classmethod
    def from_api(cls, body: dict) -> "Silence":
        return cls(
            id=body["id"], created_by=body.get("createdBy", ""), comment=body.get("comment", ""),
            starts_at=body["startsAt"], ends_at=body["endsAt"],
            matchers=tuple((m["name"], m["value"], m.get("isRegex", False), m.get("isEqual", True)) for m in body["matchers"]),
        )  # fmt: skip


class AlertmanagerClient:
    """The few calls of Alertmanager's API v2 the bridge and the dashboard make. Credentials may
    be part of the URL (``https://user:pass@alertmanager:9093``, basic auth)."""

    def __init__(self, url: str, timeout_s: float = 10.0):
        self.url = url.rstrip("/")
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> "AlertmanagerClient":
        self._session = aiohttp.ClientSession(timeout=self.timeout)
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self._session.close()

    async def _call(self, method: str, path: str, **kwargs) -> Any:
        try:
            async with self._session.request(method, f"{self.url}/api/v2{path}", **kwargs) as response:
                body = await response.read()
                if response.status >= 300:
                    raise AlertmanagerError(f"{method} {path}: HTTP {response.status}: {body[:500]!r}")
                return await response.json(content_type=None) if body else None
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise AlertmanagerError(f"{method} {path}: {exc!r}") from exc

    async def post_alerts(self, alerts: Sequence[dict]) -> None:
        for start in range(0, len(alerts), MAX_ALERTS_PER_REQUEST):
            await self._call("POST", "/alerts", json=list(alerts[start : start + MAX_ALERTS_PER_REQUEST]))

    async def alerts(self, matchers: Iterable[str] = (), *, silenced: bool = True) -> list[dict]:
        """Alerts Alertmanager holds and has not seen end (matchers as in ``alert_id="…"``)."""
        params = [("filter", matcher) for matcher in matchers] + [("silenced", str(silenced).lower())]
        return await self._call("GET", "/alerts", params=params)

    async def silences(self) -> list[Silence]:
        """Active silences (expired and pending ones are left out)."""
        return [Silence.from_api(s) for s in await self._call("GET", "/silences") if s["status"]["state"] == "active"]

    async def create_silence(
        self, matchers: dict[str, str], *, duration: timedelta, created_by: str, comment: str
    ) -> str:
        """A silence from now for `duration`, matching every label in `matchers` exactly; its id."""
        now = datetime.now(timezone.utc)
        body = {
            "matchers": [{"name": n, "value": v, "isRegex": False, "isEqual": True} for n, v in matchers.items()],
            "startsAt": _utc(now),
            "endsAt": _utc(now + duration),
            "createdBy": created_by,
            "comment": comment,
        }
        return (await self._call("POST", "/silences", json=body))["silenceID"]

    async def expire_silence(self, silence_id: str) -> None:
        await self._call("DELETE", f"/silence/{quote(silence_id, safe='')}")


# --- for the dashboard -------------------------------------------------------------------------


async def silences_by_alert_id(alertmanager_url: str) -> dict[str, list[Silence]]:
    """The pd-monitor alerts Alertmanager mutes now, by alert id, with the silences that mute them
    (who, why, until when). Alertmanager decides which silence covers which alert; an alert it
    does not hold (resolved, or not yet posted) is not listed."""
    async with AlertmanagerClient(alertmanager_url) as alertmanager:
        held = await alertmanager.alerts(['alert_id=~".+"'])
        silences = {silence.id: silence for silence in await alertmanager.silences()}
    muted: dict[str, list[Silence]] = {}
    for alert in held:  # an escalating alert may be held twice (both severities) for a moment
        listed = muted.setdefault(alert["labels"]["alert_id"], [])
        listed += [silences[i] for i in alert["status"].get("silencedBy") or () if i in silences and silences[i] not in listed]
    return {alert_id: listed for alert_id, listed in muted.items() if listed}


async def silence_alert(
    alertmanager_url: str, alert_id: str, *, created_by: str, comment: str, duration: timedelta = timedelta(hours=4)
) -> str:
    """Acknowledge one alert: a silence on its ``alert_id`` (every severity it reaches); the silence id."""
    async with AlertmanagerClient(alertmanager_url) as alertmanager:
        return await alertmanager.create_silence(
            {"alert_id": alert_id}, duration=duration, created_by=created_by, comment=comment
        )


# --- the bridge --------------------------------------------------------------------------------


class AlertmanagerBridge:
    """`alerts` -> Alertmanager, at-least-once, with periodic re-posts of the firing alerts."""

    def __init__(self, settings: Settings, backoff: Backoff = Backoff(base_s=0.5, cap_s=30.0)):
        self.settings = settings
        self.alertmanager = AlertmanagerClient(settings.alertmanager_url)
        self.subscriber = AlertSubscriber(settings, group_id=settings.group_id("bridge"))
        self.producer = SharedProducer(settings, client_id="pd-monitor-bridge")
        self.backoff = backoff
        self.resend_s = settings.alertmanager_resend_s
        self.firing_for = timedelta(seconds=settings.alertmanager_resend_s * RESENDS_BEFORE_EXPIRY)
        self._posted: dict[str, Alert] = {}
        """Per alert id, the transition Alertmanager last got (its labels are the ones to end on escalation)."""

    async def run(self) -> None:
        """Until cancelled."""
        loop = asyncio.get_running_loop()
        async with self.alertmanager, self.producer:
            await self.subscriber.start()
            try:
                resend_at = loop.time() + self.resend_s
                while True:
                    deliveries = await self.subscriber.poll(timeout_s=min(1.0, max(0.0, resend_at - loop.time())))
                    if deliveries:
                        await self._until_done(self.deliver, deliveries)
                        await self.subscriber.commit()
                    if loop.time() >= resend_at:
                        await self._until_done(self.resend)
                        resend_at = loop.time() + self.resend_s
            finally:
                await self.subscriber.stop()

    async def deliver(self, deliveries: Sequence[Delivery]) -> None:
        """Post the newest transition of every alert the batch brought news of (records read
        again after a restart only tell what Alertmanager already got), and dead-letter records
        that are not alerts."""
        touched: dict[str, None] = {}
        dead: list[DeadLetter] = []
        for delivery in deliveries:
            record = delivery.record
            if delivery.rejection is not None:
                if not delivery.replayed:
                    dead.append(DeadLetter.of(delivery.rejection, record.value, record.topic, record.partition, record.offset))
            elif delivery.replayed:
                if is_newer(delivery.alert, self._posted.get(delivery.alert.id)):
                    self._posted[delivery.alert.id] = delivery.alert
            else:
                touched[delivery.alert.id] = None
        now = datetime.now(timezone.utc)
        newest = [self.subscriber.book.get(alert_id) for alert_id in touched]
        posts = list(itertools.chain.from_iterable(
            transition_alerts(alert, self._posted.get(alert.id), dashboard_url=self.settings.resolved_dashboard_url,
                              now=now, firing_for=self.firing_for)
            for alert in newest
        ))  # fmt: skip
        await self._post(posts)
        for alert in newest:
            self._posted[alert.id] = alert
            TRANSITIONS.labels(alert.state.value).inc()
        if dead:
            outbox = await self.producer.outbox()
            for letter in dead:
                send_dead_letter(outbox, self.settings, letter)
            await outbox.delivered()
            count_dead_letters(dead)
        FIRING.set(len(self.subscriber.book.firing()))

    async def resend(self) -> None:
        """Re-post every firing alert with a fresh end, so Alertmanager keeps it open."""
        now = datetime.now(timezone.utc)
        firing = self.subscriber.book.firing()
        await self._post([postable_alert(a, now + self.firing_for, self.settings.resolved_dashboard_url, now) for a in firing])
        FIRING.set(len(firing))

    async def _post(self, alerts: list[dict]) -> None:
        if not alerts:
            return
        try:
            await self.alertmanager.post_alerts(alerts)
        except AlertmanagerError:
            REQUESTS.labels("error").inc()
            raise
        REQUESTS.labels("ok").inc()
        LAST_SUCCESS.set_to_current_time()

    async def _until_done(self, step, *args) -> None:
        """Alertmanager away or refusing: the same step again with backoff; consumption waits."""
        for attempt in itertools.count():
            try:
                return await step(*args)
            except Exception:
                delay = self.backoff.delay(attempt)
                log.exception("bridge: %s failed (attempt %d); retrying in %.1f s", step.__name__, attempt + 1, delay)
                await asyncio.sleep(delay)


def run_bridge(settings: Settings) -> None:
    """`python -m pipeline bridge`: /metrics and /healthz on METRICS_PORT; SIGTERM/SIGINT stop it."""
    heartbeat = metrics.Heartbeat()
    metrics.serve(settings.metrics_host, settings.metrics_port, heartbeat)

    async def main() -> None:
        task = asyncio.current_task()
        for sig in (signal.SIGTERM, signal.SIGINT):
            asyncio.get_running_loop().add_signal_handler(sig, task.cancel)
        beating = asyncio.create_task(heartbeat.keep())
        try:
            await AlertmanagerBridge(settings).run()
        except asyncio.CancelledError:
            pass
        finally:
            beating.cancel()

    asyncio.run(main())
