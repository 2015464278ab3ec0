"""Checks for notebook 00 (set-up): the warm-up exercise ``mse``, the loss of Algorithm 1."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from toydiff.checks.common import expect_unchanged, gen, max_diff
from toydiff.checks.core import CheckReport, SubCheck, exercise, expect, run_checks

NOTEBOOK = "00_setup"


def _scalar(mse: Callable) -> None:
    out = mse(torch.zeros(2, 3), torch.ones(2, 3))
    expect(isinstance(out, torch.Tensor), f"expected a tensor, got {type(out).__name__}")
    expect(out.ndim == 0, f"expected a 0-dim (scalar) tensor, got shape {tuple(out.shape)}")


def _squares(mse: Callable) -> None:
    out = float(mse(torch.zeros(10), torch.full((10,), 2.0)))
    expect(abs(out - 4.0) < 1e-6, f"a difference of 2 everywhere gave {out:g}, expected 2^2 = 4")


def _mean(mse: Callable) -> None:
    out = float(mse(torch.zeros(4, 25), torch.ones(4, 25)))
    expect(abs(out - 1.0) < 1e-6, f"100 differences of 1 gave {out:g}, expected their mean 1")


def _random(mse: Callable) -> None:
    g = gen(0)
    pred, target = torch.randn(8, 3, 5, 5, generator=g), torch.randn(8, 3, 5, 5, generator=g)
    out = mse(pred, target)
    diff = max_diff(out, F.mse_loss(pred, target))
    expect(diff < 1e-5, f"differs from the mean squared error by {diff:.3g} on random images")


def _inputs(mse: Callable) -> None:
    g = gen(1)
    pred, target = torch.randn(4, 6, generator=g), torch.randn(4, 6, generator=g)
    p0, t0 = pred.clone(), target.clone()
    mse(pred, target)
    expect_unchanged(p0, pred, "pred")
    expect_unchanged(t0, target, "target")


def _grad(mse: Callable) -> None:
    pred = torch.randn(3, 4, generator=gen(2), requires_grad=True)
    target = torch.zeros(3, 4)
    out = mse(pred, target)
    expect(isinstance(out, torch.Tensor) and out.requires_grad, "the result carries no gradient")
    out.backward()
    expect(pred.grad is not None, "no gradient reached pred")
    expect(max_diff(pred.grad, 2 * pred.detach() / pred.numel()) < 1e-6, "wrong gradient")


@exercise("mse", notebook=NOTEBOOK, target="mse")
def _mse_checks() -> list[SubCheck]:
    return [
        SubCheck("returns a scalar tensor", _scalar, "reduce with .mean() and return the tensor"),
        SubCheck("squares the difference", _squares, "use (pred - target) ** 2, not abs()"),
        SubCheck("averages over every element", _mean, "take the mean, not the sum"),
        SubCheck("equals the mean squared error", _random, "mean of (pred - target) ** 2"),
        SubCheck("leaves its inputs unchanged", _inputs, "avoid in-place ops such as sub_ or **="),
        SubCheck(
            "gradients flow back to pred",
            _grad,
            "stay in torch: no .item(), .detach(), .numpy() or float()",
        ),
    ]


def check_mse(mse: Callable, *, verbose: bool = True) -> CheckReport:
    """Check a mean-squared-error function ``mse(pred, target) -> scalar tensor``."""
    return run_checks("mse", mse, verbose=verbose)
