"""The evaluators, by name, and `evaluate`: what eval.py and the studies run on a run directory.

An evaluator is a module of evaluators/ with its own section of the config,
`eval.NAME` (its defaults are data, in configs/common.py), and two functions:

    validate(section) -> None    ConfigError naming the key of an impossible value
    run(probe) -> dict           its part of eval.json (`top1` in percent), from a Probe

A new evaluator is that module and one line in EVALUATORS. `evaluate` extracts the
frozen features of real labelled images once (evaluators/features.py) and runs each
evaluator of `eval.evaluators` on them; this module reads and writes eval.json.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from typing import Any

import jax

from configs.common import RENAMED
from errors import ConfigError, UserError, check
from evaluators import features, fewshot, knn, linear_probe, sample_fidelity, sgd_probe
from tasks.parallel import machine

# name -> module (its `validate` and `run`); the order is eval.json's and the tables'.
EVALUATORS = {
    "linear_probe": linear_probe,
    "linear_probe_genrep": sgd_probe,
    "knn": knn,
    "fewshot": fewshot,
}


@dataclasses.dataclass(frozen=True)
class Probe:
    """What an evaluator reads: the run's config, its frozen encoder, the probe data and features."""

    config: Any  # the run's resolved config (ml_collections.ConfigDict)
    encoder: Any
    variables: Any
    train: Any  # a source of data.datasets: labels, num_classes, read(rows)
    test: Any
    train_x: Any  # (N, d) features of train's images
    test_x: Any


def validate(c) -> None:
    """Rejects impossible values of a run config's `eval` section, naming the key."""
    for old, new in RENAMED.items():
        check(old.split(".")[1] not in c.eval, old, f"is now {new}")
    for name in c.eval.evaluators:
        check(name in EVALUATORS, "eval.evaluators", f"{name!r} is not one of {tuple(EVALUATORS)}")
    check(c.eval.batch_size > 0, "eval.batch_size", "must be > 0")
    for name, module in EVALUATORS.items():
        module.validate(c.eval[name])


def result_path(workdir: str, dataset: str | None = None) -> str:
    """DIR/eval.json, or DIR/eval_NAME.json for a transfer dataset NAME."""
    return os.path.join(workdir, f"eval_{dataset}.json" if dataset else "eval.json")


def read_result(workdir: str, dataset: str | None = None) -> dict | None:
    """DIR/eval.json (or eval_NAME.json), or None when DIR has none."""
    path = result_path(workdir, dataset)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def evaluate(workdir: str, *, dataset: str | None = None, data_dir: str | None = None,
             train_split: str | None = None, test_split: str | None = None,
             evaluators: list[str] | None = None, max_train: int | None = None,
             max_test: int | None = None, allow_unfinished: bool = False,
             fallback_checkpoint: bool = False, fidelity_generator: str | None = None,
             fidelity_samples: int = 5000, fidelity_sigmas: tuple[float, ...] = (),
             fidelity_k: int = 5) -> dict:
    """Evaluates the encoder in `workdir`; returns eval.json's content, which process 0 writes
    (every process of a multi-process job takes part and gets it).

    `dataset` other than the run's own probe dataset is a transfer target; its
    results go to eval_NAME.json. Raises UserError (one line) on a directory that is
    not a finished run, an unknown dataset or split, or an unknown evaluator.
    """
    start = time.time()
    config = features.load_config(workdir)
    e = config.eval
    own = e.dataset or config.data.name
    name = dataset or own
    names = list(evaluators or e.evaluators)
    unknown = [n for n in names if n not in EVALUATORS]
    if unknown:
        raise ConfigError(f"config key eval.evaluators: {unknown} are not among {tuple(EVALUATORS)}")
    validate(config)
    run = features.load(workdir, allow_unfinished=allow_unfinished, fallback=fallback_checkpoint)
    generator = sample_fidelity.load_generator(fidelity_generator, fidelity_samples, fidelity_k)
    train = run.dataset(name, train_split or e.train_split, data_dir=data_dir,
                        max_examples=e.max_train if max_train is None else max_train)
    test = run.dataset(name, test_split or e.test_split, data_dir=data_dir,
                       max_examples=e.max_test if max_test is None else max_test)
    for part in (train, test):  # ImageNet's test split: every label is -1
        if not len(part):
            raise UserError(f"split {part.split!r} of {name} has no examples to probe with")
        if int(part.labels.min()) < 0:
            raise UserError(f"split {part.split!r} of {name} has unlabelled examples (label -1); "
                            "probe on labelled splits (--train_split, --test_split)")
    probe = Probe(config=run.config, encoder=run.encoder, variables=run.variables, train=train,
                  test=test, train_x=run.extract(train), test_x=run.extract(test))
    result = {"workdir": os.path.abspath(workdir), "step": run.step, "dataset": name,
              "train_split": train.split, "test_split": test.split,
              "num_train": len(train), "num_test": len(test),
              "feature_dim": int(probe.train_x.shape[1]), "machine": machine()}
    for n in names:
        t = time.time()
        result[n] = EVALUATORS[n].run(probe)
        result[n]["wall_s"] = time.time() - t
    if generator is not None:
        g, trained_on = generator
        real_name = trained_on or name
        real = run.dataset(real_name, e.train_split, data_dir=data_dir, max_examples=fidelity_samples)
        result["fidelity"] = {
            "generator": os.path.abspath(fidelity_generator), "real_dataset": real_name,
            **sample_fidelity.evaluate(run.extract, g, real, num_samples=fidelity_samples,
                                       sigmas=fidelity_sigmas, k=fidelity_k, seed=config.seed)}
    result["wall_s"] = time.time() - start
    if jax.process_index() == 0:  # every process computed it; process 0 writes it
        path = result_path(workdir, None if name == own else name)
        with open(path + ".tmp", "w") as f:
            json.dump(result, f, indent=2)
        os.replace(path + ".tmp", path)
    return result
