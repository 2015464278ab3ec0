"""The forward (noising) process q: DDPM Eq. 2 one step at a time, Eq. 4 in closed form.

``q_eq2`` and ``q_eq4`` take a **step count** ``num_steps = k``: ``k`` steps of noise use the first
``k`` betas, ``alpha_bar = prod_{i < k} alpha_i``, and ``k = 0`` returns ``x`` unchanged.
``noise_img`` and ``reconstruct`` take **timestep indices** ``t`` (0-based), as the model and the
samplers do: index ``t`` is ``t + 1`` steps, ``alpha_bar[t] = prod_{i <= t} alpha_i``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from toydiff.schedule import NoiseSchedule, _as_index, check_betas, extract
from toydiff.validation import check_generator, check_images


def _check_num_steps(num_steps: object, betas: Tensor) -> int:
    if isinstance(num_steps, bool) or not isinstance(num_steps, int):
        raise TypeError(f"num_steps must be an int step count, got {type(num_steps).__name__}")
    if not 0 <= num_steps <= len(betas):
        raise ValueError(f"num_steps must be a step count in [0, {len(betas)}], got {num_steps}")
    return num_steps


def _check_noise(noise: Tensor | None, x: Tensor) -> None:
    if noise is not None and (not isinstance(noise, Tensor) or noise.shape != x.shape):
        got = tuple(noise.shape) if isinstance(noise, Tensor) else type(noise).__name__
        raise ValueError(
            f"noise must be a tensor of the same shape as x {tuple(x.shape)}, got {got}"
        )


def q_eq2(
    x: Tensor, num_steps: int, betas: Tensor, *, generator: torch.Generator | None = None
) -> Tensor:
    """DDPM Eq. 2, ``num_steps`` times: ``x_k = sqrt(1 - beta_k) x_{k-1} + sqrt(beta_k) eps_k``.

    ``x`` has any shape (typically ``(C, H, W)`` or ``(B, C, H, W)``); the result has its shape.
    """
    check_images(x, "x", ndim=None)
    check_betas(betas)
    _check_num_steps(num_steps, betas)
    check_generator(generator)
    for beta in betas[:num_steps].double().tolist():
        eps = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
        x = (1 - beta) ** 0.5 * x + beta**0.5 * eps
    return x


def q_eq4(
    x: Tensor,
    num_steps: int,
    betas: Tensor,
    *,
    generator: torch.Generator | None = None,
    noise: Tensor | None = None,
) -> Tensor:
    """DDPM Eq. 4, closed form: ``x_k = sqrt(alpha_bar) x_0 + sqrt(1 - alpha_bar) eps`` with
    ``alpha_bar = prod_{i < k} (1 - beta_i)``. Same distribution as :func:`q_eq2`, one draw.

    ``noise`` (same shape as ``x``) replaces the Gaussian draw, which makes the map testable.
    """
    check_images(x, "x", ndim=None)
    check_betas(betas)
    _check_num_steps(num_steps, betas)
    check_generator(generator)
    _check_noise(noise, x)
    alpha_bar = float(torch.prod(1 - betas[:num_steps].double()))
    if noise is None:
        noise = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return alpha_bar**0.5 * x + (1 - alpha_bar) ** 0.5 * noise


def _check_schedule(noise_schedule: object) -> NoiseSchedule:
    if not isinstance(noise_schedule, NoiseSchedule):
        raise TypeError(
            f"noise_schedule must be a NoiseSchedule, got {type(noise_schedule).__name__}"
        )
    return noise_schedule


def noise_img(
    img: Tensor,
    noise_schedule: NoiseSchedule,
    max_steps: int | None = None,
    *,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Noise each image of a batch to its own random timestep (Algorithm 1, lines 3-4 and Eq. 4).

    ``img (B, C, H, W)`` in model space. Timestep indices are drawn uniformly from
    ``{0, ..., max_steps - 1}`` (every index the sampler visits; ``max_steps`` defaults to the
    schedule's length). Returns ``(t LongTensor (B,), noise (B, C, H, W), noised (B, C, H, W))``.
    Draw order: ``t`` first, then the noise.
    """
    check_images(img, "img")
    _check_schedule(noise_schedule)
    check_generator(generator)
    T = len(noise_schedule)
    if max_steps is None:
        max_steps = T
    if isinstance(max_steps, bool) or not isinstance(max_steps, int):
        raise TypeError(f"max_steps must be an int or None, got {type(max_steps).__name__}")
    if not 1 <= max_steps <= T:
        raise ValueError(f"max_steps must lie in [1, {T}] (the schedule's length), got {max_steps}")
    t = torch.randint(0, max_steps, (img.shape[0],), generator=generator, device=img.device)
    noise = torch.randn(img.shape, generator=generator, dtype=img.dtype, device=img.device)
    sqrt_ab = extract(noise_schedule.sqrt_alpha_bars.to(img.device), t, img.shape)
    sqrt_1mab = extract(noise_schedule.sqrt_one_minus_alpha_bars.to(img.device), t, img.shape)
    return t, noise, sqrt_ab * img + sqrt_1mab * noise


def reconstruct(
    noisy_img: Tensor, noise: Tensor, num_steps: Tensor, noise_schedule: NoiseSchedule
) -> Tensor:
    """Invert Eq. 4: ``x_0 = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t)``.

    With the true noise this undoes :func:`noise_img` exactly; with a predicted noise it is the
    model's estimate of ``x_0``. ``num_steps`` holds the timestep indices ``(B,)``.
    """
    check_images(noisy_img, "noisy_img")
    _check_schedule(noise_schedule)
    if not isinstance(noise, Tensor) or noise.shape != noisy_img.shape:
        raise ValueError(f"noise must have the shape of noisy_img {tuple(noisy_img.shape)}")
    if not isinstance(num_steps, Tensor) or num_steps.shape != (noisy_img.shape[0],):
        raise ValueError(
            f"num_steps must be a LongTensor of timestep indices, shape ({noisy_img.shape[0]},)"
        )
    _as_index(num_steps, len(noise_schedule), "num_steps")
    t = num_steps.to(noise_schedule.device).long()
    sqrt_ab = extract(noise_schedule.sqrt_alpha_bars, t, noisy_img.shape).to(noisy_img.device)
    sqrt_1mab = extract(noise_schedule.sqrt_one_minus_alpha_bars, t, noisy_img.shape).to(
        noisy_img.device
    )
    return (noisy_img - sqrt_1mab * noise) / sqrt_ab
