"""Study: view types and contrastive losses at quickstart scale, on the embedded default.

    python train.py --config configs/studies/views.py --workdir runs/views
    python train.py --config configs/studies/views.py:generator=DIR --workdir runs/views
    python train.py --config configs/studies/views.py:smoke --workdir /tmp/views   # seconds a run

Every generated-views run uses one frozen generator checkpoint, by default the
quickstart's (`runs/quickstart/generator`: run configs/quickstart.py first), with
the quickstart's encoder budget (configs/quickstart.encoder_budget). Runs:

- view types, with SimCLR's NT-Xent and SimCLR pixel views: `none` (pixel only),
  `gaussian` (σ = 0.5, the quickstart's), `angular` (σ = 0.5), `independent`,
  `multi_sigma` (σ ∈ {0.25, 0.5, 1.0}), and `gaussian_latent_only` (no pixel views);
- losses on the Gaussian views: `supcon` (the quickstart's genviews_supcon),
  `multipos` with 4 views per instance (StableRep), `clip_latent` (image vs latent);
- references: `real_simclr` (real images, pixel views) and `random` (untrained).

Each run writes its views.png (the same anchors beside their views, per view
type); the comparison goes to results.md/json/png.

Args (comma-separated): `smoke` makes every run a smoke run on a small random
generator (no checkpoint needed); `generator=DIR` names the generator checkpoint.
"""

import os

import ml_collections

from configs import common, genviews, quickstart
from errors import ConfigError

DEFAULT_GENERATOR = "runs/quickstart/generator"
SIGMA = 0.5  # the quickstart's σ for its generator

# name -> (views.latent, views.pixel, loss.name, views.num_views)
GENERATED_RUNS = {
    "none": ("none", "simclr", "ntxent", 2),
    "gaussian": ("gaussian", "simclr", "ntxent", 2),
    "gaussian_latent_only": ("gaussian", "none", "ntxent", 2),
    "angular": ("angular", "simclr", "ntxent", 2),
    "independent": ("independent", "simclr", "ntxent", 2),
    "multi_sigma": ("multi_sigma", "simclr", "ntxent", 2),
    "gaussian_supcon": ("gaussian", "simclr", "supcon", 2),
    "gaussian_multipos4": ("gaussian", "simclr", "multipos", 4),
    "gaussian_clip_latent": ("gaussian", "simclr", "clip_latent", 2),
}


def _generator_arg(words: set[str]) -> str:
    given = [w.split("=", 1)[1] for w in words if w.startswith("generator=")]
    return os.path.abspath(given[-1] if given else DEFAULT_GENERATOR)


def get_config(arg: str | None = None):
    words = common.parse_arg(arg)
    smoke = "smoke" in words
    sub_arg = "smoke" if smoke else None
    generator = _generator_arg(words)
    if not smoke and not os.path.isfile(os.path.join(generator, "generator.json")):
        raise ConfigError(
            f"configs/studies/views.py: no generator checkpoint in {generator} (generator.json is "
            "missing). Train the quickstart's first (python train.py --config configs/quickstart.py "
            "--workdir runs/quickstart), or name one with configs/studies/views.py:generator=DIR")

    c = ml_collections.ConfigDict()
    c.study = "views: view types and losses on genviews_shapes"
    c.runs = ml_collections.ConfigDict()
    c.kinds = ml_collections.ConfigDict()

    for name, (latent, pixel, loss, num_views) in GENERATED_RUNS.items():
        cfg = genviews.get_config(sub_arg)  # smoke: a small random generator
        if not smoke:
            quickstart.encoder_budget(cfg)
            cfg.generator.init = "checkpoint"
            cfg.generator.checkpoint = generator
        cfg.views.latent = latent
        cfg.views.pixel = pixel
        cfg.views.sigma = SIGMA
        cfg.views.sigmas = (SIGMA / 2, SIGMA, 2 * SIGMA)
        cfg.views.num_views = num_views
        cfg.loss.name = loss
        c.runs[name] = cfg
        c.kinds[name] = "generated"

    quickstart.add_references(c, smoke)
    return c
