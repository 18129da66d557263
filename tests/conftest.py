"""Shared fixtures: one prepared copy of the embedded dataset for the whole session."""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import sys
import tempfile

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# One JAX compilation cache for the whole session, shared by the pytest-xdist workers
# (they inherit this environment) and the train.py/eval.py subprocesses of the tests:
# the smoke runs compile the same step functions many times, and a cached executable is
# the one XLA would compile again, so results do not change. A private temporary
# directory (mode 0700; JAX trusts its cache), removed at the end of the session.
_OWN_CACHE = "JAX_COMPILATION_CACHE_DIR" not in os.environ
if _OWN_CACHE:
    os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="genviews-test-jax-cache-")
    os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
    os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "-1"


# The suite compiles with XLA:CPU's LLVM optimisation at level 1 (default 2): it tests what
# the programs compute, not how fast XLA makes them, and compiling is most of the suite's
# time (a smoke step's generator and pixel views: 6.8 s -> 4.8 s to compile on a 2-core
# x86 CPU). Not level 0 (3.3 s): there XLA:CPU computed NaN gradients in the second Adam
# step of evaluators/generator_quality.py's judge, finite at levels 1 and 2 (measured,
# JAX 0.10.2). The workers and the tests' subprocesses inherit it; a level the user sets
# is kept.
#
# And with XLA:CPU's older elemental fusion code generator, not its MLIR fusion emitters
# (`--xla_cpu_use_fusion_emitters=false`): the genviews smoke step compiles in 8.3-8.8 s
# instead of 12.6-14.1 s (three alternated pairs at level 1, 2-core x86 CPU, JAX 0.10.2).
SUITE_XLA_FLAGS = ("--xla_backend_optimization_level=1", "--xla_cpu_use_fusion_emitters=false")


def _add_suite_xla_flags() -> None:
    # imported here, after the cache's variables above: JAX reads them when it is imported
    from tasks.parallel import add_xla_flags

    add_xla_flags(SUITE_XLA_FLAGS)


_add_suite_xla_flags()

# genviews' glibc malloc options (tasks/parallel.py, MALLOC_OPTIONS) make a training step
# faster and a compile slower (the quickstart-sized step: medians 11.9 -> 13.9 s to compile,
# 3 runs each on 2 cores; README: Speed on CPU); the suite is compile-bound, so its
# processes keep glibc's defaults: a glibc.malloc tunable in GLIBC_TUNABLES turns genviews'
# options off, and glibc reads it when a process starts, so the tests' train.py
# subprocesses see it. A malloc tunable the caller set is kept.
if "glibc.malloc." not in os.environ.get("GLIBC_TUNABLES", ""):
    os.environ["GLIBC_TUNABLES"] = ":".join(
        filter(None, [os.environ.get("GLIBC_TUNABLES", ""), "glibc.malloc.perturb=0"]))


# The heaviest test files, heaviest first (from `python -m pytest --durations=0`, 2026-12-01:
# from ~175 s down to ~20 s each on 2 cores). pytest-xdist's loadfile hands a worker the
# next file whenever it runs low; with the longest first (pyproject: --no-loadscope-reorder,
# which keeps this order instead of sorting files by their number of tests) the many short
# files even out the end, instead of one worker starting test_parallel.py when the other is
# nearly done. test_gpu_benchmark.py goes second: it needs no genviews_shapes, so its
# worker does not wait while the other prepares the dataset (tfds_dir).
HEAVIEST_FIRST = ("test_parallel.py", "test_gpu_benchmark.py", "test_train.py", "test_faults.py",
                  "test_view_types.py", "test_sprites.py", "test_prune.py", "test_steering.py",
                  "test_gan.py", "test_step_vs_pytorch.py", "test_probe_reference.py",
                  "test_sample_fidelity.py", "test_biggan.py", "test_views.py", "test_forward_forward.py",
                  "test_quickstart.py", "test_generator_quality.py")


