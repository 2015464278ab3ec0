"""toydiff against straightforward implementations of the reference texts' loops, side by side.

Training: the reference config (50,000 gradient images 3x5x5, batch 128, d_model 128, T=100,
20 epochs, Adam lr 1e-3, eval on 1,000 images every epoch). The straightforward loop is the
reference texts' ``train``: DataLoader(shuffle=True), ``noise_img`` per step, ``F.mse_loss``, Adam,
a per-step info dict and ``wandb.log`` (wandb disabled), images every ``img_log_interval`` steps.
Both final models are scored by one function on the same held-out draws of (x_0, t, eps).

Algorithm 2: 10,000 samples at T=100 and T=1000. The straightforward loop has the reference
texts' shape with the paper's sigma_t = sqrt(beta_t): per step a ``torch.full`` timestep tensor,
``model(x, t)`` with its concatenation, a fresh noise tensor, coefficients indexed from tensors.

Samplers: DDPM-1000, DDIM-50, DDIM-10 and DPM-Solver-20 (the sampler classes, x0 clipped), each
against a straightforward loop doing the same math, plain, with ``torch.compile`` and with the
network in bfloat16. The column rel. diff compares the two outputs from the same x_T and noise.

    python benchmarks/bench.py                    # everything (about 6 minutes on 2 cores)
    python benchmarks/bench.py --quick            # 2 epochs, 2,000 samples: a smoke run
    python benchmarks/bench.py --only sampling --threads 1
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("WANDB_SILENT", "true")

import torch
import torch.nn.functional as F
from einops import rearrange
from einops.layers.torch import Rearrange
from torch import Tensor, nn
from torch.utils.data import DataLoader, TensorDataset

from toydiff import (
    DDIMSampler,
    DDPMSampler,
    DPMSolverSampler,
    NoiseSchedule,
    TimestepScheduler,
    ToyDiffuser,
    ToyDiffuserConfig,
    TrainConfig,
    gradient_images,
    normalize_img,
    reconstruct,
    sample,
    train,
)

IMG_SHAPE = (3, 5, 5)
COMMAND = "python benchmarks/bench.py " + shlex.join(sys.argv[1:])


class StraightforwardDiffuser(nn.Module):
    """The reference texts' MLP as they write it: cat([t / (T-1), pixels]) -> Sequential."""

    def __init__(self, img_shape: tuple[int, int, int], d_model: int, max_steps: int) -> None:
        super().__init__()
        C, H, W = img_shape
        self.max_steps = max_steps
        self.model = nn.Sequential(
            nn.Linear(C * H * W + 1, d_model),
            nn.ReLU(),
            nn.Linear(d_model, C * H * W),
            Rearrange("b (c h w) -> b c h w", c=C, h=H, w=W),
        )

    @classmethod
    def like(cls, model: ToyDiffuser) -> StraightforwardDiffuser:
        """Same weights as a default ``ToyDiffuser``."""
        cfg = model.config
        ref = cls(cfg.img_shape, cfg.d_model, cfg.max_steps)
        ref.model[0].load_state_dict(model.inp.state_dict())
        ref.model[2].load_state_dict(model.out.state_dict())
        return ref

    def forward(self, images: Tensor, num_steps: Tensor) -> Tensor:
        assert num_steps.shape == images.shape[:1]
        t = (num_steps / (self.max_steps - 1)).to(images.dtype)
        return self.model(
            torch.cat([rearrange(t, "b -> b 1"), rearrange(images, "b c h w -> b (c h w)")], -1)
        )


