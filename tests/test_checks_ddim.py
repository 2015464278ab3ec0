"""Notebook 07 checks: the solutions pass; each wrong answer fails the right sub-check."""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import torch
from check_harness import case_tests, with_mistake

from toydiff import NoiseSchedule
from toydiff.checks import (
    check_ddim_step,
    check_karras_timesteps,
    check_respaced_betas,
    check_trailing_timesteps,
)

# --- ddim_step --------------------------------------------------------------------------------


def _ddim(
    x_t,
    eps,
    t,
    t_prev,
    ac,
    *,
    eta=0.0,
    clip_denoised=False,
    generator=None,
    keep_eps=False,
    ignore_eta=False,
    adjacent=False,
    wrap_last=False,
    always_noise=False,
    no_sqrt=False,
    in_place=False,
    no_eta_check=False,
    global_rng=False,
):
    if eta < 0 and not no_eta_check:
        raise ValueError("eta must be >= 0")
    if adjacent:
        t_prev = t - 1
    ab = float(ac[t])
    ab_prev = float(ac[t_prev]) if (t_prev >= 0 or wrap_last) else 1.0
    x0 = (x_t - math.sqrt(1 - ab) * eps) / math.sqrt(ab)
    if clip_denoised:
        x0 = x0.clamp(-1, 1)
        if in_place:
            eps.mul_(1.0)
            x_t.mul_(1.0).add_(0.0)
            eps.copy_((x_t - math.sqrt(ab) * x0) / math.sqrt(1 - ab))
        elif not keep_eps:
            eps = (x_t - math.sqrt(ab) * x0) / math.sqrt(1 - ab)
    var = (1 - ab_prev) / (1 - ab) * (1 - ab / ab_prev)
    sigma = (0.0 if ignore_eta else eta) * (var if no_sqrt else math.sqrt(var))
    out = math.sqrt(ab_prev) * x0 + math.sqrt(max(1 - ab_prev - sigma**2, 0.0)) * eps
    if sigma > 0 or always_noise:
        g = None if (global_rng or always_noise) else generator
        out = out + sigma * torch.randn(x_t.shape, generator=g)
        if always_noise:
            out = out + 1e-3 * torch.randn(x_t.shape)
    return out


_ddim_with = partial(with_mistake, _ddim)


DDIM_BUGS = {
    "clamped x0 but unclamped eps (known error 8)": (
        _ddim_with(keep_eps=True),
        "clipping re-derives eps from the clipped x0",
    ),
    "eta ignored (known error 8)": (
        _ddim_with(ignore_eta=True),
        "noise std is eta * sqrt(beta_tilde') (Eq. 16)",
    ),
    "previous timestep is t - 1": (
        _ddim_with(adjacent=True),
        "eta = 0 follows DDIM Eq. 12, also across skipped steps",
    ),
    "t_prev = -1 wraps to alphas_cumprod[-1]": (
        _ddim_with(wrap_last=True),
        "the last step (t_prev = -1) goes to alpha_bar = 1 and returns x0",
    ),
    "noise drawn at eta = 0": (_ddim_with(always_noise=True), "eta = 0 adds no noise"),
    "variance used as std": (
        _ddim_with(no_sqrt=True),
        "noise std is eta * sqrt(beta_tilde') (Eq. 16)",
    ),
    "in-place update": (_ddim_with(in_place=True), "inputs are not changed in place"),
    "eta < 0 accepted": (_ddim_with(no_eta_check=True), "eta < 0 raises ValueError"),
    "global RNG": (_ddim_with(global_rng=True), "matches Eq. 12 for a fixed generator (eta = 0.7)"),
}


# --- respaced_betas ---------------------------------------------------------------------------


def _single_step(ac, ts):  # known error 5
    betas = 1 - ac.double() / torch.cat([ac.new_ones(1), ac[:-1]]).double()
    return betas[ts].float()


def _last_to_zero(ac, ts):
    ab = ac.double()[ts]
    ab_prev = torch.cat([ab[1:], ac.double()[:1]])
    return (1 - ab / ab_prev).float()


def _respaced_in_place(ac, ts):
    ab = ac[ts]
    ac.mul_(1.0).add_(0.0)
    ts.add_(0)
    ab_prev = torch.cat([ab[1:], ab.new_ones(1)])
    out = 1 - ab.double() / ab_prev.double()
    ac[0] = ac[0] * 0.5
    return out.float()


RESPACED_BUGS = {
    "single-step betas across a skip (known error 5)": (
        _single_step,
        "a sub-sequence gives beta' = 1 - alpha_bar_t / alpha_bar_prev",
    ),
    "last step to alpha_bar[0] instead of 1": (
        _last_to_zero,
        "the last step goes to alpha_bar_prev = 1",
    ),
    "modifies alphas_cumprod": (_respaced_in_place, "inputs are not changed in place"),
}


# --- trailing_timesteps -----------------------------------------------------------------------


def _leading(T, n):  # known error 6: this is the *leading* spacing
    return (torch.arange(n) * (T // n)).flip(0)


def _integer_step(T, n):
    return T - 1 - torch.arange(n) * (T // n)


TRAILING_BUGS = {
    "leading under the name trailing (known error 6)": (_leading, "starts at T-1 and decreases"),
    "integer step T // n": (
        _integer_step,
        "round(arange(T, 0, -T / n)) - 1, also when n does not divide T",
    ),
}


# --- karras_timesteps -------------------------------------------------------------------------


def _karras(
    T,
    n,
    ac,
    rho=7.0,
    *,
    linear_rescale=False,
    fixed_rho=False,
    increasing=False,
    own_schedule=False,
):
    if own_schedule:
        ac = NoiseSchedule(T).alpha_bars
    rho = 7.0 if fixed_rho else rho
    ab = ac.double()
    sig_t = ((1 - ab) / ab).sqrt().numpy()
    lo, hi = sig_t[0], sig_t[-1]
    ramp = np.linspace(0, 1, n)
    sig = (hi ** (1 / rho) + ramp * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho
    if linear_rescale:  # known error 7
        t = (sig - lo) / (hi - lo) * (T - 1)
    else:
        t = np.interp(np.log(sig), np.log(sig_t), np.arange(T))
    t = torch.from_numpy(np.round(t)).long()
    return t.flip(0) if increasing else t


_karras_with = partial(with_mistake, _karras)


KARRAS_BUGS = {
    "linear rescale of sigma (known error 7)": (
        _karras_with(linear_rescale=True),
        "matches TimestepScheduler.karras on a linear schedule",
    ),
    "ignores the given schedule": (
        _karras_with(own_schedule=True),
        "matches TimestepScheduler.karras on a cosine schedule",
    ),
    "rho ignored": (_karras_with(fixed_rho=True), "rho is used"),
    "increasing order": (
        _karras_with(increasing=True),
        "strictly decreasing integer timesteps from T-1 to 0",
    ),
}

CASES = [
    (check_ddim_step, "ddim_step", DDIM_BUGS),
    (check_respaced_betas, "respaced_betas", RESPACED_BUGS),
    (check_trailing_timesteps, "trailing_timesteps", TRAILING_BUGS),
    (check_karras_timesteps, "karras_timesteps", KARRAS_BUGS),
]


TestNotebookChecks = case_tests(CASES)
