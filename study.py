"""Studies: configs that list runs, train and evaluate each, and compare them.

A study config has a `study` field (its title), `runs` (name → an experiment
config) and `kinds` (name → "generated" | "real" | "random" for encoders that are
probed, "" for runs that are not, like a generator). A run may name another
run's directory with "@NAME" (e.g. generator.checkpoint="@generator"). Each run
goes to DIR/NAME/ with the usual contract, so a study resumes like a run; the
comparison goes to DIR/results.json, DIR/results.md and DIR/results.png.

Optional fields (configs/common.study_base): `fidelity.encoder` adds the fidelity
metrics of every generated run's views (against their anchors and against real
images, all in that one encoder's features; evaluators/sample_fidelity.py);
`sweep` names a run config key (e.g. views.sigma) and plots the generated runs'
linear-probe accuracy and symmetric precision/recall against it (DIR/sweep.png);
`results_dir` receives a copy of the results.
"""

from __future__ import annotations

import json
import os
import shutil
import time

import eval as evaluation
import train
from errors import ConfigError


def _resolve(config, workdir: str) -> None:
    ref = config.generator.checkpoint
    if isinstance(ref, str) and ref.startswith("@"):
        config.generator.checkpoint = os.path.join(workdir, ref[1:])


def _order(config) -> list[str]:
    """Run names with every run that another one names ("@NAME") before it."""
    names = list(config.runs.keys())
    needed = {config.runs[n].generator.checkpoint[1:] for n in names
              if str(config.runs[n].generator.checkpoint).startswith("@")}
    missing = needed - set(names)
    if missing:
        raise ConfigError(f"config key runs: {sorted(missing)} are referenced with '@' but are not runs")
    return [n for n in names if n in needed] + [n for n in names if n not in needed]


def _timed(path: str, fn) -> float:
    """Runs fn once per run directory and remembers its wall time in `path`."""
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)["wall_s"]
    start = time.time()
    fn()
    wall = time.time() - start
    with open(path, "w") as f:
        json.dump({"wall_s": wall}, f)
    return wall


def run(config, workdir: str) -> dict:
    """Trains and evaluates every run of the study; writes and returns results.json's content."""
    from configs.common import validate

    validate(config)
    workdir = train.prepare_workdir(workdir)
    names = _order(config)
    unknown = [n for n in config.kinds.keys() if n not in names]
    if unknown:
        raise ConfigError(f"config key kinds: {unknown} are not runs of the study")
    import jax
    for name in names:  # every run's config is checked before any of them starts
        try:
            validate(config.runs[name], jax.device_count(), jax.process_count())
            _check_generator(config.runs[name])
        except ConfigError as e:
            raise ConfigError(f"runs.{name}: {e}") from None
    with open(os.path.join(workdir, "config.json"), "w") as f:
        f.write(config.to_json_best_effort(indent=2, sort_keys=True))

    rows, extra = [], {}
    for i, name in enumerate(names):
        run_config = config.runs[name]
        _resolve(run_config, workdir)
        rundir = os.path.join(workdir, name)
        kind = config.kinds.get(name, "")
        print(f"[{i + 1}/{len(names)}] {name}: {rundir}", flush=True)
        os.makedirs(rundir, exist_ok=True)
        train_s = _timed(os.path.join(rundir, "train_time.json"),
                         lambda cfg=run_config, d=rundir: train.train(cfg, d))
        if not kind:
            extra[name] = {"wall_s": train_s}
            continue
        eval_path = os.path.join(rundir, "eval.json")
        if not os.path.exists(eval_path):
            evaluation.evaluate(rundir)
        with open(eval_path) as f:
            result = json.load(f)
        row = {"run": name, "data": kind, "linear_probe_top1": result["linear_probe"]["top1"],
               "knn_top1": result["knn"]["top1"], "wall_s": train_s + result["wall_s"]}
        if config.get("sweep") and kind == "generated":
            row["sweep"] = _lookup(run_config, config.sweep)
        rows.append(row)
        print(f"    linear probe {row['linear_probe_top1']:.2f}%  kNN {row['knn_top1']:.2f}%", flush=True)

    if config.get("fidelity") and config.fidelity.encoder:
        _add_fidelity(config, workdir, rows)
    results = {"study": config.study, "rows": rows, "other_runs": extra}
    _write(workdir, config, results)
    return results


