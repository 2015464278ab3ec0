"""Variance schedules, NoiseSchedule buffers and step_coefficients against closed forms."""

from __future__ import annotations

import math

import pytest
import torch

from toydiff import (
    NoiseSchedule,
    cosine_variance_schedule,
    step_coefficients,
    variance_schedule,
)
from toydiff.timesteps import TimestepScheduler


def test_linear_schedule_endpoints_and_even_spacing() -> None:
    betas = variance_schedule(1000)
    assert betas.shape == (1000,) and betas.dtype == torch.float32
    assert betas[0].item() == pytest.approx(1e-4, rel=1e-6)
    assert betas[-1].item() == pytest.approx(0.02, rel=1e-6)
    diffs = betas.double().diff()
    assert torch.allclose(diffs, torch.full_like(diffs, (0.02 - 1e-4) / 999), rtol=1e-4)

    custom = variance_schedule(5, 0.1, 0.5)
    assert torch.allclose(custom, torch.tensor([0.1, 0.2, 0.3, 0.4, 0.5]))


def _cosine_alpha_bar(t: float, T: int, s: float) -> float:
    """Nichol & Dhariwal Eq. 17, written out independently of the library."""
    f_t = math.cos((t / T + s) / (1 + s) * math.pi / 2) ** 2
    f_0 = math.cos(s / (1 + s) * math.pi / 2) ** 2
    return f_t / f_0


@pytest.mark.parametrize("T", [10, 1000])
def test_cosine_schedule_matches_eq17(T: int) -> None:
    s = 0.008
    betas = cosine_variance_schedule(T, s=s)
    expected = [
        min(1 - _cosine_alpha_bar(t + 1, T, s) / _cosine_alpha_bar(t, T, s), 0.999)
        for t in range(T)
    ]
    assert torch.allclose(betas.double(), torch.tensor(expected, dtype=torch.float64), rtol=1e-5)
    # Without clipping, alpha_bar after k steps is f(k) / f(0).
    schedule = NoiseSchedule(T, kind="cosine")
    k = T // 2
    assert schedule.alpha_bar(k - 1).item() == pytest.approx(_cosine_alpha_bar(k, T, s), rel=1e-5)
    assert betas[-1].item() == pytest.approx(0.999)  # the last beta is clipped


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_buffers_follow_the_ddpm_formulas(kind: str) -> None:
    T = 50
    sch = NoiseSchedule(T, kind=kind)
    b = sch.betas.double()
    alpha_bars = [1.0]
    for beta in b.tolist():
        alpha_bars.append(alpha_bars[-1] * (1 - beta))
    ab = torch.tensor(alpha_bars[1:], dtype=torch.float64)
    ab_prev = torch.tensor(alpha_bars[:-1], dtype=torch.float64)

    assert len(sch) == T
    assert torch.allclose(sch.alphas.double(), 1 - b)
    assert torch.allclose(sch.alpha_bars.double(), ab, rtol=1e-5)
    assert torch.allclose(sch.alpha_bars.double(), torch.cumprod(sch.alphas.double(), 0), rtol=1e-5)
    assert torch.allclose(sch.alpha_bars_prev.double(), ab_prev, rtol=1e-5)
    assert sch.alpha_bars_prev[0].item() == 1.0
    assert torch.allclose(sch.sqrt_alpha_bars.double(), ab.sqrt(), rtol=1e-5)
    assert torch.allclose(sch.sqrt_one_minus_alpha_bars.double(), (1 - ab).sqrt(), rtol=1e-5)
    # DDPM Eq. 7: beta_tilde_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) * beta_t, 0 at t = 0.
    beta_tilde = (1 - ab_prev) / (1 - ab) * b
    assert torch.allclose(sch.posterior_variance.double(), beta_tilde, rtol=1e-4, atol=1e-9)
    assert sch.posterior_variance[0].item() == 0.0
    assert bool((sch.posterior_variance[1:] < sch.betas[1:]).all())
    assert torch.allclose(sch.sigmas.double(), ((1 - ab) / ab).sqrt(), rtol=1e-4)


