"""Evaluators against independent references, and eval.py's errors and --compare."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from errors import UserError
from evaluators import fewshot, knn, linear_probe, sgd_probe
from studies import report


def _planted(n: int, d: int = 8, classes: int = 3, seed: int = 0):
    """Features with classes separated by a planted linear map (margin, no label noise)."""
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(d, classes))
    x = rng.normal(size=(4 * n, d)).astype(np.float32)
    scores = x @ w
    top2 = np.sort(scores, 1)[:, -2:]
    keep = (top2[:, 1] - top2[:, 0]) > 0.5  # a margin, so a linear probe can be exact
    return x[keep][:n], np.argmax(scores[keep], 1)[:n].astype(np.int32)


def test_linear_probe_recovers_a_planted_separation_and_chooses_l2_without_test():
    x, y = _planted(700)
    train_x, train_y, test_x, test_y = x[:500], y[:500], x[500:], y[500:]
    grid = [1e-4, 1e-2, 10.0]
    r = linear_probe.evaluate(train_x, train_y, test_x, test_y, 3, grid, steps=50)
    assert r["top1"] > 95, r
    assert r["l2"] != 10.0  # a strength that crushes the weights loses on validation
    # Corrupted test labels and features change the test score, never the choice.
    rng = np.random.default_rng(1)
    bad = linear_probe.evaluate(train_x, train_y, rng.normal(size=test_x.shape).astype(np.float32),
                                rng.integers(0, 3, len(test_y)), 3, grid, steps=50)
    assert bad["l2"] == r["l2"] and bad["val_top1"] == r["val_top1"]
    assert bad["top1"] < 60


def test_fewshot_ridge_matches_numpy_closed_form():
    rng = np.random.default_rng(0)
    for n, d in ((12, 30), (40, 6)):  # fewer points than features, and more
        x = rng.normal(size=(n, d)).astype(np.float32)
        y = rng.integers(0, 4, n)
        test = rng.normal(size=(50, d)).astype(np.float32)
        # Reference: least squares on the stacked system [X; sqrt(l2) I] W = [Y; 0].
        mean, std = x.mean(0), x.std(0) + 1e-5
        design = lambda a, m=mean, s=std: np.hstack([(a - m) / s, np.full((len(a), 1), 100.0)])  # noqa: E731
        targets = 2.0 * np.eye(4)[y] - 1.0
        l2 = 3.0
        a = np.vstack([design(x), np.sqrt(l2) * np.eye(d + 1)])
        b = np.vstack([targets, np.zeros((d + 1, 4))])
        w = np.linalg.lstsq(a.astype(np.float64), b, rcond=None)[0]
        expected = np.argmax(design(test) @ w, 1)
        np.testing.assert_array_equal(fewshot.fit_predict(x, y, test, 4, l2), expected)


def test_fewshot_draws_k_shots_per_class_and_reports_mean_and_std():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, 300)
    one, five = (fewshot.shot_indices(labels, 5, k, seed=2) for k in (1, 5))
    assert np.bincount(labels[five], minlength=5).tolist() == [5] * 5
    assert set(one) <= set(five)  # nested, as big_vision's
    x, y = _planted(400, classes=5)
    r = fewshot.evaluate(x[:300], y[:300], x[300:], y[300:], 5, shots=(1, 25), seeds=3)
    for k, shots in (("1shot", 1), ("25shot", 25)):
        # Seed s draws its own shots (shot_indices with seed s) and scores the whole test set;
        # fit_predict itself is checked against NumPy's least squares above.
        want = [100 * np.mean(fewshot.fit_predict(
            x[:300][idx], y[:300][idx], x[300:], 5, r["l2"]) == y[300:])
            for idx in (fewshot.shot_indices(y[:300], 5, shots, seed) for seed in range(3))]
        np.testing.assert_allclose(r[k]["per_seed"], want)
        assert r[k]["top1"] == pytest.approx(np.mean(want))
        assert r[k]["std"] == pytest.approx(np.std(want))
    assert len(set(r["1shot"]["per_seed"])) > 1  # the seeds draw different shots
    assert r["25shot"]["top1"] > r["1shot"]["top1"]


def test_knn_matches_a_brute_force_loop():
    rng = np.random.default_rng(0)
    train_x = rng.normal(size=(60, 5)).astype(np.float32)
    train_y = rng.integers(0, 3, 60)
    test_x = rng.normal(size=(25, 5)).astype(np.float32)
    k, t = 7, 0.07
    expected = []
    for q in test_x:
        sims = [float(q @ v / (np.linalg.norm(q) * np.linalg.norm(v))) for v in train_x]
        votes = np.zeros(3)
        for i in np.argsort(sims)[::-1][:k]:
            votes[train_y[i]] += np.exp(sims[i] / t)
        expected.append(int(np.argmax(votes)))
    pred = knn.predict(train_x, train_y, test_x, 3, k=k, temperature=t, tile=8)
    np.testing.assert_array_equal(pred, expected)
    # Training points in chunks (the last one padded), as for ImageNet: the same neighbours.
    for chunk in (16, 5, 60):
        np.testing.assert_array_equal(
            knn.predict(train_x, train_y, test_x, 3, k=k, temperature=t, tile=8, chunk=chunk),
            expected)


def test_sgd_probe_learns_a_planted_separation_with_step_decay():
    x, y = _planted(400)
    r = sgd_probe.evaluate(sgd_probe.fixed_features, x[:300], y[:300], x[300:], y[300:], 3,
                           augment=False, epochs=20, lr=0.1, milestones=(12, 16), batch_size=64)
    assert r["top1"] > 90 and r["augmentation"] == "none (fixed features)"
    assert r["protocol"].startswith("GenRep")


def _write_eval(d, dataset="genviews_shapes", **parts):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "eval.json"), "w") as f:
        json.dump({"dataset": dataset, "step": 8, **parts}, f)


def test_compare_prints_one_table_and_names_a_dir_without_eval_json(tmp_path):
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    _write_eval(a, linear_probe={"top1": 40.0}, knn={"top1": 30.0},
                fewshot={"5shot": {"top1": 20.0, "std": 1.5}})
    _write_eval(b, linear_probe={"top1": 45.5}, knn={"top1": 33.0})
    table = report.compare([a, b])
    lines = table.splitlines()
    assert lines[0] == "| run | dataset | step | linear_probe | knn | fewshot_5shot |"
    assert lines[2] == f"| {a} | genviews_shapes | 8 | 40.00 | 30.00 | 20.00 ± 1.50 |"
    assert lines[3] == f"| {b} | genviews_shapes | 8 | 45.50 | 33.00 |  |"
    with pytest.raises(UserError, match="has no eval.json"):
        report.compare([a, str(tmp_path / "missing")])


def test_cli_errors_are_one_line(tmp_path, command_line):
    result = command_line("eval.py", "--compare", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"error: {tmp_path} has no eval.json: evaluate it "
                                                  f"first with python eval.py --workdir {tmp_path}"]
    result = command_line("eval.py", "--workdir", str(tmp_path))
    assert result.returncode == 2 and "is not a run directory" in result.stderr.strip().splitlines()[-1]
