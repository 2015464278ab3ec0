"""A labelled Gaussian-mixture dataset and its exact noise predictor: samplers tested untrained.

Data ``x0 ~ sum_k w_k N(mu_k, s_k^2 I)`` in ``D`` dimensions (2 by default), each mode ``k``
carrying a class label. Under the forward process (DDPM Eq. 4) every mode stays Gaussian:

    x_t | mode k  ~  N(sqrt(alpha_bar_t) mu_k, v_k(t) I),
    v_k(t) = alpha_bar_t s_k^2 + 1 - alpha_bar_t,

so the marginal ``p_t`` is again a mixture, and the noise prediction that minimises the training
loss (Tweedie's formula) is known in closed form:

    eps*(x_t, t) = E[eps | x_t] = -sqrt(1 - alpha_bar_t) grad log p_t(x_t)
                 = sqrt(1 - alpha_bar_t) sum_k r_k(x_t) (x_t - sqrt(alpha_bar_t) mu_k) / v_k(t),

with ``r_k`` the posterior responsibility of mode ``k`` (a softmax, computed with logsumexp).
Conditioning on a label restricts the sum to that class's modes; the null label keeps all of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from einops import rearrange
from torch import Tensor, nn

from toydiff.schedule import check_betas
from toydiff.validation import check_generator, check_positive_int


@dataclass(frozen=True, eq=False)
class GaussianMixture:
    """Modes ``means (K, D)``, ``stds (K,)`` (0 allowed: a point mass), ``weights (K,)`` summing
    to 1 and class ``labels (K,)`` in ``[0, num_classes)``. ``num_classes`` is also the null label.
    """

    means: Tensor
    stds: Tensor
    weights: Tensor
    labels: Tensor
    num_classes: int

    def __post_init__(self) -> None:
        check_positive_int(self.num_classes, "num_classes")
        for name in ("means", "stds", "weights", "labels"):
            if not isinstance(getattr(self, name), Tensor):
                raise TypeError(f"{name} must be a torch.Tensor")
        if self.means.ndim != 2 or not self.means.is_floating_point():
            raise ValueError(f"means must be a float tensor (K, D), got {tuple(self.means.shape)}")
        K = self.means.shape[0]
        if self.stds.shape != (K,) or bool((self.stds < 0).any()):
            raise ValueError(f"stds must be a tensor ({K},) of values >= 0")
        if self.weights.shape != (K,) or bool((self.weights <= 0).any()):
            raise ValueError(f"weights must be a tensor ({K},) of positive values")
        if not math.isclose(float(self.weights.sum()), 1.0, rel_tol=1e-5):
            raise ValueError(f"weights must sum to 1, got {float(self.weights.sum())}")
        if self.labels.shape != (K,) or self.labels.is_floating_point():
            raise ValueError(f"labels must be an integer tensor ({K},)")
        if int(self.labels.min()) < 0 or int(self.labels.max()) >= self.num_classes:
            raise ValueError(f"labels must lie in [0, {self.num_classes - 1}]")

    @classmethod
    def ring(
        cls,
        num_modes: int = 8,
        radius: float = 0.7,
        std: float = 0.05,
        *,
        weights: Tensor | None = None,
        num_classes: int | None = None,
    ) -> GaussianMixture:
        """``num_modes`` modes evenly spaced on a circle; mode ``k`` has label ``k % num_classes``
        (``num_classes`` defaults to ``num_modes``: one class per mode). Uniform weights by default;
        other ``weights`` are normalised."""
        check_positive_int(num_modes, "num_modes")
        num_classes = num_modes if num_classes is None else num_classes
        check_positive_int(num_classes, "num_classes")
        angle = torch.arange(num_modes, dtype=torch.float64) * (2 * math.pi / num_modes)
        means = radius * torch.stack([angle.cos(), angle.sin()], dim=1)
        w = torch.ones(num_modes, dtype=torch.float64) if weights is None else weights.double()
        return cls(
            means=means.float(),
            stds=torch.full((num_modes,), float(std)),
            weights=(w / w.sum()).float(),
            labels=torch.arange(num_modes) % num_classes,
            num_classes=num_classes,
        )

    @classmethod
    def point(cls, x0: Tensor) -> GaussianMixture:
        """A single point mass at ``x0 (D,)`` (one class): every sampler must return ``x0``."""
        if not isinstance(x0, Tensor) or x0.ndim != 1 or not x0.is_floating_point():
            raise ValueError("x0 must be a 1-D float tensor (D,)")
        return cls(
            means=rearrange(x0.float(), "d -> 1 d"),
            stds=torch.zeros(1),
            weights=torch.ones(1),
            labels=torch.zeros(1, dtype=torch.long),
            num_classes=1,
        )

    @property
    def null_label(self) -> int:
        return self.num_classes

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def sample(
        self, n: int, *, y: int | None = None, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Draw ``n`` points: ``(x (n, D), labels (n,))``. With ``y``, only that class's modes
        (their weights renormalised). Draws the modes first, then one ``randn((n, D))``."""
        check_positive_int(n, "n")
        check_generator(generator)
        w = self.weights if y is None else self.weights * (self.labels == self._check_class(y))
        modes = torch.multinomial(w, n, replacement=True, generator=generator)
        noise = torch.randn((n, self.dim), generator=generator)
        x = self.means[modes] + rearrange(self.stds[modes], "n -> n 1") * noise
        return x, self.labels[modes]

    def nearest_mode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """For points ``x (n, D)``: the index of the nearest mean ``(n,)`` and the distance to it
        in units of that mode's std ``(n,)`` (inf for a point mass unless exactly on it)."""
        if not isinstance(x, Tensor) or x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must be a tensor (n, {self.dim})")
        d, k = torch.cdist(x.float(), self.means).min(dim=1)
        return k, d / self.stds[k]

    def _check_class(self, y: int) -> int:
        if isinstance(y, bool) or not isinstance(y, int) or not 0 <= y < self.num_classes:
            raise ValueError(f"y must be a class label in [0, {self.num_classes - 1}], got {y!r}")
        return y


