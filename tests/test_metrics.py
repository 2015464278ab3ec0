"""Quality metrics against closed forms, real data (good), noise (bad) and a degraded sampler."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from seeding import gen

from toydiff import denormalize_img, gradient_images, step_coefficients
from toydiff.metrics import (
    corner_color_distance,
    corner_color_spread,
    corner_colors,
    fit_gradients,
    gradient_rms,
    mode_coverage,
    near_mode_fraction,
    nearest_mode,
    sliced_wasserstein,
    wasserstein_1d,
)
from toydiff.sampling import ddpm_loop, noise_fn, sample

SHAPE = (3, 5, 5)
N = 600  # samples per sampler: enough to separate the rows, cheap at T=100


@pytest.fixture(scope="module")
def real() -> torch.Tensor:
    return gradient_images(1000, SHAPE, generator=gen(1))


@pytest.fixture(scope="module")
def noise() -> torch.Tensor:
    """What every sampler starts from, x_T ~ N(0, I), seen in data space."""
    return denormalize_img(torch.randn(1000, *SHAPE, generator=gen(2)))


@pytest.fixture(scope="module")
def samples(trained_model) -> dict[str, torch.Tensor]:
    """Algorithm 2 (sigma = sqrt(beta_tilde)) and the reference texts' bug (sigma = beta)."""
    schedule = trained_model.noise_schedule
    good = sample(trained_model, N, generator=gen(3), progress=False, clip_denoised=True)
    coeffs = step_coefficients(schedule)
    # ddpm_loop's "beta_tilde" branch takes sqrt(posterior_variance): beta^2 there means sigma=beta.
    bug_coeffs = dataclasses.replace(coeffs, posterior_variance=coeffs.beta.square())
    g = gen(3)  # the draw order of sample(): x_T, then one draw per step
    x = torch.randn(N, *SHAPE, generator=g)
    with torch.no_grad():
        bug = ddpm_loop(noise_fn(trained_model), x, bug_coeffs, clip_denoised=True, generator=g)
    return {"ddpm": denormalize_img(good), "sigma_beta": denormalize_img(bug)}


def test_fit_recovers_corners_of_real_gradients() -> None:
    corners = torch.rand(16, 2, 3, generator=gen(0))
    from toydiff.data import gradient_grid

    g = gradient_grid(5, 5)
    images = corners[:, 0, :, None, None] + g * (corners[:, 1] - corners[:, 0])[:, :, None, None]
    start, end, rms = fit_gradients(images)
    torch.testing.assert_close(start, corners[:, 0], atol=1e-5, rtol=0)
    torch.testing.assert_close(end, corners[:, 1], atol=1e-5, rtol=0)
    assert float(rms.max()) < 1e-5
    torch.testing.assert_close(corner_colors(images), corners.flatten(1), atol=1e-5, rtol=0)


def test_gradient_rms_of_uniform_noise_is_close_to_its_residual_std() -> None:
    # Uniform noise has std 1/sqrt(12) = 0.2887 per pixel; a 2-parameter fit of 25 pixels removes
    # 2 of 25 degrees of freedom: E[rms^2] = (23 / 25) / 12.
    rms = gradient_rms(torch.rand(4000, *SHAPE, generator=gen(0)))
    assert float(rms.pow(2).mean()) == pytest.approx(23 / 25 / 12, rel=0.02)


def test_corner_spread_of_real_data_is_the_uniform_std(real) -> None:
    assert corner_color_spread(real) == pytest.approx(1 / math.sqrt(12), abs=0.01)


def test_wasserstein_1d_matches_hand_values() -> None:
    a = torch.tensor([[0.0, 1.0, 2.0]])
    # Shift by 0.5: W1 = 0.5; unequal sizes: {0, 2} vs {1}: |F_a - F_b| = 1/2 on [0, 2], so 1.0.
    assert float(wasserstein_1d(a, a + 0.5)) == pytest.approx(0.5)
    assert float(
        wasserstein_1d(torch.tensor([[0.0, 2.0]]), torch.tensor([[1.0]]))
    ) == pytest.approx(1.0)
    assert float(wasserstein_1d(a, a.flip(1))) == 0.0


def test_sliced_wasserstein_of_a_shift_matches_the_closed_form() -> None:
    # Every point moved by v: SW1 = |v| E|theta_1| = |v| Gamma(D/2) / (sqrt(pi) Gamma((D+1)/2)).
    D = 6
    x = torch.rand(200, D, generator=gen(0))
    v = torch.tensor([0.3, -0.1, 0.2, 0.0, 0.1, -0.2])
    expected = float(v.norm()) * math.gamma(D / 2) / (math.sqrt(math.pi) * math.gamma((D + 1) / 2))
    got = sliced_wasserstein(x, x + v, 3000, generator=gen(1))
    assert got == pytest.approx(expected, rel=0.03)
    assert sliced_wasserstein(x, x, 64, generator=gen(1)) == 0.0


