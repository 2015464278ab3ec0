"""The hand-written training step (toydiff.fastmlp) against autograd + torch.optim.Adam."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import TensorDataset

import toydiff.training
from toydiff import ToyDiffuser, ToyDiffuserConfig, TrainConfig, train
from toydiff.fastmlp import FastMLPStep
from toydiff.tracking import read_metrics

IMG_SHAPE = (3, 5, 5)
T = 100


def make_model(num_classes: int | None = None, seed: int = 0, **kw) -> ToyDiffuser:
    torch.manual_seed(seed)
    return ToyDiffuser(ToyDiffuserConfig(IMG_SHAPE, 32, T, num_classes=num_classes, **kw))


def epoch_data(n: int, num_classes: int | None, seed: int = 1):
    """``(inputs (n, 1 + P) with x_t in columns 1:, x_t, t, eps, y)``."""
    g = torch.Generator().manual_seed(seed)
    x_t = torch.randn((n, *IMG_SHAPE), generator=g)
    t = torch.randint(0, T, (n,), generator=g)
    eps = torch.randn((n, *IMG_SHAPE), generator=g)
    y = None if num_classes is None else torch.randint(0, num_classes + 1, (n,), generator=g)
    inputs = torch.cat([torch.full((n, 1), float("nan")), x_t.reshape(n, -1)], dim=1)
    return inputs, x_t, t, eps, y


def autograd_step(model, optimizer, x_t, t, eps, y) -> float:
    loss = F.mse_loss(model.predict(x_t, t, y), eps)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()


@pytest.mark.parametrize("num_classes", [None, 3])
def test_gradients_equal_autograd(num_classes):
    model = make_model(num_classes)
    reference = copy.deepcopy(model)
    # lr = 0: Adam leaves the weights alone, so p.grad holds exactly this batch's gradient.
    fast = FastMLPStep.create(model, torch.optim.Adam(model.parameters(), lr=0.0), batch_size=16)
    assert fast is not None
    inputs, x_t, t, eps, y = epoch_data(40, num_classes)  # batches of 16, 16 and a partial 8
    batches = fast.epoch(inputs, t, eps, y)
    for i, start in enumerate(range(0, 40, 16)):
        s = slice(start, start + 16)
        loss_sum = torch.zeros(1)
        pred = fast.step(batches[i], loss_sum)
        reference.zero_grad()
        ys = None if y is None else y[s]
        expected_pred = reference.predict(x_t[s], t[s], ys)
        loss = F.mse_loss(expected_pred, eps[s])
        loss.backward()
        torch.testing.assert_close(pred, expected_pred.detach(), rtol=1e-5, atol=1e-6)
        assert loss_sum.item() == pytest.approx(loss.item(), rel=1e-5)
        for (name, p), q in zip(model.named_parameters(), reference.parameters(), strict=True):
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-6, msg=name)
            torch.testing.assert_close(p.detach(), q.detach(), rtol=0, atol=0, msg=name)
    fast.close()


@pytest.mark.parametrize("num_classes", [None, 3])
def test_many_steps_match_autograd_adam(num_classes):
    model = make_model(num_classes)
    reference = copy.deepcopy(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    ref_optimizer = torch.optim.Adam(reference.parameters(), lr=1e-3)
    fast = FastMLPStep.create(model, optimizer, batch_size=32)
    loss_sum, ref_losses = torch.zeros(1), 0.0
    for epoch in range(3):
        inputs, x_t, t, eps, y = epoch_data(200, num_classes, seed=epoch)
        batches = fast.epoch(inputs, t, eps, y)
        for i, start in enumerate(range(0, 200, 32)):
            s = slice(start, start + 32)
            fast.step(batches[i], loss_sum)
            ys = None if y is None else y[s]
            ref_losses += autograd_step(reference, ref_optimizer, x_t[s], t[s], eps[s], ys)
    fast.close()
    assert loss_sum.item() == pytest.approx(ref_losses, rel=1e-4)
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-4, atol=2e-6)
    # 21 Adam steps of lr 1e-3 move weights by ~1e-2: the comparison above is not vacuous.
    start = make_model(num_classes)
    pairs = zip(start.parameters(), model.parameters(), strict=True)
    assert max((a - b).abs().max().item() for a, b in pairs) > 5e-3
    # The optimizer state is ordinary Adam state, usable by checkpoints and resume.
    state, ref_state = optimizer.state_dict()["state"], ref_optimizer.state_dict()["state"]
    for k in ref_state:
        assert float(state[k]["step"]) == float(ref_state[k]["step"]) == 21
        torch.testing.assert_close(
            state[k]["exp_avg"], ref_state[k]["exp_avg"], rtol=1e-4, atol=1e-7
        )
        torch.testing.assert_close(
            state[k]["exp_avg_sq"], ref_state[k]["exp_avg_sq"], rtol=1e-4, atol=1e-9
        )


def test_continues_from_existing_adam_state():
    model = make_model()
    reference = copy.deepcopy(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    ref_optimizer = torch.optim.Adam(reference.parameters(), lr=1e-3)
    inputs, x_t, t, eps, _ = epoch_data(64, None)
    for s in (slice(0, 32), slice(32, 64)):  # two autograd steps first, on both
        autograd_step(model, optimizer, x_t[s], t[s], eps[s], None)
        autograd_step(reference, ref_optimizer, x_t[s], t[s], eps[s], None)
    fast = FastMLPStep.create(model, optimizer, batch_size=32)
    batches = fast.epoch(inputs, t, eps, None)
    for i, s in enumerate((slice(0, 32), slice(32, 64))):
        fast.step(batches[i], torch.zeros(1))
        autograd_step(reference, ref_optimizer, x_t[s], t[s], eps[s], None)
    fast.close()
    for p, q in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-5, atol=1e-7)
        assert p.grad is None
    assert float(optimizer.state_dict()["state"][0]["step"]) == 4


def test_close_gives_parameters_their_own_storage():
    model = make_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    fast = FastMLPStep.create(model, optimizer, batch_size=8)
    ptrs = {p.untyped_storage().data_ptr() for p in model.parameters()}
    assert len(ptrs) == 1  # one flat buffer while training
    fast.close()
    ptrs = {p.untyped_storage().data_ptr() for p in model.parameters()}
    assert len(ptrs) == len(list(model.parameters()))


@pytest.mark.parametrize(
    ("model_kw", "make_optimizer"),
    [
        ({"time_embedding": "sinusoidal", "depth": 2}, lambda p: torch.optim.Adam(p)),
        ({"depth": 2}, lambda p: torch.optim.Adam(p)),
        ({}, lambda p: torch.optim.SGD(p, lr=0.1)),
        ({}, lambda p: torch.optim.Adam(p, weight_decay=0.1)),
        ({}, lambda p: torch.optim.Adam(p, amsgrad=True)),
        ({}, lambda p: torch.optim.AdamW(p)),
    ],
)
def test_other_configurations_fall_back(model_kw, make_optimizer):
    model = make_model(**model_kw)
    assert FastMLPStep.create(model, make_optimizer(model.parameters()), 16) is None


def test_create_rejects_an_optimizer_over_other_parameters():
    model = make_model()
    other = make_model(seed=1)
    assert FastMLPStep.create(model, torch.optim.Adam(other.parameters()), 16) is None


@pytest.mark.parametrize("num_classes", [None, 3])
def test_train_fast_path_equals_autograd_path(num_classes, tmp_path, monkeypatch):
    g = torch.Generator().manual_seed(0)
    images = torch.rand((300, *IMG_SHAPE), generator=g) * 2 - 1
    tensors = (images,) if num_classes is None else (images, torch.randint(0, 3, (300,)))
    config = TrainConfig(
        epochs=2, batch_size=64, max_steps=T, wandb_mode="disabled", out_dir=str(tmp_path),
        progress=False, seed=0, log_interval=2, n_images_to_log=0,
    )  # fmt: skip
    fast_model = train(
        make_model(num_classes), replace(config, run_name="fast"), TensorDataset(*tensors)
    )
    monkeypatch.setattr(toydiff.training.FastMLPStep, "create", lambda *a, **k: None)
    slow_model = train(
        make_model(num_classes), replace(config, run_name="slow"), TensorDataset(*tensors)
    )
    for p, q in zip(fast_model.parameters(), slow_model.parameters(), strict=True):
        torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-4, atol=1e-6)
    # The same train-loss records (10 steps, one record every 2).
    fast_log = [
        r["train_loss"]
        for r in read_metrics(tmp_path / "fast" / "metrics.jsonl")
        if "train_loss" in r
    ]
    slow_log = [
        r["train_loss"]
        for r in read_metrics(tmp_path / "slow" / "metrics.jsonl")
        if "train_loss" in r
    ]
    assert len(fast_log) == 5
    assert fast_log == pytest.approx(slow_log, rel=1e-5)
