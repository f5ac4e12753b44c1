import math
from datetime import datetime, timedelta, timezone

import pytest

from pipeline.alerting import nab

COST = nab.CostMatrix(tp_weight=1.0, fp_weight=0.11, fn_weight=1.0)
T0 = datetime(2015, 3, 1, tzinfo=timezone.utc)
ROWS = 1000  # probation = 150 rows
TIMES = [T0 + timedelta(minutes=5 * i) for i in range(ROWS)]
WINDOW = (TIMES[400], TIMES[599])  # 200 rows


def _detections(*rows):
    flags = [False] * ROWS
    for row in rows:
        flags[row] = True
    return flags


def _score(*rows, windows=(WINDOW,), cost=COST):
    return nab.score_detections(TIMES, _detections(*rows), list(windows), cost)


def test_scaled_sigmoid_shape():
    assert nab.scaled_sigmoid(-1.0) == pytest.approx(2 / (1 + math.exp(-5)) - 1)
    assert nab.scaled_sigmoid(0.0) == 0.0
    assert nab.scaled_sigmoid(1.0) == pytest.approx(-nab.scaled_sigmoid(-1.0))
    assert nab.scaled_sigmoid(3.0) == -1.0


def test_probation_is_15_percent_capped_at_750_rows():
    assert nab.probation_length(100) == 15
    assert nab.probation_length(15903) == 750


def test_detection_at_window_start_earns_full_tp_weight():
    assert _score(400).raw == pytest.approx(COST.tp_weight)


def test_detection_at_window_end_earns_almost_nothing():
    assert 0.0 < _score(599).raw < 0.02


def test_missed_window_costs_fn_weight():
    result = _score()
    assert result.raw == -COST.fn_weight and result.false_negatives == 1


def test_only_earliest_detection_in_a_window_counts():
    assert _score(420, 430, 470, 599).raw == pytest.approx(_score(420).raw)
    assert _score(420).raw > _score(450).raw


def test_false_positive_before_any_window_costs_full_fp_weight():
    result = _score(200)
    assert result.raw == pytest.approx(-COST.fn_weight - COST.fp_weight)
    assert result.false_positives == 1


def test_false_positive_just_after_window_costs_less_than_far_after():
    near, far = _score(400, 620).raw - _score(400).raw, _score(400, 999).raw - _score(400).raw
    assert -COST.fp_weight < far < near < 0
    assert far == pytest.approx(COST.fp_weight * nab.scaled_sigmoid(400 / 199))  # 400 rows = 2 window widths past


def test_probation_rows_are_not_scored():
    assert _score(3, 100, 149).raw == _score().raw
    in_probation_window = (TIMES[50], TIMES[100])
    assert _score(windows=[in_probation_window]).raw == 0.0


def test_profile_weights_scale_contributions():
    heavy = nab.CostMatrix(tp_weight=1.0, fp_weight=0.22, fn_weight=2.0)
    assert _score(windows=[WINDOW], cost=heavy).raw == -2.0
    assert _score(200, cost=heavy).raw == pytest.approx(-2.0 - 0.22)


def test_normalisation_maps_null_to_0_and_perfect_to_100():
    null = _score().raw
    perfect = nab.perfect_score(1, COST)
    assert _score(400).raw == pytest.approx(perfect)
    assert nab.normalised_score(null, null, perfect) == 0.0
    assert nab.normalised_score(_score(400).raw, null, perfect) == pytest.approx(100.0)
    assert 0 < nab.normalised_score(_score(500).raw, null, perfect) < 100


def test_window_labels_mark_rows_inside_windows():
    labels = nab.window_labels(TIMES, [WINDOW])
    assert sum(labels) == 200 and labels[400] == labels[599] == 1 and labels[600] == 0


def test_loaders_read_nab_formats(tmp_path):
    (tmp_path / "realTweets").mkdir()
    (tmp_path / "realTweets" / "x.csv").write_text("timestamp,value\n2015-03-01 00:00:00,3\n2015-03-01 00:05:00,4\n")
    (tmp_path / "windows.json").write_text(
        '{"realTweets/x.csv": [["2015-03-01 00:00:00.000000", "2015-03-01 00:05:00.000000"]]}'
    )
    (tmp_path / "profiles.json").write_text(
        '{"standard": {"CostMatrix": {"tpWeight": 1.0, "fnWeight": 1.0, "fpWeight": 0.11, "tnWeight": 1.0}}}'
    )
    series = nab.load_series(tmp_path, "realTweets/x.csv")
    assert series.values == [3.0, 4.0]
    assert nab.load_windows(tmp_path / "windows.json")["realTweets/x.csv"] == [
        (series.timestamps[0], series.timestamps[1])
    ]
    assert nab.load_profiles(tmp_path / "profiles.json") == {"standard": COST}
