"""GenRep's ImageNet-100 recipe (Jahanian et al., ICLR 2022), shared by the paper configs.

Training (../shared/REFERENCES.md): ResNet-50 from scratch at 112×112 with a
2048→2048→128 head, batch 256, SGD momentum 0.9, weight decay 1e-4, lr 0.03,
cosine, 20 epochs of 130k instances (1,300 per class), τ = 0.1 with the loss
scaled by τ/0.07; pixel views RandomResizedCrop(112, 0.2–1), flip,
ColorJitter(0.4, 0.4, 0.4, 0.1) p = 0.8, grayscale p = 0.2, no blur.

Probe (the paper's protocol, `linear_probe_genrep`): frozen encoder, SGD
momentum 0.9, no weight decay, 100 epochs, lr × 0.2 at epochs 60/75/90, batch
256, RandomResizedCrop(112) + flip of the training images, Resize(128) +
CenterCrop(112) to test, on ImageNet-100's train and validation splits; unlike
the paper, the last epoch is tested once. The L2-tuned logistic probe, kNN and
few-shot run beside it.

`smoke` (every paper config takes it): a tiny encoder on one CPU, probing
genviews_shapes (ImageNet cannot be had there); the generator is a small random
one of the family.
"""

from configs import common

ANCHORS = 130_000  # 1,300 per class, as GenRep
EPOCHS = 20
BATCH = 256


def base(arg: str | None, extra: dict | None = None) -> tuple:
    """(config, smoke): the recipe on ImageNet-100, views and generator left to the caller."""
    smoke = common.parse_options(arg, {"smoke": False, **(extra or {})})["smoke"]
    c = common.base()
    c.data.name = "imagenet100"
    c.data.image_size = 112
    c.data.load_size = 128
    c.generator.truncation = 1.0
    c.views.latent = "gaussian"
    c.views.anchor_view = True  # GenRep's pairs: the anchor G(z) and a neighbour G(z + σε)
    c.views.pixel = "simclr"
    c.views.crop_scale_min = 0.2
    c.model.encoder = "resnet50"
    c.model.proj_hidden = 2048
    c.model.proj_dim = 128
    c.loss.temperature = 0.1
    c.loss.base_temperature = 0.07
    c.optim.name = "sgd"
    c.optim.lr = 0.03
    c.optim.momentum = 0.9
    c.optim.weight_decay = 1e-4
    c.train.batch_size = BATCH
    c.train.steps = ANCHORS * EPOCHS // BATCH
    c.train.log_every = 100
    c.train.ckpt_every = 1000
    c.eval.dataset = "imagenet100"
    c.eval.test_split = "validation"  # ImageNet's test split has no labels
    c.eval.batch_size = 500
    c.eval.evaluators = ("linear_probe_genrep", "linear_probe", "knn", "fewshot")
    if smoke:
        common.smoke(c)
        c.data.name = "genviews_shapes"
        c.data.load_size = 0
        c.eval.dataset = "genviews_shapes"
        c.eval.test_split = "test"
    return c, smoke
