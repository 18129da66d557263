"""The quickstart study: the whole genviews pipeline on the embedded default.

    python train.py --config configs/quickstart.py --workdir runs/quickstart

1. pretrain the small class-conditional GAN on genviews_shapes;
2. train a ConvNet on its views (latent Gaussian neighbour + SimCLR pixel views)
   with SupCon on the generator's classes (GenRep's BigGAN recipe);
3. train the same encoder on real images with pixel views (SimCLR), same budget;
4. a randomly initialised encoder (0 steps);
5. probe all on real genviews_shapes (linear probe and kNN) → results.md/json/png.

Args: `smoke` makes every run a smoke run (seconds each).
"""

import ml_collections

from configs import common, generator, genviews, real

STEPS = 300  # encoder steps of every contrastive run (the same budget for all)
BATCH = 128  # instances per step


def encoder_budget(cfg):
    """The quickstart's encoder budget and recipe (CPU-sized), shared by studies at its scale."""
    cfg.train.steps = STEPS
    cfg.train.batch_size = BATCH
    cfg.train.log_every = 50
    cfg.train.ckpt_every = 200
    cfg.optim.lr = 0.1
    cfg.optim.weight_decay = 5e-4
    cfg.optim.warmup_steps = 30
    cfg.model.encoder = "convnet"
    cfg.model.width = 32
    cfg.eval.max_train = 10000
    return cfg


def get_config(arg: str | None = None):
    smoke = "smoke" in common.parse_arg(arg)
    sub_arg = "smoke" if smoke else None
    c = ml_collections.ConfigDict()
    c.study = "quickstart: generated views vs real images on genviews_shapes"
    c.runs = ml_collections.ConfigDict()
    c.kinds = ml_collections.ConfigDict()

    c.runs.generator = generator.get_config(sub_arg)
    c.kinds.generator = ""

    def encoder_run(cfg):
        return cfg if smoke else encoder_budget(cfg)

    for name, loss in (("genviews_supcon", "supcon"),):
        cfg = encoder_run(genviews.get_config(sub_arg))
        cfg.generator.init = "checkpoint"
        cfg.generator.checkpoint = "@generator"
        cfg.views.sigma = 0.5
        cfg.loss.name = loss
        c.runs[name] = cfg
        c.kinds[name] = "generated"

    add_references(c, smoke)
    return c


def add_references(study, smoke: bool) -> None:
    """The reference runs of a study: SimCLR on real images (`real_simclr`) and an
    untrained encoder (`random`), at the quickstart's budget unless smoke."""
    sub_arg = "smoke" if smoke else None
    for name, kind, steps in (("real_simclr", "real", None), ("random", "random", 0)):
        cfg = real.get_config(sub_arg)
        if not smoke:
            encoder_budget(cfg)
        if steps is not None:
            cfg.train.steps = steps
        study.runs[name] = cfg
        study.kinds[name] = kind
