"""The noise predictor epsilon_theta(x_t, t[, y]): a small MLP over flattened pixels.

The default is the reference texts' two-layer MLP: the timestep index is scaled to ``[0, 1]``,
concatenated to the flattened image, then ``Linear -> ReLU -> Linear``. Two options extend it:

* ``num_classes=K``: a label embedding (``K + 1`` rows; row ``K`` is the null label used for
  classifier-free guidance) is added to the hidden pre-activation;
* ``time_embedding="sinusoidal"`` with ``depth > 1``: a wider network for harder data, with the
  Transformer-style sinusoidal timestep features of the DDPM paper (Sec. 4) instead of a scalar.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from toydiff.schedule import NoiseSchedule
from toydiff.validation import check_image_shape, check_positive_int

TIME_EMBEDDINGS = ("scalar", "sinusoidal")


@dataclass(frozen=True)
class ToyDiffuserConfig:
    """Architecture of a :class:`ToyDiffuser`.

    img_shape: ``(C, H, W)`` of the images it denoises.
    d_model: hidden width.
    max_steps: T, the number of timestep indices it is conditioned on.
    num_classes: K for a class-conditional model (labels ``0..K-1``, null label ``K``), else None.
    time_embedding: ``"scalar"`` (t / (T - 1), concatenated to the pixels) or ``"sinusoidal"``.
    time_embed_dim: number of sinusoidal features (only for ``"sinusoidal"``).
    depth: number of hidden layers (1 is the reference MLP).
    """

    img_shape: tuple[int, ...]
    d_model: int
    max_steps: int
    num_classes: int | None = None
    time_embedding: str = "scalar"
    time_embed_dim: int = 32
    depth: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "img_shape", check_image_shape(tuple(self.img_shape), "img_shape"))
        check_positive_int(self.d_model, "d_model")
        check_positive_int(self.max_steps, "max_steps")
        check_positive_int(self.depth, "depth")
        check_positive_int(self.time_embed_dim, "time_embed_dim")
        if self.num_classes is not None:
            check_positive_int(self.num_classes, "num_classes")
        if self.time_embedding not in TIME_EMBEDDINGS:
            raise ValueError(
                f"time_embedding must be one of {TIME_EMBEDDINGS}, got {self.time_embedding!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["img_shape"] = list(self.img_shape)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ToyDiffuserConfig:
        d = dict(d)
        d["img_shape"] = tuple(d["img_shape"])
        return cls(**d)


def sinusoidal_embedding(t: Tensor, dim: int, max_period: float = 10_000.0) -> Tensor:
    """Transformer positional features of the timestep indices ``t (B,)`` -> ``(B, dim)``."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device) / max(half, 1))
    args = rearrange(t.float(), "b -> b 1") * freqs
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class ToyDiffuser(nn.Module):
    """MLP noise predictor: ``forward(images (B, C, H, W), num_steps (B,), y=None)`` returns the
    predicted noise ``(B, C, H, W)``.

    ``num_steps`` holds 0-based timestep indices. ``noise_schedule`` is attached by
    :func:`toydiff.train` (as in the reference texts) so that :func:`toydiff.sample` can find it.
    """

    noise_schedule: NoiseSchedule | None
    #: :meth:`predict_at` pads the output layer to a multiple of this many columns (16 float32
    #: numbers fill one AVX-512 register) for batches of at least ``PAD_MIN_ROWS`` rows.
    PAD_MULTIPLE = 16
    PAD_MIN_ROWS = 1024

    def __init__(self, config: ToyDiffuserConfig) -> None:
        super().__init__()
        if not isinstance(config, ToyDiffuserConfig):
            raise TypeError(f"config must be a ToyDiffuserConfig, got {type(config).__name__}")
        self.config = config
        self.img_shape = config.img_shape
        self.max_steps = config.max_steps
        self.num_pixels = math.prod(config.img_shape)
        self.noise_schedule = None
        d = config.d_model
        scalar_time = config.time_embedding == "scalar"
        # Layer 1 sees [t / (T - 1), pixels] (scalar time) or the pixels alone (sinusoidal time).
        self.inp = nn.Linear(self.num_pixels + (1 if scalar_time else 0), d)
        self.time_mlp = (
            None if scalar_time else nn.Linear(config.time_embed_dim, d)
        )  # sinusoidal features -> hidden pre-activation
        self.label_emb = (
            None if config.num_classes is None else nn.Embedding(config.num_classes + 1, d)
        )
        self.hidden = nn.ModuleList(nn.Linear(d, d) for _ in range(config.depth - 1))
        self.out = nn.Linear(d, self.num_pixels)

    @property
    def is_conditional(self) -> bool:
        return self.config.num_classes is not None

    @property
    def null_label(self) -> int | None:
        """The label meaning "no class" (classifier-free guidance); ``num_classes``."""
        return self.config.num_classes

    def scale_time(self, t: Tensor) -> Tensor:
        """Timestep indices ``(B,)`` to ``[0, 1]``: ``t / (T - 1)``."""
        return t.float() / max(self.max_steps - 1, 1)

    def _check_inputs(self, images: Tensor, num_steps: Tensor, y: Tensor | None) -> None:
        if not isinstance(images, Tensor) or not images.is_floating_point():
            raise TypeError("images must be a floating-point tensor (B, C, H, W)")
        if tuple(images.shape[1:]) != tuple(self.img_shape):
            raise ValueError(
                f"images must have shape (B, {', '.join(map(str, self.img_shape))}), "
                f"got {tuple(images.shape)}"
            )
        B = images.shape[0]
        if not isinstance(num_steps, Tensor) or num_steps.shape != (B,):
            raise ValueError(f"num_steps must be a tensor of {B} timestep indices, shape ({B},)")
        if num_steps.is_floating_point():
            raise TypeError(f"num_steps must hold integer timestep indices, got {num_steps.dtype}")
        if B and (int(num_steps.min()) < 0 or int(num_steps.max()) >= self.max_steps):
            raise ValueError(f"num_steps must hold timestep indices in [0, {self.max_steps - 1}]")
        if y is not None:
            if self.label_emb is None:
                raise ValueError("y was given but the model is unconditional (num_classes=None)")
            if not isinstance(y, Tensor) or y.shape != (B,) or y.is_floating_point():
                raise ValueError(f"y must be a LongTensor of {B} class labels, shape ({B},)")
            if B and (int(y.min()) < 0 or int(y.max()) > self.config.num_classes):
                raise ValueError(
                    f"y must hold labels in [0, {self.config.num_classes}] "
                    f"({self.config.num_classes} is the null label)"
                )

    def forward(self, images: Tensor, num_steps: Tensor, y: Tensor | None = None) -> Tensor:
        self._check_inputs(images, num_steps, y)
        return self.predict(images, num_steps, y)

    def predict(self, images: Tensor, t: Tensor, y: Tensor | None = None) -> Tensor:
        """``forward`` without the argument checks (for loops that have checked them once)."""
        x = rearrange(images, "b c h w -> b (c h w)")
        if self.time_mlp is None:
            h = self.inp(torch.cat([rearrange(self.scale_time(t), "b -> b 1"), x], dim=-1))
        else:
            h = self.inp(x) + self.time_mlp(sinusoidal_embedding(t, self.config.time_embed_dim))
        if self.label_emb is not None:
            if y is None:
                y = torch.full_like(t, self.null_label)
            h = h + self.label_emb(y)
        h = torch.relu(h)
        for layer in self.hidden:
            h = torch.relu(layer(h))
        out = self.out(h)
        C, H, W = self.img_shape
        return rearrange(out, "b (c h w) -> b c h w", c=C, h=H, w=W)

    def hidden_bias(self, t: int, y: Tensor | None = None) -> Tensor:
        """The part of layer 1's pre-activation that depends only on ``t`` (and ``y``).

        ``(d_model,)``, or ``(B, d_model)`` with labels. Samplers call it once per step and reuse it
        for the whole batch, which saves a concatenation and a ``(B,)`` timestep tensor per step.
        """
        if self.time_mlp is None:
            scaled_t = t / max(self.max_steps - 1, 1)
            bias = torch.add(self.inp.bias, self.inp.weight[:, 0], alpha=scaled_t)
        else:
            t_vec = torch.tensor([t], device=self.inp.weight.device)
            emb = sinusoidal_embedding(t_vec, self.config.time_embed_dim)
            bias = self.inp.bias + self.time_mlp(emb)[0]
        if self.label_emb is not None:
            if y is None:
                bias = bias + self.label_emb.weight[self.null_label]
            else:
                bias = bias + self.label_emb(y)
        return bias

    def output_columns(self, batch: int) -> int:
        """Width of :meth:`predict_at`'s output matrix for a batch of ``batch`` rows: ``C * H * W``,
        padded up to a multiple of ``PAD_MULTIPLE`` from ``PAD_MIN_ROWS`` rows on."""
        if batch < self.PAD_MIN_ROWS:
            return self.num_pixels
        return self.num_pixels + (-self.num_pixels % self.PAD_MULTIPLE)

    def predict_at(
        self, x: Tensor, t: int, y: Tensor | None = None, *, out: Tensor | None = None
    ) -> Tensor:
        """Noise prediction for a whole batch at one timestep index ``t`` (the sampler's hot path).

        Same result as ``forward(x, full((B,), t), y)``, with one fused ``addmm`` per layer. The
        output layer writes a ``(B, W)`` matrix, ``W = output_columns(B)``, and the result is a
        view of its first ``C * H * W`` columns: for batches of at least ``PAD_MIN_ROWS`` the
        weight gets zero rows up to a multiple of ``PAD_MULTIPLE``, because a 75-column output is
        an awkward shape for the CPU's matrix kernels (at 10,000 samples the 80-column product
        takes about 2.7 ms instead of 4.2 ms). ``out``: a ``(B, W)`` matrix (``W >= C * H * W``)
        to write into instead, so that the blocks of a batch computed apart share one buffer.
        """
        B, P = x.shape[0], self.num_pixels
        if out is not None and (out.ndim != 2 or out.shape[0] != B or out.shape[1] < P):
            raise ValueError(f"out must be a ({B}, W) matrix with W >= {P}, got {tuple(out.shape)}")
        flat = x.reshape(B, -1)
        w_pixels = self.inp.weight if self.time_mlp is not None else self.inp.weight[:, 1:]
        h = torch.addmm(self.hidden_bias(t, y), flat, w_pixels.t()).relu_()
        for layer in self.hidden:
            h = torch.addmm(layer.bias, h, layer.weight.t()).relu_()
        pad = (out.shape[1] if out is not None else self.output_columns(B)) - P
        weight, bias = self.out.weight, self.out.bias
        if pad:
            weight, bias = F.pad(weight, (0, 0, 0, pad)), F.pad(bias, (0, pad))
        result = torch.addmm(bias, h, weight.t(), out=out)
        return result[:, :P].view(x.shape)
