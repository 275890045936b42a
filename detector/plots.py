"""Score curves like the IPAD paper's figure 6: anomaly score per frame, anomalous frames shaded."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; GPU machines and CI have no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def anomalous_spans(labels: np.ndarray) -> list[tuple[int, int]]:
    """(first, last) index of every run of 1s."""
    padded = np.concatenate([[0], np.asarray(labels, dtype=np.int8), [0]])
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])]


def plot_score_curve(path: Path | str, frames: np.ndarray, anomaly_score: np.ndarray,
                     labels: np.ndarray | None = None, title: str = "") -> Path:
    """Write a PNG of anomaly score against frame index; frames labelled 1 are shaded red."""
    figure, axes = plt.subplots(figsize=(10, 3), dpi=100)
    if labels is not None:
        for i, (first, last) in enumerate(anomalous_spans(labels)):
            axes.axvspan(frames[first] - 0.5, frames[last] + 0.5, color="tab:red", alpha=0.25, lw=0,
                         label="anomalous (label)" if i == 0 else None)
    axes.plot(frames, anomaly_score, color="tab:blue", lw=1.5, label="anomaly score")
    axes.set_xlabel("frame")
    axes.set_ylabel("anomaly score")
    axes.set_ylim(-0.02, 1.02)
    axes.set_xlim(frames[0], frames[-1])
    axes.set_title(title)
    axes.legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    path = Path(path)
    figure.savefig(path)
    plt.close(figure)
    return path