class MixtureNoisePredictor(nn.Module):
    """The optimal noise prediction ``eps*(x_t, t[, y])`` for a :class:`GaussianMixture` under the
    discrete schedule ``betas (T,)``: a drop-in for a trained model, class-conditional like
    ``ToyDiffuser(num_classes=K)`` (``config.num_classes``, ``null_label``).

    ``forward(x (B, D), t (B,), y=None) -> (B, D)``; ``predict_at(x, t: int, y=None)`` is the same
    at one timestep for the whole batch (the samplers' fast path). ``alpha_bar`` is kept in float64;
    the prediction is computed in float32 (``.double()`` the module for float64).
    """

    alpha_bars: Tensor
    means: Tensor
    variances: Tensor
    log_weights: Tensor
    labels: Tensor

    def __init__(self, mixture: GaussianMixture, betas: Tensor) -> None:
        super().__init__()
        if not isinstance(mixture, GaussianMixture):
            raise TypeError(f"mixture must be a GaussianMixture, got {type(mixture).__name__}")
        betas = check_betas(betas).detach().double().cpu()
        self.config = mixture
        self.max_steps = len(betas)
        # The shape of one sample, named as ToyDiffuser's so that Algorithm 2's sample() and the
        # samplers' shape checks treat both models alike.
        self.img_shape = (mixture.dim,)
        self.register_buffer("alpha_bars", torch.cumprod(1 - betas, 0))
        self.register_buffer("means", mixture.means.float())
        self.register_buffer("variances", mixture.stds.float() ** 2)
        self.register_buffer("log_weights", mixture.weights.float().log())
        self.register_buffer("labels", mixture.labels.clone())

    @property
    def null_label(self) -> int:
        return self.config.num_classes

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def _eps(self, x: Tensor, alpha_bar: Tensor, y: Tensor | None) -> Tensor:
        """``alpha_bar``: ``(B, 1)`` or a 0-d tensor; ``x (B, D)``.

        ``|x - a mu_k|^2`` is expanded as ``|x|^2 - 2 a x.mu_k + a^2 |mu_k|^2`` and the score as
        ``x sum_k c_k - a (c @ mu)`` with ``c_k = r_k / v_k``: two ``(B, D) x (D, K)`` matmuls
        instead of a ``(B, K, D)`` difference tensor.
        """
        dtype = self.means.dtype
        xd = x.to(dtype)
        # 1 - alpha_bar is formed in float64: near t = 0 float32 would lose most of its digits.
        one_minus = (1 - alpha_bar).to(dtype)
        alpha_bar = alpha_bar.to(dtype)
        a = alpha_bar.sqrt()
        var = alpha_bar * self.variances + one_minus  # v_k(t): (B, K) or (K,)
        sq = (
            xd.square().sum(-1, keepdim=True)
            - 2 * a * (xd @ self.means.T)
            + alpha_bar * self.means.square().sum(-1)
        )  # |x - a mu_k|^2: (B, K)
        logits = self.log_weights - 0.5 * self.dim * var.log() - 0.5 * sq / var
        if y is not None:
            keep = (rearrange(y, "b -> b 1") == self.labels) | rearrange(
                y == self.null_label, "b -> b 1"
            )
            logits = logits.masked_fill(~keep, -math.inf)
        c = logits.softmax(dim=-1) / var  # responsibilities r_k(x_t) over v_k(t)
        minus_score = xd * c.sum(-1, keepdim=True) - a * (c @ self.means)
        return (one_minus.sqrt() * minus_score).to(x.dtype)

    def _check(self, x: Tensor, y: Tensor | None) -> None:
        if not isinstance(x, Tensor) or not x.is_floating_point():
            raise TypeError("x must be a floating-point tensor (B, D)")
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (B, {self.dim}), got {tuple(x.shape)}")
        if y is not None:
            B = x.shape[0]
            if not isinstance(y, Tensor) or y.shape != (B,) or y.is_floating_point():
                raise ValueError(f"y must be a LongTensor of {B} class labels, shape ({B},)")
            if B and (int(y.min()) < 0 or int(y.max()) > self.null_label):
                raise ValueError(
                    f"y must hold labels in [0, {self.null_label}] "
                    f"({self.null_label} is the null label)"
                )

    def forward(self, x: Tensor, t: Tensor, y: Tensor | None = None) -> Tensor:
        self._check(x, y)
        if not isinstance(t, Tensor) or t.shape != (x.shape[0],) or t.is_floating_point():
            raise ValueError(f"t must be a LongTensor of timestep indices, shape ({x.shape[0]},)")
        if x.shape[0] and (int(t.min()) < 0 or int(t.max()) >= self.max_steps):
            raise ValueError(f"t must hold timestep indices in [0, {self.max_steps - 1}]")
        return self._eps(x, rearrange(self.alpha_bars[t], "b -> b 1"), y)

    def predict_at(self, x: Tensor, t: int, y: Tensor | None = None) -> Tensor:
        """``forward`` at one timestep index ``t`` for the whole batch, without argument checks."""
        return self._eps(x, self.alpha_bars[t], y)
