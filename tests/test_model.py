"""ToyDiffuser: the reference two-layer MLP computed by hand, the fast path, the options."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from toydiff import ToyDiffuser, ToyDiffuserConfig
from toydiff.model import sinusoidal_embedding

SHAPE = (3, 4, 5)


def _model(seed: int = 0, **kwargs) -> ToyDiffuser:
    torch.manual_seed(seed)
    return ToyDiffuser(ToyDiffuserConfig(SHAPE, 24, 50, **kwargs)).eval()


def _inputs(b: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return torch.randn(b, *SHAPE, generator=g), torch.randint(0, 50, (b,), generator=g)


def test_default_is_the_reference_two_layer_mlp() -> None:
    model = _model()
    x, t = _inputs()
    assert [name for name, _ in model.named_parameters()] == [
        "inp.weight",
        "inp.bias",
        "out.weight",
        "out.bias",
    ]
    assert model.inp.in_features == 3 * 4 * 5 + 1 and model.out.out_features == 60
    # By hand: [t / (T - 1), flattened pixels] -> Linear -> ReLU -> Linear -> (C, H, W).
    features = torch.cat([(t.float() / 49)[:, None], x.reshape(6, -1)], dim=1)
    hidden = torch.relu(features @ model.inp.weight.T + model.inp.bias)
    expected = (hidden @ model.out.weight.T + model.out.bias).reshape(6, *SHAPE)
    with torch.no_grad():
        out = model(x, t)
    assert out.shape == x.shape
    assert torch.allclose(out, expected, atol=1e-5)


@pytest.mark.parametrize(
    "options",
    [{}, {"num_classes": 3}, {"time_embedding": "sinusoidal", "depth": 3}],
    ids=["reference", "conditional", "sinusoidal"],
)
def test_predict_at_equals_forward(options: dict) -> None:
    model = _model(**options)
    x, _ = _inputs()
    y = torch.tensor([0, 1, 2, 3, 0, 1]) if "num_classes" in options else None
    with torch.no_grad():
        for t in (0, 17, 49):
            full = model(x, torch.full((6,), t), y)
            assert torch.allclose(model.predict_at(x, t, y), full, atol=1e-5), t


def test_predict_at_padded_output_layer_equals_forward() -> None:
    """Large batches take the padded output layer (60 columns computed as 64); same numbers."""
    model = _model(num_classes=2)
    b = ToyDiffuser.PAD_MIN_ROWS
    x, _ = _inputs(b)
    y = torch.arange(b) % 3
    with torch.no_grad():
        full = model(x, torch.full((b,), 31), y)
        fast = model.predict_at(x, 31, y)
    assert fast.shape == x.shape and -model.num_pixels % ToyDiffuser.PAD_MULTIPLE == 4
    assert torch.allclose(fast, full, atol=1e-5)


def test_predict_at_writes_into_a_given_output_matrix() -> None:
    model = _model()
    x, _ = _inputs(8)
    with torch.no_grad():
        expected = model.predict_at(x, 9)
        for width in (60, 64, 70):  # C*H*W = 60; wider matrices pad the output layer
            out = torch.full((8, width), float("nan"))
            got = model.predict_at(x, 9, out=out)
            assert got.data_ptr() == out.data_ptr() and torch.allclose(got, expected, atol=1e-6)
            assert torch.equal(out[:, 60:], torch.zeros(8, width - 60))
        with pytest.raises(ValueError, match="out must be"):
            model.predict_at(x, 9, out=torch.empty(8, 59))
        with pytest.raises(ValueError, match="out must be"):
            model.predict_at(x, 9, out=torch.empty(7, 64))
    assert model.output_columns(8) == 60 and model.output_columns(ToyDiffuser.PAD_MIN_ROWS) == 64


def test_timestep_changes_the_prediction() -> None:
    model = _model()
    x, _ = _inputs()
    with torch.no_grad():
        assert not torch.allclose(
            model(x, torch.zeros(6, dtype=torch.long)), model(x, torch.full((6,), 49))
        )


def test_conditional_model_null_label_and_label_effect() -> None:
    model = _model(num_classes=3)
    assert model.is_conditional and model.null_label == 3
    assert model.label_emb.num_embeddings == 4  # K classes plus the null label
    x, t = _inputs()
    with torch.no_grad():
        null = model(x, t, torch.full((6,), 3))
        assert torch.equal(model(x, t), null)  # y=None means unconditional
        assert not torch.allclose(model(x, t, torch.zeros(6, dtype=torch.long)), null)
    assert not _model().is_conditional and _model().null_label is None


def test_sinusoidal_embedding_features() -> None:
    t = torch.tensor([0, 1, 10])
    emb = sinusoidal_embedding(t, 8)
    assert emb.shape == (3, 8)
    freqs = torch.exp(-torch.log(torch.tensor(10_000.0)) * torch.arange(4) / 4)
    expected = torch.cat([torch.cos(t[:, None] * freqs), torch.sin(t[:, None] * freqs)], dim=1)
    assert torch.allclose(emb, expected, atol=1e-6)
    assert torch.equal(emb[0], torch.tensor([1.0] * 4 + [0.0] * 4))
    assert sinusoidal_embedding(t, 7).shape == (3, 7)


def test_config_is_frozen_and_round_trips() -> None:
    config = ToyDiffuserConfig([3, 5, 5], 128, 100, num_classes=3)
    assert config.img_shape == (3, 5, 5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.d_model = 1  # type: ignore[misc]
    assert ToyDiffuserConfig.from_dict(config.to_dict()) == config


def test_gradients_flow_to_every_parameter() -> None:
    model = _model(num_classes=3).train()
    x, t = _inputs()
    model(x, t, torch.tensor([0, 1, 2, 3, 0, 1])).pow(2).mean().backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
