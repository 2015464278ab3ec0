"""Which timestep indices a sampler visits when it runs fewer steps than T.

Every spacing returns a strictly decreasing LongTensor of unique indices in ``[0, T-1]``.
The names follow the usual definitions (diffusers, "Common Diffusion Noise Schedules and Sample
Steps are Flawed", Lin et al. 2024): *leading* ends at 0 and never visits T-1, *trailing* starts
at T-1. (One of the reference texts has the two names swapped.)
"""

from __future__ import annotations

import torch
from torch import Tensor

from toydiff.validation import check_positive_int

SPACINGS = ("uniform", "quadratic", "leading", "trailing", "karras")


def _check_counts(total_timesteps: int, num_steps: int) -> None:
    check_positive_int(total_timesteps, "total_timesteps")
    check_positive_int(num_steps, "num_steps")
    if num_steps > total_timesteps:
        raise ValueError(
            f"num_steps ({num_steps}) cannot exceed total_timesteps ({total_timesteps}): "
            "a sampler cannot visit more distinct timesteps than the model was trained on"
        )


def _strictly_decreasing(increasing: Tensor, total_timesteps: int) -> Tensor:
    """Make rounded, non-decreasing indices strictly increasing and in range, then reverse them.

    Rounding can map two neighbouring values to one index where the spacing crowds (small t for
    quadratic and Karras); those are pushed apart by the minimum of one index, keeping both ends.
    """
    t = increasing.long().tolist()
    for i in range(1, len(t)):
        t[i] = max(t[i], t[i - 1] + 1)
    t[-1] = min(t[-1], total_timesteps - 1)
    for i in range(len(t) - 2, -1, -1):
        t[i] = min(t[i], t[i + 1] - 1)
    return torch.tensor(t[::-1], dtype=torch.long)


class TimestepScheduler:
    """Timestep spacings: each ``(total_timesteps, num_steps) -> LongTensor (num_steps,)``."""

    @staticmethod
    def uniform(total_timesteps: int, num_steps: int) -> Tensor:
        """``linspace(T - 1, 0, n)`` rounded: both ends, evenly spaced (DDIM's "linear" skip)."""
        _check_counts(total_timesteps, num_steps)
        return torch.linspace(total_timesteps - 1, 0, num_steps, dtype=torch.float64).round().long()

    @staticmethod
    def quadratic(total_timesteps: int, num_steps: int) -> Tensor:
        """``(T - 1) * s^2`` for ``s`` evenly spaced in [0, 1]: dense at small t (low noise),
        sparse at large t (DDIM's "quad" skip). Ends at T-1 and 0."""
        _check_counts(total_timesteps, num_steps)
        s = torch.linspace(0, 1, num_steps, dtype=torch.float64)
        return _strictly_decreasing((s**2 * (total_timesteps - 1)).round(), total_timesteps)

    @staticmethod
    def leading(total_timesteps: int, num_steps: int) -> Tensor:
        """``arange(n) * (T // n)``, reversed: starts at 0, never visits T-1."""
        _check_counts(total_timesteps, num_steps)
        return (torch.arange(num_steps) * (total_timesteps // num_steps)).flip(0)

    @staticmethod
    def trailing(total_timesteps: int, num_steps: int) -> Tensor:
        """``round(arange(T, 0, -T / n)) - 1``: starts at T-1, spaced back from the end."""
        _check_counts(total_timesteps, num_steps)
        starts = total_timesteps - torch.arange(num_steps, dtype=torch.float64) * (
            total_timesteps / num_steps
        )
        return starts.round().long() - 1

    @staticmethod
    def karras(
        total_timesteps: int,
        num_steps: int,
        *,
        alphas_cumprod: Tensor,
        sigma_min: float | None = None,
        sigma_max: float | None = None,
        rho: float = 7.0,
    ) -> Tensor:
        """Karras et al. (2022) Eq. 5: ``sigma_i = (s_max^(1/rho) + i/(n-1) (s_min^(1/rho) -
        s_max^(1/rho)))^rho``, mapped to timesteps through the model's own noise levels.

        ``sigma(t) = sqrt((1 - alpha_bar_t) / alpha_bar_t)`` is increasing in t; each ramp sigma is
        placed by linear interpolation of ``log sigma(t)`` and rounded (k-diffusion's
        ``sigma_to_t``). ``sigma_min`` / ``sigma_max`` default to the schedule's own ends.
        """
        _check_counts(total_timesteps, num_steps)
        if not isinstance(alphas_cumprod, Tensor) or alphas_cumprod.shape != (total_timesteps,):
            raise ValueError(
                f"alphas_cumprod must be a tensor of shape ({total_timesteps},), "
                f"got {getattr(alphas_cumprod, 'shape', type(alphas_cumprod).__name__)}"
            )
        if rho <= 0:
            raise ValueError(f"rho must be > 0, got {rho}")
        if total_timesteps == 1:  # a single noise level: no ramp to space
            return torch.zeros(1, dtype=torch.long)
        ab = alphas_cumprod.detach().double().cpu()
        log_sigmas = ((1 - ab) / ab).sqrt().log()
        lo = float(log_sigmas[0].exp()) if sigma_min is None else sigma_min
        hi = float(log_sigmas[-1].exp()) if sigma_max is None else sigma_max
        if not 0 < lo < hi:
            raise ValueError(f"need 0 < sigma_min < sigma_max, got {lo} and {hi}")
        ramp = torch.linspace(0, 1, num_steps, dtype=torch.float64)
        sigmas = (hi ** (1 / rho) + ramp * (lo ** (1 / rho) - hi ** (1 / rho))) ** rho
        t = _interp(sigmas.log(), log_sigmas, torch.arange(total_timesteps, dtype=torch.float64))
        return _strictly_decreasing(t.round().flip(0), total_timesteps)


def _interp(x: Tensor, xp: Tensor, fp: Tensor) -> Tensor:
    """``numpy.interp`` for increasing ``xp``: clamps outside the range."""
    x = x.clamp(float(xp[0]), float(xp[-1]))
    idx = torch.searchsorted(xp, x).clamp(1, len(xp) - 1)
    x0, x1 = xp[idx - 1], xp[idx]
    w = (x - x0) / (x1 - x0)
    return fp[idx - 1] + w * (fp[idx] - fp[idx - 1])


def timestep_sequence(
    total_timesteps: int,
    num_steps: int | None,
    spacing: str = "uniform",
    *,
    alphas_cumprod: Tensor | None = None,
) -> Tensor:
    """The indices a sampler visits: all of ``T-1..0`` when ``num_steps`` is None or T, else the
    named spacing. ``alphas_cumprod`` is needed for ``"karras"``."""
    if spacing not in SPACINGS:
        raise ValueError(f"spacing must be one of {SPACINGS}, got {spacing!r}")
    if num_steps is None or num_steps == total_timesteps:
        _check_counts(total_timesteps, total_timesteps)
        return torch.arange(total_timesteps - 1, -1, -1)
    if spacing == "karras":
        if alphas_cumprod is None:
            raise ValueError("spacing='karras' needs the schedule's alphas_cumprod")
        return TimestepScheduler.karras(total_timesteps, num_steps, alphas_cumprod=alphas_cumprod)
    return getattr(TimestepScheduler, spacing)(total_timesteps, num_steps)
