"""The quickstart study: the whole genviews pipeline on the embedded default.

    python train.py --config configs/quickstart.py --workdir runs/quickstart

1. pretrain the small class-conditional GAN on genviews_shapes;
2. train a ConvNet on its views (latent Gaussian neighbour + SimCLR pixel views)
   with SimCLR's NT-Xent (GenRep's recipe for BigBiGAN; its BigGAN recipe, SupCon
   on the generator's classes, scored about the same here: see README, Results);
3. train the same encoder on real images with pixel views (SimCLR), same budget;
4. a randomly initialised encoder (0 steps);
5. probe all on real genviews_shapes (linear probe and kNN) → results.md/json/png.

Args: `smoke` makes every run a smoke run (seconds each).
"""

from configs import common, generator, genviews, real

STEPS = 300  # encoder steps of every contrastive run (the same budget for all)
BATCH = 128  # instances per step


def encoder_run(smoke: bool, cfg, steps: int = STEPS, batch: int = BATCH):
    """The quickstart's encoder scale (ConvNet width 32, `steps` steps of `batch` instances,
    probe on 10k train images); a smoke config is left as it is."""
    if not smoke:
        cfg.train.steps = steps
        cfg.train.batch_size = batch
        cfg.train.log_every = 50
        cfg.train.ckpt_every = 200
        cfg.optim.lr = 0.1
        cfg.optim.weight_decay = 5e-4
        cfg.optim.warmup_steps = min(30, steps // 10)
        cfg.model.encoder = "convnet"
        cfg.model.width = 32
        cfg.eval.max_train = 10000
    return cfg


def get_config(arg: str | None = None):
    smoke = "smoke" in common.parse_arg(arg)
    sub_arg = "smoke" if smoke else None
    c = common.study_base()
    c.study = "quickstart: generated views vs real images on genviews_shapes"

    c.runs.generator = generator.get_config(sub_arg)
    c.kinds.generator = ""

    cfg = encoder_run(smoke, genviews.get_config(sub_arg))
    cfg.generator.init = "checkpoint"
    cfg.generator.checkpoint = "@generator"
    cfg.views.sigma = 0.5
    cfg.loss.name = "ntxent"
    c.runs.genviews_simclr = cfg
    c.kinds.genviews_simclr = "generated"

    c.runs.real_simclr = encoder_run(smoke, real.get_config(sub_arg))
    c.kinds.real_simclr = "real"

    c.runs.random = encoder_run(smoke, real.get_config(sub_arg))
    c.runs.random.train.steps = 0
    c.kinds.random = "random"
    return c