class Bfloat16Network(nn.Module):
    """Runs ``inner`` in bfloat16 on float32 inputs (the sampler state stays float32)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner.to(torch.bfloat16)
        for name in ("config", "img_shape", "max_steps"):
            if hasattr(inner, name):
                setattr(self, name, getattr(inner, name))

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        return self.inner(x.to(torch.bfloat16), t).float()

    def predict_at(self, x: Tensor, t: int, y: Tensor | None = None) -> Tensor:
        return self.inner.predict_at(x.to(torch.bfloat16), t, y).float()


class Compiled(nn.Module):
    """``torch.compile(fn)`` behind the plain ``model(x, t)`` interface of ``like``."""

    def __init__(self, fn: Callable[[Tensor, Tensor], Tensor], like: nn.Module) -> None:
        super().__init__()
        self.compiled = torch.compile(fn)
        for name in ("config", "img_shape", "max_steps"):
            if hasattr(like, name):
                setattr(self, name, getattr(like, name))

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        return self.compiled(x, t)


# ---------------------------------------------------------------------------------------------
# Training


def straightforward_noise_img(
    img: Tensor, schedule: NoiseSchedule
) -> tuple[Tensor, Tensor, Tensor]:
    """The reference ``noise_img`` (drawing every timestep index 0..T-1, as it must)."""
    num_steps = torch.randint(0, len(schedule), (img.shape[0],))
    noise = torch.randn_like(img)
    ab = schedule.alpha_bar(num_steps)
    x_scale = rearrange(ab.sqrt(), "b -> b 1 1 1")
    noise_scale = rearrange((1 - ab).sqrt(), "b -> b 1 1 1")
    return num_steps, noise, x_scale * img + noise_scale * noise


def straightforward_train(
    model: StraightforwardDiffuser,
    config: dict[str, Any],
    trainset: TensorDataset,
    testset: TensorDataset,
) -> StraightforwardDiffuser:
    """The reference texts' Algorithm 1 loop, step for step."""
    import wandb

    wandb.init(project="bench", config=config, mode="disabled")
    schedule = NoiseSchedule(config["max_steps"])
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config["lr"])
    train_loader = DataLoader(trainset, batch_size=config["batch_size"], shuffle=True)
    test_loader = DataLoader(testset, batch_size=config["batch_size"])
    start_time = time.time()
    examples_seen = 0
    for _epoch in range(config["epochs"]):
        for i, (x,) in enumerate(train_loader):
            num_steps, noise, noised = straightforward_noise_img(x, schedule)
            y_hat = model(noised, num_steps)
            loss = F.mse_loss(y_hat, noise)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            info: dict[str, Any] = dict(
                train_loss=loss,
                elapsed=time.time() - start_time,
                y_hat_mean=y_hat.mean(),
                y_hat_var=y_hat.var(),
                noised_mean=noised.mean(),
                noised_var=noised.var(),
            )
            if (i + 1) % config["img_log_interval"] == 0:
                recon = reconstruct(noised, y_hat.detach(), num_steps, schedule)
                k = config["n_images_to_log"]
                info["images"] = [
                    wandb.Image(img.permute(1, 2, 0).clamp(-1, 1).numpy() * 0.5 + 0.5)
                    for img in torch.cat([x[:k], noised[:k], recon[:k]])
                ]
            examples_seen += len(x)
            wandb.log(info, step=examples_seen)
        losses = []
        for (x,) in test_loader:
            num_steps, noise, noised = straightforward_noise_img(x, schedule)
            with torch.inference_mode():
                losses.append(F.mse_loss(model(noised, num_steps), noise).item())
        wandb.log(dict(eval_loss=sum(losses) / len(losses)), step=examples_seen)
    wandb.finish()
    return model


@torch.no_grad()
def score(
    model: nn.Module, images: Tensor, schedule: NoiseSchedule, repeats: int, seed: int
) -> float:
    """Mean Algorithm 1 loss of ``model(x, t)``: ``repeats`` seeded draws of (t, eps) per image."""
    g = torch.Generator().manual_seed(seed)
    total = 0.0
    for _ in range(repeats):
        t = torch.randint(0, len(schedule), (images.shape[0],), generator=g)
        eps = torch.randn(images.shape, generator=g)
        ab = rearrange(schedule.alpha_bars[t], "b -> b 1 1 1")
        total += F.mse_loss(model(ab.sqrt() * images + (1 - ab).sqrt() * eps, t), eps).item()
    return total / repeats


def warm_up_imports() -> None:
    """Pay one-off process costs before any clock starts: imports (wandb, matplotlib, the lazy
    imports of the first optimizer construction) and matplotlib's first-figure font and mathtext
    set-up (``train`` draws a loss curve at the end; each later figure still costs its own time)."""
    import matplotlib.pyplot as plt
    import wandb  # noqa: F401

    from toydiff.plotting import plot_loss_curve

    torch.optim.Adam(nn.Linear(1, 1).parameters())
    with tempfile.TemporaryDirectory() as tmp:
        records = [{"step": 1, "train_loss": 1.0}, {"step": 2, "eval_loss": 0.5}]
        plt.close(plot_loss_curve(records, os.path.join(tmp, "loss.png")))


