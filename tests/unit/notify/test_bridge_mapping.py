"""Alert transitions -> Alertmanager API v2 alerts: labels, times, annotations, links; the
bridge posts only what Alertmanager has not had and ends the old severity of an escalation."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from aiokafka.structs import ConsumerRecord

from pipeline.client import Delivery
from pipeline.notify.alertmanager import (
    AlertmanagerBridge,
    alert_annotations,
    alert_labels,
    alert_view_url,
    transition_alerts,
)
from pipeline.schemas import ForecastDetails, StoryDetails
from pipeline.settings import Settings
from tests.alert_samples import T0, alert

NOW = datetime(2026, 5, 1, 12, tzinfo=timezone.utc)
DASHBOARD = "https://pd.example.org/dash/"
TTL = timedelta(minutes=4)


def post(transition, previous=None):
    return transition_alerts(transition, previous, dashboard_url=DASHBOARD, now=NOW, firing_for=TTL)


def test_an_open_alert_fires_from_its_opening_until_it_is_posted_again():
    (posted,) = post(alert("open"))
    assert posted["labels"] == {
        "alertname": "PdSurge", "alert_id": "433a15a3f72e9d9fbacc", "watch": "hk_mainland_tourists", "key": "all",
        "kind": "surge", "severity": "warning",
    }  # fmt: skip
    assert posted["startsAt"] == "2015-02-08T07:00:00Z"
    assert posted["endsAt"] == "2026-05-01T12:04:00Z"
    assert posted["generatorURL"] == "https://pd.example.org/dash/?alert=433a15a3f72e9d9fbacc"
    annotations = posted["annotations"]
    assert annotations["summary"] == "hk_mainland_tourists/all: 25 posts to 2015-02-08 07:00 UTC (0.6 expected), 24% negative"
    assert annotations["terms"] == "香港, 内地" and annotations["sample_posts"] == "[weibo:1] 内地游客 又来抢购奶粉"
    assert annotations["state"] == "open"


def test_a_resolve_ends_the_alert_at_its_window_end():
    (posted,) = post(alert("resolved", hours=6), previous=alert("open"))
    assert posted["startsAt"] == "2015-02-08T07:00:00Z" and posted["endsAt"] == "2015-02-08T12:00:00Z"


def test_an_escalation_ends_the_lower_severity_and_fires_the_higher():
    ended, fired = post(alert("updated", "critical", hours=2), previous=alert("open", "warning"))
    assert ended["labels"]["severity"] == "warning" and ended["endsAt"] == "2026-05-01T12:00:00Z"
    assert fired["labels"]["severity"] == "critical" and fired["endsAt"] == "2026-05-01T12:04:00Z"
    assert ended["labels"] | {"severity": "critical"} == fired["labels"]


def test_a_periodic_update_keeps_the_same_alertmanager_alert():
    (posted,) = post(alert("updated", hours=3), previous=alert("open"))
    assert posted["labels"] == alert_labels(alert("open"))


def test_times_ahead_of_the_wall_clock_are_clamped():
    future = NOW + timedelta(hours=2)
    (posted,) = post(alert("resolved", opened_at=future, updated_at=future + timedelta(hours=1), window_end=future))
    assert posted["startsAt"] == posted["endsAt"] == "2026-05-01T12:00:00Z"


def test_story_and_forecast_alerts_say_what_they_are_about():
    story = alert(kind="story", key="story:1", story=StoryDetails(terms=["光复行动", "屯门"], hashtags=[], countries=["HK"], languages=["zh"], mean_sentiment=-0.42))
    assert alert_labels(story)["alertname"] == "PdStory"
    assert alert_annotations(story)["summary"] == "Emerging story (光复行动, 屯门): 25 posts, mean sentiment -0.42"
    assert alert_annotations(story)["terms"] == "光复行动, 屯门"
    forecast = alert(kind="forecast", forecast=ForecastDetails(metric="volume", horizon_end=T0 + timedelta(hours=6), forecast=180.0, upper_80=240.0, upper_95=300.0, threshold=200.0, model="ets"))
    assert alert_annotations(forecast)["summary"] == (
        "hk_mainland_tourists/all: volume forecast 180 (80 % bound 240) crosses 200 by 2015-02-08 12:00 UTC"
    )
    surge = alert(scale="5m")
    assert alert_labels(surge)["scale"] == "5m" and "posts (5m)" in alert_annotations(surge)["summary"]


def test_the_alert_view_url_escapes_the_id():
    assert alert_view_url("http://127.0.0.1:6066", "a/b c") == "http://127.0.0.1:6066/?alert=a%2Fb%20c"


class RecordingAlertmanager:
    def __init__(self):
        self.requests: list[list[dict]] = []

    async def post_alerts(self, alerts):
        self.requests.append(list(alerts))


def deliveries(bridge: AlertmanagerBridge, transitions, replayed: bool) -> list[Delivery]:
    """As `AlertSubscriber.poll` hands them over: each applied to the book first."""
    out = []
    for offset, transition in enumerate(transitions):
        record = ConsumerRecord("alerts", 0, offset, 0, 0, transition.id.encode(), transition.encode(), None, 0, 0, ())
        out.append(Delivery(record, transition, None, newest=bridge.subscriber.book.apply(transition), replayed=replayed))
    return out


@pytest.fixture
def bridge() -> AlertmanagerBridge:
    bridge = AlertmanagerBridge(Settings(dashboard_url=DASHBOARD, alertmanager_resend_s=60))
    bridge.alertmanager = RecordingAlertmanager()
    return bridge


async def test_records_handled_before_a_restart_are_not_posted_again_but_remembered(bridge):
    await bridge.deliver(deliveries(bridge, [alert("open", "warning")], replayed=True))
    assert bridge.alertmanager.requests == []
    await bridge.deliver(deliveries(bridge, [alert("updated", "critical", hours=2)], replayed=False))
    (request,) = bridge.alertmanager.requests
    assert [a["labels"]["severity"] for a in request] == ["warning", "critical"]  # nothing posted the warning this run
    assert request[0]["endsAt"] < request[1]["endsAt"]  # the warning ended now, the critical one fires on


async def test_a_batch_posts_the_newest_transition_of_each_alert_once(bridge):
    batch = [alert("open"), alert("updated", hours=2), alert("resolved", hours=5), alert("open")]  # the last: a redelivery
    await bridge.deliver(deliveries(bridge, batch, replayed=False))
    (request,) = bridge.alertmanager.requests
    assert len(request) == 1 and request[0]["annotations"]["state"] == "resolved"
    assert request[0]["endsAt"] == "2015-02-08T11:00:00Z"


async def test_resend_keeps_only_the_firing_alerts_alive(bridge):
    await bridge.deliver(deliveries(bridge, [alert("open", alert_id="a1"), alert("open", alert_id="a2")], replayed=False))
    await bridge.deliver(deliveries(bridge, [alert("resolved", hours=4, alert_id="a2")], replayed=False))
    await bridge.resend()
    assert [a["labels"]["alert_id"] for a in bridge.alertmanager.requests[-1]] == ["a1"]