def _check_generator(run_config) -> None:
    """A run's generator checkpoint must exist before the study starts (not after hours of runs)."""
    ref = run_config.generator.checkpoint
    if (run_config.task != "contrastive" or run_config.data.source != "generator"
            or run_config.generator.init != "checkpoint" or str(ref).startswith("@")):
        return
    if not os.path.exists(os.path.join(ref, "generator.json")):
        raise ConfigError(f"config key generator.checkpoint: no generator in {os.path.abspath(ref)} "
                          "(generator.json is missing): train one first (e.g. the quickstart) or "
                          "name another directory")


def _lookup(config, key: str):
    for part in key.split("."):
        config = config[part]
    return config


def _add_fidelity(config, workdir: str, rows: list[dict]) -> None:
    """Adds `fidelity` (views against anchors and real images) to every generated run's row."""
    from data import datasets
    from evaluators import features, sample_fidelity
    from tasks.contrastive import load_generator

    f = config.fidelity
    ref = os.path.join(workdir, f.encoder[1:]) if f.encoder.startswith("@") else f.encoder
    ref_config = features.load_config(ref)
    encoder, variables, _ = features.restore_encoder(ref, ref_config)
    real = datasets.load(ref_config.data.name, ref_config.eval.train_split,
                         image_size=ref_config.data.load_size or ref_config.data.image_size,
                         data_dir=ref_config.data.data_dir, max_examples=f.samples)
    featurize = lambda images: features.extract(  # noqa: E731
        encoder, variables, images, ref_config.data.image_size, ref_config.eval.batch_size)
    for row in rows:
        if row["data"] != "generated":
            continue
        path = os.path.join(workdir, row["run"], "fidelity.json")
        if not os.path.exists(path):
            run_config = config.runs[row["run"]]
            sigma = run_config.views.sigma if run_config.views.latent == "gaussian" else 0.0
            result = sample_fidelity.evaluate(
                featurize, load_generator(run_config), real.images, num_samples=f.samples,
                sigmas=[sigma], k=f.k, seed=f.seed, truncation=run_config.generator.truncation)
            views = next(iter(result.pop("views").values()))
            result = {"encoder": os.path.abspath(ref), "sigma": sigma, **result, **views}
            with open(path, "w") as out:
                json.dump(result, out, indent=2)
        with open(path) as fin:
            row["fidelity"] = json.load(fin)
        v = row["fidelity"]["vs_real"]
        print(f"    {row['run']}: views vs real sym_precision {v['sym_precision']:.3f} "
              f"sym_recall {v['sym_recall']:.3f}", flush=True)


