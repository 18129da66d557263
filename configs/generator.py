"""Pretrains the small class-conditional GAN on the embedded dataset.

    python train.py --config configs/generator.py --workdir runs/generator

The run's workdir then holds `generator.json` and `generator/`, so it is the
`generator.checkpoint` of configs/genviews.py.
"""

import ml_collections

from configs import common


def get_config(arg: str | None = None):
    c = common.base()
    c.task = "generator"
    c.data.source = "real"
    c.data.name = "genviews_shapes"
    c.generator.family = "dcgan"
    c.generator.z_dim = 64
    c.generator.num_classes = 10
    c.generator.resolution = 32
    c.generator.width = 32
    c.gan = ml_collections.ConfigDict()
    c.gan.d_width = 32  # base channel width of the discriminator
    # A high learning rate: on 2 CPU cores the GAN gets ~1k steps; at 2e-4 it had
    # collapsed to one image by then, at 1e-3 it had not.
    c.gan.lr_g = 1e-3  # Adam learning rate of the generator
    c.gan.lr_d = 1e-3  # Adam learning rate of the discriminator
    c.gan.b1 = 0.5  # Adam β1 (DCGAN)
    c.gan.b2 = 0.999  # Adam β2 (DCGAN)
    c.train.batch_size = 64
    c.train.steps = 1200
    c.train.log_every = 100
    c.train.ckpt_every = 400
    c.train.grid_every = 400
    if "smoke" in common.parse_arg(arg):
        common.smoke(c)
        c.generator.width = 8
        c.generator.z_dim = 16
        c.gan.d_width = 8
    return c
