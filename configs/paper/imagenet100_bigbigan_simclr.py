"""GenRep's ImageNet-100 run on BigBiGAN views with SimCLR (σ = 0.2).

    python train.py --config configs/paper/imagenet100_bigbigan_simclr.py --workdir runs/in100_bigbigan \
        --config.generator.checkpoint=gens/bigbigan-resnet50

BigBiGAN (TF-Hub deepmind/bigbigan-resnet50/1: unconditional, z ∈ R^120, 128 px)
has no generator family in genviews yet: its weights cannot be converted, so
this config stops at start with a message saying so (config key
generator.family). Once a `bigbigan` family and converter exist, it runs as is.
The recipe and probe protocol are configs/paper/genrep.py's; here: views
z + σ·ε with σ = 0.2 and SimCLR's NT-Xent.

Arg `smoke`: the same path with a small random unconditional DCGAN standing in
for BigBiGAN, on one CPU.
"""

from configs.paper import genrep

Z_DIM = 120  # BigBiGAN's latent size


def get_config(arg: str | None = None):
    c, smoke = genrep.base(arg)
    c.data.source = "generator"
    c.generator.init = "checkpoint"
    c.generator.checkpoint = ""  # the converted BigBiGAN directory (required)
    c.generator.family = "bigbigan"
    c.generator.z_dim = Z_DIM
    c.generator.num_classes = 0
    c.generator.resolution = 128
    c.views.sigma = 0.2
    c.loss.name = "ntxent"
    if smoke:
        c.generator.init = "random"
        c.generator.family = "dcgan"  # a stand-in: BigBiGAN is not implemented
        c.generator.resolution = 32
        c.generator.width = 8
    return c
