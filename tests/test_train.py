"""The training loop: the loss falls, runs resume to the same result, bad input is refused."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import orbax.checkpoint as ocp
import pytest

from configs import genviews
from data.rundir import restore_on_one_device
from errors import NonFiniteLoss
from tasks import loop


def _metrics(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return [json.loads(line) for line in f]


def _params(workdir, step):
    manager = ocp.CheckpointManager(os.path.join(workdir, "checkpoints"))
    restored = restore_on_one_device(manager, step)
    manager.close()
    return restored["params"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    # The smoke config as it is (6 steps, logged every 2, saved every 3): the tests below that
    # build its step themselves then find it compiled (the suite's compilation cache).
    workdir = str(tmp_path_factory.mktemp("run") / "gv")
    # No views.png (train.views_png=false, as smoke configs are): its grid would compile the
    # views again at its shapes (9 s on 2 cores). The loop writes it when asked:
    # tests/test_view_types.py (generated views of the shipped generator, and an export),
    # tests/test_steering.py and tests/test_quickstart.py.
    config = genviews.get_config("smoke")
    loop.train(config, workdir)
    return config, workdir


def test_run_directory_contract(finished_run):
    _, workdir = finished_run
    for name in ("config.json", "metrics.jsonl", "checkpoints"):
        assert os.path.exists(os.path.join(workdir, name)), name
    lines = _metrics(workdir)
    assert [m["step"] for m in lines] == [2, 4, 6]
    assert all({"step", "loss", "examples_per_sec"} <= m.keys() for m in lines)
    # TensorBoard's own record reader (the one it uses without TensorFlow; it checks each
    # record's CRCs) finds the same losses in DIR/tensorboard.
    from tensorboard.compat.proto import event_pb2
    from tensorboard.compat.tensorflow_stub import errors
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import PyRecordReader_New

    logged = []
    logdir = os.path.join(workdir, "tensorboard")
    for name in sorted(os.listdir(logdir)):
        reader = PyRecordReader_New(os.path.join(logdir, name).encode())
        while True:
            try:
                reader.GetNext()
            except errors.OutOfRangeError:
                break
            event = event_pb2.Event.FromString(reader.record())
            logged += [(event.step, v.simple_value) for v in event.summary.value if v.tag == "loss"]
    assert [step for step, _ in logged] == [m["step"] for m in lines]
    np.testing.assert_allclose([v for _, v in logged], [m["loss"] for m in lines], rtol=1e-6)


def test_a_train_step_lowers_the_loss_of_its_batch():
    # The step's update descends the loss of the views it trained on. (The logged loss of
    # a smoke run is of a new batch each step, too noisy at batch 16 to show learning in a
    # few steps; the studies in results/ show learning at scale.)
    import jax
    import jax.numpy as jnp

    import losses
    import tasks
    from tasks.parallel import Runner

    config = genviews.get_config("smoke")
    task = tasks.get(config)
    runner = Runner(task.step, config.parallel, task.frozen)
    state = jax.device_get(task.init_state())
    batch = next(task.batches(0))
    views = jax.jit(task.make_views)(0, jnp.asarray(batch["index"]))

    @jax.jit  # one compilation for both states
    def loss(params, batch_stats):
        def apply(x):
            return task.model.apply({"params": params, "batch_stats": batch_stats}, x, None,
                                    train=True, mutable=["batch_stats"])[0][1]
        proj = jax.vmap(apply, axis_name="data")((views["image"] * 2.0 - 1.0)[None])[0]
        return losses.contrastive(proj, views["id"], loss_name=config.loss.name,
                                  temperature=config.loss.temperature,
                                  base_temperature=config.loss.base_temperature)

    new, metrics = runner(runner.put_state(jax.tree.map(np.array, state)), runner.put_batch(batch))
    new = jax.device_get(runner.get_state(new))
    before, after = (float(loss(s.params, s.batch_stats)) for s in (state, new))
    assert abs(runner.metrics(metrics)["contrastive_loss"] - before) < 1e-4 * before  # the same loss
    assert after < before - 1e-3, (before, after)


def test_the_generator_parameters_are_an_argument_of_the_compiled_step():
    # Not constants folded into the program: other parameter values give another update from
    # the same executable (no new compilation), the update that a runner built for them gives.
    import jax

    import tasks
    from tasks.parallel import Runner

    config = genviews.get_config("smoke")
    task = tasks.get(config)
    state = jax.tree.map(np.array, jax.device_get(task.init_state()))
    batch = next(task.batches(0))
    other = jax.tree.map(lambda p: np.asarray(p) * 0.5, task.frozen)

    def step(runner):
        new, metrics = runner(runner.put_state(state), runner.put_batch(batch))
        return runner.metrics(metrics)["contrastive_loss"], np.asarray(
            jax.tree.leaves(runner.get_state(new).params)[0])

    runner = Runner(task.step, config.parallel, task.frozen)
    loss, _ = step(runner)
    runner.frozen = runner.put_state(other)
    swapped_loss, swapped = step(runner)
    assert runner._step._cache_size() == 1  # the same executable ran both
    fresh_loss, fresh = step(Runner(task.step, config.parallel, other))
    assert abs(swapped_loss - loss) > 1e-3 * abs(loss)  # the views changed with the parameters
    assert swapped_loss == fresh_loss
    np.testing.assert_array_equal(swapped, fresh)


def test_interrupted_run_resumes_to_the_same_result(finished_run, tmp_path):
    config, workdir = finished_run
    copy = str(tmp_path / "copy")
    shutil.copytree(workdir, copy)
    # Interrupted after the checkpoint of step 3: the last checkpoint and log lines are lost.
    shutil.rmtree(os.path.join(copy, "checkpoints", "6"))
    with open(os.path.join(copy, "metrics.jsonl"), "a") as f:
        f.write(json.dumps({"step": 4, "loss": 123.0, "examples_per_sec": 1.0}) + "\n")
    loop.train(config, copy)
    # Same machine, same process, same executable: resuming is exact (as kill_resume measures).
    np.testing.assert_array_equal(_flat(_params(copy, 6)), _flat(_params(workdir, 6)))
    strip = lambda ms: [(m["step"], m["loss"]) for m in ms]  # noqa: E731
    assert strip(_metrics(copy)) == strip(_metrics(workdir))


def test_finished_run_is_not_redone(finished_run, capsys):
    config, workdir = finished_run
    before = _metrics(workdir)
    loop.train(config, workdir)
    assert "already finished" in capsys.readouterr().out
    assert _metrics(workdir) == before


def _leaves(tree):
    import jax
    return jax.tree.leaves(tree)


def _flat(tree):
    return np.concatenate([np.ravel(v) for v in _leaves(tree)])


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    config = genviews.get_config("smoke")
    config.optim.lr = 1e30
    config.train.steps = 8
    config.train.ckpt_every = 1
    config.train.log_every = 1
    workdir = str(tmp_path / "nan")
    with pytest.raises(NonFiniteLoss, match="last good checkpoint"):
        loop.train(config, workdir)
    manager = ocp.CheckpointManager(os.path.join(workdir, "checkpoints"))
    step = manager.latest_step()
    assert step is not None and step < 8
    manager.close()
    assert np.all(np.isfinite(_flat(_params(workdir, step))))


@pytest.mark.parametrize("args,expected", [
    (["--config.optim.lrr=0.1"], "unknown config key optim.lrr"),
    (["--config.optim.lr=-1"], "config key optim.lr: must be > 0"),
    (["--config.train.batch_size=0"], "config key train.batch_size"),
    (["--config.views.latent=angularr"], "config key views.latent"),
    (["--config.generator.init=checkpoint", "--config.generator.checkpoint=/no/such/dir"],
     "no generator checkpoint in /no/such/dir"),
])
def test_bad_input_is_one_line_and_overwrites_nothing(tmp_path, args, expected, command_line):
    workdir = tmp_path / "run"
    workdir.mkdir()
    (workdir / "config.json").write_text("precious")
    result = command_line("train.py", "--config", "configs/genviews.py:smoke", "--workdir", workdir,
                          *args)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and expected in last, result.stderr[-2000:]
    assert (workdir / "config.json").read_text() == "precious"
    assert sorted(os.listdir(workdir)) == ["config.json"]


def _one_line_error(result) -> str:
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
    return lines[0]


def test_config_errors_found_after_loading_are_one_line(tmp_path, command_line):
    # supcon on a generator that turns out unconditional only when it is loaded
    import jax

    from models import generators

    g = generators.build("dcgan", {"z_dim": 16, "num_classes": 0, "resolution": 32, "width": 8})
    generators.save(str(tmp_path / "g"), g, jax.jit(g.init)(jax.random.key(0)))
    line = _one_line_error(command_line(
        "train.py", "--config", "configs/genviews.py:smoke", "--workdir", tmp_path / "supcon",
        "--config.generator.init=checkpoint", f"--config.generator.checkpoint={tmp_path / 'g'}",
        "--config.loss.name=supcon"))
    assert "config key loss.name: supcon needs classes" in line
    # a generator family that can be loaded but not pretrained here
    line = _one_line_error(command_line("train.py", "--config", "configs/generator.py:smoke",
                                        "--workdir", tmp_path / "gan",
                                        "--config.generator.family=biggan_deep"))
    assert "config key generator.family" in line


def test_a_renamed_key_names_its_new_name(tmp_path, command_line):
    line = _one_line_error(command_line("train.py", "--config", "configs/genviews.py:smoke",
                                        "--workdir", tmp_path / "run", "--config.eval.knn_k=5"))
    assert line == "error: config key eval.knn_k is now eval.knn.k"
    assert not os.path.exists(tmp_path / "run")


def test_a_mistyped_config_arg_is_one_line(tmp_path, command_line):
    line = _one_line_error(command_line("train.py", "--config", "configs/real.py:smok",
                                        "--workdir", tmp_path / "r"))
    assert line == "error: unknown config arg 'smok'; this config knows ['smoke']"
    assert not os.path.exists(tmp_path / "r")


@pytest.mark.parametrize("body, line, arg", [("def get_config(arg=None:\n    pass\n", 1, ""),
                                             ("import ml_collections\n\ndef get_config(arg=None):\n"
                                              "    return undefined_name\n", 4, ":smoke"),
                                             # raised inside a library: still the config's line
                                             ("import fractions\n\ndef get_config(arg=None):\n"
                                              "    return fractions.Fraction(1, 0)\n", 4, "")])
def test_a_config_file_that_does_not_load_is_one_line_naming_its_line(tmp_path, body, line, arg,
                                                                      command_line):
    path = tmp_path / "broken.py"  # with and without a config arg: `arg`
    path.write_text(body)
    error = _one_line_error(command_line("train.py", "--config", f"{path}{arg}", "--workdir",
                                         tmp_path / "run"))
    assert error.startswith(f"error: config file {path}, line {line}: ")
    assert not (tmp_path / "run").exists()


def test_unknown_dataset_and_unwritable_workdir(tmp_path, tfds_dir, command_line):
    result = command_line("train.py", "--config", "configs/real.py:smoke", "--workdir", tmp_path / "r",
                          "--config.data.name=no_such_dataset")
    assert result.returncode == 2 and "unknown dataset 'no_such_dataset'" in result.stderr
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = command_line("train.py", "--config", "configs/genviews.py:smoke", "--workdir",
                          blocker / "run")
    assert result.returncode == 2 and "is not writable" in result.stderr


def test_eval_json_has_every_evaluator(finished_run, tfds_dir):
    from evaluators import registry

    _, workdir = finished_run
    r = registry.evaluate(workdir, data_dir=tfds_dir, max_train=300, max_test=100,
                            evaluators=["linear_probe", "knn", "fewshot", "linear_probe_genrep"])
    with open(os.path.join(workdir, "eval.json")) as f:
        assert json.load(f) == json.loads(json.dumps(r))
    assert {"linear_probe", "knn", "fewshot", "linear_probe_genrep"} <= r.keys()
    assert set(r["fewshot"]) >= {"1shot", "5shot"} and len(r["fewshot"]["5shot"]["per_seed"]) == 3
    assert r["linear_probe_genrep"]["augmentation"].startswith("random resized crop")
    for part in ("linear_probe", "knn", "linear_probe_genrep"):
        assert 0 <= r[part]["top1"] <= 100


def test_eval_refuses_unfinished_runs_and_unknown_datasets(finished_run, tmp_path, tfds_dir,
                                                           command_line):
    from errors import UserError
    from evaluators import registry

    _, workdir = finished_run
    with pytest.raises(UserError, match="unknown dataset 'no_such_dataset'"):
        registry.evaluate(workdir, dataset="no_such_dataset", data_dir=tfds_dir)
    copy = str(tmp_path / "copy")
    shutil.copytree(workdir, copy)
    shutil.rmtree(os.path.join(copy, "checkpoints", "6"))
    with pytest.raises(UserError, match="unfinished"):
        registry.evaluate(copy, data_dir=tfds_dir)
    shutil.rmtree(os.path.join(copy, "checkpoints"))
    result = command_line("eval.py", "--workdir", copy)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: {copy} has no checkpoint in {os.path.join(copy, 'checkpoints')}: train it first"]
