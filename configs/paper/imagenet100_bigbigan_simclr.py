"""GenRep's ImageNet-100 run on BigBiGAN views with SimCLR (σ = 0.2).

Ready for a GPU node, given the converted generator and ImageNet prepared in TFDS:

    python -m models.convert bigbigan --checkpoint bigbigan-resnet50 --out gens/bigbigan-resnet50
    python train.py --config configs/paper/imagenet100_bigbigan_simclr.py --workdir runs/in100_bigbigan \
        --config.generator.checkpoint=gens/bigbigan-resnet50
    python eval.py --workdir runs/in100_bigbigan

where bigbigan-resnet50/ is the unpacked TF-Hub module deepmind/bigbigan-resnet50/1
(README: "Other generators"). BigBiGAN is unconditional, z ∈ R^120, 128 px. The
recipe and probe protocol are configs/paper/genrep.py's; here: views z + σ·ε with
σ = 0.2 and SimCLR's NT-Xent.

Arg `smoke`: the same path with a random BigBiGAN generator of channel width 4
(the published one: 96) and a tiny encoder, on one CPU; it probes on genviews_shapes.
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
        c.generator.width = 4
    return c
