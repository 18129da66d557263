"""An independent check of a generator's class fidelity: a PyTorch CNN that shares no code
with genviews' own judge (evaluators/generator_quality.py).

    python benchmarks/independent_judge.py --generator pretrained/genviews_shapes \
        [--epochs 3] [--samples_per_class 500] [--threads 2] [--judge_dir runs/independent_judge]

It trains a small VGG-style CNN (PyTorch, max pooling, its own optimiser loop) on the
real genviews_shapes train split, reports its top-1 on the real test split, then
classifies `samples_per_class` samples of every class of the generator and reports
top-1 against the class asked, overall and per class, and the confusion matrix (row:
class asked, column: class judged). The result goes to
DIR/generator_quality_independent.json. With --judge_dir, the trained judge is kept
there (`judge.pt`, with the arguments that trained it) and later calls with the same
dataset, epochs and seed reuse it instead of training again (~5 min on 2 cores).
Needs the `test` extra (torch).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def build(torch, num_classes: int):
    nn = torch.nn

    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2)]

    return nn.Sequential(*block(3, 32), *block(32, 64), *block(64, 128),
                         nn.Conv2d(128, 128, 3, padding=1), nn.BatchNorm2d(128), nn.ReLU(),
                         nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(128, num_classes))


def to_tensor(torch, images: np.ndarray):
    return torch.from_numpy(images.astype(np.float32) / 255.0).permute(0, 3, 1, 2).contiguous()


def predict(torch, model, images: np.ndarray, batch: int = 1000) -> np.ndarray:
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(images), batch):
            out.append(model(to_tensor(torch, images[i:i + batch])).argmax(1).numpy())
    return np.concatenate(out)


def train_judge(torch, model, train, args) -> None:
    """Trains `model` on the real train split (Adam, one-cycle, batches of 128)."""
    steps_per_epoch = len(train.images) // 128
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=args.epochs * steps_per_epoch)
    rng = np.random.default_rng(args.seed)
    start = time.time()
    for epoch in range(args.epochs):
        model.train()
        order = rng.permutation(len(train.images))
        for i in range(steps_per_epoch):
            rows = order[i * 128:(i + 1) * 128]
            x = to_tensor(torch, train.images[rows])
            y = torch.from_numpy(train.labels[rows].astype(np.int64))
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        print(f"epoch {epoch + 1}/{args.epochs}: loss {loss.item():.4f} "
              f"({time.time() - start:.0f} s)", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--generator", required=True)
    parser.add_argument("--dataset", default="genviews_shapes")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--samples_per_class", type=int, default=500)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--judge_dir", default="", help="keep the trained judge here, reuse it")
    args = parser.parse_args()

    import torch

    from data import datasets
    from evaluators.generator_quality import class_fidelity, sample_by_class
    from models import generators

    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    generator = generators.load(args.generator)
    train = datasets.load(args.dataset, "train", image_size=generator.resolution)
    test = datasets.load(args.dataset, "test", image_size=generator.resolution)
    model = build(torch, train.num_classes)
    key = {"dataset": args.dataset, "epochs": args.epochs, "seed": args.seed,
           "resolution": generator.resolution}
    cached = os.path.join(args.judge_dir, "judge.pt") if args.judge_dir else ""
    if cached and os.path.exists(cached) and torch.load(cached)["key"] == key:
        model.load_state_dict(torch.load(cached)["model"])
        print(f"reusing the judge in {cached}", flush=True)
    else:
        train_judge(torch, model, train, args)
        if cached:
            os.makedirs(args.judge_dir, exist_ok=True)
            torch.save({"key": key, "model": model.state_dict()}, cached + ".tmp")
            os.replace(cached + ".tmp", cached)
    real_top1 = 100 * float(np.mean(predict(torch, model, test.images) == test.labels))
    print(f"independent judge: {real_top1:.2f}% top-1 on real {args.dataset} test", flush=True)
    images, asked = sample_by_class(generator, args.samples_per_class, seed=args.seed + 101)
    judged = predict(torch, model, images)
    fidelity = class_fidelity(judged, asked, generator.num_classes)
    confusion = np.zeros((generator.num_classes, generator.num_classes), int)
    np.add.at(confusion, (asked, judged), 1)
    fidelity["confusion"] = confusion.tolist()
    result = {"judge": "PyTorch CNN (conv 32-64-128-128, max pooling), Adam + one-cycle, "
                       f"{args.epochs} epochs on real train", "real_test_top1": real_top1,
              "samples_per_class": args.samples_per_class, "class_fidelity": fidelity,
              "torch": torch.__version__}
    path = os.path.join(args.generator, "generator_quality_independent.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(fidelity, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
