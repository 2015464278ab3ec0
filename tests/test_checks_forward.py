"""Notebook 02 checks (``q_eq2``, ``q_eq4``): the solutions pass; each mistake fails the right
sub-check, including the step-count off-by-one that the reference texts invite (known error 3)."""

from __future__ import annotations

import math

import pytest
import torch
from check_harness import assert_caught, assert_no_traceback, assert_not_attempted, assert_passes
from solution_cells import solution

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
    if noise == "gaussian":
        eps = torch.randn(x.shape, generator=generator)
    elif noise == "uniform":
        eps = torch.rand(x.shape, generator=generator)
    elif noise == "uniform_unit_variance":
        eps = (torch.rand(x.shape, generator=generator) - 0.5) * math.sqrt(12)
    else:  # the global generator
        eps = torch.randn_like(x)
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
            if noise == "gaussian":
                eps = torch.randn(x.shape, generator=generator)
            elif noise == "uniform":
                eps = torch.rand(x.shape, generator=generator)
            elif noise == "uniform_unit_variance":
                eps = (torch.rand(x.shape, generator=generator) - 0.5) * math.sqrt(12)
            else:
                eps = torch.randn_like(x)
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


def _stub(x, num_steps, betas, *, generator=None):
    raise NotImplementedError("q")


@pytest.mark.parametrize(("name", "check"), [("q_eq2", check_q_eq2), ("q_eq4", check_q_eq4)])
def test_solution_passes(name, check) -> None:
    assert_passes(check, solution(name))


@pytest.mark.parametrize("name", WRONG_EQ4)
def test_wrong_q_eq4_fails_the_right_subcheck(name: str) -> None:
    kwargs, subcheck = WRONG_EQ4[name]
    assert_caught(check_q_eq4, _variant(_eq4, **kwargs), subcheck)


@pytest.mark.parametrize("name", WRONG_EQ2)
def test_wrong_q_eq2_fails_the_right_subcheck(name: str) -> None:
    kwargs, subcheck = WRONG_EQ2[name]
    assert_caught(check_q_eq2, _variant(_eq2, **kwargs), subcheck)


def test_the_parameterised_references_are_right() -> None:
    """Guard for the tests above: with no mistake switched on, both variants pass."""
    assert_passes(check_q_eq4, _variant(_eq4))
    assert_passes(check_q_eq2, _variant(_eq2))


@pytest.mark.parametrize("check", [check_q_eq2, check_q_eq4])
def test_stub_is_not_attempted(check) -> None:
    assert_not_attempted(check, _stub)


def test_no_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    impls = [_variant(_eq4, **kwargs) for kwargs, _ in WRONG_EQ4.values()]
    assert_no_traceback(check_q_eq4, impls, capsys)
