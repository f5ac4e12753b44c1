"""The counting histogram exposes what prometheus_client's Histogram would for the same observations."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram, generate_latest

from pipeline.sinks.metrics import CountingHistogram

BUCKETS = (0.5, 1, 2)


def test_an_observation_with_a_count_is_that_many_observations():
    ours, reference = CollectorRegistry(), CollectorRegistry()
    counting = CountingHistogram("latency_seconds", "doc", BUCKETS, registry=ours)
    plain = Histogram("latency_seconds", "doc", buckets=BUCKETS, registry=reference)
    for value, count in [(0.2, 3), (0.5, 2), (1.5, 1), (7.0, 4)]:  # 0.5 sits on a bound: le is inclusive
        counting.observe(value, count)
        for _ in range(count):
            plain.observe(value)

    def samples(registry: CollectorRegistry) -> list[str]:
        return [line for line in generate_latest(registry).decode().splitlines() if "latency_seconds_created" not in line]

    assert samples(ours) == samples(reference)
