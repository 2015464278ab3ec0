"""Pictures: image grids, denoising trajectories, loss curves.

Every function takes tensors in data space ``[0, 1]`` (use :func:`toydiff.denormalize_img` on model
output) and either returns a matplotlib ``Figure`` or writes a PNG when given a path.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use(os.environ.get("MPLBACKEND", "Agg"))
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402
from einops import rearrange  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from torch import Tensor  # noqa: E402

from toydiff.tracking import read_metrics  # noqa: E402


def make_grid(images: Tensor, nrow: int = 8, padding: int = 1, pad_value: float = 1.0) -> Tensor:
    """Tile ``(N, C, H, W)`` images into one ``(C, H', W')`` image, ``nrow`` images per row."""
    if not isinstance(images, Tensor) or images.ndim != 4:
        raise ValueError("images must be a tensor of shape (N, C, H, W)")
    n, c, h, w = images.shape
    ncol = min(nrow, n)
    nrows = math.ceil(n / ncol)
    grid = torch.full(
        (c, nrows * (h + padding) + padding, ncol * (w + padding) + padding), pad_value
    )
    for i, img in enumerate(images.detach().float().cpu()):
        r, k = divmod(i, ncol)
        top, left = padding + r * (h + padding), padding + k * (w + padding)
        grid[:, top : top + h, left : left + w] = img
    return grid


def _to_hwc(img: Tensor):
    img = img.detach().float().cpu().clamp(0, 1)
    if img.shape[0] == 1:
        return img[0].numpy()
    return rearrange(img, "c h w -> h w c").numpy()


def save_image_grid(
    images: Tensor, path: str | os.PathLike[str], nrow: int = 8, scale: int = 8
) -> Path:
    """Write ``(N, C, H, W)`` images in ``[0, 1]`` as one PNG grid, each pixel ``scale`` x ``scale``."""
    grid = make_grid(images, nrow=nrow)
    grid = grid.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = _to_hwc(grid)
    plt.imsave(path, arr, cmap="gray" if arr.ndim == 2 else None, vmin=0, vmax=1)
    return path


def plot_images(
    images: Tensor | Sequence[Tensor],
    titles: Sequence[str] | None = None,
    *,
    ncols: int | None = None,
    size: float = 1.6,
) -> Figure:
    """Show images ``(N, C, H, W)`` (or a list of ``(C, H, W)``) side by side, optional titles."""
    images = torch.stack(list(images)) if not isinstance(images, Tensor) else images
    if images.ndim == 3:
        images = images.unsqueeze(0)
    n = images.shape[0]
    ncols = ncols or min(n, 8)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            arr = _to_hwc(images[i])
            ax.imshow(arr, cmap="gray" if arr.ndim == 2 else None, vmin=0, vmax=1)
            if titles is not None and i < len(titles):
                ax.set_title(titles[i], fontsize=8)
    fig.tight_layout()
    return fig


def save_trajectory_strip(
    steps: Sequence[Tensor],
    path: str | os.PathLike[str],
    *,
    n_frames: int = 11,
    n_rows: int = 4,
    labels: Sequence[str] | None = None,
) -> Path:
    """A strip of the denoising trajectory: ``n_frames`` evenly spaced states of ``steps``
    (a list ``[x_T, ..., x_0]`` of ``(B, C, H, W)`` in [0, 1]) for the first ``n_rows`` images."""
    idx = torch.linspace(0, len(steps) - 1, min(n_frames, len(steps))).round().long().tolist()
    rows = min(n_rows, steps[0].shape[0])
    frames = torch.stack([steps[i][:rows] for i in idx], dim=1)  # (rows, frames, C, H, W)
    fig = plot_images(
        rearrange(frames, "r f c h w -> (r f) c h w"),
        titles=labels or [f"{len(steps) - 1 - i} left" for i in idx],
        ncols=len(idx),
    )
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_loss_curve(
    metrics: str | os.PathLike[str] | list[dict], path: str | os.PathLike[str] | None = None
) -> Figure:
    """Train loss (per logged interval) and eval loss (per epoch) against examples seen."""
    records = read_metrics(metrics) if not isinstance(metrics, list) else metrics
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for key, style in (("train_loss", "-"), ("eval_loss", "o-")):
        pts = [(r["step"], r[key]) for r in records if key in r]
        if pts:
            xs, ys = zip(*pts, strict=True)
            ax.plot(xs, ys, style, label=key, markersize=3)
    ax.set_xlabel("examples seen")
    ax.set_ylabel("MSE on the noise")
    ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=100)
        plt.close(fig)
    return fig
