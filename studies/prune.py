"""The noisy-label study of Prune4ReL on the embedded default (issues 8 and 18).

    python -m studies.prune --encoder runs/quickstart/real_simclr --out results/prune4rel

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

With a learner, as the paper measures it (`run_learner`):

    python -m studies.prune --learner elr --out runs/prune4rel_elr [--seeds 3] [--steps 800] \
        [--warmup_steps 400] [--batch 128]

per seed and noise rate, a selection model (configs/classifier.py's network with the
cross-entropy, warmed up on the whole noisy set) gives Prune4ReL its embeddings (its
encoder's features) and confidences (its max softmax); then a network trained end to end
with ELR (or `--learner ce`) on each subset and on the whole noisy set is tested on the
clean test labels. Rows are mean ± std over the seeds, which change the noise, the random
subset and every network. Each subset and run stays in OUT/subsets/ and OUT/runs/: a rerun
keeps finished runs and reads each method's selection back from its largest subset, so the
noise rates can run in separate processes (`--noise 0.2`, `--noise 0.4`) into one OUT and the
full command then gathers them into one table.

Pruning generated data before contrastive training:

    python -m studies.prune --encoder runs/quickstart/real_simclr \
        --export EXPORT_DIR --steps 150 --out results/prune4rel_generated

prunes an export of generated views (`python -m data.export`; its anchors, labelled
with the classes the generator was asked for, plus the synthetic noise) the same
way, then trains a contrastive encoder (`--loss`, default supcon, the loss that uses
the labels; the quickstart's encoder at `--steps` × `--batch`) on each subset of the
export (`data.subset`: the subset's rows with its noisy labels) and reports its
linear probe on real genviews_shapes (train → test, clean labels). `--noise 0`
adds a row set with only the generator's own label noise. Each subset and run stays
in OUT/subsets/ and OUT/runs/ (a rerun resumes, finished runs are kept).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time

import numpy as np

from configs import classifier, genviews, quickstart
from data import datasets
from data import export as export_lib
from data import subset as subset_lib
from errors import ConfigError, UserError
from evaluators import coreset, features, linear_probe, prune
from studies import plots, report
from studies import run as study
from tasks.classifier import RESULT as CLASSIFIER_RESULT
from tasks.classifier import ClassifierTask
from tasks.parallel import machine

METHODS = ("prune4rel_self", "prune4rel_full", "random")


def _floats(text: str, name: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v]
    except ValueError:
        raise UserError(f"--{name}={text}: not a comma-separated list of numbers") from None


def _selections(x: np.ndarray, noisy: np.ndarray, num_classes: int, count: int, *, seed: int,
                tau: float, eta: float) -> dict[str, np.ndarray]:
    """Each method's examples in the order chosen, `count` of them (smaller budgets: prefixes)."""
    confidence = prune.probe_confidence(x, noisy, num_classes)
    order = {"random": prune.random_subset(len(x), count, seed)}
    for gain in ("self", "full"):
        order[f"prune4rel_{gain}"] = np.asarray(coreset.prune4rel(
            x, confidence, noisy, count, tau=tau, eta=eta, balance=True, gain=gain))
    return order


def _study(train_x: np.ndarray, train_labels: np.ndarray, num_classes: int, learn, *,
           noise_rates, budgets, seed: int, tau: float, eta: float) -> list[dict]:
    """The rows of a study: `learn(name, rows, noisy_labels)` → test top-1 for each noise rate,
    budget and method, and for the whole noisy set."""
    n = len(train_labels)
    counts = {b: prune.budget_count(b, n) for b in budgets}
    x = prune.embeddings(train_x)
    rows = []
    for rate in noise_rates:
        noisy = prune.symmetric_noise(train_labels, rate, num_classes, seed) if rate else train_labels
        clean = noisy == train_labels
        t = time.time()
        order = _selections(x, noisy, num_classes, max(counts.values()), seed=seed, tau=tau, eta=eta)
        print(f"noise {rate:g}: confidence and selections in {time.time() - t:.0f} s", flush=True)
        every = np.arange(n)
        rows.append({"noise": rate, "budget": 1.0, "method": "whole set", "n": n,
                     "clean_fraction": float(clean.mean()),
                     "test_top1": learn(f"noise{rate:g}_whole", every, noisy)})
        for b, count in counts.items():
            for method in METHODS:
                subset = order[method][:count]
                rows.append({"noise": rate, "budget": b, "method": method, "n": count,
                             "clean_fraction": float(clean[subset].mean()),
                             "test_top1": learn(f"noise{rate:g}_budget{b:g}_{method}", subset, noisy)})
                print(f"  budget {b:g} {method}: test top-1 {rows[-1]['test_top1']:.2f}% "
                      f"(clean labels {100 * rows[-1]['clean_fraction']:.1f}%)", flush=True)
    return rows


