"""Checks for notebook 04: the two-layer MLP noise predictor ``ToyDiffuser(config)``.

The student's class is compared with :class:`toydiff.ToyDiffuser` (the same architecture): its two
``nn.Linear`` layers are given the reference's weights, and then the two must agree on every input.
The time input is the timestep index scaled to ``[0, 1]`` as ``t / (T - 1)``, placed before the
flattened pixels.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from toydiff.checks.common import expect_tensor, expect_unchanged, gen, max_diff
from toydiff.checks.core import CheckReport, SubCheck, exercise, expect, run_checks
from toydiff.model import ToyDiffuser, ToyDiffuserConfig

NOTEBOOK = "04_model"
CONFIG = ToyDiffuserConfig((3, 4, 5), 32, 50)  # not square: catches H/W mix-ups
PIXELS = math.prod(CONFIG.img_shape)


def _build(cls: Callable) -> nn.Module:
    # Layers initialise from the global generator: seed a forked copy, leave the student's alone.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = cls(CONFIG)
    expect(isinstance(model, nn.Module), "ToyDiffuser should subclass nn.Module")
    return model


def _linears(model: nn.Module) -> list[nn.Linear]:
    layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    expect(len(layers) == 2, f"expected 2 nn.Linear layers, found {len(layers)}")
    return layers


def _inputs(n: int = 6, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = gen(seed)
    x = torch.randn(n, *CONFIG.img_shape, generator=g)
    t = torch.randint(0, CONFIG.max_steps, (n,), generator=g)
    return x, t


def _copy_reference(model: nn.Module, seed: int = 1, same_columns: bool = False) -> ToyDiffuser:
    """A reference model with random weights, copied into the student's two layers."""
    g = gen(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        ref = ToyDiffuser(CONFIG)
    with torch.no_grad():
        for layer in (ref.inp, ref.out):
            layer.weight.normal_(0, 0.5, generator=g)
            layer.bias.normal_(0, 0.5, generator=g)
        if same_columns:  # every input column alike: where the time goes no longer matters
            ref.inp.weight.copy_(ref.inp.weight[:, :1].clone().expand_as(ref.inp.weight))
        first, second = _linears(model)
        first.weight.copy_(ref.inp.weight)
        first.bias.copy_(ref.inp.bias)
        second.weight.copy_(ref.out.weight)
        second.bias.copy_(ref.out.bias)
    return ref


def _shape(cls: Callable) -> None:
    model = _build(cls)
    x, t = _inputs()
    before = x.clone()
    expect_tensor(model(x, t), x.shape, "model(images, t)")
    expect_unchanged(before, x, "images")


def _layers(cls: Callable) -> None:
    first, second = _linears(_build(cls))
    d = CONFIG.d_model
    expect(
        tuple(first.weight.shape) == (d, PIXELS + 1),
        f"layer 1 maps {first.in_features} -> {first.out_features}; want C*H*W + 1 = "
        f"{PIXELS + 1} -> d_model = {d}",
    )
    expect(
        tuple(second.weight.shape) == (PIXELS, d),
        f"layer 2 maps {second.in_features} -> {second.out_features}; want {d} -> {PIXELS}",
    )
    n = sum(p.numel() for p in _build(cls).parameters())
    want = (PIXELS + 1) * d + d + d * PIXELS + PIXELS
    expect(n == want, f"{n} parameters; the two-layer MLP has {want}")


def _deterministic(cls: Callable) -> None:
    model = _build(cls)
    x, t = _inputs()
    with torch.no_grad():
        a, b = model(x, t), model(x, t)
    expect(torch.equal(a, b), "two calls on the same input gave different outputs")


def _depends_on_t(cls: Callable) -> None:
    model = _build(cls)
    _copy_reference(model)
    x, _ = _inputs()
    with torch.no_grad():
        early = model(x, torch.zeros(len(x), dtype=torch.long))
        late = model(x, torch.full((len(x),), CONFIG.max_steps - 1))
    expect(max_diff(early, late) > 1e-3, "the output does not change with the timestep")


def _time_scale(cls: Callable) -> None:
    model = _build(cls)
    ref = _copy_reference(model, same_columns=True)
    zeros = torch.zeros(4, *CONFIG.img_shape)
    t = torch.tensor([0, 1, 25, CONFIG.max_steps - 1])
    with torch.no_grad():
        diff = max_diff(model(zeros, t), ref(zeros, t))
    expect(diff < 1e-4, "the time input should be t / (T - 1), in [0, 1]")


def _matches(cls: Callable) -> None:
    model = _build(cls)
    ref = _copy_reference(model)
    x, t = _inputs(8, seed=3)
    with torch.no_grad():
        diff = max_diff(model(x, t), ref(x, t))
    expect(diff < 1e-4, f"differs from the reference MLP with the same weights by {diff:.3g}")


@exercise("toy_diffuser", notebook=NOTEBOOK, target="ToyDiffuser")
def _toy_diffuser_checks() -> list[SubCheck]:
    return [
        SubCheck(
            "returns a tensor of the images' shape; input unchanged",
            _shape,
            "flatten with rearrange, and reshape the output back to (B, C, H, W)",
        ),
        SubCheck(
            "Linear(C*H*W + 1, d_model) -> ReLU -> Linear(d_model, C*H*W)",
            _layers,
            "one extra input feature carries the time",
        ),
        SubCheck("deterministic", _deterministic, "no randomness (dropout, noise) in forward"),
        SubCheck("depends on the timestep", _depends_on_t, "concatenate the scaled time"),
        SubCheck(
            "time enters as t / (T - 1)",
            _time_scale,
            "scale the integer index to [0, 1]: t.float() / (max_steps - 1)",
        ),
        SubCheck(
            "matches the reference MLP given its weights",
            _matches,
            "input is cat([time, flattened pixels]): time first; ReLU between the layers",
        ),
    ]


def check_toy_diffuser(cls: Callable, *, verbose: bool = True) -> CheckReport:
    """Check a ``ToyDiffuser(config)`` class: ``forward(images, num_steps) -> predicted noise``."""
    return run_checks("toy_diffuser", cls, verbose=verbose)
