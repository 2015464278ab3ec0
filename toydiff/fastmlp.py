"""Algorithm 1 steps for the reference two-layer MLP, with the backward pass written out by hand.

At batch 128 the reference MLP is a few microseconds of arithmetic per layer, and autograd,
``nn.Linear`` and ``torch.optim.Adam`` spend more than that on bookkeeping: graph nodes, freshly
allocated outputs, per-parameter optimizer loops. :class:`FastMLPStep` does the same step with about
twenty preallocated kernel calls:

    forward   h = relu(W1 [t / (T-1), x_t] + b1 (+ E[y])),   eps_hat = W2 h + b2
    loss      L = mean((eps_hat - eps)^2)                           (DDPM Eq. 14, "L_simple")
    backward  g = 2 / (B * P) * (eps_hat - eps)                      (B, P)
              dW2 = g^T h,  db2 = g^T 1,  gh = (g W2) * [h > 0]
              dW1 = gh^T [t / (T-1), x_t],  db1 = gh^T 1,  dE[y] += gh
    Adam      (Kingma & Ba, Algorithm 1) as one fused kernel on a flat buffer of every parameter

The parameters, their gradients and Adam's moments are views into four flat buffers, so the
optimizer update is one kernel call whatever the number of parameters, and
``optimizer.state_dict()`` stays valid throughout (checkpoints and resume see ordinary Adam state).
Only the default architecture (scalar time, one hidden layer, optional label embedding) with plain
Adam takes this path; :func:`FastMLPStep.create` returns None for anything else and ``train`` falls
back to autograd.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from toydiff.model import ToyDiffuser

_threshold_backward = torch.ops.aten.threshold_backward.grad_input


class Workspace(NamedTuple):
    """The step's buffers for one batch size ``b``: views of the stepper's preallocated tensors."""

    out: Tensor  # (b, P): the prediction, written by the step
    pred: Tensor  # (b, C, H, W): the same prediction as an image batch
    h: Tensor  # (b, d): hidden activations
    gh: Tensor  # (b, d): their gradient
    gh_t: Tensor  # (d, b): gh transposed
    diff: Tensor  # (b, P): prediction - target
    diff_t: Tensor  # (P, b): diff transposed
    diff_row: Tensor  # (1, b * P): diff flattened, as a matrix
    diff_flat: Tensor  # (b * P,): diff flattened
    ones: Tensor  # (b,): for the bias gradients
    emb: Tensor  # (b, d): the label embeddings
    scale: float  # 2 / (b * P): d mean-square / d prediction, per unit of diff


class FastBatch(NamedTuple):
    """One batch of an epoch and the workspace of its size."""

    inputs: Tensor  # (b, 1 + P): [t / (T - 1), x_t]
    target: Tensor  # (b, P): the noise eps
    y: Tensor | None  # (b,) labels, or None
    work: Workspace


def _plain_adam(optimizer: torch.optim.Optimizer, params: list[Tensor]) -> bool:
    """True for ``torch.optim.Adam`` over exactly ``params`` with no extra options."""
    if type(optimizer) is not torch.optim.Adam or len(optimizer.param_groups) != 1:
        return False
    group = optimizer.param_groups[0]
    if [id(p) for p in group["params"]] != [id(p) for p in params]:
        return False
    extras = ("amsgrad", "maximize", "capturable", "differentiable", "decoupled_weight_decay")
    return group["weight_decay"] == 0 and not any(group.get(k, False) for k in extras)


class FastMLPStep:
    """Hand-derived forward, backward and Adam step for the default :class:`ToyDiffuser`.

    Use :meth:`create` (None when the model or optimizer is not the supported kind), then per
    epoch :meth:`epoch` and per batch :meth:`step`; :meth:`close` gives the parameters and
    optimizer state back their own storage.
    """

    def __init__(self, model: ToyDiffuser, optimizer: torch.optim.Adam, batch_size: int) -> None:
        self.model = model
        self.optimizer = optimizer
        self.batch_size = batch_size
        self.params = list(optimizer.param_groups[0]["params"])
        numel = sum(p.numel() for p in self.params)
        self.theta = torch.empty(numel)
        self.grad = torch.empty(numel)
        self.exp_avg = torch.zeros(numel)
        self.exp_avg_sq = torch.zeros(numel)
        steps = []
        # Plain (non-autograd) views of each parameter and its gradient, keyed by parameter.
        value: dict[int, Tensor] = {}
        grad: dict[int, Tensor] = {}
        offset = 0
        for p in self.params:
            n = p.numel()
            sl = slice(offset, offset + n)
            offset += n
            self.theta[sl].copy_(p.detach().reshape(-1))
            state = optimizer.state[p]
            if "exp_avg" in state:
                self.exp_avg[sl].copy_(state["exp_avg"].reshape(-1))
                self.exp_avg_sq[sl].copy_(state["exp_avg_sq"].reshape(-1))
                steps.append(int(state["step"]))
            else:
                steps.append(0)
            value[id(p)] = self.theta[sl].view_as(p)
            grad[id(p)] = self.grad[sl].view_as(p)
            p.data = value[id(p)]
            p.grad = grad[id(p)]
            state["step"] = torch.tensor(float(steps[-1]))
            state["exp_avg"] = self.exp_avg[sl].view_as(p)
            state["exp_avg_sq"] = self.exp_avg_sq[sl].view_as(p)
        if len(set(steps)) != 1:
            raise ValueError("optimizer state has different step counts across parameters")
        self.step_count = steps[0]
        # Adam's step count lives in one tensor here; the per-parameter ``state["step"]`` tensors
        # are brought up to date by :meth:`sync_state` (before a checkpoint, and at the end).
        self.step_tensor = torch.tensor(float(self.step_count))
        self.step_tensors = [optimizer.state[p]["step"] for p in self.params]

        m = model
        W1, b1, W2, b2 = m.inp.weight, m.inp.bias, m.out.weight, m.out.bias
        self.W1T, self.b1 = value[id(W1)].t(), value[id(b1)]
        self.W2, self.W2T, self.b2 = value[id(W2)], value[id(W2)].t(), value[id(b2)]
        self.gW1, self.gb1, self.gW2, self.gb2 = (grad[id(p)] for p in (W1, b1, W2, b2))
        E = m.label_emb.weight if m.label_emb is not None else None
        self.E = None if E is None else value[id(E)]
        self.gE = None if E is None else grad[id(E)]
        d, P = W1.shape[0], m.num_pixels
        self.num_pixels = P
        self.h = torch.empty(batch_size, d)
        self.gh = torch.empty(batch_size, d)
        self.emb = torch.empty(batch_size, d)
        self.out = torch.empty(batch_size, P)
        self.diff = torch.empty(batch_size, P)
        self.ones = torch.ones(batch_size)
        self.workspaces: dict[int, Workspace] = {}
        self.adam_tensors = ([self.theta], [self.grad], [self.exp_avg], [self.exp_avg_sq], [])

    @classmethod
    def create(
        cls, model: ToyDiffuser, optimizer: torch.optim.Optimizer, batch_size: int
    ) -> FastMLPStep | None:
        """A fast stepper for ``model`` and ``optimizer``, or None if they are not supported:
        the model must be exactly the default ToyDiffuser (scalar time, depth 1; labels allowed)
        in float32 on the CPU, and the optimizer plain Adam over its parameters."""
        config = model.config
        if type(model) is not ToyDiffuser or config.time_embedding != "scalar" or config.depth != 1:
            return None
        params = list(model.parameters())
        if any(
            p.dtype != torch.float32 or p.device.type != "cpu" or not p.requires_grad
            for p in params
        ):
            return None
        if not _plain_adam(optimizer, params):
            return None
        return cls(model, optimizer, batch_size)

    def workspace(self, b: int) -> Workspace:
        """The buffers for a batch of ``b`` rows (made once per batch size)."""
        if b not in self.workspaces:
            out, diff, gh = self.out[:b], self.diff[:b], self.gh[:b]
            self.workspaces[b] = Workspace(
                out, out.view(b, *self.model.img_shape), self.h[:b], gh, gh.t(), diff, diff.t(),
                diff.view(1, -1), diff.view(-1), self.ones[:b], self.emb[:b],
                2.0 / diff.numel(),
            )  # fmt: skip
        return self.workspaces[b]

    def epoch(self, inputs: Tensor, t: Tensor, eps: Tensor, y: Tensor | None) -> list[FastBatch]:
        """One epoch of Algorithm 1's inputs as batches for :meth:`step`.

        ``inputs (N, 1 + P)`` holds x_t in its last ``P`` columns; column 0 is overwritten here
        with ``t / (T - 1)``, the layer-1 input. ``eps (N, C, H, W)``, ``t, y (N,)``. Only views
        are made (the workspaces exist after the first epoch), so this may run on another thread
        while the previous epoch trains.
        """
        n = inputs.shape[0]
        inputs[:, 0] = self.model.scale_time(t)
        B = self.batch_size
        labels = y.split(B) if y is not None else [None] * -(-n // B)
        return [
            FastBatch(inp, target, lab, self.workspace(inp.shape[0]))
            for inp, target, lab in zip(
                inputs.split(B), eps.reshape(n, -1).split(B), labels, strict=True
            )
        ]

    def step(self, batch: FastBatch, loss_sum: Tensor) -> Tensor:
        """One Algorithm 1 step on ``batch`` (from :meth:`epoch`).

        Adds the batch's mean squared error to ``loss_sum`` (a tensor of shape ``(1,)``; read it
        only when logging) and returns the prediction ``(b, C, H, W)`` (valid until the next step).
        """
        inp, target, y, w = batch
        # Forward.
        torch.addmm(self.b1, inp, self.W1T, out=w.h)
        if y is not None:
            w.h.add_(torch.index_select(self.E, 0, y, out=w.emb))
        w.h.relu_()
        torch.addmm(self.b2, w.h, self.W2T, out=w.out)
        torch.sub(w.out, target, out=w.diff)
        # loss_sum += mean(diff^2), as one matrix-vector product.
        torch.addmv(loss_sum, w.diff_row, w.diff_flat, alpha=w.scale / 2, out=loss_sum)
        # Backward: d mean((out - target)^2) / d out = scale * diff; scale rides on the alphas.
        torch.addmm(self.gW2, w.diff_t, w.h, beta=0, alpha=w.scale, out=self.gW2)
        torch.addmv(self.gb2, w.diff_t, w.ones, beta=0, alpha=w.scale, out=self.gb2)
        torch.mm(w.diff, self.W2, out=w.gh)
        _threshold_backward(w.gh, w.h, 0, grad_input=w.gh)  # ReLU: h > 0 where pre-act > 0
        torch.addmm(self.gW1, w.gh_t, inp, beta=0, alpha=w.scale, out=self.gW1)
        torch.addmv(self.gb1, w.gh_t, w.ones, beta=0, alpha=w.scale, out=self.gb1)
        if y is not None:
            self.gE.zero_().index_add_(0, y, w.gh, alpha=w.scale)
        self._adam()
        return w.pred

    def _adam(self) -> None:
        """torch.optim.Adam's update (weight_decay 0) as one fused kernel over the flat buffers
        (``torch._fused_adam_``, the kernel behind ``Adam(fused=True)``)."""
        group = self.optimizer.param_groups[0]
        beta1, beta2 = group["betas"]
        self.step_count += 1
        self.step_tensor.fill_(self.step_count)
        torch._fused_adam_(
            *self.adam_tensors,
            [self.step_tensor],
            lr=group["lr"],
            beta1=beta1,
            beta2=beta2,
            weight_decay=0.0,
            eps=group["eps"],
            amsgrad=False,
            maximize=False,
        )

    def sync_state(self) -> None:
        """Write the step count into every parameter's ``optimizer.state[p]["step"]``."""
        for step in self.step_tensors:
            step.fill_(float(self.step_count))

    def close(self) -> None:
        """Give every parameter and optimizer state tensor its own storage again."""
        self.sync_state()
        for p in self.params:
            state = self.optimizer.state[p]
            p.data = p.data.clone()
            p.grad = None
            state["exp_avg"] = state["exp_avg"].clone()
            state["exp_avg_sq"] = state["exp_avg_sq"].clone()