def bench_training(args: argparse.Namespace) -> None:
    warm_up_imports()
    g = torch.Generator().manual_seed(0)
    train_images = normalize_img(gradient_images(50_000, IMG_SHAPE, generator=g))
    test_images = normalize_img(gradient_images(1_000, IMG_SHAPE, generator=g))
    score_images = normalize_img(gradient_images(10_000, IMG_SHAPE, generator=g))
    trainset, testset = TensorDataset(train_images), TensorDataset(test_images)
    config = dict(
        lr=1e-3, image_shape=IMG_SHAPE, d_model=128, epochs=args.epochs, max_steps=100,
        batch_size=128, img_log_interval=200, n_images_to_log=3, n_images=50_000,
        n_eval_images=1_000, device="cpu", enable_wandb=False,
    )  # fmt: skip
    steps = args.epochs * math.ceil(50_000 / 128)
    schedule = NoiseSchedule(100)
    results: dict[str, list[tuple[float, float]]] = {"straightforward": [], "toydiff": []}
    for seed in range(args.train_repeats):
        for name in results:  # interleaved, so that both see the same machine load
            torch.manual_seed(seed)
            model = ToyDiffuser(ToyDiffuserConfig(IMG_SHAPE, 128, 100))
            start = time.perf_counter()
            if name == "toydiff":
                with tempfile.TemporaryDirectory() as out_dir:
                    cfg = TrainConfig(
                        **config, wandb_mode="disabled", out_dir=out_dir, progress=False, seed=seed
                    )
                    trained: nn.Module = train(model, cfg, trainset, testset)
            else:
                ref = StraightforwardDiffuser.like(model)
                trained = straightforward_train(ref, config, trainset, testset)
            seconds = time.perf_counter() - start
            loss = score(trained.eval(), score_images, schedule, repeats=5, seed=123)
            results[name].append((seconds, loss))
    threads = torch.get_num_threads()
    print(
        f"\n## Training: reference config, {args.epochs} epochs = {steps} steps, "
        f"{threads} thread(s), {args.train_repeats} run(s) each"
    )
    print(f"   command: {COMMAND}")
    print(f"   {'':16s} {'best time (s)':>13s} {'steps/s':>8s} {'final eval loss per run':>24s}")
    best = {}
    for name, runs in results.items():
        best[name] = min(seconds for seconds, _ in runs)
        losses = " ".join(f"{loss:.5f}" for _, loss in runs)
        print(f"   {name:16s} {best[name]:13.2f} {steps / best[name]:8.0f}   {losses}")
    ratio = best["straightforward"] / best["toydiff"]
    print(f"   throughput ratio toydiff / straightforward: {ratio:.2f}x")
    print("   (eval loss: both scored on the same 10,000 held-out images x 5 draws of (t, eps))")


# ---------------------------------------------------------------------------------------------
# Sampling: straightforward loops, one per sampler, in the reference texts' loop shape


def _t(x: Tensor, step: int) -> Tensor:
    return torch.full((x.shape[0],), step, dtype=torch.long)


def _clipped_x0(model: nn.Module, x: Tensor, step: int, ab: Tensor) -> Tensor:
    """The x0 that the model's eps at ``step`` implies (Eq. 4 read backwards), clamped to [-1, 1];
    ``ab`` is alpha_bar at ``step``."""
    eps = model(x, _t(x, step))
    return ((x - (1 - ab).sqrt() * eps) / ab.sqrt()).clamp(-1, 1)


@torch.no_grad()
def straightforward_algorithm2(
    model: nn.Module, schedule: NoiseSchedule, x: Tensor, g: torch.Generator
) -> Tensor:
    """Algorithm 2 with sigma_t = sqrt(beta_t), no clipping."""
    for step in reversed(range(len(schedule))):
        pred = model(x, _t(x, step))
        pred_scale = schedule.beta(step) / (1 - schedule.alpha_bar(step)).sqrt()
        x = (x - pred_scale * pred) / schedule.alpha(step).sqrt()
        if step > 0:
            x = x + schedule.beta(step).sqrt() * torch.randn(x.shape, generator=g)
    return x


