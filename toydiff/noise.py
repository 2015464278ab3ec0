"""Where a sampler's randomness comes from: starting-noise strategies and per-sample generators.

Every sampler starts from ``x_T ~ N(0, I)`` (DDPM Algorithm 2, line 1), because that is the
distribution the forward process ends in. :class:`NoiseStrategies` offers that and three
alternatives the reference texts teach; each docstring states the distribution it draws from, so
one can see what departs from ``N(0, I)`` and by how much.

:func:`normal` draws Gaussian noise from one ``torch.Generator`` or from a sequence of generators,
one per sample. With one generator per sample, sample ``i``'s noise depends only on generator ``i``:
the same seed gives the same noise (and, through a sampler, the same image) whatever batch the
sample is generated in. :class:`toydiff.generation.ImageGenerator` relies on it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from toydiff.validation import check_generator

#: One generator for the whole batch, one per sample (row ``i`` drawn from ``generators[i]``), or
#: None for torch's global generator.
Generators = torch.Generator | Sequence[torch.Generator] | None


def check_generators(generator: object, batch: int) -> None:
    """A ``torch.Generator``, None, or a sequence of exactly ``batch`` generators."""
    if generator is None or isinstance(generator, torch.Generator):
        return
    if not isinstance(generator, Sequence) or isinstance(generator, str | bytes):
        raise TypeError(
            "generator must be a torch.Generator, None, or a sequence of generators (one per "
            f"sample), got {type(generator).__name__}"
        )
    if len(generator) != batch:
        raise ValueError(
            f"generator holds {len(generator)} generators but the batch has {batch} samples; "
            "give one generator per sample"
        )
    for g in generator:
        check_generator(g)


def normal(
    shape: Sequence[int],
    *,
    generator: Generators = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    out: Tensor | None = None,
) -> Tensor:
    """``N(0, I)`` noise of ``shape`` ``(B, ...)``.

    With a sequence of ``B`` generators, row ``i`` is ``randn(shape[1:], generator=generator[i])``:
    each generator advances by one sample's worth of draws, so a sample's noise stream does not
    depend on which other samples share its batch. ``out`` (same shape) is filled and returned.
    """
    shape = tuple(shape)
    check_generators(generator, shape[0] if shape else 0)
    if generator is None or isinstance(generator, torch.Generator):
        if out is not None:
            return torch.randn(shape, generator=generator, out=out)
        return torch.randn(shape, generator=generator, device=device, dtype=dtype)
    if out is None:
        out = torch.empty(shape, device=device, dtype=dtype)
    for row, g in zip(out, generator, strict=True):
        torch.randn(row.shape, generator=g, out=row)
    return out


def per_sample_generators(seeds: Sequence[int]) -> list[torch.Generator]:
    """One CPU ``torch.Generator`` per seed, seeded with it."""
    gens = []
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seeds must be non-negative ints, got {seed!r}")
        gens.append(torch.Generator().manual_seed(seed))
    return gens


def _check_shape(shape: Sequence[int], ndim: int | None = None) -> tuple[int, ...]:
    if not isinstance(shape, Sequence) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in shape
    ):
        raise ValueError(f"shape must be a sequence of positive ints, got {shape!r}")
    if ndim is not None and len(shape) != ndim:
        raise ValueError(f"shape must have {ndim} dimensions (B, C, H, W), got {tuple(shape)}")
    return tuple(shape)


class NoiseStrategies:
    """Starting noise ``x_T`` for a sampler; each method returns a float32 tensor of ``shape``."""

    @staticmethod
    def standard_normal(
        shape: Sequence[int],
        *,
        generator: Generators = None,
        device: str | torch.device = "cpu",
    ) -> Tensor:
        """``N(0, I)``: the forward process's limit, what every sampler assumes."""
        return normal(_check_shape(shape), generator=generator, device=device)

    @staticmethod
    def truncated_normal(
        shape: Sequence[int],
        truncation: float = 2.0,
        *,
        generator: Generators = None,
        device: str | torch.device = "cpu",
    ) -> Tensor:
        """Entries i.i.d. ``N(0, 1)`` conditioned on ``|z| <= truncation`` (the truncation trick).

        Drawn by inversion: ``u ~ U(Phi(-a), Phi(a))``, ``z = Phi^{-1}(u)``, so the density is the
        normal one rescaled by ``1 / (2 Phi(a) - 1)`` on ``[-a, a]`` and zero outside. (Clamping
        ``randn`` instead would pile probability mass onto ``+-a``.) Its variance is
        ``1 - 2 a phi(a) / (2 Phi(a) - 1)`` (< 1): samples are less varied and closer to the mode.
        """
        shape = _check_shape(shape)
        if not isinstance(truncation, int | float) or isinstance(truncation, bool):
            raise TypeError(f"truncation must be a float, got {type(truncation).__name__}")
        if not 0 < truncation < 8:
            # Past ~8 the tail mass is below float64 resolution and the inversion is pointless.
            raise ValueError(f"truncation must lie in (0, 8), got {truncation}")
        check_generators(generator, shape[0])
        lo = 0.5 * (1 + math.erf(-truncation / math.sqrt(2)))
        hi = 1 - lo
        u = torch.empty(shape, dtype=torch.float64)
        if generator is None or isinstance(generator, torch.Generator):
            u.uniform_(lo, hi, generator=generator)
        else:
            for row, g in zip(u, generator, strict=True):
                row.uniform_(lo, hi, generator=g)
        z = math.sqrt(2) * torch.special.erfinv(2 * u - 1)
        # float64 inversion, then a clamp that only absorbs the last-bit rounding at the bound.
        return z.clamp_(-truncation, truncation).to(device=device, dtype=torch.float32)

    @staticmethod
    def pyramid_noise(
        shape: Sequence[int],
        discount: float = 0.8,
        *,
        levels: int | None = None,
        generator: Generators = None,
        device: str | torch.device = "cpu",
    ) -> Tensor:
        """Multi-resolution noise: ``sum_k discount^k up(z_k) / sqrt(sum_k discount^(2k))``.

        ``z_k ~ N(0, I)`` at resolution ``(H // 2^k, W // 2^k)`` for ``k = 0 .. levels - 1`` (by
        default every level down to 1 pixel), upsampled by nearest neighbour so that every pixel of
        ``up(z_k)`` is exactly one standard normal. Each entry is therefore exactly ``N(0, 1)``
        (the normalizing constant is analytic, not the batch's empirical std), while two pixels
        that share a coarse cell at levels ``K`` are correlated by
        ``sum_{k in K} discount^(2k) / sum_k discount^(2k)``: low-frequency structure a plain
        ``randn`` lacks. Shape ``(B, C, H, W)``.
        """
        B, C, H, W = _check_shape(shape, ndim=4)
        if not 0 < discount < 1:
            raise ValueError(f"discount must lie in (0, 1), got {discount}")
        max_levels = int(math.log2(min(H, W))) + 1
        if levels is None:
            levels = max_levels
        if isinstance(levels, bool) or not isinstance(levels, int) or not 1 <= levels <= max_levels:
            raise ValueError(
                f"levels must be an int in [1, {max_levels}] for {H}x{W}, got {levels}"
            )
        noise = torch.zeros(shape, device=device)
        for k in range(levels):
            z = normal((B, C, H >> k, W >> k), generator=generator, device=device)
            noise.add_(F.interpolate(z, size=(H, W), mode="nearest"), alpha=discount**k)
        return noise.div_(math.sqrt(sum(discount ** (2 * k) for k in range(levels))))

    @staticmethod
    def latent_blend(
        shape: Sequence[int],
        reference: Tensor,
        blend_strength: float = 0.3,
        *,
        generator: Generators = None,
        device: str | torch.device = "cpu",
    ) -> Tensor:
        """``sqrt(1 - s^2) * z + s * reference`` with ``z ~ N(0, I)`` and ``s = blend_strength``.

        ``reference`` is a noise-space latent (for example a DDIM-inverted ``x_T``), broadcastable
        to ``shape``. The weights are variance preserving: a unit-variance reference gives a
        unit-variance blend, correlated ``s`` with the reference, so the sampler still starts from
        the noise level it expects. (The linear blend ``(1 - s) z + s ref`` shrinks the variance
        to ``(1 - s)^2 + s^2``, as low as 0.5, which the sampler would read as a different image.)
        """
        shape = _check_shape(shape)
        if not isinstance(reference, Tensor) or not reference.is_floating_point():
            raise TypeError("reference must be a floating-point tensor")
        try:
            torch.broadcast_shapes(reference.shape, shape)
        except RuntimeError:
            raise ValueError(
                f"reference of shape {tuple(reference.shape)} does not broadcast to {shape}"
            ) from None
        if torch.broadcast_shapes(reference.shape, shape) != shape:
            raise ValueError(f"reference of shape {tuple(reference.shape)} would enlarge {shape}")
        if not 0 <= blend_strength <= 1:
            raise ValueError(f"blend_strength must lie in [0, 1], got {blend_strength}")
        z = normal(shape, generator=generator, device=device)
        s = float(blend_strength)
        return z.mul_(math.sqrt(1 - s * s)).add_(
            reference.to(device=device, dtype=z.dtype), alpha=s
        )
