"""GenRep's ImageNet-100 run on BigGAN-deep-256 views with SupCon (σ = 1.0).

Ready for a GPU node, given a converted generator and ImageNet prepared in TFDS:

    python -m models.convert biggan --checkpoint biggan-deep-256/pytorch_model.bin \
        --config biggan-deep-256/config.json --out gens/biggan-deep-256
    python train.py --config configs/paper/imagenet100_biggan_supcon.py --workdir runs/in100_biggan \
        --config.generator.checkpoint=gens/biggan-deep-256
    python eval.py --workdir runs/in100_biggan

Recipe (GenRep, ../shared/REFERENCES.md): anchors from a normal truncated at ±2
(truncation 1.0), views z + σ·ε with σ = 1.0, RandomResizedCrop(112, 0.2–1),
flip, ColorJitter(0.4, 0.4, 0.4, 0.1) p = 0.8, grayscale p = 0.2, no blur;
ResNet-50 with a 2048→2048→128 head; SupCon on the generator's classes, τ = 0.1
scaled by τ/0.07; SGD momentum 0.9, lr 0.01, weight decay 1e-4, cosine, batch
256, 20 epochs of 130k anchors. Probe: ImageNet-100 (CMC's classes), images
resized to 128 and centre-cropped to 112.

Arg `smoke`: a random BigGAN-deep-128 of channel width 4 and a tiny encoder, on
one CPU in a minute; it probes on genviews_shapes (ImageNet cannot be had there).
"""

from configs import common

ANCHORS = 130_000  # 1,300 per class, as GenRep
EPOCHS = 20
BATCH = 256


def get_config(arg: str | None = None):
    c = common.base()
    c.data.source = "generator"
    c.data.name = "imagenet100"
    c.data.image_size = 112
    c.data.load_size = 128
    c.generator.init = "checkpoint"
    c.generator.checkpoint = ""  # the converted biggan-deep-256 directory (required)
    c.generator.family = "biggan_deep"
    c.generator.truncation = 1.0
    c.views.latent = "gaussian"
    c.views.pixel = "simclr"
    c.views.sigma = 1.0
    c.views.crop_scale_min = 0.2
    c.model.encoder = "resnet50"
    c.model.proj_hidden = 2048
    c.model.proj_dim = 128
    c.loss.name = "supcon"
    c.loss.temperature = 0.1
    c.loss.base_temperature = 0.07
    c.optim.name = "sgd"
    c.optim.lr = 0.01
    c.optim.momentum = 0.9
    c.optim.weight_decay = 1e-4
    c.train.batch_size = BATCH
    c.train.steps = ANCHORS * EPOCHS // BATCH
    c.train.log_every = 100
    c.train.ckpt_every = 1000
    c.eval.dataset = "imagenet100"
    c.eval.batch_size = 500
    if "smoke" in common.parse_arg(arg):
        common.smoke(c)
        c.generator.init = "random"
        c.generator.resolution = 128
        c.generator.width = 4
        c.generator.z_dim = 128
        c.generator.num_classes = 1000
        c.eval.dataset = "genviews_shapes"
        c.data.load_size = 0
    return c
