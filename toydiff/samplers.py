"""Samplers beyond Algorithm 2: respaced DDPM, DDIM (and its inversion), DPM-Solver++(2M), guidance.

Each sampler is one loop over the same per-step coefficients,
:func:`toydiff.schedule.step_coefficients`, computed for the chosen timestep sub-sequence
``t_0 > t_1 > ... > t_{N-1}``; step ``i`` goes from ``t_i`` to ``t_{i+1}`` and the last one to clean
data (``alpha_bar_prev = 1``). Writing ``a = sqrt(alpha_bar_t)``, ``s = sqrt(1 - alpha_bar_t)`` and
``x0 = (x_t - s eps) / a`` (Eq. 4 read backwards):

* DDPM (Ho et al. 2020, Alg. 2 / Eq. 7) on the respaced betas
  ``beta' = 1 - alpha_bar_t / alpha_bar_prev``: :func:`toydiff.sampling.ddpm_loop`.
* DDIM (Song et al. 2021, Eq. 12):
  ``x_prev = a_prev x0 + sqrt(1 - alpha_bar_prev - sigma^2) eps + sigma z`` with
  ``sigma = eta sqrt(beta_tilde')`` (Eq. 16): :func:`ddim_loop`; run backwards it encodes data into
  noise, :func:`ddim_inversion_loop`.
* DPM-Solver++(2M) (Lu et al. 2022, Alg. 2) in ``lambda = log(a / s)``: :func:`dpm_solver_loop`.

Every loop takes ``eps_fn(x, t: int)`` from :func:`model_noise_fn`, which also implements
classifier-free guidance (Ho & Salimans 2022): ``eps = eps_u + w (eps_c - eps_u)``, both branches in
one batched forward pass. Loops update ``x`` in place with Python-float coefficients computed before
the loop. Random draws: ``x_T`` first (unless given), then one ``randn`` per step that adds noise.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from einops import rearrange
from torch import Tensor, nn

from toydiff.noise import Generators
from toydiff.parallel import LoopHelper
from toydiff.sampling import (
    Keep,
    ModelNoiseFn,
    NoiseFn,
    Progress,
    check_labels,
    check_variance,
    ddpm_loop,
    end_step,
    initial_noise,
    noise_fn,
    run_loop,
)
from toydiff.schedule import NoiseSchedule, StepCoefficients, step_coefficients
from toydiff.timesteps import timestep_sequence
from toydiff.validation import check_positive_int


def check_shape(shape: Any) -> tuple[int, ...]:
    """A sample shape ``(B, ...)``: a non-empty sequence of positive ints."""
    if not isinstance(shape, Sequence) or isinstance(shape, str) or len(shape) == 0:
        raise TypeError(f"shape must be a tuple of ints (B, ...), got {shape!r}")
    for dim in shape:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"shape must hold positive ints, got {tuple(shape)!r}")
    return tuple(shape)


def check_eta(eta: Any) -> float:
    """DDIM's eta, in [0, 1]: 0 is deterministic, 1 is DDPM's posterior variance. Above 1 the
    variance ``eta^2 beta_tilde'`` can exceed ``1 - alpha_bar_prev`` and Eq. 12 has no real
    direction term, so it is refused rather than silently clamped."""
    if isinstance(eta, bool) or not isinstance(eta, int | float) or not math.isfinite(eta):
        raise TypeError(f"eta must be a real number in [0, 1], got {eta!r}")
    if not 0 <= eta <= 1:
        raise ValueError(f"eta must lie in [0, 1] (0 = deterministic DDIM, 1 = DDPM), got {eta}")
    return float(eta)


def check_guidance_scale(guidance_scale: Any) -> float:
    if isinstance(guidance_scale, bool) or not isinstance(guidance_scale, int | float):
        raise TypeError(f"guidance_scale must be a real number, got {guidance_scale!r}")
    if not math.isfinite(guidance_scale):
        raise ValueError(f"guidance_scale must be finite, got {guidance_scale}")
    return float(guidance_scale)


def model_noise_fn(
    model: nn.Module,
    batch: int,
    *,
    y: Tensor | None = None,
    guidance_scale: float | None = None,
) -> ModelNoiseFn:
    """``eps_fn(x (B, ...), t: int) -> eps (B, ...)`` for the sampler loops, after checking the
    labels and the guidance scale (see :class:`toydiff.sampling.ModelNoiseFn`).

    Guidance needs a class-conditional model (``config.num_classes``; null label ``num_classes``)
    and labels.
    """
    labels = check_labels(model, y, batch)
    if guidance_scale is None:
        return noise_fn(model, labels)
    w = check_guidance_scale(guidance_scale)
    num_classes = getattr(getattr(model, "config", None), "num_classes", None)
    if num_classes is None:
        raise ValueError(
            "guidance_scale was given but the model is unconditional: classifier-free guidance "
            "needs a class-conditional model (config.num_classes) trained with label dropout"
        )
    if labels is None:
        raise ValueError(f"guidance_scale needs class labels: pass y as a LongTensor ({batch},)")
    return ModelNoiseFn(model, labels, w, getattr(model, "null_label", num_classes))


def ddim_loop(
    eps_fn: NoiseFn,
    x: Tensor,
    coeffs: StepCoefficients,
    *,
    eta: float = 0.0,
    clip_denoised: bool = False,
    generator: Generators = None,
    keep: Keep | None = None,
    progress: Progress | None = None,
) -> Tensor:
    """DDIM (Song et al. 2021, Eq. 12) over ``coeffs`` from ``x = x_T`` (updated in place).

    Unclipped, the step is linear in ``(x_t, eps)``:
    ``x_prev = (a_prev / a) x_t + (d - a_prev s / a) eps`` with ``d = sqrt(1 - alpha_bar_prev -
    sigma^2)``. With ``clip_denoised`` the predicted x0 is clamped to [-1, 1] and eps re-derived
    from it, ``eps = (x_t - a x0) / s``, so the step stays consistent:
    ``x_prev = (d / s) x_t + (a_prev - d a / s) x0``. Noise ``sigma z`` is drawn at every step with
    ``sigma > 0`` (none for eta=0, none at the last step).
    """
    eta = check_eta(eta)
    a, s, a_prev = (
        coeffs.sqrt_alpha_bar,
        coeffs.sqrt_one_minus_alpha_bar,
        coeffs.sqrt_alpha_bar_prev,
    )
    d = coeffs.ddim_direction(eta)
    sigmas = coeffs.ddim_sigma(eta)
    rows = zip(
        coeffs.timesteps.tolist(),
        (a_prev / a).tolist(),
        (d - a_prev * s / a).tolist(),
        (d / s).tolist(),
        ((a_prev - d * a / s) / a).tolist(),  # the x0 coefficient over a: see a * x0 below
        a.tolist(),
        s.tolist(),
        sigmas.tolist(),
        strict=True,
    )
    draws = int((sigmas > 0).sum())
    with LoopHelper(eps_fn, x.shape, draws, generator=generator, device=x.device) as helper:
        for t, x_coef, eps_coef, clip_x_coef, clip_ax0_coef, a_t, s_t, sigma in rows:
            eps = helper.eps(x, t)
            if clip_denoised:  # clamp x0 = (x - s eps) / a to [-1, 1] as a * x0 to [-a, a]
                ax0 = torch.add(x, eps, alpha=-s_t).clamp_(-a_t, a_t)
                x.mul_(clip_x_coef).add_(ax0, alpha=clip_ax0_coef)
            else:
                x.mul_(x_coef).add_(eps, alpha=eps_coef)
            if sigma > 0:
                x.add_(helper.noise(), alpha=sigma)
            end_step(x, keep, progress)
    return x


def ddim_inversion_loop(
    eps_fn: NoiseFn,
    x: Tensor,
    coeffs: StepCoefficients,
    *,
    fixed_point_iters: int = 0,
    keep: Keep | None = None,
    progress: Progress | None = None,
) -> Tensor:
    """Deterministic DDIM encoding: eta=0 steps run upwards, from data ``x = x0`` to ``x_{t_0}``.

    Step ``i`` (for ``i = N-1, ..., 0``) solves the eta=0 sampling step from ``t_i`` for its start
    point: ``x_up = (a / a_prev) x + (s - a s_prev / a_prev) eps(x_up, t_i)``. The eps at the
    unknown point is first approximated by eps at the current point (timestep ``t_{i+1}``, or
    ``t_{N-1}`` for the first step, since clean data has no timestep of its own), as in Song et al.
    2021, Sec. 4.3; each of ``fixed_point_iters`` iterations then re-evaluates
    ``eps(x_up, t_i)``, which makes decoding the latent reproduce the input far more closely.
    """
    if isinstance(fixed_point_iters, bool) or not isinstance(fixed_point_iters, int):
        raise TypeError(f"fixed_point_iters must be an int, got {fixed_point_iters!r}")
    if fixed_point_iters < 0:
        raise ValueError(f"fixed_point_iters must be >= 0, got {fixed_point_iters}")
    a, s = coeffs.sqrt_alpha_bar, coeffs.sqrt_one_minus_alpha_bar
    a_prev, s_prev = coeffs.sqrt_alpha_bar_prev, coeffs.sqrt_one_minus_alpha_bar_prev
    t_start = torch.cat([coeffs.timesteps[1:], coeffs.timesteps[-1:]])
    rows = zip(
        coeffs.timesteps.tolist(),
        t_start.tolist(),
        (a / a_prev).tolist(),
        (s - a * s_prev / a_prev).tolist(),
        strict=True,
    )
    for t, t_current, x_coef, eps_coef in reversed(list(rows)):
        start = x.clone() if fixed_point_iters else x
        eps = eps_fn(x, t_current)
        x.mul_(x_coef).add_(eps, alpha=eps_coef)
        for _ in range(fixed_point_iters):
            eps = eps_fn(x, t)
            torch.add(eps.mul_(eps_coef), start, alpha=x_coef, out=x)
        end_step(x, keep, progress)
    return x


def dpm_solver_loop(
    eps_fn: NoiseFn,
    x: Tensor,
    coeffs: StepCoefficients,
    *,
    order: int = 2,
    clip_denoised: bool = False,
    keep: Keep | None = None,
    progress: Progress | None = None,
) -> Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022, Alg. 2), data-prediction form, from ``x = x_T`` in place.

    With ``x0_i = (x - s eps) / a`` (clamped if ``clip_denoised``),
    ``h_i = lambda_{i+1} - lambda_i`` and ``r_i = h_{i-1} / h_i``:

        x_{i+1} = (s_{i+1} / s_i) x_i - a_{i+1} (e^{-h_i} - 1) D_i,
        D_i = (1 + 1 / (2 r_i)) x0_i - 1 / (2 r_i) x0_{i-1}.

    The first step, and the last (to sigma = 0, where it returns ``x0`` of the last prediction), use
    ``D_i = x0_i``; ``order=1`` uses it throughout, which is exactly DDIM with eta=0.
    """
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, got {order!r}")
    rows = zip(
        coeffs.timesteps.tolist(),
        coeffs.sqrt_alpha_bar.tolist(),
        coeffs.sqrt_one_minus_alpha_bar.tolist(),
        coeffs.dpm_solver_x_coef.tolist(),
        coeffs.dpm_solver_x0_coef.tolist(),
        (0.5 / coeffs.dpm_solver_ratio).tolist(),
        strict=True,
    )
    last = len(coeffs) - 1
    x0_prev: Tensor | None = None
    for i, (t, a_t, s_t, x_coef, x0_coef, half_inv_r) in enumerate(rows):
        x0 = torch.add(x, eps_fn(x, t), alpha=-s_t).div_(a_t)
        if clip_denoised:
            x0.clamp_(-1, 1)
        if order == 1 or x0_prev is None or i == last:
            d = x0
        else:
            d = torch.lerp(x0_prev, x0, 1 + half_inv_r)  # (1 + c) x0 - c x0_prev
        x.mul_(x_coef).add_(d, alpha=x0_coef)
        x0_prev = x0
        end_step(x, keep, progress)
    return x


