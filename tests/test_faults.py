"""A run directory survives interruptions, damage and misuse: a torn metrics line, a second
trainer on the same directory, a resume under another config, SIGINT, a damaged
checkpoint (garbled, truncated, or missing its manifest or metadata)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from configs import genviews
from data import rundir
from errors import UserError
from tasks import loop


def _config(steps=4):
    config = genviews.get_config("smoke")
    config.train.steps = steps
    # The learning-rate schedule's length, max(train.steps, optim.warmup_steps + 1), is
    # compiled into the step: with a warm-up of 4 steps, the runs of 2 and 4 steps below share
    # one compiled step (a compile of ~12 s on 2 cores) instead of two.
    config.optim.warmup_steps = 4
    config.train.log_every = 1
    config.train.ckpt_every = 2
    config.train.views_png = False  # faults in the loop and the run directory, not the PNG
    return config


def test_a_torn_metrics_line_and_a_torn_save_are_dropped_and_the_run_resumes(tmp_path, capsys):
    workdir = str(tmp_path / "run")
    loop.train(_config(2), workdir)
    assert not os.path.exists(os.path.join(workdir, "views.png"))  # train.views_png=False
    with open(os.path.join(workdir, rundir.METRICS), "a") as f:
        f.write('{"step": 3, "lo')  # a kill in the middle of a write
    # and a checkpoint save killed midway: Orbax's temporary folder, never a checkpoint
    interrupted = os.path.join(workdir, rundir.CHECKPOINTS, "4.orbax-checkpoint-tmp-1")
    os.makedirs(os.path.join(interrupted, "default"))
    loop.train(_config(4), workdir)
    assert "torn line" in capsys.readouterr().out
    assert not os.path.exists(interrupted)
    with open(os.path.join(workdir, rundir.METRICS)) as f:
        steps = [json.loads(line)["step"] for line in f]
    assert steps == [1, 2, 3, 4]


def test_a_second_trainer_on_the_same_directory_is_refused(tmp_path):
    workdir = rundir.prepare(str(tmp_path / "run"))
    with rundir.WorkdirLock(workdir):
        with pytest.raises(UserError, match="being trained by another process"):
            loop.train(_config(2), workdir)
    # The lock goes with its holder: the directory trains afterwards.
    loop.train(_config(2), workdir)


def test_a_resume_under_another_config_is_refused_and_changes_nothing(tmp_path):
    workdir = str(tmp_path / "run")
    loop.train(_config(2), workdir)
    with open(os.path.join(workdir, rundir.CONFIG)) as f:
        before = f.read()
    other = _config(4)
    other.optim.lr = 0.5
    with pytest.raises(UserError, match="optim.lr"):
        loop.train(other, workdir)
    with open(os.path.join(workdir, rundir.CONFIG)) as f:
        assert f.read() == before
    # Extending the run is a resumable change, and config.json then records it.
    loop.train(_config(4), workdir)
    assert rundir.read_config(workdir).train.steps == 4


def test_a_generator_directory_without_weights_is_one_line(tmp_path):
    from models import generators

    shipped = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "pretrained", "genviews_shapes")
    broken = tmp_path / "g"
    broken.mkdir()
    (broken / "generator.json").write_text(open(os.path.join(shipped, "generator.json")).read())
    with pytest.raises(UserError, match="has generator.json but no weights"):
        generators.load(str(broken))
    (broken / "generator").mkdir()  # present but empty: Orbax cannot read it
    with pytest.raises(UserError, match="cannot read the generator weights"):
        generators.load(str(broken))


def test_sigint_is_one_line_and_the_same_command_resumes(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    workdir = tmp_path / "run"
    command = [sys.executable, "train.py", "--config", "configs/genviews.py:smoke", "--workdir",
               str(workdir), "--config.train.steps=24", "--config.train.views_png=false"]
    # A background job inherits an ignored SIGINT, a user's terminal does not: restore it
    # (in a small launcher that execs train.py; no fork of this multithreaded process).
    launcher = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                "os.execv(sys.executable, [sys.executable] + sys.argv[1:])")
    proc = subprocess.Popen([sys.executable, "-c", launcher, *command[1:]], cwd=root,
                            stderr=subprocess.PIPE, text=True)
    metrics = workdir / rundir.METRICS
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if metrics.exists() and metrics.read_text().count("\n") >= 2:  # training, not compiling
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    err = proc.communicate(timeout=120)[1]
    assert proc.returncode == 2, err[-2000:]
    last = err.strip().splitlines()[-1]
    assert last.endswith(f"error: interrupted (SIGINT); the same command resumes {workdir} from "
                         "its last complete checkpoint"), last
    assert "Traceback" not in err
    done = subprocess.run(command, cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    steps = [json.loads(line)["step"] for line in metrics.read_text().splitlines()]
    assert steps[-1] == 24 and steps == sorted(set(steps))


def test_disk_full_is_found_inside_a_library_error():
    import errno

    import train

    full = OSError(errno.ENOSPC, "No space left on device", "/ckpt/7/array")
    try:
        try:
            raise full
        except OSError as e:
            raise RuntimeError("saving failed") from e
    except RuntimeError as wrapped:
        assert train._disk_full(wrapped) is full
    assert train._disk_full(ValueError("another error")) is None


def test_a_checkpoint_of_another_shape_is_one_line_and_changes_nothing(four_steps, tmp_path):
    import shutil

    workdir = str(tmp_path / "run")
    shutil.copytree(four_steps, workdir)
    os.remove(os.path.join(workdir, rundir.CONFIG))  # so only the checkpoint can tell
    wider = _config(6)
    wider.model.width = 16
    with pytest.raises(UserError, match="does not fit this config's model"):
        loop.train(wider, workdir)
    assert not os.path.exists(os.path.join(workdir, rundir.CONFIG))
    assert sorted(os.listdir(os.path.join(workdir, rundir.CHECKPOINTS))) == ["0", "2", "4"]


def _largest_file(step_dir):
    """The checkpoint's largest file: its array data."""
    return max((os.path.join(r, f) for r, _, fs in os.walk(step_dir) for f in fs),
               key=os.path.getsize)


