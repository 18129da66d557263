"""Generator quality: does a class-conditional generator draw the class it is asked for?

    python -m evaluators.generator_quality --generator DIR [--dataset genviews_shapes]
        [--samples_per_class 1000] [--seed 0] [--judge_dir JUDGE_DIR] [--max_train N] [--max_test N]

A *judge*, a ConvNet classifier trained supervised on the real train split of the
dataset (and scored on its real test split, so that its own accuracy is known),
classifies `samples_per_class` samples of every class. It reports:

- class fidelity: top-1 of the judge against the class each sample was drawn for,
  per class and overall (chance is 1 / classes);
- precision, recall, density, coverage and their symmetric forms
  (`evaluators.fidelity`) of the samples against as many real test images, in
  the judge's penultimate features.

It writes DIR/generator_quality.json and DIR/generator_quality.png (one row per
class, fixed latents). Anchors are drawn as training draws them: a normal
truncated at ±2, times `--truncation`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp

from data import datasets
from data.grids import save_grid
from errors import UserError
from evaluators.fidelity import fidelity_metrics
from evaluators.sample_fidelity import render
from models import generators

GRID_PER_CLASS = 10


class Judge(nn.Module):
    """A small supervised ConvNet: (3×3 conv, BN, ReLU) ×5 with strides 1, 2, 1, 2, 2, then
    global mean and max pooling (a shape is a small part of its image), then a Dense layer."""

    num_classes: int
    layers: tuple[tuple[int, int], ...] = ((16, 1), (32, 2), (64, 1), (64, 2), (128, 2))

    @nn.compact
    def __call__(self, x, train: bool = False):
        for width, stride in self.layers:
            x = nn.Conv(width, (3, 3), strides=stride, use_bias=False)(x)
            x = nn.relu(nn.BatchNorm(use_running_average=not train, momentum=0.9)(x))
        features = jnp.concatenate([jnp.mean(x, axis=(1, 2)), jnp.max(x, axis=(1, 2))], -1)
        return nn.Dense(self.num_classes)(features), features


def train_judge(images: np.ndarray, labels: np.ndarray, num_classes: int, *, epochs: int = 2,
                batch_size: int = 128, seed: int = 0, log=print):
    """A `Judge` fit with Adam on uint8 images (N, H, W, 3); returns (module, variables)."""
    module = Judge(num_classes)
    x0 = jnp.zeros((1,) + images.shape[1:], jnp.float32)
    variables = module.init(jax.random.key(seed), x0, train=False)
    steps = epochs * (len(images) // batch_size)
    tx = optax.adam(optax.cosine_decay_schedule(2e-3, steps))
    params, stats = variables["params"], variables["batch_stats"]
    opt = tx.init(params)

    @jax.jit
    def step(params, stats, opt, x, y):
        def loss_fn(p):
            (logits, _), upd = module.apply({"params": p, "batch_stats": stats}, x, train=True,
                                            mutable=["batch_stats"])
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean(), upd
        (loss, upd), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt = tx.update(grads, opt, params)
        return optax.apply_updates(params, updates), upd["batch_stats"], opt, loss

    rng = np.random.default_rng(seed)
    start, done = time.time(), 0
    for _ in range(epochs):
        order = rng.permutation(len(images))
        for i in range(len(images) // batch_size):
            rows = order[i * batch_size:(i + 1) * batch_size]
            x = images[rows].astype(np.float32) / 255.0
            params, stats, opt, loss = step(params, stats, opt, x, labels[rows])
            done += 1
            if done % 100 == 0 or done == steps:
                rate = done / (time.time() - start)
                log(f"judge: step {done}/{steps}, loss {float(loss):.4f}, "
                    f"ETA {(steps - done) / rate:.0f} s")
    return module, {"params": params, "batch_stats": stats}


def load_or_train_judge(directory: str, train, epochs: int, seed: int, log=print):
    """(module, variables, info) of the judge stored in `directory` (the judge directory
    format: judge.json and an Orbax checkpoint judge/), or a new one trained on `train`
    and stored there when `directory` holds none for the same dataset, epochs and seed."""

    meta = {"dataset": train.name, "epochs": epochs, "seed": seed,
            "num_classes": train.num_classes}
    module = Judge(train.num_classes)
    path = os.path.join(os.path.abspath(directory), "judge.json") if directory else ""
    if path and os.path.exists(path):
        with open(path) as f:
            stored = json.load(f)
        if {k: stored.get(k) for k in meta} == meta:
            variables = ocp.StandardCheckpointer().restore(os.path.join(directory, "judge"))
            log(f"judge: loaded from {directory}")
            return module, variables, stored
    module, variables = train_judge(train.images, train.labels, train.num_classes,
                                    epochs=epochs, seed=seed, log=log)
    if path:
        os.makedirs(directory, exist_ok=True)
        checkpointer = ocp.StandardCheckpointer()
        checkpointer.save(os.path.join(os.path.abspath(directory), "judge"), variables, force=True)
        checkpointer.wait_until_finished()
        with open(path, "w") as f:
            json.dump(meta, f, indent=2)
    return module, variables, meta


def judge_outputs(module, variables, images: np.ndarray, batch_size: int = 1000):
    """(logits, features) of uint8 images, in batches."""
    apply = jax.jit(lambda x: module.apply(variables, x, train=False))
    logits, features = [], []
    for start in range(0, len(images), batch_size):
        lo, fe = apply(images[start:start + batch_size].astype(np.float32) / 255.0)
        logits.append(np.asarray(lo))
        features.append(np.asarray(fe))
    return np.concatenate(logits), np.concatenate(features)


def class_fidelity(predicted: np.ndarray, asked: np.ndarray, num_classes: int) -> dict:
    """Top-1 (%) of `predicted` against `asked`, overall and per class."""
    per_class = [100 * float(np.mean(predicted[asked == c] == c)) for c in range(num_classes)]
    return {"top1": 100 * float(np.mean(predicted == asked)), "per_class_top1": per_class,
            "min_class_top1": min(per_class)}


def sample_by_class(generator, per_class: int, *, seed: int, truncation: float = 1.0):
    """(uint8 images, classes): `per_class` samples of every class, anchors drawn as training
    draws them (a normal truncated at ±2, times `truncation`)."""
    classes = max(generator.num_classes, 1)
    labels = np.repeat(np.arange(classes), per_class).astype(np.int32)
    z = truncation * jax.random.truncated_normal(jax.random.key(seed), -2.0, 2.0,
                                                 (len(labels), generator.z_dim))
    return render(generator, np.asarray(z), labels), labels


def evaluate(generator, dataset_name: str, *, data_dir: str = "", samples_per_class: int = 1000,
             seed: int = 0, judge_epochs: int = 4, max_train: int = 0, max_test: int = 0,
             judge_dir: str = "", log=print) -> dict:
    """The figures of the module docstring for `generator` judged on `dataset_name`."""
    if not generator.num_classes:
        raise UserError("generator quality needs a class-conditional generator "
                        "(this one has num_classes = 0)")
    train = datasets.load(dataset_name, "train", image_size=generator.resolution, data_dir=data_dir,
                          max_examples=max_train)
    test = datasets.load(dataset_name, "test", image_size=generator.resolution, data_dir=data_dir,
                         max_examples=max_test)
    if train.num_classes != generator.num_classes:
        raise UserError(f"the generator draws {generator.num_classes} classes but {dataset_name} "
                        f"has {train.num_classes}")
    module, variables, _ = load_or_train_judge(judge_dir, train, judge_epochs, seed, log=log)
    test_logits, test_features = judge_outputs(module, variables, test.images)
    judge_top1 = 100 * float(np.mean(test_logits.argmax(-1) == test.labels))
    log(f"judge: {judge_top1:.2f}% top-1 on real {dataset_name} test")
    images, asked = sample_by_class(generator, samples_per_class, seed=seed + 1)
    logits, features = judge_outputs(module, variables, images)
    n_real = min(len(test_features), len(features))
    real_rows = np.random.default_rng(seed).permutation(len(test_features))[:n_real]
    return {"dataset": dataset_name, "samples_per_class": samples_per_class, "seed": seed,
            "judge": {"architecture": "ConvNet (16, 32, 64, 64, 128; mean and max pooling), "
                                      f"Adam, {judge_epochs} epochs on real train",
                      "real_test_top1": judge_top1},
            "class_fidelity": class_fidelity(logits.argmax(-1), asked, generator.num_classes),
            "vs_real_test": fidelity_metrics(test_features[real_rows], features, k=5)}


def grid(generator, per_class: int = GRID_PER_CLASS, seed: int = 1234) -> np.ndarray:
    """(classes, per_class, H, W, 3) samples in [0, 1], one row per class."""
    images, _ = sample_by_class(generator, per_class, seed=seed)
    classes = max(generator.num_classes, 1)
    return (images.astype(np.float32) / 255.0).reshape((classes, per_class) + images.shape[1:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluators.generator_quality",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--generator", required=True, help="generator directory (generator.json)")
    parser.add_argument("--dataset", default="genviews_shapes", help="TFDS name of the real data")
    parser.add_argument("--data_dir", default="", help="TFDS data_dir ('' = TFDS default)")
    parser.add_argument("--samples_per_class", type=int, default=1000)
    parser.add_argument("--judge_epochs", type=int, default=4)
    parser.add_argument("--judge_dir", default="",
                        help="keep the trained judge here and reuse it on later calls")
    parser.add_argument("--max_train", type=int, default=0, help=">0: train the judge on fewer")
    parser.add_argument("--max_test", type=int, default=0,
                        help=">0: score the judge and the fidelity metrics on fewer real test images")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        if args.samples_per_class < 6:
            raise UserError(f"--samples_per_class={args.samples_per_class} must be ≥ 6 (k = 5)")
        if not os.path.isdir(args.generator):
            raise UserError(f"--generator {args.generator}: no such directory")
        generator = generators.load(args.generator)
        result = evaluate(generator, args.dataset, data_dir=args.data_dir,
                          samples_per_class=args.samples_per_class, seed=args.seed,
                          judge_epochs=args.judge_epochs, max_train=args.max_train,
                          max_test=args.max_test, judge_dir=args.judge_dir)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    path = os.path.join(args.generator, "generator_quality.json")
    with open(path + ".tmp", "w") as f:
        json.dump(result, f, indent=2)
    os.replace(path + ".tmp", path)
    fid = result["class_fidelity"]
    save_grid(os.path.join(args.generator, "generator_quality.png"), grid(generator),
              title=f"a row per class; judged {fid['top1']:.1f}% as their class "
                    f"(worst class {fid['min_class_top1']:.1f}%)")
    print(json.dumps({"class_fidelity": fid, "vs_real_test": result["vs_real_test"],
                      "judge_real_test_top1": result["judge"]["real_test_top1"]}, indent=2))
    print(f"wrote {path} and generator_quality.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
