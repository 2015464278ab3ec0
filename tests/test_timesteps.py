"""Timestep spacings: exact outputs, the definitions behind them, and their invariants."""

from __future__ import annotations

import math

import pytest
import torch

from toydiff import NoiseSchedule, TimestepScheduler
from toydiff.timesteps import SPACINGS, timestep_sequence

LINEAR = {T: NoiseSchedule(T).alpha_bars for T in (100, 1000)}

# fmt: off
EXPECTED = {
    (1000, 50): {
        "uniform": [999, 979, 958, 938, 917, 897, 877, 856, 836, 816, 795, 775, 754, 734, 714, 693,
            673, 652, 632, 612, 591, 571, 550, 530, 510, 489, 469, 449, 428, 408, 387, 367, 347,
            326, 306, 285, 265, 245, 224, 204, 183, 163, 143, 122, 102, 82, 61, 41, 20, 0],
        "quadratic": [999, 959, 919, 880, 843, 806, 769, 734, 699, 666, 633, 601, 570, 539, 510,
            481, 453, 426, 400, 374, 350, 326, 303, 281, 260, 240, 220, 201, 183, 166, 150, 135,
            120, 107, 94, 82, 70, 60, 50, 42, 34, 27, 20, 15, 10, 7, 4, 2, 1, 0],
        "leading": [980, 960, 940, 920, 900, 880, 860, 840, 820, 800, 780, 760, 740, 720, 700, 680,
            660, 640, 620, 600, 580, 560, 540, 520, 500, 480, 460, 440, 420, 400, 380, 360, 340,
            320, 300, 280, 260, 240, 220, 200, 180, 160, 140, 120, 100, 80, 60, 40, 20, 0],
        "trailing": [999, 979, 959, 939, 919, 899, 879, 859, 839, 819, 799, 779, 759, 739, 719,
            699, 679, 659, 639, 619, 599, 579, 559, 539, 519, 499, 479, 459, 439, 419, 399, 379,
            359, 339, 319, 299, 279, 259, 239, 219, 199, 179, 159, 139, 119, 99, 79, 59, 39, 19],
        "karras": [999, 988, 977, 966, 954, 942, 930, 917, 904, 891, 877, 862, 847, 832, 815, 799,
            781, 763, 744, 724, 703, 681, 657, 633, 607, 579, 549, 518, 484, 449, 411, 371, 329,
            287, 245, 205, 167, 134, 105, 81, 61, 45, 32, 23, 15, 10, 6, 3, 1, 0],
    },
    (1000, 10): {
        "uniform": [999, 888, 777, 666, 555, 444, 333, 222, 111, 0],
        "quadratic": [999, 789, 604, 444, 308, 197, 111, 49, 12, 0],
        "leading": [900, 800, 700, 600, 500, 400, 300, 200, 100, 0],
        "trailing": [999, 899, 799, 699, 599, 499, 399, 299, 199, 99],
        "karras": [999, 937, 864, 775, 663, 511, 301, 102, 18, 0],
    },
    (100, 10): {
        "uniform": [99, 88, 77, 66, 55, 44, 33, 22, 11, 0],
        "quadratic": [99, 78, 60, 44, 31, 20, 11, 5, 1, 0],
        "leading": [90, 80, 70, 60, 50, 40, 30, 20, 10, 0],
        "trailing": [99, 89, 79, 69, 59, 49, 39, 29, 19, 9],
        "karras": [99, 75, 52, 34, 21, 12, 7, 3, 1, 0],
    },
}
# fmt: on


