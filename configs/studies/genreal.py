"""Generated views or real images? (embedded default)

    python train.py --config configs/studies/genreal.py --workdir runs/genreal

The same encoder and budget on views of the shipped generator (SupCon on its
classes and SimCLR/NT-Xent, both with σ = 0.5 and every view a neighbour; the
quickstart instead pairs the anchor with a σ = 1 neighbour) and on real
genviews_shapes images with pixel views (SimCLR, and SupCon on the real labels,
GenRep's real-data baselines); a random encoder for reference. 5 runs × 3 seeds,
~45 min on 2 idle cores.
Args: see configs/studies/__init__.py.
"""

from configs.studies import Study


def get_config(arg: str | None = None):
    s = Study("generated views vs real images", arg)
    s.generated("genviews_supcon", loss="supcon")
    s.generated("genviews_simclr", loss="ntxent")
    s.real("real_simclr", loss="ntxent")
    s.real("real_supcon", loss="supcon")
    s.real("random", steps=0)
    return s.config
