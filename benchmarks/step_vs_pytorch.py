"""The contrastive train step in genviews (JAX) against the same step in PyTorch, on CPU.

    python benchmarks/step_vs_pytorch.py [--cases convnet_views,convnet,resnet18,resnet50_112]
        [--threads 1,2] [--blocks 5] [--steps 3] [--data_dir DIR] [--control] [--torch_malloc]
    python benchmarks/step_vs_pytorch.py --backward [--blocks 5] [--steps 3] [--data_dir DIR]
    python benchmarks/step_vs_pytorch.py --layers [--blocks 5] [--steps 3]

Each case is the same model, batch, views and optimizer in both frameworks:

    convnet_views   the quickstart's step: ConvNet width 32, 128 real images → 256 SimCLR
                    pixel views (crop, flip, colour jitter, grayscale) in the step, 32 px
    convnet         the same without pixel views (centre crop only): the model step
    resnet18        ResNet-18 (CIFAR stem), 128 images, no pixel views, 32 px
    resnet50_112    ResNet-50 (ImageNet stem), 32 images at 112 px, no pixel views

and, in both, the SimCLR projection head (Dense 512, BN, ReLU, bias-free Dense 128,
BN), NT-Xent (τ = 0.1), an online linear classifier on stop-gradient features, and
SGD with momentum 0.9 and weight decay. The genviews side is genviews' own step
(`tasks.get(config).step` through `tasks.parallel.Runner`, with train.py's CPU
flags); the PyTorch side is written here, its pixel views batched with tensor ops
(`grid_sample` crops, per-image jitter), as a PyTorch user would write them to
keep them in the step.

For every (case, threads) the two frameworks run in two worker processes pinned to
the same `threads` cores (and told to use that many threads), each warmed up
(compiled) first; the driver then alternates timed blocks of `--steps` steps, A then
B, `--blocks` times, and reports the median seconds per step, views per second and
genviews' throughput / PyTorch's. One JSON line per (case, threads), then a table.

`--backward` times, instead, the `convnet` case's forward pass (the loss) against its
forward and backward pass (loss and gradients), both jitted, alternated, on one core:
genviews' model and loss, and the plain-JAX model of `--control`.

`--layers` times each convolution of the `convnet` case alone (its input shape at 256 views,
random inputs): forward, and forward with both gradients, in genviews (models/conv.py's
convolution, jitted) and in PyTorch (`F.conv2d` and autograd, NCHW as its CPU step runs),
alternated in one process on one core, so both frameworks run with genviews' malloc
options. It tells which layers, and which pass, make the step's remaining gap.

`--control` adds, for the `convnet` case, a third worker in the same alternation: the
same step written in plain JAX and Optax in this file (no Flax, no genviews task, no
shard_map; functional BatchNorm), compiled with the same flags. It tells apart what
genviews' code costs from what XLA:CPU's compiled step costs.

genviews sets glibc's malloc options (`tasks.parallel.MALLOC_OPTIONS`: freed memory is
reused, not mapped afresh each step); PyTorch runs with glibc's defaults, as its users run
it. `--torch_malloc` gives the PyTorch worker genviews' options too: what the allocator
setting alone would give PyTorch.
Needs torch (a test extra) and the genviews_shapes TFDS dataset (prepared on first use).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CASES = {  # name: (encoder, image size, batch of instances, pixel views)
    "convnet_views": ("convnet", 32, 128, "simclr"),
    "convnet": ("convnet", 32, 128, "none"),
    "resnet18": ("resnet18", 32, 128, "none"),
    "resnet50_112": ("resnet50", 112, 32, "none"),
}
WIDTH, HIDDEN, PROJ, TAU, LR, WD, MOMENTUM, CLASSES = 32, 512, 128, 0.1, 0.1, 5e-4, 0.9, 10


# ----------------------------------------------------------------------------- genviews
def _jax_step(case: str, data_dir: str | None):
    sys.path.insert(0, ROOT)
    from tasks.parallel import set_cpu_flags

    set_cpu_flags()
    import jax

    import tasks
    from configs import quickstart, real
    from tasks.parallel import Runner

    encoder, size, batch, pixel = CASES[case]
    cfg = quickstart.encoder_run(False, real.get_config())
    cfg.model.encoder, cfg.data.image_size, cfg.train.batch_size = encoder, size, batch
    cfg.views.pixel = pixel
    cfg.data.max_examples = batch
    if data_dir:
        cfg.data.data_dir = data_dir
    task = tasks.get(cfg)
    runner = Runner(task.step, cfg.parallel, task.frozen)
    state = runner.put_state(task.init_state())
    device_batch = runner.put_batch(next(task.batches(0)))

    def step():
        nonlocal state
        state, metrics = runner(state, device_batch)
        jax.block_until_ready(metrics)

    return step


def _plain_jax(case: str) -> dict:
    """The `convnet` case in plain JAX and Optax: its loss, jitted train step and inputs."""
    if case != "convnet":
        raise ValueError("the plain-JAX step (--control, --backward) is the convnet case's only")
    sys.path.insert(0, ROOT)
    from tasks.parallel import set_cpu_flags

    set_cpu_flags()
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax

    def norm(x, scale, offset, axes):  # BatchNorm in training mode, biased variance
        mean = jnp.mean(x, axes)
        var = jnp.mean(jnp.square(x - mean), axes)
        return (x - mean) * jax.lax.rsqrt(var + 1e-5) * scale + offset

    widths, size, batch = (WIDTH, 2 * WIDTH, 4 * WIDTH, 8 * WIDTH), CASES[case][1], CASES[case][2]
    rng = np.random.default_rng(0)
    params, cin = {}, 3
    for i, w in enumerate(widths):
        params[f"conv{i}"] = rng.normal(0, (2 / (9 * cin)) ** 0.5, (3, 3, cin, w))
        params[f"scale{i}"], params[f"offset{i}"], cin = np.ones(w), np.zeros(w), w
    params.update(dense1=rng.normal(0, cin ** -0.5, (cin, HIDDEN)), bias1=np.zeros(HIDDEN),
                  scale_h=np.ones(HIDDEN), offset_h=np.zeros(HIDDEN),
                  dense2=rng.normal(0, HIDDEN ** -0.5, (HIDDEN, PROJ)), scale_z=np.ones(PROJ),
                  classifier=rng.normal(0, cin ** -0.5, (cin, CLASSES)), bias_c=np.zeros(CLASSES))
    params = jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), params)
    decay = jax.tree.map(lambda a: a.ndim > 1, params)
    opt = optax.chain(optax.add_decayed_weights(WD, mask=decay), optax.sgd(LR, momentum=MOMENTUM))

    def loss_fn(p, x, labels):
        for i in range(len(widths)):
            x = jax.lax.conv_general_dilated(x, p[f"conv{i}"], (1, 1) if i == 0 else (2, 2),
                                             "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
            x = jax.nn.relu(norm(x, p[f"scale{i}"], p[f"offset{i}"], (0, 1, 2)))
        feats = jnp.mean(x, axis=(1, 2))
        h = jax.nn.relu(norm(feats @ p["dense1"] + p["bias1"], p["scale_h"], p["offset_h"], 0))
        z = norm(h @ p["dense2"], p["scale_z"], 0.0, 0)
        z = z / jnp.linalg.norm(z, axis=1, keepdims=True)
        n = z.shape[0]
        logits = jnp.where(jnp.eye(n, dtype=bool), -jnp.inf, z @ z.T / TAU)
        positive = jnp.roll(jnp.arange(n), n // 2)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, positive).mean()
        logits_c = jax.lax.stop_gradient(feats) @ p["classifier"] + p["bias_c"]
        return loss + optax.softmax_cross_entropy_with_integer_labels(
            logits_c, jnp.concatenate([labels, labels])).mean()

    @jax.jit
    def train_step(p, opt_state, images, labels):
        x = images.astype(jnp.float32) / 255.0
        loss, grads = jax.value_and_grad(loss_fn)(p, jnp.concatenate([x, x]), labels)
        updates, opt_state = opt.update(grads, opt_state, p)
        return optax.apply_updates(p, updates), opt_state, loss

    images = jnp.asarray(rng.integers(0, 256, (batch, size, size, 3), dtype=np.uint8))
    labels = jnp.asarray(rng.integers(0, CLASSES, batch))
    return {"loss": loss_fn, "train_step": train_step, "params": params, "opt": opt,
            "images": images, "labels": labels}


def plain_jax_step(case: str):
    """The `convnet` case's step in plain JAX and Optax (the control of --control)."""
    import jax

    m = _plain_jax(case)
    state = [m["params"], m["opt"].init(m["params"])]

    def step():
        state[0], state[1], loss = m["train_step"](state[0], state[1], m["images"], m["labels"])
        jax.block_until_ready(loss)

    return step


