"""Checks for notebook 10 (generating at scale): ``seeded_noise`` and ``slerp``.

References: toydiff's per-image noise (:func:`toydiff.noise.normal` with
:func:`toydiff.noise.per_sample_generators`) and :func:`toydiff.samplers.slerp`, plus the closed
forms of spherical interpolation (angles grow linearly in t, norms are kept).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from toydiff.checks.common import expect_tensor, gen, max_diff, tensor_diff
from toydiff.checks.core import CheckReport, SubCheck, exercise, expect, run_checks
from toydiff.noise import normal, per_sample_generators
from toydiff.samplers import slerp as reference_slerp

NOTEBOOK = "10_generating_at_scale"
IMG = (3, 5, 5)


# --- seeded_noise(seeds, shape) ---------------------------------------------------------------


def _seeded_rows(impl: Callable) -> None:
    seeds = [3, 17, 123456]
    got = expect_tensor(impl(seeds, IMG), (3, *IMG))
    want = normal((3, *IMG), generator=per_sample_generators(seeds))
    expect(
        torch.equal(got, want),
        "row i must be torch.randn(shape, generator=Generator().manual_seed(seeds[i]))",
    )


def _seeded_batch_independent(impl: Callable) -> None:
    alone = expect_tensor(impl([42], IMG), (1, *IMG))
    together = expect_tensor(impl([7, 42, 9], IMG), (3, *IMG))
    expect(torch.equal(alone[0], together[1]), "seed 42 gave different noise in a different batch")


def _seeded_global_rng(impl: Callable) -> None:
    state = torch.get_rng_state()
    try:
        impl([1, 2], IMG)
        expect(
            torch.equal(state, torch.get_rng_state()),
            "the global RNG was used or reseeded (torch.manual_seed): use one Generator per seed",
        )
    finally:
        torch.set_rng_state(state)


def _seeded_distinct(impl: Callable) -> None:
    got = expect_tensor(impl([0, 1], IMG), (2, *IMG))
    expect(not torch.equal(got[0], got[1]), "different seeds gave the same noise")


def _seeded_gaussian(impl: Callable) -> None:
    z = expect_tensor(impl(list(range(400)), IMG), (400, *IMG)).double().flatten()
    mean, std = float(z.mean()), float(z.std())
    kurt = float((((z - mean) / std) ** 4).mean())
    expect(abs(mean) < 0.03 and abs(std - 1) < 0.03, f"mean {mean:.3f}, std {std:.3f}: not N(0, 1)")
    expect(abs(kurt - 3) < 0.25, f"kurtosis {kurt:.2f}; a Gaussian has 3 (torch.rand is uniform)")


@exercise("seeded_noise", notebook=NOTEBOOK, target="seeded_noise")
def _seeded_noise_checks() -> list[SubCheck]:
    return [
        SubCheck(
            "row i is the noise of seed i",
            _seeded_rows,
            "for each seed: torch.randn(shape, generator=torch.Generator().manual_seed(seed)); "
            "stack the rows",
        ),
        SubCheck(
            "a seed's noise does not depend on its batch",
            _seeded_batch_independent,
            "one generator per image, not one generator for the whole batch",
        ),
        SubCheck(
            "the global RNG is left alone",
            _seeded_global_rng,
            "torch.manual_seed(seed) changes everyone's random numbers; create a torch.Generator",
        ),
        SubCheck("different seeds, different noise", _seeded_distinct, "seed each generator"),
        SubCheck("the noise is standard normal", _seeded_gaussian, "use torch.randn"),
    ]


def check_seeded_noise(impl: Callable, *, verbose: bool = True) -> CheckReport:
    """Check ``seeded_noise(seeds: list[int], shape: tuple) -> (len(seeds), *shape)``."""
    return run_checks("seeded_noise", impl, verbose=verbose)


# --- slerp(v0, v1, t) -------------------------------------------------------------------------


def _pair(seed: int = 0, batch: int = 4) -> tuple[Tensor, Tensor]:
    g = gen(seed)
    return torch.randn(batch, *IMG, generator=g), torch.randn(batch, *IMG, generator=g)


def _equal_norms(v0: Tensor, v1: Tensor) -> Tensor:
    """``v1`` rescaled, per image, to the norm of ``v0`` (where every slerp variant agrees)."""
    n0 = v0.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
    return v1 / v1.flatten(1).norm(dim=1).view(-1, 1, 1, 1) * n0


def _slerp_ends(impl: Callable) -> None:
    v0, v1 = _pair()
    for t, want in ((0.0, v0), (1.0, v1)):
        err = tensor_diff(impl(v0, v1, t), want)
        expect(err < 1e-5, f"t={t:g} must give {'v0' if t == 0 else 'v1'} (off by {err:.3g})")


def _angle(a: Tensor, b: Tensor) -> Tensor:
    a, b = a.flatten(1).double(), b.flatten(1).double()
    cos = (a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))
    return torch.arccos(cos.clamp(-1, 1))


def _slerp_angle(impl: Callable) -> None:
    v0, v1 = _pair()
    v1 = _equal_norms(v0, v1)
    total = _angle(v0, v1)
    for t in (0.25, 0.5, 0.8):
        got = _angle(v0, expect_tensor(impl(v0, v1, t), tuple(v0.shape)))
        err = float((got - t * total).abs().max())
        expect(err < 1e-4, f"t={t}: the angle to v0 is not t times the full angle (off {err:.3g})")


def _slerp_norm(impl: Callable) -> None:
    v0, v1 = _pair()
    v1 = _equal_norms(v0, v1)
    mid = expect_tensor(impl(v0, v1, 0.5), tuple(v0.shape))
    ratio = mid.flatten(1).norm(dim=1) / v0.flatten(1).norm(dim=1)
    expect(
        float((ratio - 1).abs().max()) < 1e-4,
        f"halfway between two vectors of equal norm the norm changed by a factor "
        f"{float(ratio.min()):.3f}: linear interpolation shrinks it",
    )


def _slerp_per_image(impl: Callable) -> None:
    v0, v1 = _pair(batch=3)
    v1[1] = -v0[1] + 0.3 * v1[1]  # row 1: nearly opposite, a very different angle
    v1 = _equal_norms(v0, v1)
    err = tensor_diff(impl(v0, v1, 0.3), reference_slerp(v0, v1, 0.3))
    expect(err < 1e-4, f"off by {err:.3g}: compute the angle per image (flatten(1)), not per batch")


def _slerp_parallel(impl: Callable) -> None:
    v0, _ = _pair()
    got = expect_tensor(impl(v0, v0.clone(), 0.4), tuple(v0.shape))
    expect(bool(torch.isfinite(got).all()), "identical inputs gave nan/inf: sin(angle) = 0 there")
    expect(max_diff(got, v0) < 1e-4, "slerp of a vector with itself must return it")


def _slerp_in_place(impl: Callable) -> None:
    v0, v1 = _pair()
    c0, c1 = v0.clone(), v1.clone()
    impl(v0, v1, 0.3)
    expect(torch.equal(v0, c0) and torch.equal(v1, c1), "an input was changed in place")


@exercise("slerp", notebook=NOTEBOOK, target="slerp")
def _slerp_checks() -> list[SubCheck]:
    return [
        SubCheck(
            "t = 0 gives v0 and t = 1 gives v1",
            _slerp_ends,
            "weights sin((1-t) theta) / sin(theta) and sin(t theta) / sin(theta)",
        ),
        SubCheck(
            "the angle grows linearly in t",
            _slerp_angle,
            "theta = arccos(<v0, v1> / (|v0| |v1|)); "
            "slerp = (sin((1-t) theta) v0 + sin(t theta) v1) "
            "/ sin(theta)",
        ),
        SubCheck(
            "the norm is kept between vectors of equal norm",
            _slerp_norm,
            "linear interpolation (1-t) v0 + t v1 shrinks Gaussian noise in the middle; use slerp",
        ),
        SubCheck(
            "each image is interpolated on its own",
            _slerp_per_image,
            "compute theta per batch element: flatten(1) and sum over dim=1",
        ),
        SubCheck(
            "identical inputs do not give nan",
            _slerp_parallel,
            "when sin(theta) is ~0, fall back to linear interpolation (torch.where)",
        ),
        SubCheck("inputs are not changed in place", _slerp_in_place, "build new tensors"),
    ]


def check_slerp(impl: Callable, *, verbose: bool = True) -> CheckReport:
    """Check ``slerp(v0 (B, ...), v1 (B, ...), t: float) -> (B, ...)``."""
    return run_checks("slerp", impl, verbose=verbose)
