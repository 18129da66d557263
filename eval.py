"""The evaluation entry point: probes the encoder a run directory holds.

    python eval.py --workdir DIR [--dataset NAME] [--evaluators a,b] [--max_train N] [--max_test N]
    python eval.py --compare DIR1 DIR2 ... [--dataset NAME]

Extracts frozen features of real labelled images (the run's `eval.dataset`, by
default its `data.name`, or any TFDS classification dataset given with
--dataset: transfer) and runs each evaluator of `eval.evaluators`
(evaluators/registry.py), each writing its part of DIR/eval.json
(DIR/eval_NAME.json for a transfer dataset). --compare prints one table of the
eval.json of several runs (studies/report.py). With --coordinator_address,
--num_processes and --process_id (as train.py), each process extracts its part of
the features on its devices, and process 0 writes eval.json.

With --fidelity_generator GEN_DIR it also adds `fidelity`: precision, recall,
density, coverage and their symmetric versions of the generator's samples against
real train images of its dataset, and of its Gaussian-neighbour views at each σ of
--fidelity_sigmas against their anchors and against real images, in the feature
space of DIR's encoder (evaluators/sample_fidelity.py):

    python eval.py --workdir DIR --fidelity_generator GEN_DIR [--fidelity_samples N] \
        [--fidelity_sigmas 0.1,0.5,1.0]
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from absl import app, flags, logging  # noqa: E402

from errors import UserError  # noqa: E402
from evaluators import registry  # noqa: E402
from studies import report  # noqa: E402
from tasks.parallel import initialize_distributed, set_cpu_flags  # noqa: E402

FLAGS = flags.FLAGS


def define_flags() -> None:
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
    flags.DEFINE_bool("fallback_checkpoint", False,
                      "when the latest checkpoint is damaged, evaluate the newest readable one "
                      "(eval.json's step says which)")
    flags.DEFINE_string("fidelity_generator", None,
                        "generator directory whose samples to compare with real images")
    flags.DEFINE_integer("fidelity_samples", 5000, "generated and real images of the fidelity metrics")
    flags.DEFINE_list("fidelity_sigmas", [], "σ values of the views diagnostic (comma-separated)")
    flags.DEFINE_integer("fidelity_k", 5, "neighbour that sets a ball's radius in the fidelity metrics")
    flags.DEFINE_string("coordinator_address", None, "multi-host: HOST:PORT of process 0")
    flags.DEFINE_integer("num_processes", None, "multi-host: number of processes")
    flags.DEFINE_integer("process_id", None, "multi-host: this process's id")
    flags.DEFINE_integer("init_timeout", 300, "multi-host: seconds to wait for every process")


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
    set_cpu_flags()
    try:
        if FLAGS.compare:
            print(report.compare(argv[1:], FLAGS.dataset))
            return
        if len(argv) > 1:
            raise UserError(f"unexpected arguments: {argv[1:]} (to compare runs: --compare DIR1 DIR2)")
        if FLAGS.workdir is None:
            raise UserError("--workdir is required")
        initialize_distributed(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id,
                               FLAGS.init_timeout)
        r = registry.evaluate(FLAGS.workdir, dataset=FLAGS.dataset, data_dir=FLAGS.data_dir,
                              train_split=FLAGS.train_split, test_split=FLAGS.test_split,
                              evaluators=FLAGS.evaluators, max_train=FLAGS.max_train,
                              max_test=FLAGS.max_test, allow_unfinished=FLAGS.allow_unfinished,
                              fallback_checkpoint=FLAGS.fallback_checkpoint,
                              fidelity_generator=FLAGS.fidelity_generator,
                              fidelity_samples=FLAGS.fidelity_samples,
                              fidelity_sigmas=_sigmas(FLAGS.fidelity_sigmas),
                              fidelity_k=FLAGS.fidelity_k)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(2)
    import jax

    if jax.process_index() != 0:  # process 0 reports
        return
    numbers = ", ".join(f"{k.removesuffix('_top1')} {v:.2f}%" for k, v in report.headline(r).items()
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
