"""Notebook 00 check (``mse``): the solution passes; each wrong answer fails the right sub-check."""

from __future__ import annotations

import pytest
import torch
from check_harness import assert_caught, assert_no_traceback, assert_not_attempted, assert_passes
from solution_cells import solution

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


def test_solution_passes() -> None:
    assert_passes(check_mse, solution("mse"))


@pytest.mark.parametrize("name", WRONG)
def test_wrong_answer_fails_the_right_subcheck(name: str) -> None:
    impl, subcheck = WRONG[name]
    assert_caught(check_mse, impl, subcheck)


def test_stub_is_not_attempted() -> None:
    assert_not_attempted(check_mse, _stub)


def test_no_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    assert_no_traceback(check_mse, [impl for impl, _ in WRONG.values()], capsys)
