"""Measured quality against speed: a grid of samplers and step counts on the same seeds.

Each row of the table draws ``n_samples`` images from the same ``x_T`` (and, for the stochastic
samplers, the same per-step noise generator seed), then reports side by side

* fidelity: the mean RMS residual of the best linear-gradient fit (:func:`gradient_rms`, lower is
  better, 0 for real data);
* diversity: the spread of the fitted corner colors (:func:`corner_color_spread`, real data 0.29);
* both at once: the sliced Wasserstein-1 distance of the corner colors to a held-out real set
  (:func:`corner_color_distance`, lower is better; the real row shows the two-sample floor);
* cost: network evaluations and the wall time per 10,000 samples, extrapolated from the measured
  run (sampling cost is linear in the batch for this MLP).

Anchor rows: real data, pure noise (``x_T`` itself) and the reference texts' sampler that scales its
noise by ``beta_t`` instead of ``sqrt(beta_t)`` (deliberately wrong: smooth but collapsed colors).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from toydiff.data import denormalize_img, gradient_images
from toydiff.metrics import corner_color_distance, corner_color_spread, gradient_rms
from toydiff.sampling import (
    ddpm_loop,
    eval_mode,
    model_device,
    model_img_shape,
    noise_fn,
    resolve_schedule,
)
from toydiff.schedule import NoiseSchedule, step_coefficients
from toydiff.timesteps import SPACINGS, timestep_sequence
from toydiff.validation import check_positive_int

METHODS = ("ddpm", "ddim", "dpm_solver", "ddpm_sigma_beta")


@dataclass(frozen=True)
class SamplerSpec:
    """One configuration of the grid. ``num_steps=None`` means all T steps."""

    method: str
    num_steps: int | None = None
    eta: float = 0.0
    spacing: str = "uniform"

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.num_steps is not None:
            check_positive_int(self.num_steps, "num_steps")
        if self.spacing not in SPACINGS:
            raise ValueError(f"spacing must be one of {SPACINGS}, got {self.spacing!r}")
        if self.eta < 0:
            raise ValueError(f"eta must be >= 0, got {self.eta}")

    @property
    def name(self) -> str:
        return {
            "ddpm": "DDPM",
            "ddim": f"DDIM eta={self.eta:g}",
            "dpm_solver": "DPM-Solver++(2M)",
            "ddpm_sigma_beta": "DDPM, sigma=beta (reference bug)",
        }[self.method]


def default_grid(max_steps: int) -> tuple[list[SamplerSpec], list[str]]:
    """The grid for a model with ``max_steps`` = T, and notes on what was left out and why.

    DDPM with all T steps and respaced to 250/100; DDIM 100/50/20/10 at eta 0 and 1; DPM-Solver++
    20/10; at 10 steps, where the spacing matters most, the trailing and quadratic spacings (DDIM)
    and Karras (DPM-Solver) next to the uniform one.
    """
    T = max_steps
    specs = [SamplerSpec("ddpm")]
    notes = []
    for n in (250, 100):
        if n < T:
            specs.append(SamplerSpec("ddpm", n))
        else:
            notes.append(f"DDPM respaced to {n} steps skipped: T = {T} allows fewer steps only.")
    specs.append(SamplerSpec("ddpm_sigma_beta"))
    for eta in (0.0, 1.0):
        for n in (100, 50, 20, 10):
            if n <= T:
                specs.append(SamplerSpec("ddim", n, eta))
            elif eta == 0.0:
                notes.append(f"DDIM with {n} steps skipped: more steps than T = {T}.")
    for spacing in ("trailing", "quadratic"):
        specs.append(SamplerSpec("ddim", min(10, T), 0.0, spacing))
    for n in (20, 10):
        specs.append(SamplerSpec("dpm_solver", min(n, T)))
    specs.append(SamplerSpec("dpm_solver", min(10, T), spacing="karras"))
    return list(dict.fromkeys(specs)), notes


def quick_grid(max_steps: int) -> list[SamplerSpec]:
    """Three configurations for a smoke test: DDPM (all T), DDIM-10 and DPM-Solver++-10."""
    n = min(10, max_steps)
    return [SamplerSpec("ddpm"), SamplerSpec("ddim", n), SamplerSpec("dpm_solver", n)]


@dataclass(frozen=True)
class EvalRow:
    """One line of the table; ``steps`` and ``nfe`` are 0 for the anchors, timings None."""

    name: str
    steps: int
    spacing: str
    nfe: int
    gradient_rms: float
    corner_spread: float
    corner_distance: float
    seconds_per_10k: float | None

    @property
    def is_anchor(self) -> bool:
        return self.nfe == 0


@torch.no_grad()
def run_sampler(
    model: nn.Module,
    schedule: NoiseSchedule,
    spec: SamplerSpec,
    x_T: Tensor,
    *,
    generator: torch.Generator | None = None,
    clip_denoised: bool = True,
) -> Tensor:
    """Samples in model space from the given ``x_T (B, C, H, W)`` with the sampler of ``spec``."""
    from toydiff.samplers import DDIMSampler, DDPMSampler, DPMSolverSampler

    device = model_device(model)
    common = dict(
        x_T=x_T,
        generator=generator,
        clip_denoised=clip_denoised,
        spacing=spec.spacing,
        progress=False,
    )
    shape = tuple(x_T.shape)
    if spec.method == "ddpm":
        return DDPMSampler(model, schedule.betas, device).sample(shape, spec.num_steps, **common)
    if spec.method == "ddim":
        sampler = DDIMSampler(model, schedule.alpha_bars, device)
        return sampler.sample(shape, spec.num_steps or len(schedule), spec.eta, **common)
    if spec.method == "dpm_solver":
        sampler = DPMSolverSampler(model, schedule.alpha_bars, device)
        return sampler.sample(shape, spec.num_steps or len(schedule), **common)
    # Known error 1 of the reference texts: x_{t-1} = mean + beta_t * z. ddpm_loop's "beta_tilde"
    # branch adds sqrt(posterior_variance) * z, so beta^2 there reproduces the bug exactly.
    timesteps = timestep_sequence(len(schedule), spec.num_steps, spec.spacing)
    coeffs = step_coefficients(schedule, timesteps)
    coeffs = dataclasses.replace(coeffs, posterior_variance=coeffs.beta.square())
    with eval_mode(model):
        return ddpm_loop(
            noise_fn(model),
            x_T.to(device=device, dtype=torch.float32, copy=True),
            coeffs,
            clip_denoised=clip_denoised,
            generator=generator,
        )


def _row(
    name: str,
    images: Tensor,
    real: Tensor,
    *,
    steps: int = 0,
    spacing: str = "",
    seconds: float | None = None,
    seed: int,
) -> EvalRow:
    """Metrics of ``images`` (data space); the distance uses one projection seed for every row."""
    return EvalRow(
        name=name,
        steps=steps,
        spacing=spacing,
        nfe=steps,
        gradient_rms=float(gradient_rms(images).mean()),
        corner_spread=corner_color_spread(images),
        corner_distance=corner_color_distance(
            images, real, generator=torch.Generator().manual_seed(seed)
        ),
        seconds_per_10k=None if seconds is None else seconds * 10_000 / images.shape[0],
    )


def evaluate(
    model: nn.Module,
    specs: Sequence[SamplerSpec] | None = None,
    *,
    schedule: NoiseSchedule | None = None,
    n_samples: int = 1000,
    seed: int = 0,
    clip_denoised: bool = True,
    timing_repeats: int = 3,
    progress: bool = False,
) -> list[EvalRow]:
    """Run every sampler of ``specs`` (default: :func:`default_grid`) on ``n_samples`` images from
    the same seeds and measure them; the anchors (real data, noise) come first.

    ``model``: a trained gradient-image noise predictor with ``img_shape``; ``schedule`` defaults to
    ``model.noise_schedule`` (attached by ``train`` and ``load_checkpoint``). Every sampler starts
    from the same ``x_T = randn((n_samples, C, H, W))`` of ``seed``, and its per-step noise comes
    from a generator seeded with ``seed + 1``. The real reference set is drawn with ``seed + 2``,
    the real anchor row with ``seed + 3``. Specs with more steps than T raise ``ValueError``.
    The grid runs ``timing_repeats`` times (same seeds, same samples); each sampler's fastest
    run counts.
    """
    check_positive_int(n_samples, "n_samples")
    check_positive_int(timing_repeats, "timing_repeats")
    schedule = resolve_schedule(model, schedule)
    img_shape = model_img_shape(model, "evaluate is for image models")
    T = len(schedule)
    if specs is None:
        specs, _ = default_grid(T)
    for spec in specs:
        if not isinstance(spec, SamplerSpec):
            raise TypeError(f"specs must hold SamplerSpec items, got {type(spec).__name__}")
        if spec.num_steps is not None and spec.num_steps > T:
            raise ValueError(f"{spec}: num_steps must be <= T = {T}")

    real = gradient_images(n_samples, img_shape, generator=torch.Generator().manual_seed(seed + 2))
    fresh = gradient_images(n_samples, img_shape, generator=torch.Generator().manual_seed(seed + 3))
    x_T = torch.randn((n_samples, *img_shape), generator=torch.Generator().manual_seed(seed))
    rows = [
        _row("real data (held out)", fresh, real, seed=seed),
        _row("noise (x_T)", denormalize_img(x_T), real, seed=seed),
    ]
    # Timing rounds go over the whole grid, so that a burst of load from other processes slows
    # one round of every sampler rather than every round of one; each keeps its fastest run.
    seconds = [math.inf] * len(specs)
    images: list[Tensor] = []
    for rnd in range(timing_repeats):
        for i, spec in enumerate(specs):
            if progress:
                print(
                    f"[round {rnd + 1}/{timing_repeats}, {i + 1}/{len(specs)}] {spec.name}, "
                    f"{spec.num_steps or T} steps, {spec.spacing}"
                )
            generator = torch.Generator().manual_seed(seed + 1)
            start = time.perf_counter()
            x0 = run_sampler(
                model, schedule, spec, x_T, generator=generator, clip_denoised=clip_denoised
            )
            seconds[i] = min(seconds[i], time.perf_counter() - start)
            if rnd == 0:
                images.append(denormalize_img(x0.cpu()))
    for spec, imgs, secs in zip(specs, images, seconds, strict=True):
        rows.append(
            _row(
                spec.name,
                imgs,
                real,
                steps=spec.num_steps or T,
                spacing=spec.spacing,
                seconds=secs,
                seed=seed,
            )
        )
    return rows


COLUMNS = (
    ("sampler", "name"),
    ("steps", "steps"),
    ("spacing", "spacing"),
    ("NFE", "nfe"),
    ("gradient RMS (fidelity, lower is better)", "gradient_rms"),
    ("corner spread (diversity, real 0.29)", "corner_spread"),
    ("corner-color SW1 to real (lower is better)", "corner_distance"),
    ("s per 10k samples", "seconds_per_10k"),
)


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.1f}" if value >= 10 else f"{value:.4f}" if value < 1 else f"{value:.2f}"
    return str(value)


def rows_to_markdown(rows: Sequence[EvalRow], notes: Sequence[str] = ()) -> str:
    """The table as GitHub Markdown, anchors first, then ``notes`` as a list below it."""
    lines = [
        "| " + " | ".join(title for title, _ in COLUMNS) + " |",
        "|" + "|".join("---" if key in ("name", "spacing") else "---:" for _, key in COLUMNS) + "|",
    ]
    for row in rows:
        cells = [_cell(getattr(row, key)) for _, key in COLUMNS]
        if row.is_anchor:
            cells[1:4] = ["", "", ""]
        lines.append("| " + " | ".join(cells) + " |")
    if notes:
        lines.append("")
        lines += [f"- {note}" for note in notes]
    return "\n".join(lines) + "\n"


def write_csv(rows: Sequence[EvalRow], path: str | os.PathLike[str]) -> Path:
    """One line per row, the :class:`EvalRow` field names as the header."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = [f.name for f in dataclasses.fields(EvalRow)]
    with path.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow(dataclasses.asdict(row))
    return path


