"""GenRep's real-data baselines on ImageNet-100: SimCLR (default) or SupCon on real images.

    python train.py --config configs/paper/imagenet100_real.py --workdir runs/in100_real_simclr
    python train.py --config configs/paper/imagenet100_real.py:supcon --workdir runs/in100_real_supcon

The recipe and probe protocol are configs/paper/genrep.py's, on ImageNet-100's
real training images with pixel views only (the same budget: 20 epochs of 130k
instances), each view's RandomResizedCrop taken from the decoded image at its own
size (views.crop_from=original), as SimCLR's and GenRep's ImageNet loaders take it.
Args (comma-separated): `supcon` (positives share the real label),
`smoke`.
"""

from configs import common
from configs.paper import genrep


def get_config(arg: str | None = None):
    c, _ = genrep.base(arg, {"supcon": False})
    c.data.source = "real"
    c.views.latent = "none"  # no generator: views differ by pixel transforms only
    c.views.crop_from = "original"  # RandomResizedCrop of each decoded image, as SimCLR/GenRep
    c.loss.name = "supcon" if common.parse_options(arg, {"smoke": False, "supcon": False})["supcon"] \
        else "ntxent"
    return c