def _garble(step_dir):
    """64 random bytes into the middle of the checkpoint's array data."""
    largest = _largest_file(step_dir)
    with open(largest, "r+b") as f:
        f.seek(os.path.getsize(largest) // 2)
        f.write(os.urandom(64))


def _truncate(step_dir):
    largest = _largest_file(step_dir)
    with open(largest, "r+b") as f:
        f.truncate(os.path.getsize(largest) // 3)


def _remove(name):
    return lambda step_dir: os.remove(os.path.join(step_dir, "default", name))


DAMAGES = {"garbled": _garble, "truncated": _truncate, "no_manifest": _remove("manifest.ocdbt"),
           "no_metadata": _remove("_METADATA")}


@pytest.fixture(scope="module")
def four_steps(tmp_path_factory):
    """A finished 4-step smoke run with checkpoints at steps 0, 2 and 4."""
    workdir = str(tmp_path_factory.mktemp("faults") / "run")
    config = _config(4)
    config.train.keep_checkpoints = 3
    loop.train(config, workdir)
    return workdir


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_checkpoint_is_named_and_the_one_before_it_is_used(four_steps, tmp_path,
                                                                     damage, capsys):
    import shutil

    from evaluators import features

    workdir = str(tmp_path / "run")
    shutil.copytree(four_steps, workdir)
    DAMAGES[damage](os.path.join(workdir, rundir.CHECKPOINTS, "4"))
    config = features.load_config(workdir)
    # eval.py: names the damaged step and evaluates nothing, or with --fallback_checkpoint
    # the newest readable one (step 2).
    with pytest.raises(UserError, match="checkpoint step 4 .* is damaged.*nothing evaluated"):
        features.restore_encoder(workdir, config)
    assert features.restore_encoder(workdir, config, fallback=True)[2] == 2
    # train.py: one line, the damaged directory kept aside, the run finished from step 2.
    manager = rundir.checkpoints(workdir, keep=3)
    state, step = rundir.restore(manager, rundir._on_one_device, fallback=True, keep_aside=True)
    manager.close()
    assert step == 2 and int(state["step"]) == 2
    out = capsys.readouterr().out
    assert "checkpoint step 4" in out and "kept as 4.damaged" in out
    assert sorted(os.listdir(os.path.join(workdir, rundir.CHECKPOINTS))) == ["0", "2", "4.damaged"]


def test_a_garbled_checkpoint_resumes_to_the_uninterrupted_result(four_steps, tmp_path):
    import shutil

    workdir = str(tmp_path / "run")
    shutil.copytree(four_steps, workdir)
    _garble(os.path.join(workdir, rundir.CHECKPOINTS, "4"))
    config = _config(4)
    config.train.keep_checkpoints = 3
    loop.train(config, workdir)  # redoes steps 3 and 4 from the checkpoint at step 2
    for a, b in zip(_leaves(workdir, 4), _leaves(four_steps, 4), strict=True):
        np.testing.assert_array_equal(a, b)
    # and steps 3 and 4 changed the parameters (the warm-up's learning rate is not zero there)
    before, after = _leaves(four_steps, 2, "params"), _leaves(four_steps, 4, "params")
    assert all(not np.array_equal(a, b) for a, b in zip(before, after, strict=True))


def _leaves(workdir, step, part=None):
    import jax

    manager = rundir.checkpoints(workdir)
    state = rundir.restore_on_one_device(manager, step)
    manager.close()
    return jax.tree.leaves(state if part is None else state[part])
