"""A study row over seeds, and the 2-standard-error rule of its reading."""

from __future__ import annotations

import math

import pytest

from studies import report


def _row(name, values):
    seeds = [{"seed": i, "linear_probe_top1": v, "knn_top1": v / 2, "wall_s": 10.0}
             for i, v in enumerate(values)]
    return {"run": name, **report.over_seeds(seeds)}


def test_mean_std_and_each_seed_are_kept():
    row = _row("a", [40.0, 42.0, 47.0])
    assert row["linear_probe_top1"] == pytest.approx(43.0)
    # sample standard deviation (ddof = 1): sqrt(((−3)² + (−1)² + 4²) / 2)
    assert row["linear_probe_std"] == pytest.approx(math.sqrt(13.0))
    assert row["knn_top1"] == pytest.approx(21.5)
    assert [s["linear_probe_top1"] for s in row["seeds"]] == [40.0, 42.0, 47.0]


def test_one_seed_is_left_as_it_is():
    row = _row("a", [40.0])
    assert row["linear_probe_top1"] == 40.0 and "linear_probe_std" not in row


def test_difference_and_its_standard_error():
    a, b = _row("a", [50.0, 52.0, 54.0]), _row("b", [40.0, 41.0, 42.0])
    diff, se = report.difference(a, b)
    assert diff == pytest.approx(11.0)
    assert se == pytest.approx(math.sqrt(4.0 / 3 + 1.0 / 3))
    assert "resolved" in report.reading(a, b) and "not resolved" not in report.reading(a, b)


def test_a_difference_within_two_standard_errors_is_not_resolved():
    a, b = _row("a", [50.0, 40.0, 45.0]), _row("b", [44.0, 46.0, 42.0])
    diff, se = report.difference(a, b)
    assert abs(diff) < 2 * se
    assert "not resolved" in report.reading(a, b)
    assert "not resolved" in report.reading(_row("a", [50.0]), _row("b", [10.0]))
