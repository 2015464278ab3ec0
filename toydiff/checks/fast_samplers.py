"""Checks for notebook 09 (fast samplers): ``half_log_snr`` and ``dpmpp_2m_step``.

The reference is DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2) for a variance-preserving
schedule, ``alpha_t = sqrt(alpha_bar_t)``, ``sigma_t = sqrt(1 - alpha_bar_t)``,
``lambda_t = log(alpha_t / sigma_t)``, written out below; its first-order step is DDIM with
eta = 0 (Eq. 12), checked independently.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from toydiff.checks.common import expect_tensor, gen, max_diff, tensor_diff
from toydiff.checks.core import CheckReport, SubCheck, exercise, expect, run_checks
from toydiff.schedule import NoiseSchedule

NOTEBOOK = "09_fast_samplers"
SHAPE = (4, 3, 5, 5)


# --- half_log_snr(alpha_bar) ------------------------------------------------------------------


def _lambda_values(impl: Callable) -> None:
    for kind in ("linear", "cosine"):
        ab = NoiseSchedule(100, kind=kind).alpha_bars.double()
        want = 0.5 * torch.log(ab / (1 - ab))
        err = tensor_diff(impl(ab), want)
        expect(err < 1e-6, f"{kind} schedule: off by up to {err:.3g}")


def _lambda_decreasing(impl: Callable) -> None:
    got = expect_tensor(impl(NoiseSchedule(100).alpha_bars.double()), (100,))
    expect(bool((got[1:] < got[:-1]).all()), "lambda must decrease as t (the noise) grows")


def _lambda_in_place(impl: Callable) -> None:
    ab = NoiseSchedule(100).alpha_bars.double()
    copy = ab.clone()
    impl(ab)
    expect(torch.equal(ab, copy), "alpha_bar was changed in place")


@exercise("half_log_snr", notebook=NOTEBOOK, target="half_log_snr")
def _half_log_snr_checks() -> list[SubCheck]:
    return [
        SubCheck(
            "lambda = log(alpha_t / sigma_t) = 0.5 log(alpha_bar / (1 - alpha_bar))",
            _lambda_values,
            "alpha_t = sqrt(alpha_bar) and sigma_t = sqrt(1 - alpha_bar): the square roots give "
            "the factor 1/2 (the log-SNR itself is twice lambda)",
        ),
        SubCheck(
            "lambda decreases along the schedule",
            _lambda_decreasing,
            "more noise means a lower signal-to-noise ratio: check the ratio is alpha_bar over "
            "1 - alpha_bar, not the other way round",
        ),
        SubCheck("alpha_bar is not changed in place", _lambda_in_place, "do not use in-place ops"),
    ]


def check_half_log_snr(impl: Callable, *, verbose: bool = True) -> CheckReport:
    """Check ``half_log_snr(alpha_bar: Tensor) -> Tensor``."""
    return run_checks("half_log_snr", impl, verbose=verbose)


# --- dpmpp_2m_step(x, denoised, old_denoised, alpha_bar, alpha_bar_next, alpha_bar_old=None) ---


def _lam(ab: float) -> float:
    return 0.5 * math.log(ab / (1 - ab))


def _ref_2m(
    x: Tensor,
    d: Tensor,
    d_old: Tensor | None,
    ab: float,
    ab_next: float,
    ab_old: float | None,
) -> Tensor:
    if ab_next >= 1:
        return d.clone()
    h = _lam(ab_next) - _lam(ab)
    if d_old is None or ab_old is None:
        D = d
    else:
        r = (_lam(ab) - _lam(ab_old)) / h
        D = (1 + 1 / (2 * r)) * d - 1 / (2 * r) * d_old
    return math.sqrt((1 - ab_next) / (1 - ab)) * x - math.sqrt(ab_next) * math.expm1(-h) * D


def _case() -> tuple[Tensor, Tensor, Tensor, list[float]]:
    g = gen(0)
    x = torch.randn(SHAPE, generator=g)
    d = torch.rand(SHAPE, generator=g) * 2 - 1
    d_old = torch.rand(SHAPE, generator=g) * 2 - 1
    ab = NoiseSchedule(100).alpha_bars.tolist()
    return x, d, d_old, ab


def _first_order(impl: Callable) -> None:
    x, d, _, ab = _case()
    for t, t_next in ((99, 80), (40, 10)):
        a, a_next = ab[t], ab[t_next]
        eps = (x - math.sqrt(a) * d) / math.sqrt(1 - a)
        want = math.sqrt(a_next) * d + math.sqrt(1 - a_next) * eps  # DDIM Eq. 12, eta = 0
        err = tensor_diff(impl(x, d, None, a, a_next, None), want)
        expect(err < 1e-4, f"t={t} -> {t_next}: differs from a DDIM step by {err:.3g}")


def _second_order(impl: Callable) -> None:
    x, d, d_old, ab = _case()
    for t_old, t, t_next in ((99, 80, 60), (60, 30, 25), (20, 9, 2)):
        want = _ref_2m(x, d, d_old, ab[t], ab[t_next], ab[t_old])
        err = tensor_diff(impl(x, d, d_old, ab[t], ab[t_next], ab[t_old]), want)
        expect(err < 1e-4, f"steps {t_old} -> {t} -> {t_next}: off by up to {err:.3g}")


def _second_order_uses_history(impl: Callable) -> None:
    x, d, d_old, ab = _case()
    a = impl(x, d, d_old, ab[30], ab[20], ab[60])
    b = impl(x, d, None, ab[30], ab[20], None)
    expect(
        max_diff(expect_tensor(a, x.shape), expect_tensor(b, x.shape)) > 1e-3,
        "the previous x0 prediction changed nothing: is the second-order correction applied?",
    )


def _last_step(impl: Callable) -> None:
    x, d, d_old, ab = _case()
    for old in ((None, None), (d_old, ab[9])):
        # nan or inf in the output makes err nan or inf, so this also rejects non-finite steps
        err = tensor_diff(impl(x, d, old[0], ab[4], 1.0, old[1]), d)
        expect(
            err < 1e-5, f"alpha_bar_next = 1 must return the denoised estimate (off by {err:.3g})"
        )


def _in_place(impl: Callable) -> None:
    x, d, d_old, ab = _case()
    copies = [x.clone(), d.clone(), d_old.clone()]
    impl(x, d, d_old, ab[30], ab[20], ab[60])
    for name, before, after in zip(
        ("x", "denoised", "old_denoised"), copies, (x, d, d_old), strict=True
    ):
        expect(torch.equal(before, after), f"{name} was changed in place")


@exercise("dpmpp_2m_step", notebook=NOTEBOOK, target="dpmpp_2m_step")
def _dpmpp_checks() -> list[SubCheck]:
    return [
        SubCheck(
            "first step (no previous x0) equals a DDIM step with eta = 0",
            _first_order,
            "D = denoised; x_next = (sigma_next / sigma) x - alpha_next * expm1(-h) * D with "
            "h = lambda_next - lambda and lambda = 0.5 log(alpha_bar / (1 - alpha_bar))",
        ),
        SubCheck(
            "second-order steps follow DPM-Solver++(2M)",
            _second_order,
            "r = h_old / h with h_old = lambda - lambda_old; "
            "D = (1 + 1/(2r)) denoised - 1/(2r) old_denoised",
        ),
        SubCheck(
            "the previous prediction is used",
            _second_order_uses_history,
            "with old_denoised given, combine it with denoised (the multistep correction)",
        ),
        SubCheck(
            "the last step (alpha_bar_next = 1) returns the denoised estimate",
            _last_step,
            "sigma_next = 0 there (lambda_next is infinite): return denoised directly, "
            "first order, without computing r",
        ),
        SubCheck("inputs are not changed in place", _in_place, "build new tensors"),
    ]


def check_dpmpp_2m_step(impl: Callable, *, verbose: bool = True) -> CheckReport:
    """Check ``dpmpp_2m_step(x, denoised, old_denoised, ab, ab_next, ab_old)`` (ab: alpha_bar)."""
    return run_checks("dpmpp_2m_step", impl, verbose=verbose)
