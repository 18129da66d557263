"""Kills a smoke run with SIGKILL at random instants, resumes it, and checks that it ends
bit-identical to an uninterrupted run.

    python benchmarks/kill_resume.py [--trials 10] [--kills 1] [--steps 200] [--seed 0]
        [--config configs/genviews.py:smoke] [--dir /tmp/kill_resume]

First one uninterrupted run of `--steps` steps (the reference, timed). Then each trial
runs the same command in its own workdir, kills it `--kills` times at an instant drawn
uniformly between 0 and the reference's wall time (so kills land in start-up and
compilation, in steps, in checkpoint saves and metrics writes alike), and finally runs
it to the end. A trial passes when its final checkpoint's arrays (parameters, BatchNorm
statistics, optimizer state) and every line of `metrics.jsonl` but the timing equal the
reference's exactly. Prints one line per trial and a JSON summary; exit code 1 if any
trial fails.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _command(config: str, workdir: str, steps: int) -> list[str]:
    return [sys.executable, "train.py", "--config", config, "--workdir", workdir,
            f"--config.train.steps={steps}"]


def _run(command: list[str], kill_after: float | None = None) -> tuple[int, float]:
    """(exit code, wall seconds) of `command`; with `kill_after`, SIGKILLed then."""
    start = time.time()
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    try:
        if kill_after is not None:
            try:
                proc.wait(timeout=kill_after)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
        err = proc.communicate()[1]
    finally:
        if proc.poll() is None:
            proc.kill()
    if kill_after is None and proc.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({proc.returncode}): {err.strip()[-2000:]}")
    return proc.returncode, time.time() - start


def _final(workdir: str, steps: int):
    import jax

    from data import rundir

    manager = rundir.checkpoints(workdir)
    state = rundir.restore_on_one_device(manager, steps)
    manager.close()
    with open(os.path.join(workdir, rundir.METRICS)) as f:
        metrics = [json.loads(line) for line in f]
    for m in metrics:
        m.pop("examples_per_sec", None)  # wall-clock, not a result
    return jax.tree.leaves(state), metrics


def _same(a, b) -> bool:
    import numpy as np

    (la, ma), (lb, mb) = a, b
    return ma == mb and len(la) == len(lb) and all(
        x.dtype == y.dtype and x.shape == y.shape and np.array_equal(np.asarray(x), np.asarray(y))
        for x, y in zip(la, lb, strict=True))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config", default="configs/genviews.py:smoke")
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--trials", type=int, default=10)
    p.add_argument("--kills", type=int, default=1, help="SIGKILLs per trial before it finishes")
    p.add_argument("--seed", type=int, default=0, help="seed of the kill instants")
    p.add_argument("--dir", default="/tmp/kill_resume", help="scratch directory (emptied)")
    args = p.parse_args()
    shutil.rmtree(args.dir, ignore_errors=True)
    os.makedirs(args.dir)
    reference_dir = os.path.join(args.dir, "reference")
    _, wall = _run(_command(args.config, reference_dir, args.steps))
    reference = _final(reference_dir, args.steps)
    print(f"reference: {args.steps} steps in {wall:.1f} s", flush=True)
    rng = random.Random(args.seed)
    passed, killed = 0, 0
    for trial in range(args.trials):
        workdir = os.path.join(args.dir, f"trial{trial}")
        command = _command(args.config, workdir, args.steps)
        instants = []
        for _ in range(args.kills):
            at = rng.uniform(0, wall)
            code, _ = _run(command, kill_after=at)
            killed += code == -signal.SIGKILL
            instants.append(f"{at:.1f} s ({'killed' if code == -signal.SIGKILL else 'had ended'})")
        _run(command)
        ok = _same(_final(workdir, args.steps), reference)
        passed += ok
        print(f"trial {trial}: kills at {', '.join(instants)}; final state and metrics "
              f"{'bit-identical' if ok else 'DIFFER'}", flush=True)
        if ok:
            shutil.rmtree(workdir)
    print(json.dumps({"config": args.config, "steps": args.steps, "trials": args.trials,
                      "kills_landed": killed, "bit_identical": passed,
                      "reference_wall_s": round(wall, 1)}))
    if passed != args.trials:
        sys.exit(1)


if __name__ == "__main__":
    main()
