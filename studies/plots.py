"""Result plots of studies: what a person would rather see than read."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


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


def _finish(fig, ax, path: str, ylabel: str, title: str, legend_size: int, legend: bool = True) -> None:
    """Labels, legend and the PNG: the common end of every result plot."""
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    if legend:
        ax.legend(fontsize=legend_size)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def line_plot(path: str, x: list[float], series: dict[str, list[float]], *, xlabel: str, ylabel: str,
              baselines: dict[str, float] | None = None, log_x: bool = False, title: str = "",
              fractions: dict[str, list[float]] | None = None) -> None:
    """One line per series against the swept value x; each baseline a dashed horizontal line;
    `fractions` (metrics in [0, 1], e.g. symmetric precision and recall) on a right-hand axis."""
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=100)
    for name, values in series.items():
        ax.plot(x, values, marker="o", label=name)
    for i, (name, value) in enumerate((baselines or {}).items()):
        ax.axhline(value, linestyle="--", linewidth=1, color=f"C{len(series) + i}", label=name)
    if log_x:
        ax.set_xscale("log")
    ax.set_xticks(x, [f"{v:g}" for v in x], fontsize=8)
    ax.minorticks_off()
    ax.set_xlabel(xlabel)
    if fractions:
        right = ax.twinx()
        for name, values in fractions.items():  # hollow markers: against anchors
            right.plot(x, values, "s:", label=name, fillstyle="none" if "anchors" in name else "full")
        right.set_ylim(0, 1.02)
        right.set_ylabel("fidelity metric")
        lines, labels = ax.get_legend_handles_labels()
        more = right.get_legend_handles_labels()
        ax.legend(lines + more[0], labels + more[1], fontsize=6, loc="best")
    _finish(fig, ax, path, ylabel, title, legend_size=7, legend=not fractions)


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
