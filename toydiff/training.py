"""Algorithm 1 of the DDPM paper: learn to predict the noise that Eq. 4 added.

    repeat:  x_0 ~ data,  t ~ Uniform{0, ..., T-1},  eps ~ N(0, I)
             x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps                   (Eq. 4)
             take a gradient step on || eps - eps_theta(x_t, t) ||^2                  (Eq. 14)

The loop is built for speed on a CPU: the training tensors stay in memory, each epoch draws its
permutation, timesteps and noise in one go and noises the whole epoch with one vectorized Eq. 4,
then the steps slice it (no DataLoader). For the default MLP a helper thread draws the next epoch
while the current one trains (each epoch has its own seeded generator, so this changes no
number). Losses stay on the device and are read only when logged.
"""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.data import TensorDataset
from tqdm.auto import tqdm

from toydiff.checkpoint import read_checkpoint, save_checkpoint
from toydiff.fastmlp import FastBatch, FastMLPStep
from toydiff.forward import reconstruct
from toydiff.model import ToyDiffuser
from toydiff.parallel import one_intra_op_thread
from toydiff.sampling import sample
from toydiff.schedule import SCHEDULE_KINDS, NoiseSchedule, extract
from toydiff.tracking import WANDB_MODES, RunLogger, resolve_wandb_mode, to_images


