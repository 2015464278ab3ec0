"""Notebook 08 checks: the solution passes; each wrong answer fails the right sub-check."""

from __future__ import annotations

from functools import partial

import torch
from check_harness import case_tests, with_mistake

from toydiff.checks import check_guided_eps


def _guided(
    model,
    x,
    t,
    y,
    w,
    *,
    null=None,
    two_passes=False,
    paper_w=False,
    swapped=False,
    float_t=False,
    in_place=False,
):
    label = model.null_label if null is None else null
    if in_place:
        y_both = torch.cat([y.clone(), y.fill_(label)])
    else:
        y_both = torch.cat([y, torch.full_like(y, label)])
    t_both = torch.full((2 * len(x),), t, dtype=torch.float32 if float_t else torch.long)
    if two_passes:
        B = len(x)
        eps_c = model(x, t_both[:B], y_both[:B])
        eps_u = model(x, t_both[B:], y_both[B:])
    else:
        eps_c, eps_u = model(torch.cat([x, x]), t_both, y_both).chunk(2)
    if swapped:
        eps_c, eps_u = eps_u, eps_c
    if paper_w:  # (1 + w) eps_c - w eps_u: another convention, but w=1 must be conditional here
        return (1 + w) * eps_c - w * eps_u
    return eps_u + w * (eps_c - eps_u)


_with = partial(with_mistake, _guided)


BUGS = {
    "zeros_like(y) as the null label (known error 10)": (
        _with(null=0),
        "the unconditional branch uses the null label K",
    ),
    "two forward passes": (_with(two_passes=True), "one batched forward pass on [x; x]"),
    "(1 + w) convention": (_with(paper_w=True), "w = 1 gives the conditional prediction"),
    "branches swapped": (_with(swapped=True), "w = 0 gives the unconditional prediction"),
    "float timesteps": (
        _with(float_t=True),
        "the timestep reaches the model as a LongTensor for every row",
    ),
    "labels overwritten in place": (_with(in_place=True), "x and y are not changed in place"),
}


TestNotebookChecks = case_tests([(check_guided_eps, "guided_eps", BUGS)])
