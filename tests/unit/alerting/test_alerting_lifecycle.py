import json

import pytest

from pipeline.alerting.lifecycle import AlertLifecycle, WindowResult, alert_id, severity_for

SIZE = 3600


def _window(i, score, severity="warning", key="all"):
    return WindowResult(
        watch="w",
        key=key,
        window_start=i * SIZE,
        window_end=(i + 1) * SIZE,
        fires=score >= 0.5,
        score=score,
        severity=severity,
        observed=10,
        baseline=5.0,
        negative_share=0.1,
        baseline_negative_share=0.1,
    )


def _run(lifecycle, scores, severities=None, start=0):
    transitions = []
    for i, score in enumerate(scores):
        severity = severities[i] if severities else "warning"
        transition = lifecycle.step(_window(start + i, score, severity))
        if transition:
            transitions.append(transition)
    return transitions


def test_one_crisis_gives_one_open_and_one_resolve():
    lifecycle = AlertLifecycle(keep_score=0.3, resolve_after=3, update_every=100, cooldown=0)
    scores = [0.1, 0.8, 0.9, 0.95, 0.9, 0.1, 0.1, 0.1, 0.1]
    transitions = _run(lifecycle, scores)
    assert [t.state for t in transitions] == ["open", "resolved"]
    assert transitions[0].alert_id == transitions[1].alert_id == alert_id("w", "all", 1 * SIZE)
    assert transitions[0].opened_at == transitions[1].opened_at == 2 * SIZE
    assert transitions[1].updated_at == 8 * SIZE


def test_hysteresis_keeps_alert_open_while_score_stays_above_keep_level():
    lifecycle = AlertLifecycle(keep_score=0.3, resolve_after=2, update_every=100, cooldown=0)
    transitions = _run(lifecycle, [0.8, 0.4, 0.35, 0.45, 0.4, 0.2, 0.2])
    assert [(t.state, t.window.window_start) for t in transitions] == [("open", 0), ("resolved", 6 * SIZE)]


def test_updates_on_escalation_and_periodically_while_firing():
    lifecycle = AlertLifecycle(keep_score=0.3, resolve_after=2, update_every=3, cooldown=0)
    severities = ["warning", "warning", "critical", "critical", "critical", "critical", "info", "info", "info"]
    transitions = _run(lifecycle, [0.6, 0.6, 0.95, 0.9, 0.9, 0.9, 0.1, 0.1, 0.1], severities)
    assert [(t.state, t.severity) for t in transitions] == [
        ("open", "warning"),
        ("updated", "critical"),  # escalation
        ("updated", "critical"),  # 3 active windows later
        ("resolved", "critical"),
    ]


def test_cooldown_blocks_reopening_then_allows_a_new_alert():
    lifecycle = AlertLifecycle(keep_score=0.3, resolve_after=1, update_every=100, cooldown=3 * SIZE)
    flapping = [0.9, 0.1] * 6
    transitions = _run(lifecycle, flapping)
    opens = [t for t in transitions if t.state == "open"]
    assert [t.window.window_start // SIZE for t in opens] == [0, 6]  # resolved at end of window 1, cooldown 3h
    assert len({t.alert_id for t in opens}) == 2
    assert len([t for t in transitions if t.state == "resolved"]) == 2


def test_replay_produces_identical_transitions():
    scores = [0.2, 0.7, 0.9, 0.1, 0.1, 0.1, 0.8, 0.1, 0.1, 0.1]
    first = _run(AlertLifecycle(resolve_after=3, cooldown=SIZE), scores)
    second = _run(AlertLifecycle(resolve_after=3, cooldown=SIZE), scores)
    assert first == second and first


def test_state_round_trip_mid_alert():
    scores = [0.9, 0.9, 0.4, 0.1, 0.1, 0.1, 0.9]
    uninterrupted = _run(AlertLifecycle(resolve_after=3, cooldown=0), scores)
    first = AlertLifecycle(resolve_after=3, cooldown=0)
    head = _run(first, scores[:3])
    restored = AlertLifecycle.from_state(json.loads(json.dumps(first.to_state())))
    assert restored.is_open
    assert head + _run(restored, scores[3:], start=3) == uninterrupted


def test_alert_id_depends_on_watch_key_and_opening_window_only():
    assert alert_id("w", "all", 0) == alert_id("w", "all", 0)
    assert (
        len(
            {
                alert_id("w", "all", 0),
                alert_id("w", "all", 3600),
                alert_id("w", "country:HK", 0),
                alert_id("v", "all", 0),
            }
        )
        == 4
    )


@pytest.mark.parametrize(
    ("score", "observed", "baseline", "expected"),
    [
        (0.3, 10, 10.0, "info"),
        (0.6, 10, 10.0, "warning"),
        (0.3, 25, 10.0, "warning"),  # ratio 2.5
        (0.95, 10, 10.0, "critical"),
        (0.3, 60, 10.0, "critical"),  # ratio 6
        (0.3, 4, 0.0, "warning"),  # baseline floored at 1 post
        (0.3, 100, None, "info"),  # no baseline yet: score only
    ],
)
def test_severity_from_score_or_volume_ratio(score, observed, baseline, expected):
    assert severity_for(score, observed, baseline, 0.5, 0.9, 2.0, 5.0) == expected
