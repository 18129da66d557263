"""PNG image grids and result plots: what a person would rather see than read."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def save_grid(path: str, images: np.ndarray, title: str = "", scale: int = 3) -> None:
    """Saves (rows, cols, H, W, 3) images in [0, 1] as one PNG, `scale`× nearest upsampled."""
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


def bar_chart(path: str, labels: list[str], series: dict[str, list[float]], *, ylabel: str,
              title: str = "") -> None:
    """Grouped bars: one group per label, one bar per series."""
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(labels) + 1), 3.2), dpi=100)
    width = 0.8 / max(len(series), 1)
    x = np.arange(len(labels))
    for i, (name, values) in enumerate(series.items()):
        bars = ax.bar(x + (i - (len(series) - 1) / 2) * width, values, width, label=name)
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.set_xticks(x, labels, rotation=15, fontsize=8)
    _finish(fig, ax, path, ylabel, title, legend_size=8)


def _finish(fig, ax, path: str, ylabel: str, title: str, legend_size: int) -> None:
    """Labels, legend and the PNG: the common end of every result plot."""
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=legend_size)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def line_plot(path: str, x: list[float], series: dict[str, list[float]], *, xlabel: str, ylabel: str,
              baselines: dict[str, float] | None = None, log_x: bool = False, title: str = "") -> None:
    """One line per series against the swept value x; each baseline a dashed horizontal line."""
    fig, ax = plt.subplots(figsize=(5.5, 3.4), dpi=100)
    for name, values in series.items():
        ax.plot(x, values, marker="o", label=name)
    for i, (name, value) in enumerate((baselines or {}).items()):
        ax.axhline(value, linestyle="--", linewidth=1, color=f"C{len(series) + i}", label=name)
    if log_x:
        ax.set_xscale("log")
    ax.set_xticks(x, [f"{v:g}" for v in x], fontsize=8)
    ax.minorticks_off()
    ax.set_xlabel(xlabel)
    _finish(fig, ax, path, ylabel, title, legend_size=7)