def _write(workdir: str, config, results: dict) -> None:
    from evaluators import plots

    with open(os.path.join(workdir, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    rows = results["rows"]
    lines = [f"# {config.study}", "",
             "| run | data | linear probe top-1 (%) | kNN top-1 (%) | wall (s) |",
             "|---|---|---:|---:|---:|"]
    lines += [f"| {r['run']} | {r['data']} | {r['linear_probe_top1']:.2f} | {r['knn_top1']:.2f} "
              f"| {r['wall_s']:.0f} |" for r in rows]
    for name, info in results["other_runs"].items():
        lines.append(f"\n{name}: trained in {info['wall_s']:.0f} s")
    by_kind = {}
    for r in rows:
        best = by_kind.get(r["data"])
        if best is None or r["linear_probe_top1"] > best["linear_probe_top1"]:
            by_kind[r["data"]] = r
    if {"generated", "real"} <= by_kind.keys():
        g, r = by_kind["generated"], by_kind["real"]
        lines.append(f"\nBest generated-views encoder ({g['run']}) reaches "
                     f"{100 * g['linear_probe_top1'] / r['linear_probe_top1']:.1f}% of the "
                     f"real-data encoder's linear-probe top-1.")
        if "random" in by_kind:
            lines.append(f"It beats the random encoder by "
                         f"{g['linear_probe_top1'] - by_kind['random']['linear_probe_top1']:.1f} points.")
        grid = os.path.join(workdir, g["run"], "views.png")
        if os.path.exists(grid):
            shutil.copy(grid, os.path.join(workdir, "views.png"))
            lines.append("\n![anchors beside their views](views.png)")
    lines += _fidelity_table(rows, config.get("sweep", ""))
    outputs = ["results.md", "results.json", "results.png"]
    swept = sorted((r for r in rows if "sweep" in r), key=lambda r: r["sweep"])
    if swept:
        outputs.append("sweep.png")
        lines.append("\n![results against " + config.sweep + "](sweep.png)")
        metrics = {}
        if all("fidelity" in r for r in swept):
            metrics = {f"views vs {ref}: {m}": [r["fidelity"][f"vs_{ref}"][m] for r in swept]
                       for ref in ("real", "anchors") for m in ("sym_precision", "sym_recall")}
        plots.sweep_chart(os.path.join(workdir, "sweep.png"), [r["sweep"] for r in swept],
                          [r["linear_probe_top1"] for r in swept], metrics,
                          baselines={r["run"]: r["linear_probe_top1"] for r in rows if "sweep" not in r},
                          xlabel=config.sweep, title=config.study)
    text = "\n".join(lines) + "\n"
    with open(os.path.join(workdir, "results.md"), "w") as f:
        f.write(text)
    plots.bar_chart(os.path.join(workdir, "results.png"), [r["run"] for r in rows],
                    {"linear probe": [r["linear_probe_top1"] for r in rows],
                     "kNN": [r["knn_top1"] for r in rows]}, ylabel="top-1 (%)", title=config.study)
    if config.get("results_dir"):
        os.makedirs(config.results_dir, exist_ok=True)
        for name in outputs + (["views.png"] if os.path.exists(os.path.join(workdir, "views.png")) else []):
            shutil.copy(os.path.join(workdir, name), os.path.join(config.results_dir, name))
    print(text, flush=True)


def _fidelity_table(rows: list[dict], sweep: str) -> list[str]:
    """Markdown lines: the views' fidelity metrics of every generated run that has them."""
    rows = [r for r in rows if "fidelity" in r]
    if not rows:
        return []
    rows = sorted(rows, key=lambda r: r.get("sweep", 0))
    real_keys = ("precision", "recall", "density", "coverage", "sym_precision", "sym_recall")
    f0 = rows[0]["fidelity"]
    lines = ["", f"Views against real images and against their anchors, in the features of "
             f"{os.path.basename(f0['encoder'])} ({f0['num_generated']} anchors with one view each, "
             f"{f0['num_real']} real train images, k = {f0['k']}):", "",
             f"| run | {sweep or 'σ'} | linear probe top-1 (%) | "
             + " | ".join(f"vs real: {k}" for k in real_keys)
             + " | vs anchors: sym_precision | vs anchors: sym_recall |",
             "|---|---:|---:|" + "---:|" * (len(real_keys) + 2)]
    for r in rows:
        f = r["fidelity"]
        lines.append(f"| {r['run']} | {r.get('sweep', f['sigma']):g} | {r['linear_probe_top1']:.2f} | "
                     + " | ".join(f"{f['vs_real'][k]:.3f}" for k in real_keys)
                     + f" | {f['vs_anchors']['sym_precision']:.3f} | {f['vs_anchors']['sym_recall']:.3f} |")
    return lines
