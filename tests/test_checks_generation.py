"""Notebook 10 checks: the solutions pass; each wrong answer fails the right sub-check."""

from __future__ import annotations

from functools import partial

import torch
from check_harness import case_tests, with_mistake

from toydiff.checks import check_seeded_noise, check_slerp


def _one_generator(seeds, shape):
    g = torch.Generator().manual_seed(seeds[0])
    return torch.randn((len(seeds), *shape), generator=g)


def _global_seed(seeds, shape):
    rows = []
    for s in seeds:
        torch.manual_seed(s)
        rows.append(torch.randn(shape))
    return torch.stack(rows)


def _uniform(seeds, shape):
    rows = [torch.rand(shape, generator=torch.Generator().manual_seed(s)) for s in seeds]
    return (torch.stack(rows) - 0.5) * 12**0.5


def _same_seed(seeds, shape):
    return torch.stack(
        [torch.randn(shape, generator=torch.Generator().manual_seed(0)) for _ in seeds]
    )


NOISE_BUGS = {
    "one generator for the batch": (
        _one_generator,
        "a seed's noise does not depend on its batch",
    ),
    "torch.manual_seed per image": (_global_seed, "the global RNG is left alone"),
    "uniform noise": (_uniform, "the noise is standard normal"),
    "seed ignored": (_same_seed, "different seeds, different noise"),
}


def _slerp(
    v0, v1, t, *, linear=False, whole_batch=False, no_guard=False, in_place=False, swapped=False
):
    if linear:
        return (1 - t) * v0 + t * v1
    if swapped:
        t = 1 - t
    a, b = v0.flatten(1).double(), v1.flatten(1).double()
    if whole_batch:
        a, b = a.reshape(1, -1), b.reshape(1, -1)
    cos = (a * b).sum(1, keepdim=True) / (a.norm(dim=1, keepdim=True) * b.norm(dim=1, keepdim=True))
    theta = torch.arccos(cos.clamp(-1, 1))
    sin = torch.sin(theta)
    parallel = sin.abs() < 1e-6
    safe = sin if no_guard else torch.where(parallel, torch.ones_like(sin), sin)
    w0, w1 = torch.sin((1 - t) * theta) / safe, torch.sin(t * theta) / safe
    if not no_guard:
        w0, w1 = torch.where(parallel, 1 - t, w0), torch.where(parallel, t, w1)
    out = (w0 * a + w1 * b).reshape(v0.shape).float()
    if in_place:
        v0.copy_(out)
    return out


_slerp_with = partial(with_mistake, _slerp)


SLERP_BUGS = {
    "linear interpolation": (
        _slerp_with(linear=True),
        "the norm is kept between vectors of equal norm",
    ),
    "one angle for the whole batch": (
        _slerp_with(whole_batch=True),
        "each image is interpolated on its own",
    ),
    "no guard for parallel inputs": (
        _slerp_with(no_guard=True),
        "identical inputs do not give nan",
    ),
    "t reversed": (_slerp_with(swapped=True), "t = 0 gives v0 and t = 1 gives v1"),
    "writes into v0": (_slerp_with(in_place=True), "inputs are not changed in place"),
}

CASES = [
    (check_seeded_noise, "seeded_noise", NOISE_BUGS),
    (check_slerp, "slerp", SLERP_BUGS),
]


TestNotebookChecks = case_tests(CASES)
