"""Pretrains the embedded class-conditional generator on genviews_shapes.

    python train.py --config configs/generator.py --workdir runs/generator

trains the sprite generator (models/generators/sprites.py) as the decoder of a VAE
(tasks/sprites.py): the shipped pretrained/genviews_shapes came from this command.
`configs/generator.py:gan` trains the ResNet GAN (tasks/generator.py) instead, a
generic recipe for any image dataset. The run's workdir then holds
`generator.json` and `generator/`, so it is the `generator.checkpoint` of
configs/genviews.py.
"""

import ml_collections

from configs import common


def get_config(arg: str | None = None):
    options = common.parse_options(arg, {"smoke": False, "gan": False})
    return gan(options["smoke"]) if options["gan"] else sprites(options["smoke"])


def _pretraining(task: str, family: str, z_dim: int, width: int, steps: int):
    """A generator pretraining run on real genviews_shapes: batches of 64, `steps` steps."""
    c = common.base()
    c.task = task
    c.data.source = "real"
    c.data.name = "genviews_shapes"
    c.generator.family = family
    c.generator.z_dim = z_dim
    c.generator.num_classes = 10
    c.generator.resolution = 32
    c.generator.width = width
    c.train.batch_size = 64
    c.train.steps = steps
    c.train.log_every = 100
    c.train.ckpt_every = 500
    c.train.grid_every = 500
    return c


def sprites(smoke: bool) -> ml_collections.ConfigDict:
    # generator.z_dim: pose and colours; generator.width: of the MLP from (z, class) to them
    c = _pretraining("sprites", "sprites", z_dim=16, width=128, steps=5000)
    c.sprites = ml_collections.ConfigDict()
    c.sprites.lr = 1e-3  # Adam learning rate of the encoder and the generator
    c.sprites.kl_weight = 1.0  # β of the KL term (1: the ELBO)
    c.sprites.turns = 8  # rotations of the decoded pose scored per image; the best is kept
    c.sprites.encoder_width = 32  # base channel width of the VAE's encoder (not exported)
    if smoke:
        common.smoke(c)
        c.generator.width = 16
        c.generator.z_dim = 8
        c.sprites.turns = 2
        c.sprites.encoder_width = 8
    return c


def gan(smoke: bool) -> ml_collections.ConfigDict:
    c = _pretraining("generator", "resnet", z_dim=64, width=32, steps=6000)
    c.gan = ml_collections.ConfigDict()
    c.gan.d_width = 32  # base channel width of the discriminator
    c.gan.diffaugment = True  # DiffAugment (colour, translation, cutout) on D's inputs
    # weight of the classifier's cross-entropy on samples in G's loss (0: no classifier)
    c.gan.classifier_weight = 1.0
    c.gan.lr_classifier = 1e-3  # Adam learning rate of the classifier (clean real images)
    c.gan.ema_decay = 0.999  # >0: export an EMA of G's weights with this decay
    c.gan.stats_batches = 40  # batches of 256 samples that re-estimate the EMA's BatchNorm statistics
    c.gan.lr_g = 2e-4  # Adam learning rate of the generator
    c.gan.lr_d = 2e-4  # Adam learning rate of the discriminator
    c.gan.b1 = 0.5  # Adam β1 (DCGAN)
    c.gan.b2 = 0.999  # Adam β2 (DCGAN)
    if smoke:
        common.smoke(c)
        c.generator.width = 8
        c.generator.z_dim = 16
        c.gan.d_width = 8
        c.gan.stats_batches = 2
    return c
