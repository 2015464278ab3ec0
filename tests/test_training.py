"""Algorithm 1 (`toydiff.train`): loss goes down, seeds, resume, logging, label dropout, configs."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import TensorDataset

from toydiff import (
    NoiseSchedule,
    ToyDiffuser,
    ToyDiffuserConfig,
    TrainConfig,
    gradient_images,
    labelled_gradient_images,
    normalize_img,
    train,
)
from toydiff.tracking import read_metrics
from toydiff.training import EpochBatches

SHAPE = (3, 5, 5)
T = 20


def _data(n: int, seed: int = 0) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(normalize_img(gradient_images(n, SHAPE, generator=g)))


def _model(seed: int = 0, **kwargs: Any) -> ToyDiffuser:
    torch.manual_seed(seed)
    return ToyDiffuser(ToyDiffuserConfig(SHAPE, 32, T, **kwargs))


def _config(tmp_path: Path, **kwargs: Any) -> TrainConfig:
    base: dict[str, Any] = {
        "epochs": 2,
        "batch_size": 64,
        "max_steps": T,
        "wandb_mode": "disabled",
        "out_dir": str(tmp_path),
        "run_name": "run",
        "progress": False,
        "log_interval": 4,
        "img_log_interval": 10_000,
        "eval_samples": 0,
    }
    base.update(kwargs)
    return TrainConfig(**base)


def test_training_on_gradients_drives_the_loss_down(trained_model: ToyDiffuser) -> None:
    records = read_metrics(trained_model.run_dir / "metrics.jsonl")
    losses = [r["train_loss"] for r in records if "train_loss" in r]
    assert len(losses) > 10
    # Predicting 0 gives a loss of 1; the fixture run starts near it and ends near 0.26.
    assert losses[0] > 0.7
    assert sum(losses[-5:]) / 5 < 0.35
    assert trained_model.noise_schedule is not None and len(trained_model.noise_schedule) == 100


def test_metrics_file_and_loss_curve(tmp_path: Path) -> None:
    cfg = _config(tmp_path, epochs=3, img_log_interval=4)
    model = train(_model(), cfg, _data(512), _data(256, seed=1))
    run_dir = tmp_path / "run"
    assert model.run_dir == run_dir
    records = read_metrics(run_dir / "metrics.jsonl")
    train_losses = [r["train_loss"] for r in records if "train_loss" in r]
    eval_losses = [r["eval_loss"] for r in records if "eval_loss" in r]
    assert len(train_losses) == 3 * 8 // 4  # 8 steps per epoch, one record per 4 steps
    assert len(eval_losses) == 3
    assert all(math.isfinite(x) and 0 < x < 2 for x in train_losses + eval_losses)
    assert all(len(r) > 1 for r in records)  # image logs leave no empty records
    steps = [r["step"] for r in records]
    assert steps == sorted(steps)
    png = run_dir / "loss_curve.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not model.training


def test_same_seed_same_weights_and_different_seed_differs(tmp_path: Path) -> None:
    def weights(seed: int) -> dict[str, torch.Tensor]:
        cfg = _config(tmp_path, epochs=1, seed=seed, out_dir=None)
        return train(_model(), cfg, _data(256)).state_dict()

    a, b, c = weights(0), weights(0), weights(1)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["out.weight"], c["out.weight"])


def test_resume_continues_epochs_and_optimizer_state(tmp_path: Path) -> None:
    first = tmp_path / "first.pt"
    second = tmp_path / "second.pt"
    data = _data(256)  # 4 steps per epoch at batch 64
    train(_model(), _config(tmp_path, epochs=1, checkpoint_path=str(first)), data)
    saved = torch.load(first, weights_only=True)
    assert saved["extra"]["epoch"] == 1 and saved["extra"]["examples_seen"] == 256
    assert int(saved["extra"]["optimizer"]["state"][0]["step"]) == 4

    cfg = _config(
        tmp_path, epochs=3, resume_from=str(first), checkpoint_path=str(second), run_name="resumed"
    )
    train(_model(seed=5), cfg, data)
    resumed = torch.load(second, weights_only=True)["extra"]
    assert resumed["epoch"] == 3 and resumed["examples_seen"] == 3 * 256
    assert int(resumed["optimizer"]["state"][0]["step"]) == 12  # Adam's count carried on
    epochs = [r["epoch"] for r in read_metrics(tmp_path / "resumed" / "metrics.jsonl")]
    assert min(epochs) > 1  # epoch 1 was not run again

    # Resuming a finished run trains nothing: the weights are the checkpoint's.
    done = train(_model(seed=6), _config(tmp_path, epochs=1, resume_from=str(first)), data)
    for key, value in saved["state_dict"].items():
        assert torch.equal(done.state_dict()[key], value)


@pytest.mark.parametrize("num_classes", [None, 2])
def test_resumed_run_equals_an_uninterrupted_one(tmp_path: Path, num_classes: int | None) -> None:
    """Each epoch draws from its own seeded stream, so stopping and resuming changes nothing."""
    images = _data(192).tensors[0]
    data = (
        TensorDataset(images)
        if num_classes is None
        else TensorDataset(images, torch.arange(192) % 2)
    )
    test = TensorDataset(*(t[:64] for t in data.tensors))
    # eval_samples: the per-epoch sample-quality pass must leave the training draws alone.
    whole = train(
        _model(num_classes=num_classes), _config(tmp_path, epochs=3, eval_samples=8), data, test
    )
    part = tmp_path / "part.pt"
    train(
        _model(num_classes=num_classes),
        _config(tmp_path, epochs=1, checkpoint_path=str(part), run_name="part"),
        data,
        test,
    )
    cfg = _config(tmp_path, epochs=3, resume_from=str(part), run_name="resumed")
    resumed = train(_model(seed=9, num_classes=num_classes), cfg, data, test)
    for key, value in whole.state_dict().items():
        assert torch.equal(resumed.state_dict()[key], value), key
    eval_losses = [
        [r["eval_loss"] for r in read_metrics(tmp_path / run / "metrics.jsonl") if "eval_loss" in r]
        for run in ("run", "resumed")
    ]
    assert eval_losses[0][1:] == eval_losses[1]


def test_resume_from_a_mismatched_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "m.pt"
    train(_model(), _config(tmp_path, epochs=1, checkpoint_path=str(path)), _data(64))
    other = ToyDiffuser(ToyDiffuserConfig(SHAPE, 16, T))
    with pytest.raises(ValueError, match="resume_from"):
        train(other, _config(tmp_path, resume_from=str(path)), _data(64))


def _wandb_records(path: Path) -> list[Any]:
    """The protobuf records of an offline run file (``run-<id>.wandb``).

    The file is a LevelDB-style log: a 7-byte ``:W&B`` header, then 32 KiB blocks of chunks, each
    with a 7-byte header (crc32c, length, type: 1 full, 2 first, 3 middle, 4 last).
    """
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B"
    block, pos, pending, out = 32768, 7, b"", []
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == 0:
            break
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            out.append(record)
    return out


@pytest.mark.slow
def test_offline_wandb_run_holds_the_logged_keys(tmp_path: Path) -> None:
    cfg = _config(tmp_path, wandb_mode="offline", run_name="wb", img_log_interval=4)
    train(_model(), cfg, _data(256), _data(128, seed=1))
    runs = list((tmp_path / "wb" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    files = list(runs[0].glob("run-*.wandb"))
    assert len(files) == 1  # what `wandb sync` uploads
    records = _wandb_records(files[0])
    history = [  # one row per logged step; keys are "/"-joined nested keys
        {
            item.key or "/".join(item.nested_key): json.loads(item.value_json)
            for item in r.history.item
        }
        for r in records
        if r.WhichOneof("record_type") == "history"
    ]
    eval_losses = [row["eval_loss"] for row in history if "eval_loss" in row]
    train_losses = [row["train_loss"] for row in history if "train_loss" in row]
    assert len(eval_losses) == 2  # one per epoch
    assert train_losses and all(math.isfinite(x) for x in eval_losses + train_losses)
    assert any("lr" in row for row in history)
    assert any(row.get("samples/_type") == "images/separated" for row in history)
    run = next(r.run for r in records if r.WhichOneof("record_type") == "run")
    config_keys = {item.key for item in run.config.update}
    assert {"lr", "batch_size", "epochs", "max_steps"} <= config_keys


def test_reference_config_dict_is_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # the reference dict has no out_dir: runs/ goes to the cwd
    config = {
        "lr": 1e-3,
        "image_shape": SHAPE,
        "d_model": 32,
        "epochs": 1,
        "max_steps": T,
        "batch_size": 64,
        "img_log_interval": 2,
        "n_images_to_log": 2,
        "n_images": 128,
        "n_eval_images": 64,
        "device": "cpu",
        "enable_wandb": False,
    }
    model = train(_model(), config, _data(128), _data(64, seed=1))
    assert isinstance(model.noise_schedule, NoiseSchedule)
    cfg = TrainConfig.from_any(config)
    assert cfg.wandb_mode is None and cfg.enable_wandb is False
    records = read_metrics(next((tmp_path / "runs").glob("*/metrics.jsonl")))
    assert any("eval_loss" in r for r in records)


def test_epoch_batches_apply_label_dropout() -> None:
    n = 20_000
    labels = torch.arange(n) % 3
    images = labels.float().reshape(n, 1, 1, 1).expand(n, 1, 2, 2).contiguous()
    schedule = NoiseSchedule(T)
    batches = EpochBatches(
        images,
        labels,
        schedule,
        null_label=3,
        label_dropout=0.3,
        generator=torch.Generator().manual_seed(0),
    )
    dropped = batches.y == 3
    rate = dropped.double().mean().item()
    assert abs(rate - 0.3) < 5 * math.sqrt(0.3 * 0.7 / n)
    # Kept labels still belong to their (shuffled) images.
    assert torch.equal(batches.y[~dropped].float(), batches.x0[~dropped][:, 0, 0, 0])
    assert not torch.equal(batches.y[~dropped], labels[~dropped])  # shuffled
    # x_t is Eq. 4 of x_0 at t with the stored noise.
    a = schedule.sqrt_alpha_bars[batches.t].reshape(-1, 1, 1, 1)
    b = schedule.sqrt_one_minus_alpha_bars[batches.t].reshape(-1, 1, 1, 1)
    expected = a * batches.x0 + b * batches.noise
    assert torch.allclose(batches.noised, expected, atol=1e-6)
    none = EpochBatches(images, labels, schedule, null_label=3, label_dropout=0.0, generator=None)
    assert not bool((none.y == 3).any())


def test_conditional_training_runs_and_unconditional_rejects_labels(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    images, labels = labelled_gradient_images(256, SHAPE, generator=g)
    data = TensorDataset(normalize_img(images), labels)
    model = train(_model(num_classes=3), _config(tmp_path, epochs=1, label_dropout=0.2), data)
    assert model.is_conditional and model.null_label == 3
    with pytest.raises(ValueError, match="unconditional"):
        train(_model(), _config(tmp_path, epochs=1), data)
    with pytest.raises(ValueError, match="labels"):
        train(_model(num_classes=3), _config(tmp_path, epochs=1), _data(64))


def test_cosine_schedule_kind_is_attached(tmp_path: Path) -> None:
    model = train(_model(), _config(tmp_path, epochs=1, schedule_kind="cosine"), _data(64))
    assert model.noise_schedule.kind == "cosine"
    assert torch.allclose(
        model.noise_schedule.alpha_bars, NoiseSchedule(T, kind="cosine").alpha_bars
    )
