"""Shared defaults of every experiment config, and the helpers of config files.

Each experiment file (`configs/genviews.py`, ...) starts from `base()` and
changes what it needs. Every field has a default and a comment. The dict is
locked, so an unknown `--config.KEY` fails at start. Configs are data: nothing
here imports the code that runs them. Impossible values are rejected, with the
key named and before any compute, by the code that owns the keys: the training
keys by tasks/validate.py, each evaluator's section of `eval` by its module in
evaluators/, a study's keys by studies/run.py.
"""

from __future__ import annotations

import os

import ml_collections

from errors import ConfigError

# The embedded pretrained generator: genviews' class-conditional sprite generator trained
# on genviews_shapes (how: pretrained/genviews_shapes/README.md). It ships in the repository.
SHIPPED_GENERATOR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                 "pretrained", "genviews_shapes")

# Keys renamed since runs were written: old key -> new key. A config that sets an old key
# fails with one line naming the new one; a run directory's config.json is read as renamed.
RENAMED = {
    "eval.val_fraction": "eval.linear_probe.val_fraction",
    "eval.l2_grid": "eval.linear_probe.l2_grid",
    "eval.probe_steps": "eval.linear_probe.steps",
    "eval.knn_k": "eval.knn.k",
    "eval.knn_temperature": "eval.knn.temperature",
    "eval.fewshot_shots": "eval.fewshot.shots",
    "eval.fewshot_seeds": "eval.fewshot.seeds",
    "eval.fewshot_l2": "eval.fewshot.l2",
    **{f"eval.genrep_{k}": f"eval.linear_probe_genrep.{k}" for k in (
        "epochs", "lr", "milestones", "decay", "batch_size", "augment", "crop_scale_min")},
}


