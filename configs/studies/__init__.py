"""Studies of GenRep's questions on the embedded default (genviews_shapes).

Each file is a study config (see studies/run.py), run as

    python train.py --config configs/studies/NAME.py[:ARGS] --workdir runs/NAME

ARGS (comma-separated): `smoke` (seconds per run: smoke-scale encoders on the shipped generator),
`steps=N` and `batch=N` (encoder budget of every run; default the quickstart's
250 × 128), `seeds=N` (seeds per run, default 3; rows are mean ± std),
`generator=DIR` (default the shipped pretrained/genviews_shapes), `walks=DIR`
(steering walks of that generator, from configs/steering.py: studies that
compare view types add a steered-views run).
On 2 CPU cores a run at the default scale costs about 3–4 minutes (quickstart:
221 s on generated views, 185 s on real images, training and evaluation); it
grows linearly with steps × batch.
"""

from __future__ import annotations

import os

import ml_collections

from configs import common, genviews, quickstart, real
from configs import forward_forward as forward_forward_run  # not the study of that name

DEFAULTS = {"smoke": False, "steps": quickstart.STEPS, "batch": quickstart.BATCH,
            "generator": common.SHIPPED_GENERATOR, "walks": "", "seeds": 3}


class Study:
    """Builds a study config: runs at one encoder scale, on one generator."""

    def __init__(self, title: str, arg: str | None):
        self.options = common.parse_options(arg, DEFAULTS)
        self.smoke = self.options["smoke"]
        self.config = common.study_base()
        self.config.study = title
        self.config.seeds = self.options["seeds"]

    def _scaled(self, cfg):
        o = self.options
        return quickstart.encoder_run(self.smoke, cfg, steps=o["steps"], batch=o["batch"])

    def generated(self, name: str, *, loss: str = "ntxent", sigma: float = 0.5,
                  latent: str = "gaussian", pixel: str = "simclr", num_anchors: int = 0,
                  num_views: int = 2, sigmas: tuple[float, ...] | None = None,
                  anchor_view: bool = False):
        """A run on views of the study's generator (the quickstart's NT-Xent, σ = 0.5, latent
        and pixel views by default); a smoke study, smoke-scale encoders on it."""
        cfg = self._scaled(genviews.get_config("smoke" if self.smoke else None))
        if not self.smoke:
            cfg.generator.init = "checkpoint"
            cfg.generator.checkpoint = os.path.abspath(self.options["generator"])
        cfg.loss.name = loss
        cfg.views.sigma = sigma
        cfg.views.latent = latent
        cfg.views.pixel = pixel
        cfg.views.num_anchors = num_anchors
        cfg.views.num_views = num_views
        cfg.views.anchor_view = anchor_view
        if sigmas is not None:
            cfg.views.sigmas = sigmas
        self.config.runs[name] = cfg
        self.config.kinds[name] = "generated"
        return cfg

    def mixed(self, name: str, ratio: float, *, loss: str = "ntxent", sigma: float = 0.5,
              pixel_strength_real: float = 1.0, pixel_strength_generated: float = 1.0):
        """A run on batches whose fraction `ratio` is generated instances (the generated()
        defaults: Gaussian neighbours at σ, SimCLR pixel views) and the rest real
        genviews_shapes images with pixel views (data.source=mix)."""
        cfg = self.generated(name, loss=loss, sigma=sigma)
        cfg.data.source = "mix"
        cfg.data.mix_ratio = ratio
        cfg.views.pixel_strength_real = pixel_strength_real
        cfg.views.pixel_strength_generated = pixel_strength_generated
        self.config.kinds[name] = "generated" if ratio == 1 else "mix"  # r = 1 mixes nothing
        return cfg

    def forward_forward(self, name: str, *, positive: str = "real", negative: str = "generated",
                        steps: int | None = None):
        """A Forward-Forward run (configs/forward_forward.py: its encoder, without BatchNorm, and
        Adam) at the study's budget and probe, on the study's generator (`steps=0`: that
        encoder untrained, the random baseline of its architecture)."""
        cfg = forward_forward_run.get_config("smoke" if self.smoke else None)
        if not self.smoke:
            cfg.generator.checkpoint = os.path.abspath(self.options["generator"])
            cfg.train.steps = self.options["steps"]
            cfg.train.batch_size = self.options["batch"]
            cfg.train.log_every = 50
            cfg.train.ckpt_every = 200
            cfg.eval.max_train = 10000
        cfg.ff.positive = positive
        cfg.ff.negative = negative
        if steps is not None:
            cfg.train.steps = steps
        self.config.runs[name] = cfg
        self.config.kinds[name] = "random" if steps == 0 else "forward_forward"
        return cfg

    def real(self, name: str, *, loss: str = "ntxent", steps: int | None = None):
        """A run on real genviews_shapes images with pixel views (`steps=0`: a random encoder)."""
        cfg = self._scaled(real.get_config("smoke" if self.smoke else None))
        cfg.loss.name = loss
        if steps is not None:
            cfg.train.steps = steps
        self.config.runs[name] = cfg
        self.config.kinds[name] = "random" if steps == 0 else "real"
        return cfg

    def sweep(self, values: dict[str, float], label: str, log: bool = False) -> None:
        """Declares the x-axis: run name -> swept value (the other runs are baselines)."""
        self.config.x = ml_collections.ConfigDict(values)
        self.config.x_label = label
        self.config.x_log = log