@dataclass
class TrainConfig:
    """Hyper-parameters of :func:`train`; the reference texts' dict keys are all accepted.

    Logging: ``log_interval`` steps between train-loss records (the loss is read from the device
    only then); ``img_log_interval`` steps between image logs (noised inputs, reconstructions,
    samples).
    ``wandb_mode`` is ``"offline"`` (default), ``"online"`` (only if logged in) or ``"disabled"``;
    the reference texts' ``enable_wandb`` maps to online/disabled when ``wandb_mode`` is None.
    ``out_dir``: where the run folder (metrics.jsonl, loss_curve.png, wandb/) goes; None for none.
    ``seed``: every training and eval-loss draw comes from a generator seeded from it (one per
    epoch, see :func:`stream_seed`); None takes a seed from torch's global generator.
    ``eval_samples``: samples drawn after every epoch to log ``sample_gradient_rms`` (fidelity) and
    ``sample_corner_spread`` (diversity) with a sample grid; 0 turns it off.
    """

    lr: float = 1e-3
    epochs: int = 20
    batch_size: int = 128
    max_steps: int = 100
    device: str = "cpu"
    img_log_interval: int = 200
    n_images_to_log: int = 3
    enable_wandb: bool | None = None
    wandb_mode: str | None = "offline"
    wandb_project: str = "toydiff"
    run_name: str | None = None
    out_dir: str | None = "runs"
    log_interval: int = 50
    label_dropout: float = 0.1
    schedule_kind: str = "linear"
    min_noise: float = 1e-4
    max_noise: float = 0.02
    seed: int | None = 0
    resume_from: str | None = None
    checkpoint_path: str | None = None
    progress: bool = True
    eval_samples: int = 64
    # Keys of the reference texts' dict that describe the data and model rather than training;
    # kept so that the whole dict is logged with the run.
    image_shape: tuple[int, ...] | None = None
    d_model: int | None = None
    n_images: int | None = None
    n_eval_images: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "max_steps", "img_log_interval", "log_interval"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"config {name} must be a positive int, got {value!r}")
        eval_samples = self.eval_samples
        if isinstance(eval_samples, bool) or not isinstance(eval_samples, int) or eval_samples < 0:
            raise ValueError(f"config eval_samples must be an int >= 0, got {eval_samples!r}")
        if isinstance(self.n_images_to_log, bool) or not isinstance(self.n_images_to_log, int):
            raise ValueError(f"config n_images_to_log must be an int, got {self.n_images_to_log!r}")
        if not (isinstance(self.lr, int | float) and self.lr > 0):
            raise ValueError(f"config lr must be a positive number, got {self.lr!r}")
        if not 0 <= self.label_dropout < 1:
            raise ValueError(f"config label_dropout must lie in [0, 1), got {self.label_dropout}")
        if self.schedule_kind not in SCHEDULE_KINDS:
            raise ValueError(
                f"config schedule_kind must be one of {SCHEDULE_KINDS}, got {self.schedule_kind!r}"
            )
        if self.wandb_mode is not None and self.wandb_mode not in WANDB_MODES:
            raise ValueError(
                f"config wandb_mode must be one of {WANDB_MODES} or None, got {self.wandb_mode!r}"
            )

    @classmethod
    def from_any(cls, config: TrainConfig | dict[str, Any]) -> TrainConfig:
        """Accept a :class:`TrainConfig`, another dataclass, or a plain dict."""
        if isinstance(config, cls):
            return config
        if dataclasses.is_dataclass(config) and not isinstance(config, type):
            config = dataclasses.asdict(config)
        if not isinstance(config, dict):
            raise TypeError(f"config must be a TrainConfig, a dataclass or a dict, got {config!r}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(f"config has unknown keys {unknown}; known keys: {sorted(known)}")
        config = dict(config)
        if "enable_wandb" in config and "wandb_mode" not in config:
            config["wandb_mode"] = None  # let the reference flag decide
        return cls(**config)


def _unpack(dataset: Any, name: str) -> tuple[Tensor, Tensor | None]:
    """``(images, labels or None)`` from a TensorDataset (or a bare tensor)."""
    if isinstance(dataset, Tensor):
        tensors: tuple[Tensor, ...] = (dataset,)
    elif isinstance(dataset, TensorDataset):
        tensors = dataset.tensors
    else:
        raise TypeError(f"{name} must be a TensorDataset of (images,) or (images, labels)")
    if len(tensors) not in (1, 2):
        raise ValueError(f"{name} must hold (images,) or (images, labels), got {len(tensors)}")
    images = tensors[0]
    if not images.is_floating_point() or images.ndim != 4:
        raise ValueError(f"{name} images must be a float tensor (N, C, H, W)")
    labels = tensors[1] if len(tensors) == 2 else None
    if labels is not None and (labels.is_floating_point() or labels.shape != images.shape[:1]):
        raise ValueError(f"{name} labels must be a LongTensor of shape ({images.shape[0]},)")
    return images, labels


def _check_data(model: ToyDiffuser, images: Tensor, labels: Tensor | None, name: str) -> None:
    if tuple(images.shape[1:]) != tuple(model.img_shape):
        raise ValueError(
            f"{name} images have shape {tuple(images.shape[1:])}, the model expects "
            f"{tuple(model.img_shape)}"
        )
    if labels is not None and not model.is_conditional:
        raise ValueError(f"{name} has labels but the model is unconditional (num_classes=None)")
    if labels is not None and labels.numel():
        K = model.config.num_classes
        if int(labels.min()) < 0 or int(labels.max()) >= K:
            raise ValueError(f"{name} labels must lie in [0, {K - 1}]")


#: The stream of the eval-loss draws: the same (t, eps) every epoch, so the curve shows the model.
EVAL_STREAM = -1


def stream_seed(seed: int, stream: int) -> int:
    """The seed of one of a run's independent random streams: epoch ``e`` draws its permutation,
    timesteps, noise and label dropout from stream ``e``, the eval loss from ``EVAL_STREAM``.

    Because no epoch's draws depend on another's, a resumed run draws exactly what an
    uninterrupted one would, and the next epoch can be drawn on a helper thread while this one
    trains.
    """
    return (seed * 0x9E3779B97F4A7C15 + stream) % 2**63


class EpochBatches:
    """One epoch of Algorithm 1's inputs, drawn at once: shuffled x_0, t, eps and x_t (Eq. 4).

    With ``lead_columns=k``, ``noised`` is written into the last columns of ``inputs``, a
    ``(N, k + C*H*W)`` buffer whose first ``k`` columns the caller fills (the fast MLP step puts
    the scaled timestep there), which saves copying the epoch into a layer-1 input.
    """

    def __init__(
        self,
        images: Tensor,
        labels: Tensor | None,
        schedule: NoiseSchedule,
        *,
        null_label: int | None,
        label_dropout: float,
        generator: torch.Generator | None,
        lead_columns: int = 0,
    ) -> None:
        n = images.shape[0]
        device = images.device
        perm = torch.randperm(n, generator=generator).to(device)
        self.x0 = images[perm]
        self.t = torch.randint(0, len(schedule), (n,), generator=generator).to(device)
        self.noise = torch.randn(images.shape, generator=generator).to(device)
        self.inputs = torch.empty(n, lead_columns + images[0].numel(), device=device)
        self.noised = self.inputs[:, lead_columns:].view(images.shape)
        # Eq. 4 for the whole epoch, written in place (no temporaries the size of the epoch).
        torch.mul(extract(schedule.sqrt_alpha_bars, self.t, images.shape), self.x0, out=self.noised)
        self.noised.addcmul_(
            extract(schedule.sqrt_one_minus_alpha_bars, self.t, images.shape), self.noise
        )
        self.y = None
        if labels is not None:
            y = labels[perm]
            drop = torch.rand(n, generator=generator).to(device) < label_dropout
            self.y = torch.where(drop, torch.full_like(y, null_label), y)


@torch.no_grad()
def evaluate_loss(
    model: ToyDiffuser,
    images: Tensor,
    labels: Tensor | None,
    schedule: NoiseSchedule,
    *,
    batch_size: int = 4096,
    generator: torch.Generator | None = None,
) -> float:
    """Mean Algorithm 1 loss over ``images`` (one random t and eps per image)."""
    was_training = model.training
    model.eval()
    batches = EpochBatches(
        images,
        labels,
        schedule,
        null_label=model.null_label,
        label_dropout=0.0,
        generator=generator,
    )
    total = torch.zeros((), device=images.device)
    for start in range(0, images.shape[0], batch_size):
        s = slice(start, start + batch_size)
        y = None if batches.y is None else batches.y[s]
        pred = model.predict(batches.noised[s], batches.t[s], y)
        total += F.mse_loss(pred, batches.noise[s], reduction="sum")
    model.train(was_training)
    return float(total) / images.numel()


def train(
    model: ToyDiffuser,
    config: TrainConfig | dict[str, Any],
    trainset: TensorDataset,
    testset: TensorDataset | None = None,
) -> ToyDiffuser:
    """Train ``model`` with Algorithm 1 and return it, in eval mode, with ``model.noise_schedule``
    attached and ``model.run_dir`` set to the run folder (None without ``out_dir``).

    ``trainset`` / ``testset``: TensorDatasets of images in model space ``[-1, 1]`` (and labels for
    a conditional model; labels are replaced by the null label with probability
    ``label_dropout``). Logs train loss, learning rate, eval loss and sample fidelity/diversity
    (per epoch) to wandb and to ``<out_dir>/<run_name>/metrics.jsonl``, images to wandb only;
    draws ``loss_curve.png`` in the run folder at the end.
    """
    from toydiff.plotting import plot_loss_curve  # matplotlib is imported only when training

    if not isinstance(model, ToyDiffuser):
        raise TypeError(f"model must be a ToyDiffuser, got {type(model).__name__}")
    cfg = TrainConfig.from_any(config)
    if cfg.max_steps != model.max_steps:
        raise ValueError(
            f"config max_steps={cfg.max_steps} does not match the model's max_steps="
            f"{model.max_steps}"
        )
    images, labels = _unpack(trainset, "trainset")
    _check_data(model, images, labels, "trainset")
    if model.is_conditional and labels is None:
        raise ValueError("a conditional model needs a trainset of (images, labels)")
    test_images = test_labels = None
    if testset is not None:
        test_images, test_labels = _unpack(testset, "testset")
        _check_data(model, test_images, test_labels, "testset")

    device = torch.device(cfg.device)
    seed = cfg.seed if cfg.seed is not None else int(torch.randint(2**62, ()))
    images = images.to(device)
    labels = labels.to(device) if labels is not None else None
    if test_images is not None:
        test_images = test_images.to(device)
        test_labels = test_labels.to(device) if test_labels is not None else None

    schedule = NoiseSchedule(
        cfg.max_steps, device, cfg.min_noise, cfg.max_noise, kind=cfg.schedule_kind
    )
    model.to(device)
    model.noise_schedule = schedule
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    start_epoch, examples_seen = 0, 0
    if cfg.resume_from is not None:
        start_epoch, examples_seen = _resume(cfg.resume_from, model, schedule, optimizer)

    run_name = cfg.run_name or time.strftime("run-%Y%m%d-%H%M%S")
    run_dir = Path(cfg.out_dir) / run_name if cfg.out_dir is not None else None
    mode = resolve_wandb_mode(cfg.wandb_mode, cfg.enable_wandb)
    logger = RunLogger(
        run_dir, dataclasses.asdict(cfg), mode=mode, project=cfg.wandb_project, name=run_name
    )

    n = images.shape[0]
    steps_per_epoch = -(-n // cfg.batch_size)
    step = start_epoch * steps_per_epoch
    running = torch.zeros(1, device=device)  # summed batch losses, read only when logged
    running_count = 0
    start = time.perf_counter()
    model.train()
    # The default MLP trains through a hand-written step (same math, far less overhead per step).
    fast = FastMLPStep.create(model, optimizer, cfg.batch_size)
    logs_images = logger.run is not None

    def draw_epoch(epoch: int) -> tuple[EpochBatches, list[FastBatch] | None]:
        """Epoch ``epoch``'s inputs, from its own generator (see :func:`stream_seed`)."""
        batches = EpochBatches(
            images,
            labels,
            schedule,
            null_label=model.null_label,
            label_dropout=cfg.label_dropout,
            generator=torch.Generator().manual_seed(stream_seed(seed, epoch)),
            lead_columns=1 if fast is not None else 0,
        )
        if fast is None:
            return batches, None
        return batches, fast.epoch(batches.inputs, batches.t, batches.noise, batches.y)

    # With the fast step, a helper thread draws each next epoch while the current one trains
    # (toydiff.parallel), and the steps run on one intra-op thread: at batch 128 they gain little
    # from a second one, which would fight the helper for the second core. Other models keep
    # torch's threads for their larger kernels and draw each epoch inline (a helper next to two
    # intra-op threads made them 3x slower on two cores).
    threads = ExitStack()
    helper = None
    if fast is not None:
        threads.enter_context(one_intra_op_thread())
        helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="toydiff-train-helper")
        if start_epoch < cfg.epochs:
            next_epoch = helper.submit(draw_epoch, start_epoch)
    try:
        for epoch in range(start_epoch, cfg.epochs):
            if helper is None:
                batches, fast_batches = draw_epoch(epoch)
            else:
                batches, fast_batches = next_epoch.result()
                if epoch + 1 < cfg.epochs:
                    next_epoch = helper.submit(draw_epoch, epoch + 1)
            bar = tqdm(
                range(steps_per_epoch),
                desc=f"epoch {epoch + 1}/{cfg.epochs}",
                disable=not cfg.progress,
                leave=False,
            )
            for i in bar:
                s = slice(i * cfg.batch_size, (i + 1) * cfg.batch_size)
                if fast_batches is not None:
                    pred = fast.step(fast_batches[i], running)
                else:
                    y = None if batches.y is None else batches.y[s]
                    pred = model.predict(batches.noised[s], batches.t[s], y)
                    loss = F.mse_loss(pred, batches.noise[s])
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    running += loss.detach()
                running_count += 1
                step += 1
                examples_seen += pred.shape[0]
                if step % cfg.log_interval == 0:
                    train_loss = float(running) / running_count
                    running.zero_()
                    running_count = 0
                    bar.set_postfix(loss=f"{train_loss:.4f}")
                    logger.log(
                        {
                            "train_loss": train_loss,
                            "lr": optimizer.param_groups[0]["lr"],
                            "epoch": epoch + (i + 1) / steps_per_epoch,
                            "elapsed": time.perf_counter() - start,
                        },
                        step=examples_seen,
                    )
                # Images go to wandb only: with wandb disabled there is nothing to draw them for.
                if step % cfg.img_log_interval == 0 and cfg.n_images_to_log > 0 and logs_images:
                    _log_images(logger, model, schedule, batches, s, pred, cfg, examples_seen)
            if test_images is not None:
                eval_generator = torch.Generator().manual_seed(stream_seed(seed, EVAL_STREAM))
                eval_loss = evaluate_loss(
                    model, test_images, test_labels, schedule, generator=eval_generator
                )
                logger.log({"eval_loss": eval_loss, "epoch": epoch + 1}, step=examples_seen)
            if cfg.eval_samples > 0:
                quality, grid = _sample_quality(model, schedule, cfg, epoch + 1)
                logger.log(quality, step=examples_seen, images=grid)
            if cfg.checkpoint_path is not None:
                if fast is not None:
                    fast.sync_state()
                save_checkpoint(
                    cfg.checkpoint_path,
                    model,
                    schedule,
                    optimizer=optimizer.state_dict(),
                    epoch=epoch + 1,
                    examples_seen=examples_seen,
                )
    finally:
        if helper is not None:
            helper.shutdown()
        threads.close()
        if fast is not None:
            fast.close()
        logger.finish()
        if logger.metrics_path is not None and run_dir is not None:
            plot_loss_curve(logger.metrics_path, run_dir / "loss_curve.png")
    model.eval()
    model.run_dir = run_dir
    return model


def _log_images(
    logger: RunLogger,
    model: ToyDiffuser,
    schedule: NoiseSchedule,
    batches: EpochBatches,
    s: slice,
    pred: Tensor,
    cfg: TrainConfig,
    step: int,
) -> None:
    """Noised inputs, their reconstructions from the predicted noise, and a few fresh samples."""
    k = min(cfg.n_images_to_log, pred.shape[0])
    with torch.no_grad():
        noised = batches.noised[s][:k]
        recon = reconstruct(noised, pred[:k].detach(), batches.t[s][:k], schedule)
        samples = sample(model, k, schedule=schedule, progress=False, clip_denoised=True)
    model.train()
    logger.log(
        {},
        step=step,
        images={
            "originals": to_images(batches.x0[s][:k]),
            "noised": to_images(noised),
            "reconstructions": to_images(recon),
            "samples": to_images(samples),
        },
    )


def _sample_quality(
    model: ToyDiffuser, schedule: NoiseSchedule, cfg: TrainConfig, epoch: int
) -> tuple[dict[str, float], dict[str, Tensor]]:
    """Fidelity and diversity of ``cfg.eval_samples`` fresh samples (Algorithm 2), and their grid.

    The same seed every epoch, so the curves show the model changing rather than the noise; its own
    generator, so the training draws stay as they were without it.
    """
    from toydiff.metrics import corner_color_spread, gradient_rms
    from toydiff.plotting import make_grid

    generator = torch.Generator().manual_seed(cfg.seed if cfg.seed is not None else 0)
    samples = to_images(
        sample(
            model,
            cfg.eval_samples,
            schedule=schedule,
            clip_denoised=True,
            generator=generator,
            progress=False,
        )
    )
    metrics = {
        "sample_gradient_rms": float(gradient_rms(samples).mean()),
        "sample_corner_spread": corner_color_spread(samples),
        "epoch": epoch,
    }
    return metrics, {"sample_grid": make_grid(samples).unsqueeze(0)}


def _resume(
    path: str, model: ToyDiffuser, schedule: NoiseSchedule, optimizer: torch.optim.Optimizer
) -> tuple[int, int]:
    """Load weights and optimizer state from a checkpoint written by :func:`train`."""
    payload = read_checkpoint(path)
    if payload["model_config"] != model.config.to_dict():
        raise ValueError(f"resume_from={path}: its model config does not match this model")
    if payload["schedule_config"] != schedule.config():
        raise ValueError(f"resume_from={path}: its schedule does not match this config")
    result = model.load_state_dict(payload["state_dict"], strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("noise_schedule.")]
    if missing or result.unexpected_keys:
        raise ValueError(
            f"resume_from={path}: weights do not match (missing {missing}, "
            f"unexpected {result.unexpected_keys})"
        )
    extra = payload.get("extra", {})
    if "optimizer" in extra:
        optimizer.load_state_dict(extra["optimizer"])
    return int(extra.get("epoch", 0)), int(extra.get("examples_seen", 0))
