"""Checks for notebook 03: the ``NoiseSchedule`` module, ``noise_img`` and ``reconstruct``.

These use **timestep indices** (0-based): index ``t`` means ``t + 1`` noising steps, so
``alpha_bar[t] = prod_{i <= t} (1 - beta_i)``. ``noise_img`` must draw every index the sampler
visits, ``0 .. T-1`` (the reference text's ``randint(1, T)`` never trains index 0), and its output
must be DDPM Eq. 4 at the index it returns. Reference values: :class:`toydiff.NoiseSchedule`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from toydiff.checks.common import expect_gaussian, expect_tensor, expect_unchanged, gen, max_diff
from toydiff.checks.core import CheckReport, SubCheck, exercise, expect, run_checks
from toydiff.schedule import NoiseSchedule, variance_schedule

NOTEBOOK = "03_noise_schedule"
T = 10
BUFFERS = ("betas", "alphas", "alpha_bars")


def _build(cls: Callable, max_steps: int = T, **kwargs) -> nn.Module:
    schedule = cls(max_steps, "cpu", **kwargs)
    expect(isinstance(schedule, nn.Module), "NoiseSchedule should subclass nn.Module")
    for name in BUFFERS:
        expect(hasattr(schedule, name), f"the schedule has no attribute {name!r}")
    return schedule


def _buffers(cls: Callable) -> None:
    schedule = _build(cls)
    buffers = dict(schedule.named_buffers())
    missing = [name for name in BUFFERS if name not in buffers]
    expect(not missing, f"{missing} are not registered buffers")
    params = [name for name, _ in schedule.named_parameters()]
    expect(not params, f"{params} are trainable parameters; a schedule has none")
    expect(all(name in schedule.state_dict() for name in BUFFERS), "buffers missing in state_dict")


def _follows_to(cls: Callable) -> None:
    schedule = _build(cls).to(torch.float64)
    for name in BUFFERS:
        dtype = getattr(schedule, name).dtype
        expect(dtype == torch.float64, f".to(torch.float64) left {name} as {dtype}")


def _betas(cls: Callable) -> None:
    schedule = _build(cls, 50, min_noise=1e-3, max_noise=0.05)
    want = variance_schedule(50, 1e-3, 0.05)
    got = expect_tensor(schedule.betas, (50,), "betas")
    expect(max_diff(got, want) < 1e-6, "betas should be linspace(min_noise, max_noise, max_steps)")
    expect(max_diff(schedule.alphas, 1 - want) < 1e-6, "alphas should be 1 - betas")


def _alpha_bars(cls: Callable) -> None:
    schedule = _build(cls, 50, min_noise=1e-3, max_noise=0.05)
    ref = NoiseSchedule(50, min_noise=1e-3, max_noise=0.05)
    got = expect_tensor(schedule.alpha_bars, (50,), "alpha_bars").detach()
    first = float(got[0].detach())
    expect(
        abs(first - (1 - 1e-3)) < 1e-6,
        f"alpha_bars[0] is {first:.6f}; index 0 is one step, so it must be 1 - beta_0 = 0.999",
    )
    expect(max_diff(got, ref.alpha_bars) < 1e-5, "alpha_bars should be cumprod(alphas)")


def _accessors(cls: Callable) -> None:
    schedule = _build(cls)
    ref = NoiseSchedule(T)
    t = torch.tensor([0, 4, T - 1])
    for name in ("beta", "alpha", "alpha_bar"):
        method = getattr(schedule, name, None)
        expect(callable(method), f"the schedule has no method {name}(t)")
        got = expect_tensor(method(t), (3,), f"{name}(LongTensor of 3 indices)")
        expect(max_diff(got, getattr(ref, name)(t)) < 1e-6, f"{name}(t) returns wrong values")
        one = torch.as_tensor(method(T - 1)).detach()
        want = float(getattr(ref, name)(T - 1))
        expect(abs(float(one) - want) < 1e-6, f"{name}({T - 1}) returns {float(one):.6f}")


def _length(cls: Callable) -> None:
    for steps in (7, 30):
        n = len(_build(cls, steps))
        expect(n == steps, f"len(NoiseSchedule({steps})) is {n}")


@exercise("noise_schedule", notebook=NOTEBOOK, target="NoiseSchedule")
def _noise_schedule_checks() -> list[SubCheck]:
    return [
        SubCheck(
            "betas, alphas, alpha_bars are buffers, not parameters",
            _buffers,
            "self.register_buffer(name, tensor), not nn.Parameter or a plain attribute",
        ),
        SubCheck(
            "buffers follow .to()",
            _follows_to,
            "only registered buffers move with .to(); plain tensor attributes stay behind",
        ),
        SubCheck("linear betas, alphas = 1 - betas", _betas, "use variance_schedule(...)"),
        SubCheck(
            "alpha_bars[t] includes step t (cumprod)",
            _alpha_bars,
            "torch.cumprod(alphas, dim=0): alpha_bars[0] = alphas[0]",
        ),
        SubCheck(
            "beta(t), alpha(t), alpha_bar(t) take an int or a LongTensor",
            _accessors,
            "index the buffer: self.alpha_bars[t]",
        ),
        SubCheck("len(schedule) == max_steps", _length, "define __len__"),
    ]


def check_noise_schedule(cls: Callable, *, verbose: bool = True) -> CheckReport:
    """Check a ``NoiseSchedule(max_steps, device, min_noise=1e-4, max_noise=0.02)`` class."""
    return run_checks("noise_schedule", cls, verbose=verbose)


# noise_img -----------------------------------------------------------------------------------

IMG_SHAPE = (4000, 3, 2, 2)


def _images(n: int = IMG_SHAPE[0], seed: int = 0) -> torch.Tensor:
    return torch.rand((n, *IMG_SHAPE[1:]), generator=gen(seed)) * 2 - 1


def _call_noise_img(noise_img: Callable, img, schedule, max_steps=None, seed: int = 0):
    out = noise_img(img, schedule, max_steps, generator=gen(seed))
    expect(isinstance(out, tuple) and len(out) == 3, "return a tuple (t, noise, noised)")
    t, noise, noised = out
    expect_tensor(t, (img.shape[0],), "t")
    expect(not t.is_floating_point(), f"t should hold integer timestep indices, got {t.dtype}")
    expect_tensor(noise, img.shape, "noise")
    expect_tensor(noised, img.shape, "noised")
    return t, noise, noised


def _ni_shapes(noise_img: Callable) -> None:
    img = _images(8)
    before = img.clone()
    _call_noise_img(noise_img, img, NoiseSchedule(T))
    expect_unchanged(before, img, "img")


def _ni_eq4(noise_img: Callable) -> None:
    schedule = NoiseSchedule(T, min_noise=0.05, max_noise=0.3)
    img = _images(256)
    t, noise, noised = _call_noise_img(noise_img, img, schedule)
    ab = schedule.alpha_bars[t].view(-1, 1, 1, 1)
    want = ab.sqrt() * img + (1 - ab).sqrt() * noise
    diff = max_diff(noised, want)
    expect(diff < 1e-5, f"noised differs from Eq. 4 at index t by {diff:.3g}")


def _ni_all_indices(noise_img: Callable) -> None:
    t = _call_noise_img(noise_img, _images(), NoiseSchedule(T))[0]
    counts = torch.bincount(t.long().clamp(0, T), minlength=T + 1)[:T]
    expect(int(t.min()) == 0, f"index 0 never drawn (min {int(t.min())}); the sampler uses it")
    expect(int(t.max()) == T - 1, f"the largest index drawn is {int(t.max())}, expected {T - 1}")
    expected = t.numel() / T
    worst = float((counts.double() - expected).abs().max() / expected)
    expect(worst < 0.2, f"indices are not uniform: counts {counts.tolist()}")


def _ni_max_steps(noise_img: Callable) -> None:
    t = _call_noise_img(noise_img, _images(), NoiseSchedule(T), max_steps=4)[0]
    seen = sorted(set(t.tolist()))
    expect(seen == [0, 1, 2, 3], f"with max_steps=4 the indices drawn were {seen}, want 0..3")


def _ni_gaussian(noise_img: Callable) -> None:
    expect_gaussian(_call_noise_img(noise_img, _images(), NoiseSchedule(T))[1])


def _ni_seeded(noise_img: Callable) -> None:
    img, schedule = _images(64), NoiseSchedule(T)
    a = _call_noise_img(noise_img, img, schedule, seed=5)
    b = _call_noise_img(noise_img, img, schedule, seed=5)
    expect(all(torch.equal(x, y) for x, y in zip(a, b, strict=True)), "same seed, different output")
    c = _call_noise_img(noise_img, img, schedule, seed=6)
    expect(not torch.equal(a[1], c[1]), "different seeds gave the same noise")


@exercise("noise_img", notebook=NOTEBOOK, target="noise_img")
def _noise_img_checks() -> list[SubCheck]:
    return [
        SubCheck(
            "returns (t, noise, noised); img unchanged",
            _ni_shapes,
            "t is a LongTensor (B,), noise and noised have img's shape",
        ),
        SubCheck(
            "noised is Eq. 4 at index t",
            _ni_eq4,
            "sqrt(alpha_bar(t)) * img + sqrt(1 - alpha_bar(t)) * noise, per image",
        ),
        SubCheck(
            "draws every index 0..T-1, uniformly",
            _ni_all_indices,
            "torch.randint(0, max_steps, ...): randint's upper bound is exclusive",
        ),
        SubCheck("max_steps limits the indices", _ni_max_steps, "draw from 0..max_steps-1"),
        SubCheck("the noise is standard Gaussian", _ni_gaussian, "use torch.randn, not torch.rand"),
        SubCheck(
            "uses the generator (same seed, same result)",
            _ni_seeded,
            "pass generator=generator to randint and randn",
        ),
    ]


def check_noise_img(noise_img: Callable, *, verbose: bool = True) -> CheckReport:
    """Check ``noise_img(img, noise_schedule, max_steps=None, *, generator=None)``."""
    return run_checks("noise_img", noise_img, verbose=verbose)


# reconstruct ---------------------------------------------------------------------------------


def _noised(schedule: NoiseSchedule, t: torch.Tensor, seed: int = 0):
    g = gen(seed)
    x0 = torch.rand(len(t), 3, 4, 4, generator=g) * 2 - 1
    noise = torch.randn(x0.shape, generator=g)
    ab = schedule.alpha_bars[t].view(-1, 1, 1, 1)
    return x0, noise, ab.sqrt() * x0 + (1 - ab).sqrt() * noise


def _rc_inverse(reconstruct: Callable) -> None:
    schedule = NoiseSchedule(T, min_noise=0.05, max_noise=0.3)
    t = torch.full((16,), 5)
    x0, noise, xt = _noised(schedule, t)
    out = expect_tensor(reconstruct(xt, noise, t, schedule), x0.shape)
    diff = max_diff(out, x0)
    expect(diff < 1e-4, f"reconstruct(noise_img(x0)) differs from x0 by {diff:.3g}")


def _rc_per_image(reconstruct: Callable) -> None:
    schedule = NoiseSchedule(T, min_noise=0.05, max_noise=0.3)
    t = torch.tensor([0, 1, 5, T - 1, 3, 0])
    x0, noise, xt = _noised(schedule, t, seed=1)
    out = expect_tensor(reconstruct(xt, noise, t, schedule), x0.shape)
    bad = [int(t[i]) for i in range(len(t)) if max_diff(out[i], x0[i]) > 1e-4]
    expect(not bad, f"wrong for timestep indices {bad}; alpha_bar(t) is the index-t entry")


def _rc_inputs(reconstruct: Callable) -> None:
    schedule = NoiseSchedule(T)
    t = torch.tensor([2, 7])
    _, noise, xt = _noised(schedule, t, seed=2)
    saved = (xt.clone(), noise.clone(), t.clone())
    reconstruct(xt, noise, t, schedule)
    for before, after, name in zip(
        saved, (xt, noise, t), ("noisy_img", "noise", "num_steps"), strict=True
    ):
        expect_unchanged(before, after, name)


@exercise("reconstruct", notebook=NOTEBOOK, target="reconstruct")
def _reconstruct_checks() -> list[SubCheck]:
    return [
        SubCheck(
            "exactly inverts Eq. 4",
            _rc_inverse,
            "x0 = (x_t - sqrt(1 - alpha_bar) * noise) / sqrt(alpha_bar)",
        ),
        SubCheck(
            "uses each image's own index t",
            _rc_per_image,
            "gather alpha_bar(t) for the batch and reshape to (B, 1, 1, 1)",
        ),
        SubCheck("leaves its inputs unchanged", _rc_inputs, "avoid in-place ops such as sub_"),
    ]


def check_reconstruct(reconstruct: Callable, *, verbose: bool = True) -> CheckReport:
    """Check ``reconstruct(noisy_img, noise, num_steps, noise_schedule)``."""
    return run_checks("reconstruct", reconstruct, verbose=verbose)
