"""Data parallelism: the same numbers on 1 or 4 devices, over 2 processes, and under pmap.

Each multi-device run is a separate process, because the number of (simulated
CPU) devices is fixed when JAX starts.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from data.rundir import restore_on_one_device

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What is defined to be equal, and how closely float32 lets it be:
# - the initial parameters: bit-identical (one init, on one device);
# - one step's update, p1 − p0: the same sums in another order (per-device partial sums
#   of gradients and BatchNorm statistics). Measured on a 2-core x86 CPU, 1 vs 4 devices:
#   ‖Δ1 − Δ4‖ / ‖Δ1‖ = 4.2e-6 (genviews on the shipped generator) and 2.6e-6 (real
#   images); reversing the batch's order on one device, the same sums reordered again,
#   moves the genviews update by 2.7e-6; half generated, half real (data.source=mix, the
#   runs below): 2.4e-6 after one step and 2.5e-6 after two (2026-12-01); bound: 1e-5;
# - the parameters after NUM_STEPS = 2 steps, relative to how far they moved: each step
#   adds a rounding error of that size (measured 2.3e-6 after 8 steps on real images);
#   bound: 1e-4, a margin of 20 over 2 steps × 2.5e-6. Only two steps: the genviews smoke
#   run's 1- and 4-device parameters differ by 4.2e-6, 3.9e-6, 4.6e-6 after steps 1-3,
#   then 1.2e-4 after step 4 and 2.0e-3 after step 8 (measured with XLA's default
#   convolutions, below): a jump, not a steady growth, as when a pre-activation near 0
#   changes sign on a last-bit difference and the runs then follow two nearby trajectories.
#   A longer trajectory would test that amplification, not the parallel step.
#   It is a norm over all parameters, never an element-wise check, which a few entries
#   near zero would fail on any other CPU;
# - the logged losses: the first is one forward pass on equal parameters (1e-5), the
#   later ones follow the parameters (1e-4).
#
# The runs compile with XLA:CPU's default convolution fusion, not genviews' speed flag
# (tasks.parallel.CPU_XLA_FLAGS, `-individual_convolution`): with that flag, XLA compiles
# the 4-device generated-views step (8 images per device) on another path whose update
# differs by 7.0e-4 from the other three compilations (1 device with or without the
# flag, 4 devices without it), which agree to 5.6e-6 among themselves (measured on this
# 2-core x86 CPU; its Conv_0-Conv_1 kernel and BatchNorm_0-1 updates, nothing after).
# That is a property of the compiler's convolution path, not of the parallel step, so it
# is kept out of the comparison: `+individual_convolution` is XLA's default, and
# genviews leaves an XLA_FLAGS setting the user names alone. With it the genviews
# smoke step measures 4.2e-6 (one step) and 4.1e-6 (two steps) between 1 and 4 devices.
NUM_STEPS = 2
ONE_STEP_TOLERANCE = 1e-5
TRAJECTORY_TOLERANCE = 1e-4
STEPS = [f"--config.train.steps={NUM_STEPS}", "--config.train.log_every=1",
         "--config.train.ckpt_every=1", f"--config.train.keep_checkpoints={NUM_STEPS + 1}",
         "--config.train.views_png=false"]  # the step is compared, not the PNG (10 s a run)


XLA_DEFAULT_CONVOLUTIONS = "--xla_cpu_experimental_ynn_fusion_type=+individual_convolution"


def _env(devices: int) -> dict:
    """`devices` CPU devices, XLA's default convolutions and the suite's XLA flags (conftest:
    optimisation level 1, XLA:CPU's elemental fusion code generator). Measured at level 1
    against the 1-device run (2026-12-01, this 2-core x86 CPU): pmap on 4 devices 2.3e-6
    after one step and 2.3e-6 after two, shard_map on 2 processes × 2 devices 2.4e-6 and
    2.3e-6, as at level 2; it saves ~20 s of compiling. (At level 1 shard_map on 4 devices
    of one process, no longer run here, compiled to another path, 4.0e-4 from the 1-device
    update.)"""
    return dict(os.environ, JAX_PLATFORMS="cpu",
                XLA_FLAGS=f"{os.environ.get('XLA_FLAGS', '')} {XLA_DEFAULT_CONVOLUTIONS} "
                          f"--xla_force_host_platform_device_count={devices}")


def _train(workdir, config, devices, *extra, tfds_dir=None):
    args = [sys.executable, "train.py", "--config", config, "--workdir", str(workdir), *STEPS, *extra]
    if tfds_dir:
        args.append(f"--config.data.data_dir={tfds_dir}")
    result = subprocess.run(args, cwd=ROOT, env=_env(devices), capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return _losses(workdir)


def _losses(workdir):
    with open(os.path.join(workdir, "metrics.jsonl")) as f:
        return np.array([json.loads(line)["loss"] for line in f])


def _params(workdir, step):
    manager = ocp.CheckpointManager(os.path.join(workdir, "checkpoints"))
    restored = restore_on_one_device(manager, step)
    manager.close()
    return np.concatenate([np.ravel(v) for v in jax.tree.leaves(restored["params"])]).astype(np.float64)


def _relative(a, b, scale):
    return np.linalg.norm(a - b) / np.linalg.norm(scale)


def _same(a_dir, b_dir):
    """Runs a and b computed the same training, up to float32 rounding (see the top)."""
    a, b = _losses(a_dir), _losses(b_dir)
    assert len(a) == len(b) == NUM_STEPS
    assert abs(b[0] - a[0]) <= ONE_STEP_TOLERANCE * abs(a[0])
    assert np.all(np.abs(b - a) <= TRAJECTORY_TOLERANCE * np.abs(a)), (a, b)
    p0 = _params(a_dir, 0)
    np.testing.assert_array_equal(_params(b_dir, 0), p0)
    a1, b1 = _params(a_dir, 1), _params(b_dir, 1)
    assert _relative(b1 - p0, a1 - p0, a1 - p0) <= ONE_STEP_TOLERANCE
    a_end, b_end = _params(a_dir, NUM_STEPS), _params(b_dir, NUM_STEPS)
    assert _relative(b_end, a_end, a_end - p0) <= TRAJECTORY_TOLERANCE


# The generated-views runs mix in real images (data.source=mix, half and half): every batch
# then has generated instances and real images, each row the views that the generator-only
# and the real-only tasks make for the same example (tests/test_mix.py), so each comparison
# below covers both sources' step. The 4-device runs: pmap on 4 devices of one process, and
# shard_map (genviews' default) on 2 devices in each of 2 processes, which is the 4-device
# shard_map step plus each process reading and rendering only its rows. (A third, shard_map
# on 4 devices of one process, is the second without its processes: it cost the suite 35 s
# of its 10 minutes; separate real-only and generated-only comparisons, 75 s more.)
MIX = ("--config.data.source=mix", "--config.data.mix_ratio=0.5")


@pytest.fixture(scope="module")
def genviews_one_device(tmp_path_factory, tfds_dir):
    workdir = tmp_path_factory.mktemp("gv1") / "run"
    _train(workdir, "configs/genviews.py:smoke", 1, *MIX, tfds_dir=tfds_dir)
    return workdir


def test_pmap_on_4_devices_gives_the_1_device_update(genviews_one_device, tmp_path, tfds_dir):
    _train(tmp_path / "pmap", "configs/genviews.py:smoke", 4, "--config.parallel=pmap", *MIX,
           tfds_dir=tfds_dir)
    _same(genviews_one_device, tmp_path / "pmap")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_shard_map_on_2_processes_of_2_devices_gives_the_1_device_update(genviews_one_device,
                                                                         tmp_path, tfds_dir):
    """Half generated, half real batches (the mix above) on 4 devices in 2 processes: each
    process reads only its rows of every global batch through Grain and renders only its
    generated rows, and the update is the 1-device one."""
    workdir = tmp_path / "mp"
    port = _free_port()
    procs = [subprocess.Popen(
        [sys.executable, "train.py", "--config", "configs/genviews.py:smoke", "--workdir",
         str(workdir), *STEPS, *MIX, f"--config.data.data_dir={tfds_dir}",
         f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2",
         f"--process_id={i}"], cwd=ROOT, env=_env(2), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True) for i in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err[-3000:]
    _same(genviews_one_device, workdir)


def test_unreachable_coordinator_fails_within_the_timeout(tmp_path):
    start = time.time()
    result = subprocess.run(
        [sys.executable, "train.py", "--config", "configs/genviews.py:smoke", "--workdir",
         str(tmp_path / "x"), f"--coordinator_address=127.0.0.1:{_free_port()}",
         "--num_processes=2", "--process_id=1", "--init_timeout=2"],
        cwd=ROOT, env=_env(1), capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "could not join the job" in result.stderr.strip().splitlines()[-1]
    assert time.time() - start < 120


def test_process_id_out_of_range(tmp_path):
    result = subprocess.run(
        [sys.executable, "train.py", "--config", "configs/genviews.py:smoke", "--workdir",
         str(tmp_path / "x"), "--coordinator_address=127.0.0.1:1", "--num_processes=2",
         "--process_id=2"], cwd=ROOT, env=_env(1), capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "out of range" in result.stderr


_SHARDED_LOSS = """
import jax, jax.numpy as jnp, numpy as np
from jax.sharding import Mesh, PartitionSpec as P
import losses
z = losses.l2_normalize(jnp.asarray(np.load('{path}')['z'], jnp.float32))
ids = jnp.repeat(jnp.arange(z.shape[0] // 2), 2)
mesh = Mesh(np.asarray(jax.devices()), ('data',))
fn = jax.shard_map(lambda z, i: jax.lax.psum(losses.sharded_contrastive(
    z, i, i, axis_name='data', loss_name='ntxent', temperature=0.1, base_temperature=0.1),
    'data'), mesh=mesh, in_specs=(P('data'), P('data')), out_specs=P(), check_vma=False)
print(len(jax.devices()), float(fn(z, ids)))
"""


def test_sharded_loss_on_4_devices_is_the_global_ntxent(tmp_path):
    n_inst = 8  # 16 views, 4 per device: each device's anchors see the other devices' views
    z = np.random.default_rng(0).normal(size=(2 * n_inst, 8))
    np.savez(tmp_path / "z.npz", z=z)
    result = subprocess.run([sys.executable, "-c", _SHARDED_LOSS.format(path=tmp_path / "z.npz")],
                            cwd=ROOT, env=_env(4), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    devices, got = result.stdout.split()
    assert devices == "4"
    zn = z / np.linalg.norm(z, axis=1, keepdims=True)
    sims = zn @ zn.T / 0.1
    want = []
    for i in range(2 * n_inst):  # NT-Xent over the whole global batch, by a loop
        others = [j for j in range(2 * n_inst) if j != i]
        want.append(-(sims[i, i ^ 1] - np.log(np.exp(sims[i, others]).sum())))
    np.testing.assert_allclose(float(got), np.mean(want), rtol=1e-5)
    # A mean of per-device losses (each device contrasting only its own views) differs.
    local = []
    for d in range(4):
        rows = range(4 * d, 4 * d + 4)
        for i in rows:
            others = [j for j in rows if j != i]
            local.append(-(sims[i, i ^ 1] - np.log(np.exp(sims[i, others]).sum())))
    assert abs(np.mean(local) - float(got)) > 0.1


def test_eval_on_two_processes_matches_one_process(genviews_one_device, tmp_path, tfds_dir):
    """eval.py over 2 processes × 2 devices: each extracts half the features, all gather them,
    process 0 writes eval.json. The features are the 1-device ones up to float32 rounding, so
    kNN agrees within one test example (0.5 points of 200; measured: equal). The linear
    probe's fit over several devices is checked in tests/test_probe_reference.py."""
    import shutil

    one, two = tmp_path / "one", tmp_path / "two"
    shutil.copytree(genviews_one_device, one)
    shutil.copytree(genviews_one_device, two)
    common = ["--data_dir", tfds_dir, "--evaluators", "knn"]
    subprocess.run([sys.executable, "eval.py", "--workdir", str(one), *common], cwd=ROOT,
                   env=_env(1), check=True, capture_output=True, timeout=600)
    port = _free_port()
    procs = [subprocess.Popen(
        [sys.executable, "eval.py", "--workdir", str(two), *common,
         f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2", f"--process_id={i}"],
        cwd=ROOT, env=_env(2), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for i in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err[-3000:]
    assert "knn" in outputs[0][0] and "knn" not in outputs[1][0]  # process 0 reports
    a, b = (json.loads((d / "eval.json").read_text()) for d in (one, two))
    assert (a["num_train"], a["num_test"]) == (b["num_train"], b["num_test"])
    assert (a["machine"]["processes"], b["machine"]["processes"]) == (1, 2)  # where each came from
    assert abs(a["knn"]["top1"] - b["knn"]["top1"]) <= 100 / a["num_test"] + 1e-9
