"""Checks for notebook 02 (the forward process): ``q_eq2`` and ``q_eq4``.

Both take a **step count** ``num_steps = k``: ``k`` steps use the first ``k`` betas, and
``x_k ~ N(sqrt(alpha_bar) x, (1 - alpha_bar) I)`` with ``alpha_bar = prod_{i < k} (1 - beta_i)``
(DDPM Eq. 4; Eq. 2 iterated gives the same distribution). The checks compare sample moments over
many pixels with that closed form, on a short schedule of large betas so that one step more or
less, or a missing square root, moves the moments far outside the sampling error.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from toydiff.checks.common import (
    expect_gaussian,
    expect_tensor,
    expect_unchanged,
    gen,
    max_diff,
)
from toydiff.checks.core import CheckReport, SubCheck, exercise, expect, run_checks

NOTEBOOK = "02_forward_process"
BETAS = torch.linspace(0.05, 0.3, 8)
X_VALUE = 0.8
SHAPE = (1000, 3, 4, 4)  # 48k pixels: the sample mean is good to about 0.004


def _alpha_bar(k: int) -> float:
    return math.prod(1 - b for b in BETAS[:k].double().tolist())


def _run(q: Callable, k: int, seed: int = 0, shape=SHAPE) -> torch.Tensor:
    x = torch.full(shape, X_VALUE)
    return expect_tensor(q(x, k, BETAS.clone(), generator=gen(seed)), shape)


def _shape_and_inputs(q: Callable) -> None:
    x = torch.randn(2, 3, 5, 5, generator=gen(9))
    betas = BETAS.clone()
    x0, b0 = x.clone(), betas.clone()
    expect_tensor(q(x, 3, betas, generator=gen(0)), x.shape)
    expect_unchanged(x0, x, "x")
    expect_unchanged(b0, betas, "betas")
    single = torch.rand(3, 4, 4, generator=gen(1))
    expect_tensor(q(single, 2, BETAS.clone(), generator=gen(0)), single.shape, "a (C, H, W) input")


def _identity(q: Callable) -> None:
    x = torch.randn(4, 3, 5, 5, generator=gen(2))
    out = expect_tensor(q(x, 0, BETAS.clone(), generator=gen(0)), x.shape)
    diff = max_diff(out, x)
    expect(diff < 1e-6, f"num_steps=0 changed x by up to {diff:.3g}; zero steps add no noise")


def _one_step(q: Callable) -> None:
    out = _run(q, 1)
    mean, want = float(out.mean()), math.sqrt(1 - float(BETAS[0])) * X_VALUE
    expect(
        abs(mean - want) < 0.02,
        f"after 1 step the mean is {mean:.3f}; expected sqrt(1 - beta_0) * x = {want:.3f}",
    )


def _mean(q: Callable) -> None:
    for k in (3, 8):
        mean, want = float(_run(q, k).mean()), math.sqrt(_alpha_bar(k)) * X_VALUE
        expect(
            abs(mean - want) < 0.02,
            f"after {k} steps the mean is {mean:.3f}; expected sqrt(alpha_bar) * x = {want:.3f}",
        )


def _variance(q: Callable) -> None:
    for k in (3, 8):
        var, want = float(_run(q, k).var()), 1 - _alpha_bar(k)
        expect(
            abs(var - want) < 0.03,
            f"after {k} steps the variance is {var:.3f}; expected 1 - alpha_bar = {want:.3f}",
        )


def _gaussian(q: Callable) -> None:
    # One step: a sum of several steps' noise would look Gaussian whatever each step drew.
    out = _run(q, 1, seed=5)
    expect_gaussian((out - out.mean()) / out.std(), "the added noise (standardized)")


def _seeded(q: Callable) -> None:
    shape = (4, 3, 5, 5)
    a, b = _run(q, 4, seed=11, shape=shape), _run(q, 4, seed=11, shape=shape)
    expect(torch.equal(a, b), "the same generator seed gave different results")
    c = _run(q, 4, seed=12, shape=shape)
    expect(not torch.equal(a, c), "different generator seeds gave the same result")


def _subchecks(eq: str) -> list[SubCheck]:
    draw = "draw each step's noise" if eq == "2" else "draw the noise"
    return [
        SubCheck(
            "same shape as x; x and betas unchanged",
            _shape_and_inputs,
            "return a new tensor; avoid in-place ops on x",
        ),
        SubCheck(
            "num_steps=0 returns x unchanged",
            _identity,
            "num_steps is a step count: 0 steps use no betas (an empty product is 1)",
        ),
        SubCheck(
            "1 step uses exactly beta_0",
            _one_step,
            "k steps use betas[:k] (a count), not betas[:k + 1]",
        ),
        SubCheck(
            "mean is sqrt(alpha_bar) * x",
            _mean,
            "scale x by the square root of the product of (1 - beta)",
        ),
        SubCheck(
            "variance is 1 - alpha_bar",
            _variance,
            "the noise's standard deviation is the square root of its variance"
            + (": sqrt(beta) per step" if eq == "2" else ": sqrt(1 - alpha_bar)"),
        ),
        SubCheck(
            "the noise is Gaussian",
            _gaussian,
            f"{draw} with torch.randn (not torch.rand, which is uniform)",
        ),
        SubCheck(
            "uses the generator (same seed, same result)",
            _seeded,
            "torch.randn(x.shape, generator=generator): randn_like takes no generator",
        ),
    ]


@exercise("q_eq2", notebook=NOTEBOOK, target="q_eq2")
def _q_eq2_checks() -> list[SubCheck]:
    return _subchecks("2")


@exercise("q_eq4", notebook=NOTEBOOK, target="q_eq4")
def _q_eq4_checks() -> list[SubCheck]:
    return _subchecks("4")


def check_q_eq2(q_eq2: Callable, *, verbose: bool = True) -> CheckReport:
    """Check ``q_eq2(x, num_steps, betas, *, generator=None)`` (DDPM Eq. 2, iterated)."""
    return run_checks("q_eq2", q_eq2, verbose=verbose)


def check_q_eq4(q_eq4: Callable, *, verbose: bool = True) -> CheckReport:
    """Check ``q_eq4(x, num_steps, betas, *, generator=None)`` (DDPM Eq. 4, closed form)."""
    return run_checks("q_eq4", q_eq4, verbose=verbose)
