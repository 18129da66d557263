"""Studies: configs that list runs, train and evaluate each, and compare them.

A study config has a `study` field (its title), `runs` (name → an experiment
config) and `kinds` (name → "generated" | "real" | "mix" | "forward_forward" | "random" for encoders that are
probed, "" for runs that are not, like a generator). A run may name another
run's directory with "@NAME" in the keys of REFERENCES (e.g.
generator.checkpoint="@generator", views.walks="@walks"): that run is trained
first, and the key becomes its directory. Each run goes to DIR/NAME/ with the
usual contract, so a study resumes like a run; the comparison goes to
DIR/results.json, DIR/results.md and DIR/results.png (studies/report.py).

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
import time

import jax
import numpy as np

from data import rundir
from errors import ConfigError, UserError, check
from evaluators import features, registry, sample_fidelity
from studies import report
from tasks import loop
from tasks import validate as tasks_validate
from tasks.contrastive import load_generator
from tasks.forward_forward import uses_generator as ff_uses_generator
from tasks.parallel import machine

REFERENCES = ("generator.checkpoint", "views.walks")  # run keys that may name another run, "@NAME"


def _get(config, key: str):
    group, name = key.split(".")
    return config[group][name]


def _references(run_config) -> dict[str, str]:
    """{key: NAME} of the keys of a run config that name another run of the study ("@NAME")."""
    refs = {}
    for key in REFERENCES:
        value = _get(run_config, key)
        if isinstance(value, str) and value.startswith("@"):
            refs[key] = value[1:]
    return refs


def order(config) -> list[str]:
    """Run names with every run that another one names ("@NAME") before it; a ConfigError
    naming the key when a name is no run of the study, or runs name each other in a circle."""
    names = list(config.runs.keys())
    needs = {}
    for name in names:
        refs = _references(config.runs[name])
        for key, ref in refs.items():
            check(ref in names, f"runs.{name}.{key}", f"'@{ref}' names no run of the study")
        needs[name] = list(dict.fromkeys(refs.values()))
    ordered: list[str] = []

    def visit(name: str, path: tuple[str, ...]) -> None:
        check(name not in path, "runs", f"runs name each other in a circle: {' -> '.join(path)}")
        if name in ordered:
            return
        for ref in needs[name]:
            visit(ref, (*path, name))
        ordered.append(name)

    needed = {ref for refs in needs.values() for ref in refs}
    for name in [n for n in names if n in needed] + [n for n in names if n not in needed]:
        visit(name, ())
    return ordered


def resolve(run_config, workdir: str) -> None:
    """Replaces each "@NAME" of the run config's REFERENCES by the directory of run NAME."""
    for key, ref in _references(run_config).items():
        group, name = key.split(".")
        run_config[group][name] = os.path.join(workdir, ref)


def validate(config, num_devices: int = 1, num_processes: int = 1) -> None:
    """Every check of a config before any run: of a run config, its training keys
    (tasks/validate.py) and its eval section (evaluators/registry.py); of a study, its
    own keys, its references and each of its runs."""
    if "study" not in config:
        tasks_validate.validate(config, num_devices, num_processes)
        registry.validate(config)
        return
    names = order(config)
    for name in config.x.keys():
        check(name in names, "x", f"{name!r} names no run of the study")
    if config.fidelity.encoder.startswith("@"):
        check(config.fidelity.encoder[1:] in names, "fidelity.encoder",
              f"{config.fidelity.encoder!r} names no run of the study")
    check(config.get("seeds", 1) >= 1, "seeds", f"must be ≥ 1, got {config.get('seeds')}")
    check(config.fidelity.k >= 1, "fidelity.k", f"must be ≥ 1, got {config.fidelity.k}")
    check(config.fidelity.samples > config.fidelity.k, "fidelity.samples",
          f"must be > fidelity.k = {config.fidelity.k}, got {config.fidelity.samples}")
    unknown = [n for n in config.kinds.keys() if n not in names]
    if unknown:
        raise ConfigError(f"config key kinds: {unknown} are not runs of the study")
    for name in names:  # every run's config is checked before any of them starts
        try:
            validate(config.runs[name], num_devices, num_processes)
        except ConfigError as e:
            raise ConfigError(f"runs.{name}: {e}") from None


def _check_generator(name: str, run_config) -> None:
    """A run on a generator (or steering walks) named by path fails before any run starts
    when none is there."""
    g = run_config.generator
    if not ((run_config.get("task") == "contrastive" and run_config.data.source in ("generator", "mix"))
            or (run_config.get("task") == "forward_forward" and ff_uses_generator(run_config.ff))):
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
                        "configs/generator.py --workdir DIR) or name another with the config "
                        "arg generator=DIR (default: the shipped pretrained/genviews_shapes)")


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


