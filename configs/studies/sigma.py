"""The σ study: views of one generator at several Gaussian-neighbour σ, on the embedded default.

    python train.py --config configs/studies/sigma.py --workdir runs/sigma
    python train.py --config configs/studies/sigma.py --workdir runs/sigma \
        --config.generator_checkpoint=/path/to/generator   # another generator
    python train.py --config configs/studies/sigma.py:smoke --workdir /tmp/sigma   # seconds

GenRep finds linear-probe accuracy an inverse U in σ: small σ gives views too alike
to teach invariance, large σ views of another instance. The study trains one
encoder per σ (the quickstart's recipe: SupCon on the generator's classes, ConvNet
width 32, 300 steps of 128 instances, SimCLR pixel views on top) on the
quickstart's trained generator (`generator_checkpoint`, default
runs/quickstart/generator: run the quickstart first), and the same encoder on real
images (`real_simclr`), whose features are the one space where every σ's views are
compared with their anchors and with real images (sym_precision, sym_recall,
precision, recall, density, coverage). It writes results.md, results.json,
results.png and sweep.png (sym_precision, sym_recall and linear-probe accuracy
against σ) into DIR and into `results_dir` (results/sigma).

Cost on 2 CPU cores: each run trains and evaluates in about 3.5 minutes like the
quickstart's encoders, so the six runs take about 20–25 minutes.

Args: `smoke` makes every run a smoke run on a small random generator (seconds each).
"""

import copy

import ml_collections

from configs import common, quickstart

SIGMAS = (0.1, 0.25, 0.5, 1.0, 2.0)
SMOKE_SIGMAS = (0.1, 1.0)


def run_name(sigma: float) -> str:
    """sigma_0p25 for σ = 0.25 (a config key may not hold a dot)."""
    return f"sigma_{sigma:g}".replace(".", "p")


def get_config(arg: str | None = None):
    smoke = "smoke" in common.parse_arg(arg)
    qs = quickstart.get_config("smoke" if smoke else None)
    c = common.study_base()
    c.study = "σ study: Gaussian-neighbour views of one generator on genviews_shapes"
    # The trained generator whose views every σ run uses (a directory written by
    # configs/generator.py, e.g. the quickstart's); smoke runs use a random one instead.
    c.generator_checkpoint = ml_collections.FieldReference("runs/quickstart/generator")
    c.sweep = "views.sigma"
    c.results_dir = "" if smoke else "results/sigma"
    c.fidelity.encoder = "@real_simclr"
    c.fidelity.samples = 200 if smoke else 5000

    for sigma in SMOKE_SIGMAS if smoke else SIGMAS:
        cfg = copy.deepcopy(qs.runs.genviews_supcon)  # the quickstart's recipe, another σ
        cfg.views.sigma = sigma
        if smoke:
            cfg.generator.init, cfg.generator.checkpoint = "random", ""
        else:
            cfg.generator.checkpoint = c.get_ref("generator_checkpoint")
        c.runs[run_name(sigma)] = cfg
        c.kinds[run_name(sigma)] = "generated"

    c.runs.real_simclr = qs.runs.real_simclr
    c.kinds.real_simclr = "real"
    return c
