"""Shared defaults of every experiment config, and their validation.

Each experiment file (`configs/genviews.py`, ...) starts from `base()` and
changes what it needs. Every field has a default and a comment. The dict is
locked, so an unknown `--config.KEY` fails at start, and `validate` rejects
impossible values with the key named, before any compute.
"""

from __future__ import annotations

import os

import ml_collections

from data.edits import WALK_DIMS
from data.pixel import PIXEL_KINDS
from data.views import CONDITIONAL_KINDS, LATENT_KINDS
from errors import ConfigError
from models.encoders import ENCODERS

TASKS = ("contrastive", "generator", "steering")
SOURCES = ("generator", "real")
LOSSES = ("ntxent", "supcon", "multipos", "clip_latent")
OPTIMIZERS = ("sgd", "lars", "adam")
PARALLEL = ("shard_map", "pmap")


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
    # a directory written by python -m evaluators.prune: train on its rows of a real split or
    # an export only (indices.npy), with the labels they were selected under (labels.npy)
    c.data.subset = ""

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
    # >0: instances are drawn from a fixed pool of this many (anchor, view latents), keyed
    # by seed (a finite generated dataset); 0 = a new instance at every draw
    c.views.num_anchors = 0
    c.views.walks = ""  # latent=steer: a steering run's workdir (configs/steering.py) | random (smoke)
    c.views.crop_scale_min = 0.2  # RandomResizedCrop scale lower bound (upper is 1)
    c.views.flip = True  # random horizontal flip
    c.views.jitter_strength = 0.4  # ColorJitter brightness/contrast/saturation (hue = strength / 4)
    c.views.jitter_prob = 0.8  # probability of colour jitter
    c.views.gray_prob = 0.2  # probability of grayscale
    c.views.blur_prob = 0.0  # probability of Gaussian blur (GenRep: none)

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

    c.eval = ml_collections.ConfigDict()
    c.eval.dataset = ""  # TFDS dataset to probe; "" = data.name
    c.eval.train_split = "train"  # split the probe is fit on (a validation part is carved from it)
    c.eval.test_split = "test"  # split the probe is tested on, once
    c.eval.val_fraction = 0.1  # fraction of train held out to choose the L2 strength
    c.eval.max_train = 0  # >0: probe on the first examples of train only
    c.eval.max_test = 0  # >0: test on the first examples of test only
    c.eval.l2_grid = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1)  # candidate L2 strengths of the probe
    c.eval.probe_steps = 100  # full-batch L-BFGS steps of the probe
    c.eval.knn_k = 200  # neighbours of the kNN classifier
    c.eval.knn_temperature = 0.07  # weight exp(cos / T) of each neighbour
    c.eval.batch_size = 1000  # feature extraction batch
    c.eval.evaluators = ("linear_probe", "knn", "fewshot")  # parts of eval.json; + linear_probe_genrep
    c.eval.fewshot_shots = (1, 5, 10, 25)  # examples per class of the few-shot ridge regressions
    c.eval.fewshot_seeds = 3  # draws of the few-shot examples (mean ± std over them)
    c.eval.fewshot_l2 = 1024.0  # ridge strength of the few-shot regression (big_vision: 2^10, fixed)
    c.eval.genrep_epochs = 100  # linear_probe_genrep: SGD epochs over train (GenRep: 100)
    c.eval.genrep_lr = 0.1  # linear_probe_genrep: initial learning rate (SupCon/GenRep main_linear)
    c.eval.genrep_milestones = (60, 75, 90)  # linear_probe_genrep: epochs at which lr is multiplied by decay
    c.eval.genrep_decay = 0.2  # linear_probe_genrep: learning-rate factor at each milestone
    c.eval.genrep_batch_size = 256  # linear_probe_genrep: minibatch size
    c.eval.genrep_augment = True  # linear_probe_genrep: random crops + flips of train images (else features)
    c.eval.genrep_crop_scale_min = 0.2  # linear_probe_genrep: crop scale lower bound (GenRep: 0.2)
    return c


def study_base() -> ml_collections.ConfigDict:
    """The fields of a study config (a list of runs compared in one table; see study.py)."""
    c = ml_collections.ConfigDict()
    c.study = ""  # title of the comparison
    c.runs = ml_collections.ConfigDict()  # run name -> experiment config; each goes to DIR/NAME/
    c.kinds = ml_collections.ConfigDict()  # run name -> generated | real | random (probed) | "" (not)
    # A swept value: run name -> x (the runs not named are drawn as baselines); results.png
    # is then a line plot against x (study.py).
    c.x = ml_collections.ConfigDict()
    c.x_label = "x"  # the x-axis label
    c.x_log = False  # a log-scale x-axis
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
    c.model.encoder = "convnet"
    c.model.width = 8
    c.model.proj_hidden = 32
    c.model.proj_dim = 16
    c.eval.max_train = 500
    c.eval.max_test = 200
    c.eval.probe_steps = 20
    c.eval.knn_k = 10
    c.eval.batch_size = 256
    c.eval.fewshot_shots = (1, 5)
    c.eval.genrep_epochs = 2
    c.eval.genrep_milestones = (1,)
    c.eval.genrep_batch_size = 64
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
            raise ConfigError(f"config arg {key!r} is not one of {sorted(defaults)}")
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


