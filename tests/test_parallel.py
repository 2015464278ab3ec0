"""LoopHelper and one_intra_op_thread: work moved to a helper thread changes no value."""

from __future__ import annotations

import pytest
import torch
from seeding import gen

import toydiff.parallel as parallel
from toydiff import ToyDiffuser, ToyDiffuserConfig
from toydiff.noise import normal, per_sample_generators
from toydiff.parallel import LoopHelper, one_intra_op_thread
from toydiff.sampling import ModelNoiseFn


def _zero_eps(x: torch.Tensor, t: int) -> torch.Tensor:
    return torch.zeros_like(x)


@pytest.mark.parametrize("enabled", [False, True], ids=["inline", "helper-thread"])
def test_draws_equal_sequential_draws(enabled: bool) -> None:
    inline = gen(5)
    expected = [torch.randn(4, 3, generator=inline) for _ in range(6)]
    g = gen(5)
    got = []
    with LoopHelper(_zero_eps, (4, 3), 6, generator=g, enabled=enabled) as helper:
        for _ in range(6):
            helper.eps(torch.zeros(4, 3), 0)
            got.append(helper.noise().clone())
        with pytest.raises(RuntimeError, match="all draws"):
            helper.noise()
    assert all(torch.equal(a, b) for a, b in zip(got, expected, strict=True))
    assert torch.equal(g.get_state(), inline.get_state())  # the generator ends where inline does


def test_draws_without_eps_calls_and_per_sample_generators() -> None:
    seeds = [3, 1, 4]
    inline = per_sample_generators(seeds)
    want = [normal((3, 2), generator=inline) for _ in range(4)]
    gens = per_sample_generators(seeds)
    with LoopHelper(_zero_eps, (3, 2), 4, generator=gens, enabled=True) as helper:
        got = [helper.noise().clone() for _ in range(4)]
    assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))


@pytest.mark.parametrize("batch", [1000, 1200, 10_000])
@pytest.mark.parametrize("guidance", [None, 2.0])
def test_split_noise_prediction_equals_the_whole_batch(batch: int, guidance: float | None) -> None:
    """The rows computed on the helper are bitwise the rows of one whole-batch evaluation, also
    where the head takes the padded output layer and the tail does not."""
    torch.manual_seed(0)
    model = ToyDiffuser(ToyDiffuserConfig((3, 5, 5), 32, 100, num_classes=3)).eval()
    g = gen(1)
    x = torch.randn(batch, 3, 5, 5, generator=g)
    y = torch.randint(0, 3, (batch,), generator=g)
    eps_fn = ModelNoiseFn(model, y, guidance, 3)
    with torch.no_grad(), LoopHelper(eps_fn, x.shape, 1, generator=g, enabled=True) as helper:
        assert helper.split == round(batch * (1 - LoopHelper.HELPER_SHARE))
        split = helper.eps(x, 42)
        whole = eps_fn(x, 42)
    assert torch.equal(split, whole)


def test_small_batches_run_inline_and_threads_are_restored() -> None:
    threads = torch.get_num_threads()
    with LoopHelper(_zero_eps, (4, 3), 5, generator=gen(0)) as small:
        assert small.executor is None
    with LoopHelper(_zero_eps, (LoopHelper.MIN_NUMEL,), 5, generator=gen(0)) as big:
        assert big.executor is not None and torch.get_num_threads() == 1
    assert big.executor is None and torch.get_num_threads() == threads
    with LoopHelper(_zero_eps, (LoopHelper.MIN_NUMEL,), 0) as no_draws:  # DDIM eta=0
        assert no_draws.executor is None
    with one_intra_op_thread():
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == threads


def test_closing_early_stops_the_thread() -> None:
    helper = LoopHelper(_zero_eps, (8,), 1000, generator=gen(0), enabled=True)
    helper.noise()
    executor = helper.executor
    helper.close()
    assert executor is not None and executor._shutdown and helper.executor is None


def test_a_draw_error_reaches_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(*args: object, **kwargs: object) -> None:
        raise RuntimeError("draw failed")

    monkeypatch.setattr(parallel, "normal", failing)
    with (
        LoopHelper(_zero_eps, (2, 2), 3, generator=gen(0), enabled=True) as helper,
        pytest.raises(RuntimeError, match="draw failed"),
    ):
        helper.noise()
