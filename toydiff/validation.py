"""Argument checks shared across the package: each names the argument and what was expected."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor


def check_positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")
    return value


def check_image_shape(shape: Any, name: str = "img_shape") -> tuple[int, int, int]:
    """A ``(C, H, W)`` triple of positive ints."""
    if not isinstance(shape, tuple | list) or len(shape) != 3:
        raise ValueError(f"{name} must be a (C, H, W) tuple, got {shape!r}")
    for dim in shape:
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"{name} must hold three positive ints, got {shape!r}")
    return tuple(shape)  # type: ignore[return-value]


def check_generator(generator: Any) -> None:
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}"
        )


def check_images(x: Any, name: str = "x", ndim: int | None = 4) -> Tensor:
    """A floating-point tensor, ``(B, C, H, W)`` unless ``ndim`` says otherwise."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {x.dtype}")
    if ndim is not None and x.ndim != ndim:
        expected = "(B, C, H, W)" if ndim == 4 else f"{ndim} dimensions"
        raise ValueError(f"{name} must have shape {expected}, got {tuple(x.shape)}")
    return x
