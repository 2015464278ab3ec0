"""Checks for notebook 01 (data): ``gradient_images`` and ``denormalize_img``.

``gradient_images`` is compared with the definition of the dataset rather than with toydiff's
random draws: every image must be an exact linear blend along ``x + y`` (least-squares residual 0,
:func:`toydiff.metrics.fit_gradients`) between its top-left and bottom-right colors, and the corner
colors must be independent uniform draws from the generator it is given.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from toydiff.checks.common import expect_tensor, expect_unchanged, gen, max_diff
from toydiff.checks.core import CheckReport, SubCheck, exercise, expect, run_checks
from toydiff.data import normalize_img
from toydiff.metrics import fit_gradients

NOTEBOOK = "01_data"
# Not square on purpose: swapping H and W somewhere shows up as a wrong shape or a bad fit.
IMG_SIZE = (3, 4, 7)
N = 2000


def _make(gradient_images: Callable, n: int = N, seed: int = 0, size=IMG_SIZE) -> torch.Tensor:
    out = gradient_images(n, size, generator=gen(seed))
    return expect_tensor(out, (n, *size), "gradient_images(n, (C, H, W))")


def _shape(gradient_images: Callable) -> None:
    out = _make(gradient_images, 5)
    expect(out.dtype == torch.float32, f"expected float32 images, got {out.dtype}")
    _make(gradient_images, 2, size=(1, 6, 3))


def _range(gradient_images: Callable) -> None:
    out = _make(gradient_images)
    lo, hi = float(out.min()), float(out.max())
    expect(lo >= 0 and hi <= 1, f"values lie in [{lo:.3g}, {hi:.3g}], expected within [0, 1]")
    expect(hi > 0.9, f"the largest value is {hi:.3g}: colors should span all of [0, 1]")


def _seeded(gradient_images: Callable) -> None:
    a, b = _make(gradient_images, 50, seed=3), _make(gradient_images, 50, seed=3)
    expect(torch.equal(a, b), "the same generator seed gave different images")
    c = _make(gradient_images, 50, seed=4)
    expect(not torch.equal(a, c), "different generator seeds gave the same images")


def _linear(gradient_images: Callable) -> None:
    out = _make(gradient_images, 200)
    rms = float(fit_gradients(out)[2].max())
    expect(rms < 1e-4, f"the best linear fit along x + y leaves an RMS residual of {rms:.3g}")


def _diverse(gradient_images: Callable) -> None:
    out = _make(gradient_images)
    start, end = out[:, :, 0, 0].double(), out[:, :, -1, -1].double()
    for name, c in (("start", start), ("end", end)):
        mean, std = float(c.mean()), float(c.std())
        expect(abs(mean - 0.5) < 0.03, f"{name} colors have mean {mean:.3f}, expected 0.5")
        expect(abs(std - 12**-0.5) < 0.03, f"{name} colors have std {std:.3f}, expected 0.289")
    corr = float(torch.corrcoef(torch.stack([start[:, 0], end[:, 0]]))[0, 1])
    expect(abs(corr) < 0.1, f"start and end colors are correlated ({corr:.2f})")
    chans = float(torch.corrcoef(torch.stack([start[:, 0], start[:, 1]]))[0, 1])
    expect(abs(chans) < 0.1, f"the channels of a color are correlated ({chans:.2f})")


@exercise("gradient_images", notebook=NOTEBOOK, target="gradient_images")
def _gradient_images_checks() -> list[SubCheck]:
    return [
        SubCheck("shape (n_images, C, H, W), float32", _shape, "img_size is (C, H, W)"),
        SubCheck("values in [0, 1]", _range, "draw colors with torch.rand (or divide by 255)"),
        SubCheck(
            "uses the generator (same seed, same images)",
            _seeded,
            "pass generator=generator to every torch.rand call",
        ),
        SubCheck(
            "each image is a linear blend along x + y, top-left to bottom-right",
            _linear,
            "start + weight * (end - start); weight = linspace(0, W/(W+H), W) (along w) "
            "+ linspace(0, H/(W+H), H) (along h), 0 at [0, 0] and 1 at [-1, -1]",
        ),
        SubCheck(
            "two independent uniform corner colors per image",
            _diverse,
            "draw torch.rand(n_images, 2, C): one color per corner and channel",
        ),
    ]


def check_gradient_images(gradient_images: Callable, *, verbose: bool = True) -> CheckReport:
    """Check ``gradient_images(n_images, img_size, *, generator=None)``."""
    return run_checks("gradient_images", gradient_images, verbose=verbose)


def _inverse(denormalize_img: Callable) -> None:
    x = torch.rand(4, 3, 5, 5, generator=gen(0))
    out = expect_tensor(denormalize_img(normalize_img(x)), x.shape)
    diff = max_diff(out, x)
    expect(diff < 1e-6, f"denormalize_img(normalize_img(x)) differs from x by {diff:.3g}")


def _clamps(denormalize_img: Callable) -> None:
    x = torch.tensor([-3.0, -1.0, 0.0, 1.0, 2.5])
    out = expect_tensor(denormalize_img(x), x.shape)
    want = torch.tensor([0.0, 0.0, 0.5, 1.0, 1.0])
    expect(
        max_diff(out, want) < 1e-6, f"{x.tolist()} gave {out.tolist()}, expected {want.tolist()}"
    )


def _no_inplace(denormalize_img: Callable) -> None:
    x = torch.randn(2, 3, 4, 4, generator=gen(1))
    before = x.clone()
    denormalize_img(x)
    expect_unchanged(before, x, "img")


@exercise("denormalize_img", notebook=NOTEBOOK, target="denormalize_img")
def _denormalize_checks() -> list[SubCheck]:
    return [
        SubCheck("undoes normalize_img", _inverse, "invert x * 2 - 1: (x + 1) / 2"),
        SubCheck("clamps to [0, 1]", _clamps, "model outputs leave [-1, 1]: add .clamp(0, 1)"),
        SubCheck("leaves its input unchanged", _no_inplace, "avoid in-place ops such as add_"),
    ]


def check_denormalize_img(denormalize_img: Callable, *, verbose: bool = True) -> CheckReport:
    """Check ``denormalize_img(img)``: model space [-1, 1] back to data space [0, 1]."""
    return run_checks("denormalize_img", denormalize_img, verbose=verbose)