def test_accessors_take_ints_and_index_tensors() -> None:
    sch = NoiseSchedule(100)
    t = torch.tensor([0, 7, 99])
    assert torch.equal(sch.beta(t), sch.betas[t])
    assert torch.equal(sch.alpha(t), 1 - sch.betas[t])
    assert torch.equal(sch.alpha_bar(t), sch.alpha_bars[t])
    assert sch.alpha_bar(0).item() == pytest.approx(1 - 1e-4)
    assert sch.beta(99).item() == pytest.approx(0.02)
    assert sch.alpha_bar(1).item() == pytest.approx(
        (1 - sch.beta(0).item()) * (1 - sch.beta(1).item())
    )


def test_buffers_are_in_state_dict_and_follow_to() -> None:
    sch = NoiseSchedule(20)
    keys = set(sch.state_dict())
    assert {"betas", "alphas", "alpha_bars", "alpha_bars_prev", "posterior_variance"} <= keys
    doubled = sch.to(torch.float64)
    assert doubled.betas.dtype == torch.float64 and doubled.alpha_bars.dtype == torch.float64
    meta = NoiseSchedule(20).to("meta")
    assert meta.alpha_bars.device.type == "meta" and meta.device.type == "meta"

    fresh = NoiseSchedule(20, min_noise=0.001, max_noise=0.1)
    fresh.load_state_dict(NoiseSchedule(20).state_dict())
    assert torch.equal(fresh.betas, NoiseSchedule(20).betas)


def test_constructors_round_trip() -> None:
    sch = NoiseSchedule(30, kind="cosine")
    for rebuilt in (
        NoiseSchedule.from_betas(sch.betas),
        NoiseSchedule.from_alphas_cumprod(sch.alpha_bars),
        NoiseSchedule.from_config(sch.config()),
    ):
        assert len(rebuilt) == 30
        assert torch.allclose(rebuilt.alpha_bars, sch.alpha_bars, rtol=1e-5)
    custom = NoiseSchedule.from_betas(torch.tensor([0.1, 0.2, 0.3]))
    again = NoiseSchedule.from_config(custom.config())
    assert torch.equal(again.betas, custom.betas) and again.kind == "custom"
    linear = NoiseSchedule(10, min_noise=0.01, max_noise=0.2)
    assert torch.equal(NoiseSchedule.from_config(linear.config()).betas, linear.betas)


def test_step_coefficients_full_chain_reproduces_the_schedule() -> None:
    sch = NoiseSchedule(100)
    c = step_coefficients(sch)
    assert c.timesteps.tolist() == list(range(99, -1, -1))
    assert len(c) == 100
    flip = torch.arange(99, -1, -1)
    assert torch.allclose(c.beta, sch.betas.double()[flip], rtol=1e-6)
    assert torch.allclose(c.alpha_bar, sch.alpha_bars.double()[flip], rtol=1e-5)
    assert torch.allclose(
        c.posterior_variance, sch.posterior_variance.double()[flip], rtol=1e-4, atol=1e-10
    )
    assert c.alpha_bar_prev[-1].item() == 1.0  # the last step goes to x_0
    assert c.posterior_variance[-1].item() == 0.0


def test_step_coefficients_respaced_subsequence() -> None:
    sch = NoiseSchedule(1000)
    ts = TimestepScheduler.uniform(1000, 10)
    c = step_coefficients(sch, ts)
    ab = torch.cumprod(1 - sch.betas.double(), 0)  # float64: 1 - alpha_bar is tiny near t = 0
    for i, t in enumerate(ts.tolist()):
        prev = ab[ts[i + 1]].item() if i + 1 < len(ts) else 1.0
        beta = 1 - ab[t].item() / prev
        assert c.beta[i].item() == pytest.approx(beta, rel=1e-5)
        var = beta * (1 - prev) / (1 - ab[t].item())
        assert c.posterior_variance[i].item() == pytest.approx(var, rel=1e-4, abs=1e-12)
    # The respaced chain is a DDPM with its own betas whose alpha_bar equals the original's.
    assert torch.prod(1 - c.beta).item() == pytest.approx(ab[ts[0]].item(), rel=1e-5)
    # Posterior mean coefficients: x0-form and eps-form agree (Eq. 7 vs Eq. 11).
    x0_coef = c.posterior_coef_x0 / c.sqrt_alpha_bar
    xt_coef = c.posterior_coef_xt + x0_coef
    assert torch.allclose(xt_coef, c.recip_sqrt_alpha, rtol=1e-8)
    assert torch.allclose(x0_coef * c.sqrt_one_minus_alpha_bar, c.eps_coef * c.recip_sqrt_alpha)
