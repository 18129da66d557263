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

from errors import UserError
from evaluators import registry
from studies import plots


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
        for key, value in part.items():  # nested results, e.g. fewshot's per-shot entries
            if isinstance(value, dict) and "top1" in value:
                out[f"{name}_{key}_top1"] = value["top1"]
                if "std" in value:
                    out[f"{name}_{key}_std"] = value["std"]
    return out


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
    lines += [markdown_table(leading, rows,
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
