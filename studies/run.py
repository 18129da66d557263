"""Studies: configs that list runs, train and evaluate each, and compare them.

A study config has a `study` field (its title), `runs` (name → an experiment
config) and `kinds` (name → "generated" | "real" | "random" for encoders that are
probed, "" for runs that are not, like a generator). A run may name another
run's directory with "@NAME" (e.g. generator.checkpoint="@generator"). Each run
goes to DIR/NAME/ with the usual contract, so a study resumes like a run; the
comparison goes to DIR/results.json, DIR/results.md and DIR/results.png.

A study that sweeps one value declares its x-axis: `x` (run name → the value of
that run; runs not listed, like a real-data baseline, are drawn as horizontal
lines), `x_label` and `x_log`; results.png is then a line plot against it
instead of bars.

`fidelity.encoder` ("@RUN" or a run directory) adds the fidelity metrics of every
generated run's views, against their anchors and against real images, all in
that one encoder's features (evaluators/sample_fidelity.py): a table in
results.md and, in a sweep, symmetric precision and recall beside the accuracy.
"""

from __future__ import annotations

import json
import os
import shutil
import time

import eval as evaluation
import train
from errors import ConfigError, UserError


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


def _check_generator(name: str, run_config) -> None:
    """A run on a generator (or steering walks) named by path fails before any run starts
    when none is there."""
    g = run_config.generator
    if run_config.get("task") != "contrastive" or run_config.data.source != "generator":
        return
    walks = str(run_config.views.walks)
    if (run_config.views.latent == "steer" and walks not in ("", "random") and not walks.startswith("@")
            and not os.path.exists(os.path.join(walks, "walks.json"))):
        raise UserError(f"runs.{name}: views.walks={walks!r} holds no steering walks (no walks.json): "
                        "train them first (python train.py --config configs/steering.py --workdir DIR)")
    if g.init != "checkpoint" or str(g.checkpoint).startswith("@"):
        return
    if not os.path.exists(os.path.join(g.checkpoint, "generator.json")):
        raise UserError(f"runs.{name}: generator.checkpoint={g.checkpoint!r} holds no generator "
                        "(no generator.json): train one first (python train.py --config "
                        "configs/quickstart.py --workdir runs/quickstart writes runs/quickstart/"
                        "generator) or name another with the config arg generator=DIR")


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


def train_and_evaluate(config, rundir: str, evaluate: bool = True) -> tuple[float, dict | None]:
    """Trains `config` in `rundir` and evaluates it (eval.json); a finished run and an existing
    eval.json are kept. Returns (training wall seconds, eval.json's content or None)."""
    os.makedirs(rundir, exist_ok=True)
    train_s = _timed(os.path.join(rundir, "train_time.json"), lambda: train.train(config, rundir))
    if not evaluate:
        return train_s, None
    eval_path = os.path.join(rundir, "eval.json")
    if not os.path.exists(eval_path):
        evaluation.evaluate(rundir)
    with open(eval_path) as f:
        return train_s, json.load(f)


