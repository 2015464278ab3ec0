"""Regenerate the README pictures from the shipped checkpoint: ``make docs`` (or run this file).

Writes into ``docs/``: ``samples.png`` (64 samples, Algorithm 2), ``denoising.gif`` (16 images from
noise to samples), ``denoising_strip.png`` (x_t above the predicted x0, step by step),
``schedules.png`` (linear vs cosine) and ``denoising_1d.gif`` (1-D signals drawn from a mixture of
three waveforms with the exact noise predictor of :mod:`toydiff.mixture`). The measured table comes
from ``toydiff evaluate --out docs`` (the second line of ``make docs``).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch

from toydiff import denormalize_img, load_checkpoint, sample
from toydiff.checkpoint import DEFAULT_CHECKPOINT
from toydiff.evaluation import denoising_trajectory
from toydiff.mixture import GaussianMixture, MixtureNoisePredictor
from toydiff.plotting import (
    plot_schedules,
    save_denoising_gif,
    save_denoising_strip,
    save_image_grid,
    save_signal_gif,
)
from toydiff.samplers import DDPMSampler
from toydiff.schedule import NoiseSchedule

ROOT = Path(__file__).resolve().parent.parent


def waveforms(length: int = 64) -> torch.Tensor:
    """Three 1-D signals ``(3, length)`` in [-1, 1]: a sine, a square wave and a sawtooth."""
    u = torch.linspace(0, 2, length)
    return (
        torch.stack([torch.sin(math.pi * u), torch.sign(torch.sin(math.pi * u)), (u % 1) * 2 - 1])
        * 0.8
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = args.out
    model, _ = load_checkpoint(args.checkpoint)

    g = torch.Generator().manual_seed(args.seed)
    images = denormalize_img(sample(model, 64, generator=g, clip_denoised=True, progress=False))
    save_image_grid(images, out / "samples.png", nrow=16, scale=6)

    traj = denoising_trajectory(model, 16, generator=torch.Generator().manual_seed(args.seed))
    states = [denormalize_img(x) for x in [*traj.x_t, traj.final]]
    labels = [f"x_t at t = {t}" for t in traj.timesteps] + ["sample x_0"]
    save_denoising_gif(states, out / "denoising.gif", nrow=8, max_frames=30, labels=labels)
    save_denoising_strip(
        [denormalize_img(x) for x in traj.x_t],
        [denormalize_img(x) for x in traj.x0_pred],
        out / "denoising_strip.png",
        timesteps=traj.timesteps,
    )
    plot_schedules(1000, out / "schedules.png")

    # 1-D: the exact noise predictor of a 3-mode mixture of waveforms, sampled with DDPM.
    T = 200
    mixture = GaussianMixture(
        means=waveforms(),
        stds=torch.full((3,), 0.02),
        weights=torch.full((3,), 1 / 3),
        labels=torch.arange(3),
        num_classes=3,
    )
    betas = NoiseSchedule(T, max_noise=0.1).betas
    predictor = MixtureNoisePredictor(mixture, betas)
    _, steps = DDPMSampler(predictor, betas).sample(
        (3, 64),
        return_intermediates=True,
        generator=torch.Generator().manual_seed(args.seed),
        progress=False,
    )
    save_signal_gif(steps, out / "denoising_1d.gif", max_frames=30)
    for name in (
        "samples.png",
        "denoising.gif",
        "denoising_strip.png",
        "schedules.png",
        "denoising_1d.gif",
    ):
        print(f"{out / name}  ({(out / name).stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
