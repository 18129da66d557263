"""Contrastive training of an encoder on generated or real views (SimCLR, SupCon,
StableRep's multi-positive loss, CLIP-style image–latent contrast).

Views are made inside the jitted step: for `data.source=generator`, latents are
sampled (data.views) and rendered by the frozen generator, then pixel-transformed
(data.pixel); for `data.source=real`, the host sends real images and the step
makes their pixel views; for `data.source=DIR`, an export (data.export), the host
sends each instance's exported views (and their latents). Every random draw is
keyed by (seed, step, global example index), so the numbers do not depend on the
number of devices.

The step runs on one device's share of the batch. Projections are all-gathered
so that every device contrasts its anchors against the whole global batch; its
loss is its share of the global mean, and gradients are summed over devices.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

import losses
from data import datasets, export, pipeline, pixel, subset, views
from data import walks as walks_lib
from data.grids import save_grid
from errors import ConfigError
from models import encoders
from models import generators as gen_lib
from tasks.parallel import AXIS
from tasks.state import TrainState

# data.source: these, or the directory of an export (python -m data.export); mix: generated
# instances and real images in every batch (data.mix_ratio)
SOURCES = ("generator", "real", "mix")
# loss.name: the contrastive losses of losses.py (by their positives), and CLIP's image-latent loss
LOSSES = (*losses.POSITIVES, "clip_latent")


def check_classes(loss_name: str, num_classes: int, source: str) -> None:
    """A loss whose positives share a class (SupCon) needs classes; `source` says why there are none."""
    if losses.POSITIVES.get(loss_name) == "class" and not num_classes:
        raise ConfigError(f"config key loss.name: {loss_name} needs classes; {source}")


def _sgd(c, schedule, mask):
    return optax.chain(optax.add_decayed_weights(c.optim.weight_decay, mask),
                       optax.sgd(schedule, momentum=c.optim.momentum))


def _lars(c, schedule, mask):
    return optax.lars(schedule, weight_decay=c.optim.weight_decay, weight_decay_mask=mask,
                      trust_ratio_mask=mask, momentum=c.optim.momentum)


def _adam(c, schedule, mask):
    return optax.adamw(schedule, weight_decay=c.optim.weight_decay, mask=mask)


OPTIMIZERS = {"sgd": _sgd, "lars": _lars, "adam": _adam}  # optim.name


def make_optimizer(c) -> optax.GradientTransformation:
    """SGD with momentum, LARS or Adam; warm-up then cosine; no decay on biases and norms."""
    schedule = optax.warmup_cosine_decay_schedule(
        0.0, c.optim.lr, c.optim.warmup_steps, max(c.train.steps, c.optim.warmup_steps + 1), 0.0)
    decay_mask = lambda params: jax.tree.map(lambda p: p.ndim > 1, params)  # noqa: E731
    return OPTIMIZERS[c.optim.name](c, schedule, decay_mask)


def pixel_config(c, strength: float = 1.0) -> pixel.PixelConfig:
    """The pixel views of the config at `strength` (views.pixel_strength_real / _generated)."""
    s = c.views.jitter_strength * strength
    low = c.views.crop_scale_min + (1.0 - strength) * (1.0 - c.views.crop_scale_min)  # exact at 1
    return pixel.PixelConfig(crop_scale=(low, 1.0),
                             flip=c.views.flip, crop=c.views.get("crop_from", "loaded") == "loaded",
                             brightness=s, contrast=s, saturation=s, hue=s / 4,
                             jitter_prob=c.views.jitter_prob * strength,
                             gray_prob=c.views.gray_prob * strength,
                             blur_prob=c.views.blur_prob * strength)


def load_generator(c) -> gen_lib.Generator:
    """The frozen generator of the config: a checkpoint, or (smoke) a random one."""
    if c.generator.init == "random":
        g = c.generator
        if g.family in ("biggan_deep", "bigbigan"):  # converted families: their layout, narrower
            from models.generators import bigbigan, biggan
            small = biggan.small_hparams if g.family == "biggan_deep" else bigbigan.small_hparams
            hparams = small(g.z_dim, g.num_classes, g.resolution, g.width)
        else:
            hparams = {"z_dim": g.z_dim, "num_classes": g.num_classes,
                       "resolution": g.resolution, "width": g.width}
        generator = gen_lib.build(g.family, hparams)
        params = jax.jit(generator.init)(jax.random.key(c.seed + 1))
        return dataclasses.replace(generator, params=params)
    return gen_lib.load(c.generator.checkpoint)


def load_walks(c, z_dim: int) -> walks_lib.Walks | None:
    """The steering walks of `views.latent=steer`: those of `views.walks` (a steering run's
    workdir) with the step ranges they were trained on, or random ones."""
    if c.views.latent != "steer":
        return None
    names = tuple(c.steer.walks)
    if c.views.walks == "random":  # smoke runs: explicit random directions in the config's ranges
        return walks_lib.Walks(walks_lib.random(jax.random.key(c.seed + 2), z_dim, names),
                               walks_lib.StepRanges.of_config(c))
    return walks_lib.load(c.views.walks, names, z_dim)


def build_model(c, num_classes: int) -> encoders.ContrastiveModel:
    encoder = encoders.build_encoder(c.model.encoder, image_size=c.data.image_size,
                                     width=c.model.width, axis_name=AXIS, dtype=c.train.dtype,
                                     pool=c.model.pool)
    compute = encoders.DTYPES[c.train.dtype]
    head = encoders.ProjectionHead(c.model.proj_hidden, c.model.proj_dim, c.model.proj_layers,
                                   axis_name=AXIS, dtype=compute)
    latent_tower = None
    if c.loss.name == "clip_latent":  # an MLP of the same output size as the image tower's head
        latent_tower = encoders.ProjectionHead(c.model.proj_hidden, c.model.proj_dim,
                                               c.model.latent_layers, axis_name=AXIS, dtype=compute)
    return encoders.ContrastiveModel(encoder, head, num_classes if c.model.online_head else 0,
                                     latent_tower, c.loss.clip_init_temperature)


class ContrastiveTask:
    def __init__(self, config):
        c = self.config = config
        self.generator = None
        self.walks = None
        self.dataset = None
        self.exported = c.data.source not in SOURCES
        self.host_crop = None  # views.crop_from=original: crops of each decoded image, on the host
        if c.views.get("crop_from", "loaded") == "original":
            self.host_crop = pixel.HostCrop(c.views.num_views, c.data.image_size,
                                            (c.views.crop_scale_min, 1.0), pixel.PixelConfig.crop_ratio,
                                            c.seed)
        self.frozen = {}  # an argument of the step (tasks.parallel.Runner), never trained
        self.mix = c.data.source == "mix"  # generated instances and real images in each batch
        if c.data.source in ("generator", "mix"):
            self.generator = load_generator(c)
            self.frozen = {"generator": self.generator.params}
            self.walks = load_walks(c, self.generator.z_dim)
        self.spec = views.ViewSpec.from_config(c, self.walks)
        if self.generator is not None:
            num_classes = self.generator.num_classes
            check_classes(c.loss.name, num_classes, "the generator is unconditional")
            try:
                views.check(self.spec, num_classes)
            except ValueError as e:
                raise ConfigError(f"config key views.latent: {e}") from None
            self.z_dim = self.generator.z_dim
        if self.exported:
            self.dataset = datasets.from_export(c.data.source, num_views=c.views.num_views,
                                                max_examples=c.data.max_examples)
            num_classes = self.dataset.num_classes
            self.z_dim = export.require(c.data.source)["z_dim"]
        elif c.data.source in ("real", "mix"):
            self.dataset = datasets.training_source(c.data, 0 if self.host_crop else None)
            if self.mix and self.dataset.num_classes != self.generator.num_classes:
                raise ConfigError(f"data.source=mix: the generator draws "
                                  f"{self.generator.num_classes} classes, {c.data.name} has "
                                  f"{self.dataset.num_classes}; a batch's labels must share them")
            num_classes = self.dataset.num_classes
        if c.data.subset:
            self.dataset = subset.apply(self.dataset, c.data.subset)
        if (self.dataset is not None and len(self.dataset) < c.train.batch_size
                and losses.POSITIVES.get(c.loss.name) != "class" and jax.process_index() == 0):
            print(f"warning: {len(self.dataset)} training examples for batches of "
                  f"{c.train.batch_size}: an example drawn twice in one batch is a negative of "
                  f"itself under loss.name={c.loss.name}", flush=True)
        self.num_classes = num_classes
        self.model = build_model(c, num_classes)
        self.tx = make_optimizer(c)
        # the pixel views of each source: real images, and generated ones (a generator's, an export's)
        self.pixel_cfg = {"real": pixel_config(c, c.views.pixel_strength_real),
                          "generated": pixel_config(c, c.views.pixel_strength_generated)}

    def init_state(self) -> TrainState:
        s = self.config.data.image_size
        latents = None
        if self.model.latent_tower is not None:
            latents = jnp.zeros((1, 2, self.z_dim + self.num_classes))

        @jax.jit
        def init(key):
            # BatchNorm's axis_name must be bound: initialise under a one-device vmap.
            x = jnp.zeros((1, 2, s, s, 3))
            variables = jax.vmap(lambda x, z: self.model.init(key, x, z, train=True),
                                 axis_name=AXIS)(x, latents)
            variables = jax.tree.map(lambda v: v[0], variables)
            params = variables["params"]
            return TrainState(step=jnp.zeros((), jnp.int32), params=params,
                              batch_stats=variables["batch_stats"], opt_state=self.tx.init(params))

        return init(jax.random.key(self.config.seed))

    def example_keys(self, step, index):
        """One key per example, from (seed, step, global example index)."""
        return views.example_keys(self.config.seed, step, index)

    def pool_index(self, keys):
        """With views.num_anchors = N, the pool instance (0 … N-1) each example draws."""
        return views.pool_index(keys, self.config.views.num_anchors)

    def instances(self, keys):
        """Each example's anchor latent, its views' latents and its class (data.views).

        With views.num_anchors = N they are those of one of N pool instances (a finite
        generated dataset): a pool instance always has the same latents and class, and
        only its pixel views change from draw to draw.
        """
        c, g = self.config, self.generator
        if c.views.num_anchors:
            keys = views.pool_keys(c.seed, keys, c.views.num_anchors)
        return views.instances(keys, self.spec, z_dim=g.z_dim, num_classes=g.num_classes)

    def make_views(self, step, index, image=None, label=None, z=None, frozen=None):
        """The views of instances `index`: `image` (b·V, S, S, 3) in [0, 1], their instance `id`,
        `label`, and (generated views) `z`, the generator's input (b·V, z_dim [+ classes]).
        Generated views use the generator parameters of `frozen` (the step's; default
        self.frozen). With data.source=mix, the rows views.mix_rows names are generated
        instances and the others the real images sent by the host."""
        c = self.config
        v = c.views.num_views
        keys = self.example_keys(step, index)
        pkeys = jax.vmap(lambda k: jax.random.split(jax.random.fold_in(k, 1), v))(keys)
        if self.mix:
            gen, real = views.mix_rows(index.shape[0], c.data.mix_ratio)
            generated, gen_label, _ = self._generated(keys[gen], frozen)
            x = jnp.concatenate([self._pixel(pkeys[gen], generated, "generated"),
                                 self._pixel(pkeys[real], self._real(image[real]), "real")])
            order = np.argsort(np.concatenate([gen, real]))  # back to the batch's rows
            x, label = x[order], jnp.concatenate([gen_label, label[real]])[order]
        elif self.generator is not None:
            images, label, z = self._generated(keys, frozen)
            x = self._pixel(pkeys, images, "generated")
            if c.views.num_anchors:  # two draws of one pool instance are positives, not negatives
                index = self.pool_index(keys)
        elif self.exported:  # (b, V, S, S, 3): the exported views
            x = self._pixel(pkeys, image.astype(jnp.float32) / 255.0, "generated")
        elif self.host_crop is not None:  # (b, V, S, S, 3): the crops taken on the host
            x = self._pixel(pkeys, image.astype(jnp.float32) / 255.0, "real")
        else:
            x = self._pixel(pkeys, self._real(image), "real")
        out = {"image": x.reshape((-1,) + x.shape[2:]), "id": jnp.repeat(index, v),
               "label": jnp.repeat(label, v), "z": None}
        if z is not None:
            z = z.reshape(-1, z.shape[-1])
            if self.num_classes:  # a conditional generator's input is (z, y)
                z = jnp.concatenate([z, jax.nn.one_hot(out["label"], self.num_classes)], -1)
            out["z"] = z
        return out

    def _generated(self, keys, frozen):
        """(views (b, V, S, S, 3) in [0, 1], classes (b,), view latents (b, V, z_dim)) of the
        generated instances of `keys`, rendered with the generator parameters of `frozen`."""
        c, g, v = self.config, self.generator, self.config.views.num_views
        inst = self.instances(keys)
        z = inst["views"]
        y = jnp.repeat(inst["label"], v)
        params = (frozen or self.frozen)["generator"]
        images = views.to_unit(g.apply(params, z.reshape(-1, g.z_dim), y, c.generator.truncation))
        return images.reshape((-1, v) + images.shape[1:]), inst["label"], z

    def _real(self, image):
        """(b, V, S, S, 3) in [0, 1]: each real uint8 image (b, S, S, 3) once per view."""
        images = image.astype(jnp.float32) / 255.0
        return jnp.broadcast_to(images[:, None], (images.shape[0], self.config.views.num_views)
                                + images.shape[1:])

    def _pixel(self, pkeys, images, source: str):
        """The pixel views (b, V, S, S, 3) of `images` (b, V, ...) with per-view keys, at the
        pixel strength of `source` (real or generated)."""
        c = self.config
        make = functools.partial(pixel.view, kind=c.views.pixel, out_size=c.data.image_size,
                                 cfg=self.pixel_cfg[source])
        return jax.vmap(jax.vmap(make))(pkeys, images)

    def loss(self, params, batch_stats, v: dict):
        """The step's loss on views `v` (make_views' output), per device inside the data
        axis: (loss, (the new BatchNorm statistics, the metrics of this device's rows))."""
        c = self.config
        x, labels = v["image"] * 2.0 - 1.0, v["label"]
        total = x.shape[0] * jax.lax.psum(1, AXIS)
        (_, proj, logits, latent_proj), updates = self.model.apply(
            {"params": params, "batch_stats": batch_stats}, x, v["z"], train=True,
            mutable=["batch_stats"])
        if c.loss.name == "clip_latent":
            contrastive = losses.sharded_clip(
                losses.l2_normalize(proj), losses.l2_normalize(latent_proj),
                jnp.exp(params["logit_scale"]), axis_name=AXIS)
        else:
            contrastive = losses.sharded_contrastive(
                losses.l2_normalize(proj), v["id"], labels, axis_name=AXIS,
                loss_name=c.loss.name, temperature=c.loss.temperature,
                base_temperature=c.loss.base_temperature)
        aux = {"contrastive_loss": contrastive}
        loss = contrastive
        if self.model.num_classes:
            ce = optax.softmax_cross_entropy_with_integer_labels(logits, labels).sum() / total
            aux["online_loss"] = ce
            aux["online_acc"] = (jnp.argmax(logits, -1) == labels).sum() / total
            loss = loss + ce
        return loss, (updates["batch_stats"], aux)

    def step(self, state: TrainState, batch: dict, frozen: dict):
        c = self.config
        v = self.make_views(state.step, batch["index"], batch.get("image"), batch.get("label"),
                            batch.get("z"), frozen)
        grads, (batch_stats, aux) = jax.grad(self.loss, has_aux=True)(
            state.params, state.batch_stats, v)
        grads = jax.lax.psum(grads, AXIS)
        updates, opt_state = self.tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = jax.lax.psum(aux, AXIS)
        if "logit_scale" in params:  # CLIP clamps its logit scale after each update
            params = {**params, "logit_scale": jnp.minimum(
                params["logit_scale"], jnp.log(c.loss.clip_max_logit_scale))}
            metrics["logit_scale"] = jnp.exp(params["logit_scale"])
        metrics["loss"] = metrics["contrastive_loss"]
        new_state = TrainState(step=state.step + 1, params=params, batch_stats=batch_stats,
                               opt_state=opt_state)
        return new_state, metrics

    def batches(self, start_step: int, process_index: int = 0, process_count: int = 1):
        c = self.config
        if self.dataset is not None:
            yield from pipeline.batches(self.dataset, c.train.batch_size, seed=c.seed,
                                        start_step=start_step, process_index=process_index,
                                        process_count=process_count, workers=c.data.workers,
                                        transform=self.host_crop)
            return
        yield from views.index_batches(c.train.batch_size, process_index, process_count)

    def view_grid(self, num_instances: int = 8) -> np.ndarray:
        """(instances, 1 + V, S, S, 3) in [0, 1]: each anchor (or real image) beside its views.

        The anchors are instances 0.. at step 0; they do not depend on views.latent, so
        the grids of runs that differ only in their view type show the same anchors. With
        data.source=mix, the first rows of a batch: generated anchors and real images as
        views.mix_rows places them.
        """
        c = self.config
        shown = num_instances
        if self.mix:  # whole periods of the mix, cut to `shown` rows below
            period = views.mix_period(c.data.mix_ratio)[1]
            num_instances = -(-num_instances // period) * period
        index = jnp.arange(num_instances, dtype=jnp.int32)
        image = label = first = None
        if self.exported:
            rows = export.read(c.data.source, 0, num_instances)
            image, label = rows["views"][:, :c.views.num_views], rows["label"].astype(np.int32)
            first = rows["anchor"]
        elif self.generator is None or self.mix:
            rows = self.dataset.read(np.arange(num_instances))
            image = first = rows["image"]
            label = rows["label"]
            if self.host_crop is not None:  # the originals' centre squares, and their crops
                first = np.stack([datasets.resize_and_crop(im, c.data.image_size) for im in image])
                image = self.host_crop(dict(rows), np.arange(num_instances))["image"]

        @jax.jit
        def grid(image, label, first, frozen):
            centre = jax.vmap(lambda im: pixel.centre_crop(im, c.data.image_size))
            if self.generator is None:
                first = centre(first.astype(jnp.float32) / 255.0)
            else:  # the anchors that make_views perturbs at step 0
                g = self.generator
                inst = self.instances(self.example_keys(0, index))
                anchors = centre(views.to_unit(g.apply(frozen["generator"], inst["anchor"],
                                                       inst["label"], c.generator.truncation)))
                if self.mix:  # the real rows show their images
                    real = views.mix_rows(num_instances, c.data.mix_ratio)[1]
                    anchors = anchors.at[real].set(centre(first[real].astype(jnp.float32) / 255.0))
                first = anchors
            x = self.make_views(0, index, image, label, frozen=frozen)["image"]
            x = x.reshape((num_instances, c.views.num_views) + x.shape[1:])
            return jnp.concatenate([first[:, None], x], 1)

        return np.asarray(grid(image, label, first, self.frozen))[:shown]

    def finish(self, state: TrainState, workdir: str) -> None:
        c = self.config
        if jax.process_index() != 0 or not c.train.views_png:
            return
        if self.mix:
            title = f"anchor or real image | views (mix {c.data.mix_ratio})"
        elif self.generator is not None:
            title = f"anchor | views (latent {c.views.latent}, pixel {c.views.pixel})"
        elif self.exported:
            title = f"exported anchor | its views (pixel {c.views.pixel})"
        else:
            title = "image | views"
        save_grid(f"{workdir}/views.png", self.view_grid(), title=title)