def run(encoder: str, out: str, *, dataset: str = "genviews_shapes", data_dir: str | None = None,
        noise_rates=(0.2, 0.4), budgets=(0.1, 0.3, 0.5), max_train: int = 0, max_test: int = 0,
        seed: int = 0, tau: float = 0.95, eta: float = 1.0, command: str = "") -> dict:
    """Runs the study (see the module docstring); writes and returns results.json's content."""
    if not os.path.isdir(encoder):
        raise UserError(f"--encoder {encoder}: no such run directory")
    e = features.load_config(encoder).eval.linear_probe
    start = time.time()
    train_x, train = prune.encoder_features(encoder, dataset, "train", data_dir=data_dir,
                                            max_examples=max_train)
    test_x, test = prune.encoder_features(encoder, dataset, "test", data_dir=data_dir,
                                          max_examples=max_test)
    print(f"features: {len(train)} train, {len(test)} test ({time.time() - start:.0f} s)", flush=True)

    def classify(_, rows_idx, labels) -> float:
        r = linear_probe.evaluate(train_x[rows_idx], labels[rows_idx], test_x, test.labels,
                                  train.num_classes, list(e.l2_grid), val_fraction=e.val_fraction,
                                  steps=e.steps, seed=seed)
        return r["top1"]

    rows = _study(train_x, train.labels, train.num_classes, classify, noise_rates=noise_rates,
                  budgets=budgets, seed=seed, tau=tau, eta=eta)
    results = {
        "command": command, "encoder": os.path.abspath(encoder), "dataset": dataset,
        "title": f"Prune4ReL under symmetric label noise on {dataset}",
        "num_train": len(train), "num_test": len(test), "tau": tau, "eta": eta, "seed": seed,
        "classifier": "softmax regression (evaluators.linear_probe) on frozen standardised encoder "
                      "features; L2 chosen on a noisy validation part of the subset",
        "rows": rows, "wall_s": time.time() - start}
    _write(out, results)
    return results


def contrastive_config(export: str, subset: str = "", *, steps: int, batch: int, loss: str, seed: int,
                       data_dir: str = "", smoke: bool = False):
    """The quickstart's encoder (smoke: the smoke scale), trained on `subset` of the export
    `export` ("": all of it) with `loss` and probed on real genviews_shapes from TFDS `data_dir`."""
    c = genviews.get_config("smoke" if smoke else None)
    c = quickstart.encoder_run(smoke, c, steps=steps, batch=batch)
    if smoke:
        c.train.steps, c.train.batch_size = steps, batch
    c.data.source = os.path.abspath(export)
    c.data.subset = os.path.abspath(subset) if subset else ""
    c.data.data_dir = data_dir
    c.loss.name = loss
    c.seed = seed
    c.eval.evaluators = ("linear_probe",)
    return c


def _same_arguments(out: str, arguments: dict) -> None:
    """OUT/arguments.json: what made the runs in OUT; a rerun with others is refused (it
    would report finished runs of other settings under the new command)."""
    path = os.path.join(out, "arguments.json")
    if os.path.exists(path):
        with open(path) as f:
            before = json.load(f)
        if before != arguments:
            changed = sorted(k for k in arguments if before.get(k) != arguments[k])
            raise UserError(f"{out} holds runs made with other settings ({', '.join(changed)}): "
                            "use another --out")
        return
    os.makedirs(out, exist_ok=True)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:  # then renamed: a process started beside this one
        json.dump(arguments, f, indent=2)   # (another noise rate) never reads half a file
    os.replace(tmp, path)


