"""What a comparison of runs looks like: a study's results.md and results.png, and eval.py's
--compare table.

    python eval.py --compare DIR1 DIR2 ... [--dataset NAME]

prints one Markdown table of the eval.json (eval_NAME.json) of several runs;
`write` puts a study's rows into DIR/results.json, DIR/results.md and
DIR/results.png (bars, or lines against a swept value; studies/plots.py).
"""

from __future__ import annotations

import json
import os
import shutil

import numpy as np

from errors import UserError
from evaluators import registry


def headline(result: dict) -> dict[str, float]:
    """The top-1 numbers (%) of one eval.json, flat: `linear_probe_top1`, `knn_top1`,
    `fewshot_5shot_top1` (mean over seeds) and `fewshot_5shot_std`, ... in evaluator order."""
    out = {}
    for name in registry.EVALUATORS:
        part = result.get(name)
        if not isinstance(part, dict):
            continue
        if "top1" in part:
            out[f"{name}_top1"] = part["top1"]
        if isinstance(part.get("val_top1"), dict) and "l2" in part:
            # Validation top-1 at the chosen L2 (a part of train): what a study picks runs by.
            out[f"{name}_val_top1"] = part["val_top1"][str(part["l2"])]
        for key, value in part.items():  # nested results, e.g. fewshot's per-shot entries
            if isinstance(value, dict) and "top1" in value:
                out[f"{name}_{key}_top1"] = value["top1"]
                if "std" in value:
                    out[f"{name}_{key}_std"] = value["std"]
    return out


def over_seeds(per_seed: list[dict]) -> dict:
    """One row from the headlines of several seeds of a run: each number's mean under its own
    key, its standard deviation over seeds (ddof = 1) under KEY_std (for a top-1 NAME_top1:
    NAME_std), and every seed's own numbers under `seeds`. One seed: its numbers as they are."""
    if len(per_seed) == 1:
        return {**{k: v for k, v in per_seed[0].items() if k != "seed"}, "seeds": per_seed}
    row: dict = {}
    for key in per_seed[0]:
        if key == "seed" or key.endswith("_std"):
            continue
        values = np.array([s[key] for s in per_seed], np.float64)
        row[key] = float(values.mean())
        if key.endswith("_top1"):
            row[key.removesuffix("_top1") + "_std"] = float(values.std(ddof=1))
    row["seeds"] = per_seed
    return row


def difference(a: dict, b: dict, key: str = "linear_probe_top1") -> tuple[float, float | None]:
    """(mean of a − mean of b, its standard error) for rows over seeds; the error is None when
    either row has a single seed (no spread measured)."""
    sa = [s[key] for s in a.get("seeds", [a])]
    sb = [s[key] for s in b.get("seeds", [b])]
    diff = float(np.mean(sa) - np.mean(sb))
    if len(sa) < 2 or len(sb) < 2:
        return diff, None
    se = float(np.sqrt(np.var(sa, ddof=1) / len(sa) + np.var(sb, ddof=1) / len(sb)))
    return diff, se


def reading(a: dict, b: dict, key: str = "linear_probe_top1") -> str:
    """'A − B = d ± SE points: resolved / not resolved', the rule every study's text follows:
    a difference is stated only where it exceeds twice its standard error."""
    diff, se = difference(a, b, key)
    if se is None:
        return (f"{a['run']} − {b['run']} = {diff:+.2f} points (one seed: no spread measured, "
                "not resolved)")
    verdict = "resolved" if abs(diff) > 2 * se else "not resolved (within 2 standard errors)"
    return f"{a['run']} − {b['run']} = {diff:+.2f} ± {se:.2f} points (SE): {verdict}"


def compare(workdirs: list[str], dataset: str | None = None) -> str:
    """One Markdown table of the eval.json (or eval_NAME.json) of several run directories."""
    if not workdirs:
        raise UserError("--compare needs run directories: python eval.py --compare DIR1 DIR2 ...")
    rows = []
    for d in workdirs:
        result = registry.read_result(d, dataset)
        if result is None:
            name = os.path.basename(registry.result_path(d, dataset))
            raise UserError(f"{d} has no {name}: evaluate it first with "
                            f"python eval.py --workdir {d}" + (f" --dataset {dataset}" if dataset else ""))
        rows.append((d, result, headline(result)))
    table = markdown_table([{"run": d, "dataset": str(result.get("dataset", "")),
                             "step": str(result.get("step", ""))} for d, result, _ in rows],
                           [h for _, _, h in rows])
    return table + "\n\ntop-1 (%) on the test split; few-shot: mean ± std over seeds"


