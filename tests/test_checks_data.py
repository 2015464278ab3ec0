"""Notebook 01 checks (``gradient_images``, ``denormalize_img``): each mistake is caught."""

from __future__ import annotations

import torch
from check_harness import Exercise, exercise_tests
from einops import rearrange

from toydiff.checks import check_denormalize_img, check_gradient_images
from toydiff.data import gradient_grid

DIVERSE = "two independent uniform corner colors per image"


def _blend(corners: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    start = rearrange(corners[:, 0], "b c -> b c 1 1")
    end = rearrange(corners[:, 1], "b c -> b c 1 1")
    return start + weight * (end - start)


def _bytes(n, size, *, generator=None):
    """The reference text's 0-255 corners, without the division."""
    C, H, W = size
    corners = torch.randint(0, 255, (n, 2, C), generator=generator).float()
    return _blend(corners, gradient_grid(H, W))


def _global_rng(n, size, *, generator=None):
    C, H, W = size
    return _blend(torch.rand(n, 2, C), gradient_grid(H, W))


def _along_x(n, size, *, generator=None):
    C, H, W = size
    weight = torch.linspace(0, 1, W).expand(H, W) ** 2  # and not linear either
    return _blend(torch.rand(n, 2, C, generator=generator), weight)


def _gray(n, size, *, generator=None):
    C, H, W = size
    corners = torch.rand(n, 2, 1, generator=generator).expand(n, 2, C)
    return _blend(corners, gradient_grid(H, W))


def _mirrored(n, size, *, generator=None):
    C, H, W = size
    start = torch.rand(n, 1, C, generator=generator)
    return _blend(torch.cat([start, 1 - start], dim=1), gradient_grid(H, W))


def _gaussian_corners(n, size, *, generator=None):
    C, H, W = size
    corners = (0.5 + 0.15 * torch.randn(n, 2, C, generator=generator)).clamp(0, 1)
    return _blend(corners, gradient_grid(H, W))


def _channels_last(n, size, *, generator=None):
    C, H, W = size
    images = _blend(torch.rand(n, 2, C, generator=generator), gradient_grid(H, W))
    return rearrange(images, "b c h w -> b h w c")


def _stub(n, size, *, generator=None):
    raise NotImplementedError("gradient_images")


WRONG_GRADIENTS = {
    "0-255 colors, not divided": (_bytes, "values in [0, 1]"),
    "ignores the generator": (_global_rng, "uses the generator (same seed, same images)"),
    "blends along x only, not linearly": (
        _along_x,
        "each image is a linear blend along x + y, top-left to bottom-right",
    ),
    "one gray level for all channels": (_gray, DIVERSE),
    "end color tied to the start color": (
        _mirrored,
        DIVERSE,
    ),
    "Gaussian corner colors": (
        _gaussian_corners,
        DIVERSE,
    ),
    "channels last": (_channels_last, "shape (n_images, C, H, W), float32"),
}


def _no_clamp(img):
    return (img + 1) / 2


def _wrong_inverse(img):
    return ((img + 1) * 2).clamp(0, 1)


def _in_place(img):
    return img.add_(1).div_(2).clamp_(0, 1)


def _denorm_stub(img):
    raise NotImplementedError("denormalize_img")


WRONG_DENORMALIZE = {
    "no clamp": (_no_clamp, "clamps to [0, 1]"),
    "multiplies instead of dividing": (_wrong_inverse, "undoes normalize_img"),
    "in place": (_in_place, "leaves its input unchanged"),
}

TestExercises = exercise_tests(
    Exercise(check_gradient_images, "gradient_images", WRONG_GRADIENTS, _stub),
    Exercise(check_denormalize_img, "denormalize_img", WRONG_DENORMALIZE, _denorm_stub),
)
