"""The forward process: Eq. 2 vs Eq. 4, step counts vs timestep indices, noise_img, reconstruct."""

from __future__ import annotations

import math

import pytest
import torch
from seeding import gen

from toydiff import NoiseSchedule, noise_img, q_eq2, q_eq4, reconstruct, variance_schedule

N_DRAWS = 200_000


@pytest.mark.parametrize("k", [1, 60])
def test_q_eq2_and_q_eq4_have_the_closed_form_moments(k: int) -> None:
    """Both give N(sqrt(alpha_bar) x, (1 - alpha_bar) I), alpha_bar = prod_{i<k} (1 - beta_i)."""
    betas = variance_schedule(100)
    alpha_bar = math.prod(1 - b for b in betas.double().tolist()[:k])
    # Half the draws start at -0.8, half at 0.6, so a wrong scale of x would show in the mean.
    x = torch.cat([torch.full((N_DRAWS // 2,), -0.8), torch.full((N_DRAWS // 2,), 0.6)])
    for fn, seed in ((q_eq2, 1), (q_eq4, 2)):
        out = fn(x, k, betas, generator=gen(seed)).double()
        resid = out - math.sqrt(alpha_bar) * x.double()
        var = 1 - alpha_bar
        n = resid.numel()
        # Within 5 standard errors of the closed form (mean: sqrt(var/n); variance: var*sqrt(2/n)).
        assert abs(resid.mean().item()) < 5 * math.sqrt(var / n), fn.__name__
        assert abs(resid.var().item() - var) < 5 * var * math.sqrt(2 / n), fn.__name__
        for half in (resid[: n // 2], resid[n // 2 :]):
            assert abs(half.mean().item()) < 5 * math.sqrt(2 * var / n), fn.__name__
        # Gaussian: the fourth standardized moment is 3.
        kurt = (resid**4).mean().item() / resid.var().item() ** 2
        assert abs(kurt - 3) < 0.1, fn.__name__


def test_q_eq2_one_step_by_hand() -> None:
    betas = torch.tensor([0.3, 0.5])
    x = torch.tensor([[1.0, -2.0], [0.5, 0.0]])
    eps = torch.randn(x.shape, generator=gen(5))
    out = q_eq2(x, 1, betas, generator=gen(5))
    assert torch.allclose(out, math.sqrt(0.7) * x + math.sqrt(0.3) * eps, atol=1e-6)
    eps1, eps2 = torch.randn(x.shape, generator=(g := gen(6))), torch.randn(x.shape, generator=g)
    x1 = math.sqrt(0.7) * x + math.sqrt(0.3) * eps1
    out2 = q_eq2(x, 2, betas, generator=gen(6))
    assert torch.allclose(out2, math.sqrt(0.5) * x1 + math.sqrt(0.5) * eps2, atol=1e-6)


def test_zero_steps_is_the_identity() -> None:
    betas = variance_schedule(10)
    x = torch.randn(4, 3, 5, 5, generator=gen(0))
    assert torch.equal(q_eq2(x, 0, betas, generator=gen(1)), x)
    assert torch.equal(q_eq4(x, 0, betas, generator=gen(1)), x)


def test_step_count_k_is_timestep_index_k_minus_1() -> None:
    """q_eq4 with k steps uses alpha_bar of timestep index k-1 (reference pitfall 3)."""
    sch = NoiseSchedule(100)
    x = torch.rand(8, 3, 5, 5, generator=gen(0)) * 2 - 1
    eps = torch.randn(x.shape, generator=gen(1))
    for k in (1, 2, 50, 100):
        expected = sch.sqrt_alpha_bars[k - 1] * x + sch.sqrt_one_minus_alpha_bars[k - 1] * eps
        assert torch.allclose(q_eq4(x, k, sch.betas, noise=eps), expected, atol=1e-6)
        # noise_img's index path agrees: reconstruct with index k-1 undoes k steps exactly.
        t = torch.full((8,), k - 1)
        assert torch.allclose(
            reconstruct(q_eq4(x, k, sch.betas, noise=eps), eps, t, sch), x, atol=1e-5
        )


def test_q_functions_are_seeded() -> None:
    betas = variance_schedule(20)
    x = torch.zeros(2, 3, 5, 5)
    for fn in (q_eq2, q_eq4):
        a = fn(x, 10, betas, generator=gen(3))
        assert torch.equal(a, fn(x, 10, betas, generator=gen(3)))
        assert not torch.equal(a, fn(x, 10, betas, generator=gen(4)))


def test_noise_img_timesteps_cover_every_index_uniformly() -> None:
    T = 100
    sch = NoiseSchedule(T)
    img = torch.zeros(N_DRAWS, 1, 1, 1)
    t, noise, _ = noise_img(img, sch, generator=gen(0))
    assert t.dtype == torch.long and t.shape == (N_DRAWS,)
    assert int(t.min()) == 0 and int(t.max()) == T - 1  # index 0 is trained (pitfall 2)
    counts = torch.bincount(t, minlength=T).double()
    assert counts.numel() == T
    expected = N_DRAWS / T
    chi2 = ((counts - expected) ** 2 / expected).sum().item()
    # chi-square with 99 degrees of freedom: mean 99, sd 14; 170 is p < 1e-5.
    assert chi2 < 170
    assert abs(noise.mean().item()) < 5 / math.sqrt(N_DRAWS)
    assert abs(noise.var().item() - 1) < 5 * math.sqrt(2 / N_DRAWS)

    t_small, _, _ = noise_img(img[:10_000], sch, 10, generator=gen(1))
    assert set(t_small.tolist()) == set(range(10))


def test_noise_img_is_eq4_at_its_timesteps_with_documented_draw_order() -> None:
    sch = NoiseSchedule(50)
    img = torch.rand(16, 3, 5, 5, generator=gen(0)) * 2 - 1
    t, noise, noised = noise_img(img, sch, generator=gen(7))
    g = gen(7)
    assert torch.equal(t, torch.randint(0, 50, (16,), generator=g))
    assert torch.equal(noise, torch.randn(img.shape, generator=g))
    for i in range(16):
        ab = sch.alpha_bars[t[i]].double().item()
        expected = math.sqrt(ab) * img[i] + math.sqrt(1 - ab) * noise[i]
        assert torch.allclose(noised[i], expected, atol=1e-6)


def test_reconstruct_inverts_noise_img_exactly() -> None:
    sch = NoiseSchedule(100)
    img = torch.rand(512, 3, 5, 5, generator=gen(0)) * 2 - 1
    t, noise, noised = noise_img(img, sch, generator=gen(1))
    assert torch.allclose(reconstruct(noised, noise, t, sch), img, atol=1e-5)
    # With another noise it is the Eq. 4 x0 estimate, not the image.
    other = torch.randn(img.shape, generator=gen(2))
    est = reconstruct(noised, other, t, sch)
    ab = sch.alpha_bars[t].reshape(-1, 1, 1, 1)
    assert torch.allclose(est, (noised - (1 - ab).sqrt() * other) / ab.sqrt(), atol=1e-5)
    assert not torch.allclose(est, img, atol=1e-2)