def _genviews_loss(data_dir: str | None):
    """The `convnet` case's loss as genviews' step computes it (`task.loss`: the Flax ConvNet
    with models/conv.py's convolutions, projection head, online classifier, NT-Xent), on
    the case's 128 images' views (no pixel views): (loss, params, views)."""
    sys.path.insert(0, ROOT)
    import jax

    import tasks
    from configs import quickstart, real
    from tasks.parallel import AXIS

    cfg = quickstart.encoder_run(False, real.get_config())
    cfg.model.encoder, cfg.data.image_size, cfg.train.batch_size = "convnet", 32, CASES["convnet"][2]
    cfg.views.pixel, cfg.data.max_examples = "none", cfg.train.batch_size
    if data_dir:
        cfg.data.data_dir = data_dir
    task = tasks.get(cfg)
    state = task.init_state()
    batch = next(task.batches(0))
    views = jax.jit(task.make_views)(0, batch["index"], batch["image"], batch["label"])

    def loss(params, views):  # on a one-device data axis (the model's BatchNorm averages over it)
        return jax.vmap(lambda v: task.loss(params, state.batch_stats, v)[0], axis_name=AXIS)(
            jax.tree.map(lambda a: a[None], views))[0]

    return loss, state.params, views


def backward_cost(blocks: int, steps: int, data_dir: str | None) -> list[dict]:
    """The `convnet` case's forward pass (the loss) against its forward and backward pass
    (loss and gradients), each jitted, timed in alternated blocks on one core: genviews'
    model and loss, and the plain-JAX model of `--control` (XLA's own convolution
    gradients). The backward pass's cost is the difference of the two times."""
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    import jax
    import jax.numpy as jnp

    m = _plain_jax("convnet")
    plain_x = jnp.concatenate([m["images"], m["images"]]).astype(jnp.float32) / 255.0
    loss, params, views = _genviews_loss(data_dir)
    models = {"genviews": (loss, (params, views)),
              "convnet (plain JAX)": (m["loss"], (m["params"], plain_x, m["labels"]))}
    calls = {(name, part): (jax.jit(f if part == "forward" else jax.value_and_grad(f)), args)
             for name, (f, args) in models.items() for part in ("forward", "forward_backward")}
    times = {key: [] for key in calls}
    for f, args in calls.values():
        jax.block_until_ready(f(*args))  # compile
    for _ in range(blocks):
        for key, (f, args) in calls.items():
            start = time.perf_counter()
            for _ in range(steps):
                jax.block_until_ready(f(*args))
            times[key].append((time.perf_counter() - start) / steps)
    rows = []
    for name in models:
        fwd, both = (statistics.median(times[name, part]) for part in ("forward", "forward_backward"))
        rows.append({"model": name, "threads": 1, "forward_s": round(fwd, 4),
                     "forward_backward_s": round(both, 4),
                     "backward_over_forward": round((both - fwd) / fwd, 2),
                     "blocks": blocks, "steps_per_block": steps})
    return rows


