"""Notebook 04 check (``ToyDiffuser``): the solution passes; each mistake fails the right check."""

from __future__ import annotations

import math

import torch
from check_harness import (
    Exercise,
    assert_caught,
    assert_leaves_global_rng_alone,
    exercise_tests,
)
from einops import rearrange
from solution_cells import solution
from torch import nn

from toydiff.checks import check_toy_diffuser


class _MLP(nn.Module):
    """A parameterised two-layer MLP; each class attribute switched on reproduces one mistake."""

    time_scale = "T-1"  # or "T" (the reference text's t / T), "none"
    time_last = False
    relu = True
    with_time = True
    dropout = 0.0
    flat_output = False

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.max_steps = config.max_steps
        pixels = math.prod(config.img_shape)
        self.inp = nn.Linear(pixels + (1 if self.with_time else 0), config.d_model)
        self.out = nn.Linear(config.d_model, pixels)
        self.drop = nn.Dropout(self.dropout)

    def forward(self, images, num_steps):
        C, H, W = self.config.img_shape
        t = num_steps.float()
        if self.time_scale == "T-1":
            t = t / (self.max_steps - 1)
        elif self.time_scale == "T":
            t = t / self.max_steps
        t = rearrange(t, "b -> b 1")
        x = rearrange(images, "b c h w -> b (c h w)")
        if self.with_time:
            x = torch.cat([x, t] if self.time_last else [t, x], dim=-1)
        h = self.inp(x)
        h = self.drop(torch.relu(h) if self.relu else h)
        out = self.out(h)
        return out if self.flat_output else rearrange(out, "b (c h w) -> b c h w", c=C, h=H, w=W)


def _variant(**attrs):
    return type("Variant", (_MLP,), attrs)


class _ThreeLayers(_MLP):
    def __init__(self, config):
        super().__init__(config)
        self.mid = nn.Linear(config.d_model, config.d_model)


class _Stub(nn.Module):
    def __init__(self, config):
        super().__init__()
        raise NotImplementedError("ToyDiffuser")


SCALE = "time enters as t / (T - 1)"
MATCH = "matches the reference MLP given its weights"
LAYERS = "Linear(C*H*W + 1, d_model) -> ReLU -> Linear(d_model, C*H*W)"
WRONG = {
    "raw timestep index, not scaled": (_variant(time_scale="none"), SCALE),
    "scaled by T instead of T - 1": (_variant(time_scale="T"), SCALE),
    "time after the pixels": (_variant(time_last=True), MATCH),
    "no ReLU": (_variant(relu=False), MATCH),
    "no time input": (_variant(with_time=False), LAYERS),
    "dropout in forward": (_variant(dropout=0.5), "deterministic"),
    "an extra layer": (_ThreeLayers, LAYERS),
    "output left flat": (
        _variant(flat_output=True),
        "returns a tensor of the images' shape; input unchanged",
    ),
}


def test_no_time_input_is_caught_as_time_independent() -> None:
    assert_caught(check_toy_diffuser, _variant(with_time=False), "depends on the timestep")


def test_check_leaves_the_global_generator_alone() -> None:
    assert_leaves_global_rng_alone(check_toy_diffuser, solution("toy_diffuser"))


TestExercises = exercise_tests(
    Exercise(check_toy_diffuser, "toy_diffuser", WRONG, _Stub, (_MLP,)),
)
