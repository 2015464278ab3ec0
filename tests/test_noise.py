"""NoiseStrategies: each strategy's distribution checked against its closed form."""

from __future__ import annotations

import math

import pytest
import torch
from seeding import gen

from toydiff.noise import NoiseStrategies, normal, per_sample_generators


def test_standard_normal_moments_and_seed() -> None:
    z = NoiseStrategies.standard_normal((4000, 3, 5, 5), generator=gen(1))
    assert z.dtype == torch.float32 and z.shape == (4000, 3, 5, 5)
    assert abs(float(z.mean())) < 0.01
    assert abs(float(z.var()) - 1) < 0.01
    assert torch.equal(z, NoiseStrategies.standard_normal((4000, 3, 5, 5), generator=gen(1)))


def test_per_sample_generators_make_noise_batch_independent() -> None:
    both = normal((2, 3, 5, 5), generator=per_sample_generators([7, 8]))
    alone = normal((1, 3, 5, 5), generator=per_sample_generators([8]))
    assert torch.equal(both[1:], alone)
    # Row i is what generator i draws by itself.
    assert torch.equal(both[0], torch.randn((3, 5, 5), generator=gen(7)))
    with pytest.raises(ValueError, match="one generator per sample"):
        normal((3, 2), generator=per_sample_generators([1, 2]))
    with pytest.raises(ValueError, match="non-negative ints"):
        per_sample_generators([-1])


@pytest.mark.parametrize("a", [0.5, 1.0, 2.0])
def test_truncated_normal_is_a_true_truncated_normal(a: float) -> None:
    z = NoiseStrategies.truncated_normal((200_000,), a, generator=gen(2)).double()
    assert float(z.abs().max()) <= a
    phi = math.exp(-a * a / 2) / math.sqrt(2 * math.pi)
    mass = math.erf(a / math.sqrt(2))  # 2 Phi(a) - 1
    expected_var = 1 - 2 * a * phi / mass
    assert abs(float(z.var()) - expected_var) < 0.01 * expected_var + 2e-3
    assert abs(float(z.mean())) < 0.01
    # Clamping would put the whole tail mass 1 - mass at +-a; the truncated density there is
    # just phi(a) / mass, so a band of width eps at each bound holds about 2 eps phi(a) / mass.
    eps = 1e-3
    assert float((z.abs() > a - eps).double().mean()) < 2 * (2 * eps * phi / mass)
    # Probability of |z| < a/2 under the truncated law.
    inner = math.erf(a / 2 / math.sqrt(2)) / mass
    assert abs(float((z.abs() < a / 2).double().mean()) - inner) < 0.005


def test_truncated_normal_rejects_bad_truncation() -> None:
    with pytest.raises(ValueError, match="truncation"):
        NoiseStrategies.truncated_normal((3,), 0.0)
    with pytest.raises(TypeError, match="truncation"):
        NoiseStrategies.truncated_normal((3,), "2")


def test_pyramid_noise_unit_variance_and_closed_form_correlation() -> None:
    d = 0.8
    z = NoiseStrategies.pyramid_noise((20_000, 1, 5, 5), d, generator=gen(3))
    # 5x5 -> levels at 5x5, 2x2, 1x1: every entry is exactly N(0, 1) by construction.
    assert abs(float(z.var()) - 1) < 0.02
    assert abs(float(z.mean())) < 0.02
    # Pixels (0, 0) and (0, 1) share the 2x2 and 1x1 cells; (0, 0) and (0, 4) only the 1x1 cell.
    total = 1 + d**2 + d**4
    corr = torch.corrcoef(torch.stack([z[:, 0, 0, 0], z[:, 0, 0, 1], z[:, 0, 0, 4]]))
    assert abs(float(corr[0, 1]) - (d**2 + d**4) / total) < 0.03
    assert abs(float(corr[0, 2]) - d**4 / total) < 0.03
    assert float(corr[0, 1]) > float(corr[0, 2]) > 0


def test_pyramid_noise_one_level_is_plain_noise_and_bad_input() -> None:
    z = NoiseStrategies.pyramid_noise((2, 3, 4, 4), levels=1, generator=gen(4))
    assert torch.equal(z, torch.randn((2, 3, 4, 4), generator=gen(4)))
    with pytest.raises(ValueError, match="levels"):
        NoiseStrategies.pyramid_noise((2, 3, 4, 4), levels=4)
    with pytest.raises(ValueError, match="discount"):
        NoiseStrategies.pyramid_noise((2, 3, 4, 4), 1.5)
    with pytest.raises(ValueError, match="shape"):
        NoiseStrategies.pyramid_noise((2, 4, 4))


def test_latent_blend_is_variance_preserving() -> None:
    s = 0.6
    ref = torch.randn((50_000, 4), generator=gen(5))
    out = NoiseStrategies.latent_blend((50_000, 4), ref, s, generator=gen(6))
    assert abs(float(out.var()) - 1) < 0.02
    corr = torch.corrcoef(torch.stack([out.flatten(), ref.flatten()]))[0, 1]
    assert abs(float(corr) - s) < 0.01
    # The noise part is exactly the generator's randn.
    z = torch.randn((50_000, 4), generator=gen(6))
    assert torch.allclose(out, math.sqrt(1 - s * s) * z + s * ref, atol=1e-6)
    assert torch.equal(
        NoiseStrategies.latent_blend((2, 3), ref[:1, :3], 1.0), ref[:1, :3].expand(2, 3)
    )


def test_latent_blend_bad_input() -> None:
    with pytest.raises(ValueError, match="blend_strength"):
        NoiseStrategies.latent_blend((2, 3), torch.zeros(3), 1.5)
    with pytest.raises(ValueError, match="broadcast"):
        NoiseStrategies.latent_blend((2, 3), torch.zeros(4), 0.5)
    with pytest.raises(TypeError, match="reference"):
        NoiseStrategies.latent_blend((2, 3), [0.0, 0.0, 0.0], 0.5)
