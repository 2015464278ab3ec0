"""DDPM, DDIM and DPM-Solver++ samplers: hand-derived steps, equivalences, statistics, errors."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch import Tensor, nn

from toydiff import (
    DDIMSampler,
    DDPMSampler,
    DPMSolverSampler,
    GaussianMixture,
    MixtureNoisePredictor,
    NoiseSchedule,
    ToyDiffuser,
    ToyDiffuserConfig,
    gradient_images,
    normalize_img,
    sample,
    slerp,
)
from toydiff.parallel import LoopHelper

T = 1000
CHI2_7DOF_P001 = 24.32  # chi-square quantile, 7 degrees of freedom, p = 0.001


class ZeroModel(nn.Module):
    """Predicts eps = 0 everywhere: the chain then reduces to pure rescaling plus noise."""

    def forward(self, x: Tensor, t: Tensor, y: Tensor | None = None) -> Tensor:
        return torch.zeros_like(x)


@pytest.fixture(scope="module")
def ab(schedule: NoiseSchedule) -> Tensor:
    """alpha_bar in float64, from the betas: the reference for the hand-written formulas."""
    return torch.cumprod(1 - schedule.betas.double(), 0)


@pytest.fixture(scope="module")
def mixture() -> GaussianMixture:
    return GaussianMixture.ring(8, std=0.08, weights=torch.tensor([1.0, 2, 3, 4, 4, 3, 2, 1]))


def draws(seed: int, shape: tuple[int, ...], n: int) -> list[Tensor]:
    """The first n standard-normal tensors a generator seeded with ``seed`` produces."""
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=g) for _ in range(n)]


def close(a: Tensor, b: Tensor, atol: float = 2e-5) -> None:
    torch.testing.assert_close(a.double(), b.double(), rtol=1e-5, atol=atol)


# --- one step against the formula ------------------------------------------------------------


@pytest.mark.parametrize("variance", ["beta_tilde", "beta"])
def test_ddpm_first_step_formula(exact: MixtureNoisePredictor, schedule, ab, variance) -> None:
    shape = (64, 2)
    x_T, z = draws(0, shape, 2)
    sampler = DDPMSampler(exact, schedule.betas)
    g = torch.Generator().manual_seed(0)
    _, steps = sampler.sample(
        shape, 10, True, generator=g, variance=variance, clip_denoised=False, progress=False
    )
    t, t_prev = 999, 888  # uniform spacing, 10 steps
    a_t, a_p = float(ab[t]), float(ab[t_prev])
    beta = 1 - a_t / a_p  # respaced beta
    sigma2 = beta if variance == "beta" else (1 - a_p) / (1 - a_t) * beta
    eps = exact(x_T, torch.full((64,), t))
    expected = (x_T - beta / math.sqrt(1 - a_t) * eps) / math.sqrt(1 - beta) + math.sqrt(sigma2) * z
    close(steps[0], x_T)
    close(steps[1], expected)


def test_ddpm_clipped_step_and_draw_order(schedule, ab) -> None:
    """x0-form posterior mean (Eq. 7) with a clamped x0; the last step adds no noise."""
    shape = (16, 3)
    x_T, z, after = draws(1, shape, 3)
    g = torch.Generator().manual_seed(1)
    out, steps = DDPMSampler(ZeroModel(), schedule.betas).sample(
        shape, 2, True, generator=g, progress=False
    )
    a_t, a_p = float(ab[999]), float(ab[0])
    beta = 1 - a_t / a_p
    x0 = (x_T / math.sqrt(a_t)).clamp(-1, 1)  # eps = 0
    mean = (
        beta * math.sqrt(a_p) / (1 - a_t) * x0 + (1 - a_p) * math.sqrt(1 - beta) / (1 - a_t) * x_T
    )
    x1 = mean + math.sqrt((1 - a_p) / (1 - a_t) * beta) * z
    close(steps[1], x1)
    close(out, (x1 / math.sqrt(a_p)).clamp(-1, 1))  # last step: the clamped x0 prediction
    # exactly two draws were made: x_T and one step's noise
    assert torch.equal(torch.randn(shape, generator=g), after)


def test_ddim_first_step_formula(exact: MixtureNoisePredictor, schedule, ab) -> None:
    shape, eta = (64, 2), 0.5
    x_T, z = draws(2, shape, 2)
    sampler = DDIMSampler(exact, schedule.alpha_bars)
    g = torch.Generator().manual_seed(2)
    _, steps = sampler.sample(
        shape, 10, eta, True, generator=g, clip_denoised=False, progress=False
    )
    a_t, a_p = float(ab[999]), float(ab[888])
    sigma = eta * math.sqrt((1 - a_p) / (1 - a_t) * (1 - a_t / a_p))  # Eq. 16
    eps = exact(x_T, torch.full((64,), 999))
    x0 = (x_T - math.sqrt(1 - a_t) * eps) / math.sqrt(a_t)
    expected = math.sqrt(a_p) * x0 + math.sqrt(1 - a_p - sigma**2) * eps + sigma * z  # Eq. 12
    close(steps[1], expected, atol=1e-4)


def test_ddim_clipping_rederives_eps(schedule, ab) -> None:
    """After clamping x0 the direction term uses eps = (x_t - sqrt(ab) x0) / sqrt(1 - ab)."""
    shape = (32, 2)
    (x_T,) = draws(3, shape, 1)
    _, steps = DDIMSampler(ZeroModel(), schedule.alpha_bars).sample(
        shape, 10, 0.0, True, x_T=x_T, progress=False
    )
    a_t, a_p = float(ab[999]), float(ab[888])
    x0 = (x_T / math.sqrt(a_t)).clamp(-1, 1)
    eps = (x_T - math.sqrt(a_t) * x0) / math.sqrt(1 - a_t)
    close(steps[1], math.sqrt(a_p) * x0 + math.sqrt(1 - a_p) * eps)
    # the reference text's step keeps the model's eps (here 0): a different, inconsistent x
    assert (steps[1] - math.sqrt(a_p) * x0).abs().max() > 0.1


def test_dpm_solver_steps_formula(exact: MixtureNoisePredictor, schedule, ab) -> None:
    """First step first order, then the 2M correction, last step the x0 prediction."""
    shape = (64, 2)
    (x_T,) = draws(4, shape, 1)
    sampler = DPMSolverSampler(exact, schedule.alpha_bars)
    out, steps = sampler.sample(shape, 5, True, x_T=x_T, clip_denoised=False, progress=False)
    ts = sampler.timesteps(5).tolist()
    assert ts == [999, 749, 500, 250, 0]

    def lam(t: int) -> float:
        return 0.5 * math.log(float(ab[t]) / (1 - float(ab[t])))

    def x0_pred(x: Tensor, t: int) -> Tensor:
        eps = exact(x.double(), torch.full((x.shape[0],), t)).double()
        return (x.double() - math.sqrt(1 - float(ab[t])) * eps) / math.sqrt(float(ab[t]))

    def sig(t: int) -> float:
        return math.sqrt(1 - float(ab[t]))

    d0 = x0_pred(x_T, ts[0])
    h0 = lam(ts[1]) - lam(ts[0])
    x1 = sig(ts[1]) / sig(ts[0]) * x_T.double() - math.sqrt(float(ab[ts[1]])) * math.expm1(-h0) * d0
    close(steps[1], x1, atol=1e-4)
    d1 = x0_pred(steps[1], ts[1])
    h1 = lam(ts[2]) - lam(ts[1])
    r = h0 / h1
    D = (1 + 1 / (2 * r)) * d1 - 1 / (2 * r) * d0
    x2 = (
        sig(ts[2]) / sig(ts[1]) * steps[1].double()
        - math.sqrt(float(ab[ts[2]])) * math.expm1(-h1) * D
    )
    close(steps[2], x2, atol=1e-4)
    close(out, x0_pred(steps[-2], ts[-1]), atol=1e-4)


# --- whole chains in closed form -------------------------------------------------------------


def test_ddim_zero_model_is_a_rescaling(schedule, ab) -> None:
    """eps = 0, eta = 0: every step multiplies by sqrt(ab_prev / ab), so x_0 = x_T / sqrt(ab_t0)."""
    (x_T,) = draws(5, (8, 2), 1)
    out = DDIMSampler(ZeroModel(), schedule.alpha_bars).sample(
        (8, 2), 7, x_T=x_T, clip_denoised=False, progress=False
    )
    close(out, x_T / math.sqrt(float(ab[999])), atol=1e-3)


def test_ddpm_zero_model_moments(schedule, ab) -> None:
    """eps = 0: x_prev = x / sqrt(alpha') + sqrt(beta_tilde') z, a Gaussian whose variance follows
    var <- var / alpha' + beta_tilde' from var = 1."""
    n, steps = 40_000, 10
    sampler = DDPMSampler(ZeroModel(), schedule.betas)
    out = sampler.sample(
        (n, 1),
        steps,
        generator=torch.Generator().manual_seed(6),
        clip_denoised=False,
        progress=False,
    )
    ts = [*sampler.timesteps(steps).tolist(), None]
    var = 1.0
    for t, t_prev in itertools.pairwise(ts):
        a_t = float(ab[t])
        a_p = 1.0 if t_prev is None else float(ab[t_prev])
        beta = 1 - a_t / a_p
        var = var / (1 - beta) + (1 - a_p) / (1 - a_t) * beta
    assert abs(float(out.mean())) < 4 * math.sqrt(var / n)
    assert float(out.var()) == pytest.approx(var, rel=4 * math.sqrt(2 / n))


@pytest.mark.parametrize("spacing", ["uniform", "trailing", "karras"])
@pytest.mark.parametrize("clip", [False, True])
def test_ddim_eta_one_is_ddpm(exact: MixtureNoisePredictor, schedule, spacing, clip) -> None:
    shape = (256, 2)
    kw = dict(spacing=spacing, clip_denoised=clip, progress=False)
    ddpm = DDPMSampler(exact, schedule.betas).sample(
        shape, 20, generator=torch.Generator().manual_seed(7), **kw
    )
    ddim = DDIMSampler(exact, schedule.alpha_bars).sample(
        shape, 20, 1.0, generator=torch.Generator().manual_seed(7), **kw
    )
    close(ddim, ddpm, atol=1e-4)


@pytest.mark.parametrize("spacing", ["uniform", "karras"])
@pytest.mark.parametrize("clip", [False, True])
def test_dpm_solver_order_one_is_ddim(
    exact: MixtureNoisePredictor, schedule, spacing, clip
) -> None:
    (x_T,) = draws(8, (256, 2), 1)
    kw = dict(x_T=x_T, spacing=spacing, clip_denoised=clip, progress=False)
    ddim = DDIMSampler(exact, schedule.alpha_bars).sample(x_T.shape, 15, 0.0, **kw)
    dpm1 = DPMSolverSampler(exact, schedule.alpha_bars).sample(x_T.shape, 15, order=1, **kw)
    dpm2 = DPMSolverSampler(exact, schedule.alpha_bars).sample(x_T.shape, 15, **kw)
    close(dpm1, ddim, atol=1e-4)
    assert (dpm2 - ddim).abs().max() > 1e-3  # the second-order correction does something


@pytest.mark.parametrize("steps", [1, 5, 50])
def test_point_mass_is_recovered(schedule, steps) -> None:
    """For a one-point dataset the exact x0 prediction is that point at every t."""
    mu = torch.tensor([0.35, -0.7])
    model = MixtureNoisePredictor(GaussianMixture.point(mu), schedule.betas)
    g = torch.Generator().manual_seed(9)
    for spacing in ("uniform", "karras"):
        kw = dict(spacing=spacing, progress=False, generator=g)
        outs = [
            DDIMSampler(model, schedule.alpha_bars).sample((32, 2), steps, **kw),
            DDIMSampler(model, schedule.alpha_bars).sample(
                (32, 2), steps, clip_denoised=False, **kw
            ),
            DDPMSampler(model, schedule.betas).sample((32, 2), steps, **kw),
            DPMSolverSampler(model, schedule.alpha_bars).sample((32, 2), steps, **kw),
        ]
        for out in outs:
            close(out, mu.expand(32, 2), atol=1e-4)


def test_algorithm_2_accepts_the_mixture_model(exact, schedule) -> None:
    a = sample(
        exact, 5, schedule=schedule, generator=torch.Generator().manual_seed(1), progress=False
    )
    b = DDPMSampler(exact, schedule.betas).sample(
        (5, 2), clip_denoised=False, generator=torch.Generator().manual_seed(1), progress=False
    )
    close(a, b)


def test_ddpm_full_chain_is_algorithm_2(schedule) -> None:
    model = ToyDiffuser(ToyDiffuserConfig((3, 4, 4), 32, T))
    kw = dict(generator=None, progress=False)
    a = sample(
        model, 6, schedule=schedule, **{**kw, "generator": torch.Generator().manual_seed(10)}
    )
    b = DDPMSampler(model, schedule.betas).sample(
        (6, 3, 4, 4), clip_denoised=False, **{**kw, "generator": torch.Generator().manual_seed(10)}
    )
    close(b, a)


# --- statistics with the exact mixture model -------------------------------------------------


def mode_report(mixture: GaussianMixture, x: Tensor) -> tuple[float, float]:
    """(fraction within 3 std of its nearest mode, chi-square of the mode counts vs weights)."""
    k, d = mixture.nearest_mode(x)
    counts = torch.bincount(k, minlength=len(mixture.weights)).double()
    expected = mixture.weights.double() * len(x)
    return float((d < 3).float().mean()), float(((counts - expected) ** 2 / expected).sum())


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    ["DDPM-1000", "DDPM-100", "DDIM-50", "DPM-Solver-20"],
)
def test_samples_land_on_modes_in_proportion(mixture, exact, schedule, name) -> None:
    n = 3000
    g = torch.Generator().manual_seed(11)
    if name == "DDPM-1000":
        x = DDPMSampler(exact, schedule.betas).sample((n, 2), generator=g, progress=False)
    elif name == "DDPM-100":
        x = DDPMSampler(exact, schedule.betas).sample((n, 2), 100, generator=g, progress=False)
    elif name == "DDIM-50":
        x = DDIMSampler(exact, schedule.alpha_bars).sample((n, 2), 50, generator=g, progress=False)
    else:  # DPM-Solver takes steps evenly in log-SNR-like Karras spacing
        x = DPMSolverSampler(exact, schedule.alpha_bars).sample(
            (n, 2), 20, generator=g, spacing="karras", progress=False
        )
    within, chi2 = mode_report(mixture, x)
    assert within >= 0.95, name
    assert chi2 < CHI2_7DOF_P001, name


@pytest.mark.slow
def test_dpm_solver_is_second_order_ddim_first_order(schedule) -> None:
    """Errors against a 1000-step solution of the same ODE (same x_T): halving the step halves
    DDIM's error and divides DPM-Solver++(2M)'s by about four."""
    mix = GaussianMixture.ring(8, std=0.2)
    model = MixtureNoisePredictor(mix, schedule.betas)
    (x_T,) = draws(12, (200, 2), 1)
    kw = dict(x_T=x_T, clip_denoised=False, spacing="karras", progress=False)
    dpm = DPMSolverSampler(model, schedule.alpha_bars)
    ddim = DDIMSampler(model, schedule.alpha_bars)
    ref = dpm.sample(x_T.shape, T, **kw)

    def err(x: Tensor) -> float:
        return float((x - ref).norm(dim=1).mean())

    e_ddim = [err(ddim.sample(x_T.shape, n, **kw)) for n in (20, 40)]
    e_dpm = [err(dpm.sample(x_T.shape, n, **kw)) for n in (20, 40)]
    assert 1.6 < e_ddim[0] / e_ddim[1] < 2.6
    assert e_dpm[0] / e_dpm[1] > 3.5
    assert e_dpm[1] < e_ddim[1] / 3


# --- inversion and interpolation -------------------------------------------------------------


@pytest.mark.slow
def test_ddim_inversion_round_trip(mixture, exact, schedule) -> None:
    x0, _ = mixture.sample(300, generator=torch.Generator().manual_seed(13))
    sampler = DDIMSampler(exact, schedule.alpha_bars)
    errors = {}
    for iters in (0, 2):
        x_T = sampler.invert(x0, 200, fixed_point_iters=iters, progress=False)
        back = sampler.sample(x0.shape, 200, x_T=x_T, clip_denoised=False, progress=False)
        errors[iters] = (back - x0).abs()
        if iters == 2:
            assert 0.9 < float(x_T.std()) < 1.15  # the latents of data look like N(0, I)
    assert float(errors[2].mean()) < 1e-3 and float(errors[2].max()) < 0.02
    assert float(errors[2].mean()) < float(errors[0].mean()) / 5
    assert float(errors[0].mean()) < 0.02  # even without refinement, small


def test_ddim_inversion_of_real_images(trained_model: ToyDiffuser) -> None:
    """Gradient images through the trained model: encode, decode, and get them back."""
    x0 = normalize_img(gradient_images(16, (3, 5, 5), generator=torch.Generator().manual_seed(5)))
    sampler = DDIMSampler(trained_model, trained_model.noise_schedule.alpha_bars)
    for iters, tol in ((0, 0.05), (2, 1e-3)):
        x_T = sampler.invert(x0, 50, fixed_point_iters=iters, progress=False)
        back = sampler.sample(x0.shape, 50, x_T=x_T, clip_denoised=False, progress=False)
        assert float((back - x0).abs().max()) < tol, iters


def test_inversion_is_deterministic_and_recovers_a_point(schedule) -> None:
    mu = torch.tensor([0.2, 0.5])
    model = MixtureNoisePredictor(GaussianMixture.point(mu), schedule.betas)
    sampler = DDIMSampler(model, schedule.alpha_bars)
    x0 = mu.expand(4, 2).clone()
    a = sampler.invert(x0, 20, progress=False)
    b = sampler.invert(x0, 20, progress=False)
    assert torch.equal(a, b)
    assert torch.equal(x0, mu.expand(4, 2))  # the input is not modified
    close(sampler.sample((4, 2), 20, x_T=a, progress=False), x0, atol=1e-4)


def test_interpolation_end_points(mixture, exact, schedule) -> None:
    start, _ = mixture.sample(16, y=0, generator=torch.Generator().manual_seed(14))
    end, _ = mixture.sample(16, y=4, generator=torch.Generator().manual_seed(15))
    sampler = DDIMSampler(exact, schedule.alpha_bars)
    frames = sampler.sample_interpolation(start, end, 5, 100, progress=False)
    assert len(frames) == 5 and all(f.shape == start.shape for f in frames)
    assert float((frames[0] - start).abs().max()) < 0.05
    assert float((frames[-1] - end).abs().max()) < 0.05
    # the middle frame is data too (near the modes), and neither end point
    within, _ = mode_report(mixture, frames[2])
    assert within >= 0.8
    assert float((frames[2] - start).norm(dim=1).mean()) > 0.2
    assert float((frames[2] - end).norm(dim=1).mean()) > 0.2
    with pytest.raises(ValueError, match="num_interpolations"):
        sampler.sample_interpolation(start, end, 1)
    with pytest.raises(ValueError, match="same shape"):
        sampler.sample_interpolation(start, end[:2])


def test_slerp() -> None:
    g = torch.Generator().manual_seed(16)
    a, b = torch.randn(3, 50, generator=g), torch.randn(3, 50, generator=g)
    close(slerp(a, b, 0.0), a)
    close(slerp(a, b, 1.0), b)
    u, v = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    close(slerp(u, v, 0.5), torch.tensor([[math.sqrt(0.5), math.sqrt(0.5)]]))
    close(slerp(u, 2 * u, 0.5), 1.5 * u)  # parallel: linear
    close(slerp(u, 3 * v, 0.5), 2 * torch.tensor([[math.sqrt(0.5), math.sqrt(0.5)]]))
    # nearly opposite with unequal norms: the norm still moves linearly, no blow-up
    w = torch.tensor([[-1.0, 1e-3]]) * 2
    assert float(slerp(u, w, 0.5).norm()) == pytest.approx(1.5, rel=1e-6)
    assert float(slerp(a, b, 0.3).norm(dim=1)[0]) == pytest.approx(
        float(0.7 * a.norm(dim=1)[0] + 0.3 * b.norm(dim=1)[0]), rel=1e-6
    )


# --- reproducibility, plumbing, errors -------------------------------------------------------


def test_seeds_and_given_noise(exact, schedule) -> None:
    for make in (
        lambda g, **kw: DDPMSampler(exact, schedule.betas).sample((50, 2), 20, generator=g, **kw),
        lambda g, **kw: DDIMSampler(exact, schedule.alpha_bars).sample(
            (50, 2), 20, 0.3, generator=g, **kw
        ),
        lambda g, **kw: DPMSolverSampler(exact, schedule.alpha_bars).sample(
            (50, 2), 10, generator=g, **kw
        ),
    ):
        a = make(torch.Generator().manual_seed(1), progress=False)
        b = make(torch.Generator().manual_seed(1), progress=False)
        c = make(torch.Generator().manual_seed(2), progress=False)
        assert torch.equal(a, b) and not torch.equal(a, c)
    # a given x_T with a deterministic sampler needs no generator at all
    (x_T,) = draws(3, (50, 2), 1)
    s = DDIMSampler(exact, schedule.alpha_bars)
    a = s.sample((50, 2), 20, x_T=x_T, generator=torch.Generator().manual_seed(1), progress=False)
    b = s.sample((50, 2), 20, x_T=x_T, progress=False)
    assert torch.equal(a, b)


@pytest.mark.parametrize("sampler", ["ddpm", "ddim-eta-0.5", "algorithm-2", "guided-ddpm"])
def test_noise_drawn_ahead_on_a_thread_gives_identical_samples(
    exact, schedule, sampler: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The helper thread changes where the draws and part of the network run, never a value:
    the exact model (rows copied into the shared buffer), a ToyDiffuser (rows written there by
    predict_at) and a guided one (the guidance mix written there)."""
    torch.manual_seed(0)
    model = ToyDiffuser(ToyDiffuserConfig((3, 2, 2), 16, T, num_classes=3)).eval()
    y = torch.arange(40) % 3

    def run() -> Tensor:
        g = torch.Generator().manual_seed(7)
        if sampler == "ddpm":
            return DDPMSampler(exact, schedule.betas).sample(
                (40, 2), 30, generator=g, progress=False
            )
        if sampler == "ddim-eta-0.5":
            return DDIMSampler(exact, schedule.alpha_bars).sample(
                (40, 2), 30, 0.5, generator=g, progress=False
            )
        if sampler == "guided-ddpm":
            return DDPMSampler(model, schedule.betas).sample(
                (40, 3, 2, 2), 30, y=y, guidance_scale=3.0, generator=g, progress=False
            )
        return sample(model, 40, schedule=schedule, num_steps=30, generator=g, progress=False)

    monkeypatch.setattr(LoopHelper, "MIN_NUMEL", 10**9)
    inline = run()
    monkeypatch.setattr(LoopHelper, "MIN_NUMEL", 1)
    assert torch.equal(run(), inline)