def base() -> ml_collections.ConfigDict:
    c = ml_collections.ConfigDict()
    c.task = "contrastive"  # kind of training: contrastive | generator | steering (walks)
    c.seed = 0  # every random draw derives from it, per global example
    c.parallel = "shard_map"  # shard_map (jit over a 1-D data mesh) | pmap; same step function

    c.data = ml_collections.ConfigDict()
    # where training pixels come from: generator | real | DIR, an export of python -m data.export
    # (offline: its fixed views; generator.* and the latent views.* keys are then unused)
    c.data.source = "generator"
    c.data.name = "genviews_shapes"  # TFDS dataset of real images (source=real; the probe default)
    c.data.data_dir = ""  # TFDS data_dir; "" = TFDS default (~/tensorflow_datasets or $TFDS_DATA_DIR)
    c.data.split = "train"  # TFDS split of real training images
    c.data.image_size = 32  # side of the images the encoder sees
    c.data.load_size = 0  # side real images are resized and centre-cropped to on the host; 0 = image_size
    c.data.max_examples = 0  # >0: use only the first examples of the split (smoke runs)
    # Grain worker processes that read and decode real batches (data/pipeline.py); 0: threads
    # of the training process; -1: 0 on a CPU backend, else half the host's cores up to 16
    c.data.workers = -1
    # a directory written by python -m evaluators.prune (data/subset.py): train on its rows of
    # a real split or an export only (indices.npy), with the labels they were selected under
    c.data.subset = ""
    # data.source=mix: the fraction of every batch that is generated instances (latent and
    # pixel views), the rest real images of data.name (pixel views); a fraction k/m whose m
    # divides the per-device batch (data/views.py, mix_rows)
    c.data.mix_ratio = 0.5

    c.generator = ml_collections.ConfigDict()
    c.generator.init = "checkpoint"  # checkpoint: load generator.checkpoint | random: a fresh random G
    c.generator.checkpoint = ""  # directory written by configs/generator.py or models.convert
    c.generator.family = "dcgan"  # family of a random generator (init=random) and of pretraining
    c.generator.z_dim = 64  # latent size of a random / pretrained generator
    c.generator.num_classes = 10  # classes of a random / pretrained generator (0: unconditional)
    c.generator.resolution = 32  # output side of a random / pretrained generator
    c.generator.width = 32  # base channel width of a random / pretrained generator
    c.generator.truncation = 1.0  # anchors are truncation · N(0, 1) truncated at ±2

    c.views = ml_collections.ConfigDict()
    # latent views (data/views.py): gaussian (z + σ·ε) | none (pixel-only ablation) | angular
    # (z + σ·ε rescaled to ‖z‖) | independent (a fresh z, same class) | multi_sigma (σ from
    # sigmas) | steer (learned steering walks, views.walks)
    c.views.latent = "gaussian"
    c.views.pixel = "simclr"  # pixel views: simclr | none (latent-only ablation: centre crop)
    c.views.sigma = 0.2  # σ of the Gaussian (and angular) neighbourhood
    c.views.sigmas = (0.1, 0.2, 0.5)  # multi_sigma: each view's σ is drawn uniformly from these
    c.views.num_views = 2  # views per instance (≥ 2)
    # GenRep's form: the first view is the anchor G(z) itself, the others are drawn
    # (G(z + σε) for gaussian). False: every view is drawn, so two Gaussian views are
    # √2·σ apart and σ is not GenRep's σ.
    c.views.anchor_view = False
    # >0: instances are drawn from a fixed pool of this many (anchor, view latents), keyed
    # by seed (a finite generated dataset); 0 = a new instance at every draw
    c.views.num_anchors = 0
    c.views.walks = ""  # latent=steer: a steering run's workdir (configs/steering.py) | random (smoke)
    c.views.crop_scale_min = 0.2  # RandomResizedCrop scale lower bound (upper is 1)
    # where real images are cropped: loaded (on the device, from the image at data.load_size) |
    # original (on the host, from the decoded image at its own size, as SimCLR on ImageNet)
    c.views.crop_from = "loaded"
    c.views.flip = True  # random horizontal flip
    c.views.jitter_strength = 0.4  # ColorJitter brightness/contrast/saturation (hue = strength / 4)
    c.views.jitter_prob = 0.8  # probability of colour jitter
    c.views.gray_prob = 0.2  # probability of grayscale
    c.views.blur_prob = 0.0  # probability of Gaussian blur (GenRep: none)
    # the strength in [0, 1] of the pixel views of real images and of generated ones: it
    # scales the colour jitter's strength and the jitter and grayscale probabilities, and
    # the crop's range of scales (1 − s·(1 − crop_scale_min), 1); 1: the transform above, 0:
    # flips only (AdaInf's weaker augmentation of real data when mixed with generated)
    c.views.pixel_strength_real = 1.0
    c.views.pixel_strength_generated = 1.0

    # A supervised classifier trained end to end (task=classifier, tasks/classifier.py): the
    # cross-entropy with the (noisy) labels, or ELR (Liu et al. 2020) with λ and β
    c.classifier = ml_collections.ConfigDict()
    c.classifier.loss = "ce"  # ce | elr
    c.classifier.elr_lambda = 3.0  # λ of λ·log(1 − ⟨t, p⟩) (the paper's CIFAR-10 value)
    c.classifier.elr_beta = 0.7  # β of the targets' temporal ensemble (CIFAR-10)

    # Forward-Forward (task=forward_forward, tasks/forward_forward.py): each layer's goodness,
    # the mean square of its activities, above `threshold` on positives, below on negatives
    c.ff = ml_collections.ConfigDict()
    c.ff.positive = "real"  # real (data.name) | generated (the generator's samples)
    c.ff.negative = "generated"  # generated | wrong_label (a sample, another class embedded) | hybrid
    c.ff.threshold = 2.0  # θ of σ(goodness − θ)
    c.ff.label_slots = 10  # wrong_label: the classes, embedded in the first pixels of the top row

    # Steering walks: task=steering trains them over these step ranges; views.latent=steer
    # composes them with steps from the ranges stored with the walks (these, for walks=random).
    c.steer = ml_collections.ConfigDict()
    c.steer.walks = ("color", "zoom", "shift_x", "shift_y", "rotate")  # the walks trained / composed
    c.steer.color = 0.5  # colour walk: step per RGB channel uniform in ±color (images in [-1, 1])
    c.steer.zoom = 4.0  # zoom walk: scale factor log-uniform in [1/zoom, zoom]
    c.steer.shift = 0.4  # shift walks: uniform in ±shift of the image side
    c.steer.rotate = 30.0  # rotation walk: uniform in ±rotate degrees

    c.model = ml_collections.ConfigDict()
    c.model.encoder = "convnet"  # convnet | resnet18 | resnet50
    c.model.width = 16  # base width of the convnet (features: 8 × width)
    c.model.pool = "mean"  # the convnet's global pooling: mean | mean_max (features: 16 × width)
    c.model.proj_hidden = 512  # projection head hidden width
    c.model.proj_dim = 128  # projection output size (the loss's embedding)
    c.model.proj_layers = 2  # projection head depth
    c.model.online_head = True  # linear classifier on stop-gradient features, when labels exist
    c.model.latent_layers = 3  # clip_latent: depth of the MLP on (z, one-hot y), width proj_hidden

    c.loss = ml_collections.ConfigDict()
    # ntxent (SimCLR) | supcon (positives share the class) | multipos (StableRep: all views of an
    # instance are positives) | clip_latent (image encoder vs an MLP on the latent, CLIP's loss)
    c.loss.name = "ntxent"
    c.loss.temperature = 0.1  # softmax temperature τ
    c.loss.base_temperature = 0.1  # loss is scaled by τ / base_temperature (GenRep: 0.07)
    c.loss.clip_init_temperature = 0.07  # clip_latent: initial τ of its learnable logit scale 1/τ
    c.loss.clip_max_logit_scale = 100.0  # clip_latent: the logit scale is clamped at this (CLIP)

    c.optim = ml_collections.ConfigDict()
    c.optim.name = "sgd"  # sgd (with momentum) | lars | adam
    c.optim.lr = 0.03  # peak learning rate
    c.optim.momentum = 0.9  # SGD / LARS momentum
    c.optim.weight_decay = 1e-4  # L2 weight decay, masked off biases and norm parameters
    c.optim.warmup_steps = 0  # linear warm-up steps, then cosine decay to 0

    c.train = ml_collections.ConfigDict()
    c.train.batch_size = 256  # global batch of instances (each with num_views views)
    c.train.steps = 1000  # total optimisation steps
    c.train.log_every = 50  # steps between metrics.jsonl lines
    c.train.ckpt_every = 500  # steps between checkpoints (and at the end)
    c.train.keep_checkpoints = 2  # checkpoints kept on disk
    c.train.grid_every = 0  # steps between PNG sample grids (0: only at the end)
    c.train.views_png = True  # contrastive and FF runs: write views.png at the end (False: skip it)
    # Compute dtype of the encoder and heads: float32, or bfloat16 (mixed precision: bf16
    # convolutions, matmuls and activations; float32 parameters, optimizer state and loss).
    c.train.dtype = "float32"

    c.eval = ml_collections.ConfigDict()
    c.eval.dataset = ""  # TFDS dataset to probe; "" = data.name
    c.eval.train_split = "train"  # split the probes are fit on
    c.eval.test_split = "test"  # split the probes are tested on, once
    c.eval.max_train = 0  # >0: probe on the first examples of train only
    c.eval.max_test = 0  # >0: test on the first examples of test only
    c.eval.batch_size = 1000  # feature extraction batch
    c.eval.evaluators = ("linear_probe", "knn", "fewshot")  # parts of eval.json; + linear_probe_genrep
    # One section per evaluator (its module in evaluators/ checks it):
    c.eval.linear_probe = ml_collections.ConfigDict()
    c.eval.linear_probe.val_fraction = 0.1  # fraction of train held out to choose the L2 strength
    c.eval.linear_probe.l2_grid = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)  # candidate L2 strengths
    c.eval.linear_probe.steps = 1000  # most L-BFGS steps; the probe stops at its gradient tolerance
    c.eval.knn = ml_collections.ConfigDict()
    c.eval.knn.k = 200  # neighbours of the kNN classifier
    c.eval.knn.temperature = 0.07  # weight exp(cos / T) of each neighbour
    c.eval.fewshot = ml_collections.ConfigDict()
    c.eval.fewshot.shots = (1, 5, 10, 25)  # examples per class of the few-shot ridge regressions
    c.eval.fewshot.seeds = 3  # draws of the few-shot examples (mean ± std over them)
    c.eval.fewshot.l2 = 1024.0  # ridge strength of the few-shot regression (big_vision: 2^10, fixed)
    c.eval.linear_probe_genrep = ml_collections.ConfigDict()  # GenRep's SGD probe
    c.eval.linear_probe_genrep.epochs = 100  # SGD epochs over train (GenRep: 100)
    c.eval.linear_probe_genrep.lr = 0.1  # initial learning rate (SupCon/GenRep main_linear)
    c.eval.linear_probe_genrep.milestones = (60, 75, 90)  # epochs at which lr is multiplied by decay
    c.eval.linear_probe_genrep.decay = 0.2  # learning-rate factor at each milestone
    c.eval.linear_probe_genrep.batch_size = 256  # minibatch size
    c.eval.linear_probe_genrep.augment = True  # random crops + flips of train images (else features)
    c.eval.linear_probe_genrep.crop_scale_min = 0.2  # crop scale lower bound (GenRep: 0.2)
    return c


