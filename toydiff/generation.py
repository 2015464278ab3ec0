"""Generation at scale: many images, written batch by batch, each reproducible from its seed.

:class:`ImageGenerator` drives any sampler of :mod:`toydiff.samplers` (or anything with the same
``sample(shape, num_steps, *, generator, x_T, timesteps, progress, ...)``).

Seeds. Image ``i`` of :meth:`ImageGenerator.generate_batch` has seed ``seed + i``; with
:meth:`ImageGenerator.generate_with_seeds` the seeds are given. Each image gets its own
``torch.Generator`` seeded with its seed, which draws, in the documented order, first the image's
``x_T`` and then its noise of every stochastic step (the sampler receives the list of per-image
generators, see :func:`toydiff.noise.normal`). An image therefore depends on its seed and on the
settings, never on the batch it was generated in or on its neighbours: ``batch_size`` only
changes speed and memory. (Bit for bit up to the float rounding of batched matrix products:
BLAS may sum a batch of 3 rows in another order than a batch of 4, about 1e-6 apart; the 8-bit
PNGs come out the same.)

Memory. Images are written to disk (a PNG each) as soon as their batch is done; only the first
``grid_size`` are kept, for the grid. ``metadata.json`` records everything needed to regenerate any
image (:func:`reproduce_image`): the sampler class and options, steps, spacing, seeds, labels,
model and schedule configs, precision, and the toydiff and torch versions.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import inspect
import json
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, cast

import torch
from torch import Tensor, nn

from toydiff.data import denormalize_img
from toydiff.noise import NoiseStrategies, per_sample_generators
from toydiff.plotting import save_image, save_image_grid
from toydiff.samplers import DDIMSampler, DDPMSampler, DPMSolverSampler
from toydiff.schedule import NoiseSchedule
from toydiff.timesteps import timestep_sequence
from toydiff.validation import check_positive_int

METADATA_FILE = "metadata.json"
GRID_FILE = "samples_grid.png"
PRECISIONS = {"float32": torch.float32, "bfloat16": torch.bfloat16}
SAMPLERS = {"ddpm": DDPMSampler, "ddim": DDIMSampler, "dpm-solver": DPMSolverSampler}
SAMPLER_NAMES = tuple(SAMPLERS)
NOISE_STRATEGIES = tuple(name for name in vars(NoiseStrategies) if not name.startswith("_"))


class InferenceModel(nn.Module):
    """A noise predictor prepared for sampling: weights cast to ``dtype`` and optionally compiled.

    Inputs are cast to ``dtype`` and the prediction back to float32, so the sampler's state and its
    coefficients stay float32 (only the network runs in reduced precision, as autocast would do,
    but with the weights cast once instead of at every step). ``compile`` wraps the forward pass
    and the samplers' ``predict_at(x, t: int)`` in ``torch.compile(backend=compile_backend)``,
    the latter with a symbolic ``t`` so one graph serves every timestep (on this MLP the gain is
    small: the time is in the matrix products). Attributes the samplers read (``config``,
    ``img_shape``, ``max_steps``, ``null_label``, ``noise_schedule``) are the wrapped model's.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        dtype: torch.dtype = torch.float32,
        compile: bool = False,
        compile_backend: str = "inductor",
    ) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if dtype not in PRECISIONS.values():
            raise ValueError(f"dtype must be torch.float32 or torch.bfloat16, got {dtype}")
        self.inner = model if dtype == torch.float32 else copy.deepcopy(model).to(dtype)
        self.inner.eval()
        self.dtype = dtype
        self.compiled = compile
        predict = getattr(self.inner, "predict", self.inner.forward)
        fast = getattr(self.inner, "predict_at", None)
        if compile:  # lazy: nothing is compiled until the first call
            predict = torch.compile(predict, backend=compile_backend)
            # dynamic=True makes the int timestep symbolic: one graph for every t, not one each.
            if fast is not None:
                fast = torch.compile(fast, backend=compile_backend, dynamic=True)
        self._predict = predict
        self._predict_at = fast
        for name in ("config", "img_shape", "max_steps", "null_label", "noise_schedule"):
            if hasattr(model, name):
                object.__setattr__(self, name, getattr(model, name))

    def forward(self, x: Tensor, t: Tensor, y: Tensor | None = None) -> Tensor:
        """``eps (B, C, H, W)`` float32 for ``x (B, C, H, W)``, timestep indices ``t (B,)``."""
        x_in = x.to(self.dtype)
        out = self._predict(x_in, t) if y is None else self._predict(x_in, t, y)
        return out.float()

    def predict_at(self, x: Tensor, t: int, y: Tensor | None = None) -> Tensor:
        """The samplers' fast path: one timestep index for the whole batch."""
        if self._predict_at is not None:
            return self._predict_at(x.to(self.dtype), t, y).float()
        return self(x, torch.full((x.shape[0],), t, dtype=torch.long, device=x.device), y)


