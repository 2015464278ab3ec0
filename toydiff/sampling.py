"""Algorithm 2 of the DDPM paper, and the pieces every sampler shares.

The reverse step from timestep ``t`` to the previous timestep of the chain (DDPM Eq. 11 / Eq. 7):

    mean = (x_t - beta_t / sqrt(1 - alpha_bar_t) * eps) / sqrt(alpha_t)            (eps form)
         = coef_x0 * clip(x0_hat) + coef_xt * x_t                                   (x0 form)
    x_prev = mean + sigma_t * z,   z ~ N(0, I),   no noise at the last step

with ``sigma_t^2 = beta_tilde_t`` (default) or ``beta_t``. The coefficients come from
:func:`toydiff.schedule.step_coefficients`, shared with DDIM and DPM-Solver.

Random draws follow one order: ``x_T = randn(shape, generator)`` unless given, then one
``randn(shape, generator)`` per step that adds noise, after that step's mean. For large batches a
:class:`toydiff.parallel.LoopHelper` makes those draws on a helper thread a step ahead (same
values, same order) and computes part of each step's network evaluation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, replace
from typing import Any, cast

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from toydiff.noise import Generators, check_generators, normal
from toydiff.parallel import LoopHelper, NoiseFn
from toydiff.schedule import NoiseSchedule, StepCoefficients, step_coefficients
from toydiff.timesteps import timestep_sequence
from toydiff.validation import check_positive_int

VARIANCES = ("beta_tilde", "beta")

#: ``keep(x)`` is called with the state after every step (for ``return_intermediates``).
Keep = Callable[[Tensor], None]


def model_device(model: nn.Module) -> torch.device:
    """The device of the model's first parameter or buffer (CPU for a model with neither)."""
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def check_labels(model: nn.Module, y: Any, batch: int) -> Tensor | None:
    """Validate class labels for ``model``: None, or a LongTensor ``(batch,)`` in ``[0, K]``."""
    if y is None:
        return None
    num_classes = getattr(getattr(model, "config", None), "num_classes", None)
    if num_classes is None:
        raise ValueError("y (class labels) was given but the model is not class-conditional")
    if not isinstance(y, Tensor) or y.is_floating_point() or y.shape != (batch,):
        raise ValueError(f"y must be a LongTensor of class labels with shape ({batch},)")
    if int(y.min()) < 0 or int(y.max()) > num_classes:
        raise ValueError(
            f"y must hold labels in [0, {num_classes}] ({num_classes} is the null label)"
        )
    return y


def predict(model: nn.Module, x: Tensor, t: int, y: Tensor | None = None) -> Tensor:
    """``model``'s noise prediction for the batch ``x`` at one timestep index ``t``.

    A model with a ``predict_at(x, t, y)`` fast path (``ToyDiffuser``) uses it; any other model is
    called as ``model(x, t_batch)`` or ``model(x, t_batch, y)``, ``t_batch`` a LongTensor ``(B,)``.
    """
    if hasattr(model, "predict_at"):
        return model.predict_at(x, t, y)
    t_batch = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
    return model(x, t_batch) if y is None else model(x, t_batch, y)


@dataclass(frozen=True)
class ModelNoiseFn:
    """``eps_fn(x (B, ...), t: int) -> eps (B, ...)``: what a sampler loop calls at every step.

    The model conditioned on labels ``y (B,)`` if given. With ``guidance`` (classifier-free
    guidance, scale w) the batch ``[x; x]`` with labels ``[y; null_label]`` goes through the model
    in ONE forward pass, then ``eps = eps_u + w (eps_c - eps_u)`` (w=0: unconditional, w=1:
    conditional). ``rows(start, stop)`` is the same function for a block of the batch's rows (its
    labels sliced), which lets a helper thread compute part of a batch
    (:class:`toydiff.parallel.LoopHelper`).
    """

    model: nn.Module
    y: Tensor | None = None
    guidance: float | None = None
    null_label: int | None = None

    def __post_init__(self) -> None:
        if self.guidance is not None and (self.y is None or self.null_label is None):
            raise ValueError("guidance needs class labels y and the model's null_label")

    def __call__(self, x: Tensor, t: int) -> Tensor:
        if self.guidance is None:
            return predict(self.model, x, t, self.y)
        return torch.lerp(*self._unconditional_conditional(x, t), self.guidance)

    def _unconditional_conditional(self, x: Tensor, t: int) -> tuple[Tensor, Tensor]:
        """``(eps_u, eps_c)`` from one forward pass over ``[x; x]`` with labels ``[y; null]``."""
        y = cast(Tensor, self.y)
        labels = torch.cat([y, torch.full_like(y, cast(int, self.null_label))])
        eps_c, eps_u = predict(self.model, torch.cat([x, x]), t, labels).chunk(2)
        return eps_u, eps_c

    def rows(self, start: int, stop: int) -> ModelNoiseFn:
        return replace(self, y=None if self.y is None else self.y[start:stop])

    def buffer(self, shape: Sequence[int]) -> Tensor:
        """A ``(B, W)`` matrix that :meth:`into` fills for a batch of ``shape``, block by block."""
        width = math.prod(shape[1:])
        if self.guidance is None and hasattr(self.model, "output_columns"):
            width = self.model.output_columns(shape[0])
        return torch.empty(shape[0], width, device=model_device(self.model))

    def into(self, x: Tensor, t: int, out: Tensor) -> Tensor:
        """``self(x, t)`` written into ``out``, rows of a :meth:`buffer`; returns it as ``x``'s
        shape (a view)."""
        if self.guidance is None and hasattr(self.model, "output_columns"):
            return self.model.predict_at(x, t, self.y, out=out)
        eps = out[:, : math.prod(x.shape[1:])].view(x.shape)
        if self.guidance is None:
            return eps.copy_(predict(self.model, x, t, self.y))
        return torch.lerp(*self._unconditional_conditional(x, t), self.guidance, out=eps)


