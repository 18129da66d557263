"""How does accuracy grow with the number of generated anchors? (embedded default)

    python train.py --config configs/studies/anchors.py --workdir runs/anchors

Encoders on generated views (NT-Xent, σ = 0.5) at a fixed number of steps,
each drawing its instances from a finite pool of N anchors (views.num_anchors:
each anchor keeps its class and view latents, as in GenRep's fixed datasets;
pixel views still vary), N = 128 … 8192; the unlimited stream (a new anchor at
every draw, 32,000 draws at 250 × 128) and a random encoder are drawn as
horizontal lines. GenRep's claim: gains grow sub-logarithmically with N.
6 runs, ~16 min on 2 cores. Args: see configs/studies/__init__.py.
"""

from configs.studies import Study

POOLS = (128, 512, 2048, 8192)


def get_config(arg: str | None = None):
    s = Study("anchors: accuracy against the number of generated anchors (fixed steps)", arg)
    for n in POOLS:
        s.generated(f"anchors_{n}", num_anchors=n)
    s.generated("unlimited", num_anchors=0)
    s.real("random", steps=0)
    s.sweep({f"anchors_{n}": n for n in POOLS}, label="generated anchors", log=True)
    return s.config
