"""The prune command and the noisy-label study's pieces, on a smoke encoder."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from configs import real
from errors import UserError
from evaluators import prune
from tasks import loop


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory, tfds_dir):
    config = real.get_config("smoke")
    config.data.data_dir = tfds_dir
    config.train.steps = 0  # a random encoder: the command, not the features, is tested
    workdir = str(tmp_path_factory.mktemp("enc") / "enc")
    loop.train(config, workdir)
    return workdir


def _dataset_dir(tfds_dir: str) -> str:
    """genviews_shapes' prepared directory (NAME/CONFIG/VERSION), read as a TFDS dataset directory."""
    from data import shapes

    return str(shapes.builder("genviews_shapes", tfds_dir).data_dir)


def test_symmetric_noise_flips_exactly_the_rate_to_other_classes():
    labels = np.random.default_rng(0).integers(0, 10, 5000)
    noisy = prune.symmetric_noise(labels, 0.4, 10, seed=1)
    flipped = noisy != labels
    assert flipped.sum() == 2000  # exactly round(rate · n), never redrawn to the true class
    shift = (noisy[flipped] - labels[flipped]) % 10  # uniform over 1..9
    counts = np.bincount(shift, minlength=10)
    assert counts[0] == 0 and np.all(np.abs(counts[1:] - 2000 / 9) < 5 * np.sqrt(2000 / 9))
    np.testing.assert_array_equal(prune.symmetric_noise(labels, 0.0, 10, seed=1), labels)
    np.testing.assert_array_equal(prune.symmetric_noise(labels, 0.4, 10, seed=1), noisy)
    with pytest.raises(UserError, match="noise"):
        prune.symmetric_noise(labels, 1.0, 10, seed=0)


def test_budget_count():
    assert prune.budget_count(0.3, 200) == 60
    assert prune.budget_count(1.0, 200) == 200
    assert prune.budget_count(50, 200) == 50
    for bad in (0, -0.1, 201, 2.5):
        with pytest.raises(UserError, match="budget"):
            prune.budget_count(bad, 200)


def test_prune_command_on_a_dataset_directory(encoder_dir, tfds_dir, tmp_path):
    out = str(tmp_path / "out")
    prune.main(["--encoder", encoder_dir, "--dataset", _dataset_dir(tfds_dir), "--max_examples", "200",
                "--budget", "0.25", "--gain", "full", "--noise", "0.2", "--out", out])
    idx = np.load(os.path.join(out, "indices.npy"))
    labels = np.load(os.path.join(out, "labels.npy"))
    with open(os.path.join(out, "summary.json")) as f:
        summary = json.load(f)
    assert len(idx) == 50 and len(set(idx.tolist())) == 50 and 0 <= idx.min() and idx.max() < 200
    assert summary["n"] == 200 and summary["budget"] == 50
    assert summary["clean_fraction_all"] == 0.8
    # Balanced: classes are taken in turn over the noisy labels (each has ≥ 5 examples here).
    assert np.bincount(labels[idx], minlength=10).tolist() == summary["per_class"] == [5] * 10
    assert 0 < summary["mean_confidence_all"] <= 1 and 0 < summary["mean_confidence_selected"] <= 1