def run_generated(encoder: str, export_dir: str, out: str, *, steps: int = 150, batch: int = 128,
                  loss: str = "supcon", noise_rates=(0.2, 0.4), budgets=(0.1, 0.3, 0.5),
                  seed: int = 0, tau: float = 0.95, eta: float = 1.0, command: str = "",
                  smoke: bool = False) -> dict:
    """Prunes an export of generated views, trains an encoder on each subset and probes it on
    real data (see the module docstring); writes and returns results.json's content."""
    if not os.path.isdir(encoder):
        raise UserError(f"--encoder {encoder}: no such run directory")
    if export_lib.metadata(export_dir) is None:
        raise UserError(f"--export {export_dir} is not an export of python -m data.export")
    data_dir = features.load_config(encoder).data.data_dir  # real images probe where the encoder's came from
    study.validate(contrastive_config(export_dir, steps=steps, batch=batch, loss=loss, seed=seed,
                                data_dir=data_dir, smoke=smoke))  # --loss, --steps, --batch: before any work
    _same_arguments(out, {"encoder": os.path.abspath(encoder), "export": os.path.abspath(export_dir),
                          "steps": steps, "batch": batch, "loss": loss, "seed": seed, "tau": tau,
                          "eta": eta, "smoke": smoke})
    start = time.time()
    train_x, anchors = prune.encoder_features(encoder, export_dir, "train")
    print(f"features of {len(anchors)} generated anchors ({time.time() - start:.0f} s)", flush=True)

    def learn(name, rows_idx, labels) -> float:
        subset = os.path.join(out, "subsets", name)
        if not subset_lib.complete(subset):  # written once, last
            subset_lib.write(subset, rows_idx, labels, {
                "dataset": os.path.abspath(export_dir), "n": len(labels), "budget": len(rows_idx),
                "study_row": name})
        config = contrastive_config(export_dir, subset, steps=steps, batch=batch, loss=loss, seed=seed,
                                    data_dir=data_dir, smoke=smoke)
        _, result = study.train_and_evaluate(config, os.path.join(out, "runs", name))
        return result["linear_probe"]["top1"]

    rows = _study(train_x, anchors.labels, anchors.num_classes, learn, noise_rates=noise_rates,
                  budgets=budgets, seed=seed, tau=tau, eta=eta)
    results = {
        "command": command, "encoder": os.path.abspath(encoder), "dataset": os.path.abspath(export_dir),
        "title": "Prune4ReL on generated views before contrastive training",
        "num_train": len(anchors), "num_test": None, "tau": tau, "eta": eta, "seed": seed,
        "classifier": f"a ConvNet trained with {loss} on the subset's views ({steps} steps × {batch} "
                      "instances, the quickstart's encoder), then its linear probe on real "
                      "genviews_shapes (train → test, clean labels)",
        "rows": rows, "wall_s": time.time() - start}
    _write(out, results)
    return results


def classifier_config(subset: str, *, loss: str, steps: int, batch: int, seed: int, data_dir: str,
                      max_train: int, smoke: bool = False):
    """The learner (configs/classifier.py: a ConvNet and a linear head, end to end) on
    `subset`'s rows and noisy labels, `steps` × `batch`, with `loss` (ce | elr)."""
    c = classifier.get_config("smoke" if smoke else None)
    c.train.steps, c.train.batch_size = steps, batch
    c.classifier.loss = loss
    c.data.subset = os.path.abspath(subset) if subset else ""
    c.data.data_dir = data_dir or ""
    c.data.max_examples = max_train
    c.seed = seed
    return c


