"""Notebook 03 checks (``NoiseSchedule``, ``noise_img``, ``reconstruct``): the solutions pass; each
mistake fails the right sub-check, including the reference text's randint(1, T) (known error 2)."""

from __future__ import annotations

import torch
from check_harness import Exercise, exercise_tests, noise_like
from torch import nn

from toydiff import variance_schedule
from toydiff.checks import check_noise_img, check_noise_schedule, check_reconstruct

# --- NoiseSchedule ---------------------------------------------------------------------------


class _Schedule(nn.Module):
    """A parameterised schedule; each class attribute switched on reproduces one mistake."""

    storage = "buffer"  # or "attribute", "parameter"
    exclusive_cumprod = False
    reversed_betas = False
    accessor_shift = 0

    def __init__(self, max_steps, device="cpu", min_noise=1e-4, max_noise=0.02):
        super().__init__()
        self.max_steps = max_steps
        betas = variance_schedule(max_steps, min_noise, max_noise)
        if self.reversed_betas:
            betas = betas.flip(0)
        alpha_bars = torch.cumprod(1 - betas, 0)
        if self.exclusive_cumprod:
            alpha_bars = torch.cat([torch.ones(1), alpha_bars[:-1]])
        for name, value in (("betas", betas), ("alphas", 1 - betas), ("alpha_bars", alpha_bars)):
            if self.storage == "buffer":
                self.register_buffer(name, value)
            elif self.storage == "parameter":
                setattr(self, name, nn.Parameter(value))
            else:
                setattr(self, name, value)

    def _at(self, values, t):
        return values[(t - self.accessor_shift) % self.max_steps]

    def beta(self, t):
        return self._at(self.betas, t)

    def alpha(self, t):
        return self._at(self.alphas, t)

    def alpha_bar(self, t):
        return self._at(self.alpha_bars, t)

    def __len__(self):
        return self.max_steps


def _variant(**attrs):
    return type("Variant", (_Schedule,), attrs)


class _NoLen(_Schedule):
    __len__ = None  # type: ignore[assignment]


class _ScheduleStub(nn.Module):
    def __init__(self, max_steps, device="cpu", min_noise=1e-4, max_noise=0.02):
        super().__init__()
        raise NotImplementedError("NoiseSchedule")


BUFFERS = "betas, alphas, alpha_bars are buffers, not parameters"
WRONG_SCHEDULES = {
    "plain tensor attributes": (_variant(storage="attribute"), BUFFERS),
    "plain tensor attributes do not move": (_variant(storage="attribute"), "buffers follow .to()"),
    "trainable parameters": (_variant(storage="parameter"), BUFFERS),
    "alpha_bars[t] excludes step t": (
        _variant(exclusive_cumprod=True),
        "alpha_bars[t] includes step t (cumprod)",
    ),
    "betas decreasing": (_variant(reversed_betas=True), "linear betas, alphas = 1 - betas"),
    "accessors off by one": (
        _variant(accessor_shift=1),
        "beta(t), alpha(t), alpha_bar(t) take an int or a LongTensor",
    ),
    "no __len__": (_NoLen, "len(schedule) == max_steps"),
}


# --- noise_img -------------------------------------------------------------------------------


def _noise_img(
    img,
    noise_schedule,
    max_steps=None,
    *,
    generator=None,
    low=0,
    high_shift=0,
    index_shift=0,
    sqrt=True,
    noise="gaussian",
    order="t_noise_noised",
    in_place=False,
):
    """A parameterised noise_img; each keyword reproduces one mistake."""
    T = len(noise_schedule)
    if max_steps is None or max_steps == "ignored":
        max_steps = T
    t = torch.randint(low, max_steps + high_shift, (img.shape[0],), generator=generator)
    eps = noise_like(img, noise, generator)
    ab = noise_schedule.alpha_bars[(t + index_shift).clamp(0, T - 1)].view(-1, 1, 1, 1)
    a, b = (ab.sqrt(), (1 - ab).sqrt()) if sqrt else (ab, 1 - ab)
    noised = img.mul_(a).add_(b * eps) if in_place else a * img + b * eps
    return (noised, eps, t) if order == "reversed" else (t, eps, noised)


