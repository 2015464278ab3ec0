"""Seeded generators for the tests: every random draw in a test comes from one of these."""

from __future__ import annotations

import torch


def gen(seed: int = 0) -> torch.Generator:
    """A fresh CPU generator seeded with ``seed``."""
    return torch.Generator().manual_seed(seed)
