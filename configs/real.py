"""SimCLR on real images with pixel views: the real-data baseline of GenRep.

    python train.py --config configs/real.py --workdir runs/real
    python train.py --config configs/real.py:smoke --workdir /tmp/real
"""

from configs import common


def get_config(arg: str | None = None):
    c = common.base()
    c.data.source = "real"
    c.data.name = "genviews_shapes"
    c.views.latent = "none"  # no generator: views differ by pixel transforms only
    c.views.pixel = "simclr"
    c.loss.name = "ntxent"
    c.train.batch_size = 256
    c.train.steps = 1000
    if common.parse_options(arg, {"smoke": False})["smoke"]:
        common.smoke(c)
    return c
