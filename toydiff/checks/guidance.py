"""Checks for notebook 08 (classifier-free guidance): ``guided_eps``.

A recording stand-in model makes every property observable: how many forward passes the student
makes, with which labels and timesteps, and what each branch returns. The last sub-check compares
with toydiff's own guided noise function (:func:`toydiff.samplers.model_noise_fn`) on a real
class-conditional :class:`~toydiff.ToyDiffuser`.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace

import torch
from torch import Tensor, nn

from toydiff.checks.common import expect_tensor, gen, max_diff, tensor_diff
from toydiff.checks.core import CheckReport, SubCheck, exercise, expect, run_checks
from toydiff.model import ToyDiffuser, ToyDiffuserConfig
from toydiff.samplers import model_noise_fn

NOTEBOOK = "08_guidance"
K = 3  # classes 0..2, null label 3
SHAPE = (6, 3, 5, 5)


class _RecordingModel(nn.Module):
    """``eps = x * (1 + 0.2 y) + 0.01 t``: each label (the null label included) gives a different
    prediction, so the branches can be told apart. Records ``(x, t, y)`` of every call."""

    def __init__(self) -> None:
        super().__init__()
        self.config = SimpleNamespace(num_classes=K)
        self.calls: list[tuple[Tensor, Tensor, Tensor | None]] = []

    @property
    def null_label(self) -> int:
        return K

    def forward(self, x: Tensor, t: Tensor, y: Tensor | None = None) -> Tensor:
        self.calls.append((x.clone(), t.clone(), None if y is None else y.clone()))
        labels = torch.full((x.shape[0],), K) if y is None else y
        return x * (1 + 0.2 * labels.float()).view(-1, 1, 1, 1) + 0.01 * t.float().view(-1, 1, 1, 1)

    def branch(self, x: Tensor, t: int, label: int) -> Tensor:
        """What one branch returns for the whole batch with one label."""
        return x * (1 + 0.2 * label) + 0.01 * t


def _inputs() -> tuple[Tensor, Tensor]:
    g = gen(0)
    return torch.randn(SHAPE, generator=g), torch.tensor([0, 1, 2, 0, 1, 2])


def _call(impl: Callable, w: float, t: int = 40) -> tuple[_RecordingModel, Tensor, Tensor, Tensor]:
    model = _RecordingModel()
    x, y = _inputs()
    out = expect_tensor(impl(model, x, t, y, w), SHAPE)
    return model, x, y, out


def _expected(x: Tensor, y: Tensor, t: int, w: float) -> Tensor:
    eps_c = x * (1 + 0.2 * y.float()).view(-1, 1, 1, 1) + 0.01 * t
    eps_u = x * (1 + 0.2 * K) + 0.01 * t
    return eps_u + w * (eps_c - eps_u)


def _one_pass(impl: Callable) -> None:
    model, *_ = _call(impl, 2.0)
    sizes = [c[0].shape[0] for c in model.calls]
    expect(
        sizes == [2 * SHAPE[0]],
        f"model calls with batch sizes {sizes}; expected one call on [x; x] ({2 * SHAPE[0]})",
    )


def _null_label(impl: Callable) -> None:
    model, _, y, _ = _call(impl, 2.0)
    labels = torch.cat(
        [c[2] if c[2] is not None else torch.full((len(c[0]),), -1) for c in model.calls]
    )
    expect(
        bool((labels == K).sum() == len(y)),
        f"labels passed: {labels.tolist()}; the unconditional half must use the null label {K} "
        "(model.null_label), once per image",
    )
    expect(bool((labels == 0).sum() == int((y == 0).sum())), "label 0 is a real class, not 'none'")


def _timesteps(impl: Callable) -> None:
    model, *_ = _call(impl, 2.0, t=37)
    for _, t, _ in model.calls:
        expect(not t.is_floating_point(), f"t must be a LongTensor, got {t.dtype}")
        expect(bool((t == 37).all()), f"every row must get timestep 37, got {t.tolist()}")


def _limit(impl: Callable, w: float, what: str) -> None:
    _, x, y, out = _call(impl, w)
    err = max_diff(out, _expected(x, y, 40, w))
    expect(err < 1e-5, f"w={w:g}: not the {what} prediction (off by {err:.3g})")


def _in_place(impl: Callable) -> None:
    model = _RecordingModel()
    x, y = _inputs()
    x_copy, y_copy = x.clone(), y.clone()
    impl(model, x, 40, y, 3.0)
    expect(torch.equal(x, x_copy), "x was changed in place")
    expect(torch.equal(y, y_copy), "y was changed in place")


def _real_model(impl: Callable) -> None:
    torch.manual_seed(0)
    model = ToyDiffuser(ToyDiffuserConfig((3, 5, 5), 16, 50, num_classes=K)).eval()
    x, y = _inputs()
    with torch.no_grad():
        got = impl(model, x, 20, y, 4.0)
        want = model_noise_fn(model, len(y), y=y, guidance_scale=4.0)(x, 20)
    err = tensor_diff(got, want)
    expect(err < 1e-5, f"differs from toydiff's guided prediction by up to {err:.3g}")


@exercise("guided_eps", notebook=NOTEBOOK, target="guided_eps")
def _guided_eps_checks() -> list[SubCheck]:
    return [
        SubCheck(
            "one batched forward pass on [x; x]",
            _one_pass,
            "call the model once on torch.cat([x, x]) with labels torch.cat([y, null]), then "
            ".chunk(2): one pass of 2B images is cheaper than two passes of B",
        ),
        SubCheck(
            "the unconditional branch uses the null label K",
            _null_label,
            "null = torch.full_like(y, model.null_label); zeros_like(y) would mean class 0, "
            "a real class (a known bug of the reference texts)",
        ),
        SubCheck(
            "the timestep reaches the model as a LongTensor for every row",
            _timesteps,
            "t_batch = torch.full((2 * B,), t, dtype=torch.long)",
        ),
        SubCheck(
            "w = 0 gives the unconditional prediction",
            lambda impl: _limit(impl, 0.0, "unconditional"),
            "eps = eps_u + w * (eps_c - eps_u)",
        ),
        SubCheck(
            "w = 1 gives the conditional prediction",
            lambda impl: _limit(impl, 1.0, "conditional"),
            "eps = eps_u + w * (eps_c - eps_u): w = 1 gives eps_c, not (1 + w) eps_c - w eps_u",
        ),
        SubCheck(
            "w = 3 extrapolates past the conditional prediction",
            lambda impl: _limit(impl, 3.0, "guided"),
            "eps = eps_u + w * (eps_c - eps_u); check which half of the output is which branch",
        ),
        SubCheck("x and y are not changed in place", _in_place, "build new tensors with torch.cat"),
        SubCheck(
            "matches toydiff on a real conditional ToyDiffuser",
            _real_model,
            "call model(x_both, t_batch, y_both) and combine the two halves",
        ),
    ]


def check_guided_eps(impl: Callable, *, verbose: bool = True) -> CheckReport:
    """Check ``guided_eps(model, x, t, y, guidance_scale) -> eps (B, C, H, W)``."""
    return run_checks("guided_eps", impl, verbose=verbose)
