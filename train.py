"""The training entry point: one loop for every task, and for studies.

    python train.py --config configs/FILE.py[:ARGS] --workdir DIR [--config.KEY=VALUE ...]

DIR receives `config.json`, `metrics.jsonl` (and TensorBoard events) and Orbax
`checkpoints/` (data/rundir.py). Running the same command again resumes from the
latest checkpoint; a finished run is not redone (tasks/loop.py). A study config
(one with a `study` field, e.g. configs/quickstart.py) runs each of its runs into
DIR/RUN/ and writes the comparison (studies/run.py).

Multi-host: `--coordinator_address HOST:PORT --num_processes N --process_id I`
are passed to `jax.distributed.initialize`; SLURM and TPU pods are detected as
JAX detects them (tasks/parallel.py). Each process feeds its own rows of each
global batch.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import sys
import traceback

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow only decodes data: keep it quiet

import jax  # noqa: E402
from absl import app, flags, logging  # noqa: E402
from ml_collections import config_flags  # noqa: E402

from configs.common import RENAMED  # noqa: E402
from errors import UserError  # noqa: E402
from studies import run as study  # noqa: E402
from tasks import loop  # noqa: E402
from tasks.parallel import initialize_distributed, set_cpu_flags  # noqa: E402

FLAGS = flags.FLAGS


def define_flags() -> None:
    config_flags.DEFINE_config_file("config", None, "experiment config file[:args]",
                                    lock_config=True)
    flags.DEFINE_string("workdir", None, "directory of the run (created if missing)")
    flags.DEFINE_string("coordinator_address", None, "multi-host: HOST:PORT of process 0")
    flags.DEFINE_integer("num_processes", None, "multi-host: number of processes")
    flags.DEFINE_integer("process_id", None, "multi-host: this process's id")
    flags.DEFINE_integer("init_timeout", 300,
                         "multi-host: seconds to wait for every process to connect")


def parse_flags(argv: list[str]) -> list[str]:
    """absl's flag parsing, with a one-line error for a bad config file or --config.KEY."""
    try:
        return flags.FLAGS(argv)
    except (flags.Error, OSError) as e:  # OSError: the config file cannot be read
        message = str(e)
        # A config file's get_config that refuses its args: its message, not the traceback.
        refused = re.search(r"errors\.(?:Config|User)Error: (.*)$", message, re.S)
        if refused:
            message = refused.group(1)
    except (AttributeError, KeyError) as e:  # ml_collections: a --config.KEY the config lacks
        text = str(e).replace("\\n", " ").replace("\\'", "").strip("'\"")
        overrides = [a[2:].split("=")[0] for a in argv if a.startswith("--config.")]
        renamed = next((o[len("config."):] for o in overrides if o[len("config."):] in RENAMED), None)
        name = re.search(r"^'?([\w-]+)", text)
        key = next((o for o in overrides if name and name.group(1) in o.split(".")), "?")
        message = (f"config key {renamed} is now {RENAMED[renamed]}" if renamed else
                   f"unknown config key {key[len('config.'):]}: {' '.join(text.split())}")
    except Exception as e:  # the config file itself fails: a syntax error, a NameError, ...
        message = f"config file {_failing_line(e, argv)}: {type(e).__name__}: {e}"
    print(f"error: {' '.join(message.split())}", file=sys.stderr, flush=True)
    sys.exit(2)


def _config_path(argv: list[str]) -> str:
    """The config file named by --config FILE[:ARGS] or --config=FILE[:ARGS], or ""."""
    for i, a in enumerate(argv):
        if a == "--config" and i + 1 < len(argv):
            return argv[i + 1].split(":", 1)[0]
        if a.startswith("--config="):
            return a[len("--config="):].split(":", 1)[0]
    return ""


def _failing_line(e: BaseException, argv: list[str]) -> str:
    """FILE, line N where loading the config file failed: its own innermost frame in e's
    traceback (the innermost frame of all when it has none), or a SyntaxError's place."""
    if isinstance(e, SyntaxError) and e.filename:
        return f"{e.filename}, line {e.lineno}"
    frames = traceback.extract_tb(e.__traceback__)
    path = os.path.abspath(_config_path(argv))
    mine = [f for f in frames if os.path.abspath(f.filename) == path] or frames[-1:]
    return f"{mine[-1].filename}, line {mine[-1].lineno}" if mine else "?"


_interrupted = False


def _on_sigint(signum, frame):
    global _interrupted
    _interrupted = True
    if not loop.request_stop():  # outside the step loop, or a second SIGINT: stop now
        raise KeyboardInterrupt


def main(argv) -> None:
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # not a background job
        signal.signal(signal.SIGINT, _on_sigint)
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    logging.set_verbosity(logging.WARNING)  # Orbax and TFDS log every file at INFO
    set_cpu_flags()
    try:
        if FLAGS.workdir is None:
            raise UserError("--workdir is required")
        if FLAGS.config is None:
            raise UserError("--config is required")
        initialize_distributed(FLAGS.coordinator_address, FLAGS.num_processes, FLAGS.process_id,
                               FLAGS.init_timeout)
        config = FLAGS.config
        try:
            config.keys()  # a config file that failed to load raises here
        except OSError as e:
            raise UserError(f"cannot load --config: {' '.join(str(e).split())}") from None
        if "study" in config:
            study.run(config, FLAGS.workdir, command=" ".join(["python", *sys.argv]))
        else:
            study.validate(config, jax.device_count(), jax.process_count())  # eval keys too
            loop.train(config, FLAGS.workdir)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        sys.exit(2)
    except BaseException as e:
        if isinstance(e, KeyboardInterrupt) or _interrupted:
            # SIGINT raises KeyboardInterrupt where it lands; inside an Orbax save it can
            # surface as another error of the interrupted save.
            message = (f"interrupted (SIGINT); the same command resumes {FLAGS.workdir} from "
                       "its last complete checkpoint")
        elif (full := _disk_full(e)) is not None:
            message = (f"no space left on the device writing {full.filename or FLAGS.workdir}; "
                       "free some and run the same command: it resumes from the last complete "
                       "checkpoint")
        else:
            raise
        print(f"error: {message}", file=sys.stderr, flush=True)
        sys.exit(2)


def _disk_full(e: BaseException) -> OSError | None:
    """The 'no space left' OSError in e's chain of causes (libraries wrap it), if any."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return e
        e = e.__cause__ or e.__context__
    return None


if __name__ == "__main__":
    define_flags()
    app.run(main, flags_parser=parse_flags)