@torch.no_grad()
def straightforward_ddpm(
    model: nn.Module, schedule: NoiseSchedule, x: Tensor, g: torch.Generator
) -> Tensor:
    """DDPM with the clipped x0-form posterior mean (Eq. 7) and sigma_t^2 = beta_tilde_t."""
    s = schedule
    for step in reversed(range(len(s))):
        ab, ab_prev, beta = s.alpha_bars[step], s.alpha_bars_prev[step], s.betas[step]
        x0 = _clipped_x0(model, x, step, ab)
        coef_x0 = beta * ab_prev.sqrt() / (1 - ab)
        coef_xt = (1 - ab_prev) * s.alphas[step].sqrt() / (1 - ab)
        x = coef_x0 * x0 + coef_xt * x
        if step > 0:
            x = x + s.posterior_variance[step].sqrt() * torch.randn(x.shape, generator=g)
    return x


@torch.no_grad()
def straightforward_ddim(
    model: nn.Module, schedule: NoiseSchedule, x: Tensor, num_steps: int
) -> Tensor:
    """DDIM eta=0 (Eq. 12) on the uniform sub-sequence, x0 clipped and eps re-derived from it."""
    timesteps = TimestepScheduler.uniform(len(schedule), num_steps)
    for i, step in enumerate(timesteps):
        ab = schedule.alpha_bars[step]
        ab_prev = schedule.alpha_bars[timesteps[i + 1]] if i + 1 < len(timesteps) else 1.0
        x0 = _clipped_x0(model, x, int(step), ab)
        eps = (x - ab.sqrt() * x0) / (1 - ab).sqrt()
        x = math.sqrt(ab_prev) * x0 + math.sqrt(1 - ab_prev) * eps
    return x


