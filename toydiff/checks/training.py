"""Checks for notebook 05 (Algorithm 1): ``diffusion_loss(model, x0, schedule, *, generator)``.

The loss is probed with fixed "models" whose answers are known in closed form:

* an **oracle** that knows ``x0`` and recovers the noise exactly from ``x_t`` by inverting Eq. 4 at
  the index it is given: the loss is 0 only when ``x_t`` really is Eq. 4 at that index (an
  off-by-one timestep or a missing square root leaves a positive loss), and the noise it recovers
  must be standard Gaussian;
* a **zero predictor**: its loss is ``E[eps^2] = 1`` for the mean squared error against Gaussian
  noise (0.8 for an L1 loss, 1/3 for uniform noise, thousands for a sum);
* a recorder of the timestep indices the model is called with: every index ``0..T-1``, uniformly.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from toydiff.checks.common import expect_gaussian, expect_unchanged, gen
from toydiff.checks.core import CheckReport, SubCheck, exercise, expect, run_checks
from toydiff.model import ToyDiffuser, ToyDiffuserConfig
from toydiff.schedule import NoiseSchedule

NOTEBOOK = "05_training"
T = 10
SHAPE = (4000, 3, 2, 2)


def _schedule() -> NoiseSchedule:
    return NoiseSchedule(T, min_noise=0.05, max_noise=0.3)


def _x0(n: int = SHAPE[0], seed: int = 0) -> Tensor:
    return torch.rand((n, *SHAPE[1:]), generator=gen(seed)) * 2 - 1


class _Probe(nn.Module):
    """A fake noise predictor that records its inputs; ``oracle`` knows x0 (else it predicts 0)."""

    def __init__(self, schedule: NoiseSchedule, x0: Tensor | None = None) -> None:
        super().__init__()
        self.schedule, self.x0 = schedule, x0
        self.scale = nn.Parameter(torch.ones(()))  # something for an optimizer to hold
        self.t: list[Tensor] = []
        self.eps: list[Tensor] = []

    def forward(self, x_t: Tensor, t: Tensor, *args: object) -> Tensor:
        expect(isinstance(t, Tensor) and t.shape == (x_t.shape[0],), "call model(x_t, t (B,))")
        expect(not t.is_floating_point(), f"t should hold integer indices, got {t.dtype}")
        expect(int(t.min()) >= 0 and int(t.max()) < T, f"t out of [0, {T - 1}]")
        self.t.append(t.detach().clone())
        if self.x0 is None:
            return torch.zeros_like(x_t) * self.scale
        ab = self.schedule.alpha_bars[t].view(-1, 1, 1, 1)
        eps = (x_t - ab.sqrt() * self.x0) / (1 - ab).sqrt()
        self.eps.append(eps.detach())
        return eps * self.scale


def _loss(diffusion_loss: Callable, model: nn.Module, x0: Tensor, seed: int = 0) -> Tensor:
    out = diffusion_loss(model, x0, _schedule(), generator=gen(seed))
    expect(isinstance(out, Tensor), f"return a tensor, got {type(out).__name__}")
    expect(out.ndim == 0, f"return a scalar (0-dim) loss, got shape {tuple(out.shape)}")
    return out


def _loss_value(diffusion_loss: Callable, model: nn.Module, x0: Tensor, seed: int = 0) -> float:
    return float(_loss(diffusion_loss, model, x0, seed).detach())


def _model() -> ToyDiffuser:
    """A small real MLP, seeded without touching the student's global generator."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return ToyDiffuser(ToyDiffuserConfig(SHAPE[1:], 16, T))


def _scalar_grad(diffusion_loss: Callable) -> None:
    model = _model()
    loss = _loss(diffusion_loss, model, _x0(64))
    expect(loss.requires_grad, "the loss carries no gradient (no .item(), .detach() or no_grad)")
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.any()]
    expect(not missing, f"no gradient reached {missing}")


