"""The evaluation grid: configurations, shared seeds, the sigma=beta bug, the CLI on a tiny grid."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from seeding import gen
from torch import nn

from toydiff import sample, save_checkpoint, variance_schedule
from toydiff.cli import main
from toydiff.evaluation import (
    EvalRow,
    SamplerSpec,
    default_grid,
    denoising_trajectory,
    evaluate,
    quick_grid,
    read_csv,
    rows_to_markdown,
    run_sampler,
)
from toydiff.schedule import NoiseSchedule


class ZeroModel(nn.Module):
    """Predicts eps = 0: each reverse step is then x / sqrt(alpha) + sigma * z, by hand."""

    img_shape = (1, 2, 2)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


def test_default_grid_skips_what_t_does_not_allow() -> None:
    specs, notes = default_grid(100)
    ddpm = [s.num_steps for s in specs if s.method == "ddpm"]
    assert ddpm == [None]  # respacing to 250 or 100 steps needs T > 250 / T > 100
    assert len(notes) == 2 and all("skipped" in n and "T = 100" in n for n in notes)
    ddim = {(s.num_steps, s.eta) for s in specs if s.method == "ddim" and s.spacing == "uniform"}
    assert ddim == {(n, eta) for n in (100, 50, 20, 10) for eta in (0.0, 1.0)}
    assert {s.spacing for s in specs} == {"uniform", "trailing", "quadratic", "karras"}
    assert any(s.method == "ddpm_sigma_beta" for s in specs)

    specs, notes = default_grid(1000)
    assert [s.num_steps for s in specs if s.method == "ddpm"] == [None, 250, 100] and not notes
    specs, notes = default_grid(30)
    assert all(s.num_steps is None or s.num_steps <= 30 for s in specs)
    assert any("DDIM with 100 steps skipped" in n for n in notes)
    assert len(specs) == len(set(specs))


def test_spec_validation() -> None:
    with pytest.raises(ValueError, match="method"):
        SamplerSpec("euler")
    with pytest.raises(ValueError, match="spacing"):
        SamplerSpec("ddim", 10, spacing="random")
    with pytest.raises(ValueError, match="eta"):
        SamplerSpec("ddim", 10, eta=-1.0)
    with pytest.raises(TypeError, match="num_steps"):
        SamplerSpec("ddim", 2.5)


def test_sigma_beta_bug_matches_the_hand_computed_chain() -> None:
    """With eps = 0: x_{t-1} = x_t / sqrt(alpha_t) + beta_t z (the reference bug), no noise last."""
    betas = variance_schedule(3, 0.1, 0.3)
    schedule = NoiseSchedule.from_betas(betas)
    g = gen(0)
    x_T = torch.randn(4, 1, 2, 2, generator=g)
    z = [torch.randn(4, 1, 2, 2, generator=g) for _ in range(2)]
    x = x_T.double()
    for i, t in enumerate((2, 1, 0)):
        x = x / (1 - betas[t].double()).sqrt()
        if t > 0:
            x = x + betas[t].double() * z[i]
    # run_sampler does not draw x_T: the generator must skip it to line up with the hand chain.
    g2 = gen(0)
    torch.randn(4, 1, 2, 2, generator=g2)
    got = run_sampler(
        ZeroModel(),
        schedule,
        SamplerSpec("ddpm_sigma_beta"),
        x_T,
        generator=g2,
        clip_denoised=False,
    )
    torch.testing.assert_close(got, x.float(), rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_evaluate_rows_on_shared_seeds(trained_model) -> None:
    T = trained_model.max_steps
    specs = [SamplerSpec("ddpm"), SamplerSpec("ddim", T, eta=1.0), SamplerSpec("ddim", 10)]
    rows = evaluate(trained_model, specs, n_samples=128, timing_repeats=1)
    real, noise, ddpm, ddim_full, ddim_10 = rows
    assert [r.name for r in rows[:2]] == ["real data (held out)", "noise (x_T)"]
    assert real.gradient_rms < 1e-5 < ddpm.gradient_rms < 0.2 < noise.gradient_rms
    assert real.corner_distance < ddpm.corner_distance < noise.corner_distance
    # DDIM with eta = 1 on all T steps is DDPM with beta_tilde: same seeds, same samples.
    for key in ("gradient_rms", "corner_spread", "corner_distance"):
        assert getattr(ddim_full, key) == pytest.approx(getattr(ddpm, key), abs=1e-5)
    assert (ddpm.steps, ddpm.nfe, ddim_10.nfe) == (T, T, 10)
    assert all(r.seconds_per_10k > 0 for r in rows[2:]) and real.seconds_per_10k is None
    # The same call twice gives the same numbers (timings aside; float32 least squares may differ
    # in the last bits between thread schedules).
    again = evaluate(trained_model, specs[2:], n_samples=128, timing_repeats=1)[2]
    assert again.gradient_rms == pytest.approx(ddim_10.gradient_rms, rel=1e-6)
    assert again.corner_distance == pytest.approx(ddim_10.corner_distance, rel=1e-6)

    with pytest.raises(ValueError, match="num_steps must be <= T"):
        evaluate(trained_model, [SamplerSpec("ddim", T + 1)], n_samples=8)
    with pytest.raises(TypeError, match="SamplerSpec"):
        evaluate(trained_model, ["ddim"], n_samples=8)


def test_denoising_trajectory_is_algorithm_2_with_its_x0_predictions(trained_model) -> None:
    traj = denoising_trajectory(trained_model, 6, generator=gen(5))
    T = trained_model.max_steps
    assert traj.timesteps == list(range(T - 1, -1, -1))
    assert len(traj.x_t) == len(traj.x0_pred) == T
    expected = sample(trained_model, 6, generator=gen(5), progress=False, clip_denoised=True)
    torch.testing.assert_close(traj.final, expected)
    torch.testing.assert_close(traj.x_t[0], torch.randn(6, 3, 5, 5, generator=gen(5)))
    # At t = 0 the predicted x0 is within one small step of the sample.
    assert float((traj.x0_pred[-1] - traj.final).abs().max()) < 0.05
    assert float(traj.x0_pred[0].abs().max()) <= 1.0


def test_markdown_table_puts_fidelity_and_diversity_side_by_side() -> None:
    rows = [
        EvalRow("real data", 0, "", 0, 0.0, 0.29, 0.01, None),
        EvalRow("DDIM eta=0", 10, "uniform", 10, 0.1234, 0.25, 0.044, 12.5),
    ]
    md = rows_to_markdown(rows, ["a note"])
    lines = md.splitlines()
    assert "gradient RMS" in lines[0] and "corner spread" in lines[0] and "SW1" in lines[0]
    assert lines[2].startswith("| real data |  |  |  | 0.0000 | 0.2900 | 0.0100 |  |")
    assert lines[3] == "| DDIM eta=0 | 10 | uniform | 10 | 0.1234 | 0.2500 | 0.0440 | 12.5 |"
    assert lines[-1] == "- a note"


@pytest.mark.slow
def test_cli_evaluate_quick(trained_model, tmp_path, capsys) -> None:
    ckpt = save_checkpoint(tmp_path / "m.pt", trained_model, trained_model.noise_schedule)
    out = tmp_path / "eval"
    argv = ["evaluate", "--checkpoint", str(ckpt), "--out", str(out), "--quick"]
    assert main([*argv, "--n-samples", "64", "--timing-repeats", "1"]) == 0
    rows = read_csv(out / "eval_table.csv")
    assert len(rows) == 2 + len(quick_grid(trained_model.max_steps))
    assert [r.name for r in rows[2:]] == ["DDPM", "DDIM eta=0", "DPM-Solver++(2M)"]
    table = (out / "eval_table.md").read_text()
    assert "T = 100" in table and "64 samples" in table and "DPM-Solver++(2M) | 10 |" in table
    assert Image.open(out / "quality_vs_steps.png").width > 100
    assert "eval_table.md" in capsys.readouterr().out
    assert main(["evaluate", "--checkpoint", str(tmp_path / "missing.pt"), "--quick"]) == 2


@pytest.mark.slow
def test_training_logs_sample_quality_every_epoch(tmp_path) -> None:
    from torch.utils.data import TensorDataset

    from toydiff import ToyDiffuser, ToyDiffuserConfig, TrainConfig, gradient_images, train
    from toydiff.data import normalize_img
    from toydiff.tracking import read_metrics

    images = normalize_img(gradient_images(256, (3, 4, 4), generator=gen(0)))

    def run(name: str, eval_samples: int) -> list[dict]:
        model = ToyDiffuser(ToyDiffuserConfig((3, 4, 4), 32, 20))
        config = TrainConfig(
            epochs=2,
            max_steps=20,
            wandb_mode="disabled",
            out_dir=str(tmp_path),
            run_name=name,
            progress=False,
            eval_samples=eval_samples,
        )
        train(model, config, TensorDataset(images))
        return [
            r for r in read_metrics(tmp_path / name / "metrics.jsonl") if "sample_gradient_rms" in r
        ]

    records = run("on", 16)
    assert [r["epoch"] for r in records] == [1, 2]
    for r in records:
        assert 0 < r["sample_gradient_rms"] < 0.6 and 0 < r["sample_corner_spread"] < 0.6
    assert run("off", 0) == []
    with pytest.raises(ValueError, match="eval_samples"):
        TrainConfig(eval_samples=-1)
