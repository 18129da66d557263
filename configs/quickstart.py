"""The quickstart study: the whole genviews pipeline on the embedded default.

    python train.py --config configs/quickstart.py --workdir runs/quickstart

1. take the shipped pretrained class-conditional generator (pretrained/genviews_shapes,
   made by configs/generator.py; `train_generator` pretrains one first instead);
2. train a ConvNet on its views (GenRep's pairs: the anchor G(z) and a Gaussian
   neighbour G(z + σε), plus SimCLR pixel views) with SupCon on the generator's
   classes: GenRep's recipe for a class-conditional generator;
3. train the same encoder on real images with pixel views (SimCLR), same budget;
4. a randomly initialised encoder (0 steps);
5. probe all on real genviews_shapes (linear probe, kNN, few-shot) → results.md/json/png.

Args (comma-separated): `smoke` makes every run a smoke run (seconds each);
`seeds=N` trains and probes every encoder with N seeds (mean ± std; default 1);
`train_generator` pretrains the generator first (configs/generator.py), as the
shipped one was made.
"""

from configs import common, generator, genviews, real

STEPS = 250  # encoder steps of every contrastive run (the same budget for all)
BATCH = 128  # instances per step
SIGMA = 1.0  # the Gaussian neighbour's σ (GenRep's best for a class-conditional G + SupCon)


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
    options = common.parse_options(arg, {"smoke": False, "seeds": 1, "train_generator": False})
    smoke = options["smoke"]
    sub_arg = "smoke" if smoke else None
    c = common.study_base()
    c.study = "quickstart: generated views vs real images on genviews_shapes"
    c.seeds = options["seeds"]

    cfg = encoder_run(smoke, genviews.get_config(sub_arg))
    if options["train_generator"]:
        c.runs.generator = generator.get_config(sub_arg)
        c.kinds.generator = ""
        cfg.generator.init = "checkpoint"
        cfg.generator.checkpoint = "@generator"
    cfg.views.sigma = SIGMA
    cfg.views.anchor_view = True
    cfg.loss.name = "supcon"
    c.runs.genviews_supcon = cfg
    c.kinds.genviews_supcon = "generated"

    c.runs.real_simclr = encoder_run(smoke, real.get_config(sub_arg))
    c.kinds.real_simclr = "real"

    c.runs.random = encoder_run(smoke, real.get_config(sub_arg))
    c.runs.random.train.steps = 0
    c.kinds.random = "random"
    return c
