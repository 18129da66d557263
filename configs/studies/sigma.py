"""Is accuracy an inverse U in σ? The fidelity/diversity trade-off of Gaussian-neighbour views.

    python train.py --config configs/studies/sigma.py --workdir runs/sigma

GenRep finds linear-probe accuracy an inverse U in σ: a small σ gives views too
alike to teach invariance, a large one views of another instance. One encoder per
σ (NT-Xent on views of the quickstart's generator, SimCLR pixel
views on top), and the same encoder on real images (`real_simclr`), whose
features are the one space where every σ's views are compared with their anchors
and with real images (precision, recall, density, coverage and the symmetric
versions; studies/run.py's `fidelity`). results.png draws accuracy and symmetric
precision/recall against σ. 7 runs × 3 seeds, ~1.5 h on 2 cores at the default scale.
Args: see configs/studies/__init__.py (`smoke`, `steps=`, `batch=`, `generator=`).
"""

from configs.studies import Study

SIGMAS = (0.1, 0.25, 0.5, 1.0, 2.0)
SMOKE_SIGMAS = (0.1, 1.0)


def run_name(sigma: float) -> str:
    """sigma_0p25 for σ = 0.25 (a config key may not hold a dot)."""
    return f"sigma_{sigma:g}".replace(".", "p")


def get_config(arg: str | None = None):
    s = Study("σ: accuracy and view fidelity against the Gaussian neighbour's σ", arg)
    sigmas = SMOKE_SIGMAS if s.smoke else SIGMAS
    for sigma in sigmas:
        s.generated(run_name(sigma), sigma=sigma, anchor_view=True)
    s.real("real_simclr")
    s.real("random", steps=0)
    s.sweep({run_name(sigma): sigma for sigma in sigmas}, label="σ", log=True)
    s.config.fidelity.encoder = "@real_simclr"
    s.config.fidelity.samples = 200 if s.smoke else 5000
    return s.config
