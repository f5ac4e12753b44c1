import json

from pipeline.alerting.terms import terms, top_terms
from pipeline.alerting.windows import EventClock, TumblingWindows, window_start

GROUP = ("w", "all")


def _summary(closed):
    return [(w.group, w.stats.start, w.stats.count, w.stats.negative_count, w.stats.sample_post_ids) for w in closed]


def test_window_start_aligns_to_multiples_of_size():
    assert window_start(3599.9, 3600) == 0
    assert window_start(3600, 3600) == 3600
    assert window_start(7261, 600) == 7200


def arrive(windows: TumblingWindows, ts: float, post_id: str) -> bool:
    """A post arriving in order: event time moves to it, then it is counted."""
    windows.observe(ts)
    return windows.add(GROUP, ts, post_id, "x", 0.0, False)


def test_window_closes_only_when_watermark_passes_its_end():
    windows = TumblingWindows(size=60, allowed_lateness=30)
    arrive(windows, 10, "a")
    arrive(windows, 85, "b")  # watermark 55 < end 60
    assert windows.close_ready() == []
    arrive(windows, 95, "c")  # watermark 65 >= 60
    closed = windows.close_ready()
    assert [(w.stats.start, w.stats.end, w.stats.count) for w in closed] == [(0, 60, 1)]


def test_late_posts_within_lateness_count_and_beyond_are_dropped():
    windows = TumblingWindows(size=60, allowed_lateness=30)
    arrive(windows, 80, "a")
    assert windows.add(GROUP, 50, "late-ok", "x", 0.0, False)  # window [0,60) still open (watermark 50)
    arrive(windows, 200, "b")
    closed = windows.close_ready()
    assert closed[0].stats.sample_post_ids == ["late-ok"]
    assert not windows.add(GROUP, 59, "too-late", "x", 0.0, False)
    assert windows.late_dropped == 1


def test_gaps_produce_empty_windows_for_the_detectors():
    windows = TumblingWindows(size=60, allowed_lateness=0)
    windows.add(GROUP, 0, "a", "x", 0.0, False)
    windows.observe(300)  # event time moves on through other posts
    assert [(w.stats.start, w.stats.count) for w in windows.close_ready()] == [
        (0, 1),
        (60, 0),
        (120, 0),
        (180, 0),
        (240, 0),
    ]


def test_counts_negatives_sentiment_and_keeps_most_negative_samples():
    windows = TumblingWindows(size=60, allowed_lateness=0, max_samples=2)
    for i, sentiment in enumerate([0.5, -0.9, -0.1, -0.9]):
        windows.add(GROUP, i, f"p{i}", f"t{i}", sentiment, sentiment < -0.5)
    (window,) = windows.flush()
    stats = window.stats
    assert (stats.count, stats.negative_count, stats.negative_share) == (4, 2, 0.5)
    assert abs(stats.mean_sentiment - (-1.4 / 4)) < 1e-9
    assert stats.sample_post_ids == ["p1", "p3"]  # most negative, earliest first on ties


def _feed(windows, events):
    closed = []
    for ts, group, post_id in events:
        windows.add(group, ts, post_id, f"text {post_id}", -0.5, True)
        closed += windows.close_ready()
    return closed + windows.flush()


EVENTS = [
    (t, ("w", k), f"{k}{t}")
    for t, k in [(5, "a"), (70, "b"), (65, "a"), (130, "a"), (400, "b"), (410, "a"), (405, "b")]
]


def test_same_input_order_gives_identical_windows():
    assert _summary(_feed(TumblingWindows(60, 10), EVENTS)) == _summary(_feed(TumblingWindows(60, 10), EVENTS))


def test_state_round_trip_mid_stream_continues_identically():
    uninterrupted = _summary(_feed(TumblingWindows(60, 10), EVENTS))
    first = TumblingWindows(60, 10)
    closed = _feed_no_flush(first, EVENTS[:4])
    restored = TumblingWindows.from_state(json.loads(json.dumps(first.to_state())))
    assert _summary(closed + _feed(restored, EVENTS[4:])) == uninterrupted


