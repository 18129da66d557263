"""The noisy-label study of Prune4ReL on the embedded default (issue 8).

    python -m evaluators.prune_study --encoder runs/quickstart/real_simclr --out results/prune4rel

Labels of the train split get synthetic symmetric noise (`prune.symmetric_noise`,
20% and 40%); at each budget (10%, 30%, 50% of train) a classifier is trained on
the Prune4ReL subset (gain self and gain full), on a uniform random subset of the
same size, and on the whole noisy set, and tested on the clean test labels.

The classifier is softmax regression on the frozen, standardised features of one
encoder (`evaluators.linear_probe.evaluate`: L2 chosen on a validation part of the
subset, whose labels are as noisy as the rest), not a network trained from
scratch, and no re-labeling learner is run on the subset as in the paper: the
study measures which examples a selection keeps, with the cheapest learner.
Prune4ReL's embeddings and confidences (the max softmax of a probe fit on the
whole noisy set) come from the same features. The greedy is stopped at the
largest budget; smaller budgets are its prefixes (the greedy's first picks do not
depend on when it stops). Writes results.json, results.md and results.png to OUT.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time

import numpy as np

from errors import UserError

METHODS = ("prune4rel_self", "prune4rel_full", "random")


def _floats(text: str, name: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v]
    except ValueError:
        raise UserError(f"--{name}={text}: not a comma-separated list of numbers") from None


def run(encoder: str, out: str, *, dataset: str = "genviews_shapes", data_dir: str | None = None,
        noise_rates=(0.2, 0.4), budgets=(0.1, 0.3, 0.5), max_train: int = 0, max_test: int = 0,
        seed: int = 0, tau: float = 0.95, eta: float = 1.0, command: str = "") -> dict:
    """Runs the study (see the module docstring); writes and returns results.json's content."""
    from evaluators import coreset, features, linear_probe, prune

    if not os.path.isdir(encoder):
        raise UserError(f"--encoder {encoder}: no such run directory")
    e = features.load_config(encoder).eval
    start = time.time()
    train_x, train = prune.encoder_features(encoder, dataset, "train", data_dir=data_dir,
                                            max_examples=max_train)
    test_x, test = prune.encoder_features(encoder, dataset, "test", data_dir=data_dir,
                                          max_examples=max_test)
    n, num_classes = len(train), train.num_classes
    counts = {b: prune.budget_count(b, n) for b in budgets}
    x = prune.standardize(train_x)
    print(f"features: {n} train, {len(test)} test ({time.time() - start:.0f} s)", flush=True)

    def classify(rows_idx, labels) -> float:
        r = linear_probe.evaluate(train_x[rows_idx], labels[rows_idx], test_x, test.labels, num_classes,
                                  list(e.l2_grid), val_fraction=e.val_fraction, steps=e.probe_steps,
                                  seed=seed)
        return r["top1"]

    rows = []
    for rate in noise_rates:
        noisy = prune.symmetric_noise(train.labels, rate, num_classes, seed)
        clean = noisy == train.labels
        t = time.time()
        confidence = prune.probe_confidence(x, noisy, num_classes)
        order = {"random": np.random.default_rng([seed, 1]).permutation(n)}
        for gain in ("self", "full"):
            order[f"prune4rel_{gain}"] = np.asarray(coreset.prune4rel(
                x, confidence, noisy, max(counts.values()), tau=tau, eta=eta, balance=True, gain=gain))
        print(f"noise {rate:g}: confidence and selections in {time.time() - t:.0f} s", flush=True)
        every = np.arange(n)
        rows.append({"noise": rate, "budget": 1.0, "method": "whole set", "n": n,
                     "clean_fraction": float(clean.mean()), "test_top1": classify(every, noisy)})
        for b, count in counts.items():
            for method in METHODS:
                subset = order[method][:count]
                rows.append({"noise": rate, "budget": b, "method": method, "n": count,
                             "clean_fraction": float(clean[subset].mean()),
                             "test_top1": classify(subset, noisy)})
                print(f"  budget {b:g} {method}: test top-1 {rows[-1]['test_top1']:.2f}% "
                      f"(clean labels {100 * rows[-1]['clean_fraction']:.1f}%)", flush=True)
    results = {
        "command": command, "encoder": os.path.abspath(encoder), "dataset": dataset,
        "num_train": n, "num_test": len(test), "tau": tau, "eta": eta, "seed": seed,
        "classifier": "softmax regression (evaluators.linear_probe) on frozen standardised encoder "
                      "features; L2 chosen on a noisy validation part of the subset",
        "rows": rows, "wall_s": time.time() - start}
    _write(out, results)
    return results


