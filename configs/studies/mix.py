"""Real and generated data in one run: which fraction of each batch should be generated?

    python train.py --config configs/studies/mix.py --workdir runs/mix

GenRep's `mix_ratio` and AdaInf's question (Wang et al., ICLR 2024) on the embedded
default: every batch holds a fraction r of generated instances (Gaussian neighbours,
σ = 0.5, with SimCLR pixel views) and 1 − r real genviews_shapes images (SimCLR pixel
views), all in one NT-Xent loss (data.source=mix), at the quickstart's budget (250 steps
of 128). r = 0 is the real-data SimCLR run; r = 1 sees generated instances only. One more
run mixes half and half with AdaInf's weaker augmentation of the real images
(views.pixel_strength_real = 0.5), and its control, real images alone at that strength;
a random encoder for reference. 8 runs × 3 seeds.
Args: see configs/studies/__init__.py.
"""

from configs.studies import Study

RATIOS = (0.25, 0.5, 0.75, 1.0)


def _name(ratio: float) -> str:
    return "mix_" + f"{ratio:g}".replace(".", "p")


def get_config(arg: str | None = None):
    s = Study("real and generated instances in each batch (NT-Xent, σ = 0.5)", arg)
    s.real("mix_0", loss="ntxent")  # r = 0: real images only, data.source=real
    for ratio in RATIOS:
        s.mixed(_name(ratio), ratio)
    s.mixed("mix_0p5_weak_real", 0.5, pixel_strength_real=0.5)
    # its control: real images alone at the same weaker augmentation
    s.real("mix_0_weak_real", loss="ntxent").views.pixel_strength_real = 0.5
    s.real("random", steps=0)
    s.sweep({"mix_0": 0.0, **{_name(r): r for r in RATIOS}}, "generated fraction r")
    return s.config
