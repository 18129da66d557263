"""The evaluation entry point: probes the encoder a run directory holds.

    python eval.py --workdir DIR [--dataset NAME] [--evaluators a,b] [--max_train N] [--max_test N]
    python eval.py --compare DIR1 DIR2 ... [--dataset NAME]

Extracts frozen features of real labelled images (the run's `eval.dataset`, by
default its `data.name`, or any TFDS classification dataset given with
--dataset: transfer) and runs each evaluator of `eval.evaluators` (EVALUATORS
below), each writing its part of DIR/eval.json (DIR/eval_NAME.json for a
transfer dataset). --compare prints one table of the eval.json of several runs.

With --fidelity_generator GEN_DIR it also adds `fidelity`: precision, recall,
density, coverage and their symmetric versions of the generator's samples against
real train images of its dataset, and of its Gaussian-neighbour views at each σ of
--fidelity_sigmas against their anchors and against real images, in the feature
space of DIR's encoder (evaluators/sample_fidelity.py):

    python eval.py --workdir DIR --fidelity_generator GEN_DIR [--fidelity_samples N] \
        [--fidelity_sigmas 0.1,0.5,1.0]
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import app, flags, logging  # noqa: E402

from errors import ConfigError, UserError  # noqa: E402

FLAGS = flags.FLAGS


def define_flags() -> None:
    """The command line; defined only when eval.py runs as a program (it is also imported)."""
    flags.DEFINE_string("workdir", None, "run directory to evaluate")
    flags.DEFINE_bool("compare", False, "print one table of the eval.json of the run directories "
                      "given as arguments")
    flags.DEFINE_string("dataset", None, "TFDS dataset to probe (default: the run's)")
    flags.DEFINE_string("train_split", None, "split the probes are fit on (default: the run's)")
    flags.DEFINE_string("test_split", None, "split the probes are tested on (default: the run's)")
    flags.DEFINE_string("data_dir", None, "TFDS data_dir (default: the run's)")
    flags.DEFINE_list("evaluators", None, "evaluators to run (default: the run's eval.evaluators)")
    flags.DEFINE_integer("max_train", None, "probe on the first N train examples")
    flags.DEFINE_integer("max_test", None, "test on the first N test examples")
    flags.DEFINE_bool("allow_unfinished", False,
                      "evaluate the latest checkpoint of an unfinished run")
    flags.DEFINE_string("fidelity_generator", None,
                        "generator directory whose samples to compare with real images")
    flags.DEFINE_integer("fidelity_samples", 5000, "generated and real images of the fidelity metrics")
    flags.DEFINE_list("fidelity_sigmas", [], "σ values of the views diagnostic (comma-separated)")
    flags.DEFINE_integer("fidelity_k", 5, "neighbour that sets a ball's radius in the fidelity metrics")


@dataclasses.dataclass(frozen=True)
class Probe:
    """What an evaluator reads: the run's config, its frozen encoder, the probe data and features."""

    config: Any  # the run's resolved config (ml_collections.ConfigDict)
    encoder: Any
    variables: Any
    train: Any  # data.datasets.Dataset
    test: Any
    train_x: Any  # (N, d) features of train.images
    test_x: Any


def _linear_probe(p: Probe) -> dict:
    from evaluators import linear_probe

    e = p.config.eval
    return linear_probe.evaluate(p.train_x, p.train.labels, p.test_x, p.test.labels,
                                 p.train.num_classes, list(e.l2_grid), val_fraction=e.val_fraction,
                                 steps=e.probe_steps, seed=p.config.seed)


def _linear_probe_genrep(p: Probe) -> dict:
    from evaluators import features, sgd_probe

    e = p.config.eval
    if e.genrep_augment:
        embed = features.augmented(p.encoder, p.variables, p.config.data.image_size,
                                   e.genrep_crop_scale_min)
        inputs = p.train.images
    else:
        embed, inputs = sgd_probe.fixed_features, p.train_x
    return sgd_probe.evaluate(embed, inputs, p.train.labels, p.test_x, p.test.labels,
                              p.train.num_classes, augment=e.genrep_augment, epochs=e.genrep_epochs,
                              lr=e.genrep_lr, milestones=tuple(e.genrep_milestones),
                              decay=e.genrep_decay, batch_size=e.genrep_batch_size,
                              seed=p.config.seed)


