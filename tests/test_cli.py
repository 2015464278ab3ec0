"""The `toydiff` command: train, sample and demo run end to end; every command has --help."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from toydiff import load_checkpoint
from toydiff.cli import COMMANDS, DEFAULT_CHECKPOINT, main

PNG = b"\x89PNG\r\n\x1a\n"
TINY = [
    "--n-images", "256", "--n-eval-images", "64", "--epochs", "2", "--batch-size", "64",
    "--max-steps", "10", "--d-model", "16", "--wandb", "disabled",
]  # fmt: skip


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert f"toydiff {command}" in out and "--" in out


@pytest.mark.slow
def test_train_writes_a_checkpoint_and_a_run(tmp_path: Path) -> None:
    checkpoint = tmp_path / "m.pt"
    assert (
        main(["train", *TINY, "--out", str(tmp_path / "runs"), "--checkpoint", str(checkpoint)])
        == 0
    )
    model, schedule = load_checkpoint(checkpoint)
    assert model.config.d_model == 16 and len(schedule) == 10
    (run_dir,) = (tmp_path / "runs").iterdir()
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert sum("eval_loss" in r for r in records) == 2
    assert (run_dir / "loss_curve.png").read_bytes()[:8] == PNG


@pytest.mark.slow
def test_sample_defaults_to_the_shipped_checkpoint_and_is_seeded(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sample", "--n", "8", "--out", str(tmp_path / "a")]) == 0
    for name in ("samples.png", "trajectory.png"):
        assert (tmp_path / "a" / name).read_bytes()[:8] == PNG
    printed = capsys.readouterr().out
    figures = json.loads(printed[printed.index("{") :])
    assert figures["n_samples"] == 8
    assert figures["gradient_rms"] < 0.2  # the shipped model's samples are gradients
    explicit = ["sample", "--checkpoint", str(DEFAULT_CHECKPOINT), "--n", "8"]
    assert main([*explicit, "--seed", "0", "--out", str(tmp_path / "b")]) == 0
    assert main([*explicit, "--seed", "1", "--out", str(tmp_path / "c")]) == 0
    a, b, c = ((tmp_path / d / "samples.png").read_bytes() for d in "abc")
    assert a == b and a != c


@pytest.mark.slow
def test_demo_writes_everything(tmp_path: Path) -> None:
    out = tmp_path / "outputs"
    assert main(["demo", *TINY, "--out", str(out), "--n-samples", "8"]) == 0
    for name in ("samples.png", "trajectory.png", "demo/loss_curve.png"):
        assert (out / name).read_bytes()[:8] == PNG
    assert (out / "demo" / "metrics.jsonl").stat().st_size > 0
    summary = json.loads((out / "summary.json").read_text())
    assert {"gradient_rms", "corner_spread", "train_seconds"} <= set(summary)


def test_errors_exit_2_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sample", "--checkpoint", str(tmp_path / "none.pt"), "--out", str(tmp_path)]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    bad = tmp_path / "bad.pt"
    torch.save({"x": torch.zeros(1)}, bad)
    assert main(["sample", "--checkpoint", str(bad), "--out", str(tmp_path)]) == 2
    assert "not a toydiff checkpoint" in capsys.readouterr().err


@pytest.mark.slow
def test_console_script_runs_in_a_fresh_process(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("toydiff")
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "toydiff.cli"]
    done = subprocess.run(
        [*cmd, "sample", "--n", "4", "--out", str(tmp_path)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "samples.png").read_bytes()[:8] == PNG
    assert '"gradient_rms"' in done.stdout