def noise_fn(model: nn.Module, y: Tensor | None = None) -> ModelNoiseFn:
    """``model`` (conditioned on ``y`` if given) as ``eps_fn(x, t: int)``; see :func:`predict`."""
    return ModelNoiseFn(model, y)


def initial_noise(
    shape: Sequence[int],
    x_T: Tensor | None,
    generator: Generators,
    device: torch.device,
) -> Tensor:
    """``x_T``: a copy of the given tensor (checked against ``shape``), else ``randn(shape)``.

    ``generator`` may be a sequence of per-sample generators (see :func:`toydiff.noise.normal`).
    """
    check_generators(generator, shape[0])
    if x_T is None:
        return normal(shape, generator=generator, device=device)
    if not isinstance(x_T, Tensor) or not x_T.is_floating_point():
        raise TypeError("x_T must be a floating-point tensor")
    if tuple(x_T.shape) != tuple(shape):
        raise ValueError(f"x_T must have shape {tuple(shape)}, got {tuple(x_T.shape)}")
    return x_T.to(device=device, dtype=torch.float32, copy=True)


def check_variance(variance: str) -> str:
    if variance not in VARIANCES:
        raise ValueError(f"variance must be one of {VARIANCES}, got {variance!r}")
    return variance


class Progress:
    """A tqdm bar plus the ``progress_callback(fraction)`` hook, advanced once per step."""

    def __init__(
        self,
        total: int,
        desc: str,
        progress: bool,
        callback: Callable[[float], Any] | None,
    ) -> None:
        if callback is not None and not callable(callback):
            raise TypeError("progress_callback must be callable, taking a float in [0, 1]")
        self.bar = tqdm(total=total, desc=desc, disable=not progress, leave=False)
        self.total = total
        self.callback = callback
        self.done = 0

    def step(self) -> None:
        self.done += 1
        self.bar.update(1)
        if self.callback is not None:
            self.callback(self.done / self.total)

    def close(self) -> None:
        self.bar.close()