def _knn(p: Probe) -> dict:
    from evaluators import knn

    e = p.config.eval
    return knn.evaluate(p.train_x, p.train.labels, p.test_x, p.test.labels, p.train.num_classes,
                        k=e.knn_k, temperature=e.knn_temperature)


def _fewshot(p: Probe) -> dict:
    from evaluators import fewshot

    e = p.config.eval
    return fewshot.evaluate(p.train_x, p.train.labels, p.test_x, p.test.labels, p.train.num_classes,
                            shots=tuple(e.fewshot_shots), seeds=e.fewshot_seeds, l2=e.fewshot_l2)


# name -> evaluator; each returns the part of eval.json under its name (`top1` in percent).
EVALUATORS: dict[str, Callable[[Probe], dict]] = {
    "linear_probe": _linear_probe,
    "linear_probe_genrep": _linear_probe_genrep,
    "knn": _knn,
    "fewshot": _fewshot,
}


def _with_defaults(config):
    """The run's config with the eval keys it predates filled in from configs/common.py."""
    from configs import common

    defaults = common.base().eval
    for key in defaults.keys():
        if key not in config.eval:
            config.eval[key] = defaults[key]
    return config


def result_path(workdir: str, dataset: str | None = None) -> str:
    """DIR/eval.json, or DIR/eval_NAME.json for a transfer dataset NAME."""
    return os.path.join(workdir, f"eval_{dataset}.json" if dataset else "eval.json")


def evaluate(workdir: str, *, dataset: str | None = None, data_dir: str | None = None,
             train_split: str | None = None, test_split: str | None = None,
             evaluators: list[str] | None = None, max_train: int | None = None,
             max_test: int | None = None, allow_unfinished: bool = False,
             fidelity_generator: str | None = None, fidelity_samples: int = 5000,
             fidelity_sigmas: tuple[float, ...] = (), fidelity_k: int = 5) -> dict:
    """Evaluates the encoder in `workdir`; writes and returns eval.json's content.

    `dataset` other than the run's own probe dataset is a transfer target; its
    results go to eval_NAME.json. Raises UserError (one line) on a directory that is
    not a finished run, an unknown dataset or split, or an unknown evaluator.
    """
    from data import datasets
    from evaluators import features

    start = time.time()
    config = _with_defaults(features.load_config(workdir))
    e = config.eval
    own = e.dataset or config.data.name
    name = dataset or own
    names = list(evaluators or e.evaluators)
    unknown = [n for n in names if n not in EVALUATORS]
    if unknown:
        raise ConfigError(f"config key eval.evaluators: {unknown} are not among {tuple(EVALUATORS)}")
    data_dir = config.data.data_dir if data_dir is None else data_dir
    encoder, variables, step = features.restore_encoder(workdir, config,
                                                        allow_unfinished=allow_unfinished)
    generator = _fidelity_generator(fidelity_generator, fidelity_samples, fidelity_k)
    load_size = config.data.load_size or config.data.image_size
    train = datasets.load(name, train_split or e.train_split, image_size=load_size, data_dir=data_dir,
                          max_examples=e.max_train if max_train is None else max_train)
    test = datasets.load(name, test_split or e.test_split, image_size=load_size, data_dir=data_dir,
                         max_examples=e.max_test if max_test is None else max_test)
    size = config.data.image_size
    probe = Probe(config=config, encoder=encoder, variables=variables, train=train, test=test,
                  train_x=features.extract(encoder, variables, train.images, size, e.batch_size),
                  test_x=features.extract(encoder, variables, test.images, size, e.batch_size))
    result = {"workdir": os.path.abspath(workdir), "step": step, "dataset": name,
              "train_split": train.split, "test_split": test.split,
              "num_train": len(train), "num_test": len(test),
              "feature_dim": int(probe.train_x.shape[1])}
    for n in names:
        t = time.time()
        result[n] = EVALUATORS[n](probe)
        result[n]["wall_s"] = time.time() - t
    if generator is not None:
        from evaluators import sample_fidelity
        real_name = generator[1] or name
        real = datasets.load(real_name, e.train_split, image_size=load_size, data_dir=data_dir,
                             max_examples=fidelity_samples)
        result["fidelity"] = {
            "generator": os.path.abspath(fidelity_generator), "real_dataset": real_name,
            **sample_fidelity.evaluate(
                lambda images: features.extract(encoder, variables, images, size, e.batch_size),
                generator[0], real.images, num_samples=fidelity_samples,
                sigmas=fidelity_sigmas, k=fidelity_k, seed=config.seed)}
    result["wall_s"] = time.time() - start
    path = result_path(workdir, None if name == own else name)
    with open(path + ".tmp", "w") as f:
        json.dump(result, f, indent=2)
    os.replace(path + ".tmp", path)
    return result


