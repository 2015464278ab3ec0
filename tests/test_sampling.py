"""Algorithm 2 (`toydiff.sample`) against a chain derived by hand from the DDPM formulas."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

from toydiff import NoiseSchedule, ToyDiffuser, ToyDiffuserConfig, gradient_rms, sample
from toydiff.data import denormalize_img

SHAPE = (2, 3, 3)
EpsFn = Callable[[Tensor, int], Tensor]


class FixedEps(nn.Module):
    """A 'trained' model with a known answer: eps(x, t) = a * x + c * (t + 1)."""

    def __init__(self, a: float, c: float) -> None:
        super().__init__()
        self.img_shape = SHAPE
        self.a, self.c = a, c
        self.calls: list[list[int]] = []

    def forward(self, x: Tensor, t: Tensor) -> Tensor:
        self.calls.append(t.tolist())
        return self.a * x + self.c * (t.to(x.dtype) + 1).reshape(-1, 1, 1, 1)

    def eps(self, x: Tensor, t: int) -> Tensor:
        return self.a * x + self.c * (t + 1)


def hand_chain(
    x_T: Tensor,
    betas: list[float],
    timesteps: list[int],
    eps_fn: EpsFn,
    zs: list[Tensor],
    *,
    variance: str = "beta_tilde",
    clip: bool = False,
) -> list[Tensor]:
    """DDPM reverse chain in float64, written from the paper (Eq. 4, 7, 11 and Algorithm 2).

    Over a sub-sequence the betas are respaced: beta'_t = 1 - alpha_bar_t / alpha_bar_prev.
    """
    alpha_bars, prod = [], 1.0
    for b in betas:
        prod *= 1 - b
        alpha_bars.append(prod)
    x = x_T.double()
    out = [x]
    for i, t in enumerate(timesteps):
        last = i == len(timesteps) - 1
        ab = alpha_bars[t]
        ab_prev = 1.0 if last else alpha_bars[timesteps[i + 1]]
        beta = 1 - ab / ab_prev
        alpha = 1 - beta
        eps = eps_fn(x, t)
        if clip:
            x0 = ((x - math.sqrt(1 - ab) * eps) / math.sqrt(ab)).clamp(-1, 1)
            mean = (
                beta * math.sqrt(ab_prev) / (1 - ab) * x0
                + (1 - ab_prev) * math.sqrt(alpha) / (1 - ab) * x
            )
        else:
            mean = (x - beta / math.sqrt(1 - ab) * eps) / math.sqrt(alpha)
        var = beta * (1 - ab_prev) / (1 - ab) if variance == "beta_tilde" else beta
        x = mean if last else mean + math.sqrt(var) * zs[i].double()
        out.append(x)
    return out


def _draws(seed: int, n: int, shape: tuple[int, ...]) -> list[Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g) for _ in range(n)]


BETAS = [0.1, 0.2, 0.3]


@pytest.mark.parametrize("variance", ["beta_tilde", "beta"])
@pytest.mark.parametrize("clip", [False, True])
def test_sample_matches_the_hand_derived_chain(variance: str, clip: bool) -> None:
    model = FixedEps(a=0.5, c=0.2)
    schedule = NoiseSchedule.from_betas(torch.tensor(BETAS))
    # Large |x_T| so that the predicted x0 leaves [-1, 1] and clipping changes the answer.
    x_T = torch.randn(4, *SHAPE, generator=torch.Generator().manual_seed(1)) * 3
    steps = sample(
        model,
        4,
        return_all_steps=True,
        schedule=schedule,
        variance=variance,
        clip_denoised=clip,
        x_T=x_T,
        generator=torch.Generator().manual_seed(9),
        progress=False,
    )
    # x_T is given, so the generator's draws are the noises of steps t=2 and t=1 (none at t=0).
    zs = _draws(9, 2, (4, *SHAPE))
    expected = hand_chain(x_T, BETAS, [2, 1, 0], model.eps, zs, variance=variance, clip=clip)
    assert len(steps) == 4
    for got, want in zip(steps, expected, strict=True):
        assert torch.allclose(got.double(), want, atol=1e-5)
    assert model.calls == [[2] * 4, [1] * 4, [0] * 4]  # timestep indices, not step counts


def test_the_first_step_by_hand() -> None:
    """One step from t = 2 (DDPM t = 3) with eps = 0.5 x + 0.6, x_T = 2 everywhere, beta_tilde."""
    model = FixedEps(a=0.5, c=0.2)
    schedule = NoiseSchedule.from_betas(torch.tensor(BETAS))
    x_T = torch.full((1, *SHAPE), 2.0)
    steps = sample(
        model,
        1,
        return_all_steps=True,
        schedule=schedule,
        x_T=x_T,
        generator=torch.Generator().manual_seed(0),
        progress=False,
    )
    # alpha_bar_2 = 0.9 * 0.8 * 0.7 = 0.504, alpha_bar_1 = 0.72, eps = 1.6
    mean = (2.0 - 0.3 / math.sqrt(1 - 0.504) * 1.6) / math.sqrt(0.7)
    sigma = math.sqrt(0.3 * (1 - 0.72) / (1 - 0.504))
    z = _draws(0, 1, (1, *SHAPE))[0]
    assert torch.allclose(steps[1], mean + sigma * z, atol=1e-5)


def test_clipping_is_not_a_no_op_and_equals_eps_form_when_inactive() -> None:
    schedule = NoiseSchedule.from_betas(torch.tensor(BETAS))
    kwargs = {"schedule": schedule, "progress": False}
    wild = torch.full((2, *SHAPE), 3.0)
    a = sample(
        FixedEps(0.5, 0.2), 2, x_T=wild, generator=torch.Generator().manual_seed(0), **kwargs
    )
    b = sample(
        FixedEps(0.5, 0.2),
        2,
        x_T=wild,
        generator=torch.Generator().manual_seed(0),
        clip_denoised=True,
        **kwargs,
    )
    assert not torch.allclose(a, b, atol=1e-3)  # pitfall 4: clipping must change the result
    # An oracle whose x0 estimate is a constant inside [-1, 1]: clipping changes nothing, and
    # the last step (alpha_bar_prev = 1) lands exactly on that x0.
    ab = schedule.alpha_bars.double()

    class Oracle(nn.Module):
        img_shape = SHAPE

        def forward(self, x: Tensor, t: Tensor) -> Tensor:
            a = ab[t].reshape(-1, 1, 1, 1)
            return ((x.double() - a.sqrt() * 0.25) / (1 - a).sqrt()).float()

    a = sample(Oracle(), 2, x_T=wild, generator=torch.Generator().manual_seed(0), **kwargs)
    b = sample(
        Oracle(),
        2,
        x_T=wild,
        generator=torch.Generator().manual_seed(0),
        clip_denoised=True,
        **kwargs,
    )
    assert torch.allclose(a, b, atol=1e-5)
    assert torch.allclose(a, torch.full_like(a, 0.25), atol=1e-5)


@pytest.mark.parametrize("spacing", ["uniform", "trailing"])
def test_respaced_chain_uses_respaced_betas(spacing: str) -> None:
    betas = torch.linspace(0.05, 0.3, 10).tolist()
    schedule = NoiseSchedule.from_betas(torch.tensor(betas))
    model = FixedEps(a=0.3, c=-0.1)
    x_T = torch.randn(3, *SHAPE, generator=torch.Generator().manual_seed(2))
    steps = sample(
        model,
        3,
        return_all_steps=True,
        schedule=schedule,
        num_steps=4,
        spacing=spacing,
        x_T=x_T,
        generator=torch.Generator().manual_seed(4),
        progress=False,
    )
    timesteps = [row[0] for row in model.calls]
    assert timesteps == ([9, 6, 3, 0] if spacing == "uniform" else [9, 7, 4, 1])
    assert len(steps) == 5
    expected = hand_chain(x_T, betas, timesteps, model.eps, _draws(4, 3, (3, *SHAPE)))
    for got, want in zip(steps, expected, strict=True):
        assert torch.allclose(got.double(), want, atol=1e-5)


def test_draw_order_x_T_first_then_one_draw_per_noisy_step() -> None:
    model = FixedEps(0.5, 0.2)
    schedule = NoiseSchedule.from_betas(torch.tensor(BETAS))
    drawn = sample(
        model, 2, schedule=schedule, generator=torch.Generator().manual_seed(3), progress=False
    )
    g = torch.Generator().manual_seed(3)
    x_T = torch.randn(2, *SHAPE, generator=g)
    given = sample(model, 2, schedule=schedule, x_T=x_T, generator=g, progress=False)
    assert torch.equal(drawn, given)


def test_seeded_determinism_on_a_trained_model(trained_model: ToyDiffuser) -> None:
    def run(seed: int) -> Tensor:
        return sample(
            trained_model, 16, generator=torch.Generator().manual_seed(seed), progress=False
        )

    a = run(0)
    assert a.shape == (16, 3, 5, 5)
    assert torch.equal(a, run(0))
    assert not torch.allclose(a, run(1))


def test_x_T_is_used_and_not_modified(trained_model: ToyDiffuser) -> None:
    x_T = torch.randn(8, 3, 5, 5, generator=torch.Generator().manual_seed(0))
    before = x_T.clone()
    steps = sample(
        trained_model,
        8,
        return_all_steps=True,
        x_T=x_T,
        generator=torch.Generator().manual_seed(1),
        progress=False,
    )
    assert torch.equal(x_T, before)
    assert torch.equal(steps[0], x_T)
    other = sample(
        trained_model,
        8,
        x_T=x_T + 1,
        generator=torch.Generator().manual_seed(1),
        progress=False,
    )
    assert not torch.allclose(other, steps[-1])


def test_return_all_steps_gives_T_plus_one_tensors(trained_model: ToyDiffuser) -> None:
    T = len(trained_model.noise_schedule)
    steps = sample(
        trained_model, 4, True, generator=torch.Generator().manual_seed(5), progress=False
    )
    assert isinstance(steps, list) and len(steps) == T + 1
    final = sample(trained_model, 4, generator=torch.Generator().manual_seed(5), progress=False)
    assert torch.equal(steps[-1], final)
    # Noise shrinks along the chain: x_T is N(0, I), x_0 lives in [-1, 1] roughly.
    assert steps[0].std().item() > 0.8
    assert steps[-1].abs().max().item() < 2.0


def test_respaced_sampling_of_a_trained_model_gives_gradients(trained_model: ToyDiffuser) -> None:
    fractions: list[float] = []
    steps = sample(
        trained_model,
        256,
        True,
        num_steps=25,
        generator=torch.Generator().manual_seed(0),
        progress=False,
        progress_callback=fractions.append,
    )
    assert len(steps) == 26
    assert fractions[-1] == 1.0 and len(fractions) == 25
    rms = gradient_rms(denormalize_img(steps[-1])).mean().item()
    assert rms < 0.2  # uniform noise is ~0.29, data 0


def test_sample_uses_the_attached_schedule_and_restores_mode() -> None:
    model = ToyDiffuser(ToyDiffuserConfig((1, 2, 2), 8, 5))
    with pytest.raises(ValueError, match="schedule"):
        sample(model, 2, progress=False)
    schedule = NoiseSchedule(5)
    model.noise_schedule = schedule
    model.train()
    a = sample(model, 2, generator=torch.Generator().manual_seed(0), progress=False)
    b = sample(
        model, 2, schedule=schedule, generator=torch.Generator().manual_seed(0), progress=False
    )
    assert torch.equal(a, b)
    assert model.training


def test_conditional_labels_reach_the_model() -> None:
    torch.manual_seed(0)
    model = ToyDiffuser(ToyDiffuserConfig((1, 2, 2), 8, 5, num_classes=3))
    schedule = NoiseSchedule(5)

    def run(y: Tensor | None) -> Tensor:
        return sample(
            model,
            3,
            schedule=schedule,
            y=y,
            generator=torch.Generator().manual_seed(0),
            progress=False,
        )

    null = run(torch.full((3,), model.null_label))
    assert torch.equal(run(None), null)
    assert not torch.allclose(run(torch.tensor([0, 1, 2])), null)
