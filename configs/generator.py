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
    c.generator.family = "resnet"
    c.generator.z_dim = 64
    c.generator.num_classes = 10
    c.generator.resolution = 32
    c.generator.width = 32
    c.gan = ml_collections.ConfigDict()
    c.gan.d_width = 32  # base channel width of the discriminator
    c.gan.diffaugment = True  # DiffAugment (colour, translation, cutout) on D's inputs
    # weight of the classifier's cross-entropy on samples in G's loss (0: no classifier)
    c.gan.classifier_weight = 1.0
    c.gan.lr_classifier = 1e-3  # Adam learning rate of the classifier (clean real images)
    c.gan.ema_decay = 0.999  # >0: export an EMA of G's weights with this decay
    c.gan.lr_g = 2e-4  # Adam learning rate of the generator
    c.gan.lr_d = 2e-4  # Adam learning rate of the discriminator
    c.gan.b1 = 0.5  # Adam β1 (DCGAN)
    c.gan.b2 = 0.999  # Adam β2 (DCGAN)
    c.train.batch_size = 64
    c.train.steps = 6000
    c.train.log_every = 100
    c.train.ckpt_every = 500
    c.train.grid_every = 500
    if common.parse_options(arg, {"smoke": False})["smoke"]:
        common.smoke(c)
        c.generator.width = 8
        c.generator.z_dim = 16
        c.gan.d_width = 8
    return c