def test_intermediates_and_progress(exact, schedule) -> None:
    fractions: list[float] = []
    (x_T,) = draws(4, (10, 2), 1)
    out, steps = DPMSolverSampler(exact, schedule.alpha_bars).sample(
        (10, 2), 8, True, fractions.append, x_T=x_T, progress=False
    )
    assert len(steps) == 9 and torch.equal(steps[0], x_T) and torch.equal(steps[-1], out)
    assert fractions == pytest.approx([i / 8 for i in range(1, 9)])


def test_bad_input(exact, schedule) -> None:
    ddpm = DDPMSampler(exact, schedule.betas)
    ddim = DDIMSampler(exact, schedule.alpha_bars)
    dpm = DPMSolverSampler(exact, schedule.alpha_bars)
    with pytest.raises(ValueError, match="eta must lie in"):
        ddim.sample((4, 2), 10, -0.1)
    with pytest.raises(ValueError, match="eta must lie in"):
        ddim.sample((4, 2), 10, 1.5)
    with pytest.raises(ValueError, match="cannot exceed total_timesteps"):
        ddpm.sample((4, 2), T + 1)
    with pytest.raises(ValueError, match="cannot exceed total_timesteps"):
        dpm.sample((4, 2), T + 1)
    with pytest.raises(ValueError, match="spacing must be one of"):
        ddim.sample((4, 2), 10, spacing="cosine")
    with pytest.raises(ValueError, match="shape"):
        ddim.sample((0, 2), 10)
    with pytest.raises(TypeError, match="shape"):
        ddim.sample("4, 2", 10)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"shape must be \(B, 2\)"):
        ddim.sample((4, 3), 10)
    toy = ToyDiffuser(ToyDiffuserConfig((3, 4, 4), 8, T))
    with pytest.raises(ValueError, match=r"shape must be \(B, 3, 4, 4\)"):
        DPMSolverSampler(toy, schedule.alpha_bars).sample((2, 3, 4, 5), 5, progress=False)
    with pytest.raises(ValueError, match="x_T must have shape"):
        ddpm.sample((4, 2), 10, x_T=torch.zeros(4, 3))
    with pytest.raises(ValueError, match="y must be a LongTensor"):
        ddim.sample((4, 2), 10, y=torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="variance must be one of"):
        ddpm.sample((4, 2), 10, variance="sigma")
    with pytest.raises(ValueError, match="order must be 1 or 2"):
        dpm.sample((4, 2), 10, order=3)
    with pytest.raises(TypeError, match="generator"):
        ddpm.sample((4, 2), 10, generator=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="betas"):
        DDPMSampler(exact, torch.full((T,), 1.5))
    with pytest.raises(ValueError, match="alphas_cumprod"):
        DDIMSampler(exact, torch.linspace(0.1, 0.9, T))
    with pytest.raises(ValueError, match="schedule has 100 timesteps"):
        DDIMSampler(exact, NoiseSchedule(100).alpha_bars)
    with pytest.raises(TypeError, match="model"):
        DDIMSampler(lambda x, t: x, schedule.alpha_bars)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="x0"):
        ddim.invert(torch.zeros(4, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="fixed_point_iters"):
        ddim.invert(torch.zeros(4, 2), 10, fixed_point_iters=-1)