def train_and_evaluate(config, directory: str, evaluate: bool = True) -> tuple[float, dict | None]:
    """Trains `config` in `directory` and evaluates it (eval.json); a finished run and an existing
    eval.json are kept. Returns (training wall seconds, eval.json's content or None)."""
    os.makedirs(directory, exist_ok=True)
    train_s = _timed(os.path.join(directory, "train_time.json"), lambda: loop.train(config, directory))
    if not evaluate:
        return train_s, None
    done = registry.read_result(directory) is not None
    if jax.process_count() > 1:  # decided once, by process 0: evaluate() is collective
        from jax.experimental import multihost_utils

        done = bool(multihost_utils.broadcast_one_to_all(np.int32(done)))
    if not done:
        return train_s, registry.evaluate(directory)
    return train_s, registry.read_result(directory)


def seed_directory(workdir: str, name: str, k: int) -> str:
    """Where seed k (config.seed + k) of run NAME lives: DIR/NAME for k = 0, DIR/NAME.seedK else."""
    return os.path.join(workdir, name if k == 0 else f"{name}.seed{k}")


def run(config, workdir: str, command: str = "") -> dict:
    """Trains and evaluates every run of the study; writes and returns results.json's content.

    `command`, the command line that started the study, is written into results.md.
    """
    validate(config, jax.device_count(), jax.process_count())
    workdir = rundir.prepare(workdir)
    names = order(config)
    for name in names:
        _check_generator(name, config.runs[name])
    rundir.write_config(workdir, config)

    rows, extra = [], {}
    seeds = config.get("seeds", 1)
    for i, name in enumerate(names):
        run_config = config.runs[name]
        resolve(run_config, workdir)
        kind = config.kinds.get(name, "")
        if not kind:  # a run that is not probed (a generator, walks) is trained once
            directory = os.path.join(workdir, name)
            print(f"[{i + 1}/{len(names)}] {name}: {directory}", flush=True)
            extra[name] = {"wall_s": train_and_evaluate(run_config, directory, evaluate=False)[0]}
            continue
        per_seed = []
        for k in range(seeds):
            seeded = run_config.copy_and_resolve_references()
            seeded.seed = run_config.seed + k
            directory = seed_directory(workdir, name, k)
            print(f"[{i + 1}/{len(names)}] {name}, seed {seeded.seed}: {directory}", flush=True)
            train_s, result = train_and_evaluate(seeded, directory)
            per_seed.append({"seed": seeded.seed, **report.headline(result),
                             "wall_s": train_s + result["wall_s"]})
            print(f"    linear probe {per_seed[-1]['linear_probe_top1']:.2f}%  "
                  f"kNN {per_seed[-1]['knn_top1']:.2f}%", flush=True)
        row = {"run": name, "data": kind, **report.over_seeds(per_seed)}
        if name in config.get("x", {}):
            row["x"] = config.x[name]
        rows.append(row)

    if config.get("fidelity") and config.fidelity.encoder:
        _add_fidelity(config, workdir, rows)
    results = {"study": config.study, "command": command, "machine": machine(), "rows": rows,
               "other_runs": extra}
    report.write(workdir, config, results)
    return results


def _add_fidelity(config, workdir: str, rows: list[dict]) -> None:
    """Adds `fidelity` (views against anchors and real images) to every generated run's row."""
    f = config.fidelity
    ref = os.path.join(workdir, f.encoder[1:]) if f.encoder.startswith("@") else f.encoder
    encoder = features.load(ref)
    real = encoder.dataset(encoder.config.data.name, encoder.config.eval.train_split,
                           max_examples=f.samples)
    for row in rows:
        if row["data"] != "generated":
            continue
        path = os.path.join(workdir, row["run"], "fidelity.json")
        if not os.path.exists(path):
            run_config = config.runs[row["run"]]
            sigma = run_config.views.sigma if run_config.views.latent == "gaussian" else 0.0
            result = sample_fidelity.evaluate(
                encoder.extract, load_generator(run_config), real, num_samples=f.samples,
                sigmas=[sigma], k=f.k, seed=f.seed, truncation=run_config.generator.truncation)
            views = next(iter(result.pop("views").values()))
            result = {"encoder": os.path.abspath(ref), "sigma": sigma, **result, **views}
            if jax.process_index() == 0:  # every process computed it
                with open(path, "w") as out:
                    json.dump(result, out, indent=2)
            row["fidelity"] = result
        else:
            with open(path) as fin:
                row["fidelity"] = json.load(fin)
        v = row["fidelity"]["vs_real"]
        print(f"    {row['run']}: views vs real sym_precision {v['sym_precision']:.3f} "
              f"sym_recall {v['sym_recall']:.3f}", flush=True)
