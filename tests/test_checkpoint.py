"""Checkpoints: round trip, atomic writes, and clear errors for every kind of bad file."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch

from toydiff import (
    NoiseSchedule,
    ToyDiffuser,
    ToyDiffuserConfig,
    load_checkpoint,
    sample,
    save_checkpoint,
)
from toydiff.cli import DEFAULT_CHECKPOINT


def _model(seed: int = 0, **kwargs) -> ToyDiffuser:
    torch.manual_seed(seed)
    return ToyDiffuser(ToyDiffuserConfig((3, 4, 4), 16, 20, **kwargs))


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_round_trip_restores_weights_config_schedule_and_samples(tmp_path: Path, kind: str) -> None:
    model = _model(num_classes=3 if kind == "cosine" else None)
    schedule = NoiseSchedule(20, kind=kind, min_noise=2e-4, max_noise=0.05)
    path = save_checkpoint(tmp_path / "m.pt", model, schedule, epoch=7, note="hello")
    loaded, loaded_schedule = load_checkpoint(path)
    assert loaded.config == model.config
    # The loaded model carries its schedule as a submodule (noise_schedule.* buffers).
    weights = {k: v for k, v in loaded.state_dict().items() if not k.startswith("noise_schedule.")}
    assert set(weights) == set(model.state_dict())
    for key, value in model.state_dict().items():
        assert torch.equal(weights[key], value), key
    assert loaded_schedule.config() == schedule.config()
    assert torch.equal(loaded_schedule.betas, schedule.betas)
    assert loaded.noise_schedule is loaded_schedule and not loaded.training
    before = sample(
        model, 8, schedule=schedule, generator=torch.Generator().manual_seed(3), progress=False
    )
    after = sample(loaded, 8, generator=torch.Generator().manual_seed(3), progress=False)
    assert torch.equal(before, after)
    extra = torch.load(path, weights_only=True)["extra"]
    assert extra == {"epoch": 7, "note": "hello"}


def test_custom_schedule_round_trip(tmp_path: Path) -> None:
    model = _model()
    schedule = NoiseSchedule.from_betas(torch.linspace(0.01, 0.3, 20))
    _, loaded = load_checkpoint(save_checkpoint(tmp_path / "c.pt", model, schedule))
    assert torch.equal(loaded.betas, schedule.betas)


def test_shipped_checkpoint_is_the_small_default_model() -> None:
    assert DEFAULT_CHECKPOINT.stat().st_size < 150_000
    model, schedule = load_checkpoint(DEFAULT_CHECKPOINT)
    assert model.config == ToyDiffuserConfig((3, 5, 5), 128, 100)
    assert len(schedule) == 100 and schedule.kind == "linear"


def test_atomic_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    model, schedule = _model(), NoiseSchedule(20)
    path = save_checkpoint(tmp_path / "sub" / "m.pt", model, schedule)
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.pt"]
    original = path.read_bytes()
    # A payload that cannot be pickled fails mid-write: the old file survives, no temp file stays.
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        save_checkpoint(path, _model(1), schedule, bad=lambda: None)
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.pt"]
    assert path.read_bytes() == original


def test_truncated_checkpoint_raises_value_error(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "m.pt", _model(), NoiseSchedule(20))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="could not be read"):
        load_checkpoint(path)


def test_random_bytes_raise_value_error(tmp_path: Path) -> None:
    path = tmp_path / "noise.pt"
    path.write_bytes(os.urandom(4096))
    with pytest.raises(ValueError, match="checkpoint"):
        load_checkpoint(path)


def test_a_torch_file_that_is_not_a_toydiff_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(ValueError, match="not a toydiff checkpoint"):
        load_checkpoint(path)
    torch.save(_model().state_dict(), path)
    with pytest.raises(ValueError, match="not a toydiff checkpoint"):
        load_checkpoint(path)


class _Payload:
    """An object whose unpickling would run code: loading must refuse it, not run it."""

    ran = False

    def __reduce__(self):
        return (_mark_ran, ())


def _mark_ran() -> None:
    _Payload.ran = True


def test_arbitrary_pickles_are_never_executed(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"format": "toydiff-checkpoint", "payload": _Payload()}, path)
    with pytest.raises(ValueError, match="could not be read"):
        load_checkpoint(path)
    assert not _Payload.ran


def _tamper(path: Path, edit) -> None:
    payload = torch.load(path, weights_only=True)
    edit(payload)
    torch.save(payload, path)


def test_mismatched_weights_or_configs_raise_value_error(tmp_path: Path) -> None:
    path = tmp_path / "m.pt"

    def fresh() -> Path:
        return save_checkpoint(path, _model(), NoiseSchedule(20))

    _tamper(fresh(), lambda p: p["state_dict"].pop("out.bias"))
    with pytest.raises(ValueError, match="weights do not match"):
        load_checkpoint(path)
    _tamper(fresh(), lambda p: p["model_config"].update(d_model=32))
    with pytest.raises(ValueError, match="weights do not match"):
        load_checkpoint(path)
    _tamper(fresh(), lambda p: p["schedule_config"].update(max_steps=50))
    with pytest.raises(ValueError, match="schedule has 50 steps"):
        load_checkpoint(path)
    _tamper(fresh(), lambda p: p["model_config"].update(d_model=-1))
    with pytest.raises(ValueError, match="invalid model config"):
        load_checkpoint(path)
    _tamper(fresh(), lambda p: p.update(version=99))
    with pytest.raises(ValueError, match="version"):
        load_checkpoint(path)
    _tamper(fresh(), lambda p: p.pop("state_dict"))
    with pytest.raises(ValueError, match="state_dict"):
        load_checkpoint(path)


def test_missing_file_and_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "absent.pt")
    with pytest.raises(ValueError, match="schedule"):
        save_checkpoint(tmp_path / "m.pt", _model(), NoiseSchedule(10))
    with pytest.raises(TypeError, match="model"):
        save_checkpoint(tmp_path / "m.pt", torch.nn.Linear(2, 2), NoiseSchedule(20))