def read_csv(path: str | os.PathLike[str]) -> list[EvalRow]:
    """Rows written by :func:`write_csv`."""
    out = []
    with Path(path).open(newline="") as f:
        for rec in csv.DictReader(f):
            out.append(
                EvalRow(
                    name=rec["name"],
                    steps=int(rec["steps"]),
                    spacing=rec["spacing"],
                    nfe=int(rec["nfe"]),
                    gradient_rms=float(rec["gradient_rms"]),
                    corner_spread=float(rec["corner_spread"]),
                    corner_distance=float(rec["corner_distance"]),
                    seconds_per_10k=float(rec["seconds_per_10k"])
                    if rec["seconds_per_10k"]
                    else None,
                )
            )
    return out


def plot_quality_vs_steps(rows: Sequence[EvalRow], path: str | os.PathLike[str] | None = None):
    """Fidelity, diversity and distance against the number of network evaluations, one line per
    sampler (uniform spacing; other spacings as single markers); the anchors as horizontal lines."""
    from toydiff.plotting import _save, plt

    panels = (
        ("gradient_rms", "gradient RMS (lower is better)"),
        ("corner_spread", "corner spread (real: 0.29)"),
        ("corner_distance", "corner-color SW1 to real (lower is better)"),
    )
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    samplers = list(dict.fromkeys(r.name for r in rows if not r.is_anchor))
    for ax, (key, title) in zip(axes, panels, strict=True):
        for k, name in enumerate(samplers):
            color = f"C{k}"
            line = sorted(
                (r for r in rows if r.name == name and r.spacing == "uniform"), key=lambda r: r.nfe
            )
            if line:
                ax.plot(
                    [r.nfe for r in line],
                    [getattr(r, key) for r in line],
                    "o-",
                    c=color,
                    label=name,
                    markersize=4,
                )
            for r in rows:
                if r.name == name and r.spacing != "uniform":
                    ax.plot(r.nfe, getattr(r, key), "^", c=color, markersize=6)
                    ax.annotate(
                        r.spacing,
                        (r.nfe, getattr(r, key)),
                        fontsize=7,
                        xytext=(3, 3),
                        textcoords="offset points",
                    )
        for r, style in zip((r for r in rows if r.is_anchor), ("--", ":"), strict=False):
            ax.axhline(getattr(r, key), ls=style, c="0.4", lw=1, label=r.name)
        ax.set_xscale("log")
        ax.set_xlabel("network evaluations (steps)")
        ax.set_title(title, fontsize=10)
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def write_report(
    rows: Sequence[EvalRow],
    out_dir: str | os.PathLike[str],
    notes: Sequence[str] = (),
    *,
    header: str = "",
) -> dict[str, Path]:
    """``eval_table.md``, ``eval_table.csv`` and ``quality_vs_steps.png`` in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    table = out / "eval_table.md"
    table.write_text((header + "\n\n" if header else "") + rows_to_markdown(rows, notes))
    paths = {"table": table, "csv": write_csv(rows, out / "eval_table.csv")}
    plot_quality_vs_steps(rows, out / "quality_vs_steps.png")
    paths["plot"] = out / "quality_vs_steps.png"
    return paths


@dataclass
class Trajectory:
    """A reverse chain step by step: ``timesteps[i]`` is the index at step ``i``, ``x_t[i]`` the
    state fed to the model there and ``x0_pred[i]`` its predicted x0 (DDPM Eq. 15 / DDIM Eq. 12:
    ``(x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t)``), all ``(B, C, H, W)`` in model space
    on the CPU; ``final`` is the sample x_0."""

    timesteps: list[int]
    x_t: list[Tensor]
    x0_pred: list[Tensor]
    final: Tensor


@torch.no_grad()
def denoising_trajectory(
    model: nn.Module,
    n_samples: int,
    *,
    schedule: NoiseSchedule | None = None,
    num_steps: int | None = None,
    spacing: str = "uniform",
    clip_denoised: bool = True,
    generator: torch.Generator | None = None,
) -> Trajectory:
    """Algorithm 2 (respaced when ``num_steps < T``) recording x_t and the predicted x0 at each
    step, for the denoising strips and GIFs. Draws as :func:`toydiff.sample` does."""
    check_positive_int(n_samples, "n_samples")
    schedule = resolve_schedule(model, schedule)
    device = model_device(model)
    coeffs = step_coefficients(
        schedule,
        timestep_sequence(len(schedule), num_steps, spacing, alphas_cumprod=schedule.alpha_bars),
    )
    scales = dict(
        zip(
            coeffs.timesteps.tolist(),
            zip(
                coeffs.sqrt_alpha_bar.tolist(),
                coeffs.sqrt_one_minus_alpha_bar.tolist(),
                strict=True,
            ),
            strict=True,
        )
    )
    eps_fn = noise_fn(model)
    record = Trajectory([], [], [], torch.empty(0))

    def recording(x: Tensor, t: int) -> Tensor:
        eps = eps_fn(x, t)
        sqrt_ab, sqrt_1mab = scales[t]
        x0 = (x - sqrt_1mab * eps) / sqrt_ab
        record.timesteps.append(t)
        record.x_t.append(x.cpu().clone())
        record.x0_pred.append((x0.clamp(-1, 1) if clip_denoised else x0).cpu())
        return eps

    x = torch.randn(
        (n_samples, *model_img_shape(model, "denoising_trajectory is for image models")),
        generator=generator,
        device=device,
    )
    with eval_mode(model):
        record.final = ddpm_loop(
            recording, x, coeffs, clip_denoised=clip_denoised, generator=generator
        ).cpu()
    return record


def time_note() -> str:
    """How the timings were taken (threads, CPU count, load average), for the notes."""
    threads = torch.get_num_threads()
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    return (
        f"Times: the fastest of the timing rounds for one batch, scaled to 10,000 samples; CPU "
        f"({os.cpu_count()} cores{load}), torch {torch.__version__}, {threads} "
        f"thread{'s' if threads != 1 else ''}. Other processes slow them down: NFE is the "
        "load-free measure of cost."
    )


def add_evaluate_args(p: argparse.ArgumentParser) -> None:
    """Arguments of ``toydiff evaluate``."""
    from toydiff.checkpoint import DEFAULT_CHECKPOINT

    p.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    p.add_argument("--out", type=Path, default=Path("outputs/eval"), help="folder for the table")
    p.add_argument(
        "--n-samples", type=int, default=None, help="samples per sampler (default 1000; 64 quick)"
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="3 configurations only (a smoke test)")
    p.add_argument("--no-clip", action="store_true", help="do not clamp the predicted x0")
    p.add_argument("--timing-repeats", type=int, default=3, help="runs per sampler; fastest counts")
    p.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )


def run_evaluate(args: argparse.Namespace) -> int:
    """``toydiff evaluate``: the table, CSV and plot for a checkpoint, written to ``--out``."""
    from toydiff.checkpoint import load_checkpoint

    if args.threads is not None:
        check_positive_int(args.threads, "--threads")
        torch.set_num_threads(args.threads)
    model, schedule = load_checkpoint(args.checkpoint)
    T = len(schedule)
    if args.quick:
        specs, notes = quick_grid(T), ["Quick grid: a smoke test, not the full comparison."]
    else:
        specs, notes = default_grid(T)
    n = args.n_samples or (64 if args.quick else 1000)
    rows = evaluate(
        model,
        specs,
        schedule=schedule,
        n_samples=n,
        seed=args.seed,
        clip_denoised=not args.no_clip,
        timing_repeats=args.timing_repeats,
        progress=True,
    )
    header = (
        f"Checkpoint `{args.checkpoint.name}` (T = {T}, {schedule.kind} schedule), {n} samples per "
        f"row from the same seeds (seed {args.seed}), predicted x0 "
        f"{'not clamped' if args.no_clip else 'clamped to [-1, 1]'}."
    )
    paths = write_report(rows, args.out, [*notes, time_note()], header=header)
    print(rows_to_markdown(rows))
    for kind, path in paths.items():
        print(f"{kind:6s} {path}")
    return 0
