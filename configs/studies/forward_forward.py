"""Forward-Forward with generated negatives against backprop SimCLR and a random encoder.

    python train.py --config configs/studies/forward_forward.py --workdir runs/forward_forward

Hinton's Forward-Forward (2022) trains each layer of an encoder to give real images a high
goodness (the sum of its squared activities) and negatives a low one, with no backward
pass through the network (tasks/forward_forward.py). Three negative sources, real images
as positives: the shipped generator's samples (`ff_generated`), the generator's samples
of one class with another class embedded, against real images with their own
(`ff_wrong_label`, the paper's supervised variant), and the paper's hybrids of two real
images under a smooth mask (`ff_hybrid`). References at the same budget (the quickstart's
250 steps of 128): SimCLR with backprop on real images (`real_simclr`) and the random
encoder. 5 runs × 3 seeds.
Args: see configs/studies/__init__.py.
"""

from configs.studies import Study

NEGATIVES = ("generated", "wrong_label", "hybrid")


def get_config(arg: str | None = None):
    s = Study("Forward-Forward with generated negatives vs backprop SimCLR (real positives)", arg)
    for negative in NEGATIVES:
        s.forward_forward(f"ff_{negative}", negative=negative)
    s.real("real_simclr")
    s.real("random", steps=0)
    return s.config