@dataclass
class GenerationResult:
    """What :meth:`ImageGenerator.generate_batch` wrote: one PNG per image (in order), the grid
    (or None), ``metadata.json``, and the images ``(N, C, H, W)`` in model space only when asked."""

    paths: list[Path]
    grid: Path | None
    metadata_path: Path
    metadata: dict[str, Any] = field(repr=False)
    images: Tensor | None = field(default=None, repr=False)


def _versions() -> dict[str, str]:
    try:
        toydiff_version = version("toydiff")
    except PackageNotFoundError:
        toydiff_version = "unknown"
    return {"toydiff": toydiff_version, "torch": torch.__version__}


def _plain(value: Any) -> Any:
    """JSON-ready copy of a sampler option (tensors become lists, dtypes strings)."""
    if isinstance(value, Tensor):
        return value.tolist()
    if isinstance(value, torch.dtype):
        return str(value).removeprefix("torch.")
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _check_seeds(seeds: Any) -> list[int]:
    if isinstance(seeds, Tensor):
        seeds = seeds.tolist()
    if not isinstance(seeds, Sequence) or isinstance(seeds, str) or len(seeds) == 0:
        raise ValueError(f"seeds must be a non-empty list of ints, got {seeds!r}")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or s < 0:
            raise ValueError(f"seeds must be non-negative ints, got {s!r}")
    return list(seeds)


