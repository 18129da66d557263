"""Latent views, pixel views, or both? (GenRep's view ablation, on the embedded default)

    python train.py --config configs/studies/ablation.py --workdir runs/ablation

Three encoders on views of the quickstart's generator, same budget: latent only
(Gaussian neighbours z + σ·ε, centre crop), pixel only (the anchor image under
SimCLR transforms), both (Gaussian neighbours under SimCLR transforms); NT-Xent,
σ = 0.5; a random encoder for reference. GenRep's claim: both beat either alone.
4 runs × 3 seeds, about 35 min on 2 cores.
Args: see configs/studies/__init__.py (`smoke`, `steps=`, `batch=`, `generator=`).
"""

from configs.studies import Study


def get_config(arg: str | None = None):
    s = Study("views: latent only, pixel only, or both (generated views, NT-Xent)", arg)
    s.generated("latent_only", pixel="none")
    s.generated("pixel_only", latent="none")
    s.generated("both")
    s.real("random", steps=0)
    return s.config