def run_learner(out: str, *, dataset: str = "genviews_shapes", data_dir: str | None = None,
                noise_rates=(0.2, 0.4), budgets=(0.1, 0.3, 0.5), seeds: int = 3, loss: str = "elr",
                steps: int = 800, warmup_steps: int = 400, batch: int = 128, max_train: int = 0,
                tau: float = 0.95, eta: float = 1.0, command: str = "", smoke: bool = False) -> dict:
    """Prune4ReL as its paper measures it: per seed and noise rate, a selection model (the
    learner's network with the cross-entropy, `warmup_steps` on the whole noisy set) gives
    the embeddings (its encoder's features) and confidences (its max softmax); a learner
    with `loss` (ELR by default) then trains on each subset, and on the whole noisy set,
    and is tested on the clean test labels (its classifier.json). Rows: mean ± std over
    `seeds`, which change the noise, the random subset and every network's init and order."""
    learner = classifier_config("", loss=loss, steps=steps, batch=batch, seed=0, data_dir=data_dir or "",
                                max_train=max_train, smoke=smoke)
    study.validate(learner)
    _same_arguments(out, {"dataset": dataset, "learner": loss, "steps": steps, "batch": batch,
                          "warmup_steps": warmup_steps, "seeds": seeds, "max_train": max_train,
                          "tau": tau, "eta": eta, "smoke": smoke})
    start = time.time()
    train = datasets.load(dataset, "train", image_size=learner.data.load_size or learner.data.image_size,
                          data_dir=data_dir, max_examples=max_train)
    n, num_classes = len(train.labels), train.num_classes
    counts = {b: prune.budget_count(b, n) for b in budgets}
    largest = max(counts, key=counts.get)  # its subsets hold each method's whole order

    def row_name(tag: str, budget: float, method: str) -> str:  # a subset's and its run's
        return f"{tag}_budget{budget:g}_{method}"

    def subset_dir(name: str) -> str:
        return os.path.join(out, "subsets", name)

    def learn(name, rows_idx, labels, seed, loss_name, learner_steps) -> str:
        """Trains a classifier on rows `rows_idx` with `labels`; returns its run directory."""
        subset = subset_dir(name)
        if not subset_lib.complete(subset):
            subset_lib.write(subset, rows_idx, labels, {"dataset": dataset, "n": n,
                                                        "budget": len(rows_idx), "study_row": name})
        run_dir = os.path.join(out, "runs", name)
        config = classifier_config(subset, loss=loss_name, steps=learner_steps, batch=batch, seed=seed,
                                   data_dir=data_dir or "", max_train=max_train, smoke=smoke)
        study.train_and_evaluate(config, run_dir, evaluate=False)
        return run_dir

    tested = {}

    def top1(run_dir: str) -> float:  # the learner's top-1 on the clean test labels
        with open(os.path.join(run_dir, CLASSIFIER_RESULT)) as f:
            result = json.load(f)
        tested["examples"] = result["examples"]
        return result["test_top1"]

    per_seed = []
    for seed in range(seeds):
        for rate in noise_rates:
            noisy = prune.symmetric_noise(train.labels, rate, num_classes, seed) if rate else train.labels
            clean = noisy == train.labels
            every = np.arange(n)
            tag = f"seed{seed}_noise{rate:g}"
            # Each method's order up to the largest budget (smaller budgets are its prefixes):
            # read back from the largest subset when an earlier run wrote them all, for the
            # greedy takes minutes on the whole train split; else selected.
            stored = {m: subset_dir(row_name(tag, largest, m)) for m in METHODS}
            if all(subset_lib.complete(d) for d in stored.values()):
                order = {m: subset_lib.indices(d) for m, d in stored.items()}
            else:
                order = _select(learn(f"{tag}_warmup", every, noisy, seed, "ce", warmup_steps),
                                train, noisy, counts[largest], seed=seed, tau=tau, eta=eta)
            per_seed.append({"seed": seed, "noise": rate, "budget": 1.0, "method": "whole set", "n": n,
                             "clean_fraction": float(clean.mean()),
                             "test_top1": top1(learn(f"{tag}_whole", every, noisy, seed, loss, steps))})
            for b, count in counts.items():
                for method in METHODS:
                    kept = order[method][:count]
                    run_dir = learn(row_name(tag, b, method), kept, noisy, seed, loss, steps)
                    per_seed.append({"seed": seed, "noise": rate, "budget": b, "method": method,
                                     "n": count, "clean_fraction": float(clean[kept].mean()),
                                     "test_top1": top1(run_dir)})
                    print(f"  seed {seed} noise {rate:g} budget {b:g} {method}: test top-1 "
                          f"{per_seed[-1]['test_top1']:.2f}%", flush=True)
    rows = []
    for key in dict.fromkeys((r["noise"], r["budget"], r["method"]) for r in per_seed):
        group = [r for r in per_seed if (r["noise"], r["budget"], r["method"]) == key]
        values = [r["test_top1"] for r in group]
        rows.append({"noise": key[0], "budget": key[1], "method": key[2], "n": group[0]["n"],
                     "clean_fraction": float(np.mean([r["clean_fraction"] for r in group])),
                     "test_top1": float(np.mean(values)),
                     "test_top1_std": float(np.std(values, ddof=1)) if len(values) > 1 else None,
                     "seeds": values})
    results = {
        "command": command, "encoder": f"each seed's selection model (cross-entropy, {warmup_steps} "
                                       "steps on the whole noisy set)",
        "dataset": dataset, "title": f"Prune4ReL with a {loss.upper()} learner under symmetric label "
                                     f"noise on {dataset}",
        "num_train": n, "num_test": tested["examples"], "tau": tau, "eta": eta,
        "seed": list(range(seeds)),
        "classifier": f"a ConvNet and linear head trained end to end with {loss} on the subset "
                      f"({steps} steps × {batch}; configs/classifier.py), tested on the clean test "
                      f"labels; mean ± std over {seeds} seed(s)",
        "rows": rows, "wall_s": time.time() - start}
    _write(out, results)
    return results