def _layer_calls(x, w, stride: int) -> dict:
    """One convolution (NHWC input x, HWIO kernel w) as four calls that finish their work:
    genviews' and PyTorch's forward, and forward with input and weight gradients."""
    import jax
    import numpy as np
    import torch
    import torch.nn.functional as F

    from models import conv

    def jax_conv(x, w):
        return conv.conv_general_dilated(x, w, (stride, stride), "SAME",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))

    g = np.ones(jax.eval_shape(jax_conv, x, w).shape, np.float32)
    jx, jw, jg = jax.device_put((x, w, g))
    jax_fwd = jax.jit(jax_conv)
    jax_both = jax.jit(lambda x, w, g: jax.vjp(jax_conv, x, w)[1](g))
    tx = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).requires_grad_(True)
    tw = torch.from_numpy(w.transpose(3, 2, 0, 1).copy()).requires_grad_(True)
    tg = torch.from_numpy(g.transpose(0, 3, 1, 2).copy())

    def torch_fwd():
        with torch.no_grad():
            return F.conv2d(tx, tw, stride=stride, padding=1)

    def torch_both():
        return torch.autograd.grad(F.conv2d(tx, tw, stride=stride, padding=1), (tx, tw), tg)

    return {"genviews_forward": lambda: jax.block_until_ready(jax_fwd(jx, jw)),
            "genviews_forward_backward": lambda: jax.block_until_ready(jax_both(jx, jw, jg)),
            "pytorch_forward": torch_fwd, "pytorch_forward_backward": torch_both}


