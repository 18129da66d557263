"""The checks of a run config's training keys, before any compute.

Every choice is checked against the vocabulary of the code that dispatches on it
(tasks.TASKS, the contrastive task's SOURCES, LOSSES and OPTIMIZERS, the runner's
MODES, the view samplers, the pixel views, the encoders, the generator families,
the steering edits), so a new kind is one entry where it is implemented. The
`eval` section is the evaluators' to check (evaluators/registry.py), and a
study's own keys the studies' (studies/run.py).
"""

from __future__ import annotations

import ml_collections

import tasks
from data import export, subset, views
from data.edits import WALK_DIMS
from data.pixel import CROP_FROM, PIXEL_KINDS
from data.views import CONDITIONAL_KINDS, LATENT_KINDS
from errors import check
from models import generators
from models.encoders import DTYPES, ENCODERS, POOLS
from tasks.classifier import LOSSES as CLASSIFIER_LOSSES
from tasks.contrastive import LOSSES, OPTIMIZERS, SOURCES, check_classes
from tasks.forward_forward import NEGATIVES as FF_NEGATIVES
from tasks.forward_forward import POSITIVES as FF_POSITIVES
from tasks.forward_forward import uses_generator as ff_uses_generator
from tasks.parallel import MODES


def choice(c, key: str, choices) -> None:
    """A ConfigError unless the value at the dotted `key` is one of `choices`."""
    value = c
    for part in key.split("."):
        value = value[part]
    check(value in choices, key, f"{value!r} is not one of {tuple(choices)}")


def _check_source(c: ml_collections.ConfigDict) -> None:
    """data.source: one of SOURCES, or a directory holding an export (checked against the views)."""
    source = c.data.source
    if source in SOURCES:
        return
    meta = export.metadata(source) if isinstance(source, str) else None
    check(meta is not None, "data.source",
          f"{source!r} is neither one of {SOURCES} nor a directory written by python -m data.export "
          f"(no {export.META_FILE} in it)")
    check(c.views.num_views <= meta["num_views"], "views.num_views",
          f"{c.views.num_views} views asked, the export {source} holds {meta['num_views']} per anchor")
    check_classes(c.loss.name, meta["num_classes"],
                  f"the export {source} comes from an unconditional generator")