def _select(warm: str, train, noisy: np.ndarray, count: int, *, seed: int, tau: float,
            eta: float) -> dict:
    """The first `count` rows of each method's order: Prune4ReL (gain self and full) on the
    embeddings and confidences of the selection model in run directory `warm`, and random."""
    selector, state = ClassifierTask.restore(warm)
    x = prune.embeddings(features.load(warm).extract(train))
    confidence = selector.probabilities(state, train.images).max(-1).astype(np.float64)
    order = {"random": prune.random_subset(len(noisy), count, seed)}
    for gain in ("self", "full"):
        order[f"prune4rel_{gain}"] = np.asarray(coreset.prune4rel(
            x, confidence, noisy, count, tau=tau, eta=eta, balance=True, gain=gain))
    return order


def _write(out: str, results: dict) -> None:
    os.makedirs(out, exist_ok=True)
    results.setdefault("machine", machine())  # where the numbers came from
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    rows = results["rows"]
    noise_rates = sorted({r["noise"] for r in rows})
    budgets = sorted({r["budget"] for r in rows if r["method"] != "whole set"})
    tested = (f"{results['num_test']} test examples (clean labels)" if results["num_test"]
              else "tested on real images")
    lines = [f"# {results['title']}", "",
             f"    {results['command']}", "", report.machine_line(results["machine"]), "",
             f"Embeddings and confidences: `{results['encoder']}`; {results['num_train']} examples "
             f"of `{results['dataset']}` (noisy labels), {tested}. Learner: {results['classifier']}. "
             f"Prune4ReL: τ = {results['tau']}, η = {results['eta']}, class-balanced. Test top-1 (%), "
             "and in brackets the fraction of the kept labels that are correct (%).", "",
             "| noise | budget | " + " | ".join(METHODS) + " | whole set |",
             "|---:|---:|" + "---:|" * (len(METHODS) + 1)]
    def cell(r):
        spread = f" ± {r['test_top1_std']:.2f}" if r.get("test_top1_std") is not None else ""
        return f"{r['test_top1']:.2f}{spread} ({100 * r['clean_fraction']:.0f})"
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
                      title=results["title"])


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m studies.prune", description=__doc__.split("\n")[0])
    p.add_argument("--encoder", default="", help="run directory of the encoder whose features are "
                   "used (not with --learner)")
    p.add_argument("--out", required=True, help="output directory (results.md, results.json, results.png)")
    p.add_argument("--dataset", default="genviews_shapes")
    p.add_argument("--data_dir", default=None, help="TFDS data_dir (default: the encoder run's)")
    p.add_argument("--noise", default="0.2,0.4", help="symmetric noise rates")
    p.add_argument("--budgets", default="0.1,0.3,0.5", help="fractions of train kept")
    p.add_argument("--max_train", type=int, default=0, help=">0: only the first train examples")
    p.add_argument("--max_test", type=int, default=0, help=">0: only the first test examples")
    p.add_argument("--seed", type=int, default=0, help="noise, random subsets and probe splits "
                   "(--learner: --seeds)")
    p.add_argument("--tau", type=float, default=0.95)
    p.add_argument("--eta", type=float, default=1.0)
    p.add_argument("--export", default="", help="an export of generated views: prune it, then train "
                   "an encoder on each subset (the learner) instead of a linear classifier")
    p.add_argument("--steps", type=int, default=None, help="--export: encoder steps per subset "
                   "(default 150); --learner: the learner's steps per subset (default 800)")
    p.add_argument("--batch", type=int, default=128, help="--export, --learner: instances per step")
    p.add_argument("--loss", default="supcon", help="--export: contrastive loss of the encoders")
    p.add_argument("--learner", default="", help="ce | elr: train a network with this loss on each "
                   "subset, selected by a network warmed up on the whole noisy set (no --encoder)")
    p.add_argument("--warmup_steps", type=int, default=400, help="--learner: the selection model's steps")
    p.add_argument("--seeds", type=int, default=3, help="--learner: seeds (noise, subsets, networks)")
    a = p.parse_args(argv)
    command = "python -m studies.prune " + " ".join(
        shlex.quote(v) for v in (sys.argv[1:] if argv is None else argv))
    try:
        budgets = _floats(a.budgets, "budgets")
        if not budgets or any(not 0 < b < 1 for b in budgets):
            raise UserError(f"--budgets={a.budgets}: fractions in (0, 1)")
        noise_rates = _floats(a.noise, "noise")
        if any(not 0 <= r < 1 for r in noise_rates):
            raise UserError(f"--noise={a.noise}: rates in [0, 1)")
        if a.learner and (a.encoder or a.export):
            raise UserError("--learner trains its own selection model on the noisy labels: "
                            "drop --encoder and --export")
        if not a.learner and not a.encoder:
            raise UserError("--encoder names the run whose features select (or --learner trains "
                            "its own selection model)")
        steps = a.steps if a.steps is not None else (800 if a.learner else 150)
        if a.learner:
            run_learner(a.out, dataset=a.dataset, data_dir=a.data_dir, noise_rates=noise_rates,
                        budgets=budgets, seeds=a.seeds, loss=a.learner, steps=steps,
                        warmup_steps=a.warmup_steps, batch=a.batch, max_train=a.max_train, tau=a.tau,
                        eta=a.eta, command=command)
        elif a.export:
            run_generated(a.encoder, a.export, a.out, steps=steps, batch=a.batch, loss=a.loss,
                          noise_rates=noise_rates, budgets=budgets, seed=a.seed, tau=a.tau, eta=a.eta,
                          command=command)
        else:
            run(a.encoder, a.out, dataset=a.dataset, data_dir=a.data_dir, noise_rates=noise_rates,
                budgets=budgets, max_train=a.max_train, max_test=a.max_test, seed=a.seed, tau=a.tau,
                eta=a.eta, command=command)
    except (UserError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(2)
    with open(os.path.join(a.out, "results.md")) as f:
        print(f.read())


if __name__ == "__main__":
    main()