def _oracle(diffusion_loss: Callable) -> None:
    x0 = _x0()
    loss = _loss_value(diffusion_loss, _Probe(_schedule(), x0), x0)
    expect(
        loss < 1e-6,
        f"a model that inverts Eq. 4 exactly still has loss {loss:.3g}: x_t is not "
        "sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps at the index t given to the model",
    )


def _mse(diffusion_loss: Callable) -> None:
    loss = _loss_value(diffusion_loss, _Probe(_schedule()), _x0())
    expect(
        abs(loss - 1) < 0.05,
        f"predicting 0 gives loss {loss:.3f}; the MSE against N(0, 1) noise should be about 1",
    )


def _gaussian(diffusion_loss: Callable) -> None:
    x0 = _x0()
    probe = _Probe(_schedule(), x0)
    _loss(diffusion_loss, probe, x0)
    expect(len(probe.eps) == 1, f"call the model once per loss, got {len(probe.eps)} calls")
    expect_gaussian(probe.eps[0], "the noise added to x0")


def _all_indices(diffusion_loss: Callable) -> None:
    probe = _Probe(_schedule())
    _loss(diffusion_loss, probe, _x0())
    t = torch.cat(probe.t)
    expect(int(t.min()) == 0, f"index 0 is never trained (min {int(t.min())}); sampling uses it")
    expect(int(t.max()) == T - 1, f"the largest index is {int(t.max())}, expected {T - 1}")
    counts = torch.bincount(t, minlength=T)
    expected = t.numel() / T
    worst = float((counts.double() - expected).abs().max() / expected)
    expect(worst < 0.2, f"indices are not uniform: counts {counts.tolist()}")


def _seeded(diffusion_loss: Callable) -> None:
    x0 = _x0(64)
    model = _model()
    a = _loss_value(diffusion_loss, model, x0, seed=3)
    b = _loss_value(diffusion_loss, model, x0, seed=3)
    expect(a == b, f"the same generator seed gave losses {a} and {b}")
    c = _loss_value(diffusion_loss, model, x0, seed=4)
    expect(a != c, "different generator seeds gave the same loss")


def _inputs(diffusion_loss: Callable) -> None:
    x0 = _x0(64)
    before = x0.clone()
    _loss(diffusion_loss, _Probe(_schedule()), x0)
    expect_unchanged(before, x0, "x0")


@exercise("diffusion_loss", notebook=NOTEBOOK, target="diffusion_loss")
def _diffusion_loss_checks() -> list[SubCheck]:
    return [
        SubCheck(
            "returns a scalar loss whose gradient reaches the model",
            _scalar_grad,
            "return F.mse_loss(model(x_t, t), noise) without detaching anything",
        ),
        SubCheck(
            "the model sees Eq. 4 at the index it is given",
            _oracle,
            "x_t = sqrt(alpha_bar[t]) x0 + sqrt(1 - alpha_bar[t]) eps, and call model(x_t, t)",
        ),
        SubCheck(
            "mean squared error against the noise",
            _mse,
            "the target is the noise eps; average the squared error over every element",
        ),
        SubCheck("the noise is standard Gaussian", _gaussian, "use torch.randn, not torch.rand"),
        SubCheck(
            "trains every index 0..T-1, uniformly",
            _all_indices,
            "torch.randint(0, len(schedule), (B,)): the upper bound is exclusive",
        ),
        SubCheck(
            "uses the generator (same seed, same loss)",
            _seeded,
            "pass generator=generator to randint and randn",
        ),
        SubCheck("leaves x0 unchanged", _inputs, "avoid in-place ops on x0"),
    ]


def check_diffusion_loss(diffusion_loss: Callable, *, verbose: bool = True) -> CheckReport:
    """Check ``diffusion_loss(model, x0, schedule, *, generator=None) -> scalar`` (Algorithm 1)."""
    return run_checks("diffusion_loss", diffusion_loss, verbose=verbose)
