"""The Wan-VAE as diffusers implements it, measured encoding or decoding, re-keyed onto official ids.

:func:`build_diffusers_vae` makes diffusers' ``AutoencoderKLWan()`` (its defaults are the Wan2.1 VAE)
on the meta device in fp32. ``encode`` and ``decode`` are methods, not ``forward``, so each is
measured through a wrapper module (:class:`VaeEncode`, :class:`VaeDecode`) that holds the VAE as
``vae`` and calls the method in its ``forward``: every module is then keyed under one root, and the
quant convs are keyed by their names instead of their class. The counts include every chunk of the
real chunked loop (a module called once per chunk adds up under one key).

:func:`official_vae_costs` re-keys a measurement onto the official ``WanVAE_`` ids
(:func:`~llm_perf_opt.reference.official_ids.official_vae_id`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any, Final, Literal, cast

import torch
from attrs import frozen
from diffusers import AutoencoderKLWan

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.reference.counting import Measurement, OpCost, exclusive_costs, measure_forward, read_only
from llm_perf_opt.reference.official_ids import VAE_STAGE, OfficialCosts, official_vae_id

__all__ = [
    "VAE_USES",
    "VaeDecode",
    "VaeEncode",
    "VaeUse",
    "VaeWorkload",
    "build_diffusers_vae",
    "measure_vae",
    "official_vae_costs",
    "vae_inputs",
]

VaeUse = Literal["encode", "decode"]
VAE_USES: Final[tuple[VaeUse, ...]] = ("encode", "decode")
"""What a VAE measurement runs: ``AutoencoderKLWan.encode`` or ``.decode``."""

_WRAPPED: Final = "vae"
"""Attribute of the wrappers that holds the VAE; stripped from measured names."""
_SIZE_MULTIPLE: Final = 16
"""Heights and widths the pipelines accept are multiples of this (VAE stride 8 × patch 2)."""
_LATENT_CHANNELS: Final = 16
_VIDEO_CHANNELS: Final = 3
_TEMPORAL_STRIDE: Final = 4
_SPATIAL_STRIDE: Final = 8


def _latent_table(vae: torch.nn.Module) -> torch.Tensor:
    """A ``[1, z_dim, 1, 1, 1]`` fp32 table on the VAE's device (the pipelines' ``latents_mean`` and
    ``1 / latents_std``; only the shape matters for counting)."""
    z_dim = cast(int, cast(Any, vae).config.z_dim)
    device = next(vae.parameters()).device
    return torch.zeros(1, z_dim, 1, 1, 1, dtype=torch.float32, device=device)


class VaeEncode(torch.nn.Module):
    """``vae.encode(video)`` as the image-to-video pipelines call it: the posterior's mode (the mean),
    then ``(mean − latents_mean)·latents_std`` (``WanImageToVideoPipeline.prepare_latents``).

    The two ``[1, z_dim, 1, 1, 1]`` tables are buffers made here, so the pipeline's construction of
    them (``torch.tensor`` of 16 or 48 numbers, a few hundred bytes) is not counted.
    """

    latents_mean: torch.Tensor
    latents_std: torch.Tensor

    def __init__(self, vae: torch.nn.Module) -> None:
        super().__init__()
        self.vae: Any = vae
        self.register_buffer("latents_mean", _latent_table(vae), persistent=False)
        self.register_buffer("latents_std", _latent_table(vae), persistent=False)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        posterior = self.vae.encode(video, return_dict=False)[0]
        return cast(torch.Tensor, (posterior.mode() - self.latents_mean) * self.latents_std)


class VaeDecode(torch.nn.Module):
    """``vae.decode(latents / latents_std + latents_mean)`` as the pipelines call it: the clamped video
    (``WanPipeline.__call__``; the tables as for :class:`VaeEncode`)."""

    latents_mean: torch.Tensor
    latents_std: torch.Tensor

    def __init__(self, vae: torch.nn.Module) -> None:
        super().__init__()
        self.vae: Any = vae
        self.register_buffer("latents_mean", _latent_table(vae), persistent=False)
        self.register_buffer("latents_std", _latent_table(vae), persistent=False)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        latents = latents / self.latents_std + self.latents_mean
        return cast(torch.Tensor, self.vae.decode(latents, return_dict=False)[0])


@frozen(kw_only=True)
class VaeWorkload:
    """One VAE call: encode a video of ``frames`` frames, or decode the latent of such a video."""

    use: VaeUse
    batch: int
    frames: int
    height: int
    width: int

    def validate(self) -> None:
        """Reject what the pipelines would not run; every message names the field and what is accepted."""
        if self.use not in VAE_USES:
            raise LlmPerfOptError(f"use: must be one of {', '.join(VAE_USES)}, got {self.use!r}")
        for name in ("batch", "frames", "height", "width"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise LlmPerfOptError(f"{name}: must be an integer ≥ 1, got {value!r}")
        for name in ("height", "width"):
            value = getattr(self, name)
            if value % _SIZE_MULTIPLE:
                low, high = (
                    value // _SIZE_MULTIPLE * _SIZE_MULTIPLE,
                    (value // _SIZE_MULTIPLE + 1) * _SIZE_MULTIPLE,
                )
                nearest = f"{low} or {high}" if low else f"{high}"
                raise LlmPerfOptError(
                    f"{name}: must be a multiple of {_SIZE_MULTIPLE}, got {value}; nearest: {nearest}"
                )

    def input_shape(self) -> tuple[int, int, int, int, int]:
        """The video ``(B, 3, F, H, W)`` to encode, or the latent ``(B, 16, (F − 1)//4 + 1, H/8, W/8)``
        to decode."""
        if self.use == "encode":
            return self.batch, _VIDEO_CHANNELS, self.frames, self.height, self.width
        latent_frames = (self.frames - 1) // _TEMPORAL_STRIDE + 1
        return (
            self.batch,
            _LATENT_CHANNELS,
            latent_frames,
            self.height // _SPATIAL_STRIDE,
            self.width // _SPATIAL_STRIDE,
        )


def build_diffusers_vae(*, device: str = "meta") -> torch.nn.Module:
    """diffusers' ``AutoencoderKLWan()`` (the Wan2.1 VAE) in fp32, on the meta device, in eval mode.

    On another ``device`` (a small cross-check against real tensors) the constructor allocates and
    initialises the parameters there; their values do not matter for counting.
    """
    construct = cast(Callable[[], torch.nn.Module], AutoencoderKLWan)
    with torch.device(device):
        model = construct()
    return model.eval()


def vae_inputs(workload: VaeWorkload, *, device: str = "meta") -> dict[str, torch.Tensor]:
    """The fp32 tensor the wrapper's forward takes, by argument name (``video`` or ``latents``)."""
    workload.validate()
    name = "video" if workload.use == "encode" else "latents"
    return {name: torch.empty(*workload.input_shape(), dtype=torch.float32, device=device)}


def measure_vae(
    use: VaeUse,
    *,
    batch: int,
    frames: int,
    height: int,
    width: int,
    fused_sdpa: bool = True,
    device: str = "meta",
    model: torch.nn.Module | None = None,
) -> Measurement:
    """Count one diffusers VAE encode or decode (see :mod:`.counting` for the conventions).

    ``model`` replaces the default ``AutoencoderKLWan()`` (a smaller one for real-tensor checks); a
    ``device`` other than ``meta`` runs real tensors.
    """
    workload = VaeWorkload(use=use, batch=batch, frames=frames, height=height, width=width)
    inputs = vae_inputs(workload, device=device)
    vae = build_diffusers_vae(device=device) if model is None else model
    wrapper = VaeEncode(vae) if use == "encode" else VaeDecode(vae)
    return measure_forward(wrapper, inputs, fused_sdpa=fused_sdpa)


def _unwrapped(name: str) -> str | None:
    """A wrapper-relative name as an ``AutoencoderKLWan`` name; ``None`` for the wrapper itself."""
    if name == _WRAPPED:
        return ""
    if name.startswith(_WRAPPED + "."):
        return name[len(_WRAPPED) + 1 :]
    return None


def _nearest(name: str, name_of: Callable[[str], str | None] = official_vae_id) -> str:
    """The official id of a diffusers name, or of its nearest ancestor that has one."""
    while True:
        official = name_of(name)
        if official is not None:
            return official
        name = name.rpartition(".")[0]


def _ancestors(official: str) -> list[str]:
    parts = official.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


def official_vae_costs(
    measurement: Measurement, name_of: Callable[[str], str | None] = official_vae_id
) -> OfficialCosts:
    """Re-key a wrapped VAE measurement onto official ids, each id including all ids below it.

    Every diffusers module's own ops go to its official id (or its nearest mapped ancestor's): the
    wrapper's own ops (the chunk concatenation, the clamp, the posterior) to ``vae``. ``name_of`` maps a
    diffusers name to its official id (the Wan2.1 VAE's table by default).
    """
    classes: dict[str, str] = {}
    for name, cls in measurement.module_classes.items():
        inner = _unwrapped(name)
        official = None if inner is None else name_of(inner)
        if official is not None:
            classes[official] = cls
    by_id: dict[str, dict[str, OpCost]] = defaultdict(dict)
    for name, ops in exclusive_costs(measurement.by_module).items():
        inner = _unwrapped(name)
        official = VAE_STAGE if inner is None else _nearest(inner, name_of)
        for ancestor in _ancestors(official):
            target = by_id[ancestor]
            for op, cost in ops.items():
                target[op] = target.get(op, OpCost()) + cost
    counts: dict[str, int] = defaultdict(int)
    for name, numel in measurement.parameters.items():
        inner = _unwrapped(name)
        if inner is None:
            raise LlmPerfOptError(f"parameter: {name!r} lies outside the wrapped VAE")
        for ancestor in _ancestors(_nearest(inner.rpartition(".")[0], name_of)):
            counts[ancestor] += numel
    return OfficialCosts(
        by_id={official: read_only(ops) for official, ops in by_id.items()},
        parameters=dict(counts),
        classes=classes,
    )
