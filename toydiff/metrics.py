"""Sample-quality figures for gradient images: is each sample a gradient, and are they diverse?

* **fidelity**: the RMS residual of the best least-squares linear-gradient fit of each image
  (0 for a perfect gradient; about 0.29 for uniform noise in [0, 1]);
* **diversity**: the standard deviation of the fitted corner colors over a batch (about 0.29 for
  real data, whose corners are uniform on [0, 1]; near 0 when samples collapse to a few colors).

Fidelity alone rewards a sampler that adds too little noise, so report both.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor

from toydiff.data import gradient_grid


def fit_gradients(images: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Least-squares fit of ``start + g(h, w) * (end - start)`` per image and channel.

    ``images (B, C, H, W)`` in data space. Returns ``(start (B, C), end (B, C), rms (B,))``, where
    ``rms`` is the root-mean-square residual of the fit over the image's pixels and channels.
    """
    if not isinstance(images, Tensor) or images.ndim != 4:
        raise ValueError("images must be a tensor of shape (B, C, H, W)")
    B, C, H, W = images.shape
    g = rearrange(gradient_grid(H, W).to(images), "h w -> (h w)")
    design = torch.stack([torch.ones_like(g), g], dim=1)  # (HW, 2): value = p + q * g
    y = rearrange(images.float(), "b c h w -> (h w) (b c)")
    coef = torch.linalg.lstsq(design, y).solution  # (2, B*C)
    resid = y - design @ coef
    p, q = rearrange(coef, "k (b c) -> k b c", b=B)
    rms = rearrange(resid, "hw (b c) -> b (c hw)", b=B).pow(2).mean(dim=1).sqrt()
    return p, p + q, rms


def gradient_rms(images: Tensor) -> Tensor:
    """Per-image RMS residual of the best linear-gradient fit, ``(B,)``."""
    return fit_gradients(images)[2]


def corner_color_spread(images: Tensor) -> float:
    """Standard deviation of all fitted corner colors (start and end, every channel)."""
    start, end, _ = fit_gradients(images)
    return float(torch.cat([start, end]).std())