def _ni(**kwargs):
    def impl(img, noise_schedule, max_steps=None, *, generator=None):
        if kwargs.get("ignore_max_steps"):
            max_steps = None
        rest = {k: v for k, v in kwargs.items() if k != "ignore_max_steps"}
        return _noise_img(img, noise_schedule, max_steps, generator=generator, **rest)

    return impl


def _ni_stub(img, noise_schedule, max_steps=None, *, generator=None):
    raise NotImplementedError("noise_img")


ALL_INDICES = "draws every index 0..T-1, uniformly"
EQ4 = "noised is Eq. 4 at index t"
SHAPES = "returns (t, noise, noised); img unchanged"
WRONG_NOISE_IMG = {
    "randint(1, T): index 0 never drawn (known error 2)": (_ni(low=1), ALL_INDICES),
    "randint(0, T - 1): last index never drawn": (_ni(high_shift=-1), ALL_INDICES),
    "alpha_bar of the next index": (_ni(index_shift=1), EQ4),
    "alpha_bar of the previous index": (_ni(index_shift=-1), EQ4),
    "no square roots": (_ni(sqrt=False), EQ4),
    "uniform noise": (
        _ni(noise="uniform_unit_variance"),
        "the noise is standard Gaussian",
    ),
    "ignores the generator": (_ni(noise="global"), "uses the generator (same seed, same result)"),
    "ignores max_steps": (_ni(ignore_max_steps=True), "max_steps limits the indices"),
    "returns (noised, noise, t)": (
        _ni(order="reversed"),
        "returns (t, noise, noised); img unchanged",
    ),
    "noises img in place": (_ni(in_place=True), "returns (t, noise, noised); img unchanged"),
}


# --- reconstruct -----------------------------------------------------------------------------


def _reconstruct(noisy_img, noise, num_steps, noise_schedule, *, mistake=None):
    T = len(noise_schedule)
    t = num_steps
    if mistake == "first_index":
        t = num_steps[:1].expand_as(num_steps)
    elif mistake == "previous_index":
        t = (num_steps - 1).clamp(0, T - 1)
    ab = noise_schedule.alpha_bars[t].view(-1, 1, 1, 1)
    if mistake == "no_sqrt":
        return (noisy_img - (1 - ab) * noise) / ab
    if mistake == "in_place":
        return noisy_img.sub_((1 - ab).sqrt() * noise).div_(ab.sqrt())
    return (noisy_img - (1 - ab).sqrt() * noise) / ab.sqrt()


def _rc(mistake):
    def impl(noisy_img, noise, num_steps, noise_schedule):
        return _reconstruct(noisy_img, noise, num_steps, noise_schedule, mistake=mistake)

    return impl


def _rc_stub(noisy_img, noise, num_steps, noise_schedule):
    raise NotImplementedError("reconstruct")


WRONG_RECONSTRUCT = {
    "no square roots": (_rc("no_sqrt"), "exactly inverts Eq. 4"),
    "the first image's index for all": (_rc("first_index"), "uses each image's own index t"),
    "index t - 1 (a step count read as an index)": (
        _rc("previous_index"),
        "uses each image's own index t",
    ),
    "in place": (_rc("in_place"), "leaves its inputs unchanged"),
}

TestExercises = exercise_tests(
    Exercise(check_noise_schedule, "noise_schedule", WRONG_SCHEDULES, _ScheduleStub, (_Schedule,)),
    Exercise(check_noise_img, "noise_img", WRONG_NOISE_IMG, _ni_stub, (_ni(),)),
    Exercise(check_reconstruct, "reconstruct", WRONG_RECONSTRUCT, _rc_stub, (_rc(None),)),
)