class ImageGenerator:
    """Generate, save and document images with ``sampler`` (built on ``model``).

    ``output_dir`` receives the PNGs, the grid and ``metadata.json``. ``dtype`` (float32 or
    bfloat16) and ``compile`` select an :class:`InferenceModel` that the sampler uses while this
    generator runs it (the sampler object is left as it was afterwards). ``png_scale`` enlarges each
    saved PNG (1 keeps the data's resolution); ``grid_size`` bounds how many images the grid shows.
    ``noise`` names the :class:`toydiff.noise.NoiseStrategies` method that draws each ``x_T``
    (``noise_options`` are its keyword arguments, e.g. ``truncation``); anything but
    ``"standard_normal"`` departs from the ``N(0, I)`` the samplers assume, on purpose.
    """

    def __init__(
        self,
        model: nn.Module,
        sampler: Any,
        output_dir: str | Path,
        device: str | torch.device = "cpu",
        *,
        dtype: torch.dtype = torch.float32,
        compile: bool = False,
        compile_backend: str = "inductor",
        png_scale: int = 1,
        grid_size: int = 64,
        noise: str = "standard_normal",
        noise_options: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if not callable(getattr(sampler, "sample", None)):
            raise TypeError(f"sampler must have a .sample method, got {type(sampler).__name__}")
        used = getattr(sampler, "model", model)
        if used is not model and getattr(used, "inner", None) is not model:
            raise ValueError("sampler was built on a different model than the one given")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.sampler = sampler
        self.output_dir = Path(output_dir)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.png_scale = check_positive_int(png_scale, "png_scale")
        self.grid_size = check_positive_int(grid_size, "grid_size")
        if noise not in NOISE_STRATEGIES:
            raise ValueError(f"noise must be one of {NOISE_STRATEGIES}, got {noise!r}")
        self.noise = noise
        self.noise_options = dict(noise_options or {})
        self.dtype = dtype
        self.compile = compile
        self.compile_backend = compile_backend
        optimized = dtype != torch.float32 or compile
        self._inference_model = (
            InferenceModel(model, dtype=dtype, compile=compile, compile_backend=compile_backend)
            if optimized
            else None
        )
        self.img_shape = tuple(getattr(model, "img_shape", ()))
        if len(self.img_shape) != 3:
            raise ValueError("model must have img_shape = (C, H, W)")

    # -- the three ways of generating ---------------------------------------------------------

    def generate_batch(
        self,
        num_images: int,
        batch_size: int = 32,
        num_steps: int | None = 50,
        *,
        seed: int = 0,
        y: Tensor | int | None = None,
        save_individual: bool = True,
        save_grid: bool = True,
        grid_nrow: int = 8,
        metadata: dict[str, Any] | None = None,
        return_images: bool = False,
        progress: bool = True,
        **sample_options: Any,
    ) -> GenerationResult:
        """Generate ``num_images`` images, seeds ``seed, seed + 1, ...``, ``batch_size`` at a time.

        Files: ``sample_00000.png``, ... (one per image), ``samples_grid.png`` (the first
        ``grid_size``), ``metadata.json``. ``y`` (a class for all, or a LongTensor
        ``(num_images,)``) conditions a class-conditional model; ``sample_options`` go to
        ``sampler.sample`` (e.g. ``eta``, ``spacing``, ``guidance_scale``, ``clip_denoised``)
        and into the metadata. The same seed and options give the same images for any
        ``batch_size``. ``return_images=True`` also returns them all (memory: N x C x H x W).
        """
        num_images = check_positive_int(num_images, "num_images")
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        seeds = list(range(seed, seed + num_images))
        names = [f"sample_{i:05d}.png" for i in range(num_images)]
        return self._generate(
            "batch",
            seeds,
            names,
            batch_size,
            num_steps,
            y=y,
            save_individual=save_individual,
            save_grid=save_grid,
            grid_nrow=grid_nrow,
            user_metadata=metadata,
            return_images=return_images,
            progress=progress,
            sample_options=sample_options,
        )

    def generate_with_seeds(
        self,
        seeds: Sequence[int],
        num_steps: int | None = 50,
        *,
        batch_size: int = 32,
        y: Tensor | int | None = None,
        save_grid: bool = True,
        grid_nrow: int = 8,
        metadata: dict[str, Any] | None = None,
        progress: bool = True,
        **sample_options: Any,
    ) -> Tensor:
        """One image per seed, ``(len(seeds), C, H, W)``, model space; files ``seed_XXXXXXXX.png``.

        Each image's ``x_T`` and step noise come from ``torch.Generator().manual_seed(seed)``
        (see the module docstring), so a seed gives the same image in any call, batch or order.
        """
        seeds = _check_seeds(seeds)
        names = [f"seed_{s:08d}.png" for s in seeds]
        result = self._generate(
            "seeds",
            seeds,
            names,
            batch_size,
            num_steps,
            y=y,
            save_individual=True,
            save_grid=save_grid,
            grid_nrow=grid_nrow,
            user_metadata=metadata,
            return_images=True,
            progress=progress,
            sample_options=sample_options,
        )
        return cast(Tensor, result.images)  # return_images=True above

    def generate_variations(
        self,
        reference: Tensor,
        num_variations: int = 8,
        noise_strength: float = 0.3,
        num_steps: int | None = 50,
        *,
        seed: int = 0,
        y: Tensor | int | None = None,
        progress: bool = True,
        **sample_options: Any,
    ) -> Tensor:
        """SDEdit (Meng et al. 2022): ``num_variations`` images ``(N, C, H, W)`` near ``reference``.

        ``reference`` ``(C, H, W)`` or ``(1, C, H, W)`` is in model space [-1, 1]. It is noised with
        ``q(x_t | x_0)`` (DDPM Eq. 4), ``x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps``,
        to ``t = round(noise_strength * (T - 1))`` (one ``eps`` per variation, from the generator
        seeded ``seed + i``), and denoised from ``t`` by the sampler over ``t`` followed by the
        entries below ``t`` of its ``num_steps``-step sequence. Small ``noise_strength`` keeps the
        reference's layout; 1 starts from (almost) pure noise. Saved as ``variation_XXX.png``, with
        the reference and a grid (reference first) and ``variations.json``.
        """
        ref = self._check_reference(reference)
        num_variations = check_positive_int(num_variations, "num_variations")
        if isinstance(noise_strength, bool) or not isinstance(noise_strength, int | float):
            raise TypeError(f"noise_strength must be a float in (0, 1], got {noise_strength!r}")
        if not 0 < noise_strength <= 1:
            raise ValueError(f"noise_strength must lie in (0, 1], got {noise_strength}")
        schedule = self._schedule()
        T = len(schedule)
        t_start = round(noise_strength * (T - 1))
        spacing = sample_options.get("spacing", "uniform")
        sequence = self._timesteps(num_steps, spacing)
        timesteps = torch.cat([torch.tensor([t_start]), sequence[sequence < t_start]])
        seeds = list(range(seed, seed + num_variations))
        gens = per_sample_generators(seeds)
        # Eq. 4 with each variation's own eps: its generator draws eps first, then the step noise.
        eps = torch.stack([torch.randn(self.img_shape, generator=g) for g in gens])
        a = math.sqrt(float(schedule.alpha_bars[t_start]))
        s = math.sqrt(1 - float(schedule.alpha_bars[t_start]))
        x_t = (a * ref + s * eps).to(self.device)
        labels = self._labels(y, num_variations)
        with self._sampling_model():
            out = self.sampler.sample(
                (num_variations, *self.img_shape),
                num_steps,
                generator=gens,
                x_T=x_t,
                timesteps=timesteps,
                progress=progress,
                **({} if labels is None else {"y": labels.to(self.device)}),
                **sample_options,
            ).cpu()
        images = denormalize_img(out)
        for i, img in enumerate(images):
            save_image(img, self.output_dir / f"variation_{i:03d}.png", self.png_scale)
        ref_img = denormalize_img(ref[0])
        save_image(ref_img, self.output_dir / "variation_reference.png", self.png_scale)
        save_image_grid(torch.cat([ref_img[None], images]), self.output_dir / "variations_grid.png")
        meta = self._metadata("variations", seeds, None, num_steps, labels, sample_options)
        meta.update(
            noise_strength=noise_strength,
            start_timestep=t_start,
            timesteps=timesteps.tolist(),
            reference=ref[0].tolist(),
        )
        (self.output_dir / "variations.json").write_text(json.dumps(meta, indent=2) + "\n")
        return out

    # -- internals ----------------------------------------------------------------------------

    def _generate(
        self,
        kind: str,
        seeds: list[int],
        names: list[str],
        batch_size: int,
        num_steps: int | None,
        *,
        y: Tensor | int | None,
        save_individual: bool,
        save_grid: bool,
        grid_nrow: int,
        user_metadata: dict[str, Any] | None,
        return_images: bool,
        progress: bool,
        sample_options: dict[str, Any],
    ) -> GenerationResult:
        batch_size = check_positive_int(batch_size, "batch_size")
        for reserved in ("generator", "x_T", "timesteps", "return_intermediates"):
            if reserved in sample_options:
                raise ValueError(f"{reserved} is set by ImageGenerator from the seeds; remove it")
        self._timesteps(num_steps, sample_options.get("spacing", "uniform"))  # fail early
        labels = self._labels(y, len(seeds))
        paths: list[Path] = []
        grid_images: list[Tensor] = []
        kept: list[Tensor] = []
        n_batches = math.ceil(len(seeds) / batch_size)
        start_time = time.perf_counter()
        with self._sampling_model():
            for b in range(n_batches):
                lo, hi = b * batch_size, min((b + 1) * batch_size, len(seeds))
                out = self._sample_seeds(
                    seeds[lo:hi],
                    num_steps,
                    None if labels is None else labels[lo:hi],
                    progress and n_batches == 1,
                    sample_options,
                )
                images = denormalize_img(out)
                if save_individual:
                    for img, name in zip(images, names[lo:hi], strict=True):
                        paths.append(save_image(img, self.output_dir / name, self.png_scale))
                room = self.grid_size - sum(len(g) for g in grid_images)
                if save_grid and room > 0:
                    grid_images.append(images[:room])
                if return_images:
                    kept.append(out)
        seconds = time.perf_counter() - start_time
        grid = (
            save_image_grid(torch.cat(grid_images), self.output_dir / GRID_FILE, nrow=grid_nrow)
            if save_grid
            else None
        )
        meta = self._metadata(kind, seeds, names, num_steps, labels, sample_options)
        meta.update(
            batch_size=batch_size,
            grid=GRID_FILE if save_grid else None,
            seconds=round(seconds, 3),
            user=_plain(user_metadata or {}),
        )
        metadata_path = self.output_dir / METADATA_FILE
        metadata_path.write_text(json.dumps(meta, indent=2) + "\n")
        return GenerationResult(
            paths, grid, metadata_path, meta, torch.cat(kept) if return_images else None
        )

    def _sample_seeds(
        self,
        seeds: list[int],
        num_steps: int | None,
        labels: Tensor | None,
        progress: bool,
        sample_options: dict[str, Any],
    ) -> Tensor:
        """One batch: per-seed generators draw each ``x_T``, then feed the sampler's step noise."""
        gens = per_sample_generators(seeds)
        strategy = getattr(NoiseStrategies, self.noise)
        x_T = strategy((len(seeds), *self.img_shape), generator=gens, **self.noise_options)
        return self.sampler.sample(
            (len(seeds), *self.img_shape),
            num_steps,
            generator=gens,
            x_T=x_T.to(self.device),
            progress=progress,
            **({} if labels is None else {"y": labels.to(self.device)}),
            **sample_options,
        ).cpu()

    @contextlib.contextmanager
    def _sampling_model(self) -> Iterator[None]:
        """Let the sampler use the reduced-precision / compiled model while this generator runs."""
        if self._inference_model is None:
            yield
            return
        original = self.sampler.model
        self.sampler.model = self._inference_model
        try:
            yield
        finally:
            self.sampler.model = original

    def _schedule(self) -> NoiseSchedule:
        schedule = getattr(self.sampler, "schedule", None)
        if schedule is None:
            schedule = getattr(self.model, "noise_schedule", None)
        if not isinstance(schedule, NoiseSchedule):
            raise ValueError("neither the sampler nor the model has a NoiseSchedule (.schedule)")
        return schedule

    def _timesteps(self, num_steps: int | None, spacing: str) -> Tensor:
        if hasattr(self.sampler, "timesteps"):
            return self.sampler.timesteps(num_steps, spacing)
        schedule = self._schedule()
        return timestep_sequence(
            len(schedule), num_steps, spacing, alphas_cumprod=schedule.alpha_bars
        )

    def _labels(self, y: Tensor | int | None, n: int) -> Tensor | None:
        """``y`` as a LongTensor ``(n,)``: an int is one class for every image."""
        if y is None:
            return None
        if isinstance(y, int) and not isinstance(y, bool):
            return torch.full((n,), y, dtype=torch.long)
        if not isinstance(y, Tensor) or y.is_floating_point() or y.shape != (n,):
            raise ValueError(f"y must be an int or a LongTensor of {n} class labels, shape ({n},)")
        return y.long().cpu()

    def _check_reference(self, reference: Any) -> Tensor:
        if not isinstance(reference, Tensor) or not reference.is_floating_point():
            raise TypeError("reference must be a floating-point tensor (C, H, W) in model space")
        ref = reference.detach().float().cpu()
        if ref.ndim == 3:
            ref = ref[None]
        if tuple(ref.shape) != (1, *self.img_shape):
            raise ValueError(
                f"reference must have shape {self.img_shape} or (1, *{self.img_shape}), "
                f"got {tuple(reference.shape)}"
            )
        return ref

    def _metadata(
        self,
        kind: str,
        seeds: list[int],
        names: list[str] | None,
        num_steps: int | None,
        labels: Tensor | None,
        sample_options: dict[str, Any],
    ) -> dict[str, Any]:
        meta = run_metadata(self.model, self.sampler, num_steps, sample_options)
        meta.update(
            kind=kind,
            num_images=len(seeds),
            seeds=seeds,
            files=names,
            labels=None if labels is None else labels.tolist(),
            noise="per-image torch.Generator(seed): x_T first, then each stochastic step",
            png_scale=self.png_scale,
            x_T_strategy={"name": self.noise, "options": _plain(self.noise_options)},
            precision=str(self.dtype).removeprefix("torch."),
            compile=self.compile,
            compile_backend=self.compile_backend if self.compile else None,
            device=str(self.device),
        )
        return meta


def make_sampler(name: str, model: nn.Module, device: str | torch.device = "cpu") -> Any:
    """The sampler called ``name`` (one of :data:`SAMPLER_NAMES`) for ``model`` and the schedule
    it was trained with (``model.noise_schedule``)."""
    if name not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLER_NAMES}, got {name!r}")
    schedule = getattr(model, "noise_schedule", None)
    if not isinstance(schedule, NoiseSchedule):
        raise ValueError("model has no noise_schedule: load it with load_checkpoint or train it")
    cls = SAMPLERS[name]
    arg = schedule.betas if cls is DDPMSampler else schedule.alpha_bars
    return cls(model, arg, device)


