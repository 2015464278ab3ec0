"""`toydiff sample` and `toydiff generate`: samplers and options from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from toydiff import NoiseSchedule, ToyDiffuser, ToyDiffuserConfig, save_checkpoint
from toydiff.checkpoint import load_checkpoint
from toydiff.cli import DEFAULT_CHECKPOINT, build_parser, main, sampler_from_args
from toydiff.data import denormalize_img
from toydiff.plotting import load_image, save_image_grid
from toydiff.samplers import DDIMSampler


@pytest.fixture(scope="module")
def conditional_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An (untrained) class-conditional model: enough to exercise the options end to end."""
    torch.manual_seed(0)
    model = ToyDiffuser(ToyDiffuserConfig((3, 5, 5), 32, 20, num_classes=3))
    path = tmp_path_factory.mktemp("cond") / "cond.pt"
    save_checkpoint(path, model, NoiseSchedule(20))
    return path


def test_sample_ddim_writes_grid_trajectory_and_metadata(tmp_path: Path) -> None:
    argv = ["sample", "--sampler", "ddim", "--steps", "10", "--eta", "0.5", "--n", "6"]
    assert main([*argv, "--seed", "3", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "trajectory.png").exists()
    meta = json.loads((tmp_path / "metadata.json").read_text())
    assert meta["sampler"]["class"] == "DDIMSampler"
    assert meta["sampler"]["options"] == {"spacing": "uniform", "eta": 0.5}
    assert meta["num_steps"] == 10 and meta["seed"] == 3
    # The grid is what the sampler gives from torch.Generator().manual_seed(3).
    model, schedule = load_checkpoint(DEFAULT_CHECKPOINT)
    x0 = DDIMSampler(model, schedule.alpha_bars).sample(
        (6, 3, 5, 5), 10, 0.5, generator=torch.Generator().manual_seed(3), progress=False
    )
    expected = save_image_grid(denormalize_img(x0), tmp_path / "expected.png")
    assert torch.equal(load_image(tmp_path / "samples.png"), load_image(expected))


@pytest.mark.parametrize(("sampler", "steps"), [("dpm-solver", 20), ("ddim", 50), ("ddpm", None)])
def test_default_steps_are_the_samplers(sampler: str, steps: int | None) -> None:
    args = build_parser().parse_args(["sample", "--sampler", sampler])
    built, num_steps, options = sampler_from_args(args, load_checkpoint(DEFAULT_CHECKPOINT)[0])
    assert num_steps == steps and options == {"spacing": "uniform"}
    assert type(built).__name__ == {"dpm-solver": "DPMSolverSampler", "ddim": "DDIMSampler"}.get(
        sampler, "DDPMSampler"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--sampler", "ddpm", "--eta", "0.5"], "--eta applies to --sampler ddim only"),
        (["--sampler", "ddim", "--variance", "beta"], "--variance applies to --sampler ddpm"),
        (["--guidance", "3", "--class", "1"], "--guidance needs a class-conditional"),
        (["--class", "1"], "--class needs a class-conditional"),
        (["--sampler", "ddim", "--steps", "500"], "num_steps"),
        (["--sampler", "ddim", "--eta", "2"], "eta"),
        (["--n", "0"], "n must be >= 1"),
    ],
)
def test_bad_combinations_exit_2(tmp_path: Path, capsys, argv: list[str], message: str) -> None:
    n = [] if "--n" in argv else ["--n", "2"]
    assert main(["sample", "--out", str(tmp_path), *n, *argv]) == 2
    assert message in capsys.readouterr().err


def test_guidance_on_a_conditional_checkpoint(
    tmp_path: Path, capsys, conditional_checkpoint: Path
) -> None:
    base = [
        "sample",
        "--checkpoint",
        str(conditional_checkpoint),
        "--n",
        "4",
        "--out",
        str(tmp_path),
    ]
    assert (
        main([*base, "--sampler", "ddim", "--steps", "5", "--class", "2", "--guidance", "2"]) == 0
    )
    meta = json.loads((tmp_path / "metadata.json").read_text())
    assert meta["sampler"]["options"]["guidance_scale"] == 2.0
    assert meta["sampler"]["options"]["y"] == [2, 2, 2, 2]
    assert main([*base, "--guidance", "2"]) == 2
    assert "--guidance needs --class" in capsys.readouterr().err
    assert main([*base, "--class", "3"]) == 2
    assert "--class must lie in [0, 2]" in capsys.readouterr().err


def test_generate_is_independent_of_batch_size(tmp_path: Path) -> None:
    argv = ["generate", "--sampler", "ddim", "--steps", "10", "--eta", "0.3", "--n", "5"]
    assert main([*argv, "--batch-size", "2", "--out", str(tmp_path / "a")]) == 0
    assert main([*argv, "--batch-size", "5", "--out", str(tmp_path / "b")]) == 0
    for i in range(5):
        name = f"sample_{i:05d}.png"
        assert torch.equal(load_image(tmp_path / "a" / name), load_image(tmp_path / "b" / name))
    meta = json.loads((tmp_path / "a" / "metadata.json").read_text())
    assert meta["seeds"] == [0, 1, 2, 3, 4] and meta["batch_size"] == 2
    assert main(["generate", "--seeds", "7", "9", "--out", str(tmp_path / "c")]) == 0
    assert (tmp_path / "c" / "seed_00000009.png").exists()


def test_generate_with_truncated_noise(tmp_path: Path, capsys) -> None:
    argv = ["generate", "--n", "3", "--sampler", "ddim", "--steps", "5", "--out", str(tmp_path)]
    assert main([*argv, "--noise", "truncated_normal", "--truncation", "1.5"]) == 0
    meta = json.loads((tmp_path / "metadata.json").read_text())
    assert meta["x_T_strategy"] == {"name": "truncated_normal", "options": {"truncation": 1.5}}
    assert main([*argv, "--truncation", "1.5"]) == 2
    assert "--truncation applies to --noise truncated_normal" in capsys.readouterr().err
