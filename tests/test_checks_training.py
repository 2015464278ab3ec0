"""Notebook 05 check (``diffusion_loss``): the solution passes; each mistake fails the right
sub-check, including the reference text's ``randint(1, T)`` (known error 2)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from check_harness import (
    Exercise,
    assert_leaves_global_rng_alone,
    exercise_tests,
    noise_like,
)
from solution_cells import solution

from toydiff.checks import check_diffusion_loss


def _loss(
    model,
    x0,
    schedule,
    *,
    generator=None,
    low=0,
    index_shift=0,
    sqrt=True,
    noise="gaussian",
    target="noise",
    reduction="mse",
    model_t_shift=0,
    detach=False,
    in_place=False,
):
    """A parameterised Algorithm 1 loss; each keyword reproduces one mistake."""
    T = len(schedule)
    t = torch.randint(low, T, (x0.shape[0],), generator=generator)
    eps = noise_like(x0, noise, generator)
    ab = schedule.alpha_bars[(t + index_shift).clamp(0, T - 1)].view(-1, 1, 1, 1)
    a, b = (ab.sqrt(), (1 - ab).sqrt()) if sqrt else (ab, 1 - ab)
    x_t = x0.mul_(a).add_(b * eps) if in_place else a * x0 + b * eps
    pred = model(x_t, (t + model_t_shift).clamp(0, T - 1))
    goal = eps if target == "noise" else x0
    if reduction == "mse":
        loss = F.mse_loss(pred, goal)
    elif reduction == "sum":
        loss = F.mse_loss(pred, goal, reduction="sum")
    else:
        loss = F.l1_loss(pred, goal)
    return torch.tensor(loss.item()) if detach else loss


def _variant(**kwargs):
    def impl(model, x0, schedule, *, generator=None):
        return _loss(model, x0, schedule, generator=generator, **kwargs)

    return impl


def _stub(model, x0, schedule, *, generator=None):
    raise NotImplementedError("diffusion_loss")


ORACLE = "the model sees Eq. 4 at the index it is given"
MSE = "mean squared error against the noise"
GAUSSIAN = "the noise is standard Gaussian"
SEEDED = "uses the generator (same seed, same loss)"
WRONG = {
    "randint(1, T): index 0 never trained (known error 2)": (
        _variant(low=1),
        "trains every index 0..T-1, uniformly",
    ),
    "noised at index t + 1": (_variant(index_shift=1), ORACLE),
    "model told t - 1": (_variant(model_t_shift=-1), ORACLE),
    "no square roots in Eq. 4": (_variant(sqrt=False), ORACLE),
    "target is x0, not the noise": (_variant(target="x0"), MSE),
    "L1 loss": (_variant(reduction="l1"), MSE),
    "summed, not averaged": (_variant(reduction="sum"), MSE),
    "uniform noise": (_variant(noise="uniform"), GAUSSIAN),
    "unit-variance uniform noise": (_variant(noise="uniform_unit_variance"), GAUSSIAN),
    "ignores the generator": (
        _variant(noise="global"),
        "uses the generator (same seed, same loss)",
    ),
    "loss cut from the graph": (
        _variant(detach=True),
        "returns a scalar loss whose gradient reaches the model",
    ),
    "noises x0 in place": (_variant(in_place=True), "leaves x0 unchanged"),
}


def test_check_leaves_the_global_generator_alone() -> None:
    assert_leaves_global_rng_alone(check_diffusion_loss, solution("diffusion_loss"))


TestExercises = exercise_tests(
    Exercise(check_diffusion_loss, "diffusion_loss", WRONG, _stub, (_variant(),)),
)
