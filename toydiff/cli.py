"""The ``toydiff`` command: ``train``, ``sample``, ``generate``, ``demo``, ... (``--help``)."""

from __future__ import annotations

import argparse
import inspect
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from toydiff.checkpoint import DEFAULT_CHECKPOINT
from toydiff.course import add_course_args, run_course
from toydiff.evaluation import add_evaluate_args, run_evaluate
from toydiff.grading.command import add_grade_args, run_grade

AddArgs = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], int]


def _add_train_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--img-shape", type=int, nargs=3, default=(3, 5, 5), metavar=("C", "H", "W"))
    p.add_argument("--d-model", type=int, default=128)
    p.add_argument("--max-steps", type=int, default=100, help="T, the number of diffusion steps")
    p.add_argument("--schedule", choices=("linear", "cosine"), default="linear")
    p.add_argument("--n-images", type=int, default=50_000)
    p.add_argument("--n-eval-images", type=int, default=1_000)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--wandb",
        choices=("offline", "online", "disabled"),
        default="offline",
        help="online only works when logged in (`wandb login`); default offline",
    )
    p.add_argument("--out", type=Path, default=Path("runs"), help="folder for the run")
    p.add_argument("--checkpoint", type=Path, default=None, help="where to save the model")
    p.add_argument("--resume", type=Path, default=None, help="continue from this checkpoint")
    p.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (default 1: batch-128 steps are too small to share, and two "
        "threads spin badly on a busy machine; 0 keeps torch's choice)",
    )


def _train_from_args(args: argparse.Namespace, run_name: str):
    from toydiff.checkpoint import save_checkpoint
    from toydiff.data import gradient_images, normalize_img
    from toydiff.model import ToyDiffuser, ToyDiffuserConfig
    from toydiff.training import TrainConfig, train

    if args.threads < 0:
        raise ValueError(f"--threads must be >= 0, got {args.threads}")
    if args.threads:
        torch.set_num_threads(args.threads)
    img_shape = tuple(args.img_shape)
    g = torch.Generator().manual_seed(args.seed)
    torch.manual_seed(args.seed)
    trainset = torch.utils.data.TensorDataset(
        normalize_img(gradient_images(args.n_images, img_shape, generator=g))
    )
    testset = torch.utils.data.TensorDataset(
        normalize_img(gradient_images(args.n_eval_images, img_shape, generator=g))
    )
    model = ToyDiffuser(ToyDiffuserConfig(img_shape, args.d_model, args.max_steps))
    config = TrainConfig(
        lr=args.lr,
        epochs=args.epochs,
        batch_size=args.batch_size,
        max_steps=args.max_steps,
        schedule_kind=args.schedule,
        wandb_mode=args.wandb,
        out_dir=str(args.out),
        run_name=run_name,
        seed=args.seed,
        resume_from=str(args.resume) if args.resume else None,
        image_shape=img_shape,
        d_model=args.d_model,
        n_images=args.n_images,
        n_eval_images=args.n_eval_images,
    )
    start = time.perf_counter()
    model = train(model, config, trainset, testset)
    seconds = time.perf_counter() - start
    checkpoint = args.checkpoint or (Path(args.out) / run_name / "model.pt")
    save_checkpoint(checkpoint, model, model.noise_schedule, train_seconds=seconds)
    return model, checkpoint, seconds


def run_train(args: argparse.Namespace) -> int:
    run_name = time.strftime("train-%Y%m%d-%H%M%S")
    _, checkpoint, seconds = _train_from_args(args, run_name)
    print(f"trained in {seconds:.1f} s; run folder {Path(args.out) / run_name}")
    print(f"checkpoint: {checkpoint}")
    return 0


