"""GenRep's ImageNet-100 run on BigGAN-deep-256 views with SupCon (σ = 1.0).

Ready for a GPU node, given a converted generator and ImageNet prepared in TFDS:

    python -m models.convert biggan --checkpoint biggan-deep-256/pytorch_model.bin \
        --config biggan-deep-256/config.json --out gens/biggan-deep-256
    python train.py --config configs/paper/imagenet100_biggan_supcon.py --workdir runs/in100_biggan \
        --config.generator.checkpoint=gens/biggan-deep-256
    python eval.py --workdir runs/in100_biggan

The recipe and probe protocol are configs/paper/genrep.py's; here: anchors from
a normal truncated at ±2 (truncation 1.0), views z + σ·ε with σ = 1.0, SupCon
on the generator's classes with lr 0.01.

Arg `smoke`: a random BigGAN-deep-128 of channel width 4 and a tiny encoder, on
one CPU in a minute; it probes on genviews_shapes.
"""

from configs.paper import genrep


def get_config(arg: str | None = None):
    c, smoke = genrep.base(arg)
    c.data.source = "generator"
    c.generator.init = "checkpoint"
    c.generator.checkpoint = ""  # the converted biggan-deep-256 directory (required)
    c.generator.family = "biggan_deep"
    c.views.sigma = 1.0
    c.loss.name = "supcon"
    c.optim.lr = 0.01
    if smoke:
        c.generator.init = "random"
        c.generator.resolution = 128
        c.generator.width = 4
        c.generator.z_dim = 128
        c.generator.num_classes = 1000
    return c
