"""Forward-Forward (Hinton 2022) on the embedded default: an encoder trained layer by layer,
real images against the shipped generator's samples.

    python train.py --config configs/forward_forward.py --workdir runs/ff
    python train.py --config configs/forward_forward.py --workdir runs/ff_wrong \
        --config.ff.positive=generated --config.ff.negative=wrong_label
    python train.py --config configs/forward_forward.py:smoke --workdir /tmp/ff   # seconds

tasks/forward_forward.py holds the objective and the negatives (ff.negative: generated |
wrong_label | hybrid). The encoder is models.encoders.FFConvNet (the quickstart's
ConvNet without BatchNorm, width 32); eval.py probes it like any contrastive run. The
budget is the quickstart's: 250 steps of 128 positives (and 128 negatives); Adam.
"""

from configs import common, quickstart


def get_config(arg: str | None = None):
    c = common.base()
    c.task = "forward_forward"
    c.data.name = "genviews_shapes"
    c.generator.checkpoint = common.SHIPPED_GENERATOR
    c.ff.positive = "real"
    c.ff.negative = "generated"
    c.optim.name = "adam"
    c.optim.lr = 1e-3
    c.optim.weight_decay = 0.0
    c.train.batch_size = quickstart.BATCH
    c.train.steps = quickstart.STEPS
    c.train.log_every = 25
    smoke = common.parse_options(arg, {"smoke": False})["smoke"]
    if smoke:
        common.smoke(c)
        c.optim.lr = 1e-2
    c.model.encoder = "ff_convnet"  # after common.smoke, which names the contrastive smoke encoder
    c.model.width = 8 if smoke else 32
    return c