def validate(c: ml_collections.ConfigDict, num_devices: int = 1, num_processes: int = 1) -> None:
    """Rejects impossible values of a run config's training keys, naming the key."""
    choice(c, "task", tasks.TASKS)
    choice(c, "parallel", MODES)
    _check_source(c)
    check(not c.data.subset or c.task == "classifier" or (
        c.task == "contrastive" and c.data.source not in ("generator", "mix")),
          "data.subset", "selects rows of a dataset: data.source must be real or an export")
    check(not c.data.subset or subset.exists(c.data.subset),
          "data.subset", f"{c.data.subset!r} holds no {subset.INDICES} (python -m evaluators.prune "
          "writes one)")
    choice(c, "generator.init", ("checkpoint", "random"))
    choice(c, "views.latent", LATENT_KINDS)
    choice(c, "views.pixel", PIXEL_KINDS)
    choice(c, "model.encoder", ENCODERS)
    choice(c, "model.pool", POOLS)
    check(c.model.pool == "mean" or c.model.encoder == "convnet", "model.pool",
          f"{c.model.pool!r} pooling is the convnet's; {c.model.encoder} pools by the mean")
    choice(c, "train.dtype", DTYPES)
    choice(c, "loss.name", LOSSES)
    choice(c, "optim.name", OPTIMIZERS)
    check(c.optim.lr > 0, "optim.lr", f"must be > 0, got {c.optim.lr}")
    check(c.optim.weight_decay >= 0, "optim.weight_decay", f"must be ≥ 0, got {c.optim.weight_decay}")
    check(0 <= c.optim.momentum < 1, "optim.momentum", f"must be in [0, 1), got {c.optim.momentum}")
    check(c.optim.warmup_steps >= 0, "optim.warmup_steps", "must be ≥ 0")
    check(c.train.steps >= 0, "train.steps", f"must be ≥ 0, got {c.train.steps}")
    check(c.train.batch_size > 0, "train.batch_size", f"must be > 0, got {c.train.batch_size}")
    check(c.train.batch_size % num_devices == 0, "train.batch_size",
          f"{c.train.batch_size} does not divide over {num_devices} devices")
    check(c.train.batch_size % num_processes == 0, "train.batch_size",
          f"{c.train.batch_size} does not divide over {num_processes} processes")
    check(c.train.log_every > 0, "train.log_every", "must be > 0")
    check(c.train.ckpt_every > 0, "train.ckpt_every", "must be > 0")
    check(c.train.keep_checkpoints > 0, "train.keep_checkpoints", "must be > 0")
    check(c.views.sigma >= 0, "views.sigma", f"must be ≥ 0, got {c.views.sigma}")
    check(all(s >= 0 for s in c.views.sigmas), "views.sigmas", f"must be ≥ 0, got {c.views.sigmas}")
    check(c.views.latent != "multi_sigma" or len(c.views.sigmas) > 0, "views.sigmas",
          "is empty: multi_sigma draws each view's σ from it")
    check(c.views.num_views >= 2, "views.num_views", f"must be ≥ 2, got {c.views.num_views}")
    check(0 < c.views.crop_scale_min <= 1, "views.crop_scale_min", "must be in (0, 1]")
    for key in ("jitter_prob", "gray_prob", "blur_prob"):
        check(0 <= c.views[key] <= 1, f"views.{key}", f"must be a probability, got {c.views[key]}")
    check(c.loss.temperature > 0, "loss.temperature", "must be > 0")
    check(c.loss.base_temperature > 0, "loss.base_temperature", "must be > 0")
    check(c.data.image_size > 0, "data.image_size", "must be > 0")
    check(c.data.workers >= -1, "data.workers", "must be ≥ 0, or -1 (the default: chosen by backend)")
    check(c.views.crop_from in CROP_FROM, "views.crop_from", f"must be one of {CROP_FROM}")
    check(c.views.crop_from == "loaded" or (
        c.task == "contrastive" and c.data.source == "real" and c.views.pixel == "simclr"
        and c.data.name != "synthetic"), "views.crop_from", "original crops real images: it "
          "needs task=contrastive, data.source=real, views.pixel=simclr and a real data.name")
    check(c.generator.truncation > 0, "generator.truncation", "must be > 0")
    if c.task == "classifier":
        choice(c, "classifier.loss", CLASSIFIER_LOSSES)
        check(c.classifier.elr_lambda >= 0, "classifier.elr_lambda", "must be ≥ 0")
        check(0 <= c.classifier.elr_beta < 1, "classifier.elr_beta", "must be in [0, 1)")
        check(c.data.name != "synthetic" or c.classifier.loss == "ce", "data.name",
              "ELR needs a fixed training set")
    if c.task == "forward_forward":
        choice(c, "ff.positive", FF_POSITIVES)
        choice(c, "ff.negative", FF_NEGATIVES)
        check(c.model.encoder == "ff_convnet", "model.encoder",
              f"task=forward_forward trains ff_convnet, got {c.model.encoder!r}")
        check(c.ff.negative != "hybrid" or (c.train.batch_size // num_devices) % 2 == 0,
              "train.batch_size", "hybrid negatives pair rows 2i and 2i + 1: the per-device "
              "batch must be even")
        check(c.ff.negative != "wrong_label" or 2 <= c.ff.label_slots <= c.data.image_size,
              "ff.label_slots", f"must be in [2, data.image_size = {c.data.image_size}] (pixels "
              f"of the top row), got {c.ff.label_slots}")
        check(c.ff.threshold > 0, "ff.threshold",  # NaN fails too
              f"must be > 0 (a goodness is a mean square), got {c.ff.threshold}")
    check(c.task == "forward_forward" or c.model.encoder != "ff_convnet", "model.encoder",
          "ff_convnet learns layer by layer (stop-gradient between layers): only "
          "task=forward_forward trains it")
    if c.task == "sprites":
        check(c.generator.family == "sprites", "generator.family",
              f"task sprites trains the sprites generator, got {c.generator.family!r}")
        check(c.sprites.turns >= 1, "sprites.turns", f"must be ≥ 1, got {c.sprites.turns}")
        check(c.sprites.lr > 0, "sprites.lr", "must be > 0")
    if c.task == "generator":
        check(c.gan.stats_batches >= 1, "gan.stats_batches", f"must be ≥ 1, got {c.gan.stats_batches}")
    if c.data.source == "mix":
        try:
            period = views.mix_period(c.data.mix_ratio)[1]
        except (ValueError, OverflowError) as e:
            check(False, "data.mix_ratio", str(e))
        per_device = c.train.batch_size // num_devices
        check(per_device % period == 0, "data.mix_ratio",
              f"{c.data.mix_ratio} repeats every {period} positions: the per-device batch "
              f"({per_device}) must be a multiple of {period}")
        check(c.views.num_anchors == 0, "views.num_anchors",
              "a pool of generated instances is not mixed with real images (data.source=mix)")
        check(c.data.name != "synthetic", "data.name", "data.source=mix needs a real dataset")
    for key in ("pixel_strength_real", "pixel_strength_generated"):
        check(0 <= c.views[key] <= 1, f"views.{key}", f"must be in [0, 1], got {c.views[key]}")
    ff_generator = c.task == "forward_forward" and ff_uses_generator(c.ff)
    if c.task in ("generator", "steering") or c.data.source in ("generator", "mix") or ff_generator:
        check(c.generator.family in generators.families(), "generator.family",
              f"{c.generator.family!r} is not implemented (known: {generators.families()})")
        check(c.generator.family != "bigbigan" or c.generator.init != "random"
              or c.generator.num_classes == 0, "generator.num_classes",
              "BigBiGAN is unconditional: must be 0")
    walks = tuple(c.steer.walks)
    check(bool(walks) and len(set(walks)) == len(walks) and set(walks) <= set(WALK_DIMS),
          "steer.walks", f"{walks} must be distinct names from {tuple(WALK_DIMS)}")
    for key in ("color", "shift", "rotate"):
        check(c.steer[key] >= 0, f"steer.{key}", f"must be ≥ 0, got {c.steer[key]}")
    check(c.steer.zoom >= 1, "steer.zoom", f"must be ≥ 1 (a factor), got {c.steer.zoom}")
    generated = c.task == "contrastive" and c.data.source in ("generator", "mix")
    if generated or c.task == "steering" or ff_generator:
        check(c.generator.init == "random" or bool(c.generator.checkpoint), "generator.checkpoint",
              "is empty: name a generator directory, or set generator.init=random")
    if generated and c.views.latent == "steer":
        check(bool(c.views.walks), "views.walks",
              "is empty: name a steering run's workdir (configs/steering.py), or random")
    if generated:
        unconditional = c.generator.init == "random" and c.generator.num_classes == 0
        if unconditional:
            check_classes(c.loss.name, 0, "generator.num_classes is 0 (an unconditional generator)")
        check(not (c.views.latent in CONDITIONAL_KINDS and unconditional), "views.latent",
              f"{c.views.latent} keeps the anchor's class and needs a class-conditional generator "
              "(generator.num_classes > 0)")
    check(c.loss.name != "clip_latent" or c.data.source not in ("real", "mix"), "loss.name",
          "clip_latent pairs images with their latents: data.source must be generator or an export")
    check(c.loss.clip_init_temperature > 0, "loss.clip_init_temperature", "must be > 0")
    check(c.loss.clip_max_logit_scale >= 1 / c.loss.clip_init_temperature, "loss.clip_max_logit_scale",
          "must be ≥ 1 / loss.clip_init_temperature")
    check(c.model.latent_layers >= 1, "model.latent_layers", "must be ≥ 1")
    check(c.views.num_anchors >= 0, "views.num_anchors", f"must be ≥ 0, got {c.views.num_anchors}")