def run(config, workdir: str, command: str = "") -> dict:
    """Trains and evaluates every run of the study; writes and returns results.json's content.

    `command`, the command line that started the study, is written into results.md.
    """
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
        except ConfigError as e:
            raise ConfigError(f"runs.{name}: {e}") from None
    for name in names:
        _check_generator(name, config.runs[name])
    with open(os.path.join(workdir, "config.json"), "w") as f:
        f.write(config.to_json_best_effort(indent=2, sort_keys=True))

    rows, extra = [], {}
    for i, name in enumerate(names):
        run_config = config.runs[name]
        _resolve(run_config, workdir)
        rundir = os.path.join(workdir, name)
        kind = config.kinds.get(name, "")
        print(f"[{i + 1}/{len(names)}] {name}: {rundir}", flush=True)
        train_s, result = train_and_evaluate(run_config, rundir, evaluate=bool(kind))
        if not kind:
            extra[name] = {"wall_s": train_s}
            continue
        row = {"run": name, "data": kind, **evaluation.headline(result),
               "wall_s": train_s + result["wall_s"]}
        if name in config.get("x", {}):
            row["x"] = config.x[name]
        rows.append(row)
        print(f"    linear probe {row['linear_probe_top1']:.2f}%  kNN {row['knn_top1']:.2f}%", flush=True)

    if config.get("fidelity") and config.fidelity.encoder:
        _add_fidelity(config, workdir, rows)
    results = {"study": config.study, "command": command, "rows": rows, "other_runs": extra}
    _write(workdir, config, results)
    return results


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
    swept = len(config.get("x", {})) > 0  # a study that sweeps a value (x: run → value)
    if swept:  # the swept runs in order of their value, then the baselines
        rows = sorted(rows, key=lambda r: ("x" not in r, r.get("x", 0)))
    x_label = config.get("x_label", "x")
    leading = []
    for r in rows:
        cells = {"run": r["run"], "data": r["data"]}
        if swept:
            cells[x_label] = _fmt(r["x"]) if "x" in r else "—"
        leading.append(cells)
    lines = [f"# {config.study}", ""]
    if results.get("command"):
        lines += [f"Produced by `{results['command']}`.", ""]
    lines += [evaluation.markdown_table(leading, rows,
                                        [{"wall (s)": f"{r['wall_s']:.0f}"} for r in rows]),
              "", "top-1 (%) on the real test split; few-shot: mean ± std over seeds."]
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
    lines += _fidelity_table(rows, x_label if swept else "σ")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(workdir, "results.md"), "w") as f:
        f.write(text)
    path = os.path.join(workdir, "results.png")
    if swept:
        line = [r for r in rows if "x" in r]
        line.sort(key=lambda r: r["x"])
        plots.line_plot(path, [r["x"] for r in line], _series(line),
                        baselines={f"{r['run']} ({r['data']}): linear probe": r["linear_probe_top1"]
                                   for r in rows if "x" not in r},
                        xlabel=x_label, ylabel="top-1 (%)", log_x=bool(config.get("x_log", False)),
                        title=config.study, fractions=_fidelity_series(line))
    else:
        plots.bar_chart(path, [r["run"] for r in rows], _series(rows), ylabel="top-1 (%)",
                        title=config.study)
    print(text, flush=True)


def _series(rows: list[dict]) -> dict[str, list[float]]:
    """Linear probe, kNN and (where measured) the largest few-shot top-1 of each row."""
    series = {"linear probe": [r["linear_probe_top1"] for r in rows],
              "kNN": [r["knn_top1"] for r in rows]}
    shots = [k for k in rows[0] if k.startswith("fewshot_") and k.endswith("shot_top1")] if rows else []
    if shots:
        most = max(shots, key=lambda k: int(k.removeprefix("fewshot_").removesuffix("shot_top1")))
        label = most.removeprefix("fewshot_").removesuffix("_top1")
        series[f"{label} ridge"] = [r.get(most, float("nan")) for r in rows]
    return series


def _fmt(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _fidelity_series(rows: list[dict]) -> dict[str, list[float]] | None:
    """Symmetric precision and recall of each row's views (against real images and their
    anchors), when every row has them."""
    if not rows or not all("fidelity" in r for r in rows):
        return None
    return {f"views vs {ref}: {m}": [r["fidelity"][f"vs_{ref}"][m] for r in rows]
            for ref in ("real", "anchors") for m in ("sym_precision", "sym_recall")}


def _fidelity_table(rows: list[dict], x_label: str) -> list[str]:
    """Markdown lines: the views' fidelity metrics of every generated run that has them."""
    rows = [r for r in rows if "fidelity" in r]
    if not rows:
        return []
    rows = sorted(rows, key=lambda r: r.get("x", 0))
    real_keys = ("precision", "recall", "density", "coverage", "sym_precision", "sym_recall")
    f0 = rows[0]["fidelity"]
    lines = ["", f"Views against real images and against their anchors, in the features of "
             f"{os.path.basename(f0['encoder'])} ({f0['num_generated']} anchors with one view each, "
             f"{f0['num_real']} real train images, k = {f0['k']}):", "",
             f"| run | {x_label} | linear probe top-1 (%) | "
             + " | ".join(f"vs real: {k}" for k in real_keys)
             + " | vs anchors: sym_precision | vs anchors: sym_recall |",
             "|---|---:|---:|" + "---:|" * (len(real_keys) + 2)]
    for r in rows:
        f = r["fidelity"]
        lines.append(f"| {r['run']} | {r.get('x', f['sigma']):g} | {r['linear_probe_top1']:.2f} | "
                     + " | ".join(f"{f['vs_real'][k]:.3f}" for k in real_keys)
                     + f" | {f['vs_anchors']['sym_precision']:.3f} | {f['vs_anchors']['sym_recall']:.3f} |")
    return lines
