"""The contrastive step at paper scale on one GPU: genviews (bf16) and the same step in PyTorch.

    python benchmarks/gpu.py [--steps 20] [--out benchmarks/results/gpu.json]
    python benchmarks/gpu.py --smoke        # tiny shapes, any backend (tests run it on CPU)

Cases, one process, one after the other, each warmed up (compiled) first, then timed
over `--steps` steps (medians of per-step times; every step is synchronised):

    resnet50_bf16          genviews' step: ResNet-50 (ImageNet stem) at 112 px,
                           train.dtype=bfloat16, 256 instances = 512 views, NT-Xent,
                           SimCLR head, online classifier, SGD; synthetic images
                           (data.name=synthetic: no TFDS), no pixel views
    biggan_resnet50_bf16   the same encoder step on views of BigGAN-deep-128 at full
                           width (random weights: the speed is that of the converted
                           checkpoint), σ = 1.0 neighbours with SimCLR pixel views, the
                           paper config's recipe (configs/paper/imagenet100_biggan_supcon.py);
                           also the share of the step spent making the views (the views
                           alone, jitted, timed the same way)
    pytorch_resnet50_bf16  the resnet50_bf16 step in PyTorch (benchmarks/step_vs_pytorch.py's
                           model and loss) under autocast bf16, channels-last

MFU: the FLOPs XLA counts in the compiled genviews step (cost analysis), per second,
over PEAK_BF16 (an H200's measured dense bf16 peak, issue 16); the PyTorch row uses the
same count (the same model and loss).

On the device machine (jax with CUDA, flax, optax, orbax and torch installed; no
ml_collections, no Grain): carry their wheels, e.g. `pip download ml-collections grain
array-record cloudpickle portpicker --no-deps -d wheels` here (batches come through
data/pipeline.py's Grain pipeline even for data.name=synthetic), then
`pip install --no-deps wheels/*.whl && python benchmarks/gpu.py`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "benchmarks"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

PEAK_BF16 = 790e12  # FLOP/s, measured dense bf16 matmul on an H200 (issue 16)
SIZE, BATCH, BIGGAN_WIDTH = 112, 256, 128
SMOKE = {"encoder": "convnet", "width": 32, "size": 32, "batch": 8, "biggan_width": 4}


def _timed(fn, steps: int) -> float:
    """Median seconds per call of fn (which synchronises), after two warm-up calls."""
    for _ in range(2):
        fn()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _config(generated: bool, smoke: bool):
    from configs import quickstart, real
    from configs.paper import imagenet100_biggan_supcon

    encoder = SMOKE["encoder"] if smoke else "resnet50"
    size = SMOKE["size"] if smoke else SIZE
    if generated:
        c = imagenet100_biggan_supcon.get_config("smoke")  # a random BigGAN-deep-128
        c.generator.width = SMOKE["biggan_width"] if smoke else BIGGAN_WIDTH
        c.loss.name = "ntxent"
        c.views.pixel = "simclr"
    else:
        c = quickstart.encoder_run(False, real.get_config())
        c.data.name = "synthetic"
        c.data.max_examples = 0
        c.views.pixel = "none"
    c.model.encoder = encoder
    if smoke:
        c.model.width = SMOKE["width"]  # step_vs_pytorch's ConvNet, the PyTorch smoke row
    c.data.image_size = size
    c.data.load_size = 0
    c.train.batch_size = SMOKE["batch"] if smoke else BATCH
    c.train.dtype = "bfloat16"
    return c


def genviews_case(generated: bool, smoke: bool, steps: int) -> dict:
    import jax
    import jax.numpy as jnp

    import tasks
    from tasks.parallel import Runner

    config = _config(generated, smoke)
    task = tasks.get(config)
    runner = Runner(task.step, config.parallel, task.frozen)
    state = runner.put_state(task.init_state())
    batch = runner.put_batch(next(task.batches(0)))
    start = time.perf_counter()
    compiled = runner.compile(state, batch)
    compile_s = time.perf_counter() - start
    flops = compiled.cost_analysis().get("flops", 0.0)

    def step():  # the executable compiled above: the step is compiled once
        nonlocal state
        state, metrics = compiled(state, batch, runner.frozen)
        jax.block_until_ready(metrics)

    seconds = _timed(step, steps)
    views = 2 * config.train.batch_size
    row = {"case": "biggan_resnet50_bf16" if generated else "resnet50_bf16",
           "encoder": config.model.encoder, "image_size": config.data.image_size,
           "instances": config.train.batch_size, "views": views, "compile_s": round(compile_s, 2),
           "s_per_step": seconds, "views_per_s": views / seconds, "flops_per_step": flops,
           "mfu": flops / seconds / PEAK_BF16, "backend": jax.default_backend(),
           "device": jax.devices()[0].device_kind}
    if generated:
        index = jnp.arange(config.train.batch_size, dtype=jnp.int32)
        make = jax.jit(lambda frozen, step, index: task.make_views(step, index, frozen=frozen)["image"])
        views_s = _timed(lambda: jax.block_until_ready(make(runner.frozen, 0, index)), steps)
        row.update(views_s_per_step=views_s, views_share=views_s / seconds)
    return row


def pytorch_case(smoke: bool, steps: int, flops: float) -> dict:
    import step_vs_pytorch
    import torch

    device = "cuda" if torch.cuda.is_available() else "cpu"
    case = "convnet" if smoke else "resnet50_112"
    batch = SMOKE["batch"] if smoke else BATCH
    step = step_vs_pytorch.torch_step(case, os.cpu_count() or 1, device=device, batch=batch,
                                      bf16=True)
    seconds = _timed(step, steps)
    return {"case": "pytorch_resnet50_bf16", "encoder": step_vs_pytorch.CASES[case][0],
            "image_size": step_vs_pytorch.CASES[case][1], "instances": batch, "views": 2 * batch,
            "s_per_step": seconds, "views_per_s": 2 * batch / seconds,
            "mfu": flops / seconds / PEAK_BF16, "backend": device,
            "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
            "torch": torch.__version__}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--smoke", action="store_true", help="tiny shapes (a test on CPU)")
    p.add_argument("--steps", type=int, default=20, help="timed steps per case")
    p.add_argument("--out", default=os.path.join(ROOT, "benchmarks", "results", "gpu.json"))
    args = p.parse_args()
    rows = [genviews_case(False, args.smoke, args.steps)]
    print(json.dumps(rows[-1]), flush=True)
    rows.append(genviews_case(True, args.smoke, args.steps))
    print(json.dumps(rows[-1]), flush=True)
    rows.append(pytorch_case(args.smoke, args.steps, rows[0]["flops_per_step"]))
    print(json.dumps(rows[-1]), flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"smoke": args.smoke, "steps": args.steps, "peak_bf16_flops": PEAK_BF16,
                   "rows": rows}, f, indent=2)
    print("\n| case | views/s | s/step | MFU | views share |\n|---|---:|---:|---:|---:|")
    for r in rows:
        share = f"{100 * r['views_share']:.0f}%" if "views_share" in r else "—"
        print(f"| {r['case']} | {r['views_per_s']:.0f} | {r['s_per_step']:.4f} | "
              f"{100 * r['mfu']:.1f}% | {share} |")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
