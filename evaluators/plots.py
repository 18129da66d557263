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
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def sweep_chart(path: str, x: list[float], accuracy: list[float], metrics: dict[str, list[float]], *,
                baselines: dict[str, float], xlabel: str, title: str = "") -> None:
    """Linear-probe accuracy (left axis, with horizontal baselines) and metrics in [0, 1]
    (right axis) against a swept value, on a log x axis when all values are > 0."""
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=100)
    ax.plot(x, accuracy, "o-", color="black", label="linear probe top-1 (%)")
    for (name, value), style in zip(baselines.items(), ("--", ":", "-."), strict=False):
        ax.axhline(value, color="gray", linestyle=style, linewidth=1, label=f"{name} (%)")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("linear probe top-1 (%)")
    if min(x) > 0:
        ax.set_xscale("log")
        ax.set_xticks(x, [f"{v:g}" for v in x])
        ax.minorticks_off()
    handles, labels = ax.get_legend_handles_labels()
    if metrics:
        right = ax.twinx()
        for name, values in metrics.items():  # against anchors: hollow markers
            right.plot(x, values, "s--", label=name, fillstyle="none" if "anchors" in name else "full")
        right.set_ylim(0, 1.02)
        right.set_ylabel("fidelity metric")
        more = right.get_legend_handles_labels()
        handles, labels = handles + more[0], labels + more[1]
    ax.legend(handles, labels, fontsize=7, loc="best")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def line_panels(path: str, panels: dict[str, dict[str, tuple[list, list]]], *,
                hlines: dict[str, dict[str, float]] | None = None, xlabel: str, ylabel: str,
                title: str = "") -> None:
    """Side-by-side panels of lines sharing the y axis: panel title -> series -> (x, y);
    `hlines` adds, per panel, named horizontal reference lines."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.4), dpi=100, sharey=True,
                             squeeze=False)
    for ax, (name, series) in zip(axes[0], panels.items(), strict=True):
        for label, (x, y) in series.items():
            ax.plot(x, y, "o-", label=label)
        for label, value in (hlines or {}).get(name, {}).items():
            ax.axhline(value, color="gray", linestyle="--", linewidth=1, label=label)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(ylabel)
    axes[0][-1].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