def sigmas(alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """Karras et al.'s noise level of each timestep, sqrt((1 - alpha_bar) / alpha_bar), float64."""
    ab = alphas_cumprod.double()
    return ((1 - ab) / ab).sqrt()


def karras_ramp(sigma_min: float, sigma_max: float, n: int, rho: float = 7.0) -> torch.Tensor:
    """Karras et al. Eq. 5: n sigmas from sigma_max down to sigma_min, even in sigma^(1/rho)."""
    s = torch.linspace(0, 1, n, dtype=torch.float64)
    return (sigma_max ** (1 / rho) + s * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho


def spaced(
    spacing: str, T: int, n: int, alphas_cumprod: torch.Tensor | None = None
) -> torch.Tensor:
    if spacing == "karras":
        ab = LINEAR[T] if alphas_cumprod is None else alphas_cumprod
        return TimestepScheduler.karras(T, n, alphas_cumprod=ab)
    return getattr(TimestepScheduler, spacing)(T, n)


@pytest.mark.parametrize("T, n", list(EXPECTED))
@pytest.mark.parametrize("spacing", SPACINGS)
def test_exact_output(spacing: str, T: int, n: int) -> None:
    out = spaced(spacing, T, n)
    assert out.dtype == torch.long
    assert out.tolist() == EXPECTED[T, n][spacing]


def test_definitions_by_hand() -> None:
    # uniform = round(linspace(999, 0, 50)): entry k is 999 - 999 k / 49
    assert EXPECTED[1000, 50]["uniform"][1] == round(999 - 999 / 49) == 979  # 978.61
    assert EXPECTED[1000, 50]["uniform"][2] == round(999 - 2 * 999 / 49) == 958  # 958.22
    assert EXPECTED[1000, 50]["uniform"][48] == round(999 / 49) == 20  # 20.39
    # leading = arange(n) * (T // n) reversed: ends at 0, never visits T - 1
    assert EXPECTED[1000, 50]["leading"][0] == 49 * (1000 // 50) == 980
    # trailing = round(arange(T, 0, -T / n)) - 1: starts at T - 1, last entry T / n - 1
    assert EXPECTED[1000, 10]["trailing"][0] == 1000 - 1
    assert EXPECTED[1000, 10]["trailing"][-1] == (1000 - 9 * 100) - 1 == 99
    # quadratic = round((T - 1) s^2), s = linspace(0, 1, n): s = 1/3 for T=100, n=10 is 11
    assert EXPECTED[100, 10]["quadratic"][-4] == round(99 * (3 / 9) ** 2) == 11
    # karras T=100, n=10: second ramp point (s_max^(1/7) + (s_min^(1/7) - s_max^(1/7)) / 9)^7
    sig = sigmas(LINEAR[100])
    lo, hi = float(sig[0]), float(sig[-1])
    ramp1 = (hi ** (1 / 7) + (lo ** (1 / 7) - hi ** (1 / 7)) / 9) ** 7
    t = EXPECTED[100, 10]["karras"][1]  # 75: sigma(74) <= ramp1 = 0.885 <= sigma(75), nearer 75
    assert float(sig[t - 1]) <= ramp1 <= float(sig[t])
    assert math.log(float(sig[t])) - math.log(ramp1) < math.log(ramp1) - math.log(float(sig[t - 1]))


@pytest.mark.parametrize("T, n", [(1000, 50), (1000, 10), (100, 10), (1000, 30)])
def test_karras_follows_the_schedule_sigmas(T: int, n: int) -> None:
    """Each chosen timestep is the nearest index (in log sigma) to its ramp sigma."""
    ab = NoiseSchedule(T).alpha_bars.double()
    sig = sigmas(ab)
    ramp = karras_ramp(float(sig[0]), float(sig[-1]), n)
    out = TimestepScheduler.karras(T, n, alphas_cumprod=ab)
    for t, r in zip(out.tolist(), ramp.tolist(), strict=True):
        below = float(sig[max(t - 1, 0)])
        above = float(sig[min(t + 1, T - 1)])
        assert below <= r * (1 + 1e-9) and r <= above * (1 + 1e-9), (t, r)


def test_karras_is_not_a_linear_rescale_and_depends_on_the_schedule() -> None:
    T, n = 1000, 10
    linear = TimestepScheduler.karras(T, n, alphas_cumprod=NoiseSchedule(T).alpha_bars)
    cosine = TimestepScheduler.karras(
        T, n, alphas_cumprod=NoiseSchedule(T, kind="cosine").alpha_bars
    )
    assert linear.tolist() != cosine.tolist()
    # The reference text's mapping: t = sigma / sigma_max * (T - 1) (known error 7).
    ramp = karras_ramp(0.002, 80.0, n)
    rescaled = (ramp / 80 * (T - 1)).long()
    assert linear.tolist() != rescaled.tolist()
    # Mid-sequence the rescale collapses to small t, the schedule's sigmas do not.
    assert int(rescaled[3]) < 150 < int(linear[3])


def test_karras_custom_sigma_range() -> None:
    ab = LINEAR[1000].double()
    sig = sigmas(ab)
    out = TimestepScheduler.karras(1000, 10, alphas_cumprod=ab, sigma_min=0.1, sigma_max=10.0)
    assert float(sig[out[0]]) == pytest.approx(10.0, rel=0.02)
    assert float(sig[out[-1]]) == pytest.approx(0.1, rel=0.02)
    with pytest.raises(ValueError, match="sigma_min"):
        TimestepScheduler.karras(1000, 10, alphas_cumprod=ab, sigma_min=5.0, sigma_max=1.0)
    with pytest.raises(ValueError, match="rho"):
        TimestepScheduler.karras(1000, 10, alphas_cumprod=ab, rho=0.0)


PAIRS = [(T, n) for T in (1, 2, 7, 10, 50, 100, 1000) for n in (1, 2, 3, 7, 10, 49, 50, 99, 1000)]


@pytest.mark.parametrize("spacing", SPACINGS)
def test_strictly_decreasing_unique_in_range(spacing: str) -> None:
    sizes = (1, 2, 7, 10, 50, 100, 1000)
    linear = {T: NoiseSchedule(T).alpha_bars for T in sizes}
    cosine = {T: NoiseSchedule(T, kind="cosine").alpha_bars for T in sizes}
    for T, n in PAIRS:
        if n > T:
            continue
        for ab in (linear[T], cosine[T]):
            out = spaced(spacing, T, n, ab)
            assert out.shape == (n,), (spacing, T, n)
            assert out.dtype == torch.long
            assert int(out.min()) >= 0 and int(out.max()) <= T - 1, (spacing, T, n)
            if n > 1:
                assert bool((out[1:] < out[:-1]).all()), (spacing, T, n, out.tolist())
            if n == T:
                assert out.tolist() == list(range(T - 1, -1, -1))


@pytest.mark.parametrize("T, n", [(1000, 50), (1000, 7), (100, 10), (10, 3)])
def test_ends(T: int, n: int) -> None:
    assert int(TimestepScheduler.trailing(T, n)[0]) == T - 1
    assert int(TimestepScheduler.leading(T, n)[-1]) == 0
    assert T - 1 not in TimestepScheduler.leading(T, n).tolist() or n == T
    for spacing in ("uniform", "quadratic", "karras"):
        out = spaced(spacing, T, n, NoiseSchedule(T).alpha_bars)
        assert int(out[0]) == T - 1 and (n == 1 or int(out[-1]) == 0), spacing


@pytest.mark.parametrize("spacing", SPACINGS)
def test_more_steps_than_timesteps_is_an_error(spacing: str) -> None:
    with pytest.raises(ValueError, match=r"num_steps \(11\) cannot exceed total_timesteps \(10\)"):
        spaced(spacing, 10, 11, NoiseSchedule(10).alpha_bars)
    with pytest.raises(ValueError, match="num_steps"):
        spaced(spacing, 10, 0, NoiseSchedule(10).alpha_bars)
    with pytest.raises(TypeError, match="num_steps"):
        spaced(spacing, 10, 2.5, NoiseSchedule(10).alpha_bars)  # type: ignore[arg-type]


def test_timestep_sequence() -> None:
    assert timestep_sequence(10, None).tolist() == list(range(9, -1, -1))
    assert timestep_sequence(10, 10, "leading").tolist() == list(range(9, -1, -1))
    assert timestep_sequence(100, 10, "trailing").tolist() == EXPECTED[100, 10]["trailing"]
    got = timestep_sequence(100, 10, "karras", alphas_cumprod=LINEAR[100])
    assert got.tolist() == EXPECTED[100, 10]["karras"]
    with pytest.raises(ValueError, match="spacing must be one of"):
        timestep_sequence(100, 10, "linear")
    with pytest.raises(ValueError, match="alphas_cumprod"):
        timestep_sequence(100, 10, "karras")
    with pytest.raises(ValueError, match="alphas_cumprod"):
        TimestepScheduler.karras(100, 10, alphas_cumprod=LINEAR[1000])
    with pytest.raises(ValueError, match="cannot exceed"):
        timestep_sequence(100, 101)
