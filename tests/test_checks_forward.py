"""Notebook 02 checks (``q_eq2``, ``q_eq4``): the solutions pass; each mistake fails the right
sub-check, including the step-count off-by-one that the reference texts invite (known error 3)."""

from __future__ import annotations

import math

import torch
from check_harness import Exercise, exercise_tests, noise_like

from toydiff.checks import check_q_eq2, check_q_eq4


def _eq4(
    x,
    num_steps,
    betas,
    *,
    generator=None,
    shift=0,
    mean_sqrt=True,
    noise_sqrt=True,
    noise="gaussian",
    in_place=False,
):
    """A parameterised Eq. 4; each keyword reproduces one mistake."""
    alpha_bar = float(torch.prod(1 - betas[: num_steps + shift]))
    eps = noise_like(x, noise, generator)
    scale = math.sqrt(alpha_bar) if mean_sqrt else alpha_bar
    sigma = math.sqrt(1 - alpha_bar) if noise_sqrt else 1 - alpha_bar
    if in_place:
        return x.mul_(scale).add_(sigma * eps)
    return scale * x + sigma * eps


def _eq2(
    x,
    num_steps,
    betas,
    *,
    generator=None,
    shift=0,
    noise_sqrt=True,
    noise="gaussian",
    one_draw=False,
    in_place=False,
):
    """A parameterised Eq. 2 loop; each keyword reproduces one mistake."""
    eps = torch.randn(x.shape, generator=generator) if one_draw else None
    for beta in betas[: num_steps + shift].tolist():
        if not one_draw:
            eps = noise_like(x, noise, generator)
        sigma = math.sqrt(beta) if noise_sqrt else beta
        if in_place:
            x = x.mul_(math.sqrt(1 - beta)).add_(sigma * eps)
        else:
            x = math.sqrt(1 - beta) * x + sigma * eps
    return x


def _variant(base, **kwargs):
    def impl(x, num_steps, betas, *, generator=None):
        return base(x, num_steps, betas, generator=generator, **kwargs)

    return impl


MEAN, VARIANCE = "mean is sqrt(alpha_bar) * x", "variance is 1 - alpha_bar"
COMMON = {
    "off by one: k steps use k + 1 betas": (dict(shift=1), "1 step uses exactly beta_0"),
    "off by one: 0 steps still noise": (dict(shift=1), "num_steps=0 returns x unchanged"),
    "noise scaled by its variance, not its std": (
        dict(noise_sqrt=False),
        "variance is 1 - alpha_bar",
    ),
    "uniform noise": (dict(noise="uniform"), "the noise is Gaussian"),
    "unit-variance uniform noise": (dict(noise="uniform_unit_variance"), "the noise is Gaussian"),
    "ignores the generator": (dict(noise="global"), "uses the generator (same seed, same result)"),
    "in-place update of x": (dict(in_place=True), "same shape as x; x and betas unchanged"),
}
WRONG_EQ4 = {
    **COMMON,
    "alpha_bar instead of sqrt(alpha_bar) on x": (
        dict(mean_sqrt=False),
        "mean is sqrt(alpha_bar) * x",
    ),
}
WRONG_EQ2 = {
    **COMMON,
    "one noise draw reused by every step": (dict(one_draw=True), VARIANCE),
}


def _wrong(base, mistakes: dict) -> dict:
    """{mistake: (keywords, sub-check)} as {mistake: (wrong implementation, sub-check)}."""
    return {name: (_variant(base, **kwargs), sub) for name, (kwargs, sub) in mistakes.items()}


def _stub(x, num_steps, betas, *, generator=None):
    raise NotImplementedError("q")


TestExercises = exercise_tests(
    # the mistake-free parameterised variants are references: a guard that each wrong variant
    # fails only through the mistake switched on
    Exercise(check_q_eq2, "q_eq2", _wrong(_eq2, WRONG_EQ2), _stub, (_variant(_eq2),)),
    Exercise(check_q_eq4, "q_eq4", _wrong(_eq4, WRONG_EQ4), _stub, (_variant(_eq4),)),
)