def layer_costs(blocks: int, steps: int) -> list[dict]:
    """The `convnet` case's convolutions one by one (module doc, `--layers`): median seconds
    of the forward pass and of the forward pass with input and weight gradients, genviews'
    and PyTorch's, in alternated blocks on one core of this process."""
    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    sys.path.insert(0, ROOT)
    from tasks.parallel import set_cpu_flags

    set_cpu_flags()
    import numpy as np
    import torch

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    views, size, rows = 2 * CASES["convnet"][2], CASES["convnet"][1], []
    widths = (3, WIDTH, 2 * WIDTH, 4 * WIDTH, 8 * WIDTH)
    for i, (cin, cout) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        stride, h = 1 if i == 0 else 2, size // (2 ** max(0, i - 1))
        x = rng.standard_normal((views, h, h, cin), np.float32)
        w = rng.standard_normal((3, 3, cin, cout), np.float32) * (2 / (9 * cin)) ** 0.5
        calls = _layer_calls(x, w, stride)
        times = {name: [] for name in calls}
        for f in calls.values():
            f()  # compile, warm up
        for _ in range(blocks):
            for name, f in calls.items():
                start = time.perf_counter()
                for _ in range(steps):
                    f()
                times[name].append((time.perf_counter() - start) / steps)
        row = {"layer": i, "input": [views, h, h, cin], "out_channels": cout, "stride": stride}
        row.update({name: round(statistics.median(t), 4) for name, t in times.items()})
        row["forward_backward_ratio"] = round(row["pytorch_forward_backward"]
                                              / row["genviews_forward_backward"], 2)
        rows.append(row)
    return rows


