"""Notebook 06 checks: the solutions pass; each wrong answer fails the right sub-check."""

from __future__ import annotations

import math
from functools import partial

import torch
from check_harness import case_tests, failed, with_mistake

from toydiff.checks import check_ddpm_step, check_spot_the_bug

# --- ddpm_step: wrong answers ----------------------------------------------------------------


def _step(
    x_t,
    eps,
    t,
    schedule,
    *,
    variance="beta_tilde",
    clip_denoised=False,
    generator=None,
    sigma_fn=None,
    noise_fn=None,
    index_shift=0,
    clip_bug=None,
    last_noise=False,
    in_place=False,
):
    """A parameterised ddpm_step; each keyword reproduces one mistake."""
    i = t + index_shift
    beta = float(schedule.betas[i])
    ab = float(schedule.alpha_bars[i])
    ab_prev = float(schedule.alpha_bars_prev[i])
    if clip_denoised and clip_bug != "ignored":
        x0 = ((x_t - math.sqrt(1 - ab) * eps) / math.sqrt(ab)).clamp(-1, 1)
        prev = ab if clip_bug == "alpha_bar" else ab_prev
        mean = (math.sqrt(prev) * beta * x0 + math.sqrt(1 - beta) * (1 - prev) * x_t) / (1 - ab)
    elif in_place:
        mean = x_t.sub_(beta / math.sqrt(1 - ab) * eps).div_(math.sqrt(1 - beta))
    else:
        mean = (x_t - beta / math.sqrt(1 - ab) * eps) / math.sqrt(1 - beta)
    if t == 0 and not last_noise:
        return mean
    var = float(schedule.posterior_variance[i]) if variance == "beta_tilde" else beta
    sigma = sigma_fn(var, beta) if sigma_fn else math.sqrt(var)
    z = noise_fn(x_t, generator) if noise_fn else torch.randn(x_t.shape, generator=generator)
    return mean + sigma * z


_with = partial(with_mistake, _step)


def _uniform(x, g):
    return (torch.rand(x.shape, generator=g) - 0.5) * math.sqrt(12)


STEP_BUGS = {
    "beta instead of sqrt (known error 1)": (
        _with(sigma_fn=lambda var, beta: beta),
        "noise std is sqrt(beta_tilde_t) by default",
    ),
    "variance ignored": (
        _with(sigma_fn=lambda var, beta: math.sqrt(var) if var != beta else 0.5 * math.sqrt(beta)),
        "variance='beta' uses sigma_t = sqrt(beta_t)",
    ),
    "uniform noise": (_with(noise_fn=_uniform), "the noise is Gaussian"),
    "global RNG": (
        _with(noise_fn=lambda x, g: torch.randn(x.shape)),
        "same generator, same result",
    ),
    "noise at the last step": (_with(last_noise=True), "no noise at the last step (t = 0)"),
    "1-based index (t - 1)": (
        lambda x, e, t, s, **k: _step(x, e, t, s, **k, index_shift=-1 if t > 0 else 0),
        "mean follows Eq. 11 at t = 0, 1, 37, 99",
    ),
    "clipped mean overwritten (known error 4)": (
        _with(clip_bug="ignored"),
        "clip_denoised clamps the predicted x0 and uses the x0-form mean",
    ),
    "alpha_bar instead of alpha_bar_prev in Eq. 7": (
        _with(clip_bug="alpha_bar"),
        "clipping changes nothing when x0 is inside [-1, 1]",
    ),
    "in-place update of x_t": (_with(in_place=True), "x_t and eps are not changed in place"),
}


# --- spot the bug: the four bugs, one at a time and all together -----------------------------


def _loop(
    eps_fn,
    x_T,
    schedule,
    *,
    clip_denoised=False,
    generator=None,
    skip_last=False,
    beta_noise=False,
    overwrite_clip=False,
    in_place=False,
):
    x = x_T if in_place else x_T.clone()
    stop = 0 if skip_last else -1
    for t in range(len(schedule) - 1, stop, -1):
        beta = float(schedule.betas[t])
        ab, ab_prev = float(schedule.alpha_bars[t]), float(schedule.alpha_bars_prev[t])
        eps = eps_fn(x, t)
        if clip_denoised and not overwrite_clip:
            x0 = ((x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)).clamp(-1, 1)
            mean = (math.sqrt(ab_prev) * beta * x0 + math.sqrt(1 - beta) * (1 - ab_prev) * x) / (
                1 - ab
            )
        else:
            mean = (x - beta / math.sqrt(1 - ab) * eps) / math.sqrt(1 - beta)
        if in_place:
            x.copy_(mean)
        else:
            x = mean
        if t > 0:
            sigma = beta if beta_noise else math.sqrt(float(schedule.posterior_variance[t]))
            x = x + sigma * torch.randn(x.shape, generator=generator)
    return x


_loop_with = partial(with_mistake, _loop)


LOOP_BUGS = {
    "stops before index 0": (
        _loop_with(skip_last=True),
        "visits every timestep index T-1, ..., 0 once",
    ),
    "beta instead of sqrt (known error 1)": (
        _loop_with(beta_noise=True),
        "noise scale is sqrt(beta_tilde_t) (zero model, exact variance)",
    ),
    "clipped mean overwritten (known error 4)": (
        _loop_with(overwrite_clip=True),
        "clip_denoised=True really clips",
    ),
    "x_T updated in place": (_loop_with(in_place=True), "x_T is not changed in place"),
}


TestNotebookChecks = case_tests(
    [
        (check_ddpm_step, "ddpm_step", STEP_BUGS),
        (check_spot_the_bug, "spot_the_bug", LOOP_BUGS),
    ]
)


def test_spot_the_bug_all_four_bugs_are_named() -> None:
    report = check_spot_the_bug(
        _loop_with(skip_last=True, beta_noise=True, overwrite_clip=True, in_place=True),
        verbose=False,
    )
    assert {name for _, name in LOOP_BUGS.values()} <= failed(report), str(report)