def test_sliced_wasserstein_is_seeded_and_checks_inputs() -> None:
    x, y = torch.rand(50, 4, generator=gen(0)), torch.rand(60, 4, generator=gen(1))
    assert sliced_wasserstein(x, y, generator=gen(5)) == sliced_wasserstein(x, y, generator=gen(5))
    with pytest.raises(ValueError, match="dimension"):
        sliced_wasserstein(x, torch.rand(5, 3))
    with pytest.raises(ValueError, match="x must be"):
        sliced_wasserstein(torch.rand(5), y)
    with pytest.raises(TypeError, match="n_projections"):
        sliced_wasserstein(x, y, 2.5)
    with pytest.raises(TypeError, match="generator"):
        sliced_wasserstein(x, y, generator=0)


@pytest.mark.slow
def test_every_gradient_metric_ranks_real_sampler_degraded_noise(real, noise, samples) -> None:
    """Real data is best, noise is worst, and each sampler lies in between on the right side.

    The sigma=beta bug adds far too little noise: the smoothest samples of all (lowest RMS, beating
    the correct sampler) but collapsed colors (low spread), which the distance catches.
    """
    fresh = gradient_images(1000, SHAPE, generator=gen(9))
    ddpm, bug = samples["ddpm"], samples["sigma_beta"]
    rms = {
        k: float(gradient_rms(v).mean())
        for k, v in {"real": fresh, "ddpm": ddpm, "bug": bug, "noise": noise}.items()
    }
    assert rms["real"] < 1e-5 < rms["bug"] < rms["ddpm"] < 0.15 < 0.3 < rms["noise"]

    spread = {
        k: corner_color_spread(v)
        for k, v in {"real": fresh, "ddpm": ddpm, "bug": bug, "noise": noise}.items()
    }
    assert spread["real"] > spread["ddpm"] > spread["bug"] > spread["noise"]
    assert spread["real"] - spread["bug"] > 0.07

    dist = {
        k: corner_color_distance(v, real, generator=gen(0))
        for k, v in {"real": fresh, "ddpm": ddpm, "bug": bug, "noise": noise}.items()
    }
    assert dist["real"] < 0.03 < dist["ddpm"] < dist["bug"] < dist["noise"]
    assert dist["bug"] > 1.5 * dist["ddpm"]


