"""View types and contrastive losses at the quickstart's scale, on the embedded default.

    python train.py --config configs/studies/views.py[:walks=runs/walks] --workdir runs/views

Every generated-views run uses the quickstart's generator and encoder budget. Runs:

- view types, with SimCLR's NT-Xent and SimCLR pixel views: `none` (pixel only),
  `gaussian` (σ = 0.5, the quickstart's), `angular` (σ = 0.5), `independent`,
  `multi_sigma` (σ ∈ {0.25, 0.5, 1.0}), and `gaussian_latent_only` (no pixel views);
- losses on the Gaussian views: `supcon` (GenRep's BigGAN recipe),
  `multipos` with 4 views per instance (StableRep), `clip_latent` (image vs latent);
- with `walks=DIR` (a configs/steering.py run on the same generator): `steer`, views
  along the learned colour/zoom/shift/rotation walks, with SimCLR pixel views;
- references: `real_simclr` (real images, pixel views) and `random` (untrained).

Each run writes its views.png (the same anchors beside their views, per view
type). 11 runs (12 with walks=), ~40 min on 2 cores at the default scale.
Args: see configs/studies/__init__.py (`smoke`, `steps=`, `batch=`, `generator=`, `walks=`).
"""

import os

from configs.studies import Study

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


def get_config(arg: str | None = None):
    s = Study("views: view types and losses on genviews_shapes", arg)
    for name, (latent, pixel, loss, num_views) in GENERATED_RUNS.items():
        s.generated(name, latent=latent, pixel=pixel, loss=loss, sigma=SIGMA, num_views=num_views,
                    sigmas=(SIGMA / 2, SIGMA, 2 * SIGMA) if latent == "multi_sigma" else None)
    if s.options["walks"] or s.smoke:  # smoke: random walks (configs/genviews.py:smoke)
        cfg = s.generated("steer", latent="steer", sigma=SIGMA)
        if not s.smoke:
            cfg.views.walks = os.path.abspath(s.options["walks"])
    s.real("real_simclr")
    s.real("random", steps=0)
    return s.config
