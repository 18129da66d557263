"""The evaluation entry point: probes the encoder a run directory holds.

    python eval.py --workdir DIR [--dataset NAME] [--max_train N] [--max_test N]

Extracts frozen features of real labelled images (the run's `eval.dataset`, by
default its `data.name`, or any TFDS classification dataset given with
--dataset), fits a linear probe (L2 chosen on a validation split of train) and a
weighted kNN, and writes DIR/eval.json.
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


def evaluate(workdir: str, *, dataset: str | None = None, data_dir: str | None = None,
             max_train: int | None = None, max_test: int | None = None,
             allow_unfinished: bool = False) -> dict:
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
    result["wall_s"] = time.time() - start
    path = os.path.join(workdir, "eval.json")
    with open(path + ".tmp", "w") as f:
        json.dump(result, f, indent=2)
    os.replace(path + ".tmp", path)
    return result


def main(argv) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)
    try:
        if FLAGS.workdir is None:
            raise UserError("--workdir is required")
        r = evaluate(FLAGS.workdir, dataset=FLAGS.dataset, data_dir=FLAGS.data_dir,
                     max_train=FLAGS.max_train, max_test=FLAGS.max_test,
                     allow_unfinished=FLAGS.allow_unfinished)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(2)
    print(f"{r['dataset']}: linear probe top-1 {r['linear_probe']['top1']:.2f}% "
          f"(L2 {r['linear_probe']['l2']:g}), kNN top-1 {r['knn']['top1']:.2f}% "
          f"-> {os.path.join(FLAGS.workdir, 'eval.json')}")


if __name__ == "__main__":
    define_flags()
    app.run(main)
