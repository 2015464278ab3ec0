"""The course's data: color-gradient images, and the map between data space and model space.

Data space is ``[0, 1]`` (what you look at); model space is ``[-1, 1]`` (what the network sees).
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import Tensor

from toydiff.validation import check_generator, check_image_shape, check_positive_int

#: Class names of :func:`labelled_gradient_images`: the dominant channel of the start corner.
GRADIENT_CLASSES = ("red", "green", "blue")


def gradient_grid(height: int, width: int) -> Tensor:
    """Blend weights ``(H, W)`` in ``[0, 1]``: 0 at the top-left corner, 1 at the bottom-right,
    linear in ``x + y`` (each axis weighted by its share of ``H + W``)."""
    x = torch.linspace(0, width / (width + height), width)
    y = torch.linspace(0, height / (width + height), height)
    grid = rearrange(x, "w -> 1 w") + rearrange(y, "h -> h 1")
    corner = grid[-1, -1]
    return grid / corner if corner > 0 else torch.zeros_like(grid)


def gradient_images(
    n_images: int,
    img_size: tuple[int, int, int],
    *,
    generator: torch.Generator | None = None,
) -> Tensor:
    """``n_images`` color gradients of shape ``img_size = (C, H, W)``, values in ``[0, 1]``.

    Each image draws two corner colors uniformly from ``[0, 1]^C`` (start at the top-left, end at
    the bottom-right) and blends them linearly along ``x + y``. Returns ``(n_images, C, H, W)``.
    """
    check_positive_int(n_images, "n_images")
    C, H, W = check_image_shape(img_size, "img_size")
    check_generator(generator)
    corners = torch.rand(n_images, 2, C, generator=generator)
    start = rearrange(corners[:, 0], "b c -> b c 1 1")
    end = rearrange(corners[:, 1], "b c -> b c 1 1")
    return start + gradient_grid(H, W) * (end - start)


def labelled_gradient_images(
    n_images: int,
    img_size: tuple[int, int, int],
    *,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Gradients with a class label: the dominant channel of the start (top-left) corner color.

    For 3-channel images the labels index :data:`GRADIENT_CLASSES` (red, green, blue). Returns
    ``(images (B, C, H, W) in [0, 1], labels LongTensor (B,))``.
    """
    images = gradient_images(n_images, img_size, generator=generator)
    return images, images[:, :, 0, 0].argmax(dim=1)


def normalize_img(img: Tensor) -> Tensor:
    """Data space ``[0, 1]`` to model space ``[-1, 1]``: ``x * 2 - 1``."""
    if not isinstance(img, Tensor):
        raise TypeError(f"img must be a torch.Tensor, got {type(img).__name__}")
    return img * 2 - 1


def denormalize_img(img: Tensor) -> Tensor:
    """Model space back to data space: ``(x + 1) / 2``, clamped to ``[0, 1]`` for display."""
    if not isinstance(img, Tensor):
        raise TypeError(f"img must be a torch.Tensor, got {type(img).__name__}")
    return ((img + 1) / 2).clamp(0, 1)