def study_base() -> ml_collections.ConfigDict:
    """The fields of a study config (a list of runs compared in one table; see studies/run.py)."""
    c = ml_collections.ConfigDict()
    c.study = ""  # title of the comparison
    c.runs = ml_collections.ConfigDict()  # run name -> experiment config; each goes to DIR/NAME/
    c.kinds = ml_collections.ConfigDict()  # run name -> generated | real | random (probed) | "" (not)
    # A swept value: run name -> x (the runs not named are drawn as baselines); results.png
    # is then a line plot against x (studies/report.py).
    c.x = ml_collections.ConfigDict()
    c.x_label = "x"  # the x-axis label
    c.x_log = False  # a log-scale x-axis
    # Each probed run is trained and evaluated with this many seeds (config.seed + 0, 1, ...):
    # a seed changes the encoder's init, the views and the data order. Rows report the
    # mean ± std over seeds; seed k > 0 of run NAME goes to DIR/NAME.seedK/.
    c.seeds = 1
    c.fidelity = ml_collections.ConfigDict()
    # Views of every generated run against their anchors and real images, in the features
    # of this encoder ("@RUN" or a run directory; "" = off): one feature space for all runs.
    c.fidelity.encoder = ""
    c.fidelity.samples = 5000  # anchors (each with one view) and real train images compared
    c.fidelity.k = 5  # neighbour that sets a ball's radius
    c.fidelity.seed = 0  # the anchors' seed: the same anchors for every run
    return c


