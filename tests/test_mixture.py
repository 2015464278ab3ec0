"""The Gaussian-mixture dataset and its exact noise predictor."""

from __future__ import annotations

import math

import pytest
import torch
from torch import distributions as D

from toydiff import GaussianMixture, MixtureNoisePredictor, NoiseSchedule

T = 1000


@pytest.fixture(scope="module")
def mixture() -> GaussianMixture:
    return GaussianMixture.ring(8, std=0.08, weights=torch.arange(1.0, 9.0), num_classes=2)


def marginal(mixture: GaussianMixture, ab: float, y: int | None = None) -> D.Distribution:
    """p_t as a torch.distributions mixture (float64), optionally restricted to class y."""
    keep = torch.ones_like(mixture.labels, dtype=torch.bool) if y is None else mixture.labels == y
    # Drop the other classes' modes (zero weights would be clamped to 1e-15 by torch, not -inf).
    means = mixture.means.double()[keep] * math.sqrt(ab)
    var = ab * mixture.stds.double()[keep] ** 2 + 1 - ab
    w = mixture.weights.double()[keep]
    comp = D.Independent(D.Normal(means, var.sqrt()[:, None].expand_as(means)), 1)
    return D.MixtureSameFamily(D.Categorical(probs=w / w.sum()), comp)


@pytest.mark.parametrize("t", [0, 50, 300, 700, 999])
def test_eps_is_minus_scaled_score(
    mixture: GaussianMixture, schedule: NoiseSchedule, t: int
) -> None:
    """eps*(x, t) = -sqrt(1 - ab) grad log p_t(x), the gradient taken by autograd."""
    model = MixtureNoisePredictor(mixture, schedule.betas).double()
    ab = float(torch.cumprod(1 - schedule.betas.double(), 0)[t])
    x = torch.randn(64, 2, generator=torch.Generator().manual_seed(t), dtype=torch.float64) * 0.8
    x.requires_grad_(True)
    for y in (None, 0, 1):
        (grad,) = torch.autograd.grad(marginal(mixture, ab, y).log_prob(x).sum(), x)
        expected = -math.sqrt(1 - ab) * grad
        labels = None if y is None else torch.full((64,), y)
        got = model.predict_at(x.detach(), t, labels)
        # 1e-6: the buffers (v_k = s_k^2, log w_k) are derived in float32 before .double()
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-7)
    # float32 (the default) agrees to float32 precision
    got32 = MixtureNoisePredictor(mixture, schedule.betas).predict_at(x.detach().float(), t)
    (grad,) = torch.autograd.grad(marginal(mixture, ab).log_prob(x).sum(), x)
    torch.testing.assert_close(got32.double(), -math.sqrt(1 - ab) * grad, rtol=1e-4, atol=1e-4)


def test_eps_is_the_conditional_mean_of_the_noise(
    mixture: GaussianMixture, schedule: NoiseSchedule
) -> None:
    """Optimality: the residual eps - eps*(x_t) is orthogonal to functions of x_t, and eps* beats
    a perturbed predictor in the training loss."""
    model = MixtureNoisePredictor(mixture, schedule.betas)
    g = torch.Generator().manual_seed(1)
    n, t = 200_000, 300
    x0, _ = mixture.sample(n, generator=g)
    eps = torch.randn(n, 2, generator=g)
    ab = float(schedule.alpha_bars[t])
    xt = math.sqrt(ab) * x0 + math.sqrt(1 - ab) * eps
    pred = model.predict_at(xt, t)
    resid = eps - pred
    se = 4 / math.sqrt(n)  # 4 standard errors, residual variance < 1
    assert resid.mean(0).abs().max() < se
    for f in (xt, xt.square(), torch.tanh(3 * xt)):
        assert (resid * f).mean(0).abs().max() < 4 * se
    loss = resid.square().mean()
    assert loss < (eps - 1.05 * pred).square().mean()
    assert loss < (eps - pred - 0.02).square().mean()


