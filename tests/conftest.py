"""Shared test fixtures. Tests run offline: wandb never touches the network."""

from __future__ import annotations

import os

os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest
import torch
from torch.utils.data import TensorDataset

from toydiff import (
    GaussianMixture,
    MixtureNoisePredictor,
    NoiseSchedule,
    ToyDiffuser,
    ToyDiffuserConfig,
    TrainConfig,
    gradient_images,
    normalize_img,
    train,
)

# One thread: the tests' tensors are tiny, and OpenMP threads spin badly whenever anything else
# (a notebook kernel, a grading subprocess) shares the two cores.
torch.set_num_threads(1)

IMG_SHAPE = (3, 5, 5)


@pytest.fixture(scope="session")
def trained_model(tmp_path_factory: pytest.TempPathFactory) -> ToyDiffuser:
    """A gradient model trained for a few seconds (T=100, seeded); ``model.noise_schedule`` set.

    Shared by every test that needs a real trained model; do not modify it in place.
    """
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    images = normalize_img(gradient_images(20_000, IMG_SHAPE, generator=g))
    model = ToyDiffuser(ToyDiffuserConfig(IMG_SHAPE, 128, 100))
    config = TrainConfig(
        epochs=8,
        batch_size=128,
        max_steps=100,
        wandb_mode="disabled",
        out_dir=str(tmp_path_factory.mktemp("trained_model")),
        progress=False,
        seed=0,
        eval_samples=0,
    )
    return train(model, config, TensorDataset(images))


@pytest.fixture(scope="module")
def schedule() -> NoiseSchedule:
    """The paper's linear schedule with T = 1000 (Ho et al. 2020, Sec. 4)."""
    return NoiseSchedule(1000)


@pytest.fixture(scope="module")
def exact(mixture: GaussianMixture, schedule: NoiseSchedule) -> MixtureNoisePredictor:
    """The exact noise predictor of the requesting module's ``mixture`` under ``schedule``."""
    return MixtureNoisePredictor(mixture, schedule.betas)
