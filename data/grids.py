"""PNG grids of images: views beside their anchors, generator samples, walks, a judge's samples.

Below both the tasks and the evaluators, which both draw them.
"""

from __future__ import annotations

import os

import numpy as np


def save_grid(path: str, images: np.ndarray, title: str = "", scale: int = 3) -> None:
    """Saves (rows, cols, H, W, 3) images in [0, 1] as one PNG, `scale`× nearest upsampled."""
    import matplotlib  # 0.4 s to import: when a grid is drawn, not at every train.py start

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    images = np.clip(np.asarray(images, np.float32), 0, 1)
    rows, cols, h, w, _ = images.shape
    pad = 2
    canvas = np.ones((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), np.float32)
    for r in range(rows):
        for k in range(cols):
            top, left = pad + r * (h + pad), pad + k * (w + pad)
            canvas[top:top + h, left:left + w] = images[r, k]
    canvas = canvas.repeat(scale, 0).repeat(scale, 1)
    fig = plt.figure(figsize=(canvas.shape[1] / 100, canvas.shape[0] / 100 + (0.3 if title else 0)),
                     dpi=100)
    ax = fig.add_axes((0, 0, 1, canvas.shape[0] / (canvas.shape[0] + (30 if title else 0))))
    ax.imshow(canvas, interpolation="nearest")
    ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=8, y=0.995)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
