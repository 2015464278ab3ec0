"""Pictures: image grids, schedules, denoising strips and GIFs, mixture scatters, loss curves.

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
import matplotlib.pyplot as plt
import torch
from einops import rearrange
from matplotlib import animation
from matplotlib.figure import Figure
from PIL import Image
from torch import Tensor

from toydiff.schedule import SCHEDULE_KINDS, NoiseSchedule
from toydiff.tracking import read_metrics


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
    """Write ``(N, C, H, W)`` images in ``[0, 1]`` as one PNG grid, each pixel ``scale`` times."""
    return _write_png(make_grid(images, nrow=nrow), path, scale)


def save_image(image: Tensor, path: str | os.PathLike[str], scale: int = 1) -> Path:
    """Write one ``(C, H, W)`` image in ``[0, 1]`` (C = 1 or 3) as an 8-bit PNG, each pixel
    ``scale`` x ``scale`` (1 keeps the data's own resolution)."""
    if not isinstance(image, Tensor) or image.ndim != 3 or image.shape[0] not in (1, 3):
        raise ValueError("image must be a tensor of shape (C, H, W) with C = 1 or 3")
    return _write_png(image, path, scale)


def _write_png(image: Tensor, path: str | os.PathLike[str], scale: int) -> Path:
    """Write ``(C, H, W)`` in ``[0, 1]`` as a PNG (grayscale for C = 1), each pixel ``scale`` x
    ``scale``, creating the parent folder."""
    arr = _to_hwc(image.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    plt.imsave(path, arr, cmap="gray" if arr.ndim == 2 else None, vmin=0, vmax=1)
    return path


def load_image(path: str | os.PathLike[str], channels: int = 3) -> Tensor:
    """Read a PNG written by :func:`save_image` as a float ``(channels, H, W)`` in ``[0, 1]``."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    arr = torch.from_numpy(plt.imread(Path(path)).copy()).float()
    return rearrange(arr[..., :channels], "h w c -> c h w")


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
    idx = _frame_indices(len(steps), n_frames, hold=0)
    rows = min(n_rows, steps[0].shape[0])
    frames = torch.stack([steps[i][:rows] for i in idx], dim=1)  # (rows, frames, C, H, W)
    fig = plot_images(
        rearrange(frames, "r f c h w -> (r f) c h w"),
        titles=labels or [f"{len(steps) - 1 - i} left" for i in idx],
        ncols=len(idx),
    )
    _save(fig, path)
    return Path(path)


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
    if ax.lines:  # a run too short to log anything still gets its (empty) figure
        ax.legend()
    fig.tight_layout()
    return _save(fig, path)


def _save(fig: Figure, path: str | os.PathLike[str] | None, dpi: int = 100) -> Figure:
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=dpi)
        plt.close(fig)
    return fig


def plot_schedules(
    max_steps: int = 1000, path: str | os.PathLike[str] | None = None, *, kinds=SCHEDULE_KINDS
) -> Figure:
    """Linear and cosine schedules side by side: ``beta_t``, ``alpha_bar_t`` and the signal-to-noise
    ratio ``SNR_t = alpha_bar_t / (1 - alpha_bar_t)`` (log scale) against the timestep index."""
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    t = torch.arange(max_steps)
    for kind in kinds:
        schedule = NoiseSchedule(max_steps, kind=kind)
        ab = schedule.alpha_bars.double()
        axes[0].plot(t, schedule.betas, label=kind)
        axes[1].plot(t, ab, label=kind)
        axes[2].plot(t, ab / (1 - ab), label=kind)
    titles = ("beta_t", "alpha_bar_t (signal kept)", "SNR_t = alpha_bar / (1 - alpha_bar)")
    for ax, title in zip(axes, titles, strict=True):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("timestep index t")
        ax.grid(True, alpha=0.3)
        ax.legend()
    axes[0].set_yscale("log")
    axes[2].set_yscale("log")
    fig.tight_layout()
    return _save(fig, path)


def save_denoising_strip(
    x_t: Sequence[Tensor],
    x0_pred: Sequence[Tensor],
    path: str | os.PathLike[str],
    *,
    timesteps: Sequence[int] | None = None,
    n_frames: int = 8,
    n_images: int = 3,
) -> Path:
    """The reverse chain at ``n_frames`` evenly spaced steps: for each of the first ``n_images``
    images, one row of ``x_t`` and below it one row of the model's predicted ``x0`` at that step.

    ``x_t`` and ``x0_pred``: equally long lists of ``(B, C, H, W)`` in ``[0, 1]``, step by step
    (see :func:`toydiff.evaluation.denoising_trajectory`); ``timesteps`` labels the columns.
    """
    if len(x_t) != len(x0_pred) or not x_t:
        raise ValueError("x_t and x0_pred must be non-empty lists of the same length")
    idx = _frame_indices(len(x_t), n_frames, hold=0)
    rows = min(n_images, x_t[0].shape[0])
    states = torch.stack([x_t[i][:rows] for i in idx])  # (frames, rows, C, H, W)
    preds = torch.stack([x0_pred[i][:rows] for i in idx])
    pairs = torch.stack([states, preds])  # (2, frames, rows, C, H, W)
    label = [f"t={timesteps[i]}" if timesteps is not None else f"step {i}" for i in idx]
    titles = []
    for _ in range(rows):
        titles += [f"x_t, {s}" for s in label] + ["predicted x0"] * len(idx)
    fig = plot_images(
        rearrange(pairs, "k f r c h w -> (r k f) c h w"), titles=titles, ncols=len(idx), size=1.3
    )
    _save(fig, path)
    return Path(path)


class _PalettePillowWriter(animation.PillowWriter):
    """PillowWriter that maps every frame to one adaptive palette without dithering: plots are a
    few flat colors, and dithering them into noise makes GIFs several times larger."""

    colors = 64

    def finish(self) -> None:
        self._frames = [
            frame.convert("RGB").quantize(self.colors, dither=Image.Dither.NONE)
            for frame in self._frames
        ]
        super().finish()


def _animate(
    fig: Figure, update, n_frames: int, path: str | os.PathLike[str], fps: int, dpi: int
) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    anim = animation.FuncAnimation(fig, update, frames=n_frames, blit=False)
    anim.save(path, writer=_PalettePillowWriter(fps=fps), dpi=dpi)
    plt.close(fig)
    return path


def _frame_indices(n: int, max_frames: int, hold: int) -> list[int]:
    """At most ``max_frames`` evenly spaced indices of ``n`` states, then the last one ``hold``
    more times so that the loop pauses on the result."""
    idx = torch.linspace(0, n - 1, min(max_frames, n)).round().long().tolist()
    return idx + [n - 1] * hold


def save_denoising_gif(
    steps: Sequence[Tensor],
    path: str | os.PathLike[str],
    *,
    nrow: int = 8,
    fps: int = 12,
    max_frames: int = 60,
    hold: int = 12,
    labels: Sequence[str] | None = None,
    dpi: int = 60,
    height: float = 2.0,
) -> Path:
    """An animated GIF of image denoising: ``steps`` is the list ``[x_T, ..., x_0]`` of
    ``(B, C, H, W)`` in ``[0, 1]``, one grid per frame; ``labels[i]`` is the title of step ``i``.

    At most ``max_frames`` evenly spaced states, the last one held ``hold`` frames more; the grid
    is ``height`` inches high at ``dpi`` (GIFs of noise compress badly: keep them small).
    """
    if not steps:
        raise ValueError("steps must be a non-empty list of (B, C, H, W) tensors")
    idx = _frame_indices(len(steps), max_frames, hold)
    grids = [_to_hwc(make_grid(steps[i], nrow=nrow)) for i in idx]
    h, w = grids[0].shape[:2]
    fig, ax = plt.subplots(figsize=(max(2.0, height * w / h), height + 0.3))
    ax.axis("off")
    im = ax.imshow(
        grids[0],
        cmap="gray" if grids[0].ndim == 2 else None,
        vmin=0,
        vmax=1,
        interpolation="nearest",
    )
    title = ax.set_title("", fontsize=9)
    fig.tight_layout()

    def update(k: int) -> None:
        im.set_data(grids[k])
        i = idx[k]
        title.set_text(labels[i] if labels is not None else f"step {i} of {len(steps) - 1}")

    return _animate(fig, update, len(idx), path, fps, dpi)


def save_signal_gif(
    steps: Sequence[Tensor],
    path: str | os.PathLike[str],
    *,
    target: Tensor | None = None,
    fps: int = 12,
    max_frames: int = 60,
    hold: int = 12,
    labels: Sequence[str] | None = None,
    dpi: int = 60,
) -> Path:
    """An animated GIF of a 1-D signal being denoised: ``steps`` is ``[x_T, ..., x_0]``, each
    ``(L,)`` or ``(B, L)`` (one line per signal); ``target (L,)`` is drawn dashed for reference."""
    if not steps:
        raise ValueError("steps must be a non-empty list of (L,) or (B, L) tensors")
    signals = [s.detach().float().cpu().reshape(-1, s.shape[-1]) for s in steps]
    idx = _frame_indices(len(signals), max_frames, hold)
    lo = min(float(s.min()) for s in signals)
    hi = max(float(s.max()) for s in signals)
    fig, ax = plt.subplots(figsize=(5, 3))
    xs = torch.arange(signals[0].shape[1])
    if target is not None:
        ax.plot(xs, target.detach().cpu().reshape(-1), "k--", lw=1, label="data")
        ax.legend(loc="upper right", fontsize=8)
    # Without antialiasing a frame holds a few flat colors, which GIF compresses tenfold.
    lines = [ax.plot(xs, row, lw=1.2, antialiased=False)[0] for row in signals[0]]
    ax.set_ylim(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo))
    ax.set_xlabel("position")
    title = ax.set_title("", fontsize=9)
    fig.tight_layout()

    def update(k: int) -> None:
        i = idx[k]
        for line, row in zip(lines, signals[i], strict=True):
            line.set_ydata(row)
        title.set_text(labels[i] if labels is not None else f"step {i} of {len(steps) - 1}")

    return _animate(fig, update, len(idx), path, fps, dpi)


def plot_mixture(
    samples: Tensor,
    path: str | os.PathLike[str] | None = None,
    *,
    means: Tensor | None = None,
    trajectories: Tensor | Sequence[Tensor] | None = None,
    n_trajectories: int = 20,
    real: Tensor | None = None,
) -> Figure:
    """2-D scatter of mixture ``samples (N, 2)``, with the mode ``means (K, 2)`` as crosses,
    optional ``real`` points in grey and the paths of the first ``n_trajectories`` samples through
    ``trajectories`` (a list ``[x_T, ..., x_0]`` of ``(N, 2)``, or a tensor ``(S, N, 2)``)."""
    if not isinstance(samples, Tensor) or samples.ndim != 2 or samples.shape[1] != 2:
        raise ValueError("samples must be a tensor of 2-D points (N, 2)")
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    if real is not None:
        ax.scatter(*real.detach().cpu().T, s=3, c="0.75", label="data")
    if trajectories is not None:
        paths = (
            trajectories if isinstance(trajectories, Tensor) else torch.stack(list(trajectories))
        )
        for k in range(min(n_trajectories, paths.shape[1])):
            ax.plot(*paths[:, k].detach().cpu().T, lw=0.6, alpha=0.6, c="tab:blue")
    ax.scatter(*samples.detach().cpu().T, s=4, c="tab:orange", label="samples")
    if means is not None:
        ax.scatter(*means.detach().cpu().T, marker="x", s=60, c="k", label="modes")
    ax.set_aspect("equal")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    return _save(fig, path)
