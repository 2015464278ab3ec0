"""Classifier-free guidance: the formula, one batched pass with the null label, and its effect."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from toydiff import (
    DDIMSampler,
    DDPMSampler,
    DPMSolverSampler,
    GaussianMixture,
    MixtureNoisePredictor,
    ToyDiffuser,
    ToyDiffuserConfig,
    model_noise_fn,
)

T = 1000


@pytest.fixture(scope="module")
def mixture() -> GaussianMixture:
    """8 modes, labels alternate 0, 1; class 1 holds only 4 / 18 of the mass."""
    w = torch.tensor([3.5, 1.0, 3.5, 1.0, 3.5, 1.0, 3.5, 1.0])
    return GaussianMixture.ring(8, std=0.08, weights=w, num_classes=2)


class Spy(nn.Module):
    """Wraps a model and records the batch size and labels of every call."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner
        self.config = inner.config
        self.null_label = inner.null_label
        self.calls: list[tuple[int, Tensor | None]] = []

    def forward(self, x: Tensor, t: Tensor, y: Tensor | None = None) -> Tensor:
        self.calls.append((x.shape[0], y))
        return self.inner(x, t, y)


def test_guided_eps_formula(exact: MixtureNoisePredictor) -> None:
    x = torch.randn(20, 2, generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, 2, (20,), generator=torch.Generator().manual_seed(1))
    t = 400
    tt = torch.full((20,), t)
    eps_c = exact(x, tt, y)
    eps_u = exact(x, tt, torch.full((20,), exact.null_label))
    for w in (0.0, 1.0, 3.0, -0.5):
        got = model_noise_fn(exact, 20, y=y, guidance_scale=w)(x, t)
        torch.testing.assert_close(got, eps_u + w * (eps_c - eps_u))
    torch.testing.assert_close(
        model_noise_fn(exact, 20, y=y, guidance_scale=0.0)(x, t), exact(x, tt)
    )
    torch.testing.assert_close(model_noise_fn(exact, 20, y=y, guidance_scale=1.0)(x, t), eps_c)


def test_one_batched_pass_with_the_null_label(exact, schedule) -> None:
    spy = Spy(exact)
    y = torch.tensor([0, 1, 1, 0, 1])
    DDIMSampler(spy, schedule.alpha_bars).sample((5, 2), 7, y=y, guidance_scale=2.0, progress=False)
    assert len(spy.calls) == 7  # one model call per step
    for batch, labels in spy.calls:
        assert batch == 10
        assert labels is not None
        assert torch.equal(labels[:5], y)
        assert bool((labels[5:] == exact.null_label).all())  # never class 0 (known error 10)


