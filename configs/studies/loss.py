"""SimCLR or SupCon on generated views? (embedded default)

    python train.py --config configs/studies/loss.py --workdir results/loss

The same views of the quickstart's class-conditional generator (σ = 0.5, latent
+ pixel views), two losses: SimCLR's NT-Xent (positives: views of one instance)
and SupCon (positives: every view of the same generator class); a random
encoder for reference. GenRep uses SupCon for its class-conditional BigGAN.
3 runs, ~8 min on 2 cores. Args: see configs/studies/__init__.py.
"""

from configs.studies import Study


def get_config(arg: str | None = None):
    s = Study("loss: SimCLR vs SupCon on generated views", arg)
    s.generated("genviews_simclr", loss="ntxent")
    s.generated("genviews_supcon", loss="supcon")
    s.real("random", steps=0)
    return s.config