def _write(out: str, results: dict) -> None:
    from evaluators import plots

    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    rows = results["rows"]
    noise_rates = sorted({r["noise"] for r in rows})
    budgets = sorted({r["budget"] for r in rows if r["method"] != "whole set"})
    lines = ["# Prune4ReL under symmetric label noise on genviews_shapes", "",
             f"    {results['command']}", "",
             f"Encoder: `{results['encoder']}`; {results['num_train']} train examples (noisy labels), "
             f"{results['num_test']} test examples (clean labels). Classifier: {results['classifier']}. "
             f"Prune4ReL: τ = {results['tau']}, η = {results['eta']}, class-balanced. Test top-1 (%), "
             "and in brackets the fraction of the kept labels that are correct (%).", "",
             "| noise | budget | " + " | ".join(METHODS) + " | whole set |",
             "|---:|---:|" + "---:|" * (len(METHODS) + 1)]
    cell = lambda r: f"{r['test_top1']:.2f} ({100 * r['clean_fraction']:.0f})"  # noqa: E731
    panels, hlines = {}, {}
    for rate in noise_rates:
        whole = next(r for r in rows if r["noise"] == rate and r["method"] == "whole set")
        for b in budgets:
            by = {r["method"]: r for r in rows if r["noise"] == rate and r["budget"] == b}
            lines.append(f"| {100 * rate:.0f}% | {100 * b:.0f}% | "
                         + " | ".join(cell(by[m]) for m in METHODS) + f" | {cell(whole)} |")
        title = f"{100 * rate:.0f}% symmetric noise"
        panels[title] = {m: ([100 * b for b in budgets],
                             [next(r["test_top1"] for r in rows if r["noise"] == rate
                                   and r["budget"] == b and r["method"] == m) for b in budgets])
                         for m in METHODS}
        hlines[title] = {"whole noisy set": whole["test_top1"]}
    lines += ["", f"Wall time: {results['wall_s']:.0f} s.", "",
              "![test accuracy against budget](results.png)"]
    with open(os.path.join(out, "results.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    plots.line_panels(os.path.join(out, "results.png"), panels, hlines=hlines,
                      xlabel="budget (% of train kept)", ylabel="test top-1 (%), clean labels",
                      title="linear classifier on a subset of noisy genviews_shapes")


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m evaluators.prune_study", description=__doc__.split("\n")[0])
    p.add_argument("--encoder", required=True, help="run directory of the encoder whose features are used")
    p.add_argument("--out", required=True, help="output directory (results.md, results.json, results.png)")
    p.add_argument("--dataset", default="genviews_shapes")
    p.add_argument("--data_dir", default=None, help="TFDS data_dir (default: the encoder run's)")
    p.add_argument("--noise", default="0.2,0.4", help="symmetric noise rates")
    p.add_argument("--budgets", default="0.1,0.3,0.5", help="fractions of train kept")
    p.add_argument("--max_train", type=int, default=0, help=">0: only the first train examples")
    p.add_argument("--max_test", type=int, default=0, help=">0: only the first test examples")
    p.add_argument("--seed", type=int, default=0, help="noise, random subsets and probe splits")
    p.add_argument("--tau", type=float, default=0.95)
    p.add_argument("--eta", type=float, default=1.0)
    a = p.parse_args(argv)
    command = "python -m evaluators.prune_study " + " ".join(
        shlex.quote(v) for v in (sys.argv[1:] if argv is None else argv))
    try:
        budgets = _floats(a.budgets, "budgets")
        if not budgets or any(not 0 < b < 1 for b in budgets):
            raise UserError(f"--budgets={a.budgets}: fractions in (0, 1)")
        run(a.encoder, a.out, dataset=a.dataset, data_dir=a.data_dir, noise_rates=_floats(a.noise, "noise"),
            budgets=budgets, max_train=a.max_train, max_test=a.max_test, seed=a.seed, tau=a.tau,
            eta=a.eta, command=command)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(2)
    with open(os.path.join(a.out, "results.md")) as f:
        print(f.read())


if __name__ == "__main__":
    main()