def _add_sampler_args(p: argparse.ArgumentParser) -> None:
    """Options shared by ``sample`` and ``generate``: which sampler, how, from which checkpoint."""
    from toydiff.generation import SAMPLER_NAMES
    from toydiff.timesteps import SPACINGS

    p.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    p.add_argument("--out", type=Path, default=Path("outputs"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sampler", choices=SAMPLER_NAMES, default="ddpm")
    p.add_argument(
        "--steps",
        type=int,
        default=None,
        help="number of sampling steps (default: all T for ddpm, 50 for ddim, 20 for dpm-solver)",
    )
    p.add_argument("--eta", type=float, default=None, help="DDIM noise, in [0, 1] (ddim only)")
    p.add_argument("--spacing", choices=SPACINGS, default="uniform", help="timestep spacing")
    p.add_argument(
        "--variance", choices=("beta_tilde", "beta"), default=None, help="ddpm only (beta_tilde)"
    )
    p.add_argument(
        "--clip",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="clamp the predicted x0 to [-1, 1] (default: on; --no-clip is Algorithm 2 exactly)",
    )
    p.add_argument("--class", dest="label", type=int, default=None, help="class label to sample")
    p.add_argument(
        "--guidance",
        type=float,
        default=None,
        help="classifier-free guidance scale w (needs a conditional checkpoint and --class)",
    )


def _add_sample_args(p: argparse.ArgumentParser) -> None:
    _add_sampler_args(p)
    p.add_argument("--n", type=int, default=64, help="number of samples")


def sampler_from_args(args: argparse.Namespace, model) -> tuple[Any, int | None, dict[str, Any]]:
    """``(sampler, num_steps, sample options)`` from the sampler options; a combination that
    makes no sense (``--eta`` without ddim, ``--guidance`` on an unconditional model, ...) is a
    ValueError naming the option."""
    from toydiff.generation import make_sampler

    if args.eta is not None and args.sampler != "ddim":
        raise ValueError(f"--eta applies to --sampler ddim only, not {args.sampler}")
    if args.variance is not None and args.sampler != "ddpm":
        raise ValueError(f"--variance applies to --sampler ddpm only, not {args.sampler}")
    num_classes = getattr(model.config, "num_classes", None)
    if args.guidance is not None:
        if num_classes is None:
            raise ValueError(
                "--guidance needs a class-conditional checkpoint (trained with labels and label "
                "dropout); this one is unconditional"
            )
        if args.label is None:
            raise ValueError("--guidance needs --class: the class to guide toward")
    if args.label is not None and num_classes is None:
        raise ValueError("--class needs a class-conditional checkpoint; this one is unconditional")
    if args.label is not None and not 0 <= args.label < num_classes:
        raise ValueError(f"--class must lie in [0, {num_classes - 1}], got {args.label}")
    options: dict[str, Any] = {"spacing": args.spacing}
    for key, value in (
        ("eta", args.eta),
        ("variance", args.variance),
        ("clip_denoised", args.clip),
        ("guidance_scale", args.guidance),
    ):
        if value is not None:
            options[key] = value
    sampler = make_sampler(args.sampler, model)
    num_steps = args.steps
    if num_steps is None:  # the sampler's own default (None: all T), never more than T
        default = inspect.signature(sampler.sample).parameters["num_steps"].default
        num_steps = None if default is None else min(default, model.max_steps)
    return sampler, num_steps, options


def write_samples(
    model,
    out: Path,
    n: int,
    seed: int,
    *,
    sampler: Any = None,
    num_steps: int | None = None,
    **sample_kwargs: Any,
) -> dict[str, Any]:
    """Sample ``n`` images with ``sampler`` (default: DDPM over all T steps, i.e. Algorithm 2 when
    ``clip_denoised=False``) from ``torch.Generator().manual_seed(seed)``; write ``samples.png``
    (grid), ``trajectory.png`` (denoising strip) and ``metadata.json``. Returns the figures."""
    from toydiff.data import denormalize_img
    from toydiff.generation import make_sampler, run_metadata
    from toydiff.metrics import corner_color_spread, gradient_rms
    from toydiff.plotting import save_image_grid, save_trajectory_strip
    from toydiff.validation import check_positive_int

    check_positive_int(n, "n")
    sampler = make_sampler("ddpm", model) if sampler is None else sampler
    g = torch.Generator().manual_seed(seed)
    x0, steps = sampler.sample(
        (n, *model.img_shape),
        num_steps,
        return_intermediates=True,
        generator=g,
        progress=False,
        **sample_kwargs,
    )
    images = denormalize_img(x0.cpu())
    out.mkdir(parents=True, exist_ok=True)
    save_image_grid(images, out / "samples.png")
    save_trajectory_strip([denormalize_img(s) for s in steps], out / "trajectory.png")
    figures = {
        "n_samples": n,
        "seed": seed,
        "gradient_rms": float(gradient_rms(images).mean()),
        "corner_spread": corner_color_spread(images),
    }
    meta = run_metadata(model, sampler, num_steps, sample_kwargs)
    meta.update(seed=seed, noise="one torch.Generator(seed) for the batch", figures=figures)
    (out / "metadata.json").write_text(json.dumps(meta, indent=2) + "\n")
    return figures


def run_sample(args: argparse.Namespace) -> int:
    from toydiff.checkpoint import load_checkpoint

    model, _ = load_checkpoint(args.checkpoint)
    sampler, num_steps, options = sampler_from_args(args, model)
    if args.label is not None:
        options["y"] = torch.full((args.n,), args.label, dtype=torch.long)
    figures = write_samples(
        model, args.out, args.n, args.seed, sampler=sampler, num_steps=num_steps, **options
    )
    print(f"wrote {args.out / 'samples.png'}, {args.out / 'trajectory.png'} and metadata.json")
    print(json.dumps(figures, indent=2))
    return 0


def _add_generate_args(p: argparse.ArgumentParser) -> None:
    from toydiff.generation import PRECISIONS

    _add_sampler_args(p)
    p.add_argument("--n", type=int, default=64, help="number of images (seeds seed .. seed+n-1)")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="these seeds instead of --n")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--precision", choices=tuple(PRECISIONS), default="float32")
    p.add_argument("--compile", action="store_true", help="torch.compile the network")
    p.add_argument("--png-scale", type=int, default=1, help="enlarge each PNG by this factor")
    p.add_argument(
        "--noise",
        choices=("standard_normal", "truncated_normal", "pyramid_noise"),
        default="standard_normal",
        help="how each x_T is drawn from its seed (toydiff.NoiseStrategies)",
    )
    p.add_argument("--truncation", type=float, default=None, help="for --noise truncated_normal")


def run_generate(args: argparse.Namespace) -> int:
    from toydiff.checkpoint import load_checkpoint
    from toydiff.generation import PRECISIONS, ImageGenerator

    if args.truncation is not None and args.noise != "truncated_normal":
        raise ValueError("--truncation applies to --noise truncated_normal only")
    model, _ = load_checkpoint(args.checkpoint)
    sampler, num_steps, options = sampler_from_args(args, model)
    generator = ImageGenerator(
        model,
        sampler,
        args.out,
        dtype=PRECISIONS[args.precision],
        compile=args.compile,
        png_scale=args.png_scale,
        noise=args.noise,
        noise_options={} if args.truncation is None else {"truncation": args.truncation},
    )
    common = dict(batch_size=args.batch_size, y=args.label, progress=False, **options)
    start = time.perf_counter()
    if args.seeds is not None:
        generator.generate_with_seeds(args.seeds, num_steps, **common)
        n = len(args.seeds)
    else:
        generator.generate_batch(args.n, num_steps=num_steps, seed=args.seed, **common)
        n = args.n
    seconds = time.perf_counter() - start
    print(f"generated {n} images in {seconds:.2f} s into {args.out}/ (PNGs, grid, metadata.json)")
    return 0


def _add_demo_args(p: argparse.ArgumentParser) -> None:
    _add_train_args(p)
    p.set_defaults(out=Path("outputs"))
    p.add_argument("--n-samples", type=int, default=64)


def run_demo(args: argparse.Namespace) -> int:
    out = Path(args.out)
    model, checkpoint, seconds = _train_from_args(args, "demo")
    figures = write_samples(model, out, args.n_samples, args.seed, clip_denoised=False)
    figures["train_seconds"] = round(seconds, 2)
    (out / "summary.json").write_text(json.dumps(figures, indent=2) + "\n")
    run_dir = out / "demo"
    print(f"trained in {seconds:.1f} s")
    print(f"  samples grid     {out / 'samples.png'}")
    print(f"  trajectory       {out / 'trajectory.png'}")
    print(f"  loss curve       {run_dir / 'loss_curve.png'}")
    print(f"  metrics          {run_dir / 'metrics.jsonl'}")
    print(f"  wandb (offline)  {run_dir / 'wandb'}   (upload later: wandb sync <that folder>)")
    print(f"  checkpoint       {checkpoint}")
    print(json.dumps(figures, indent=2))
    return 0


#: Subcommands: name -> (help, adds its arguments, runs it and returns the exit code).
COMMANDS: dict[str, tuple[str, AddArgs, Run]] = {
    "train": (
        "train the MLP noise predictor on color gradients (Algorithm 1)",
        _add_train_args,
        run_train,
    ),
    "sample": (
        "sample from a checkpoint (DDPM, DDIM or DPM-Solver) into a PNG grid and a trajectory",
        _add_sample_args,
        run_sample,
    ),
    "generate": (
        "generate many images to PNG files, batch by batch, each reproducible from its seed",
        _add_generate_args,
        run_generate,
    ),
    "demo": (
        "train, sample and write everything to outputs/ (about a minute)",
        _add_demo_args,
        run_demo,
    ),
    "evaluate": (
        "measure samplers and step counts on a checkpoint: quality and speed table, CSV, plot",
        add_evaluate_args,
        run_evaluate,
    ),
    "grade": (
        "grade a folder of student notebooks: grades.csv and feedback per student",
        add_grade_args,
        run_grade,
    ),
    "course": (
        "build the student notebooks from notebooks/solutions/, or check they are up to date",
        add_course_args,
        run_course,
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="toydiff", description="Denoising diffusion on a laptop CPU: train, sample, evaluate."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add, run) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        add(p)
        p.set_defaults(func=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, TypeError, FileNotFoundError) as err:
        print(f"toydiff {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
