"""Images/s of BigGAN-deep sampling: our jitted Flax generator against the reference.

Both run on this machine's CPU with the same weights (the reference
`pytorch-pretrained-biggan` model built offline with random weights, given
power-iterated spectral-norm vectors and standing statistics measured on its own
activations, then converted), the same batch of latents and classes, and the same
truncation. Rounds alternate between the two so that other load on a shared
machine hits both alike; each rate is the median over the timed rounds. Prints
one line of JSON:

    python benchmarks/biggan_sampling.py [--resolution 128 --batch 8 --warmup 2 --iters 5]

Needs the `convert` extra (torch, pytorch-pretrained-biggan).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from models.generators import biggan  # noqa: E402 - needs the repository root on sys.path


def _reference_model(resolution: int, seed: int):
    """The reference BigGAN-deep with random but well-scaled weights, in eval mode."""
    import torch
    from pytorch_pretrained_biggan import BigGAN, convert_tf_to_pytorch
    from pytorch_pretrained_biggan.model import BigGANBatchNorm

    torch.manual_seed(seed)
    model = BigGAN(getattr(convert_tf_to_pytorch, f"BigGAN{resolution}")).eval()
    with torch.no_grad():
        for module in model.modules():
            if hasattr(module, "weight_u"):
                w = module.weight_orig.reshape(module.weight_orig.shape[0], -1)
                v = module.weight_v
                for _ in range(10):
                    u = torch.nn.functional.normalize(w @ v, dim=0)
                    v = torch.nn.functional.normalize(w.t() @ u, dim=0)
                module.weight_u.copy_(u)
                module.weight_v.copy_(v)
            if hasattr(module, "gamma"):
                module.gamma.fill_(0.5)
        model.generator.bn.weight.fill_(1.0)
        model.generator.bn.bias.zero_()

        def calibrate(module, args):
            x = args[0]
            module.running_means.copy_(x.mean(dim=(0, 2, 3)).expand_as(module.running_means))
            module.running_vars.copy_(x.var(dim=(0, 2, 3)).expand_as(module.running_vars))

        hooks = [m.register_forward_pre_hook(calibrate) for m in model.modules()
                 if isinstance(m, BigGANBatchNorm)]
        z = torch.randn(4, model.config.z_dim).clamp(-2, 2)
        model(z, torch.eye(model.config.num_classes)[:4], 1.0)
        for hook in hooks:
            hook.remove()
    return model


def _rate(times: list[float], batch: int) -> float:
    return batch / statistics.median(times)


def main(argv: list[str] | None = None) -> dict:
    """Runs the benchmark and prints (and returns) its JSON record."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resolution", type=int, default=128, choices=(128, 256, 512))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--truncation", type=float, default=0.4)
    parser.add_argument("--warmup", type=int, default=2, help="untimed rounds (compilation)")
    parser.add_argument("--iters", type=int, default=5, help="timed rounds")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import torch

    model = _reference_model(args.resolution, args.seed)
    config = biggan.PUBLISHED_CONFIGS[args.resolution]
    variables = biggan.params_from_state_dict(
        {k: v.numpy() for k, v in model.state_dict().items()}, config)
    generator = biggan.build(config.to_dict())
    params = jax.device_put(variables)

    rng = np.random.default_rng(args.seed)
    z = (args.truncation * np.clip(rng.standard_normal((args.batch, config.z_dim)), -2, 2)
         ).astype(np.float32)
    y = rng.integers(0, config.num_classes, args.batch)
    z_jax, y_jax = jnp.asarray(z), jnp.asarray(y)
    z_torch = torch.from_numpy(z)
    y_torch = torch.nn.functional.one_hot(torch.from_numpy(y), config.num_classes).float()

    def run_ours():
        return generator.apply(params, z_jax, y_jax, args.truncation).block_until_ready()

    def run_reference():
        with torch.no_grad():
            return model(z_torch, y_torch, args.truncation)

    times: dict[str, list[float]] = {"ours": [], "reference": []}
    compile_s = None
    for i in range(args.warmup + args.iters):
        for name, fn in (("ours", run_ours), ("reference", run_reference)):
            start = time.perf_counter()
            fn()
            seconds = time.perf_counter() - start
            if i == 0 and name == "ours":
                compile_s = seconds
            if i >= args.warmup:
                times[name].append(seconds)
            print(f"round {i + 1}/{args.warmup + args.iters} {name}: {seconds:.2f}s",
                  file=sys.stderr)
    ours = np.asarray(run_ours())
    ref = run_reference().permute(0, 2, 3, 1).numpy()

    record = {
        "benchmark": "biggan_sampling",
        "resolution": args.resolution,
        "batch": args.batch,
        "truncation": args.truncation,
        "iters": args.iters,
        "ours_images_per_s": round(_rate(times["ours"], args.batch), 3),
        "reference_images_per_s": round(_rate(times["reference"], args.batch), 3),
        "ratio_ours_over_reference": round(
            _rate(times["ours"], args.batch) / _rate(times["reference"], args.batch), 3),
        "ours_first_call_s": round(compile_s, 2),
        "max_abs_diff": float(np.abs(ours - ref).max()),
        "jax": jax.__version__,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }
    print(json.dumps(record))
    return record


if __name__ == "__main__":
    main()