def _feed_no_flush(windows, events):
    closed = []
    for ts, group, post_id in events:
        windows.add(group, ts, post_id, f"text {post_id}", -0.5, True)
        closed += windows.close_ready()
    return closed


def test_closed_windows_are_ordered_by_start_then_group():
    closed = _feed(TumblingWindows(60, 0), EVENTS)
    keys = [(w.stats.start, w.group) for w in closed]
    assert keys == sorted(keys)


def test_terms_are_cjk_bigrams_and_words_without_stopwords():
    assert terms("香港的游客 and THE Locusts") == ["香港", "游客", "locusts"]
    assert terms("Гонконг и туристы") == ["гонконг", "туристы"]


def test_top_terms_from_window_ranked_by_count_then_alphabetically():
    windows = TumblingWindows(size=60, allowed_lateness=0)
    windows.add(GROUP, 1, "a", "Raw Text", 0.0, False, content_terms=terms("visa visa embassy"))
    windows.add(GROUP, 2, "b", "Raw", 0.0, False, content_terms=terms("embassy visa consul"))
    (window,) = windows.flush()
    assert window.stats.top_terms(2) == [("visa", 3), ("embassy", 2)]
    assert window.stats.sample_texts == ["Raw Text", "Raw"]
    assert top_terms(window.stats.term_counts, 10)[-1] == ("consul", 1)


def test_window_result_does_not_depend_on_arrival_order():
    """Live and backtest read the same posts in different orders; the window must come out the same."""
    posts = [(f"p{i}", -0.5 if i % 2 else -0.9, f"text {i}") for i in range(12)]

    def closed(order):
        windows = TumblingWindows(3600, 0, 3)
        for post_id, sentiment, text in order:
            windows.observe(100.0)
            windows.add(("w", "all"), 100.0, post_id, text, sentiment, sentiment < -0.25, content_terms=terms(text))
        (window,) = windows.flush()
        return window.stats.sample_post_ids, window.stats.top_terms(5), window.stats.count

    assert closed(posts) == closed(list(reversed(posts)))


def test_event_clock_waits_for_the_slowest_lane():
    """A partition read ahead must not make the other partitions' posts late."""
    clock = EventClock(lanes=["0", "1"])
    clock.observe(1000, "0")
    assert clock.low is None  # lane 1 has said nothing yet
    clock.observe(100, "1")
    assert clock.low == 100
    clock.observe(5000, "0")
    assert clock.low == 100
    clock.retire("1")  # lane 1 went quiet: it stops holding time back
    assert clock.low == 5000
    clock.observe(200, "1")  # ... until it delivers again
    assert clock.low == 200
    clock.advance(9000)  # the whole stream is quiet
    assert clock.low == 9000
    again = EventClock.from_state(clock.to_state(), ["0", "1"])
    assert again.low == clock.low and again.newest == clock.newest


def test_windows_close_once_the_watermark_passes_their_end_also_after_a_restore():
    """The early exit of close_ready (nothing can close yet) must never hold back a due window."""
    windows = TumblingWindows(size=60, allowed_lateness=0)
    arrive(windows, 10, "a")
    arrive(windows, 59, "b")
    assert windows.close_ready() == []
    restored = TumblingWindows.from_state(json.loads(json.dumps(windows.to_state())))
    for copy in (windows, restored):
        arrive(copy, 61, "c")  # the watermark reaches 61: [0, 60) is due
        assert [(w.stats.start, w.stats.count) for w in copy.close_ready()] == [(0, 2)]
        arrive(copy, 200, "d")  # [60, 120) with c, then the empty [120, 180)
        assert [(w.stats.start, w.stats.count) for w in copy.close_ready()] == [(60, 1), (120, 0)]
