"""Notebook 00 check (``mse``): the solution passes; each wrong answer fails the right sub-check."""

from __future__ import annotations

import torch
from check_harness import Exercise, exercise_tests

from toydiff.checks import check_mse


def _abs(pred, target):
    return (pred - target).abs().mean()


def _sum(pred, target):
    return ((pred - target) ** 2).sum()


def _per_row(pred, target):
    return ((pred - target) ** 2).mean(dim=-1)


def _in_place(pred, target):
    return pred.sub_(target).pow_(2).mean()


def _float(pred, target):
    return torch.tensor(((pred - target) ** 2).mean().item())


def _stub(pred, target):
    raise NotImplementedError("mse")


WRONG = {
    "abs instead of square": (_abs, "squares the difference"),
    "sum instead of mean": (_sum, "averages over every element"),
    "mean over the last axis only": (_per_row, "returns a scalar tensor"),
    "in-place update of pred": (_in_place, "leaves its inputs unchanged"),
    "leaves autograd via .item()": (_float, "gradients flow back to pred"),
}

TestExercises = exercise_tests(
    Exercise(check_mse, "mse", WRONG, _stub),
)