def _check(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise ConfigError(f"config key {key}: {message}")


def _choice(c, key: str, choices) -> None:
    value = c
    for part in key.split("."):
        value = value[part]
    _check(value in choices, key, f"{value!r} is not one of {tuple(choices)}")


def _check_source(c: ml_collections.ConfigDict) -> None:
    """data.source: one of SOURCES, or a directory holding an export (checked against the views)."""
    from data import export

    source = c.data.source
    if source in SOURCES:
        return
    meta = export.metadata(source) if isinstance(source, str) else None
    _check(meta is not None, "data.source",
           f"{source!r} is neither one of {SOURCES} nor a directory written by python -m data.export "
           f"(no {export.META_FILE} in it)")
    _check(c.views.num_views <= meta["num_views"], "views.num_views",
           f"{c.views.num_views} views asked, the export {source} holds {meta['num_views']} per anchor")
    _check(c.loss.name != "supcon" or meta["num_classes"] > 0, "loss.name",
           f"supcon needs classes; the export {source} comes from an unconditional generator")


def validate(c: ml_collections.ConfigDict, num_devices: int = 1, num_processes: int = 1) -> None:
    """Rejects impossible values, naming the key; called before any compute."""
    if "study" in c:
        _validate_study(c)
        return
    _choice(c, "task", TASKS)
    _choice(c, "parallel", PARALLEL)
    _check_source(c)
    _check(not c.data.subset or (c.task == "contrastive" and c.data.source != "generator"),
           "data.subset", "selects rows of a dataset: data.source must be real or an export")
    _check(not c.data.subset or os.path.isfile(os.path.join(c.data.subset, "indices.npy")),
           "data.subset", f"{c.data.subset!r} holds no indices.npy (python -m evaluators.prune "
           "writes one)")
    _choice(c, "generator.init", ("checkpoint", "random"))
    _choice(c, "views.latent", LATENT_KINDS)
    _choice(c, "views.pixel", PIXEL_KINDS)
    _choice(c, "model.encoder", ENCODERS)
    _choice(c, "loss.name", LOSSES)
    _choice(c, "optim.name", OPTIMIZERS)
    _check(c.optim.lr > 0, "optim.lr", f"must be > 0, got {c.optim.lr}")
    _check(c.optim.weight_decay >= 0, "optim.weight_decay", f"must be ≥ 0, got {c.optim.weight_decay}")
    _check(0 <= c.optim.momentum < 1, "optim.momentum", f"must be in [0, 1), got {c.optim.momentum}")
    _check(c.optim.warmup_steps >= 0, "optim.warmup_steps", "must be ≥ 0")
    _check(c.train.steps >= 0, "train.steps", f"must be ≥ 0, got {c.train.steps}")
    _check(c.train.batch_size > 0, "train.batch_size", f"must be > 0, got {c.train.batch_size}")
    _check(c.train.batch_size % num_devices == 0, "train.batch_size",
           f"{c.train.batch_size} does not divide over {num_devices} devices")
    _check(c.train.batch_size % num_processes == 0, "train.batch_size",
           f"{c.train.batch_size} does not divide over {num_processes} processes")
    _check(c.train.log_every > 0, "train.log_every", "must be > 0")
    _check(c.train.ckpt_every > 0, "train.ckpt_every", "must be > 0")
    _check(c.train.keep_checkpoints > 0, "train.keep_checkpoints", "must be > 0")
    _check(c.views.sigma >= 0, "views.sigma", f"must be ≥ 0, got {c.views.sigma}")
    _check(all(s >= 0 for s in c.views.sigmas), "views.sigmas", f"must be ≥ 0, got {c.views.sigmas}")
    _check(c.views.latent != "multi_sigma" or len(c.views.sigmas) > 0, "views.sigmas",
           "is empty: multi_sigma draws each view's σ from it")
    _check(c.views.num_views >= 2, "views.num_views", f"must be ≥ 2, got {c.views.num_views}")
    _check(0 < c.views.crop_scale_min <= 1, "views.crop_scale_min", "must be in (0, 1]")
    for key in ("jitter_prob", "gray_prob", "blur_prob"):
        _check(0 <= c.views[key] <= 1, f"views.{key}", f"must be a probability, got {c.views[key]}")
    _check(c.loss.temperature > 0, "loss.temperature", "must be > 0")
    _check(c.loss.base_temperature > 0, "loss.base_temperature", "must be > 0")
    _check(c.data.image_size > 0, "data.image_size", "must be > 0")
    _check(c.generator.truncation > 0, "generator.truncation", "must be > 0")
    if c.task in ("generator", "steering") or c.data.source == "generator":
        from models import generators

        _check(c.generator.family in generators.families(), "generator.family",
               f"{c.generator.family!r} is not implemented (known: {generators.families()})")
        _check(c.generator.family != "bigbigan" or c.generator.init != "random"
               or c.generator.num_classes == 0, "generator.num_classes",
               "BigBiGAN is unconditional: must be 0")
    walks = tuple(c.steer.walks)
    _check(bool(walks) and len(set(walks)) == len(walks) and set(walks) <= set(WALK_DIMS),
           "steer.walks", f"{walks} must be distinct names from {tuple(WALK_DIMS)}")
    for key in ("color", "shift", "rotate"):
        _check(c.steer[key] >= 0, f"steer.{key}", f"must be ≥ 0, got {c.steer[key]}")
    _check(c.steer.zoom >= 1, "steer.zoom", f"must be ≥ 1 (a factor), got {c.steer.zoom}")
    generated = c.task == "contrastive" and c.data.source == "generator"
    if generated or c.task == "steering":
        _check(c.generator.init == "random" or bool(c.generator.checkpoint), "generator.checkpoint",
               "is empty: name a generator directory, or set generator.init=random")
    if generated and c.views.latent == "steer":
        _check(bool(c.views.walks), "views.walks",
               "is empty: name a steering run's workdir (configs/steering.py), or random")
    if generated:
        unconditional = c.generator.init == "random" and c.generator.num_classes == 0
        _check(not (c.loss.name == "supcon" and unconditional), "loss.name",
               "supcon needs a class-conditional generator")
        _check(not (c.views.latent in CONDITIONAL_KINDS and unconditional), "views.latent",
               f"{c.views.latent} keeps the anchor's class and needs a class-conditional generator "
               "(generator.num_classes > 0)")
    _check(c.loss.name != "clip_latent" or c.data.source != "real", "loss.name",
           "clip_latent pairs images with their latents: data.source must be generator or an export")
    _check(c.loss.clip_init_temperature > 0, "loss.clip_init_temperature", "must be > 0")
    _check(c.loss.clip_max_logit_scale >= 1 / c.loss.clip_init_temperature, "loss.clip_max_logit_scale",
           "must be ≥ 1 / loss.clip_init_temperature")
    _check(c.model.latent_layers >= 1, "model.latent_layers", "must be ≥ 1")
    _check(0 < c.eval.val_fraction < 1, "eval.val_fraction", "must be in (0, 1)")
    _check(all(v > 0 for v in c.eval.l2_grid), "eval.l2_grid", "strengths must be > 0")
    _check(c.eval.knn_k > 0, "eval.knn_k", "must be > 0")
    _check(c.views.num_anchors >= 0, "views.num_anchors", f"must be ≥ 0, got {c.views.num_anchors}")
    from eval import EVALUATORS  # the registry of eval.py (evaluated lazily: eval.py imports configs)

    for name in c.eval.evaluators:
        _check(name in EVALUATORS, "eval.evaluators", f"{name!r} is not one of {tuple(EVALUATORS)}")
    _check(len(c.eval.fewshot_shots) > 0 and all(k > 0 for k in c.eval.fewshot_shots),
           "eval.fewshot_shots", "must be a non-empty list of counts > 0")
    _check(c.eval.fewshot_seeds > 0, "eval.fewshot_seeds", "must be > 0")
    _check(c.eval.fewshot_l2 > 0, "eval.fewshot_l2", "must be > 0")
    _check(c.eval.genrep_epochs > 0, "eval.genrep_epochs", "must be > 0")
    _check(c.eval.genrep_lr > 0, "eval.genrep_lr", "must be > 0")
    _check(c.eval.genrep_batch_size > 0, "eval.genrep_batch_size", "must be > 0")
    _check(0 < c.eval.genrep_crop_scale_min <= 1, "eval.genrep_crop_scale_min", "must be in (0, 1]")


def _validate_study(c: ml_collections.ConfigDict) -> None:
    names = list(c.runs.keys())
    for name in c.x.keys():
        _check(name in names, "x", f"{name!r} names no run of the study")
    if c.fidelity.encoder.startswith("@"):
        _check(c.fidelity.encoder[1:] in names, "fidelity.encoder",
               f"{c.fidelity.encoder!r} names no run of the study")
    _check(c.fidelity.k >= 1, "fidelity.k", f"must be ≥ 1, got {c.fidelity.k}")
    _check(c.fidelity.samples > c.fidelity.k, "fidelity.samples",
           f"must be > fidelity.k = {c.fidelity.k}, got {c.fidelity.samples}")