@pytest.mark.parametrize("sampler", ["ddpm", "ddim", "dpm"])
def test_scale_zero_and_one(exact, schedule, sampler) -> None:
    """w=0 samples the unconditional model, w=1 the conditional one (same noise)."""
    shape, y = (64, 2), torch.ones(64, dtype=torch.long)

    def run(**kw: object) -> Tensor:
        g = torch.Generator().manual_seed(3)
        if sampler == "ddpm":
            return DDPMSampler(exact, schedule.betas).sample(
                shape, 20, generator=g, progress=False, **kw
            )
        if sampler == "ddim":
            s = DDIMSampler(exact, schedule.alpha_bars)
            return s.sample(shape, 20, 0.5, generator=g, progress=False, **kw)
        s = DPMSolverSampler(exact, schedule.alpha_bars)
        return s.sample(shape, 20, generator=g, progress=False, **kw)

    torch.testing.assert_close(run(y=y, guidance_scale=0.0), run(), atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(run(y=y, guidance_scale=1.0), run(y=y), atol=1e-4, rtol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["DDPM-250", "DDIM-50", "DPM-Solver-20"])
def test_guidance_lands_on_the_class(mixture, exact, schedule, sampler) -> None:
    n, cls = 2000, 1
    y = torch.full((n,), cls)

    def run(**kw: object) -> Tensor:
        g = torch.Generator().manual_seed(4)
        if sampler == "DDPM-250":
            return DDPMSampler(exact, schedule.betas).sample(
                (n, 2), 250, generator=g, progress=False, **kw
            )
        if sampler == "DDIM-50":
            return DDIMSampler(exact, schedule.alpha_bars).sample(
                (n, 2), 50, generator=g, progress=False, **kw
            )
        s = DPMSolverSampler(exact, schedule.alpha_bars)
        return s.sample((n, 2), 20, generator=g, spacing="karras", progress=False, **kw)

    def on_class(x: Tensor) -> float:
        # nearest mode of the class, within 4 std (true data: 1 - exp(-8) = 99.97% within 4 std)
        k, d = mixture.nearest_mode(x)
        return float(((mixture.labels[k] == cls) & (d < 4)).float().mean())

    unconditional = on_class(run())
    guided = on_class(run(y=y, guidance_scale=3.0))
    assert 0.15 < unconditional < 0.3  # class 1 holds 4 / 18 = 22% of the mass
    assert guided >= 0.99


def test_sample_with_guidance_and_a_trained_style_model(schedule) -> None:
    model = ToyDiffuser(ToyDiffuserConfig((3, 4, 4), 16, T, num_classes=3))
    sampler = DDPMSampler(model, schedule.betas)
    cond = torch.tensor([0, 2, 1, 3])  # 3 is the null label: allowed
    kw = dict(progress=False, clip_denoised=False)
    a = sampler.sample_with_guidance(
        (4, 3, 4, 4), cond, 2.5, 10, generator=torch.Generator().manual_seed(5), **kw
    )
    b = sampler.sample(
        (4, 3, 4, 4),
        10,
        y=cond,
        guidance_scale=2.5,
        generator=torch.Generator().manual_seed(5),
        **kw,
    )
    assert torch.equal(a, b)
    c = sampler.sample((4, 3, 4, 4), 10, y=cond, generator=torch.Generator().manual_seed(5), **kw)
    assert not torch.equal(a, c)
    # predict_at with a doubled label batch matches the plain forward pass
    x = torch.randn(4, 3, 4, 4)
    eps = model_noise_fn(model, 4, y=cond, guidance_scale=1.0)(x, 17)
    torch.testing.assert_close(eps, model(x, torch.full((4,), 17), cond), atol=1e-5, rtol=1e-5)


def test_guidance_errors(exact, schedule) -> None:
    uncond = ToyDiffuser(ToyDiffuserConfig((1, 2, 2), 8, T))
    with pytest.raises(ValueError, match="guidance_scale was given but the model is unconditional"):
        DDIMSampler(uncond, schedule.alpha_bars).sample(
            (3, 1, 2, 2), 5, guidance_scale=3.0, progress=False
        )
    with pytest.raises(ValueError, match="not class-conditional"):
        DDIMSampler(uncond, schedule.alpha_bars).sample(
            (3, 1, 2, 2), 5, y=torch.zeros(3, dtype=torch.long), guidance_scale=3.0, progress=False
        )
    sampler = DDPMSampler(exact, schedule.betas)
    with pytest.raises(ValueError, match="guidance_scale needs class labels"):
        sampler.sample((3, 2), 5, guidance_scale=3.0, progress=False)
    with pytest.raises(
        ValueError, match=r"y must be a LongTensor of class labels with shape \(3,\)"
    ):
        sampler.sample_with_guidance((3, 2), torch.zeros(4, dtype=torch.long), progress=False)
    with pytest.raises(ValueError, match="y must"):
        sampler.sample_with_guidance((3, 2), torch.zeros(3), progress=False)
    with pytest.raises(ValueError, match="labels in"):
        sampler.sample_with_guidance((3, 2), torch.full((3,), 5), progress=False)
    with pytest.raises(TypeError, match="condition"):
        sampler.sample_with_guidance((3, 2), [0, 1, 1], progress=False)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="finite"):
        sampler.sample((3, 2), 5, y=torch.zeros(3, dtype=torch.long), guidance_scale=float("nan"))
    with pytest.raises(TypeError, match="guidance_scale"):
        sampler.sample((3, 2), 5, y=torch.zeros(3, dtype=torch.long), guidance_scale="3")  # type: ignore[arg-type]