def markdown_table(leading: list[dict[str, str]], headlines: list[dict[str, float]],
                   trailing: list[dict[str, str]] | None = None) -> str:
    """A Markdown table, one row per run: its `leading` cells, then every top-1 of the
    `headline`s (with ± std where there is one; blank where a run lacks it), then `trailing`."""
    trailing = trailing or [{} for _ in leading]
    columns = list(dict.fromkeys(k for h in headlines for k in h if k.endswith("_top1")))
    names = list(leading[0]) + [c.removesuffix("_top1") for c in columns] + list(trailing[0])
    lines = ["| " + " | ".join(names) + " |",
             "|" + "---|" * len(leading[0]) + "---:|" * (len(columns) + len(trailing[0]))]
    for lead, h, trail in zip(leading, headlines, trailing, strict=True):
        cells = []
        for c in columns:
            std = h.get(c.removesuffix("_top1") + "_std")
            cells.append("" if c not in h else f"{h[c]:.2f}" + (f" ± {std:.2f}" if std is not None else ""))
        lines.append("| " + " | ".join([*lead.values(), *cells, *trail.values()]) + " |")
    return "\n".join(lines)


def machine_line(m: dict) -> str:
    """tasks.parallel.machine() in one sentence, for results.md."""
    kind = "" if m["device_kind"] == m["backend"] else f" ({m['device_kind']})"
    isa = f" ({', '.join(m['cpu_isa'])})" if m["cpu_isa"] else ""
    return (f"Machine: {m['cpu']}{isa}, {m['cpu_cores']} cores; JAX {m['jax']} on "
            f"{m['backend']}{kind}, {m['devices']} device(s), {m['processes']} process(es).")


def write(workdir: str, config, results: dict) -> None:
    """DIR/results.json, results.md (and views.png, copied from the best generated run) and
    results.png of a study, from the `results` of studies.run.run."""
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
    lines += [machine_line(results["machine"]), ""]
    lines += [markdown_table(leading, rows,
                                        [{"wall (s)": f"{r['wall_s']:.0f}"} for r in rows]),
              "", "top-1 (%) on the real test split; few-shot: mean ± std over seeds."]
    for name, info in results["other_runs"].items():
        lines.append(f"\n{name}: trained in {info['wall_s']:.0f} s")
    by_kind = {}
    for r in rows:  # the best run of each kind, picked on validation top-1 (never on test)
        pick = r.get("linear_probe_val_top1", r["linear_probe_top1"])
        best = by_kind.get(r["data"])
        if best is None or pick > best.get("linear_probe_val_top1", best["linear_probe_top1"]):
            by_kind[r["data"]] = r
    seeds = len(rows[0].get("seeds", [None])) if rows else 1
    lines.append(f"\nEach row: mean ± std over {seeds} seed(s) of training and evaluation. A "
                 "difference is stated only where it exceeds twice its standard error.")
    if {"generated", "real"} <= by_kind.keys():
        g, r = by_kind["generated"], by_kind["real"]
        ratio = 100 * g["linear_probe_top1"] / r["linear_probe_top1"]
        lines.append(f"\nBest generated-views encoder on validation top-1 ({g['run']}): its "
                     f"linear-probe test top-1 is {ratio:.1f}% of the real-data encoder's "
                     f"({r['run']}). {reading(g, r)}.")
        if "random" in by_kind:
            lines.append(f"Against the random encoder: {reading(g, by_kind['random'])}.")
        grid = os.path.join(workdir, g["run"], "views.png")
        if os.path.exists(grid):
            shutil.copy(grid, os.path.join(workdir, "views.png"))
            lines.append("\n![anchors beside their views](views.png)")
    if {"mix", "real"} <= by_kind.keys():
        m, r = by_kind["mix"], by_kind["real"]
        lines.append(f"\nBest mixed encoder on validation top-1 ({m['run']}) against real images "
                     f"alone ({r['run']}): {reading(m, r)}.")
    if {"forward_forward", "real"} <= by_kind.keys():
        f, r = by_kind["forward_forward"], by_kind["real"]
        lines.append(f"\nBest Forward-Forward encoder on validation top-1 ({f['run']}) against "
                     f"backprop on real images ({r['run']}): {reading(f, r)}.")
        if "random" in by_kind:
            lines.append(f"Against the random encoder: {reading(f, by_kind['random'])}.")
    lines += _fidelity_table(rows, x_label if swept else "σ")
    text = "\n".join(lines) + "\n"
    with open(os.path.join(workdir, "results.md"), "w") as f:
        f.write(text)
    from studies import plots  # matplotlib: 0.5 s of every train.py start, needed only here

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
