"""Where a training run's numbers go: Weights & Biases, and the same records on local disk.

wandb's mode is decided without touching the network and never prompts:

* ``"disabled"`` when asked for (``wandb_mode="disabled"`` or the reference dict's
  ``enable_wandb=False``);
* ``"online"`` only when asked for (``wandb_mode="online"`` or ``enable_wandb=True``) *and* an API
  key is already present (``WANDB_API_KEY`` or a ``~/.netrc`` entry); otherwise it falls back to
  offline and says so;
* ``"offline"`` otherwise. ``wandb sync <run dir>`` uploads an offline run later.

Every record also goes to ``metrics.jsonl`` in the run folder, so a user without an account sees
the run (and :func:`toydiff.plotting.plot_loss_curve` draws it).
"""

from __future__ import annotations

import json
import netrc
import os
import warnings
from pathlib import Path
from typing import Any

from torch import Tensor

from toydiff.data import denormalize_img

WANDB_MODES = ("online", "offline", "disabled")


def wandb_logged_in() -> bool:
    """True when an API key is available locally (no network call, no prompt)."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        rc = netrc.netrc(os.environ.get("NETRC", str(Path.home() / ".netrc")))
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False
    return any(host.endswith("wandb.ai") for host in rc.hosts)


def resolve_wandb_mode(wandb_mode: str | None, enable_wandb: bool | None) -> str:
    """The mode to run wandb in (see the module docstring)."""
    if wandb_mode is not None and wandb_mode not in WANDB_MODES:
        raise ValueError(f"wandb_mode must be one of {WANDB_MODES} or None, got {wandb_mode!r}")
    if os.environ.get("WANDB_MODE") == "disabled" or wandb_mode == "disabled":
        return "disabled"
    if wandb_mode is None and enable_wandb is False:
        return "disabled"
    if wandb_mode == "online" or (wandb_mode is None and enable_wandb is True):
        if wandb_logged_in():
            return "online"
        warnings.warn(
            "wandb online mode was requested but no API key is set up (run `wandb login`); "
            "logging offline instead",
            stacklevel=3,
        )
    return "offline"


def _plain(value: Any) -> Any:
    if isinstance(value, Tensor):
        return value.item() if value.numel() == 1 else value.tolist()
    return value


class RunLogger:
    """Log scalars and images to wandb (in the resolved mode) and scalars to ``metrics.jsonl``."""

    def __init__(
        self,
        run_dir: str | os.PathLike[str] | None,
        config: dict[str, Any],
        *,
        mode: str,
        project: str = "toydiff",
        name: str | None = None,
    ) -> None:
        self.mode = mode
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.metrics_path: Path | None = None
        if self.run_dir is not None:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self.metrics_path = self.run_dir / "metrics.jsonl"
            self.metrics_path.write_text("")
        self.run = None
        if mode != "disabled":
            import wandb

            self.run = wandb.init(
                project=project,
                name=name,
                config=config,
                mode=mode,
                dir=str(self.run_dir) if self.run_dir is not None else None,
                reinit="finish_previous",
                settings=wandb.Settings(silent=True, console="off", x_disable_stats=True),
            )

    @property
    def wandb_dir(self) -> Path | None:
        """The folder of the wandb run (``.../wandb/offline-run-...``), if any."""
        return Path(self.run.dir).parent if self.run is not None else None

    def log(
        self, metrics: dict[str, Any], step: int, images: dict[str, Tensor] | None = None
    ) -> None:
        """``metrics``: scalars (tensors are read here, so call this only every few steps).
        ``images``: name -> ``(N, C, H, W)`` in ``[0, 1]``, logged to wandb as a row of images."""
        record = {k: _plain(v) for k, v in metrics.items()}
        if self.metrics_path is not None and record:  # an images-only log has no scalars
            with self.metrics_path.open("a") as f:
                f.write(json.dumps({"step": step, **record}) + "\n")
        if self.run is None:
            return
        payload: dict[str, Any] = dict(record)
        if images:
            import wandb

            for key, batch in images.items():
                payload[key] = [
                    wandb.Image(img.detach().float().cpu().clamp(0, 1).permute(1, 2, 0).numpy())
                    for img in batch
                ]
        self.run.log(payload, step=step)

    def finish(self) -> None:
        if self.run is not None:
            self.run.finish()
            self.run = None


def read_metrics(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl`` file."""
    with Path(path).open() as f:
        return [json.loads(line) for line in f if line.strip()]


def to_images(x: Tensor) -> Tensor:
    """Model-space ``[-1, 1]`` to displayable ``[0, 1]`` (no gradient, CPU)."""
    return denormalize_img(x.detach().float().cpu())
