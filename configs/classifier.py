"""A supervised ConvNet classifier trained end to end (tasks/classifier.py): the learner of the
Prune4ReL study, on a subset's (noisy) labels, with the cross-entropy or ELR.

    python train.py --config configs/classifier.py --workdir runs/clf
    python train.py --config configs/classifier.py --workdir runs/clf_elr \
        --config.classifier.loss=elr --config.data.subset=SUBSET_DIR   # python -m evaluators.prune
    python train.py --config configs/classifier.py:smoke --workdir /tmp/clf   # seconds

The quickstart's ConvNet (width 32) and budget (250 steps of 128), SGD; each image seen
through SimCLR's pixel views at half strength (crops and jitter as a supervised recipe
uses them). DIR/classifier.json holds its top-1 on the clean test labels.
"""

from configs import common, quickstart


def get_config(arg: str | None = None):
    c = common.base()
    c.task = "classifier"
    c.data.source = "real"
    c.data.name = "genviews_shapes"
    c.views.pixel = "simclr"
    c.views.pixel_strength_real = 0.5
    c.model.encoder = "convnet"
    c.model.width = 32
    c.optim.lr = 0.05
    c.train.batch_size = quickstart.BATCH
    c.train.steps = quickstart.STEPS
    c.train.log_every = 25
    if common.parse_options(arg, {"smoke": False})["smoke"]:
        common.smoke(c)
        c.optim.lr = 0.05
    return c
