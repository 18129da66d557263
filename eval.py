"""The evaluation entry point: probes the encoder a run directory holds.

    python eval.py --workdir DIR [--dataset NAME] [--max_train N] [--max_test N]
    python eval.py --workdir DIR --fidelity_generator GEN_DIR [--fidelity_samples N] \
        [--fidelity_sigmas 0.1,0.5,1.0]

Extracts frozen features of real labelled images (the run's `eval.dataset`, by
default its `data.name`, or any TFDS classification dataset given with
--dataset), fits a linear probe (L2 chosen on a validation split of train) and a
weighted kNN, and writes DIR/eval.json. With --fidelity_generator it also adds
`fidelity`: precision, recall, density, coverage and their symmetric versions of
the generator's samples against real train images of its dataset, and of its
Gaussian-neighbour views at each σ of --fidelity_sigmas against their anchors and
against real images, in the feature space of DIR's encoder
(evaluators/sample_fidelity.py).
"""

from __future__ import annotations

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import app, flags, logging  # noqa: E402

from errors import UserError  # noqa: E402

FLAGS = flags.FLAGS


def define_flags() -> None:
    """The command line; defined only when eval.py runs as a program (it is also imported)."""
    flags.DEFINE_string("workdir", None, "run directory to evaluate")
    flags.DEFINE_string("dataset", None, "TFDS dataset to probe (default: the run's)")
    flags.DEFINE_string("data_dir", None, "TFDS data_dir (default: the run's)")
    flags.DEFINE_integer("max_train", None, "probe on the first N train examples")
    flags.DEFINE_integer("max_test", None, "test on the first N test examples")
    flags.DEFINE_bool("allow_unfinished", False,
                      "evaluate the latest checkpoint of an unfinished run")
    flags.DEFINE_string("fidelity_generator", None,
                        "generator directory whose samples to compare with real images")
    flags.DEFINE_integer("fidelity_samples", 5000, "generated and real images of the fidelity metrics")
    flags.DEFINE_list("fidelity_sigmas", [], "σ values of the views diagnostic (comma-separated)")
    flags.DEFINE_integer("fidelity_k", 5, "neighbour that sets a ball's radius in the fidelity metrics")


def evaluate(workdir: str, *, dataset: str | None = None, data_dir: str | None = None,
             max_train: int | None = None, max_test: int | None = None,
             allow_unfinished: bool = False, fidelity_generator: str | None = None,
             fidelity_samples: int = 5000, fidelity_sigmas: tuple[float, ...] = (),
             fidelity_k: int = 5) -> dict:
    """Evaluates the encoder in `workdir`; writes and returns eval.json's content."""
    from data import datasets
    from evaluators import features, knn, linear_probe

    start = time.time()
    config = features.load_config(workdir)
    e = config.eval
    name = dataset or e.dataset or config.data.name
    data_dir = config.data.data_dir if data_dir is None else data_dir
    encoder, variables, step = features.restore_encoder(workdir, config,
                                                        allow_unfinished=allow_unfinished)
    generator = _fidelity_generator(fidelity_generator, fidelity_samples, fidelity_k)
    load_size = config.data.load_size or config.data.image_size
    train = datasets.load(name, e.train_split, image_size=load_size, data_dir=data_dir,
                          max_examples=e.max_train if max_train is None else max_train)
    test = datasets.load(name, e.test_split, image_size=load_size, data_dir=data_dir,
                         max_examples=e.max_test if max_test is None else max_test)
    size = config.data.image_size
    train_x = features.extract(encoder, variables, train.images, size, e.batch_size)
    test_x = features.extract(encoder, variables, test.images, size, e.batch_size)
    result = {
        "workdir": os.path.abspath(workdir), "step": step, "dataset": name,
        "num_train": len(train), "num_test": len(test), "feature_dim": int(train_x.shape[1]),
        "linear_probe": linear_probe.evaluate(train_x, train.labels, test_x, test.labels,
                                              train.num_classes, list(e.l2_grid),
                                              val_fraction=e.val_fraction, steps=e.probe_steps,
                                              seed=config.seed),
        "knn": knn.evaluate(train_x, train.labels, test_x, test.labels, train.num_classes,
                            k=e.knn_k, temperature=e.knn_temperature),
    }
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
    path = os.path.join(workdir, "eval.json")
    with open(path + ".tmp", "w") as f:
        json.dump(result, f, indent=2)
    os.replace(path + ".tmp", path)
    return result


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
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)
    try:
        if FLAGS.workdir is None:
            raise UserError("--workdir is required")
        r = evaluate(FLAGS.workdir, dataset=FLAGS.dataset, data_dir=FLAGS.data_dir,
                     max_train=FLAGS.max_train, max_test=FLAGS.max_test,
                     allow_unfinished=FLAGS.allow_unfinished,
                     fidelity_generator=FLAGS.fidelity_generator,
                     fidelity_samples=FLAGS.fidelity_samples,
                     fidelity_sigmas=_sigmas(FLAGS.fidelity_sigmas),
                     fidelity_k=FLAGS.fidelity_k)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(2)
    print(f"{r['dataset']}: linear probe top-1 {r['linear_probe']['top1']:.2f}% "
          f"(L2 {r['linear_probe']['l2']:g}), kNN top-1 {r['knn']['top1']:.2f}% "
          f"-> {os.path.join(FLAGS.workdir, 'eval.json')}")
    if "fidelity" in r:
        f = r["fidelity"]["samples_vs_real"]
        print(f"generator samples vs real: sym_precision {f['sym_precision']:.3f}, "
              f"sym_recall {f['sym_recall']:.3f} (precision {f['precision']:.3f}, "
              f"recall {f['recall']:.3f})")


if __name__ == "__main__":
    define_flags()
    app.run(main)