def pytest_collection_modifyitems(items):
    rank = {name: i for i, name in enumerate(HEAVIEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable within a file


def pytest_unconfigure(config):
    if _OWN_CACHE and not os.environ.get("PYTEST_XDIST_WORKER"):
        shutil.rmtree(os.environ["JAX_COMPILATION_CACHE_DIR"], ignore_errors=True)


TEST_SPLIT_SIZES = {"train": 5_000, "test": 2_000}


@pytest.fixture(scope="session")
def tfds_dir(tmp_path_factory) -> str:
    """A TFDS data_dir holding genviews_shapes, prepared once for all test workers
    ($GENVIEWS_TEST_TFDS_DIR, or a directory shared by the pytest-xdist workers)."""
    from filelock import FileLock

    from data import datasets, shapes

    path = os.environ.get("GENVIEWS_TEST_TFDS_DIR")
    if not path:
        root = tmp_path_factory.getbasetemp()
        worker = os.environ.get("PYTEST_XDIST_WORKER")  # set in pytest-xdist's workers
        path = str((root.parent if worker else root) / "tfds")
    with FileLock(path.rstrip("/") + ".lock"):  # the other worker waits, then finds it prepared
        # The first TEST_SPLIT_SIZES examples of each split, the same images as the full
        # dataset's first ones (each is a pure function of its index): no test reads more,
        # and preparing 60,000 took ~40 s of the suite, with the other worker waiting.
        full = dict(shapes.SPLIT_SIZES)
        shapes.SPLIT_SIZES.update(TEST_SPLIT_SIZES)
        try:
            datasets.load("genviews_shapes", "test", image_size=32, data_dir=path, max_examples=10)
        finally:
            shapes.SPLIT_SIZES.update(full)
    return path


# The command lines' error tests run many short `python train.py ...` and `python eval.py ...`
# commands; each new interpreter spends ~4 s importing JAX, TensorFlow and genviews before
# it reads its flags. This server imports the two entry points once, then runs each command
# in a fork of itself: the child starts with nothing parsed and no JAX backend, sets argv,
# its directory and its own stdout and stderr, and runs the script's main as `python
# SCRIPT` runs it (absl's app.run with the script's flags and flag parser). Tests that need
# the real `python SCRIPT` (its __main__, signals, several processes) start it themselves.
_CLI_SERVER = r"""
import json, os, sys, traceback
import eval as eval_script, train as train_script
from absl import app

scripts = {"train.py": train_script, "eval.py": eval_script}
for line in sys.stdin:
    request = json.loads(line)
    pid = os.fork()
    if pid == 0:  # the command; its exit code is the status
        code = 1
        try:
            os.chdir(request["cwd"])
            with open(request["stdout"], "w") as out, open(request["stderr"], "w") as err:
                os.dup2(out.fileno(), 1)
                os.dup2(err.fileno(), 2)
            script = scripts[request["script"]]
            sys.argv = [request["script"], *request["args"]]
            script.define_flags()
            app.run(script.main, argv=sys.argv, flags_parser=getattr(script, "parse_flags",
                                                                    app.parse_flags_with_usage))
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    status = os.waitpid(pid, 0)[1]
    print(json.dumps(os.waitstatus_to_exitcode(status)), flush=True)
"""


class CommandLine:
    """Runs `python SCRIPT ARGS` in the repository root, as subprocess.run would (see above)."""

    def __init__(self, tmp_dir: str):
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env = dict(os.environ, JAX_PLATFORMS="cpu")
        self._tmp, self._root, self._count = tmp_dir, root, 0
        self._server = subprocess.Popen([sys.executable, "-c", _CLI_SERVER], cwd=root, env=env,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def __call__(self, script: str, *args: str):
        self._count += 1
        out, err = (os.path.join(self._tmp, f"{self._count}.{name}") for name in ("out", "err"))
        request = {"script": script, "args": [str(a) for a in args], "cwd": self._root,
                   "stdout": out, "stderr": err}
        self._server.stdin.write(json.dumps(request) + "\n")
        self._server.stdin.flush()
        ready, _, _ = select.select([self._server.stdout], [], [], 300)  # subprocess.run's timeout
        assert ready, f"python {script} {' '.join(map(str, args))} ran for over 300 s"
        reply = self._server.stdout.readline()
        assert reply, f"the command-line server stopped (exit code {self._server.poll()})"
        with open(out) as o, open(err) as e:
            return subprocess.CompletedProcess([script, *args], json.loads(reply), o.read(), e.read())

    def close(self):
        self._server.stdin.close()
        self._server.wait(timeout=60)


@pytest.fixture(scope="session")
def command_line(tmp_path_factory):
    """`command_line("train.py", *args)`: that command's CompletedProcess (returncode, stdout,
    stderr), from one server per test worker."""
    cli = CommandLine(str(tmp_path_factory.mktemp("cli")))
    yield cli
    cli.close()
