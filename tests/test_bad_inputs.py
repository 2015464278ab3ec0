"""Bad input across the API raises ValueError or TypeError, and the message names the argument."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.utils.data import TensorDataset

from toydiff import (
    NoiseSchedule,
    TimestepScheduler,
    ToyDiffuser,
    ToyDiffuserConfig,
    TrainConfig,
    cosine_variance_schedule,
    gradient_images,
    load_checkpoint,
    noise_img,
    normalize_img,
    q_eq2,
    q_eq4,
    reconstruct,
    sample,
    save_checkpoint,
    train,
    variance_schedule,
)

T = 10
BETAS = variance_schedule(T)
SCHEDULE = NoiseSchedule(T)
IMG = torch.zeros(2, 1, 2, 2)


def _model(**kwargs: Any) -> ToyDiffuser:
    model = ToyDiffuser(ToyDiffuserConfig((1, 2, 2), 4, T, **kwargs))
    model.noise_schedule = SCHEDULE
    return model


def _sample(**kwargs: Any) -> Any:
    return sample(_model(), kwargs.pop("n", 2), progress=False, **kwargs)


def _train(model: Any = None, config: Any = None, data: Any = None) -> Any:
    base = {"epochs": 1, "max_steps": T, "wandb_mode": "disabled", "out_dir": None}
    return train(
        _model() if model is None else model,
        base if config is None else {**base, **config},
        TensorDataset(IMG) if data is None else data,
    )


ts = torch.tensor

# (id, call, expected exception, regex the message must match: the argument's name)
CASES: list[tuple[str, Callable[[], Any], type[Exception], str]] = [
    ("beta equal to 1", lambda: NoiseSchedule.from_betas(ts([0.1, 1.0])), ValueError, "betas"),
    ("beta equal to 0", lambda: q_eq4(IMG, 1, ts([0.0, 0.1])), ValueError, "betas"),
    ("betas not a tensor", lambda: q_eq2(IMG, 1, [0.1, 0.2]), TypeError, "betas"),
    ("num_steps > len(betas)", lambda: q_eq4(IMG, T + 1, BETAS), ValueError, "num_steps"),
    ("negative num_steps", lambda: q_eq2(IMG, -1, BETAS), ValueError, "num_steps"),
    ("float num_steps", lambda: q_eq4(IMG, 2.0, BETAS), TypeError, "num_steps"),
    ("q_eq4 noise shape", lambda: q_eq4(IMG, 2, BETAS, noise=IMG[0]), ValueError, "noise"),
    ("min_noise > max_noise", lambda: variance_schedule(T, 0.1, 0.01), ValueError, "min_noise"),
    ("cosine s < 0", lambda: cosine_variance_schedule(T, s=-1.0), ValueError, "s must"),
    ("unknown schedule kind", lambda: NoiseSchedule(T, kind="quadratic"), ValueError, "kind"),
    ("max_steps 0", lambda: NoiseSchedule(0), ValueError, "max_steps"),
    ("alpha_bar(T)", lambda: SCHEDULE.alpha_bar(T), ValueError, "t must"),
    ("alpha_bar(-1)", lambda: SCHEDULE.alpha_bar(ts([-1, 0])), ValueError, "t must"),
    ("alpha_bar(float)", lambda: SCHEDULE.beta(ts([0.5])), TypeError, "t must"),
    ("noise_img 3-D image", lambda: noise_img(IMG[0], SCHEDULE), ValueError, "img"),
    ("noise_img int image", lambda: noise_img(IMG.long(), SCHEDULE), TypeError, "img"),
    ("noise_img max_steps > T", lambda: noise_img(IMG, SCHEDULE, T + 1), ValueError, "max_steps"),
    ("noise_img schedule", lambda: noise_img(IMG, BETAS), TypeError, "noise_schedule"),
    (
        "reconstruct index >= T",
        lambda: reconstruct(IMG, IMG, ts([0, T]), SCHEDULE),
        ValueError,
        "num_steps",
    ),
    (
        "reconstruct noise shape",
        lambda: reconstruct(IMG, IMG[:1], ts([0, 1]), SCHEDULE),
        ValueError,
        "noise",
    ),
    ("n_images 0", lambda: gradient_images(0, (3, 5, 5)), ValueError, "n_images"),
    ("img_size (C, H)", lambda: gradient_images(2, (3, 5)), ValueError, "img_size"),
    ("normalize a list", lambda: normalize_img([0.5]), TypeError, "img"),
    ("d_model 0", lambda: ToyDiffuserConfig((1, 2, 2), 0, T), ValueError, "d_model"),
    (
        "unknown time embedding",
        lambda: ToyDiffuserConfig((1, 2, 2), 4, T, time_embedding="learned"),
        ValueError,
        "time_embedding",
    ),
    ("model t >= T", lambda: _model()(IMG, ts([0, T])), ValueError, "num_steps"),
    ("model float t", lambda: _model()(IMG, ts([0.0, 1.0])), TypeError, "num_steps"),
    (
        "model image shape",
        lambda: _model()(torch.zeros(2, 1, 3, 3), ts([0, 1])),
        ValueError,
        "images",
    ),
    ("y on unconditional", lambda: _model()(IMG, ts([0, 1]), ts([0, 1])), ValueError, "y"),
    (
        "y beyond the null label",
        lambda: _model(num_classes=2)(IMG, ts([0, 1]), ts([0, 3])),
        ValueError,
        "y must",
    ),
    ("sample n_samples 0", lambda: _sample(n=0), ValueError, "n_samples"),
    ("sample unknown variance", lambda: _sample(variance="sigma"), ValueError, "variance"),
    ("sample x_T shape", lambda: _sample(x_T=torch.zeros(3, 1, 2, 2)), ValueError, "x_T"),
    ("sample num_steps > T", lambda: _sample(num_steps=T + 1), ValueError, "num_steps"),
    (
        "sample unknown spacing",
        lambda: _sample(num_steps=5, spacing="cubic"),
        ValueError,
        "spacing",
    ),
    ("sample y unconditional", lambda: _sample(y=ts([0, 1])), ValueError, "y"),
    ("sample generator type", lambda: _sample(generator=0), TypeError, "generator"),
    ("sample schedule type", lambda: _sample(schedule=BETAS), TypeError, "schedule"),
    ("spacing num_steps > T", lambda: TimestepScheduler.uniform(T, T + 1), ValueError, "num_steps"),
    (
        "config unknown key",
        lambda: TrainConfig.from_any({"learning_rate": 1}),
        ValueError,
        "unknown keys",
    ),
    ("config bad lr", lambda: TrainConfig(lr=-1e-3), ValueError, "lr"),
    ("config epochs 0", lambda: TrainConfig(epochs=0), ValueError, "epochs"),
    ("config wandb_mode", lambda: TrainConfig(wandb_mode="cloud"), ValueError, "wandb_mode"),
    ("config label_dropout 1", lambda: TrainConfig(label_dropout=1.0), ValueError, "label_dropout"),
    ("train max_steps mismatch", lambda: _train(config={"max_steps": 5}), ValueError, "max_steps"),
    ("train a non-ToyDiffuser", lambda: _train(model=torch.nn.Linear(4, 4)), TypeError, "model"),
    (
        "train images of the wrong shape",
        lambda: _train(data=TensorDataset(torch.zeros(4, 3, 2, 2))),
        ValueError,
        "trainset",
    ),
]


@pytest.mark.parametrize(
    ("call", "error", "match"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_bad_input_raises_a_clear_error(
    call: Callable[[], Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        call()


def test_at_least_twenty_distinct_cases() -> None:
    assert len({c[0] for c in CASES}) == len(CASES) >= 20


def test_a_checkpoint_that_does_not_match(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "m.pt", _model(), SCHEDULE)
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["inp.weight"] = torch.zeros(3, 3)
    torch.save(payload, path)
    with pytest.raises(ValueError, match="weights do not match"):
        load_checkpoint(path)