def smoke(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """Shrinks any config to seconds on one CPU, on the same code path."""
    c.train.batch_size = 16
    c.train.steps = 6
    # Batches of 16 make lr 0.03 chaotic: float32 rounding differences between 1 and 4
    # devices grew to 1.4e-3 relative in 20 steps; at 0.003 they stay ≤ 2e-5.
    c.optim.lr = 0.003
    c.train.log_every = 2
    c.train.ckpt_every = 3
    c.data.max_examples = 512
    # No views.png (its views compile again at the grid's shapes, seconds of a smoke run's
    # time): `--config.train.views_png=true` draws it.
    c.train.views_png = False
    c.model.encoder = "convnet"
    c.model.width = 8
    c.model.proj_hidden = 32
    c.model.proj_dim = 16
    c.eval.max_train = 500
    c.eval.max_test = 200
    c.eval.linear_probe.steps = 20
    c.eval.knn.k = 10
    c.eval.batch_size = 256
    c.eval.fewshot.shots = (1, 5)
    c.eval.linear_probe_genrep.epochs = 2
    c.eval.linear_probe_genrep.milestones = (1,)
    c.eval.linear_probe_genrep.batch_size = 64
    return c


def parse_arg(arg: str | None) -> set[str]:
    """The comma-separated words of a config arg ("smoke", ...)."""
    return {w for w in (arg or "").split(",") if w}


def parse_options(arg: str | None, defaults: dict) -> dict:
    """A config arg of words and KEY=VALUE pairs (`smoke,steps=100,batch=64`) as a dict.

    Words are booleans set to True; a value takes the type of its default. Unknown
    keys and values of the wrong type fail naming the key.
    """
    options = dict(defaults)
    for word in parse_arg(arg):
        key, sep, value = word.partition("=")
        if key not in defaults:
            raise ConfigError(f"unknown config arg {key!r}; this config knows {sorted(defaults)}")
        kind = type(defaults[key])
        if not sep:
            if kind is not bool:
                raise ConfigError(f"config arg {key} needs a value: {key}=...")
            options[key] = True
            continue
        try:
            options[key] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
        except ValueError:
            raise ConfigError(f"config arg {key}={value!r} is not a {kind.__name__}") from None
    return options


def upgrade(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
    """A run directory's config as this version reads it: keys renamed since it was written
    moved to their new place (RENAMED), and `eval` keys it predates filled in from base(), as
    are the model and train keys that change how its encoder is built (model.pool,
    train.dtype)."""
    for old, new in RENAMED.items():
        old_key, (_, section, key) = old.split(".")[1], new.split(".")
        if old_key in config.eval:
            if section not in config.eval:
                config.eval[section] = ml_collections.ConfigDict()
            config.eval[section][key] = config.eval[old_key]
            del config.eval[old_key]
    defaults = base()
    for section, key in (("model", "pool"), ("train", "dtype")):
        if key not in config[section]:
            config[section][key] = defaults[section][key]
    for key, default in defaults.eval.items():
        if key not in config.eval:
            config.eval[key] = default
        elif isinstance(default, ml_collections.ConfigDict):
            for sub, value in default.items():
                if sub not in config.eval[key]:
                    config.eval[key][sub] = value
    return config