# ----------------------------------------------------------------------------- PyTorch
def torch_step(case: str, threads: int, *, device: str = "cpu", batch: int | None = None,
               bf16: bool = False):
    """The PyTorch step of `case` (at `batch` instances, if given) on `device`; `bf16`: under
    autocast to bfloat16 (float32 parameters and optimizer). Returns step(), which syncs."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    encoder_name, size, default_batch, pixel = CASES[case]
    batch = batch or default_batch

    def conv_bn(cin, cout, k, stride, zero_gain=False):
        bn = nn.BatchNorm2d(cout)
        if zero_gain:
            nn.init.zeros_(bn.weight)
        return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), bn)

    class Basic(nn.Module):
        def __init__(self, cin, width, stride):
            super().__init__()
            self.a, self.b = conv_bn(cin, width, 3, stride), conv_bn(width, width, 3, 1)
            self.short = conv_bn(cin, width, 1, stride) if (stride != 1 or cin != width) else None

        def forward(self, x):
            y = self.b(F.relu(self.a(x)))
            return F.relu(y + (x if self.short is None else self.short(x)))

    class Bottle(nn.Module):
        def __init__(self, cin, width, stride):
            super().__init__()
            self.a, self.b = conv_bn(cin, width, 1, 1), conv_bn(width, width, 3, stride)
            self.c = conv_bn(width, 4 * width, 1, 1, zero_gain=True)
            self.short = conv_bn(cin, 4 * width, 1, stride) if (stride != 1 or cin != 4 * width) \
                else None

        def forward(self, x):
            y = self.c(F.relu(self.b(F.relu(self.a(x)))))
            return F.relu(y + (x if self.short is None else self.short(x)))

    def resnet(stages, block, expansion, stem):
        layers = ([conv_bn(3, 64, 3, 1), nn.ReLU()] if stem == "cifar" else
                  [conv_bn(3, 64, 7, 2), nn.ReLU(), nn.MaxPool2d(3, 2, 1)])
        cin = 64
        for i, depth in enumerate(stages):
            for j in range(depth):
                layers.append(block(cin, 64 * 2 ** i, 2 if (i > 0 and j == 0) else 1))
                cin = 64 * 2 ** i * expansion
        return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten()), cin

    if encoder_name == "convnet":
        widths, layers, cin = (WIDTH, 2 * WIDTH, 4 * WIDTH, 8 * WIDTH), [], 3
        for i, w in enumerate(widths):
            layers += [conv_bn(cin, w, 3, 1 if i == 0 else 2), nn.ReLU()]
            cin = w
        encoder, features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten()), cin
    elif encoder_name == "resnet18":
        encoder, features = resnet((2, 2, 2, 2), Basic, 1, "cifar")
    else:
        encoder, features = resnet((3, 4, 6, 3), Bottle, 4, "imagenet")
    last = nn.BatchNorm1d(PROJ)
    last.bias.requires_grad_(False)  # SimCLR's last BN: a scale, no offset
    head = nn.Sequential(nn.Linear(features, HIDDEN), nn.BatchNorm1d(HIDDEN), nn.ReLU(),
                         nn.Linear(HIDDEN, PROJ, bias=False), last)
    classifier = nn.Linear(features, CLASSES)
    memory_format = torch.channels_last if device != "cpu" else torch.contiguous_format
    for module in (encoder, head, classifier):
        module.to(device=device, memory_format=memory_format)
    params = [*encoder.parameters(), *head.parameters(), *classifier.parameters()]
    decay = [p for p in params if p.ndim > 1]
    other = [p for p in params if p.ndim <= 1 and p.requires_grad]
    opt = torch.optim.SGD([{"params": decay, "weight_decay": WD}, {"params": other, "weight_decay": 0}],
                          lr=LR, momentum=MOMENTUM)
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (batch, size, size, 3), dtype=torch.uint8, generator=g).to(device)
    labels = torch.randint(0, CLASSES, (batch,), generator=g).to(device)
    if pixel == "simclr" and device != "cpu":
        raise ValueError("the batched PyTorch pixel views here run on CPU only")

    def simclr_views(x):  # x: (n, 3, H, W) in [0, 1] → one view of each, batched
        n = x.shape[0]
        area = torch.empty(n).uniform_(0.2, 1.0)
        log_ratio = torch.empty(n).uniform_(torch.log(torch.tensor(3 / 4)), torch.log(torch.tensor(4 / 3)))
        ratio = torch.exp(log_ratio)
        w = torch.sqrt(area * ratio).clamp(max=1.0)
        h = torch.sqrt(area / ratio).clamp(max=1.0)
        cx = (torch.rand(n) * 2 - 1) * (1 - w)
        cy = (torch.rand(n) * 2 - 1) * (1 - h)
        flip = torch.where(torch.rand(n) < 0.5, -1.0, 1.0)
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0], theta[:, 0, 2] = w * flip, cx
        theta[:, 1, 1], theta[:, 1, 2] = h, cy
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        v = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        jitter = (torch.rand(n) < 0.8).view(n, 1, 1, 1)
        b = torch.empty(n, 1, 1, 1).uniform_(0.6, 1.4)
        c = torch.empty(n, 1, 1, 1).uniform_(0.6, 1.4)
        s = torch.empty(n, 1, 1, 1).uniform_(0.6, 1.4)
        hue = torch.empty(n, 1, 1).uniform_(-0.1, 0.1)
        gray = lambda t: (0.299 * t[:, 0] + 0.587 * t[:, 1] + 0.114 * t[:, 2]).unsqueeze(1)
        j = (v * b).clamp(0, 1)
        j = ((j - gray(j).mean((2, 3), keepdim=True)) * c + gray(j).mean((2, 3), keepdim=True)).clamp(0, 1)
        j = ((j - gray(j)) * s + gray(j)).clamp(0, 1)
        # hue: RGB → HSV, shift, back (batched, as torchvision's tensor adjust_hue)
        r, gg, bb = j[:, 0], j[:, 1], j[:, 2]
        maxc, _ = j.max(1)
        minc, _ = j.min(1)
        delta = maxc - minc
        sat = torch.where(maxc > 0, delta / maxc.clamp(min=1e-8), torch.zeros_like(maxc))
        d = delta.clamp(min=1e-8)
        hh = torch.where(maxc == r, (gg - bb) / d,
                         torch.where(maxc == gg, 2 + (bb - r) / d, 4 + (r - gg) / d))
        hh = torch.where(delta > 0, (hh / 6) % 1.0, torch.zeros_like(hh))
        hh = (hh + hue) % 1.0
        i = torch.floor(hh * 6)
        f = hh * 6 - i
        p_, q_, t_ = maxc * (1 - sat), maxc * (1 - sat * f), maxc * (1 - sat * (1 - f))
        i = i.long() % 6
        choose = lambda *vals: torch.stack(vals, 0).gather(0, i.unsqueeze(0)).squeeze(0)
        j = torch.stack([choose(maxc, q_, p_, p_, t_, maxc), choose(t_, maxc, maxc, q_, p_, p_),
                         choose(p_, p_, t_, maxc, maxc, q_)], 1)
        v = torch.where(jitter, j, v)
        to_gray = (torch.rand(n) < 0.2).view(n, 1, 1, 1)
        return torch.where(to_gray, gray(v).expand_as(v), v).clamp(0, 1)

    def step():
        x = images.permute(0, 3, 1, 2).float() / 255.0
        if pixel == "simclr":
            views = torch.cat([simclr_views(x), simclr_views(x)])
        else:
            views = torch.cat([x, x])
        views = views.contiguous(memory_format=memory_format)
        with torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=bf16):
            feats = encoder(views)
            z = F.normalize(head(feats).float(), dim=1)
            n = z.shape[0]
            logits = z @ z.t() / TAU
            logits = logits.masked_fill(torch.eye(n, dtype=torch.bool, device=device),
                                        float("-inf"))
            positive = torch.arange(n, device=device).roll(n // 2)
            loss = F.cross_entropy(logits, positive)
            loss = loss + F.cross_entropy(classifier(feats.detach()).float(),
                                          torch.cat([labels, labels]))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device != "cpu":
            torch.cuda.synchronize()

    return step


# ----------------------------------------------------------------------------- driver
def _worker(framework: str, case: str, threads: int, data_dir: str | None,
            torch_malloc: bool) -> None:
    os.sched_setaffinity(0, set(range(threads)))
    if framework == "torch" and torch_malloc:
        sys.path.insert(0, ROOT)
        from tasks.parallel import set_malloc_options

        if not set_malloc_options():
            raise SystemExit("--torch_malloc: genviews' malloc options were not set (not glibc, "
                             "or GLIBC_TUNABLES or a MALLOC_* variable tunes malloc)")
    makers = {"jax": lambda: _jax_step(case, data_dir), "plain": lambda: plain_jax_step(case),
              "torch": lambda: torch_step(case, threads)}
    step = makers[framework]()
    for _ in range(2):  # compile / warm up
        step()
    print("ready", flush=True)
    for line in sys.stdin:
        n = int(line)
        start = time.perf_counter()
        for _ in range(n):
            step()
        print(time.perf_counter() - start, flush=True)


def _start(framework, case, threads, data_dir, torch_malloc):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", OMP_NUM_THREADS=str(threads))
    args = [sys.executable, os.path.abspath(__file__), "--worker", framework, "--cases", case,
            "--threads", str(threads)] + (["--data_dir", data_dir] if data_dir else []) + (
                ["--torch_malloc"] if torch_malloc else [])
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    while True:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit(f"the {framework} worker for {case} died while starting")
        if line.strip() == "ready":
            return proc


def _time(proc, steps: int) -> float:
    proc.stdin.write(f"{steps}\n")
    proc.stdin.flush()
    return float(proc.stdout.readline()) / steps


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--cases", default=",".join(CASES))
    p.add_argument("--threads", default="1,2")
    p.add_argument("--blocks", type=int, default=5)
    p.add_argument("--steps", type=int, default=3, help="steps per timed block")
    p.add_argument("--data_dir", default=None, help="TFDS data_dir of genviews_shapes")
    p.add_argument("--control", action="store_true",
                   help="also time the convnet step written in plain JAX (convnet case only)")
    p.add_argument("--backward", action="store_true",
                   help="only time the convnet case's forward against its forward + backward, "
                        "genviews' model and the plain-JAX one, on one core")
    p.add_argument("--layers", action="store_true",
                   help="only time the convnet case's convolutions one by one, genviews' against "
                        "PyTorch's, forward and forward + backward, on one core")
    p.add_argument("--torch_malloc", action="store_true",
                   help="run PyTorch with genviews' malloc options too (see the module doc)")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        _worker(args.worker, args.cases, int(args.threads), args.data_dir, args.torch_malloc)
        return
    if args.backward:
        for row in backward_cost(args.blocks, args.steps, args.data_dir):
            print(json.dumps(row))
        return
    if args.layers:
        rows = layer_costs(args.blocks, args.steps)
        for row in rows:
            print(json.dumps(row))
        print("\n| layer | input (N, H, W, C) | out | stride | genviews fwd / fwd+bwd (ms) | "
              "PyTorch fwd / fwd+bwd (ms) | genviews speed / PyTorch's, fwd+bwd |")
        print("|---:|---|---:|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['layer']} | {tuple(r['input'])} | {r['out_channels']} | {r['stride']} | "
                  f"{1e3 * r['genviews_forward']:.0f} / {1e3 * r['genviews_forward_backward']:.0f} | "
                  f"{1e3 * r['pytorch_forward']:.0f} / {1e3 * r['pytorch_forward_backward']:.0f} | "
                  f"{r['forward_backward_ratio']:.2f} |")
        return
    rows = []
    for case in args.cases.split(","):
        for threads in (int(t) for t in args.threads.split(",")):
            frameworks = ("jax", "torch") + (("plain",) if args.control and case == "convnet"
                                              else ())
            procs = {fw: _start(fw, case, threads, args.data_dir, args.torch_malloc)
                     for fw in frameworks}
            times = {fw: [] for fw in procs}
            for _ in range(args.blocks):
                for fw in frameworks:  # alternated: A, B, A, B, ... (or A, B, C, ...)
                    times[fw].append(_time(procs[fw], args.steps))
            for proc in procs.values():
                proc.stdin.close()
                proc.wait()
            views = 2 * CASES[case][2]
            med = {fw: statistics.median(t) for fw, t in times.items()}
            row = {"case": case, "threads": threads, "genviews_s_per_step": round(med["jax"], 4),
                   "pytorch_s_per_step": round(med["torch"], 4),
                   "genviews_views_per_s": round(views / med["jax"], 1),
                   "pytorch_views_per_s": round(views / med["torch"], 1),
                   "ratio": round(med["torch"] / med["jax"], 3),
                   "blocks": args.blocks, "steps_per_block": args.steps,
                   "torch_malloc": args.torch_malloc}
            if "plain" in med:
                row["plain_jax_s_per_step"] = round(med["plain"], 4)
                row["plain_jax_ratio"] = round(med["torch"] / med["plain"], 3)
            print(json.dumps(row), flush=True)
            rows.append(row)
    print("\n| case | threads | genviews s/step | PyTorch s/step | genviews / PyTorch |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['case']} | {r['threads']} | {r['genviews_s_per_step']:.3f} | "
              f"{r['pytorch_s_per_step']:.3f} | {r['ratio']:.2f} |")
    for r in rows:
        if "plain_jax_s_per_step" in r:
            print(f"\nControl, {r['case']} at {r['threads']} thread(s): the step in plain JAX "
                  f"{r['plain_jax_s_per_step']:.3f} s/step, {r['plain_jax_ratio']:.2f}× "
                  "PyTorch's speed.")


if __name__ == "__main__":
    main()
