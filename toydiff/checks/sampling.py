"""Checks for notebook 06 (sampling, Algorithm 2): ``ddpm_step`` and the "spot the bug" sampler.

Every sub-check compares the student's code with toydiff's own reverse chain
(:func:`toydiff.sampling.ddpm_loop` over :func:`toydiff.step_coefficients`) or with a closed form
derived from the DDPM paper, on a fixed linear schedule with T = 100 and fixed noise predictors.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from toydiff.checks.common import gen, tensor_diff
from toydiff.checks.core import CheckReport, SubCheck, exercise, expect, run_checks
from toydiff.sampling import ddpm_loop
from toydiff.schedule import NoiseSchedule, step_coefficients

NOTEBOOK = "06_sampling"
SHAPE = (4, 3, 5, 5)


def _schedule() -> NoiseSchedule:
    return NoiseSchedule(100)


def _ref_ddpm_step(
    x: Tensor,
    eps: Tensor,
    t: int,
    schedule: NoiseSchedule,
    *,
    variance: str = "beta_tilde",
    clip_denoised: bool = False,
    generator: torch.Generator | None = None,
) -> Tensor:
    """One reverse step ``t -> t - 1`` from toydiff's shared coefficients (Eq. 11, or Eq. 7 with a
    clamped x0), then ``sigma_t * randn`` unless ``t = 0``."""
    c = step_coefficients(schedule, torch.arange(t, -1, -1))
    if clip_denoised:
        x0 = ((x - float(c.sqrt_one_minus_alpha_bar[0]) * eps) / float(c.sqrt_alpha_bar[0])).clamp(
            -1, 1
        )
        mean = float(c.posterior_coef_x0[0]) * x0 + float(c.posterior_coef_xt[0]) * x
    else:
        mean = (x - float(c.eps_coef[0]) * eps) * float(c.recip_sqrt_alpha[0])
    if t == 0:
        return mean
    var = c.posterior_variance[0] if variance == "beta_tilde" else c.beta[0]
    return mean + math.sqrt(float(var)) * torch.randn(x.shape, generator=generator)


# ---------------------------------------------------------------------------------------------
# ddpm_step(x_t, eps, t, schedule, *, variance="beta_tilde", clip_denoised=False, generator=None)
# ---------------------------------------------------------------------------------------------


def _step_mean(impl: Callable) -> None:
    s = _schedule()
    x = torch.randn(SHAPE, generator=gen(1))
    eps = torch.randn(SHAPE, generator=gen(2))
    for t in (0, 1, 37, 99):
        if t == 0:
            got, want = impl(x, eps, t, s), _ref_ddpm_step(x, eps, t, s)
        else:  # the mean is the output minus the noise the same generator draws
            got = impl(x, eps, t, s, generator=gen(3))
            want = _ref_ddpm_step(x, eps, t, s, generator=gen(3))
        err = tensor_diff(got, want)
        expect(err < 1e-4, f"at t={t} the result is off by up to {err:.3g}")


def _step_last_no_noise(impl: Callable) -> None:
    s = _schedule()
    x = torch.randn(SHAPE, generator=gen(1))
    eps = torch.randn(SHAPE, generator=gen(2))
    for variance in ("beta_tilde", "beta"):
        a = impl(x, eps, 0, s, variance=variance, generator=gen(5))
        b = impl(x, eps, 0, s, variance=variance, generator=gen(6))
        expect(tensor_diff(a, b) == 0, f"variance={variance!r}: two generators give different x_0")


def _step_generator(impl: Callable) -> None:
    s = _schedule()
    x = torch.randn(SHAPE, generator=gen(1))
    eps = torch.randn(SHAPE, generator=gen(2))
    a = impl(x, eps, 50, s, generator=gen(7))
    b = impl(x, eps, 50, s, generator=gen(7))
    c = impl(x, eps, 50, s, generator=gen(8))
    expect(tensor_diff(a, b) == 0, "the same generator seed gave different results")
    expect(tensor_diff(a, c) > 0, "different generator seeds gave the same result: is noise added?")


def _noise_only(impl: Callable, t: int, variance: str) -> Tensor:
    """With x_t = 0 and eps = 0 the step returns just the noise term ``sigma_t * z``."""
    s = _schedule()
    zeros = torch.zeros(1000, 3, 5, 5)
    out = impl(zeros, zeros, t, s, variance=variance, generator=gen(11))
    expect(isinstance(out, Tensor), f"expected a tensor, got {type(out).__name__}")
    return out.float()


def _step_sigma(impl: Callable, variance: str) -> None:
    s = _schedule()
    for t in (2, 60):
        var = s.posterior_variance[t] if variance == "beta_tilde" else s.betas[t]
        want = math.sqrt(float(var))
        got = float(_noise_only(impl, t, variance).std())
        expect(
            abs(got / want - 1) < 0.03,
            f"variance={variance!r}, t={t}: noise std {got:.4g}, expected {want:.4g}",
        )


def _step_gaussian(impl: Callable) -> None:
    z = _noise_only(impl, 60, "beta_tilde").flatten()
    z = (z - z.mean()) / z.std()
    kurtosis = float((z**4).mean())
    expect(abs(kurtosis - 3) < 0.25, f"noise kurtosis {kurtosis:.2f}; a Gaussian has 3")


def _step_exact(impl: Callable) -> None:
    s = _schedule()
    x = torch.randn(SHAPE, generator=gen(1))
    eps = torch.randn(SHAPE, generator=gen(2))
    err = tensor_diff(
        impl(x, eps, 42, s, generator=gen(9)), _ref_ddpm_step(x, eps, 42, s, generator=gen(9))
    )
    expect(err < 1e-4, f"differs from toydiff's step by up to {err:.3g}")


def _wild_eps(x: Tensor, s: NoiseSchedule, t: int) -> Tensor:
    """A noise prediction whose x0 estimate lies far outside [-1, 1]."""
    ab = float(s.alpha_bars[t])
    x0 = 3 * torch.sign(x) + x
    return (x - math.sqrt(ab) * x0) / math.sqrt(1 - ab)


def _step_clip(impl: Callable) -> None:
    s = _schedule()
    x = torch.randn(SHAPE, generator=gen(1))
    # Not t = 0: there 1 - alpha_bar is 1e-4 and float32 rounding of alpha_bar alone moves x0.
    for t in (5, 30):
        eps = _wild_eps(x, s, t)
        got = impl(x, eps, t, s, clip_denoised=True, generator=gen(4))
        want = _ref_ddpm_step(x, eps, t, s, clip_denoised=True, generator=gen(4))
        unclipped = _ref_ddpm_step(x, eps, t, s, generator=gen(4))
        expect(
            tensor_diff(got, unclipped) > 1e-3,
            f"at t={t}, clip_denoised=True gave the unclipped result: is the clipped mean used?",
        )
        err = tensor_diff(got, want)
        expect(err < 1e-3, f"at t={t} the clipped result is off by up to {err:.3g}")


def _step_clip_inactive(impl: Callable) -> None:
    s = _schedule()
    x = torch.randn(SHAPE, generator=gen(1)) * 0.3
    ab = float(s.alpha_bars[40])
    x0 = torch.rand(SHAPE, generator=gen(3)) * 1.6 - 0.8  # inside [-1, 1]: clamping is a no-op
    eps = (x - math.sqrt(ab) * x0) / math.sqrt(1 - ab)
    a = impl(x, eps, 40, s, clip_denoised=True, generator=gen(4))
    b = impl(x, eps, 40, s, clip_denoised=False, generator=gen(4))
    err = tensor_diff(a, b)
    expect(err < 1e-4, f"x0 inside [-1, 1], yet clipping changed the result by {err:.3g}")


def _step_in_place(impl: Callable) -> None:
    s = _schedule()
    x = torch.randn(SHAPE, generator=gen(1))
    eps = _wild_eps(x, s, 30)
    x_copy, eps_copy = x.clone(), eps.clone()
    for clip in (False, True):
        impl(x, eps, 30, s, clip_denoised=clip, generator=gen(4))
        expect(torch.equal(x, x_copy), "x_t was changed in place")
        expect(torch.equal(eps, eps_copy), "eps was changed in place")


@exercise("ddpm_step", notebook=NOTEBOOK, target="ddpm_step")
def _ddpm_step_checks() -> list[SubCheck]:
    return [
        SubCheck(
            "mean follows Eq. 11 at t = 0, 1, 37, 99",
            _step_mean,
            "mean = (x_t - beta_t / sqrt(1 - alpha_bar_t) * eps) / sqrt(alpha_t), with t a 0-based "
            "index into schedule.betas / schedule.alpha_bars (no t-1 or t+1)",
        ),
        SubCheck(
            "no noise at the last step (t = 0)",
            _step_last_no_noise,
            "Algorithm 2 sets z = 0 at index t = 0: return the mean there, for both variances",
        ),
        SubCheck(
            "same generator, same result",
            _step_generator,
            "draw the noise with torch.randn(x_t.shape, generator=generator), not the global RNG",
        ),
        SubCheck(
            "noise std is sqrt(beta_tilde_t) by default",
            lambda impl: _step_sigma(impl, "beta_tilde"),
            "sigma_t = sqrt(schedule.posterior_variance[t]): the standard deviation is the square "
            "root of the variance (scaling by beta_t itself is a known bug of one reference text)",
        ),
        SubCheck(
            "variance='beta' uses sigma_t = sqrt(beta_t)",
            lambda impl: _step_sigma(impl, "beta"),
            "with variance='beta' the noise is sqrt(beta_t) * z",
        ),
        SubCheck(
            "the noise is Gaussian",
            _step_gaussian,
            "z ~ N(0, I): torch.randn, not torch.rand",
        ),
        SubCheck(
            "matches toydiff's step for a fixed generator",
            _step_exact,
            "compute the mean first, then draw one torch.randn(x_t.shape, generator=generator)",
        ),
        SubCheck(
            "clip_denoised clamps the predicted x0 and uses the x0-form mean",
            _step_clip,
            "x0 = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t), clamp to [-1, 1], then "
            "mean = beta_t sqrt(alpha_bar_prev) / (1 - alpha_bar_t) x0 + (1 - alpha_bar_prev) "
            "sqrt(alpha_t) / (1 - alpha_bar_t) x_t (Eq. 7); keep that mean, do not overwrite it",
        ),
        SubCheck(
            "clipping changes nothing when x0 is inside [-1, 1]",
            _step_clip_inactive,
            "the x0-form mean (Eq. 7) must equal the eps-form mean (Eq. 11) when nothing is "
            "clamped: "
            "check the coefficients and alpha_bar_prev = schedule.alpha_bars_prev[t]",
        ),
        SubCheck(
            "x_t and eps are not changed in place",
            _step_in_place,
            "build new tensors (x_t - ..., .clamp(...)) instead of x_t.sub_(...), .clamp_(...)",
        ),
    ]


def check_ddpm_step(impl: Callable, *, verbose: bool = True) -> CheckReport:
    """Check ``ddpm_step(x_t, eps, t, schedule, *, variance, clip_denoised, generator)``."""
    return run_checks("ddpm_step", impl, verbose=verbose)


# ---------------------------------------------------------------------------------------------
# spot the bug: sample_loop(eps_fn, x_T, schedule, *, clip_denoised=False, generator=None)
# ---------------------------------------------------------------------------------------------


def _linear_eps(x: Tensor, t: int) -> Tensor:
    """A fixed, time-dependent noise predictor (stands in for a trained model)."""
    return 0.6 * x + 0.01 * (t % 7)


def _ref_loop(
    eps_fn: Callable, x_T: Tensor, schedule: NoiseSchedule, clip: bool, seed: int
) -> Tensor:
    return ddpm_loop(
        eps_fn, x_T.clone(), step_coefficients(schedule), clip_denoised=clip, generator=gen(seed)
    )


def _loop_visits(impl: Callable) -> None:
    s = NoiseSchedule(20)
    seen: list[int] = []

    def spy(x: Tensor, t: int) -> Tensor:
        seen.append(int(t))
        return torch.zeros_like(x)

    impl(spy, torch.randn(SHAPE, generator=gen(1)), s, generator=gen(2))
    want = list(range(19, -1, -1))
    expect(seen == want, f"eps_fn was called at {seen[:3]}...{seen[-3:]}, expected 19, 18, ..., 0")


def _loop_sigma(impl: Callable) -> None:
    # With x_T = 0 and eps = 0 the chain is x <- x / sqrt(alpha_t) + sigma_t z, so the final
    # variance is sum_{t >= 1} sigma_t^2 / prod_{s < t} alpha_s.
    s = _schedule()
    zeros = torch.zeros(400, 3, 5, 5)
    out = impl(lambda x, t: torch.zeros_like(x), zeros, s, generator=gen(3))
    expect(isinstance(out, Tensor), f"expected a tensor, got {type(out).__name__}")
    var, prod = 0.0, 1.0
    for t in range(len(s)):
        if t > 0:
            var += float(s.posterior_variance[t]) / prod
        prod *= float(s.alphas[t])
    got = float(out.float().var())
    expect(abs(got / var - 1) < 0.05, f"x_0 variance {got:.4g}, expected {var:.4g}")


def _loop_clip(impl: Callable) -> None:
    s = NoiseSchedule(30)
    x_T = torch.randn(SHAPE, generator=gen(1))

    def wild(x: Tensor, t: int) -> Tensor:
        return _wild_eps(x, s, t)

    got = impl(wild, x_T, s, clip_denoised=True, generator=gen(4))
    err = tensor_diff(got, _ref_loop(wild, x_T, s, True, 4))
    expect(
        tensor_diff(got, _ref_loop(wild, x_T, s, False, 4)) > 1e-3,
        "clip_denoised=True gave the unclipped result: is the clipped mean overwritten?",
    )
    expect(err < 1e-3, f"the clipped chain differs from Algorithm 2 with clipping by {err:.3g}")


def _loop_in_place(impl: Callable) -> None:
    x_T = torch.randn(SHAPE, generator=gen(1))
    copy = x_T.clone()
    impl(_linear_eps, x_T, NoiseSchedule(20), generator=gen(2))
    expect(torch.equal(x_T, copy), "x_T was changed in place: the caller's tensor is gone")


def _loop_exact(impl: Callable) -> None:
    s = _schedule()
    x_T = torch.randn(SHAPE, generator=gen(1))
    got = impl(_linear_eps, x_T, s, generator=gen(5))
    err = tensor_diff(got, _ref_loop(_linear_eps, x_T, s, False, 5))
    expect(err < 1e-3, f"differs from toydiff's Algorithm 2 by up to {err:.3g}")


def _loop_generator(impl: Callable) -> None:
    x_T = torch.randn(SHAPE, generator=gen(1))
    s = NoiseSchedule(20)
    a = impl(_linear_eps, x_T, s, generator=gen(6))
    b = impl(_linear_eps, x_T, s, generator=gen(6))
    expect(tensor_diff(a, b) == 0, "the same generator seed gave different samples")


@exercise("spot_the_bug", notebook=NOTEBOOK, target="sample_loop")
def _spot_the_bug_checks() -> list[SubCheck]:
    return [
        SubCheck(
            "visits every timestep index T-1, ..., 0 once",
            _loop_visits,
            "loop over range(T - 1, -1, -1): range(T - 1, 0, -1) never takes the final step to x_0",
        ),
        SubCheck(
            "noise scale is sqrt(beta_tilde_t) (zero model, exact variance)",
            _loop_sigma,
            "sigma_t is a standard deviation: sqrt(schedule.posterior_variance[t]), not beta_t",
        ),
        SubCheck(
            "clip_denoised=True really clips",
            _loop_clip,
            "the clipped x0-form mean must be the one used: do not recompute the unclipped mean "
            "after it",
        ),
        SubCheck(
            "x_T is not changed in place",
            _loop_in_place,
            "start from x = x_T.clone(), or write x = x - ... instead of x -= ...",
        ),
        SubCheck(
            "same generator, same samples",
            _loop_generator,
            "every draw must use generator=generator",
        ),
        SubCheck(
            "matches Algorithm 2 for a fixed generator",
            _loop_exact,
            "per step: eps = eps_fn(x, t), the mean, then (t > 0) one "
            "torch.randn(x.shape, generator=generator) scaled by sigma_t",
        ),
    ]


def check_spot_the_bug(impl: Callable, *, verbose: bool = True) -> CheckReport:
    """Check the fixed ``sample_loop(eps_fn, x_T, schedule, *, clip_denoised, generator)``."""
    return run_checks("spot_the_bug", impl, verbose=verbose)
