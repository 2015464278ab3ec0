"""Notebook 09 checks: the solutions pass; each wrong answer fails the right sub-check."""

from __future__ import annotations

import math
from functools import partial

import torch
from check_harness import case_tests, with_mistake

from toydiff.checks import check_dpmpp_2m_step, check_half_log_snr


def _in_place_lambda(ab):
    return ab.div_(1 - ab).log_().mul_(0.5)


LAMBDA_BUGS = {
    "log-SNR instead of half": (
        lambda ab: torch.log(ab / (1 - ab)),
        "lambda = log(alpha_t / sigma_t) = 0.5 log(alpha_bar / (1 - alpha_bar))",
    ),
    "inverted ratio": (
        lambda ab: 0.5 * torch.log((1 - ab) / ab),
        "lambda decreases along the schedule",
    ),
    "in-place": (_in_place_lambda, "alpha_bar is not changed in place"),
}


def _step(
    x,
    d,
    d_old,
    ab,
    ab_next,
    ab_old=None,
    *,
    full_snr=False,
    r_one=False,
    first_order=False,
    no_last=False,
    in_place=False,
):
    scale = 1.0 if full_snr else 0.5
    if ab_next >= 1 and not no_last:
        return d.clone()

    def lam(a):
        return scale * math.log(a / (1 - a)) if a < 1 else math.inf

    h = lam(ab_next) - lam(ab)
    if d_old is None or first_order:
        D = d
    else:
        r = 1.0 if r_one else (lam(ab) - lam(ab_old)) / h
        D = (1 + 1 / (2 * r)) * d - 1 / (2 * r) * d_old
    ratio = math.sqrt((1 - ab_next) / (1 - ab))
    if in_place:
        return x.mul_(ratio).sub_(math.sqrt(ab_next) * math.expm1(-h) * D)
    return ratio * x - math.sqrt(ab_next) * math.expm1(-h) * D


_with = partial(with_mistake, _step)


STEP_BUGS = {
    "log-SNR instead of half": (
        _with(full_snr=True),
        "first step (no previous x0) equals a DDIM step with eta = 0",
    ),
    "r fixed to 1": (_with(r_one=True), "second-order steps follow DPM-Solver++(2M)"),
    "always first order": (_with(first_order=True), "the previous prediction is used"),
    "last step not special-cased": (
        _with(no_last=True),
        "the last step (alpha_bar_next = 1) returns the denoised estimate",
    ),
    "in-place update of x": (_with(in_place=True), "inputs are not changed in place"),
}

CASES = [
    (check_half_log_snr, "half_log_snr", LAMBDA_BUGS),
    (check_dpmpp_2m_step, "dpmpp_2m_step", STEP_BUGS),
]


TestNotebookChecks = case_tests(CASES)
