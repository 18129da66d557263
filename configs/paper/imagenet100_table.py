"""GenRep's ImageNet-100 table as one study: real data, generated views, the view ablation.

    python train.py --workdir runs/in100_table --config \
        configs/paper/imagenet100_table.py:biggan=gens/biggan-deep-256,bigbigan=gens/bigbigan-resnet50

Runs (configs/paper/genrep.py's recipe and probe protocol, each a run of its own
config): real_simclr and real_supcon (imagenet100_real.py), biggan_supcon
(BigGAN-deep-256, σ = 1.0; imagenet100_biggan_supcon.py), bigbigan_simclr
(BigBiGAN, σ = 0.2; imagenet100_bigbigan_simclr.py) and the view ablation on
BigBiGAN + SimCLR: latent only (centre crop) and pixel only (the anchor itself);
"both" is bigbigan_simclr.

Both generators are converted first (README: "Other generators"):
`python -m models.convert biggan ...` and `python -m models.convert bigbigan ...`.
`no_bigbigan` leaves the BigBiGAN runs out and puts the ablation on BigGAN-deep +
SupCon instead (biggan_latent_only, biggan_pixel_only; "both" is biggan_supcon).

Args (comma-separated): `biggan=DIR`, `bigbigan=DIR` (converted generators),
`no_bigbigan`, `smoke`.
"""

import ml_collections

from configs import common
from configs.paper import imagenet100_bigbigan_simclr, imagenet100_biggan_supcon, imagenet100_real

DEFAULTS = {"smoke": False, "no_bigbigan": False, "biggan": "", "bigbigan": ""}


def get_config(arg: str | None = None):
    o = common.parse_options(arg, DEFAULTS)
    sub_arg = "smoke" if o["smoke"] else None
    c = common.study_base()
    c.study = "GenRep ImageNet-100: real data, generated views, latent/pixel ablation"
    for name, loss_arg in (("real_simclr", None), ("real_supcon", "supcon")):
        c.runs[name] = imagenet100_real.get_config(",".join(filter(None, [sub_arg, loss_arg])))
        c.kinds[name] = "real"

    generators = {"biggan": (imagenet100_biggan_supcon, "supcon")}
    if not o["no_bigbigan"]:
        generators["bigbigan"] = (imagenet100_bigbigan_simclr, "simclr")
    for gen, (module, loss) in generators.items():
        cfg = module.get_config(sub_arg)
        if not o["smoke"]:
            cfg.generator.checkpoint = o[gen]
        c.runs[f"{gen}_{loss}"] = cfg
        c.kinds[f"{gen}_{loss}"] = "generated"
    ablation = "biggan" if o["no_bigbigan"] else "bigbigan"
    both = c.runs[f"{ablation}_{generators[ablation][1]}"]
    for name, latent, pixel in (("latent_only", "gaussian", "none"), ("pixel_only", "none", "simclr")):
        cfg = ml_collections.ConfigDict(both.to_dict())
        cfg.views.latent = latent
        cfg.views.pixel = pixel
        c.runs[f"{ablation}_{name}"] = cfg
        c.kinds[f"{ablation}_{name}"] = "generated"
    return c
