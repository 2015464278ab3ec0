"""One checkpoint file: model weights, model config and schedule config (plus any extras).

Written atomically (a temporary file in the same folder, fsync, then ``os.replace``), so a crash
never leaves half a checkpoint under the real name. Read with ``torch.load(weights_only=True)``:
only tensors and plain Python data, never arbitrary pickled objects.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from toydiff.model import ToyDiffuser, ToyDiffuserConfig
from toydiff.schedule import NoiseSchedule

#: The small gradient-image model shipped with the repository (T = 100), the commands' default.
DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent / "data" / "gradient_mlp.pt"
FORMAT = "toydiff-checkpoint"
VERSION = 1


def atomic_torch_save(obj: Any, path: str | os.PathLike[str]) -> Path:
    """``torch.save`` to ``path`` via a temporary file and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates the file private (0600); give it the permissions open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def save_checkpoint(
    path: str | os.PathLike[str], model: ToyDiffuser, schedule: NoiseSchedule, **extra: Any
) -> Path:
    """Save ``model`` (weights and config) and ``schedule`` (config) to one file at ``path``.

    ``extra`` holds anything else of plain data or tensors (an optimizer state, the epoch, metrics).
    """
    if not isinstance(model, ToyDiffuser):
        raise TypeError(f"model must be a ToyDiffuser, got {type(model).__name__}")
    if not isinstance(schedule, NoiseSchedule):
        raise TypeError(f"schedule must be a NoiseSchedule, got {type(schedule).__name__}")
    if len(schedule) != model.max_steps:
        raise ValueError(
            f"schedule has {len(schedule)} steps but the model was built for {model.max_steps}"
        )
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "model_config": model.config.to_dict(),
        "schedule_config": schedule.config(),
        # The attached schedule is a submodule; its buffers live in schedule_config instead.
        "state_dict": {
            k: v.detach().cpu()
            for k, v in model.state_dict().items()
            if not k.startswith("noise_schedule.")
        },
        "extra": extra,
    }
    return atomic_torch_save(payload, path)


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The raw checkpoint dictionary, checked for format; clear errors for bad files."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises RuntimeError, UnpicklingError, EOFError, ...
        raise ValueError(
            f"checkpoint {path} could not be read (truncated, corrupted or not a toydiff "
            f"checkpoint): {type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
        ) from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path} is not a toydiff checkpoint (no '{FORMAT}' marker)")
    if payload.get("version") != VERSION:
        raise ValueError(
            f"checkpoint {path} has format version {payload.get('version')}, expected {VERSION}"
        )
    for key in ("model_config", "schedule_config", "state_dict"):
        if key not in payload:
            raise ValueError(f"checkpoint {path} is missing '{key}'")
    return payload


def load_checkpoint(
    path: str | os.PathLike[str], device: str | torch.device = "cpu"
) -> tuple[ToyDiffuser, NoiseSchedule]:
    """Rebuild ``(model, schedule)`` from a file written by :func:`save_checkpoint`.

    The model is in eval mode on ``device`` with ``model.noise_schedule`` attached, ready for
    :func:`toydiff.sample`. A file whose weights do not match its config raises ``ValueError``.
    """
    payload = read_checkpoint(path)
    try:
        config = ToyDiffuserConfig.from_dict(payload["model_config"])
    except (TypeError, ValueError, KeyError) as err:
        raise ValueError(f"checkpoint {path} has an invalid model config: {err}") from err
    schedule = NoiseSchedule.from_config(payload["schedule_config"], device)
    if len(schedule) != config.max_steps:
        raise ValueError(
            f"checkpoint {path}: schedule has {len(schedule)} steps, "
            f"model config {config.max_steps}"
        )
    model = ToyDiffuser(config)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as err:
        raise ValueError(
            f"checkpoint {path}: weights do not match the model config: {err}"
        ) from err
    model.to(device).eval()
    model.noise_schedule = schedule
    return model, schedule