def slerp(v0: Tensor, v1: Tensor, weight: float) -> Tensor:
    """Spherical interpolation between ``v0`` and ``v1`` (``(B, ...)``), per batch element.

    The direction moves along the great circle from ``v0 / |v0|`` to ``v1 / |v1|`` and the norm
    linearly from ``|v0|`` to ``|v1|``: Gaussian latents keep a typical norm, which plain linear
    interpolation would shrink in the middle, and unequal norms cannot blow the result up when the
    two are nearly opposite. ``weight`` 0 gives ``v0`` and 1 gives ``v1``. Where the directions are
    (anti)parallel to within 1e-6 the great circle is undefined and it interpolates linearly.
    """
    a = rearrange(v0, "b ... -> b (...)").double()
    b = rearrange(v1, "b ... -> b (...)").double()
    norm_a, norm_b = a.norm(dim=-1, keepdim=True), b.norm(dim=-1, keepdim=True)
    unit_a, unit_b = a / norm_a.clamp(min=1e-30), b / norm_b.clamp(min=1e-30)
    omega = (unit_a * unit_b).sum(-1, keepdim=True).clamp(-1, 1).acos()
    sin = omega.sin()
    linear = sin.abs() < 1e-6
    safe = torch.where(linear, torch.ones_like(sin), sin)
    direction = (((1 - weight) * omega).sin() * unit_a + (weight * omega).sin() * unit_b) / safe
    out = direction * ((1 - weight) * norm_a + weight * norm_b)
    out = torch.where(linear, (1 - weight) * a + weight * b, out)
    return out.reshape(v0.shape).to(v0.dtype)


