"""Forward-Forward with generated negatives against backprop SimCLR and a random encoder.

    python train.py --config configs/studies/forward_forward.py --workdir runs/forward_forward

Hinton's Forward-Forward (2022) trains each layer of an encoder to give positives a high
goodness (the mean square of its activities) and negatives a low one, with no backward
pass through the network (tasks/forward_forward.py). Three negative sources:

- `ff_generated`: real images (positives) against the shipped generator's samples;
- `ff_wrong_label`: the supervised variant on generated images: the generator's samples
  with their own class embedded (positives) against samples with another class embedded,
  so that only the label tells them apart;
- `ff_hybrid`: real images against the paper's hybrids of two real images under a smooth
  random mask.

References at the same budget (the quickstart's 250 steps of 128): SimCLR with backprop on
real images (`real_simclr`, the quickstart's ConvNet) and the FF encoder untrained
(`random_ff`, the same architecture and features as the FF runs). 5 runs × 3 seeds.
Args: see configs/studies/__init__.py.
"""

from configs.studies import Study


def get_config(arg: str | None = None):
    s = Study("Forward-Forward with generated negatives vs backprop SimCLR", arg)
    s.forward_forward("ff_generated", negative="generated")
    s.forward_forward("ff_wrong_label", positive="generated", negative="wrong_label")
    s.forward_forward("ff_hybrid", negative="hybrid")
    s.real("real_simclr")
    s.forward_forward("random_ff", steps=0)
    return s.config