MEANS = torch.tensor([[-2.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
WEIGHTS = torch.tensor([0.5, 0.3, 0.2])
STD = 0.2


def mixture(n: int, weights: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    k = torch.multinomial(weights, n, replacement=True, generator=generator)
    return MEANS[k] + STD * torch.randn(n, 2, generator=generator)


def test_nearest_mode_by_hand() -> None:
    pts = torch.tensor([[-2.0, 0.5], [1.0, 0.0], [0.0, 10.0]])
    dist, idx = nearest_mode(pts, MEANS)
    torch.testing.assert_close(dist, torch.tensor([0.5, 1.0, 7.0]))
    assert idx.tolist() == [0, 0, 2] or idx.tolist() == [0, 1, 2]  # (1, 0) is a tie of 0 and 1


def test_mixture_metrics_real_good_noise_bad_collapsed_in_between() -> None:
    real = mixture(4000, WEIGHTS, gen(0))
    noise = 3 * torch.randn(4000, 2, generator=gen(1))
    # Degraded: every point lands on a mode, but only two modes and in the wrong proportions.
    collapsed = mixture(4000, torch.tensor([0.9, 0.1, 0.0]), gen(2))
    blurred = mixture(4000, WEIGHTS, gen(3)) + 0.5 * torch.randn(4000, 2, generator=gen(4))
    r = 3 * STD

    # A true sample is within 3 std with probability 1 - exp(-9/2) in 2-D.
    assert near_mode_fraction(real, MEANS, r) == pytest.approx(1 - math.exp(-4.5), abs=0.01)
    assert near_mode_fraction(noise, MEANS, r) < 0.2
    assert 0.2 < near_mode_fraction(blurred, MEANS, r) < 0.9
    # Mean distance of a 2-D Gaussian to its center: STD * sqrt(pi / 2).
    assert float(nearest_mode(real, MEANS)[0].mean()) == pytest.approx(
        STD * math.sqrt(math.pi / 2), rel=0.05
    )

    good = mode_coverage(real, MEANS, WEIGHTS, r)
    bad = mode_coverage(collapsed, MEANS, WEIGHTS, r)
    assert good.total_variation < 0.03 and good.kl < 0.01 and good.modes_hit == 3
    torch.testing.assert_close(good.shares, WEIGHTS, atol=0.03, rtol=0)
    h_weights = float(-(WEIGHTS * WEIGHTS.log()).sum()) / math.log(3)
    assert good.normalized_entropy == pytest.approx(h_weights, abs=0.02)
    # Collapsed: shares (0.9, 0.1, 0): TV = 0.4 + 0.2 / 2 ... = 0.5 * (0.4 + 0.2 + 0.2) = 0.4.
    assert bad.total_variation == pytest.approx(0.4, abs=0.03)
    assert bad.modes_hit == 2 and bad.kl > 1.0
    assert bad.normalized_entropy < good.normalized_entropy


def test_mode_coverage_by_hand_and_bad_input() -> None:
    pts = MEANS[[0, 0, 1, 2]]
    cov = mode_coverage(pts, MEANS, torch.ones(3))
    torch.testing.assert_close(cov.shares, torch.tensor([0.5, 0.25, 0.25]))
    assert cov.total_variation == pytest.approx(0.5 * (1 / 6 + 1 / 12 + 1 / 12))
    expected_h = -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25)) / math.log(3)
    assert cov.normalized_entropy == pytest.approx(expected_h)
    with pytest.raises(ValueError, match="weights"):
        mode_coverage(pts, MEANS, torch.ones(2))
    with pytest.raises(ValueError, match="means"):
        nearest_mode(pts, torch.zeros(3, 3))
    with pytest.raises(ValueError, match="radius"):
        near_mode_fraction(pts, MEANS, 0.0)
    with pytest.raises(ValueError, match="no sample"):
        mode_coverage(pts + 100, MEANS, WEIGHTS, radius=1.0)


@pytest.mark.slow
def test_mixture_metrics_on_samplers_with_the_exact_noise_predictor() -> None:
    """DDPM with the exact eps* is as good as real data; DDIM with 10 steps lies in between real
    and noise; the sigma=beta bug lands closest to the modes of all but drops modes."""
    from toydiff.evaluation import SamplerSpec, run_sampler
    from toydiff.mixture import GaussianMixture, MixtureNoisePredictor
    from toydiff.samplers import DDIMSampler, DDPMSampler
    from toydiff.schedule import NoiseSchedule

    mix = GaussianMixture.ring(8, radius=0.7, std=0.05, weights=torch.arange(1.0, 9.0))
    schedule = NoiseSchedule(100, max_noise=0.1)
    eps = MixtureNoisePredictor(mix, schedule.betas)
    n, r = 1000, 3 * 0.05
    x_T = torch.randn(n, 2, generator=gen(3))
    opts = {"x_T": x_T, "clip_denoised": False, "progress": False}
    runs = {
        "real": mix.sample(n, generator=gen(0))[0],
        "noise": torch.randn(n, 2, generator=gen(1)),
        "ddpm": DDPMSampler(eps, schedule.betas).sample((n, 2), generator=gen(2), **opts),
        "ddim10": DDIMSampler(eps, schedule.alpha_bars).sample((n, 2), 10, **opts),
        "bug": run_sampler(
            eps,
            schedule,
            SamplerSpec("ddpm_sigma_beta"),
            x_T,
            generator=gen(2),
            clip_denoised=False,
        ),
    }
    near = {k: near_mode_fraction(x, mix.means, r) for k, x in runs.items()}
    dist = {k: float(nearest_mode(x, mix.means)[0].mean()) for k, x in runs.items()}
    tv = {k: mode_coverage(x, mix.means, mix.weights).total_variation for k, x in runs.items()}
    assert near["real"] == pytest.approx(1 - math.exp(-4.5), abs=0.01)
    assert near["ddpm"] > 0.97 and tv["ddpm"] < 0.05 and tv["real"] < 0.04
    assert near["noise"] < 0.2 < near["ddim10"] < 0.9 < near["real"]
    assert dist["real"] < dist["ddim10"] < dist["noise"]
    assert tv["ddim10"] < 0.1  # few steps blur the samples but keep the proportions
    # Fidelity alone misleads: the bug's samples sit on the modes, but on too few of them.
    assert near["bug"] > near["real"] and dist["bug"] < dist["real"]
    assert tv["bug"] > 0.4 and mode_coverage(runs["bug"], mix.means, mix.weights).modes_hit < 8
