import json
import random
from datetime import datetime, timedelta, timezone
from pathlib import Path

from pipeline.alerting.engine import AlertEngine
from pipeline.alerting.watches import Watch, WatchConfig, load_watches

PAYLOAD_FIELDS = [
    "id",
    "watch",
    "key",
    "severity",
    "state",
    "window_start",
    "window_end",
    "observed",
    "baseline",
    "negative_share",
    "baseline_negative_share",
    "score",
    "sample_post_ids",
    "sample_texts",
    "top_terms",
    "opened_at",
    "updated_at",
]
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _watch(**rules) -> Watch:
    config = {
        "name": "hk",
        "match": {"keywords": {"zh": ["蝗虫"], "en": ["locust*"]}},
        "rules": {
            "window": "1h",
            "allowed_lateness": "10m",
            "volume_surge": {"alpha": 0.1, "z_threshold": 4, "warmup": 24, "min_count": 5},
            "negative_surge": {"warmup": 24, "min_count": 10},
            "resolve_after": 3,
            "cooldown": "6h",
            **rules,
        },
    }
    return Watch(WatchConfig.model_validate(config))


SURGE_HOURS = range(24 * 4, 24 * 4 + 4)


def _posts(hours=24 * 5, surge_hours=SURGE_HOURS, seed=11):
    """A quiet stream with a 4-hour surge of negative 'locust' posts; slightly out of order."""
    rng = random.Random(seed)
    stream = []
    for hour in range(hours):
        surge = hour in surge_hours
        for i in range(rng.randint(150, 180) if surge else rng.randint(15, 25)):
            negative = rng.random() < (0.8 if surge else 0.2)
            stream.append(
                {
                    "id": f"{hour}-{i}",
                    "text": "Locusts again in 香港 蝗虫" if surge else "a locust photo",
                    "created_at": T0 + timedelta(hours=hour, seconds=rng.uniform(0, 3599)),
                    "sentiment_score": -0.8 if negative else 0.1,
                    "sentiment_label": "negative" if negative else "neutral",
                    "countries": ["HK"],
                }
            )
        stream.append(
            {"id": f"noise-{hour}", "text": "unrelated", "created_at": T0 + timedelta(hours=hour, minutes=59)}
        )
    stream.sort(key=lambda p: p["created_at"] + timedelta(minutes=rng.uniform(-5, 5)))
    return stream


def _run(engine, stream):
    alerts = []
    for post in stream:
        alerts += engine.process(post)
    return alerts + engine.flush()


def test_one_surge_gives_one_alert_opened_then_resolved_with_full_payload():
    alerts = _run(AlertEngine([_watch()]), _posts())
    states = [a["state"] for a in alerts]
    assert states[0] == "open" and states[-1] == "resolved"
    assert states.count("open") == 1 and states.count("resolved") == 1
    assert len({a["id"] for a in alerts}) == 1
    opened = alerts[0]
    assert list(opened) == PAYLOAD_FIELDS
    assert opened["window_start"] == "2026-01-05T00:00:00Z" and opened["window_end"] == "2026-01-05T01:00:00Z"
    assert opened["observed"] >= 150 and opened["baseline"] < 30
    assert opened["severity"] == "critical"
    assert opened["negative_share"] > 0.6 and opened["baseline_negative_share"] < 0.35
    assert 0.5 <= opened["score"] <= 1.0
    assert 1 <= len(opened["sample_post_ids"]) == len(opened["sample_texts"]) <= 5
    assert ["蝗虫", opened["observed"]] in opened["top_terms"] and len(opened["top_terms"]) <= 10
    assert opened["opened_at"] == opened["updated_at"] == "2026-01-05T01:00:00Z"


def test_replay_of_the_same_posts_reproduces_alerts_exactly():
    stream = _posts()
    assert _run(AlertEngine([_watch()]), stream) == _run(AlertEngine([_watch()]), stream)


def test_restoring_persisted_state_mid_stream_reproduces_alerts():
    stream = _posts()
    uninterrupted = _run(AlertEngine([_watch()]), stream)
    cut = len(stream) * 2 // 3
    first = AlertEngine([_watch()])
    head = [a for post in stream[:cut] for a in first.process(post)]
    restored = AlertEngine([_watch()], state=json.loads(json.dumps(first.to_state())))
    assert head + _run(restored, stream[cut:]) == uninterrupted


def test_state_of_a_watch_whose_rules_changed_is_discarded():
    engine = AlertEngine([_watch()])
    for post in _posts(hours=30, surge_hours=()):
        engine.process(post)
    changed = AlertEngine([_watch(resolve_after=5)], state=engine.to_state())
    assert changed.monitors[0].groups == {} and changed.monitors[0].windows.max_event_time is None
    same = AlertEngine([_watch()], state=engine.to_state())
    assert same.monitors[0].groups.keys() == engine.monitors[0].groups.keys()


def test_quiet_stream_raises_no_alert_and_advance_closes_idle_windows():
    engine = AlertEngine([_watch()])
    assert _run(engine, _posts(surge_hours=())) == []
    engine = AlertEngine([_watch(window="1h", allowed_lateness=0)])
    engine.process({"id": "1", "text": "locusts", "created_at": T0})
    assert engine.monitors[0].windows._open
    engine.advance((T0 + timedelta(hours=3)).timestamp())
    assert engine.monitors[0].groups[("hk", "all")].detectors["volume"].to_state()["buckets"][0]["ewma"]["n"] == 3


def test_late_posts_are_counted_not_alerted():
    engine = AlertEngine([_watch(allowed_lateness=0)])
    engine.process({"id": "1", "text": "x", "created_at": T0 + timedelta(hours=2)})
    engine.process({"id": "2", "text": "locust", "created_at": T0})
    assert engine.late_dropped == 1


def test_shipped_hk_watch_raises_one_alert_for_a_locust_surge():
    watches = load_watches(Path(__file__).resolve().parents[3] / "models" / "watches")
    alerts = [a for a in _run(AlertEngine(watches), _posts()) if a["watch"] == "hk_mainland_tourists"]
    assert [a["state"] for a in alerts if a["state"] != "updated"] == ["open", "resolved"]
    assert alerts[0]["window_start"] == "2026-01-05T00:00:00Z"