def test_random_subset_keeps_every_row_equally_often():
    # Over many seeds each of n rows is kept with probability count / n: a chi-square test
    # of the inclusion counts against that uniform expectation (scipy's, independent).
    from scipy import stats

    n, count, seeds = 40, 10, 2000
    kept = np.zeros(n)
    for seed in range(seeds):
        rows = prune.random_subset(n, count, seed)
        assert len(rows) == len(set(rows.tolist())) == count
        kept[rows] += 1
    assert stats.chisquare(kept).pvalue > 1e-3, kept
    # and a biased rule fails it: the first half twice as likely as the second
    biased = np.where(np.arange(n) < n // 2, 2.0, 1.0) * kept.sum() / (1.5 * n)
    assert stats.chisquare(np.round(biased)).pvalue < 1e-3


def test_prune_command_random_method_is_the_seeded_subset(encoder_dir, tfds_dir, tmp_path):
    out = str(tmp_path / "random")
    prune.main(["--encoder", encoder_dir, "--dataset", _dataset_dir(tfds_dir), "--max_examples", "200",
                "--budget", "1.0", "--method", "random", "--seed", "3", "--noise", "0.2", "--out", out])
    idx = np.load(os.path.join(out, "indices.npy"))
    # Budget 1 is the whole set, in a seeded random order, under the same noisy labels.
    assert sorted(idx.tolist()) == list(range(200)) and idx.tolist() != list(range(200))
    np.testing.assert_array_equal(idx, np.random.default_rng([3, 1]).permutation(200))
    from data import datasets

    clean = datasets.load(_dataset_dir(tfds_dir), "train", image_size=32, max_examples=200).labels
    assert np.mean(np.load(os.path.join(out, "labels.npy")) != clean) == 0.2
    assert json.loads(open(os.path.join(out, "summary.json")).read())["method"] == "random"


def test_noisy_label_study_writes_its_table(encoder_dir, tfds_dir, tmp_path):
    from studies import prune as prune_study

    out = tmp_path / "study"
    prune_study.main(["--encoder", encoder_dir, "--data_dir", tfds_dir, "--max_train", "200",
                      "--max_test", "50", "--noise", "0.2", "--budgets", "0.5", "--out", str(out)])
    results = json.loads((out / "results.json").read_text())
    rows = {r["method"]: r for r in results["rows"]}
    assert set(rows) == {"whole set", *prune_study.METHODS}
    assert rows["whole set"]["n"] == 200 and rows["whole set"]["clean_fraction"] == 0.8
    assert all(r["n"] == 100 and 0 <= r["test_top1"] <= 100 for m, r in rows.items() if m != "whole set")
    assert results["command"].startswith("python -m studies.prune --encoder")
    assert (out / "results.png").exists() and "| 20% | 50% |" in (out / "results.md").read_text()
    from studies import report  # and which machine the numbers came from

    assert results["machine"]["devices"] == 1 and results["machine"]["cpu"]
    assert report.machine_line(results["machine"]) in (out / "results.md").read_text()


def test_prune_command_errors(encoder_dir, tfds_dir, tmp_path, capsys):
    def fails(*args):
        with pytest.raises(SystemExit) as e:
            prune.main(["--dataset", "genviews_shapes", "--data_dir", tfds_dir, "--max_examples", "50",
                        "--out", str(tmp_path / "o"), *args])
        assert e.value.code == 2
        return capsys.readouterr().err

    assert "no such run directory" in fails("--encoder", str(tmp_path / "missing"), "--budget", "0.5")
    assert "≤ n = 50" in fails("--encoder", encoder_dir, "--budget", "60")
    assert "--gain" in fails("--encoder", encoder_dir, "--budget", "0.5", "--gain", "best")
    assert "tau" in fails("--encoder", encoder_dir, "--budget", "0.5", "--tau", "2")
    assert "--method" in fails("--encoder", encoder_dir, "--budget", "0.5", "--method", "best")
    assert not os.path.exists(tmp_path / "o")


def test_pruning_generated_views_before_contrastive_training(encoder_dir, tmp_path):
    import jax

    from data import export
    from models import generators
    from studies import prune as prune_study

    g = generators.build("dcgan", {"z_dim": 16, "num_classes": 10, "resolution": 32, "width": 8})
    generators.save(str(tmp_path / "g"), g, jax.jit(g.init)(jax.random.key(0)))
    exported = str(tmp_path / "export")
    export.export(str(tmp_path / "g"), exported, export.ExportSpec(num_anchors=20, num_views=2, seed=1))
    out = tmp_path / "study"
    kwargs = dict(steps=1, batch=8, noise_rates=(0.2,), budgets=(0.5,), smoke=True)
    results = prune_study.run_generated(encoder_dir, exported, str(out), **kwargs)
    rows = {r["method"]: r for r in results["rows"]}
    assert set(rows) == {"whole set", *prune_study.METHODS}
    assert rows["whole set"]["n"] == 20 and rows["whole set"]["clean_fraction"] == 0.8
    labels = export.read(exported)["label"]
    for method in prune_study.METHODS:
        subset = out / "subsets" / f"noise0.2_budget0.5_{method}"
        idx, noisy = np.load(subset / "indices.npy"), np.load(subset / "labels.npy")
        assert len(set(idx.tolist())) == 10 == rows[method]["n"]
        assert np.mean(noisy != labels) == 0.2  # the noisy labels of all 20 anchors
        assert rows[method]["clean_fraction"] == np.mean(noisy[idx] == labels[idx])
        # Each row's encoder trained on its subset, with those labels, and was probed.
        run = out / "runs" / f"noise0.2_budget0.5_{method}"
        assert json.loads((run / "config.json").read_text())["data"]["subset"] == str(subset)
        assert 0 <= rows[method]["test_top1"] <= 100
    # A rerun keeps the finished runs; other settings in the same OUT are refused.
    again = prune_study.run_generated(encoder_dir, exported, str(out), **kwargs)
    assert [r["test_top1"] for r in again["rows"]] == [r["test_top1"] for r in results["rows"]]
    with pytest.raises(UserError, match="other settings \\(steps\\)"):
        prune_study.run_generated(encoder_dir, exported, str(out), **{**kwargs, "steps": 2})