@torch.no_grad()
def straightforward_dpm_solver(
    model: nn.Module, schedule: NoiseSchedule, x: Tensor, num_steps: int
) -> Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022) on the uniform sub-sequence, x0 clipped."""
    timesteps = TimestepScheduler.uniform(len(schedule), num_steps)
    ab = schedule.alpha_bars.double()
    lam = (ab.sqrt() / (1 - ab).sqrt()).log()
    x0_prev, h_prev = None, None
    for i, step in enumerate(timesteps):
        eps = model(x, _t(x, int(step)))
        a, s = ab[step].sqrt(), (1 - ab[step]).sqrt()
        x0 = ((x - s * eps) / a).clamp(-1, 1)
        if i + 1 == len(timesteps):  # last step: to sigma = 0, i.e. x = x0
            return x0
        nxt = timesteps[i + 1]
        h = lam[nxt] - lam[step]
        if x0_prev is None:
            d = x0
        else:
            r = h_prev / h
            d = (1 + 1 / (2 * r)) * x0 - 1 / (2 * r) * x0_prev
        a_next, s_next = ab[nxt].sqrt(), (1 - ab[nxt]).sqrt()
        x = float(s_next / s) * x - float(a_next * (torch.exp(-h) - 1)) * d
        x0_prev, h_prev = x0, h
    return x


def interleaved(*fns: Callable[[], Any], repeats: int) -> list[float]:
    """Best wall time of each function over ``repeats`` rounds; the functions take turns within a
    round, so that all of them see the same machine load (the 2 cores are shared)."""
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            start = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - start)
    return best


def _relative_diff(a: Tensor, b: Tensor) -> float:
    """max |a - b| / max |a|: float32 rounding grows through 1/sqrt(alpha_bar) over a long chain."""
    return ((a - b).abs().max() / a.abs().max()).item()


def _row(label: str, n: int, t_ref: float, t_toy: float, diff: float) -> None:
    per = 10_000 / n
    print(
        f"   {label:24s} {t_ref * per:16.2f} {t_toy * per:8.2f} {t_ref / t_toy:6.2f}x {diff:10.1e}"
    )


def _header(title: str, args: argparse.Namespace) -> None:
    threads = torch.get_num_threads()
    print(f"\n## {title}: {args.samples} samples, best of {args.repeats}, {threads} thread(s)")
    print(f"   command: {COMMAND}")
    print("   seconds per 10,000 samples; rel. diff: max|a - b| / max|a| between the two outputs")
    print("   from the same x_T and noise (float32 rounding, amplified along the chain)")
    print(f"   {'':24s} {'straightforward':>16s} {'toydiff':>8s} {'ratio':>7s} {'rel. diff':>10s}")


def bench_algorithm2(args: argparse.Namespace) -> None:
    _header("Algorithm 2, sigma = sqrt(beta)", args)
    for T in (100, 1000):
        _algorithm2_row(T, args.samples, args.repeats)


def _algorithm2_row(T: int, n: int, repeats: int) -> None:
    torch.manual_seed(0)
    model = ToyDiffuser(ToyDiffuserConfig(IMG_SHAPE, 128, T)).eval()
    ref = StraightforwardDiffuser.like(model).eval()
    schedule = NoiseSchedule(T)

    def run_ref() -> Tensor:
        g = torch.Generator().manual_seed(0)
        x = torch.randn((n, *IMG_SHAPE), generator=g)
        return straightforward_algorithm2(ref, schedule, x, g)

    def run_toy() -> Tensor:
        g = torch.Generator().manual_seed(0)
        return sample(model, n, schedule=schedule, variance="beta", progress=False, generator=g)

    diff = _relative_diff(run_ref(), run_toy())
    t_ref, t_toy = interleaved(run_ref, run_toy, repeats=repeats)
    _row(f"DDPM-{T} (sample)", n, t_ref, t_toy, diff)


def bench_samplers(args: argparse.Namespace) -> None:
    n, T = args.samples, 1000
    torch.manual_seed(0)
    model = ToyDiffuser(ToyDiffuserConfig(IMG_SHAPE, 128, T)).eval()
    schedule = NoiseSchedule(T)
    variants = {
        "": (model, StraightforwardDiffuser.like(model).eval()),
    }
    if "compile" in args.variants:
        ref = StraightforwardDiffuser.like(model).eval()
        # toydiff's network without its argument checks (model.predict), the reference's as is.
        variants[" compiled"] = (Compiled(model.predict, model), Compiled(ref, ref))
    if "bf16" in args.variants:
        bf = ToyDiffuser(model.config).eval()
        bf.load_state_dict(model.state_dict())
        variants[" bfloat16"] = (
            Bfloat16Network(bf),
            Bfloat16Network(StraightforwardDiffuser.like(model).eval()),
        )
    _header("Samplers, T=1000, x0 clipped", args)
    for suffix, (toy, ref) in variants.items():
        rows: dict[str, tuple[Callable[[Tensor, torch.Generator], Tensor], ...]] = {
            "DDPM-1000": (
                lambda x, g: straightforward_ddpm(ref, schedule, x, g),  # noqa: B023
                lambda x, g: DDPMSampler(toy, schedule.betas).sample(  # noqa: B023
                    x.shape, x_T=x, generator=g, progress=False
                ),
            ),
        }
        for steps in (50, 10):
            rows[f"DDIM-{steps}"] = (
                lambda x, g, k=steps: straightforward_ddim(ref, schedule, x, k),  # noqa: B023
                lambda x, g, k=steps: DDIMSampler(toy, schedule.alpha_bars).sample(  # noqa: B023
                    x.shape, num_steps=k, x_T=x, progress=False
                ),
            )
        rows["DPM-Solver-20"] = (
            lambda x, g: straightforward_dpm_solver(ref, schedule, x, 20),  # noqa: B023
            lambda x, g: DPMSolverSampler(toy, schedule.alpha_bars).sample(  # noqa: B023
                x.shape, num_steps=20, x_T=x, progress=False
            ),
        )
        for label, (run_ref, run_toy) in rows.items():

            def call(fn: Callable[[Tensor, torch.Generator], Tensor]) -> Tensor:
                g = torch.Generator().manual_seed(0)
                return fn(torch.randn((n, *IMG_SHAPE), generator=g), g)

            diff = _relative_diff(call(run_ref), call(run_toy))  # also warms compile up
            t_ref, t_toy = interleaved(
                lambda: call(run_ref),  # noqa: B023
                lambda: call(run_toy),  # noqa: B023
                repeats=args.repeats,
            )
            _row(label + suffix, n, t_ref, t_toy, diff)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="2 epochs and 2,000 samples")
    parser.add_argument(
        "--only", choices=("training", "sampling", "samplers"), default=None, help="one section"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch.set_num_threads for both loops (default 0: torch's default, one per core)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="sampling runs per row (best kept)")
    parser.add_argument("--train-repeats", type=int, default=2, help="training runs per loop")
    parser.add_argument(
        "--variants", default="compile,bf16", help="sampler variants beyond plain float32"
    )
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    args.epochs = 2 if args.quick else 20
    args.samples = 2_000 if args.quick else 10_000
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, {threads} torch threads")
    if args.only in (None, "training"):
        bench_training(args)
    if args.only in (None, "sampling"):
        bench_algorithm2(args)
    if args.only in (None, "samplers"):
        bench_samplers(args)


if __name__ == "__main__":
    main()
