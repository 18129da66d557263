"""Learns steering walks (colour, zoom, x/y shift, rotation) of a pretrained generator.

    python train.py --config configs/steering.py --workdir runs/walks \
        --config.generator.checkpoint=pretrained/genviews_shapes
    python train.py --config configs/steering.py:smoke --workdir /tmp/walks   # tiny random G

The workdir then holds `walks.json` and `walks/` (data/walks.py) and `walks.png`,
so it is the `views.walks` of configs/genviews.py with `views.latent=steer`.

Args (comma-separated): `smoke` shrinks the run to seconds on one CPU and declares
a small randomly initialised generator, so it needs no earlier checkpoint.
"""

from configs import common


def get_config(arg: str | None = None):
    c = common.base()
    c.task = "steering"
    c.generator.checkpoint = common.SHIPPED_GENERATOR  # the embedded pretrained generator
    # GenRep's recipe: Adam at 1e-3 (160k samples; 2,500 steps of 64 here), no decay.
    c.optim.name = "adam"
    c.optim.lr = 1e-3
    c.optim.weight_decay = 0.0
    c.train.batch_size = 64
    c.train.steps = 2500
    # GenRep's ranges are for 256 px ImageNet; the embedded dataset's shapes move by at
    # most ±1/8 of the side and vary 1.8× in size, so its generator cannot walk further.
    c.steer.shift = 0.125
    c.steer.zoom = 2.0
    c.train.log_every = 100
    c.train.ckpt_every = 500
    if common.parse_options(arg, {"smoke": False})["smoke"]:
        common.smoke(c)
        c.optim.lr = 0.1  # a few steps must visibly move the walks of a G that barely responds to z
        c.generator.init = "random"  # explicit: a small random G stands in for a checkpoint
        c.generator.width = 8
        c.generator.z_dim = 16
    return c
