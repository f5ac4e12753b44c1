import json
import random

import pytest

from pipeline.alerting.detectors import (
    AdaptiveBaseline,
    Cusum,
    ShareSurge,
    StaticThreshold,
    detector_from_state,
    squash,
)

HOUR = 3600


def _poisson_like(rng: random.Random, mean: float) -> int:
    return max(0, round(rng.gauss(mean, mean**0.5)))


def _series(seed=7, quiet=200, surge=0, after=0, level=20.0, surge_level=120.0):
    rng = random.Random(seed)
    return (
        [_poisson_like(rng, level) for _ in range(quiet)]
        + [_poisson_like(rng, surge_level) for _ in range(surge)]
        + [_poisson_like(rng, level) for _ in range(after)]
    )


def _run(detector, values):
    return [detector.update(v, ts=i * HOUR) for i, v in enumerate(values)]


VOLUME_DETECTORS = [
    lambda: AdaptiveBaseline(method="ewma", alpha=0.05, z_threshold=4.0, warmup=24),
    lambda: AdaptiveBaseline(method="mad", history=72, z_threshold=4.0, warmup=24),
    lambda: AdaptiveBaseline(method="ewma", alpha=0.2, z_threshold=4.0, warmup=3, seasonal=True),
    lambda: Cusum(alpha=0.05, drift=1.0, threshold=8.0, warmup=24),
]


@pytest.mark.parametrize("make", VOLUME_DETECTORS)
def test_flat_series_never_fires(make):
    detections = _run(make(), _series(quiet=24 * 20))
    assert not any(d.fires for d in detections)
    assert all(0.0 <= d.score < 0.5 for d in detections)


@pytest.mark.parametrize("make", VOLUME_DETECTORS)
def test_step_surge_fires_quickly_and_recovers(make):
    quiet, surge = 24 * 10, 6
    detections = _run(make(), _series(quiet=quiet, surge=surge, after=72))
    assert not any(d.fires for d in detections[:quiet])
    assert any(d.fires for d in detections[quiet : quiet + 2])
    assert all(d.score > 0.5 for d in detections[quiet : quiet + 2] if d.fires)
    assert not any(d.fires for d in detections[quiet + surge + 12 :])


def test_baseline_does_not_chase_the_surge():
    detector = AdaptiveBaseline(method="ewma", alpha=0.1, z_threshold=4.0, warmup=24)
    detections = _run(detector, _series(quiet=100, surge=10))
    assert all(d.fires for d in detections[100:110])
    assert detections[-1].expected < 40


def test_seasonal_baseline_accepts_a_daily_peak_that_a_flat_one_flags():
    rng = random.Random(3)
    values = [_poisson_like(rng, 100.0 if i % 24 == 12 else 10.0) for i in range(24 * 21)]
    seasonal = _run(AdaptiveBaseline(alpha=0.2, warmup=5, seasonal=True), values)
    flat = _run(AdaptiveBaseline(alpha=0.05, warmup=24), values)
    assert not any(d.fires for d in seasonal[24 * 7 :])
    assert any(d.fires for d in flat[24 * 7 :])


def test_min_count_suppresses_surges_of_a_few_posts():
    detector = AdaptiveBaseline(alpha=0.1, warmup=10, min_count=10, min_std=0.1)
    for _ in range(30):
        detector.update(0)
    assert not detector.update(5).fires
    assert detector.update(40).fires


def test_score_does_not_learn_but_update_does():
    detector = AdaptiveBaseline(alpha=0.5, warmup=2)
    for v in [10, 10, 10]:
        detector.update(v)
    before = detector.to_state()
    first = detector.score(30)
    assert detector.to_state() == before
    assert detector.score(30) == first
    detector.update(30)
    assert detector.to_state() != before


def test_static_threshold_fires_at_threshold_with_score_one_half():
    detector = StaticThreshold(50)
    assert not detector.update(49).fires
    hit = detector.update(50)
    assert hit.fires and hit.score == pytest.approx(0.5)
    assert detector.update(500).score > 0.95


def test_squash_is_monotone_in_unit_interval():
    values = [squash(x, 4.0) for x in [-1, 0, 1, 4, 8, 100]]
    assert values == sorted(values)
    assert values[0] == 0.0 and values[3] == 0.5 and values[-1] < 1.0


def test_negative_share_needs_enough_posts():
    detector = ShareSurge(alpha=0.1, z_threshold=3.0, warmup=10, min_count=10, min_share=0.3)
    rng = random.Random(5)
    for _ in range(40):
        n = 50
        negatives = sum(rng.random() < 0.1 for _ in range(n))
        assert not detector.update(negatives / n, count=n).fires
    assert not detector.update(1.0, count=1).fires  # 1 of 1 negative is noise
    surge = detector.update(0.7, count=60)
    assert surge.fires and surge.expected == pytest.approx(0.1, abs=0.05)


def test_negative_share_below_min_share_never_fires():
    detector = ShareSurge(alpha=0.1, warmup=5, min_count=10, min_share=0.3, min_std=0.001)
    for _ in range(20):
        detector.update(0.01, count=1000)
    assert not detector.update(0.2, count=1000).fires


def test_share_surge_requires_a_count():
    with pytest.raises(ValueError):
        ShareSurge().update(0.5)


@pytest.mark.parametrize(
    "make",
    [
        *VOLUME_DETECTORS,
        lambda: AdaptiveBaseline(method="mad", history=30, warmup=5, seasonal=True),
        lambda: StaticThreshold(30),
    ],
)
def test_state_round_trip_through_json_continues_identically(make):
    values = _series(quiet=60, surge=3, after=20)
    original = make()
    _run(original, values[:50])
    restored = detector_from_state(json.loads(json.dumps(original.to_state())))
    assert type(restored) is type(original)
    tail = [(i + 50) * HOUR for i in range(len(values) - 50)]
    assert [original.update(v, ts=t) for v, t in zip(values[50:], tail, strict=True)] == [
        restored.update(v, ts=t) for v, t in zip(values[50:], tail, strict=True)
    ]


def test_share_surge_state_round_trip():
    detector = ShareSurge(warmup=2, min_count=1)
    for share in [0.1, 0.2, 0.15]:
        detector.update(share, count=20)
    restored = detector_from_state(json.loads(json.dumps(detector.to_state())))
    assert restored.update(0.8, count=20) == detector.update(0.8, count=20)


def test_seasonal_detector_needs_a_timestamp():
    with pytest.raises(ValueError):
        AdaptiveBaseline(seasonal=True).update(3)
