"""Every plot function writes a non-empty image, and draws the numbers it is given."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from PIL import Image
from seeding import gen

from toydiff import NoiseSchedule, gradient_images, q_eq2, variance_schedule
from toydiff.evaluation import EvalRow, plot_quality_vs_steps
from toydiff.plotting import (
    plot_loss_curve,
    plot_mixture,
    plot_schedules,
    plt,
    save_denoising_gif,
    save_denoising_strip,
    save_image_grid,
    save_signal_gif,
    save_trajectory_strip,
)


def steps_of_images(n_steps: int = 6) -> list[torch.Tensor]:
    """A fake reverse chain: noise blending linearly into gradients, ``[x_T, ..., x_0]``."""
    x0 = gradient_images(4, (3, 5, 5), generator=gen(0))
    noise = torch.rand(4, 3, 5, 5, generator=gen(1))
    return [noise + (x0 - noise) * k / (n_steps - 1) for k in range(n_steps)]


def assert_image(path, kind: str = "PNG") -> Image.Image:
    assert isinstance(path, Path) and path.is_file() and path.stat().st_size > 500
    img = Image.open(path)
    assert img.format == kind and img.width > 50 and img.height > 50
    return img


def frame_durations(img: Image.Image) -> list[int]:
    """Per-frame durations in ms (Pillow merges identical consecutive frames, adding them up)."""
    durations = []
    for i in range(img.n_frames):
        img.seek(i)
        durations.append(img.info["duration"])
    return durations


def test_schedule_plot_draws_the_schedules(tmp_path) -> None:
    fig = plot_schedules(50)
    beta_ax, ab_ax, snr_ax = fig.axes
    linear, cosine = NoiseSchedule(50), NoiseSchedule(50, kind="cosine")
    for ax, values in ((beta_ax, "betas"), (ab_ax, "alpha_bars")):
        for line, schedule in zip(ax.get_lines(), (linear, cosine), strict=True):
            torch.testing.assert_close(
                torch.tensor(line.get_ydata(), dtype=torch.float32), getattr(schedule, values)
            )
    snr = torch.tensor(snr_ax.get_lines()[0].get_ydata())
    ab = linear.alpha_bars.double()
    torch.testing.assert_close(snr, ab / (1 - ab))
    plt.close(fig)
    plot_schedules(100, tmp_path / "schedules.png")
    assert_image(tmp_path / "schedules.png")


def test_denoising_strip_and_trajectory_strip(tmp_path) -> None:
    steps = steps_of_images()
    x0_pred = [steps[-1]] * len(steps)
    strip = save_denoising_strip(
        steps, x0_pred, tmp_path / "strip.png", timesteps=range(6), n_frames=3, n_images=1
    )
    assert_image(strip)
    assert_image(save_trajectory_strip(steps, tmp_path / "traj.png", n_frames=3, n_rows=1))
    with pytest.raises(ValueError, match="same length"):
        save_denoising_strip(steps, x0_pred[:2], tmp_path / "bad.png")


def test_denoising_gif_shows_every_state_and_holds_the_last(tmp_path) -> None:
    steps = steps_of_images(6)
    img = assert_image(save_denoising_gif(steps, tmp_path / "d.gif", hold=3, fps=10), "GIF")
    durations = frame_durations(img)
    assert img.n_frames == 6 and durations[0] == 100
    assert sum(durations) == pytest.approx(900, abs=20)  # the last state shown 1 + 3 times
    img = assert_image(save_denoising_gif(steps, tmp_path / "e.gif", max_frames=4, hold=0), "GIF")
    assert img.n_frames == 4
    with pytest.raises(ValueError, match="non-empty"):
        save_denoising_gif([], tmp_path / "f.gif")


def test_signal_gif_of_a_noised_sine(tmp_path) -> None:
    signal = torch.sin(torch.linspace(0, 2 * math.pi, 64))
    betas = variance_schedule(8, 1e-2, 0.5)
    forward = [q_eq2(signal, k, betas, generator=gen(k)) for k in range(8)]
    path = save_signal_gif(forward[::-1], tmp_path / "sine.gif", target=signal, hold=0)
    assert assert_image(path, "GIF").n_frames == 8
    batch = [torch.stack([s, -s]) for s in forward[::-1]]
    img = assert_image(save_signal_gif(batch, tmp_path / "two.gif", max_frames=3, hold=0), "GIF")
    assert img.n_frames == 3


def test_mixture_scatter_with_trajectories(tmp_path) -> None:
    means = torch.tensor([[-1.0, 0.0], [1.0, 0.0]])
    x0 = means[torch.arange(200) % 2] + 0.1 * torch.randn(200, 2, generator=gen(0))
    noise = torch.randn(200, 2, generator=gen(1))
    path = [noise + (x0 - noise) * k / 9 for k in range(10)]
    fig = plot_mixture(x0, means=means, trajectories=path, n_trajectories=5, real=x0)
    assert len(fig.axes[0].get_lines()) == 5
    plt.close(fig)
    plot_mixture(x0, tmp_path / "mix.png", means=means, trajectories=torch.stack(path))
    assert_image(tmp_path / "mix.png")
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        plot_mixture(torch.zeros(5, 3))


def test_image_grid_and_loss_curve(tmp_path) -> None:
    assert_image(save_image_grid(steps_of_images()[-1], tmp_path / "grid.png"))
    records = [{"step": 100 * i, "train_loss": 1 / (i + 1)} for i in range(10)]
    records += [{"step": 500, "eval_loss": 0.2}, {"step": 1000, "eval_loss": 0.1}]
    fig = plot_loss_curve(records, tmp_path / "loss.png")
    assert_image(tmp_path / "loss.png")
    assert [len(line.get_xdata()) for line in fig.axes[0].get_lines()] == [10, 2]


def test_quality_vs_steps_plot(tmp_path) -> None:
    def row(name, steps, rms, spacing="uniform"):
        return EvalRow(name, steps, spacing, steps, rms, 0.25, 0.05, 1.0 if steps else None)

    rows = [
        row("real data", 0, 0.0, ""),
        row("DDIM", 10, 0.1),
        row("DDIM", 50, 0.05),
        row("DDIM", 10, 0.08, "trailing"),
    ]
    fig = plot_quality_vs_steps(rows, tmp_path / "q.png")
    assert_image(tmp_path / "q.png")
    first = fig.axes[0].get_lines()[0]
    assert list(first.get_xdata()) == [10, 50] and list(first.get_ydata()) == [0.1, 0.05]
