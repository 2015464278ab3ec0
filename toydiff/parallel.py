"""How toydiff uses a second CPU core: a helper thread next to the loop, one intra-op thread each.

The hot loops are chains of small steps, each a few matrix products plus random draws that must
come from one generator in one order (so that seeds reproduce results). Intra-op threads split
each kernel across cores, which pays off poorly at these sizes; a helper thread that takes whole
pieces of work off the loop pays off better:

* training (:func:`toydiff.train`, default MLP): the helper draws and noises the next epoch
  while this one trains;
* sampling (:class:`LoopHelper`): the helper draws the next step's Gaussian noise (at 10,000
  samples about as costly as the network) and computes the noise prediction for a share of the
  batch's rows, while the loop computes the rest.

While a helper works, the loop's kernels run on one intra-op thread (:func:`one_intra_op_thread`):
two intra-op threads plus a busy helper on two cores made every kernel wait for a core (measured:
training took 2.5 times as long). Benchmarks: ``benchmarks/README.md``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from typing import Protocol, runtime_checkable

import torch
from torch import Tensor

from toydiff.noise import Generators, check_generators, normal

#: ``eps_fn(x, t) -> eps``: the noise prediction for a whole batch at one timestep index.
NoiseFn = Callable[[Tensor, int], Tensor]


@runtime_checkable
class BlockNoiseFn(Protocol):
    """A noise function whose batch can be computed in blocks of rows into one buffer (as
    :class:`toydiff.sampling.ModelNoiseFn` can)."""

    def __call__(self, x: Tensor, t: int) -> Tensor: ...

    def rows(self, start: int, stop: int) -> BlockNoiseFn:
        """The same function for rows ``start:stop`` of the batch."""
        ...

    def buffer(self, shape: Sequence[int]) -> Tensor:
        """A ``(B, W)`` matrix for a batch of ``shape``."""
        ...

    def into(self, x: Tensor, t: int, out: Tensor) -> Tensor:
        """``self(x, t)`` written into ``out`` (rows of a buffer), returned as ``x``'s shape."""
        ...


@contextmanager
def one_intra_op_thread() -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(1)``; the previous setting is restored after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class LoopHelper:
    """A sampler loop's helper thread: it draws the loop's noise and shares its network work.

    A loop calls :meth:`eps` once per step (instead of ``eps_fn(x, t)``) and :meth:`noise` once per
    step that adds noise; ``draws`` is how many times it will call :meth:`noise`.

    For a loop that draws, on a large CPU batch (at least ``MIN_NUMEL`` numbers per draw), a
    helper thread takes, in order, for every step: the noise prediction for the last
    ``HELPER_SHARE`` of the rows (when ``eps_fn`` is a :class:`BlockNoiseFn`, as
    :class:`toydiff.sampling.ModelNoiseFn` is), then the next step's draw. The loop computes the
    other rows meanwhile, so both cores work. Draws come from ``generator`` in the same order as
    drawing inline, so the values are identical; nothing else may draw from ``generator`` while the
    helper is open. Splitting the rows computes each row exactly as the whole batch would on this
    CPU's kernels (tested), so results do not depend on whether a helper runs.

    Small batches, other devices, and loops without draws run inline: a helper would cost more
    than it saves. Use it as a context manager so that an interrupted loop stops the thread.
    """

    #: Below this many numbers per draw, handing work to a thread costs more than it saves.
    MIN_NUMEL = 1 << 16
    #: Share of the rows whose noise prediction the helper computes, next to its draw: the draw
    #: of 10,000 x 75 numbers costs about half a network evaluation, so a quarter of the rows
    #: evens out the two threads.
    HELPER_SHARE = 0.25

    def __init__(
        self,
        eps_fn: NoiseFn,
        shape: Sequence[int],
        draws: int,
        *,
        generator: Generators = None,
        device: str | torch.device = "cpu",
        enabled: bool | None = None,
    ) -> None:
        self.eps_fn = eps_fn
        self.shape = tuple(shape)
        check_generators(generator, self.shape[0])
        self.generator = generator
        self.draws = draws
        self.taken = 0
        if enabled is None:
            large = math.prod(self.shape) >= self.MIN_NUMEL
            enabled = torch.device(device).type == "cpu" and draws > 0 and large
        self.executor: ThreadPoolExecutor | None = None
        if not enabled:
            self.buffers = [torch.empty(self.shape, device=device) for _ in range(min(1, draws))]
            return
        self.threads = ExitStack()
        self.threads.enter_context(one_intra_op_thread())
        # Grad mode is per thread: the helper takes the loop's (no_grad while sampling).
        self.executor = ThreadPoolExecutor(
            max_workers=1,
            thread_name_prefix="toydiff-sampler",
            initializer=torch.set_grad_enabled,
            initargs=(torch.is_grad_enabled(),),
        )
        # Three buffers: the draw the loop holds, the one being filled and the one after it.
        self.buffers = [torch.empty(self.shape, device=device) for _ in range(min(3, draws))]
        self.pending: deque[Future[Tensor]] = deque()
        self.submitted = 0
        self._submit_draw()
        batch = self.shape[0]
        split = round(batch * (1 - self.HELPER_SHARE))
        self.split: int | None = None
        if isinstance(eps_fn, BlockNoiseFn) and 0 < split < batch:
            self.split = split
            # Both blocks write into one buffer: no concatenation, one kernel shape throughout.
            self.out = eps_fn.buffer(self.shape)
            self.eps_all = self.out[:, : math.prod(self.shape[1:])].view(self.shape)
            self.head = eps_fn.rows(0, self.split)
            self.tail = eps_fn.rows(self.split, batch)

    def _submit_draw(self) -> None:
        """Queue the next draw on the helper (threaded mode), at most two ahead of the loop."""
        if self.submitted < self.draws and len(self.pending) < 2:
            buffer = self.buffers[self.submitted % len(self.buffers)]
            self.pending.append(
                self.executor.submit(normal, self.shape, generator=self.generator, out=buffer)
            )
            self.submitted += 1

    def eps(self, x: Tensor, t: int) -> Tensor:
        """``eps_fn(x, t)`` for the whole batch ``x (B, ...)``; valid until the next call."""
        if self.executor is None:
            return self.eps_fn(x, t)
        if self.split is None:
            self._submit_draw()  # drawn while the loop evaluates the network
            return self.eps_fn(x, t)
        a = self.split
        tail = self.executor.submit(self.tail.into, x[a:], t, self.out[a:])
        self._submit_draw()  # queued behind the tail: drawn while the loop finishes the step
        self.head.into(x[:a], t, self.out[:a])
        tail.result()
        return self.eps_all

    def noise(self) -> Tensor:
        """The next draw ``normal(shape, generator)``; valid until the next call."""
        if self.taken >= self.draws:
            raise RuntimeError("LoopHelper: all draws have been taken")
        self.taken += 1
        if self.executor is None:
            return normal(self.shape, generator=self.generator, out=self.buffers[0])
        if not self.pending:  # more noise() than eps() calls so far
            self._submit_draw()
        return self.pending.popleft().result()

    def close(self) -> None:
        """Stop the helper thread (if any) and restore the intra-op thread setting."""
        if self.executor is not None:
            self.executor.shutdown(wait=True, cancel_futures=True)
            self.executor = None
            self.threads.close()

    def __enter__(self) -> LoopHelper:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