def _schedule_config(model: nn.Module, sampler: Any) -> dict[str, Any] | None:
    """The model's own schedule config when the sampler uses the same noise levels (so the
    sampler can be rebuilt exactly from it), else the sampler's schedule."""
    used = getattr(sampler, "schedule", None)
    own = getattr(model, "noise_schedule", None)
    if isinstance(own, NoiseSchedule) and (
        used is None or torch.equal(own.alpha_bars.cpu(), used.alpha_bars.cpu())
    ):
        return own.config()
    return used.config() if isinstance(used, NoiseSchedule) else None


def run_metadata(
    model: nn.Module, sampler: Any, num_steps: int | None, sample_options: dict[str, Any]
) -> dict[str, Any]:
    """What a sampling run needs to be repeated: versions, the sampler's class and options, the
    number of steps, and the model and schedule configs (JSON-ready)."""
    sampler_cls = type(sampler)
    config = getattr(model, "config", None)
    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": _versions(),
        "sampler": {
            "class": sampler_cls.__qualname__,
            "module": sampler_cls.__module__,
            "options": _plain(sample_options),
        },
        "num_steps": num_steps,
        "image_shape": list(getattr(model, "img_shape", ())),
        "model_config": config.to_dict() if hasattr(config, "to_dict") else None,
        "schedule_config": _schedule_config(model, sampler),
    }


