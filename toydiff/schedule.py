"""Variance schedules and the `NoiseSchedule` module: every coefficient, in one place.

Two ways of counting time run through the course, and this module names them apart:

* a **timestep index** ``t in {0, ..., T-1}``: index ``t`` means ``t + 1`` noising steps have been
  applied, so ``alpha_bar[t] = prod_{i <= t} (1 - beta_i)``. The DDPM paper's ``t`` is
  ``index + 1``.
* a **step count** ``k`` (see :mod:`toydiff.forward`): ``k`` steps use ``prod_{i < k} alpha_i``.

Every sampler gets its per-step coefficients from :func:`step_coefficients`, which works for the
full chain and for any sub-sequence of timesteps (respaced betas, DDIM Eq. 12, DPM-Solver).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

SCHEDULE_KINDS = ("linear", "cosine")


def _check_max_steps(max_steps: Any) -> None:
    if isinstance(max_steps, bool) or not isinstance(max_steps, int):
        raise TypeError(f"max_steps must be an int, got {type(max_steps).__name__}")
    if max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {max_steps}")


def check_betas(betas: Any, name: str = "betas") -> Tensor:
    """Validate a variance schedule: a 1-D float tensor with every beta in (0, 1)."""
    if not isinstance(betas, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(betas).__name__}")
    if betas.ndim != 1 or betas.numel() == 0:
        raise ValueError(f"{name} must be a non-empty 1-D tensor, got shape {tuple(betas.shape)}")
    if not betas.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {betas.dtype}")
    if not bool(((betas > 0) & (betas < 1)).all()):
        raise ValueError(
            f"every value of {name} must lie in (0, 1); got min {betas.min().item():.3g}, "
            f"max {betas.max().item():.3g}"
        )
    return betas


def variance_schedule(max_steps: int, min_noise: float = 1e-4, max_noise: float = 0.02) -> Tensor:
    """Linear betas from ``min_noise`` to ``max_noise`` (DDPM paper, Sec. 4: 1e-4 to 0.02).

    Returns a float32 tensor of shape ``(max_steps,)``.
    """
    _check_max_steps(max_steps)
    if not 0 < min_noise <= max_noise < 1:
        raise ValueError(
            f"need 0 < min_noise <= max_noise < 1, got min_noise={min_noise}, max_noise={max_noise}"
        )
    return torch.linspace(min_noise, max_noise, max_steps, dtype=torch.float64).float()


def cosine_variance_schedule(max_steps: int, s: float = 0.008, max_beta: float = 0.999) -> Tensor:
    """Cosine schedule of Nichol & Dhariwal (2021), Eq. 17.

    ``alpha_bar(t) = f(t) / f(0)`` with ``f(t) = cos^2(((t / T) + s) / (1 + s) * pi / 2)`` and
    ``beta_t = min(1 - alpha_bar(t + 1) / alpha_bar(t), max_beta)``. Returns ``(max_steps,)``,
    float32.
    """
    _check_max_steps(max_steps)
    if s < 0:
        raise ValueError(f"s must be >= 0, got {s}")
    if not 0 < max_beta < 1:
        raise ValueError(f"max_beta must lie in (0, 1), got {max_beta}")
    steps = torch.arange(max_steps + 1, dtype=torch.float64) / max_steps
    f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
    betas = (1 - f[1:] / f[:-1]).clamp(max=max_beta)
    return betas.float()


def _as_index(t: int | Tensor, max_steps: int, name: str = "t") -> int | Tensor:
    """Check that ``t`` holds valid 0-based timestep indices for a schedule of ``max_steps``."""
    if isinstance(t, bool):
        raise TypeError(f"{name} must be an int or an integer tensor, got bool")
    if isinstance(t, int):
        if not 0 <= t < max_steps:
            raise ValueError(f"{name} must be a timestep index in [0, {max_steps - 1}], got {t}")
        return t
    if isinstance(t, Tensor):
        if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise TypeError(f"{name} must be an integer tensor of timestep indices, got {t.dtype}")
        if t.numel() and (int(t.min()) < 0 or int(t.max()) >= max_steps):
            raise ValueError(
                f"{name} must hold timestep indices in [0, {max_steps - 1}], "
                f"got values in [{int(t.min())}, {int(t.max())}]"
            )
        return t
    raise TypeError(f"{name} must be an int or an integer tensor, got {type(t).__name__}")


class NoiseSchedule(nn.Module):
    """The forward-process schedule and every coefficient derived from it, as buffers.

    Buffers (all ``(T,)``, float32, indexed by timestep index ``t``; they follow ``.to()`` and are
    saved in ``state_dict``):

    * ``betas``, ``alphas = 1 - betas``, ``alpha_bars = cumprod(alphas)`` (DDPM Eq. 4),
    * ``alpha_bars_prev``: ``alpha_bar[t - 1]``, with 1 at ``t = 0``,
    * ``sqrt_alpha_bars``, ``sqrt_one_minus_alpha_bars``: the Eq. 4 scales,
    * ``posterior_variance``: ``beta_tilde_t = (1 - alpha_bar_prev) / (1 - alpha_bar_t) * beta_t``
      (DDPM Eq. 7), 0 at ``t = 0``,
    * ``sigmas``: ``sqrt((1 - alpha_bar_t) / alpha_bar_t)``, the noise level of Karras et al.

    ``kind`` is ``"linear"`` (``min_noise`` to ``max_noise``) or ``"cosine"``; ``betas`` may be
    given instead to wrap an arbitrary schedule.
    """

    betas: Tensor
    alphas: Tensor
    alpha_bars: Tensor
    alpha_bars_prev: Tensor
    sqrt_alpha_bars: Tensor
    sqrt_one_minus_alpha_bars: Tensor
    posterior_variance: Tensor
    sigmas: Tensor

    def __init__(
        self,
        max_steps: int,
        device: str | torch.device = "cpu",
        min_noise: float = 1e-4,
        max_noise: float = 0.02,
        *,
        kind: str = "linear",
        betas: Tensor | None = None,
    ) -> None:
        super().__init__()
        _check_max_steps(max_steps)
        if kind not in SCHEDULE_KINDS and betas is None:
            raise ValueError(f"kind must be one of {SCHEDULE_KINDS}, got {kind!r}")
        if betas is None:
            if kind == "linear":
                betas = variance_schedule(max_steps, min_noise, max_noise)
            else:
                betas = cosine_variance_schedule(max_steps)
            self.kind = kind
        else:
            betas = check_betas(betas).detach().float().cpu()
            if len(betas) != max_steps:
                raise ValueError(f"betas must have max_steps={max_steps} entries, got {len(betas)}")
            self.kind = "custom"
        self.max_steps = max_steps
        self.min_noise = min_noise
        self.max_noise = max_noise

        # Derived in float64 and stored as float32, so that long products stay accurate.
        b = betas.double()
        a = 1 - b
        ab = torch.cumprod(a, 0)
        ab_prev = torch.cat([ab.new_ones(1), ab[:-1]])
        for name, value in {
            "betas": b,
            "alphas": a,
            "alpha_bars": ab,
            "alpha_bars_prev": ab_prev,
            "sqrt_alpha_bars": ab.sqrt(),
            "sqrt_one_minus_alpha_bars": (1 - ab).sqrt(),
            "posterior_variance": b * (1 - ab_prev) / (1 - ab),
            "sigmas": ((1 - ab) / ab).sqrt(),
        }.items():
            self.register_buffer(name, value.float())
        self.to(device)

    @classmethod
    def from_betas(cls, betas: Tensor, device: str | torch.device = "cpu") -> NoiseSchedule:
        """Wrap an arbitrary variance schedule ``betas (T,)``."""
        check_betas(betas)
        return cls(len(betas), device, betas=betas)

    @classmethod
    def from_alphas_cumprod(
        cls, alphas_cumprod: Tensor, device: str | torch.device = "cpu"
    ) -> NoiseSchedule:
        """Recover the schedule from ``alpha_bar (T,)``:
        ``beta_t = 1 - alpha_bar_t / alpha_bar_{t-1}``."""
        if not isinstance(alphas_cumprod, Tensor):
            raise TypeError(
                f"alphas_cumprod must be a torch.Tensor, got {type(alphas_cumprod).__name__}"
            )
        if alphas_cumprod.ndim != 1 or alphas_cumprod.numel() == 0:
            raise ValueError(
                f"alphas_cumprod must be a non-empty 1-D tensor, got {tuple(alphas_cumprod.shape)}"
            )
        ab = alphas_cumprod.detach().double().cpu()
        if not bool(((ab > 0) & (ab < 1)).all()) or not bool((ab[1:] < ab[:-1]).all()):
            raise ValueError("alphas_cumprod must be strictly decreasing with values in (0, 1)")
        betas = 1 - ab / torch.cat([ab.new_ones(1), ab[:-1]])
        return cls(len(ab), device, betas=betas.float())

    @property
    def device(self) -> torch.device:
        return self.betas.device

    def config(self) -> dict[str, Any]:
        """Plain-data description, enough to rebuild the schedule (used by checkpoints)."""
        cfg: dict[str, Any] = {"max_steps": self.max_steps, "kind": self.kind}
        if self.kind == "linear":
            cfg.update(min_noise=self.min_noise, max_noise=self.max_noise)
        elif self.kind == "custom":
            cfg["betas"] = self.betas.detach().cpu().tolist()
        return cfg

    @classmethod
    def from_config(cls, cfg: dict[str, Any], device: str | torch.device = "cpu") -> NoiseSchedule:
        kind = cfg.get("kind", "linear")
        if kind == "custom":
            return cls.from_betas(torch.tensor(cfg["betas"], dtype=torch.float32), device)
        return cls(
            int(cfg["max_steps"]),
            device,
            float(cfg.get("min_noise", 1e-4)),
            float(cfg.get("max_noise", 0.02)),
            kind=kind,
        )

    def beta(self, t: int | Tensor) -> Tensor:
        """``beta_t`` for timestep index (or indices) ``t``."""
        return self.betas[_as_index(t, self.max_steps)]

    def alpha(self, t: int | Tensor) -> Tensor:
        """``alpha_t = 1 - beta_t`` for timestep index (or indices) ``t``."""
        return self.alphas[_as_index(t, self.max_steps)]

    def alpha_bar(self, t: int | Tensor) -> Tensor:
        """``alpha_bar_t = prod_{i <= t} alpha_i`` for timestep index (or indices) ``t``."""
        return self.alpha_bars[_as_index(t, self.max_steps)]

    def __len__(self) -> int:
        return self.max_steps

    def extra_repr(self) -> str:
        return f"kind={self.kind!r}, max_steps={self.max_steps}"


def extract(values: Tensor, t: Tensor, x_shape: torch.Size | tuple[int, ...]) -> Tensor:
    """Gather ``values[t]`` for a batch of indices ``t (B,)`` and shape it ``(B, 1, ..., 1)``
    so that it broadcasts against a tensor of shape ``x_shape``."""
    out = values.gather(0, t)
    return out.reshape(t.shape[0], *((1,) * (len(x_shape) - 1)))


@dataclass(frozen=True)
class StepCoefficients:
    """Coefficients of every step of a reverse chain over ``timesteps`` (float64, shape ``(N,)``).

    Step ``i`` goes from timestep ``timesteps[i]`` to ``timesteps[i + 1]`` (to "clean", i.e.
    ``alpha_bar_prev = 1``, after the last one). For a sub-sequence the chain is a true DDPM on the
    respaced schedule ``beta'_i = 1 - alpha_bar_t / alpha_bar_prev`` (Nichol & Dhariwal, Sec. 4).
    """

    timesteps: Tensor  # (N,) long
    alpha_bar: Tensor  # alpha_bar_t
    alpha_bar_prev: Tensor  # alpha_bar of the next timestep in the sequence, 1 after the last
    beta: Tensor  # respaced beta'_t = 1 - alpha_bar_t / alpha_bar_prev
    posterior_variance: Tensor  # beta_tilde'_t = (1 - alpha_bar_prev) / (1 - alpha_bar_t) * beta'_t

    @property
    def alpha(self) -> Tensor:
        return 1 - self.beta

    # Algorithm 2 / Eq. 11: mean = (x_t - beta / sqrt(1 - alpha_bar) * eps) / sqrt(alpha)
    @property
    def eps_coef(self) -> Tensor:
        return self.beta / (1 - self.alpha_bar).sqrt()

    @property
    def recip_sqrt_alpha(self) -> Tensor:
        return self.alpha.rsqrt()

    # Eq. 7, x0 form of the posterior mean: mean = coef_x0 * x0 + coef_xt * x_t
    @property
    def posterior_coef_x0(self) -> Tensor:
        return self.beta * self.alpha_bar_prev.sqrt() / (1 - self.alpha_bar)

    @property
    def posterior_coef_xt(self) -> Tensor:
        return (1 - self.alpha_bar_prev) * self.alpha.sqrt() / (1 - self.alpha_bar)

    # Eq. 4 read backwards / DDIM Eq. 12: x0 = (x_t - sqrt(1 - alpha_bar) * eps) / sqrt(alpha_bar)
    @property
    def sqrt_alpha_bar(self) -> Tensor:
        return self.alpha_bar.sqrt()

    @property
    def sqrt_one_minus_alpha_bar(self) -> Tensor:
        return (1 - self.alpha_bar).sqrt()

    @property
    def sqrt_alpha_bar_prev(self) -> Tensor:
        return self.alpha_bar_prev.sqrt()

    @property
    def sqrt_one_minus_alpha_bar_prev(self) -> Tensor:
        return (1 - self.alpha_bar_prev).sqrt()

    # Karras et al. noise level: sigma = sqrt((1 - alpha_bar) / alpha_bar); 0 after the last step.
    @property
    def sigma(self) -> Tensor:
        return ((1 - self.alpha_bar) / self.alpha_bar).sqrt()

    @property
    def sigma_prev(self) -> Tensor:
        return ((1 - self.alpha_bar_prev) / self.alpha_bar_prev).sqrt()

    def ddim_sigma(self, eta: float) -> Tensor:
        """DDIM Eq. 16: ``sigma = eta * sqrt(beta_tilde')``; eta=1 is DDPM's posterior variance."""
        return eta * self.posterior_variance.sqrt()

    def ddim_direction(self, eta: float) -> Tensor:
        """DDIM Eq. 12, the scale of the "direction pointing to x_t": ``sqrt(1 - alpha_bar_prev -
        sigma^2)``. Clamped at 0 against rounding; it is exactly 0 after the last step."""
        return (1 - self.alpha_bar_prev - self.ddim_sigma(eta) ** 2).clamp(min=0).sqrt()

    # DPM-Solver++ (Lu et al. 2022) in the VP parameterisation alpha = sqrt(alpha_bar),
    # sigma = sqrt(1 - alpha_bar), lambda = log(alpha / sigma): half the log-SNR.
    @property
    def log_snr_half(self) -> Tensor:
        """``lambda_t = log(sqrt(alpha_bar_t) / sqrt(1 - alpha_bar_t))``."""
        return 0.5 * (self.alpha_bar.log() - (-self.alpha_bar).log1p())

    @property
    def log_snr_half_prev(self) -> Tensor:
        """``lambda`` of the next timestep in the sequence; ``+inf`` after the last step."""
        return 0.5 * (self.alpha_bar_prev.log() - (-self.alpha_bar_prev).log1p())

    @property
    def dpm_solver_h(self) -> Tensor:
        """Step size in lambda, ``h_i = lambda_prev - lambda`` (``inf`` for the step to sigma=0)."""
        return self.log_snr_half_prev - self.log_snr_half

    @property
    def dpm_solver_x_coef(self) -> Tensor:
        """DPM-Solver++ Alg. 2, factor of x: ``sigma_prev / sigma`` (0 at the last step)."""
        return self.sqrt_one_minus_alpha_bar_prev / self.sqrt_one_minus_alpha_bar

    @property
    def dpm_solver_x0_coef(self) -> Tensor:
        """DPM-Solver++ Alg. 2, factor of the data prediction: ``-alpha_prev * (e^{-h} - 1)``
        (1 at the last step, where ``h = inf``)."""
        return -self.sqrt_alpha_bar_prev * torch.expm1(-self.dpm_solver_h)

    @property
    def dpm_solver_ratio(self) -> Tensor:
        """``r_i = h_{i-1} / h_i`` of the second-order correction (NaN for the first step)."""
        h = self.dpm_solver_h
        return torch.cat([h.new_full((1,), math.nan), h[:-1] / h[1:]])

    def __len__(self) -> int:
        return len(self.timesteps)


def step_coefficients(schedule: NoiseSchedule, timesteps: Tensor | None = None) -> StepCoefficients:
    """Per-step coefficients for a reverse chain over ``timesteps`` (strictly decreasing indices).

    ``timesteps=None`` means the full chain ``T-1, ..., 0``. Values are float64 on the CPU; samplers
    turn them into Python floats once, before their loop.
    """
    T = len(schedule)
    if timesteps is None:
        timesteps = torch.arange(T - 1, -1, -1)
    timesteps = check_timesteps(timesteps, T)
    # Recompute alpha_bar in float64 from the betas so a contiguous chain reproduces beta exactly.
    alpha_bars = torch.cumprod(1 - schedule.betas.detach().double().cpu(), 0)
    ab = alpha_bars[timesteps]
    ab_prev = torch.cat([ab[1:], ab.new_ones(1)])
    beta = 1 - ab / ab_prev
    posterior_variance = beta * (1 - ab_prev) / (1 - ab)
    return StepCoefficients(timesteps, ab, ab_prev, beta, posterior_variance)


def check_timesteps(timesteps: Any, max_steps: int) -> Tensor:
    """Validate a sampling sequence: a 1-D integer tensor, strictly decreasing, within [0, T-1]."""
    if not isinstance(timesteps, Tensor):
        raise TypeError(f"timesteps must be a torch.Tensor, got {type(timesteps).__name__}")
    if timesteps.is_floating_point() or timesteps.dtype == torch.bool:
        raise TypeError(f"timesteps must be an integer tensor, got {timesteps.dtype}")
    if timesteps.ndim != 1 or timesteps.numel() == 0:
        raise ValueError(f"timesteps must be a non-empty 1-D tensor, got {tuple(timesteps.shape)}")
    timesteps = timesteps.detach().cpu().long()
    if int(timesteps.min()) < 0 or int(timesteps.max()) >= max_steps:
        raise ValueError(
            f"timesteps must lie in [0, {max_steps - 1}], "
            f"got [{int(timesteps.min())}, {int(timesteps.max())}]"
        )
    if len(timesteps) > 1 and not bool((timesteps[1:] < timesteps[:-1]).all()):
        raise ValueError("timesteps must be strictly decreasing")
    return timesteps
