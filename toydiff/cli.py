"""The ``toydiff`` command: ``train``, ``sample`` and ``demo`` (``toydiff COMMAND --help``)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from toydiff.evaluation import add_evaluate_args, run_evaluate

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent / "data" / "gradient_mlp.pt"

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


def _train_from_args(args: argparse.Namespace, run_name: str):
    from toydiff.checkpoint import save_checkpoint
    from toydiff.data import gradient_images, normalize_img
    from toydiff.model import ToyDiffuser, ToyDiffuserConfig
    from toydiff.training import TrainConfig, train

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


def _add_sample_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    p.add_argument("--n", type=int, default=64, help="number of samples")
    p.add_argument("--out", type=Path, default=Path("outputs"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--variance", choices=("beta_tilde", "beta"), default="beta_tilde")
    p.add_argument("--clip", action="store_true", help="clamp the predicted x0 to [-1, 1]")


def write_samples(model, out: Path, n: int, seed: int, **sample_kwargs: Any) -> dict[str, Any]:
    """Sample ``n`` images; write ``samples.png`` (grid) and ``trajectory.png`` (denoising strip)."""
    from toydiff.data import denormalize_img
    from toydiff.metrics import corner_color_spread, gradient_rms
    from toydiff.plotting import save_image_grid, save_trajectory_strip
    from toydiff.sampling import sample

    g = torch.Generator().manual_seed(seed)
    steps = sample(model, n, return_all_steps=True, generator=g, progress=False, **sample_kwargs)
    images = denormalize_img(steps[-1])
    out.mkdir(parents=True, exist_ok=True)
    save_image_grid(images, out / "samples.png")
    save_trajectory_strip([denormalize_img(s) for s in steps], out / "trajectory.png")
    return {
        "n_samples": n,
        "seed": seed,
        "gradient_rms": float(gradient_rms(images).mean()),
        "corner_spread": corner_color_spread(images),
    }


def run_sample(args: argparse.Namespace) -> int:
    from toydiff.checkpoint import load_checkpoint

    model, _ = load_checkpoint(args.checkpoint)
    figures = write_samples(
        model, args.out, args.n, args.seed, variance=args.variance, clip_denoised=args.clip
    )
    print(f"wrote {args.out / 'samples.png'} and {args.out / 'trajectory.png'}")
    print(json.dumps(figures, indent=2))
    return 0


def _add_demo_args(p: argparse.ArgumentParser) -> None:
    _add_train_args(p)
    p.set_defaults(out=Path("outputs"))
    p.add_argument("--n-samples", type=int, default=64)


def run_demo(args: argparse.Namespace) -> int:
    out = Path(args.out)
    model, checkpoint, seconds = _train_from_args(args, "demo")
    figures = write_samples(model, out, args.n_samples, args.seed)
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
        "sample images from a checkpoint (Algorithm 2) into a PNG grid",
        _add_sample_args,
        run_sample,
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
