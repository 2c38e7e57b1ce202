"""The public Wan2.2 variants (T2V-A14B, I2V-A14B, TI2V-5B), as data.

Each variant is one JSON file shipped in ``llm_perf_opt/wan2_2/configs/<model_variant>.json``: the
transformer's fields, read into the same :class:`~llm_perf_opt.wan2_1.variants.WanVariant` record as
Wan2.1 (Wan2.2's ``WanModel`` is the same module tree), and a ``sampling`` object with what the
official ``generate.py`` runs by default (steps, shift, guidance, boundary between the two experts,
frames, fps, size). Every value names its source in the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

from attrs import Attribute, field, frozen

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.validation import Validator, integer, one_of
from llm_perf_opt.wan2_1.variants import (
    BuiltOnTransformer,
    WanVariant,
    find_named,
    list_as_tuple,
    load_with_section,
    non_empty_text,
    positive_number,
)

__all__ = ["EXPERT_NAMES", "VAE_KINDS", "VARIANTS", "Wan22Variant", "get_variant"]

EXPERT_NAMES: Final = ("high_noise_model", "low_noise_model")
"""The official attribute names of the two A14B experts (``wan/text2video.py`` ``WanT2V``)."""

VAE_KINDS: Final = ("wan2.1", "wan2.2")
"""``Wan2.1_VAE.pth`` (4 × 8 × 8, 16 channels) or ``Wan2.2_VAE.pth`` (4 × 16 × 16, 48 channels)."""

_VARIANT_ORDER: Final = ("ti2v-5b", "t2v-a14b", "i2v-a14b")


def _boundary(_: object, attribute: Attribute[Any], value: object) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        raise LlmPerfOptError(f"{attribute.name}: must be a number in (0, 1) or null, got {value!r}")


def _scale_pair(_: object, attribute: Attribute[Any], value: object) -> None:
    if not (
        isinstance(value, tuple)
        and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) and v > 0 for v in value)
    ):
        raise LlmPerfOptError(
            f"{attribute.name}: must be two positive numbers (low noise, high noise), got {value!r}"
        )


def _experts(_: object, attribute: Attribute[Any], value: object) -> None:
    if value is not None and value != EXPERT_NAMES:
        raise LlmPerfOptError(f"{attribute.name}: must be {list(EXPERT_NAMES)} or null, got {value!r}")


def _check(*validators: Validator) -> Validator:
    def check(instance: object, attribute: Attribute[Any], value: object) -> None:
        for validator in validators:
            validator(instance, attribute, value)

    return check


@frozen(kw_only=True)
class Wan22Variant(BuiltOnTransformer):
    """One Wan2.2 variant: its transformer record and its official default sampling.

    The A14B variants run two transformers of the same architecture (:attr:`experts`); the sampler
    uses the high-noise expert while the timestep is ≥ ``boundary · num_train_timesteps`` and the
    low-noise one afterwards (:mod:`.schedule`).
    """

    transformer: WanVariant
    """The diffusion transformer (each expert's, for A14B)."""
    experts: tuple[str, ...] | None = field(converter=list_as_tuple, validator=_experts)
    """``("high_noise_model", "low_noise_model")`` for A14B; ``None`` for one transformer."""
    boundary: float | None = field(validator=_boundary)
    """Switch point, a fraction of ``num_train_timesteps`` (0.875 T2V, 0.900 I2V); ``None`` alone."""
    sample_shift: float = field(validator=positive_number)
    """Flow shift of the sampling schedule."""
    sample_steps: int = field(validator=integer(1))
    """Default denoising steps."""
    sample_guide_scale: tuple[float, float] = field(converter=list_as_tuple, validator=_scale_pair)
    """Guidance scales (low-noise expert, high-noise expert), as the official config orders them."""
    sample_fps: int = field(validator=integer(1))
    """Frames per second of the saved video."""
    frame_num: int = field(validator=integer(1))
    """Default frame count."""
    default_size: str = field(validator=non_empty_text)
    """Size of the README command, ``'width*height'``."""
    vae: str = field(validator=one_of(VAE_KINDS))
    """Which VAE the variant decodes with."""
    num_train_timesteps: int = field(validator=integer(1))
    """Training timesteps the schedule and the boundary are scaled by (1000)."""
    source: str = field(validator=non_empty_text)
    """Where each sampling value comes from."""

    def __attrs_post_init__(self) -> None:
        if (self.experts is None) != (self.boundary is None):
            raise LlmPerfOptError(
                f"{self.model_variant}: boundary: must be set exactly when experts are, "
                f"got experts {self.experts!r} and boundary {self.boundary!r}"
            )
        self.check_default_size()


def _load(stem: str) -> Wan22Variant:
    """Read one config file; every problem names the file and the field."""
    record: Wan22Variant = load_with_section("llm_perf_opt.wan2_2", "configs", stem, "sampling", Wan22Variant)
    return record


VARIANTS: Final[Mapping[str, Wan22Variant]] = MappingProxyType({stem: _load(stem) for stem in _VARIANT_ORDER})
"""Every Wan2.2 variant, keyed by ``model_variant``, smallest first."""


def get_variant(name: str) -> Wan22Variant:
    """The variant named by its ``model_variant`` (``t2v-a14b``) or ``model_id`` (``wan2.2-t2v-a14b``).

    Case is ignored. An unknown name is an :class:`LlmPerfOptError` that lists the known ones.
    """
    variant: Wan22Variant = find_named(VARIANTS, name, "variant")
    return variant
