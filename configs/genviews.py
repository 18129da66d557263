"""Contrastive training on views sampled from a pretrained generator (GenRep).

    python train.py --config configs/genviews.py --workdir runs/genviews   # shipped G
    python train.py --config configs/genviews.py:smoke --workdir /tmp/gv   # seconds
    python train.py --config configs/genviews.py --workdir runs/steered \
        --config.views.latent=steer \
        --config.views.walks=runs/walks   # views along walks learned by configs/steering.py

Args (comma-separated): `smoke` shrinks the run to seconds on one CPU, on the
shipped generator, with random steering walks (used by `views.latent=steer`), so
it needs no earlier run.
"""

from configs import common


def get_config(arg: str | None = None):
    c = common.base()
    c.data.source = "generator"
    c.generator.checkpoint = common.SHIPPED_GENERATOR  # the embedded pretrained generator
    c.views.latent = "gaussian"
    c.views.pixel = "simclr"
    c.views.sigma = 0.2  # GenRep's best σ for BigBiGAN + SimCLR
    c.loss.name = "ntxent"
    c.train.batch_size = 256
    c.train.steps = 1000
    if common.parse_options(arg, {"smoke": False})["smoke"]:
        common.smoke(c)
        # The shipped generator: images as varied as real ones, so that a smoke run's loss is
        # not degenerate (a small random G draws nearly identical images, on which 1- and
        # 4-device runs drift apart chaotically).
        c.views.walks = "random"  # explicit: random directions stand in for learned walks
    return c
