"""Checks for notebook 07 (DDIM): ``ddim_step``, ``respaced_betas``, ``trailing_timesteps`` and
``karras_timesteps``.

References: DDIM (Song et al. 2021) Eq. 12 and Eq. 16 written out below, toydiff's shared
:func:`toydiff.step_coefficients` (respaced betas) and :meth:`toydiff.TimestepScheduler.karras`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from toydiff.checks.common import gen, tensor_diff
from toydiff.checks.core import CheckReport, SubCheck, exercise, expect, run_checks
from toydiff.schedule import NoiseSchedule, step_coefficients
from toydiff.timesteps import TimestepScheduler

NOTEBOOK = "07_ddim"
SHAPE = (4, 3, 5, 5)


def _alphas_cumprod(kind: str = "linear", T: int = 100) -> Tensor:
    return NoiseSchedule(T, kind=kind).alpha_bars


def _ref_ddim_step(
    x: Tensor,
    eps: Tensor,
    t: int,
    t_prev: int,
    alphas_cumprod: Tensor,
    *,
    eta: float = 0.0,
    clip_denoised: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    """DDIM Eq. 12 with sigma from Eq. 16; ``t_prev < 0`` means alpha_bar_prev = 1 (clean data)."""
    ab = float(alphas_cumprod[t])
    ab_prev = float(alphas_cumprod[t_prev]) if t_prev >= 0 else 1.0
    x0 = (x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
    if clip_denoised:
        x0 = x0.clamp(-1, 1)
        eps = (x - math.sqrt(ab) * x0) / math.sqrt(1 - ab)
    sigma = eta * math.sqrt((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev))
    out = math.sqrt(ab_prev) * x0 + math.sqrt(1 - ab_prev - sigma**2) * eps
    if sigma > 0:
        out = out + sigma * torch.randn(x.shape, generator=generator)
    return out


def _inputs() -> tuple[Tensor, Tensor]:
    return torch.randn(SHAPE, generator=gen(1)), torch.randn(SHAPE, generator=gen(2))


# --- ddim_step(x_t, eps, t, t_prev, alphas_cumprod, *, eta, clip_denoised, generator) ---


def _ddim_deterministic(impl: Callable) -> None:
    ac = _alphas_cumprod()
    x, eps = _inputs()
    for t, t_prev in ((99, 79), (50, 49), (30, 5)):
        err = tensor_diff(impl(x, eps, t, t_prev, ac), _ref_ddim_step(x, eps, t, t_prev, ac))
        expect(err < 1e-4, f"t={t} -> t_prev={t_prev}: off by up to {err:.3g}")


def _ddim_no_noise(impl: Callable) -> None:
    ac = _alphas_cumprod()
    x, eps = _inputs()
    a = impl(x, eps, 60, 40, ac, eta=0.0, generator=gen(3))
    b = impl(x, eps, 60, 40, ac, eta=0.0, generator=gen(4))
    expect(
        tensor_diff(a, b) == 0, "eta=0 should be deterministic, but two generators gave different x"
    )


def _ddim_final(impl: Callable) -> None:
    ac = _alphas_cumprod()
    x, eps = _inputs()
    ab = float(ac[7])
    x0 = (x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
    for eta in (0.0, 1.0):
        err = tensor_diff(impl(x, eps, 7, -1, ac, eta=eta, generator=gen(3)), x0)
        expect(
            err < 1e-4, f"t_prev=-1, eta={eta}: result is not the predicted x0 (off by {err:.3g})"
        )


def _ddim_sigma(impl: Callable) -> None:
    ac = _alphas_cumprod()
    zeros = torch.zeros(1000, 3, 5, 5)
    for eta in (1.0, 0.5):
        out = impl(zeros, zeros, 60, 40, ac, eta=eta, generator=gen(5))
        expect(isinstance(out, Tensor), f"expected a tensor, got {type(out).__name__}")
        ab, ab_prev = float(ac[60]), float(ac[40])
        want = eta * math.sqrt((1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev))
        got = float(out.std())
        expect(abs(got / want - 1) < 0.03, f"eta={eta}: noise std {got:.4g}, expected {want:.4g}")


def _ddim_exact(impl: Callable) -> None:
    ac = _alphas_cumprod()
    x, eps = _inputs()
    got = impl(x, eps, 60, 40, ac, eta=0.7, generator=gen(6))
    err = tensor_diff(got, _ref_ddim_step(x, eps, 60, 40, ac, eta=0.7, generator=gen(6)))
    expect(err < 1e-4, f"eta=0.7: off by up to {err:.3g}")


def _ddim_clip(impl: Callable) -> None:
    ac = _alphas_cumprod()
    x, _ = _inputs()
    ab = float(ac[60])
    eps = (x - math.sqrt(ab) * (3 * torch.sign(x) + x)) / math.sqrt(1 - ab)  # x0 far outside
    got = impl(x, eps, 60, 40, ac, clip_denoised=True)
    err = tensor_diff(got, _ref_ddim_step(x, eps, 60, 40, ac, clip_denoised=True))
    expect(err < 1e-4, f"clipped step off by up to {err:.3g}")


def _ddim_in_place(impl: Callable) -> None:
    ac = _alphas_cumprod()
    x, _ = _inputs()
    ab = float(ac[60])
    eps = (x - math.sqrt(ab) * (3 * torch.sign(x) + x)) / math.sqrt(1 - ab)
    x_copy, eps_copy, ac_copy = x.clone(), eps.clone(), ac.clone()
    impl(x, eps, 60, 40, ac, eta=1.0, clip_denoised=True, generator=gen(1))
    expect(torch.equal(x, x_copy), "x_t was changed in place")
    expect(torch.equal(eps, eps_copy), "eps was changed in place")
    expect(torch.equal(ac, ac_copy), "alphas_cumprod was changed in place")


def _ddim_bad_eta(impl: Callable) -> None:
    x, eps = _inputs()
    try:
        impl(x, eps, 60, 40, _alphas_cumprod(), eta=-0.5)
    except ValueError:
        return
    except NotImplementedError:
        raise
    except Exception as err:
        raise AssertionError(f"eta=-0.5 raised {type(err).__name__}, expected ValueError") from None
    expect(False, "eta=-0.5 was accepted; it must raise ValueError")


@exercise("ddim_step", notebook=NOTEBOOK, target="ddim_step")
def _ddim_step_checks() -> list[SubCheck]:
    return [
        SubCheck(
            "eta = 0 follows DDIM Eq. 12, also across skipped steps",
            _ddim_deterministic,
            "x0 = (x_t - sqrt(1 - ab_t) eps) / sqrt(ab_t); x_prev = sqrt(ab_prev) x0 + "
            "sqrt(1 - ab_prev - sigma^2) eps, with ab_prev = alphas_cumprod[t_prev]",
        ),
        SubCheck(
            "eta = 0 adds no noise",
            _ddim_no_noise,
            "sigma = eta * (...) is 0 when eta = 0: draw nothing and add nothing",
        ),
        SubCheck(
            "the last step (t_prev = -1) goes to alpha_bar = 1 and returns x0",
            _ddim_final,
            "use alpha_bar_prev = 1.0 when t_prev < 0 (then sigma = 0 and x_prev = x0)",
        ),
        SubCheck(
            "noise std is eta * sqrt(beta_tilde') (Eq. 16)",
            _ddim_sigma,
            "sigma = eta * sqrt((1 - ab_prev) / (1 - ab_t) * (1 - ab_t / ab_prev)): "
            "eta must scale it",
        ),
        SubCheck(
            "matches Eq. 12 for a fixed generator (eta = 0.7)",
            _ddim_exact,
            "the deterministic part first, then "
            "sigma * torch.randn(x_t.shape, generator=generator)",
        ),
        SubCheck(
            "clipping re-derives eps from the clipped x0",
            _ddim_clip,
            "after x0 = x0.clamp(-1, 1), recompute eps = (x_t - sqrt(ab_t) x0) / sqrt(1 - ab_t); "
            "the direction term must point at the clipped x0",
        ),
        SubCheck(
            "inputs are not changed in place",
            _ddim_in_place,
            "build new tensors instead of x_t.sub_(...), x0.clamp_(...), eps.mul_(...)",
        ),
        SubCheck(
            "eta < 0 raises ValueError",
            _ddim_bad_eta,
            "check the argument first: if eta < 0: raise ValueError('eta must be >= 0, ...')",
        ),
    ]


def check_ddim_step(impl: Callable, *, verbose: bool = True) -> CheckReport:
    """Check ``ddim_step(x_t, eps, t, t_prev, alphas_cumprod, *, eta, clip_denoised, generator)``"""
    return run_checks("ddim_step", impl, verbose=verbose)


# --- respaced_betas(alphas_cumprod, timesteps) ------------------------------------------------


def _respaced_ref(ac: Tensor, ts: Tensor) -> Tensor:
    return step_coefficients(NoiseSchedule.from_alphas_cumprod(ac), ts).beta


def _resp_full(impl: Callable) -> None:
    s = NoiseSchedule(50)
    ts = torch.arange(49, -1, -1)
    err = tensor_diff(impl(s.alpha_bars, ts), s.betas.flip(0))
    expect(err < 1e-5, f"the full sequence T-1..0 should give the original betas; off by {err:.3g}")


def _resp_sub(impl: Callable) -> None:
    ac = _alphas_cumprod()
    for ts in (torch.tensor([99, 74, 49, 24, 0]), TimestepScheduler.trailing(100, 7)):
        err = tensor_diff(impl(ac, ts), _respaced_ref(ac, ts))
        expect(err < 1e-5, f"timesteps {ts.tolist()}: off by up to {err:.3g}")


def _resp_product(impl: Callable) -> None:
    ac = _alphas_cumprod("cosine")
    ts = torch.tensor([99, 90, 60, 31, 10, 3])
    betas = impl(ac, ts)
    expect(isinstance(betas, Tensor), f"expected a tensor, got {type(betas).__name__}")
    # Walking the sub-chain from clean data, prod(1 - beta') must land on each visited alpha_bar.
    prods = torch.cumprod((1 - betas.double()).flip(0), 0).flip(0)
    err = float((prods - ac[ts].double()).abs().max())
    expect(err < 1e-5, f"prod of (1 - beta') misses alpha_bar at the visited steps by {err:.3g}")


def _resp_last(impl: Callable) -> None:
    ac = _alphas_cumprod()
    ts = torch.tensor([80, 40, 12])
    betas = impl(ac, ts)
    expect(isinstance(betas, Tensor), f"expected a tensor, got {type(betas).__name__}")
    expect(
        abs(float(betas[-1]) - (1 - float(ac[12]))) < 1e-6,
        "the last step must use alpha_bar_prev=1",
    )


def _resp_in_place(impl: Callable) -> None:
    ac = _alphas_cumprod()
    ts = torch.tensor([99, 50, 0])
    ac_copy, ts_copy = ac.clone(), ts.clone()
    impl(ac, ts)
    expect(torch.equal(ac, ac_copy) and torch.equal(ts, ts_copy), "an input was changed in place")


@exercise("respaced_betas", notebook=NOTEBOOK, target="respaced_betas")
def _respaced_checks() -> list[SubCheck]:
    return [
        SubCheck(
            "all T steps give back the original betas",
            _resp_full,
            "beta'_i = 1 - alpha_bar[t_i] / alpha_bar[t_{i+1}], and 1 after the last entry",
        ),
        SubCheck(
            "a sub-sequence gives beta' = 1 - alpha_bar_t / alpha_bar_prev",
            _resp_sub,
            "alpha_bar_prev is alpha_bar at the NEXT entry of the sequence, not at t - 1: "
            "single-step betas across a skip are the known bug",
        ),
        SubCheck(
            "the respaced chain reaches every visited alpha_bar",
            _resp_product,
            "the product of (1 - beta') over the remaining steps must equal alpha_bar_t",
        ),
        SubCheck(
            "the last step goes to alpha_bar_prev = 1",
            _resp_last,
            "after the last timestep comes clean data: beta'_last = 1 - alpha_bar[t_last]",
        ),
        SubCheck("inputs are not changed in place", _resp_in_place, "do not modify the inputs"),
    ]


def check_respaced_betas(impl: Callable, *, verbose: bool = True) -> CheckReport:
    """Check ``respaced_betas(alphas_cumprod (T,), timesteps (N,) decreasing) -> (N,)``."""
    return run_checks("respaced_betas", impl, verbose=verbose)


# --- trailing_timesteps(total_timesteps, num_steps) -------------------------------------------


def _trailing_case(impl: Callable, T: int, n: int) -> Tensor:
    ts = impl(T, n)
    expect(isinstance(ts, Tensor), f"expected a tensor, got {type(ts).__name__}")
    expect(not ts.is_floating_point(), f"expected an integer (long) tensor, got {ts.dtype}")
    expect(ts.shape == (n,), f"T={T}, n={n}: expected {n} timesteps, got shape {tuple(ts.shape)}")
    return ts


def _trailing_start(impl: Callable) -> None:
    for T, n in ((1000, 10), (100, 7), (50, 50)):
        ts = _trailing_case(impl, T, n)
        expect(int(ts[0]) == T - 1, f"T={T}, n={n}: trailing must start at T-1, got {ts.tolist()}")
        expect(bool((ts[1:] < ts[:-1]).all()), f"not strictly decreasing: {ts.tolist()}")


def _trailing_match(impl: Callable) -> None:
    for T, n in ((1000, 10), (100, 7), (1000, 3), (50, 50)):
        got = _trailing_case(impl, T, n).tolist()
        want = TimestepScheduler.trailing(T, n).tolist()
        expect(got == want, f"T={T}, n={n}: got {got}, expected {want}")


@exercise("trailing_timesteps", notebook=NOTEBOOK, target="trailing_timesteps")
def _trailing_checks() -> list[SubCheck]:
    return [
        SubCheck(
            "starts at T-1 and decreases",
            _trailing_start,
            "trailing spacing counts back from the end: the first timestep is T-1 "
            "(arange(n) * (T // n) reversed is *leading*, which never visits T-1)",
        ),
        SubCheck(
            "round(arange(T, 0, -T / n)) - 1, also when n does not divide T",
            _trailing_match,
            "use the float step T / n and round, not the integer step T // n",
        ),
    ]


def check_trailing_timesteps(impl: Callable, *, verbose: bool = True) -> CheckReport:
    """Check ``trailing_timesteps(total_timesteps, num_steps) -> LongTensor (num_steps,)``."""
    return run_checks("trailing_timesteps", impl, verbose=verbose)


# --- karras_timesteps(total_timesteps, num_steps, alphas_cumprod, rho=7.0) --------------------

# Cases where rounding the ramp lands on distinct indices, so no de-duplication is needed.
KARRAS_CASES = ((1000, 10, "linear"), (1000, 5, "cosine"), (100, 8, "linear"))


def _karras_case(T: int, kind: str) -> Tensor:
    return NoiseSchedule(T, kind=kind).alpha_bars


def _karras_valid(impl: Callable) -> None:
    ts = impl(1000, 10, _karras_case(1000, "linear"))
    expect(isinstance(ts, Tensor), f"expected a tensor, got {type(ts).__name__}")
    expect(not ts.is_floating_point(), f"expected an integer (long) tensor, got {ts.dtype}")
    expect(ts.shape == (10,), f"expected 10 timesteps, got shape {tuple(ts.shape)}")
    expect(bool((ts[1:] < ts[:-1]).all()), f"not strictly decreasing: {ts.tolist()}")
    expect(int(ts[0]) == 999 and int(ts[-1]) == 0, f"should run from T-1 to 0, got {ts.tolist()}")


def _karras_match(impl: Callable, kind: str) -> None:
    for T, n, k in KARRAS_CASES:
        if k != kind:
            continue
        ac = _karras_case(T, kind)
        got = impl(T, n, ac)
        want = TimestepScheduler.karras(T, n, alphas_cumprod=ac)
        expect(isinstance(got, Tensor), f"expected a tensor, got {type(got).__name__}")
        expect(
            got.tolist() == want.tolist(),
            f"{kind} schedule, T={T}, n={n}: got {got.tolist()}, expected {want.tolist()}",
        )


def _karras_rho(impl: Callable) -> None:
    ac = _karras_case(1000, "linear")
    got = impl(1000, 10, ac, rho=3.0)
    want = TimestepScheduler.karras(1000, 10, alphas_cumprod=ac, rho=3.0)
    expect(isinstance(got, Tensor), f"expected a tensor, got {type(got).__name__}")
    expect(got.tolist() == want.tolist(), f"rho=3: got {got.tolist()}, expected {want.tolist()}")


@exercise("karras_timesteps", notebook=NOTEBOOK, target="karras_timesteps")
def _karras_checks() -> list[SubCheck]:
    return [
        SubCheck(
            "strictly decreasing integer timesteps from T-1 to 0",
            _karras_valid,
            "return ts.round().long() in decreasing order; with the schedule's own sigma_min and "
            "sigma_max the ends map to 0 and T-1",
        ),
        SubCheck(
            "matches TimestepScheduler.karras on a linear schedule",
            lambda impl: _karras_match(impl, "linear"),
            "sigma_i = (s_max^(1/rho) + i/(n-1) (s_min^(1/rho) - s_max^(1/rho)))^rho, then place "
            "each "
            "sigma by interpolating log sigma(t), sigma(t) = sqrt((1 - ab_t) / ab_t); a linear "
            "rescale of sigma to [0, T-1] is the known bug",
        ),
        SubCheck(
            "matches TimestepScheduler.karras on a cosine schedule",
            lambda impl: _karras_match(impl, "cosine"),
            "the mapping must go through this schedule's own sigma(t), not a fixed formula",
        ),
        SubCheck("rho is used", _karras_rho, "the exponent of the ramp is rho (7 by default)"),
    ]


def check_karras_timesteps(impl: Callable, *, verbose: bool = True) -> CheckReport:
    """Check ``karras_timesteps(total_timesteps, num_steps, alphas_cumprod, rho=7.0)``."""
    return run_checks("karras_timesteps", impl, verbose=verbose)