#: ``loop(eps_fn, x, coeffs, *, keep, progress, **options) -> x``: one of the loops above.
Loop = Callable[..., Tensor]


class _Sampler:
    """Plumbing shared by the sampler classes: checks, timesteps, x_T, progress, intermediates."""

    def __init__(
        self, model: nn.Module, schedule: NoiseSchedule, device: str | torch.device
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        model_steps = getattr(model, "max_steps", None)
        if model_steps is not None and model_steps != len(schedule):
            raise ValueError(
                f"the schedule has {len(schedule)} timesteps but the model was built for "
                f"{model_steps}"
            )
        self.device = torch.device(device)
        self.model = model.to(self.device)
        self.schedule = schedule
        self.num_timesteps = len(schedule)

    def timesteps(self, num_steps: int | None, spacing: str = "uniform") -> Tensor:
        """The timestep indices visited for ``num_steps`` steps with ``spacing``: ``(N,)``."""
        return timestep_sequence(
            self.num_timesteps, num_steps, spacing, alphas_cumprod=self.schedule.alpha_bars
        )

    @torch.no_grad()
    def _run(
        self,
        loop: Loop,
        options: dict[str, Any],
        x: Tensor | None,
        shape: Any,
        num_steps: int | None,
        *,
        desc: str,
        spacing: str,
        y: Tensor | None,
        guidance_scale: float | None,
        generator: Generators,
        return_intermediates: bool,
        timesteps: Tensor | None = None,
        progress: bool,
        progress_callback: Callable[[float], Any] | None,
    ) -> Tensor | tuple[Tensor, list[Tensor]]:
        """Run ``loop`` (with its own keyword ``options``) from ``x`` (a copy of the given x_T) or
        from fresh noise of ``shape``."""
        shape = check_shape(shape)
        sample_shape = getattr(self.model, "img_shape", None)
        if sample_shape is not None and shape[1:] != tuple(sample_shape):
            raise ValueError(
                f"shape must be (B, {', '.join(map(str, sample_shape))}) for this model, "
                f"got {shape}"
            )
        if timesteps is None:
            timesteps = self.timesteps(num_steps, spacing)
        coeffs = step_coefficients(self.schedule, timesteps)
        if y is not None and isinstance(y, Tensor):
            y = y.to(self.device)
        eps_fn = model_noise_fn(self.model, shape[0], y=y, guidance_scale=guidance_scale)
        x = initial_noise(shape, x, generator, self.device)
        intermediates: list[Tensor] | None = [] if return_intermediates else None
        x = run_loop(
            loop,
            self.model,
            eps_fn,
            x,
            coeffs,
            desc=desc,
            progress=progress,
            progress_callback=progress_callback,
            intermediates=intermediates,
            **options,
        )
        return x if intermediates is None else (x, intermediates)


class DDPMSampler(_Sampler):
    """DDPM ancestral sampling (Ho et al. 2020, Alg. 2) for ``model`` trained on ``betas (T,)``.

    ``num_steps < T`` runs a true DDPM on the ``spacing`` sub-sequence with respaced betas
    ``beta'_t = 1 - alpha_bar_t / alpha_bar_prev`` (Nichol & Dhariwal 2021, Sec. 4), not single-step
    coefficients applied across skipped steps.
    """

    def __init__(self, model: nn.Module, betas: Tensor, device: str | torch.device = "cpu") -> None:
        super().__init__(model, NoiseSchedule.from_betas(betas), device)

    def sample(
        self,
        shape: Sequence[int],
        num_steps: int | None = None,
        return_intermediates: bool = False,
        progress_callback: Callable[[float], Any] | None = None,
        *,
        variance: str = "beta_tilde",
        clip_denoised: bool = True,
        generator: Generators = None,
        x_T: Tensor | None = None,
        spacing: str = "uniform",
        timesteps: Tensor | None = None,
        y: Tensor | None = None,
        guidance_scale: float | None = None,
        progress: bool = True,
    ) -> Tensor | tuple[Tensor, list[Tensor]]:
        """Samples of ``shape = (B, ...)`` in model space; with ``return_intermediates``,
        ``(x0, [x_T, x_{t_1}, ..., x0])`` on the CPU.

        ``variance``: ``"beta_tilde"`` (posterior variance, Eq. 7) or ``"beta"``. ``clip_denoised``
        clamps the predicted x0 to [-1, 1] (x0-form posterior mean). ``num_steps`` None means all T.
        ``y`` conditions a class-conditional model; ``guidance_scale`` adds classifier-free
        guidance.
        ``timesteps`` (a strictly decreasing LongTensor) replaces ``num_steps`` and ``spacing``;
        with ``x_T`` the state at ``timesteps[0]`` it starts mid-chain (SDEdit). ``generator`` may
        be one generator per sample (:func:`toydiff.noise.normal`): batch-independent noise.
        """
        check_variance(variance)

        return self._run(
            ddpm_loop,
            {"variance": variance, "clip_denoised": clip_denoised, "generator": generator},
            x_T,
            shape,
            num_steps,
            desc="DDPM",
            spacing=spacing,
            y=y,
            guidance_scale=guidance_scale,
            generator=generator,
            timesteps=timesteps,
            return_intermediates=return_intermediates,
            progress=progress,
            progress_callback=progress_callback,
        )

    def sample_with_guidance(
        self,
        shape: Sequence[int],
        condition: Tensor,
        guidance_scale: float = 7.5,
        num_steps: int | None = None,
        return_intermediates: bool = False,
        progress_callback: Callable[[float], Any] | None = None,
        **kwargs: Any,
    ) -> Tensor | tuple[Tensor, list[Tensor]]:
        """Classifier-free guided DDPM toward the labels ``condition (B,)``; ``kwargs`` as in
        :meth:`sample`. The unconditional branch uses the model's null label, never a real class."""
        if not isinstance(condition, Tensor):
            raise TypeError(
                f"condition must be a LongTensor of class labels, got {type(condition).__name__}"
            )
        return self.sample(
            shape,
            num_steps,
            return_intermediates,
            progress_callback,
            y=condition,
            guidance_scale=guidance_scale,
            **kwargs,
        )


class DDIMSampler(_Sampler):
    """DDIM (Song et al. 2021) for ``model`` trained with ``alphas_cumprod (T,)``.

    The previous timestep of each step is the next entry of the chosen sub-sequence; the last step
    goes to ``alpha_bar = 1``. ``eta`` in [0, 1]: 0 is deterministic, 1 is DDPM's ``beta_tilde``
    step on the same sub-sequence (same generator, same samples).
    """

    def __init__(
        self, model: nn.Module, alphas_cumprod: Tensor, device: str | torch.device = "cpu"
    ) -> None:
        super().__init__(model, NoiseSchedule.from_alphas_cumprod(alphas_cumprod), device)

    def sample(
        self,
        shape: Sequence[int],
        num_steps: int = 50,
        eta: float = 0.0,
        return_intermediates: bool = False,
        progress_callback: Callable[[float], Any] | None = None,
        *,
        clip_denoised: bool = True,
        generator: Generators = None,
        x_T: Tensor | None = None,
        spacing: str = "uniform",
        timesteps: Tensor | None = None,
        y: Tensor | None = None,
        guidance_scale: float | None = None,
        progress: bool = True,
    ) -> Tensor | tuple[Tensor, list[Tensor]]:
        """Samples of ``shape = (B, ...)``; options as in :meth:`DDPMSampler.sample`."""
        eta = check_eta(eta)

        return self._run(
            ddim_loop,
            {"eta": eta, "clip_denoised": clip_denoised, "generator": generator},
            x_T,
            shape,
            num_steps,
            desc=f"DDIM eta={eta:g}",
            spacing=spacing,
            y=y,
            guidance_scale=guidance_scale,
            generator=generator,
            timesteps=timesteps,
            return_intermediates=return_intermediates,
            progress=progress,
            progress_callback=progress_callback,
        )

    def invert(
        self,
        x0: Tensor,
        num_steps: int = 50,
        *,
        spacing: str = "uniform",
        y: Tensor | None = None,
        guidance_scale: float | None = None,
        fixed_point_iters: int = 2,
        return_intermediates: bool = False,
        progress: bool = True,
        progress_callback: Callable[[float], Any] | None = None,
    ) -> Tensor | tuple[Tensor, list[Tensor]]:
        """Encode data ``x0 (B, ...)`` to the latent ``x_T`` that :meth:`sample` (eta=0, the same
        ``num_steps`` and ``spacing``, no clipping) maps back to ``x0``. No randomness.

        ``fixed_point_iters`` extra model calls per step refine each step's noise prediction (see
        :func:`ddim_inversion_loop`); 0 is the plain one-evaluation inversion."""
        if not isinstance(x0, Tensor) or not x0.is_floating_point():
            raise TypeError("x0 must be a floating-point tensor (B, ...)")

        return self._run(
            ddim_inversion_loop,
            {"fixed_point_iters": fixed_point_iters},
            x0,
            tuple(x0.shape),
            num_steps,
            desc="DDIM inversion",
            spacing=spacing,
            y=y,
            guidance_scale=guidance_scale,
            generator=None,
            return_intermediates=return_intermediates,
            progress=progress,
            progress_callback=progress_callback,
        )

    def sample_interpolation(
        self,
        x0_start: Tensor,
        x0_end: Tensor,
        num_interpolations: int = 10,
        num_steps: int = 50,
        *,
        spacing: str = "uniform",
        clip_denoised: bool = False,
        fixed_point_iters: int = 2,
        progress: bool = True,
    ) -> list[Tensor]:
        """``num_interpolations`` samples from ``x0_start`` to ``x0_end`` (both ``(B, ...)``).

        Both inputs are DDIM-inverted to their latents, which are slerped and decoded with eta=0 in
        one batch, so the first and last entries reproduce the two inputs (up to inversion error).
        Decoding is unclipped by default, being the inverse of the (unclipped) encoding.
        """
        check_positive_int(num_interpolations, "num_interpolations")
        if num_interpolations < 2:
            raise ValueError(
                f"num_interpolations must be >= 2 (the two end points), got {num_interpolations}"
            )
        for name, value in (("x0_start", x0_start), ("x0_end", x0_end)):
            if not isinstance(value, Tensor) or not value.is_floating_point():
                raise TypeError(f"{name} must be a floating-point tensor (B, ...)")
        if x0_start.shape != x0_end.shape:
            raise ValueError(
                f"x0_start and x0_end must have the same shape, got {tuple(x0_start.shape)} "
                f"and {tuple(x0_end.shape)}"
            )
        latents = self.invert(
            torch.cat([x0_start, x0_end]),
            num_steps,
            spacing=spacing,
            fixed_point_iters=fixed_point_iters,
            progress=progress,
        )
        z_start, z_end = latents.chunk(2)
        weights = torch.linspace(0, 1, num_interpolations, dtype=torch.float64).tolist()
        x_T = torch.cat([slerp(z_start, z_end, w) for w in weights])
        out = self.sample(
            tuple(x_T.shape),
            num_steps,
            x_T=x_T,
            spacing=spacing,
            clip_denoised=clip_denoised,
            progress=progress,
        )
        return list(out.chunk(num_interpolations))


class DPMSolverSampler(_Sampler):
    """DPM-Solver++(2M) (Lu et al. 2022) for a discrete-time noise-prediction ``model`` trained with
    ``alphas_cumprod (T,)``: deterministic, about 20 steps, any spacing (``"karras"`` included).

    Prefer ``spacing="karras"`` (or ``"trailing"``): uniform spacing in t takes very uneven steps in
    lambda near t = 0, where the two-step extrapolation then loses its accuracy. On the 8-mode
    mixture of the tests (std 0.08), 20 steps put 98% of samples within 3 std of a mode with Karras
    spacing and 78% with uniform spacing.
    """

    def __init__(
        self, model: nn.Module, alphas_cumprod: Tensor, device: str | torch.device = "cpu"
    ) -> None:
        super().__init__(model, NoiseSchedule.from_alphas_cumprod(alphas_cumprod), device)

    def sample(
        self,
        shape: Sequence[int],
        num_steps: int = 20,
        return_intermediates: bool = False,
        progress_callback: Callable[[float], Any] | None = None,
        *,
        order: int = 2,
        clip_denoised: bool = True,
        generator: Generators = None,
        x_T: Tensor | None = None,
        spacing: str = "uniform",
        timesteps: Tensor | None = None,
        y: Tensor | None = None,
        guidance_scale: float | None = None,
        progress: bool = True,
    ) -> Tensor | tuple[Tensor, list[Tensor]]:
        """Samples of ``shape = (B, ...)``; ``order=1`` is DPM-Solver++(1), i.e. DDIM with eta=0.
        Other options as in :meth:`DDPMSampler.sample`."""
        if order not in (1, 2):
            raise ValueError(f"order must be 1 or 2, got {order!r}")

        return self._run(
            dpm_solver_loop,
            {"order": order, "clip_denoised": clip_denoised},
            x_T,
            shape,
            num_steps,
            desc=f"DPM-Solver++({order}M)",
            spacing=spacing,
            y=y,
            guidance_scale=guidance_scale,
            generator=generator,
            timesteps=timesteps,
            return_intermediates=return_intermediates,
            progress=progress,
            progress_callback=progress_callback,
        )