def sampler_from_metadata(model: nn.Module, metadata: dict[str, Any], device: str = "cpu") -> Any:
    """Rebuild the sampler recorded in ``metadata`` for ``model``.

    The constructor's second parameter says what it takes from the recorded schedule: ``betas``,
    ``alphas_cumprod`` or a ``schedule``.
    """
    info = metadata["sampler"]
    cls = getattr(importlib.import_module(info["module"]), info["class"])
    schedule = NoiseSchedule.from_config(metadata["schedule_config"])
    params = list(inspect.signature(cls).parameters)
    if len(params) < 2:
        raise ValueError(f"cannot rebuild {info['class']}: unknown constructor {params}")
    arg = {
        "betas": schedule.betas,
        "alphas_cumprod": schedule.alpha_bars,
        "schedule": schedule,
    }.get(params[1])
    if arg is None:
        raise ValueError(f"cannot rebuild {info['class']}: unknown schedule argument {params[1]!r}")
    return cls(model, arg, device=device)


def reproduce_image(
    model: nn.Module, metadata_path: str | Path, index: int, device: str = "cpu"
) -> Tensor:
    """Regenerate image ``index`` ``(C, H, W)`` (model space) of a ``generate_batch`` or
    ``generate_with_seeds`` run from its ``metadata.json`` and the same model weights."""
    meta = json.loads(Path(metadata_path).read_text())
    if not 0 <= index < meta["num_images"]:
        raise ValueError(f"index must lie in [0, {meta['num_images'] - 1}], got {index}")
    recorded = meta["model_config"]
    if recorded is not None and hasattr(model, "config") and model.config.to_dict() != recorded:
        raise ValueError("model does not match the model_config recorded in the metadata")
    sampler = sampler_from_metadata(model, meta, device)
    generator = ImageGenerator(
        model,
        sampler,
        Path(metadata_path).parent,
        device,
        dtype=PRECISIONS[meta["precision"]],
        noise=meta["x_T_strategy"]["name"],
        noise_options={
            k: torch.tensor(v) if k == "reference" else v
            for k, v in meta["x_T_strategy"]["options"].items()
        },
    )
    options = dict(meta["sampler"]["options"])
    labels = meta["labels"]
    y = None if labels is None else torch.tensor(labels[index : index + 1])
    with generator._sampling_model():
        return generator._sample_seeds(
            [meta["seeds"][index]], meta["num_steps"], y, False, options
        )[0]