def test_forward_matches_predict_at_and_labels(
    mixture: GaussianMixture, schedule: NoiseSchedule
) -> None:
    model = MixtureNoisePredictor(mixture, schedule.betas)
    x = torch.randn(6, 2, generator=torch.Generator().manual_seed(2))
    t = torch.tensor([0, 10, 500, 999, 3, 250])
    y = torch.tensor([0, 1, 2, 2, 1, 0])
    out = model(x, t, y)
    for i in range(6):
        torch.testing.assert_close(
            out[i : i + 1], model.predict_at(x[i : i + 1], int(t[i]), y[i : i + 1])
        )
    # null label (2) = unconditional
    torch.testing.assert_close(model(x, t, torch.full((6,), 2)), model(x, t))
    assert model.null_label == 2 and model.config.num_classes == 2


def test_point_mass_closed_form(schedule: NoiseSchedule) -> None:
    """One mode with std 0: eps*(x, t) = (x - sqrt(ab) mu) / sqrt(1 - ab)."""
    mu = torch.tensor([0.3, -0.6])
    model = MixtureNoisePredictor(GaussianMixture.point(mu), schedule.betas)
    x = torch.randn(10, 2, generator=torch.Generator().manual_seed(3))
    for t in (0, 400, 999):
        ab = float(schedule.alpha_bars[t])
        expected = (x - math.sqrt(ab) * mu) / math.sqrt(1 - ab)
        torch.testing.assert_close(model.predict_at(x, t), expected, rtol=1e-4, atol=1e-5)


def test_dataset_sampling(mixture: GaussianMixture) -> None:
    n = 40_000
    x, labels = mixture.sample(n, generator=torch.Generator().manual_seed(4))
    assert x.shape == (n, 2) and labels.shape == (n,)
    k, d = mixture.nearest_mode(x)
    counts = torch.bincount(k, minlength=8).float()
    expected = mixture.weights * n
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 24.3  # 7 degrees of freedom, p = 0.001
    # 2-D Gaussian: P(|z| < 3) = 1 - exp(-9 / 2) = 0.9889
    assert abs(float((d < 3).float().mean()) - (1 - math.exp(-4.5))) < 0.005
    assert float((labels == mixture.labels[k]).float().mean()) > 0.999  # tails may cross over
    x1, l1 = mixture.sample(2000, y=1, generator=torch.Generator().manual_seed(5))
    assert bool((l1 == 1).all())
    assert float((mixture.labels[mixture.nearest_mode(x1)[0]] == 1).float().mean()) > 0.999
    a, _ = mixture.sample(100, generator=torch.Generator().manual_seed(6))
    b, _ = mixture.sample(100, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a, b)


def test_bad_input(mixture: GaussianMixture, schedule: NoiseSchedule) -> None:
    with pytest.raises(ValueError, match="weights must sum to 1"):
        GaussianMixture(torch.zeros(2, 2), torch.ones(2), torch.ones(2), torch.zeros(2).long(), 1)
    with pytest.raises(ValueError, match="labels"):
        GaussianMixture(
            torch.zeros(2, 2), torch.ones(2), torch.full((2,), 0.5), torch.tensor([0, 3]), 2
        )
    with pytest.raises(ValueError, match="stds"):
        GaussianMixture(
            torch.zeros(2, 2), -torch.ones(2), torch.full((2,), 0.5), torch.zeros(2).long(), 1
        )
    with pytest.raises(ValueError, match="y must be a class label"):
        mixture.sample(10, y=2)
    model = MixtureNoisePredictor(mixture, schedule.betas)
    with pytest.raises(ValueError, match=r"x must have shape \(B, 2\)"):
        model(torch.zeros(3, 3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="t must"):
        model(torch.zeros(3, 2), torch.full((3,), T))
    with pytest.raises(ValueError, match="y must hold labels"):
        model(torch.zeros(3, 2), torch.zeros(3, dtype=torch.long), torch.full((3,), 3))
    with pytest.raises(ValueError, match="y must be a LongTensor"):
        model(torch.zeros(3, 2), torch.zeros(3, dtype=torch.long), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="betas"):
        MixtureNoisePredictor(mixture, torch.full((10,), 1.5))
