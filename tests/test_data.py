"""The color-gradient dataset and the data-space / model-space maps."""

from __future__ import annotations

import math

import torch
from seeding import gen

from toydiff import (
    GRADIENT_CLASSES,
    denormalize_img,
    gradient_images,
    labelled_gradient_images,
    normalize_img,
)
from toydiff.data import gradient_grid


def test_gradient_grid_is_linear_in_x_plus_y() -> None:
    grid = gradient_grid(3, 5)
    assert grid.shape == (3, 5)
    assert grid[0, 0].item() == 0 and grid[-1, -1].item() == 1
    # Each axis spans its share of H + W: g = (W * w / (W - 1) + H * h / (H - 1)) / (H + W).
    for h in range(3):
        for w in range(5):
            expected = (5 * w / 4 + 3 * h / 2) / 8
            assert math.isclose(grid[h, w].item(), expected, abs_tol=1e-6)
    square = gradient_grid(4, 4)
    assert torch.allclose(square, (torch.arange(4)[:, None] + torch.arange(4)[None, :]) / 6)
    assert torch.equal(gradient_grid(1, 1), torch.zeros(1, 1))


def test_gradient_images_blend_two_corner_colors() -> None:
    images = gradient_images(64, (3, 5, 5), generator=gen(0))
    assert images.shape == (64, 3, 5, 5) and images.dtype == torch.float32
    assert images.min().item() >= 0 and images.max().item() <= 1
    start = images[:, :, 0, 0]
    end = images[:, :, -1, -1]
    g = gradient_grid(5, 5)
    expected = start[..., None, None] + g * (end - start)[..., None, None]
    assert torch.allclose(images, expected, atol=1e-6)
    # Pixels on one anti-diagonal (same x + y) share a color.
    assert torch.allclose(images[:, :, 0, 2], images[:, :, 2, 0])
    assert torch.allclose(images[:, :, 1, 3], images[:, :, 3, 1])


def test_corner_colors_are_uniform_and_independent() -> None:
    n = 40_000
    images = gradient_images(n, (3, 2, 2), generator=gen(1))
    corners = torch.cat([images[:, :, 0, 0], images[:, :, -1, -1]], dim=1).double()  # (n, 6)
    # Uniform on [0, 1]: mean 1/2 and variance 1/12, within 5 standard errors.
    assert (corners.mean(0) - 0.5).abs().max().item() < 5 * math.sqrt(1 / 12 / n)
    assert (corners.var(0) - 1 / 12).abs().max().item() < 5 * math.sqrt(1 / 180 / n)
    corr = torch.corrcoef(corners.T) - torch.eye(6, dtype=torch.float64)
    assert corr.abs().max().item() < 5 / math.sqrt(n)


def test_gradient_images_are_seeded() -> None:
    a = gradient_images(8, (3, 4, 6), generator=gen(3))
    assert torch.equal(a, gradient_images(8, (3, 4, 6), generator=gen(3)))
    assert not torch.equal(a, gradient_images(8, (3, 4, 6), generator=gen(4)))
    assert gradient_images(2, (1, 4, 6)).shape == (2, 1, 4, 6)


def test_labels_name_the_dominant_channel_of_the_start_corner() -> None:
    images, labels = labelled_gradient_images(300, (3, 5, 5), generator=gen(0))
    assert labels.dtype == torch.long and labels.shape == (300,)
    assert torch.equal(labels, images[:, :, 0, 0].argmax(dim=1))
    assert set(labels.tolist()) == set(range(len(GRADIENT_CLASSES)))
    assert torch.equal(images, gradient_images(300, (3, 5, 5), generator=gen(0)))


def test_normalize_and_denormalize() -> None:
    x = torch.tensor([0.0, 0.25, 1.0])
    assert torch.equal(normalize_img(x), torch.tensor([-1.0, -0.5, 1.0]))
    img = gradient_images(16, (3, 5, 5), generator=gen(0))
    assert torch.allclose(denormalize_img(normalize_img(img)), img, atol=1e-7)
    # Model-space values outside [-1, 1] are clamped for display.
    assert torch.equal(
        denormalize_img(torch.tensor([-3.0, 0.0, 3.0])), torch.tensor([0.0, 0.5, 1.0])
    )