def headline(result: dict) -> dict[str, float]:
    """The top-1 numbers (%) of one eval.json, flat: `linear_probe_top1`, `knn_top1`,
    `fewshot_5shot_top1` (mean over seeds) and `fewshot_5shot_std`, ... in evaluator order."""
    out = {}
    for name in EVALUATORS:
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
        path = result_path(d, dataset)
        if not os.path.exists(path):
            raise UserError(f"{d} has no {os.path.basename(path)}: evaluate it first with "
                            f"python eval.py --workdir {d}" + (f" --dataset {dataset}" if dataset else ""))
        with open(path) as f:
            result = json.load(f)
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


def _fidelity_generator(directory: str | None, samples: int, k: int):
    """(the generator in `directory`, the dataset it was trained on or "") or None; fails early."""
    if directory is None:
        return None
    from evaluators import features
    from models import generators

    if not os.path.isdir(directory):
        raise UserError(f"--fidelity_generator {directory}: no such directory")
    if not 0 < k < samples:
        raise UserError(f"--fidelity_k={k} must be in [1, --fidelity_samples={samples})")
    generator = generators.load(directory)
    # A generator genviews trained records its dataset; a converted one does not.
    trained_on = ""
    if os.path.exists(os.path.join(directory, "config.json")):
        trained_on = features.load_config(directory).data.name
    return generator, trained_on


def _sigmas(values: list[str]) -> tuple[float, ...]:
    try:
        sigmas = tuple(float(v) for v in values)
    except ValueError:
        raise UserError(f"--fidelity_sigmas={','.join(values)}: not a list of numbers") from None
    if any(not s >= 0 for s in sigmas):
        raise UserError(f"--fidelity_sigmas={','.join(values)}: every σ must be ≥ 0")
    return sigmas


def main(argv) -> None:
    logging.set_verbosity(logging.WARNING)
    try:
        if FLAGS.compare:
            print(compare(argv[1:], FLAGS.dataset))
            return
        if len(argv) > 1:
            raise UserError(f"unexpected arguments: {argv[1:]} (to compare runs: --compare DIR1 DIR2)")
        if FLAGS.workdir is None:
            raise UserError("--workdir is required")
        r = evaluate(FLAGS.workdir, dataset=FLAGS.dataset, data_dir=FLAGS.data_dir,
                     train_split=FLAGS.train_split, test_split=FLAGS.test_split,
                     evaluators=FLAGS.evaluators, max_train=FLAGS.max_train,
                     max_test=FLAGS.max_test, allow_unfinished=FLAGS.allow_unfinished,
                     fidelity_generator=FLAGS.fidelity_generator,
                     fidelity_samples=FLAGS.fidelity_samples,
                     fidelity_sigmas=_sigmas(FLAGS.fidelity_sigmas),
                     fidelity_k=FLAGS.fidelity_k)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(2)
    numbers = ", ".join(f"{k.removesuffix('_top1')} {v:.2f}%" for k, v in headline(r).items()
                        if k.endswith("_top1"))
    print(f"{r['dataset']} ({r['num_train']} train, {r['num_test']} test): {numbers}")
    if "fidelity" in r:
        f = r["fidelity"]["samples_vs_real"]
        print(f"generator samples vs real: sym_precision {f['sym_precision']:.3f}, "
              f"sym_recall {f['sym_recall']:.3f} (precision {f['precision']:.3f}, "
              f"recall {f['recall']:.3f})")


if __name__ == "__main__":
    define_flags()
    app.run(main)
