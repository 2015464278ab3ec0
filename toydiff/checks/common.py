"""Helpers shared by the topic check modules: seeded generators, tensor comparisons, moments."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from toydiff.checks.core import expect


def gen(seed: int) -> torch.Generator:
    """A fresh CPU generator seeded with ``seed``."""
    return torch.Generator().manual_seed(seed)


def expect_tensor(value: Any, shape: tuple[int, ...], what: str = "the result") -> Tensor:
    """Fail unless ``value`` is a floating-point tensor of ``shape``; return it."""
    expect(
        isinstance(value, Tensor), f"{what} should be a torch.Tensor, got {type(value).__name__}"
    )
    expect(
        tuple(value.shape) == tuple(shape),
        f"{what} should have shape {tuple(shape)}, got {tuple(value.shape)}",
    )
    return value


def max_diff(a: Tensor, b: Tensor) -> float:
    """The largest absolute difference between two tensors of the same shape."""
    return float((a.detach().double() - b.detach().double()).abs().max())


def standardized_kurtosis(x: Tensor) -> float:
    """``E[(x - mean)^4] / var^2``: 3 for a Gaussian, 1.8 for a uniform distribution."""
    x = x.detach().double().flatten()
    centered = x - x.mean()
    var = centered.pow(2).mean()
    return float(centered.pow(4).mean() / var.pow(2)) if var > 0 else float("nan")


def expect_gaussian(eps: Tensor, what: str = "the noise") -> None:
    """Fail unless the samples ``eps`` look standard normal: mean 0, variance 1, kurtosis 3."""
    eps = eps.detach().double().flatten()
    n = eps.numel()
    mean, var = float(eps.mean()), float(eps.var())
    expect(abs(mean) < 6 / n**0.5, f"{what} has mean {mean:.3f}, expected 0")
    expect(abs(var - 1) < 0.05 + 10 / n**0.5, f"{what} has variance {var:.3f}, expected 1")
    kurt = standardized_kurtosis(eps)
    expect(
        abs(kurt - 3) < 0.3,
        f"{what} has kurtosis {kurt:.2f}; a Gaussian has 3 (a uniform distribution 1.8)",
    )


def expect_unchanged(before: Tensor, after: Tensor, name: str) -> None:
    """Fail when an input was modified in place."""
    expect(torch.equal(before, after), f"your code changed its input {name} in place")


def tensor_diff(value: Any, reference: Tensor, what: str = "the result") -> float:
    """Fail unless ``value`` is a tensor shaped like ``reference``; return their largest absolute
    difference."""
    return max_diff(expect_tensor(value, tuple(reference.shape), what), reference)