def end_step(x: Tensor, keep: Keep | None, progress: Progress | None) -> None:
    """What every sampler loop does after a step: hand ``x`` to ``keep``, advance ``progress``."""
    if keep is not None:
        keep(x)
    if progress is not None:
        progress.step()


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` in eval mode for the block; its train/eval mode is restored afterwards, also when
    the block raises."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def run_loop(
    loop: Callable[..., Tensor],
    model: nn.Module,
    eps_fn: NoiseFn,
    x: Tensor,
    coeffs: StepCoefficients,
    *,
    desc: str,
    progress: bool,
    progress_callback: Callable[[float], Any] | None,
    intermediates: list[Tensor] | None = None,
    **options: Any,
) -> Tensor:
    """``loop(eps_fn, x, coeffs, keep=..., progress=..., **options)`` from ``x (B, ...)`` with
    ``model`` in eval mode and a progress bar ``desc``: the scaffolding every sampler shares.

    With an ``intermediates`` list, the start state and the state after every step are appended to
    it as CPU copies.
    """
    keep: Keep | None = None
    if intermediates is not None:
        intermediates.append(x.cpu().clone())

        def keep(state: Tensor) -> None:
            intermediates.append(state.cpu().clone())

    with closing(Progress(len(coeffs), desc, progress, progress_callback)) as bar, eval_mode(model):
        return loop(eps_fn, x, coeffs, keep=keep, progress=bar, **options)


def ddpm_loop(
    eps_fn: NoiseFn,
    x: Tensor,
    coeffs: StepCoefficients,
    *,
    variance: str = "beta_tilde",
    clip_denoised: bool = False,
    generator: Generators = None,
    keep: Keep | None = None,
    progress: Progress | None = None,
) -> Tensor:
    """Run the DDPM reverse chain over ``coeffs`` from ``x = x_T`` (updated in place).

    One implementation serves Algorithm 2 (all T steps) and respaced DDPM (a sub-sequence with
    ``beta'_t = 1 - alpha_bar_t / alpha_bar_prev``). ``keep(x)`` is called after every step.
    """
    check_variance(variance)
    var = coeffs.posterior_variance if variance == "beta_tilde" else coeffs.beta
    # Python floats, computed once: no tensor indexing inside the loop.
    # Clipping x0 = (x - s eps) / a to [-1, 1] is clipping a * x0 = x - s eps to [-a, a]; the 1 / a
    # rides on the x0 coefficient, which saves a pass over the batch.
    rows = zip(
        coeffs.timesteps.tolist(),
        coeffs.recip_sqrt_alpha.tolist(),
        coeffs.eps_coef.tolist(),
        coeffs.sqrt_alpha_bar.tolist(),
        coeffs.sqrt_one_minus_alpha_bar.tolist(),
        (coeffs.posterior_coef_x0 / coeffs.sqrt_alpha_bar).tolist(),
        coeffs.posterior_coef_xt.tolist(),
        var.sqrt().tolist(),
        strict=True,
    )
    last = len(coeffs) - 1
    with LoopHelper(eps_fn, x.shape, last, generator=generator, device=x.device) as helper:
        for i, (t, recip_sqrt_a, eps_c, a, s, c_ax0, c_xt, sigma) in enumerate(rows):
            eps = helper.eps(x, t)
            if clip_denoised:
                ax0 = torch.add(x, eps, alpha=-s).clamp_(-a, a)
                x.mul_(c_xt).add_(ax0, alpha=c_ax0)
            else:
                x.add_(eps, alpha=-eps_c).mul_(recip_sqrt_a)
            if i < last:  # Algorithm 2: z = 0 at the last step
                x.add_(helper.noise(), alpha=sigma)
            end_step(x, keep, progress)
    return x


def model_img_shape(model: nn.Module, instead: str) -> tuple[int, ...]:
    """The ``img_shape (C, H, W)`` of an image model; ``instead`` says what to do without one."""
    img_shape = getattr(model, "img_shape", None)
    if img_shape is None:
        raise ValueError(f"model has no img_shape (C, H, W); {instead}")
    return tuple(img_shape)


def resolve_schedule(model: nn.Module, schedule: NoiseSchedule | None) -> NoiseSchedule:
    if schedule is None:
        schedule = getattr(model, "noise_schedule", None)
        if schedule is None:
            raise ValueError(
                "no schedule: pass schedule=..., or train the model first (train() attaches "
                "model.noise_schedule)"
            )
    if not isinstance(schedule, NoiseSchedule):
        raise TypeError(f"schedule must be a NoiseSchedule, got {type(schedule).__name__}")
    return schedule


@torch.no_grad()
def sample(
    model: nn.Module,
    n_samples: int,
    return_all_steps: bool = False,
    *,
    schedule: NoiseSchedule | None = None,
    variance: str = "beta_tilde",
    clip_denoised: bool = False,
    num_steps: int | None = None,
    spacing: str = "uniform",
    y: Tensor | None = None,
    generator: torch.Generator | None = None,
    x_T: Tensor | None = None,
    progress: bool = True,
    progress_callback: Callable[[float], Any] | None = None,
) -> Tensor | list[Tensor]:
    """Algorithm 2 of the DDPM paper: ``n_samples`` images ``(n, C, H, W)`` in model space.

    ``sigma_t = sqrt(beta_tilde_t)`` by default (``variance="beta"`` for ``sqrt(beta_t)``), no noise
    at the last step, no clipping unless ``clip_denoised`` (then the x0-form posterior mean, Eq. 7,
    with the predicted x0 clamped to [-1, 1]). ``num_steps < T`` runs DDPM on the ``spacing``
    sub-sequence with respaced betas. With ``return_all_steps`` the result is the list
    ``[x_T, ..., x_0]`` (on the CPU) instead of ``x_0``.
    """
    check_positive_int(n_samples, "n_samples")
    schedule = resolve_schedule(model, schedule)
    shape = (n_samples, *model_img_shape(model, "use DDPMSampler(...).sample(shape) instead"))
    device = model_device(model)
    y = check_labels(model, y, n_samples)
    timesteps = timestep_sequence(
        len(schedule), num_steps, spacing, alphas_cumprod=schedule.alpha_bars
    )
    coeffs = step_coefficients(schedule, timesteps)
    x = initial_noise(shape, x_T, generator, device)
    steps: list[Tensor] | None = [] if return_all_steps else None
    x = run_loop(
        ddpm_loop,
        model,
        noise_fn(model, y),
        x,
        coeffs,
        desc="DDPM",
        progress=progress,
        progress_callback=progress_callback,
        intermediates=steps,
        variance=variance,
        clip_denoised=clip_denoised,
        generator=generator,
    )
    return x if steps is None else steps
