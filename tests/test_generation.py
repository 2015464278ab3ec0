"""ImageGenerator: batch-independent seeds, files and metadata, SDEdit variations, precision."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from toydiff import gradient_images, load_checkpoint, normalize_img
from toydiff.cli import DEFAULT_CHECKPOINT
from toydiff.generation import (
    ImageGenerator,
    InferenceModel,
    reproduce_image,
)
from toydiff.plotting import load_image, save_image
from toydiff.samplers import DDIMSampler, DDPMSampler, DPMSolverSampler

SHAPE = (3, 5, 5)


@pytest.fixture(scope="module")
def model():
    """The committed reference checkpoint (T=100): loads in milliseconds, no training."""
    return load_checkpoint(DEFAULT_CHECKPOINT)[0]


def ddpm(model) -> DDPMSampler:
    return DDPMSampler(model, model.noise_schedule.betas)


def ddim(model) -> DDIMSampler:
    return DDIMSampler(model, model.noise_schedule.alpha_bars)


def _reference(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return normalize_img(gradient_images(1, SHAPE, generator=g))[0]


@pytest.mark.parametrize("make, options", [(ddpm, {}), (ddim, {"eta": 0.5})])
def test_seeds_give_the_same_image_in_any_batch(model, tmp_path: Path, make, options) -> None:
    gen = ImageGenerator(model, make(model), tmp_path)
    together = gen.generate_with_seeds([1, 2, 3, 4], 20, progress=False, **options)
    split = torch.cat(
        [
            gen.generate_with_seeds([1, 2], 20, progress=False, **options),
            gen.generate_with_seeds([3, 4], 20, progress=False, **options),
        ]
    )
    one_by_one = gen.generate_with_seeds([4, 3, 2, 1], 20, batch_size=1, progress=False, **options)
    # Equal up to float rounding: BLAS sums a batch of 3 in another order than one of 4 (~1e-6).
    assert torch.allclose(together, split, atol=1e-5)
    assert torch.allclose(together, one_by_one.flip(0), atol=1e-5)
    # Different seeds, different (stochastic) images.
    assert (together[0] - together[1]).abs().max() > 0.05
    assert (tmp_path / "seed_00000003.png").exists()


def test_seeded_noise_is_the_starting_noise(model, tmp_path: Path) -> None:
    """Known error 9 of the reference texts: the seeded x_T must be the one the sampler uses."""
    sampler = ddim(model)
    gen = ImageGenerator(model, sampler, tmp_path)
    images = gen.generate_with_seeds([5, 6], 10, progress=False)
    for seed, image in zip([5, 6], images, strict=True):
        x_T = torch.randn(SHAPE, generator=torch.Generator().manual_seed(seed))[None]
        by_hand = sampler.sample((1, *SHAPE), 10, x_T=x_T, progress=False)
        assert torch.allclose(image, by_hand[0], atol=1e-5)


def test_generate_batch_is_independent_of_batch_size(model, tmp_path: Path) -> None:
    sampler = ddpm(model)
    a = ImageGenerator(model, sampler, tmp_path / "a").generate_batch(
        8, batch_size=3, num_steps=20, seed=10, progress=False, return_images=True
    )
    b = ImageGenerator(model, sampler, tmp_path / "b").generate_batch(
        8, batch_size=8, num_steps=20, seed=10, progress=False
    )
    assert b.images is None  # nothing kept unless asked
    assert len(a.paths) == len(b.paths) == 8
    for pa, pb in zip(a.paths, b.paths, strict=True):
        assert pa.name == pb.name
        assert torch.equal(load_image(pa), load_image(pb))
    # The PNG holds the returned image (8-bit).
    png = load_image(a.paths[7])
    assert png.shape == SHAPE
    assert torch.allclose(png, ((a.images[7] + 1) / 2).clamp(0, 1), atol=1 / 255 + 1e-6)
    # Image i has seed 10 + i, like generate_with_seeds.
    seeded = ImageGenerator(model, sampler, tmp_path / "c").generate_with_seeds(
        [17], 20, progress=False
    )
    assert torch.allclose(seeded[0], a.images[7], atol=1e-5)
    assert a.grid is not None and a.grid.exists() and a.metadata_path.exists()


def test_metadata_reproduces_an_image(model, tmp_path: Path) -> None:
    sampler = ddim(model)
    gen = ImageGenerator(model, sampler, tmp_path)
    result = gen.generate_batch(
        5, batch_size=2, num_steps=12, seed=3, eta=0.3, spacing="quadratic", progress=False
    )
    meta = json.loads((tmp_path / "metadata.json").read_text())
    assert meta["sampler"] == {
        "class": "DDIMSampler",
        "module": "toydiff.samplers",
        "options": {"eta": 0.3, "spacing": "quadratic"},
    }
    assert meta["seeds"] == [3, 4, 5, 6, 7] and meta["num_steps"] == 12
    assert meta["model_config"] == model.config.to_dict()
    assert meta["schedule_config"] == model.noise_schedule.config()
    assert meta["versions"]["torch"] == torch.__version__
    assert meta["precision"] == "float32" and meta["batch_size"] == 2
    image = reproduce_image(model, tmp_path / "metadata.json", 3)
    again = save_image(((image + 1) / 2).clamp(0, 1), tmp_path / "again.png")
    assert torch.equal(load_image(again), load_image(result.paths[3]))
    with pytest.raises(ValueError, match="index"):
        reproduce_image(model, tmp_path / "metadata.json", 5)


def test_grid_is_bounded(model, tmp_path: Path) -> None:
    gen = ImageGenerator(model, ddim(model), tmp_path, grid_size=2)
    result = gen.generate_batch(3, batch_size=2, num_steps=5, progress=False, grid_nrow=8)
    grid = load_image(result.grid)
    # Two 5x5 images, one pixel of padding, 8x scaled: 2 * (5 + 1) + 1 = 13 pixels wide.
    assert grid.shape[-1] == 13 * 8 and grid.shape[-2] == 7 * 8


def test_variations_use_the_noised_reference(model, tmp_path: Path) -> None:
    """SDEdit by hand: Eq. 4 to t = round(s (T - 1)) with each variation's eps, then DDIM from t."""
    sampler = ddim(model)
    gen = ImageGenerator(model, sampler, tmp_path)
    ref = _reference()
    out = gen.generate_variations(ref, num_variations=3, noise_strength=0.5, num_steps=20)
    T = len(model.noise_schedule)
    t0 = round(0.5 * (T - 1))
    seq = sampler.timesteps(20)
    timesteps = torch.cat([torch.tensor([t0]), seq[seq < t0]])
    ab = float(model.noise_schedule.alpha_bars[t0])
    eps = torch.stack(
        [torch.randn(SHAPE, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    )
    x_t = math.sqrt(ab) * ref + math.sqrt(1 - ab) * eps
    by_hand = sampler.sample((3, *SHAPE), x_T=x_t, timesteps=timesteps, progress=False)
    assert torch.allclose(out, by_hand, atol=1e-6)
    meta = json.loads((tmp_path / "variations.json").read_text())
    assert meta["start_timestep"] == t0 and meta["timesteps"] == timesteps.tolist()
    assert (tmp_path / "variation_002.png").exists() and (tmp_path / "variations_grid.png").exists()


def test_variations_depend_on_the_reference_and_strength(model, tmp_path: Path) -> None:
    gen = ImageGenerator(model, ddpm(model), tmp_path)
    ref_a, ref_b = _reference(0), _reference(1)

    def distance(ref: torch.Tensor, strength: float) -> float:
        out = gen.generate_variations(ref, 16, strength, num_steps=None, progress=False)
        return float((out - ref).pow(2).mean().sqrt())

    near, far = distance(ref_a, 0.05), distance(ref_a, 1.0)
    assert near < 0.1 < far
    # Same seeds, another reference: other variations, close to that reference instead.
    out_b = gen.generate_variations(ref_b, 16, 0.05, num_steps=None, progress=False)
    assert float((out_b - ref_b).pow(2).mean().sqrt()) < 0.1
    assert float((ref_a - ref_b).pow(2).mean().sqrt()) > 0.3


def test_bad_input(model, tmp_path: Path) -> None:
    sampler = ddim(model)
    gen = ImageGenerator(model, sampler, tmp_path)
    ref = _reference()
    for strength in (0, -0.1, 1.5):
        with pytest.raises(ValueError, match="noise_strength"):
            gen.generate_variations(ref, noise_strength=strength)
    with pytest.raises(ValueError, match="reference"):
        gen.generate_variations(ref[:, :4])
    with pytest.raises(TypeError, match="reference"):
        gen.generate_variations(ref.tolist())
    with pytest.raises(ValueError, match="seeds"):
        gen.generate_with_seeds([])
    with pytest.raises(ValueError, match="seeds"):
        gen.generate_with_seeds([1, -2])
    with pytest.raises(ValueError, match="batch_size"):
        gen.generate_batch(4, batch_size=0)
    with pytest.raises(ValueError, match="generator"):
        gen.generate_batch(4, generator=torch.Generator())
    with pytest.raises(ValueError, match="num_steps"):
        gen.generate_batch(4, num_steps=1000)
    with pytest.raises(ValueError, match="y"):
        gen.generate_batch(4, y=torch.zeros(3, dtype=torch.long))
    other = type(model)(model.config)
    with pytest.raises(ValueError, match="different model"):
        ImageGenerator(other, sampler, tmp_path)
    with pytest.raises(TypeError, match="sample"):
        ImageGenerator(model, object(), tmp_path)


def test_bfloat16_agrees_with_float32(model, tmp_path: Path) -> None:
    sampler = DPMSolverSampler(model, model.noise_schedule.alpha_bars)
    full = ImageGenerator(model, sampler, tmp_path / "f32")
    half = ImageGenerator(model, sampler, tmp_path / "bf16", dtype=torch.bfloat16)
    seeds = list(range(64))
    a = full.generate_with_seeds(seeds, 20, progress=False)
    b = half.generate_with_seeds(seeds, 20, progress=False)
    assert sampler.model is model  # restored after the run
    assert not torch.equal(a, b)  # it really ran in bfloat16
    # bfloat16 keeps 8 bits of mantissa; on [-1, 1] images that is about 1e-2 per pixel.
    assert float((a - b).abs().mean()) < 0.02
    assert float((a - b).abs().max()) < 0.15
    meta = json.loads((tmp_path / "bf16" / "metadata.json").read_text())
    assert meta["precision"] == "bfloat16"


@pytest.mark.slow
def test_compiled_model_matches_eager(model) -> None:
    """The compile path (traced by dynamo; the cheap "eager" backend keeps the test fast)."""
    compiled = InferenceModel(model, compile=True, compile_backend="eager")
    x = torch.randn(6, *SHAPE, generator=torch.Generator().manual_seed(0))
    t_batch = torch.full((6,), 40)
    with torch.no_grad():
        for t in (99, 40, 0):
            assert torch.allclose(compiled.predict_at(x, t), model.predict_at(x, t), atol=1e-6)
        assert torch.allclose(compiled(x, t_batch), model(x, t_batch), atol=1e-6)
    with pytest.raises(ValueError, match="dtype"):
        InferenceModel(model, dtype=torch.float16)


def test_labels_follow_their_images_across_batches(tmp_path: Path) -> None:
    """Per-image labels (and guidance) are sliced with the seeds, so batching changes nothing."""
    from toydiff import NoiseSchedule, ToyDiffuser, ToyDiffuserConfig

    torch.manual_seed(0)
    cond = ToyDiffuser(ToyDiffuserConfig(SHAPE, 32, 20, num_classes=3))
    cond.noise_schedule = NoiseSchedule(20)
    sampler = DDIMSampler(cond, cond.noise_schedule.alpha_bars)
    labels = torch.tensor([0, 2, 1, 2, 0])
    runs = [
        ImageGenerator(cond, sampler, tmp_path / str(bs)).generate_batch(
            5, bs, 8, y=labels, guidance_scale=2.0, progress=False, return_images=True
        )
        for bs in (2, 5)
    ]
    assert torch.allclose(runs[0].images, runs[1].images, atol=1e-5)
    assert runs[0].metadata["labels"] == labels.tolist()
    # The label matters: the same seed with another class gives another image.
    other = ImageGenerator(cond, sampler, tmp_path / "other").generate_with_seeds(
        [1], 8, y=0, guidance_scale=2.0, progress=False
    )
    assert not torch.allclose(other[0], runs[0].images[1], atol=1e-3)


def test_sampler_timesteps_keyword_starts_mid_chain(model) -> None:
    """The samplers' ``timesteps=`` (added for SDEdit) against DDIM Eq. 12 written out by hand."""
    sampler = ddim(model)
    ab = model.noise_schedule.alpha_bars.double()
    x = torch.randn(4, *SHAPE, generator=torch.Generator().manual_seed(1))
    out = sampler.sample(
        x.shape, x_T=x, timesteps=torch.tensor([30, 12]), clip_denoised=False, progress=False
    )
    with torch.no_grad():
        eps = model.predict_at(x, 30).double()
        x0 = (x - (1 - ab[30]).sqrt() * eps) / ab[30].sqrt()
        x12 = ab[12].sqrt() * x0 + (1 - ab[12]).sqrt() * eps  # eta = 0
        eps = model.predict_at(x12.float(), 12).double()
        expected = (x12 - (1 - ab[12]).sqrt() * eps) / ab[12].sqrt()  # last step: to clean data
    assert torch.allclose(out.double(), expected, atol=1e-4)
    full = sampler.sample(x.shape, 10, x_T=x, progress=False)
    explicit = sampler.sample(x.shape, x_T=x, timesteps=sampler.timesteps(10), progress=False)
    assert torch.equal(full, explicit)
    with pytest.raises(ValueError, match="decreasing"):
        sampler.sample(x.shape, x_T=x, timesteps=torch.tensor([12, 30]), progress=False)


def test_noise_strategy_draws_x_T_per_seed(model, tmp_path: Path) -> None:
    from toydiff import NoiseStrategies
    from toydiff.noise import per_sample_generators

    sampler = ddim(model)
    options = {"truncation": 1.0}
    gen = ImageGenerator(model, sampler, tmp_path, noise="truncated_normal", noise_options=options)
    result = gen.generate_batch(3, 2, 10, seed=4, progress=False, return_images=True)
    x_T = NoiseStrategies.truncated_normal(
        (3, *SHAPE), 1.0, generator=per_sample_generators([4, 5, 6])
    )
    assert float(x_T.abs().max()) <= 1.0
    by_hand = sampler.sample((3, *SHAPE), 10, x_T=x_T, progress=False)
    assert torch.allclose(result.images, by_hand, atol=1e-5)
    assert result.metadata["x_T_strategy"] == {"name": "truncated_normal", "options": options}
    image = reproduce_image(model, result.metadata_path, 2)
    assert torch.allclose(image, by_hand[2], atol=1e-5)
    with pytest.raises(ValueError, match="noise must be one of"):
        ImageGenerator(model, sampler, tmp_path, noise="uniform")
