"""The public Wan2.1 diffusion-transformer variants, as data.

Each variant is one JSON file shipped in ``llm_perf_opt/wan2_1/configs/<model_variant>.json``; that file
is the single source of truth for every config value, and its ``source`` field says which official
config (and which diffusers conversion entry) each value comes from. :class:`WanVariant` is the frozen
record read from it; nothing here re-types a config value.

VACE-1.3B / VACE-14B are not listed here: they are the t2v transformers plus a control branch, with their
own records and declarations in :mod:`llm_perf_opt.wan2_1.vace`. The Wan2.2 transformers use this same
record (``family`` ``wan2.2``), read by :mod:`llm_perf_opt.wan2_2.variants`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from attrs import Attribute, field, fields, frozen

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.validation import Validator, flag, integer, one_of, optional_integer

__all__ = [
    "FAMILIES",
    "MODEL_TYPES",
    "VARIANTS",
    "BuiltOnTransformer",
    "WanVariant",
    "config_file",
    "find_named",
    "get_variant",
    "list_as_tuple",
    "load_with_section",
    "non_empty_text",
    "positive_number",
    "read_config",
    "variant_from_mapping",
]

MODEL_TYPES: Final = ("t2v", "i2v", "flf2v", "ti2v")
"""Official ``WanModel.model_type`` values; in Wan2.1, i2v and flf2v use the image cross-attention;
``ti2v`` is Wan2.2's text-image-to-video model."""

FAMILIES: Final = ("wan2.1", "wan2.2")
"""Model families whose transformer is a ``WanModel``."""

_IMAGES_PER_MODEL_TYPE: Final = {"t2v": 0, "i2v": 1, "flf2v": 2}
"""Wan2.1's CLIP conditioning images per model type: none, the first frame, the first and the last
frame. Wan2.2 has no image encoder: its image conditioning goes through the VAE latent only."""

_VARIANT_ORDER: Final = ("t2v-1.3b", "t2v-14b", "i2v-14b-480p", "i2v-14b-720p", "flf2v-14b")
"""Config file stems, in the order :data:`VARIANTS` lists them."""


def _number_in(low: float, high: float) -> Validator:
    def check(_: object, attribute: Attribute[Any], value: object) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float) or not low < value < high:
            raise LlmPerfOptError(f"{attribute.name}: must be a number in ({low}, {high}), got {value!r}")

    return check


def _text(_: object, attribute: Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not value:
        raise LlmPerfOptError(f"{attribute.name}: must be a non-empty string, got {value!r}")


def _int_tuple(length: int, minimum: int) -> Validator:
    def check(_: object, attribute: Attribute[Any], value: object) -> None:
        if not (
            isinstance(value, tuple)
            and len(value) == length
            and all(isinstance(v, int) and not isinstance(v, bool) and v >= minimum for v in value)
        ):
            raise LlmPerfOptError(
                f"{attribute.name}: must be a list of {length} integers ≥ {minimum}, got {value!r}"
            )

    return check


def _sizes(_: object, attribute: Attribute[Any], value: object) -> None:
    if not (
        isinstance(value, tuple)
        and value
        and all(isinstance(v, str) and re.fullmatch(r"[1-9]\d*\*[1-9]\d*", v) for v in value)
    ):
        raise LlmPerfOptError(
            f"{attribute.name}: must be a non-empty list of 'width*height' strings, got {value!r}"
        )


def _absolute_existing_file(_: object, attribute: Attribute[Any], value: object) -> None:
    if not isinstance(value, str) or not Path(value).is_absolute() or not Path(value).is_file():
        raise LlmPerfOptError(
            f"{attribute.name}: must be the absolute path of an existing file, got {value!r}"
        )


def _names(_: object, attribute: Attribute[Any], value: object) -> None:
    if not (isinstance(value, tuple) and all(isinstance(v, str) and v for v in value)):
        raise LlmPerfOptError(f"{attribute.name}: must be a list of profile names, got {value!r}")


def _as_tuple(value: object) -> object:
    return tuple(value) if isinstance(value, list) else value


@frozen(kw_only=True)
class WanVariant:
    """One Wan2.1 diffusion-transformer variant, read from its shipped JSON config file.

    Field names follow the official ``WanModel`` constructor (``wan/modules/model.py``) where one
    exists. Sizes are in elements (channels, tokens), never bytes.
    """

    model_variant: str = field(validator=_text)
    """Short id, e.g. ``t2v-14b``."""
    model_id: str = field(validator=_text)
    """Full id, e.g. ``wan2.1-t2v-14b``."""
    official_task: str = field(validator=_text)
    """Key of the official ``WAN_CONFIGS`` table (``wan/configs/__init__.py``), e.g. ``i2v-14B``."""
    checkpoint: str = field(validator=_text)
    """Hugging Face repository of the official checkpoint."""
    model_type: str = field(validator=one_of(MODEL_TYPES))
    """``t2v``, ``i2v`` or ``flf2v``: selects the cross-attention class and the image embedding."""
    dim: int = field(validator=integer(1))
    """Hidden size D of the transformer."""
    ffn_dim: int = field(validator=integer(1))
    """Inner size of each block's feed-forward network."""
    freq_dim: int = field(validator=integer(2))
    """Size of the sinusoidal timestep embedding."""
    num_heads: int = field(validator=integer(1))
    """Attention heads; ``dim`` must be a multiple of it."""
    num_layers: int = field(validator=integer(1))
    """Transformer blocks."""
    in_dim: int = field(validator=integer(1))
    """Latent channels into ``patch_embedding`` (16, or 36 with the I2V condition channels)."""
    out_dim: int = field(validator=integer(1))
    """Latent channels out of the head."""
    text_dim: int = field(validator=integer(1))
    """Width of the umT5 text embeddings."""
    text_len: int = field(validator=integer(1))
    """Text tokens every prompt is padded to."""
    patch_size: tuple[int, int, int] = field(converter=_as_tuple, validator=_int_tuple(3, 1))
    """3-D patch (t, h, w) of ``patch_embedding``."""
    window_size: tuple[int, int] = field(converter=_as_tuple, validator=_int_tuple(2, -1))
    """Local-attention window; ``(-1, -1)`` is global attention."""
    eps: float = field(validator=_number_in(0.0, 1.0))
    """Epsilon of the block norms."""
    qk_norm: bool = field(validator=flag())
    """RMS norm over the full ``dim`` on queries and keys."""
    cross_attn_norm: bool = field(validator=flag())
    """Affine LayerNorm (``norm3``) before the cross-attention."""
    num_images: int = field(validator=integer(0))
    """Conditioning images encoded by CLIP: 0 (t2v), 1 (i2v) or 2 (flf2v: first and last frame)."""
    image_tokens_per_image: int | None = field(validator=optional_integer(1))
    """CLIP tokens per conditioning image (257 = 1 + 16·16); ``None`` without image conditioning."""
    image_dim: int | None = field(validator=optional_integer(1))
    """Width of the CLIP image tokens (1280); ``None`` without image conditioning."""
    vae_stride: tuple[int, int, int] = field(converter=_as_tuple, validator=_int_tuple(3, 1))
    """VAE compression (t, h, w) from pixels to latents."""
    z_dim: int = field(validator=integer(1))
    """VAE latent channels."""
    supported_sizes: tuple[str, ...] = field(converter=_as_tuple, validator=_sizes)
    """Video sizes the official pipeline accepts for this task, as ``'width*height'`` (``'832*480'``)."""
    source: str = field(validator=_text)
    """Where each value comes from."""
    config_path: str = field(validator=_absolute_existing_file)
    """Absolute path of the JSON file this record was read from."""
    family: str = field(default="wan2.1", validator=one_of(FAMILIES))
    """Model family, ``wan2.1`` or ``wan2.2``."""
    timestep_per_token: tuple[str, ...] = field(default=(), converter=_as_tuple, validator=_names)
    """Implementation profiles that give every video token its own timestep (Wan2.2's official
    ``WanModel`` always expands ``t`` to ``[B, seq_len]``; diffusers does for TI2V-5B's
    ``expand_timesteps``): the time embedding, the modulation tables and the modulated norms then run
    per token instead of per sample. Empty for Wan2.1."""

    def __attrs_post_init__(self) -> None:
        if self.dim % self.num_heads:
            raise LlmPerfOptError(
                f"{self.model_variant}: dim: must be a multiple of num_heads ({self.num_heads}), "
                f"got {self.dim}"
            )
        expected_images = _IMAGES_PER_MODEL_TYPE.get(self.model_type, 0) if self.family == "wan2.1" else 0
        if self.num_images != expected_images:
            raise LlmPerfOptError(
                f"{self.model_variant}: num_images: must be {expected_images} for model_type "
                f"{self.model_type!r}, got {self.num_images}"
            )
        has_images = self.num_images > 0
        image_fields = {"image_tokens_per_image": self.image_tokens_per_image, "image_dim": self.image_dim}
        for name, value in image_fields.items():
            if (value is not None) != has_images:
                accepted = "an integer" if has_images else "null"
                raise LlmPerfOptError(
                    f"{self.model_variant}: {name}: must be {accepted} for model_type "
                    f"{self.model_type!r}, got {value!r}"
                )

    @property
    def head_dim(self) -> int:
        """Channels per attention head, ``dim // num_heads``."""
        return self.dim // self.num_heads

    @property
    def frame_sizes(self) -> tuple[tuple[int, int], ...]:
        """:attr:`supported_sizes` as (width, height) pairs."""
        pairs = (size.split("*") for size in self.supported_sizes)
        return tuple((int(width), int(height)) for width, height in pairs)

    @property
    def image_tokens(self) -> int:
        """Image context tokens in front of the text context: 0, 257 (i2v) or 514 (flf2v)."""
        return self.num_images * (self.image_tokens_per_image or 0)


_JSON_FIELDS: Final = tuple(a.name for a in fields(WanVariant) if a.name != "config_path")


def config_file(package: str, folder: str, stem: str) -> Path:
    """Absolute path of a shipped config file ``<folder>/<stem>.json`` (package data of ``package``)."""
    entry = resources.files(package).joinpath(folder, f"{stem}.json")
    if not isinstance(entry, Path):
        raise LlmPerfOptError(
            f"config_path: the package data {stem}.json must be a file on disk, got {entry!r}"
        )
    return entry.resolve()


def read_config(path: Path) -> Any:
    """The parsed JSON of a config file; unreadable or invalid JSON names the file."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise LlmPerfOptError(f"config_path: cannot read {path} as JSON: {error}") from error


def _load(stem: str) -> WanVariant:
    """Read one config file into a record; every problem names the file and the field."""
    path = config_file("llm_perf_opt.wan2_1", "configs", stem)
    return variant_from_mapping(read_config(path), path, stem)


def load_with_section(package: str, folder: str, stem: str, section: str, record: type[Any]) -> Any:
    """A record built from a config file that holds a transformer's fields plus one ``section``
    object with exactly the record's other fields (``record(transformer=…, **section)``): how the
    VACE and Wan2.2 variants are shipped. Every problem names the file, the section and the field."""
    path = config_file(package, folder, stem)
    data = read_config(path)
    if not isinstance(data, dict) or not isinstance(data.get(section), dict):
        raise LlmPerfOptError(f"{path}: must hold a JSON object with a {section!r} object")
    values = data.pop(section)
    expected = tuple(a.name for a in fields(record) if a.name != "transformer")
    missing = [name for name in expected if name not in values]
    extra = sorted(set(values) - set(expected))
    if missing or extra:
        raise LlmPerfOptError(
            f"{path}: {section}: fields must be exactly {', '.join(expected)}; "
            f"missing {missing}, unknown {extra}"
        )
    transformer = variant_from_mapping(data, path, stem)
    try:
        return record(transformer=transformer, **values)
    except LlmPerfOptError as error:
        raise LlmPerfOptError(f"{path}: {section}: {error}") from error


class BuiltOnTransformer:
    """What a variant record built on a transformer record (VACE, Wan2.2) shares: its ids are the
    transformer's, and its README size (``'width*height'``) must be one the transformer supports."""

    transformer: WanVariant
    default_size: str

    def check_default_size(self) -> None:
        """Raise unless :attr:`default_size` is one of the transformer's supported sizes."""
        if self.default_size not in self.transformer.supported_sizes:
            raise LlmPerfOptError(
                f"{self.model_variant}: default_size: must be one of "
                f"{', '.join(self.transformer.supported_sizes)}, got {self.default_size!r}"
            )

    @property
    def model_variant(self) -> str:
        """Short id, e.g. ``vace-14b`` or ``t2v-a14b``."""
        return self.transformer.model_variant

    @property
    def model_id(self) -> str:
        """Full id, e.g. ``wan2.2-t2v-a14b``."""
        return self.transformer.model_id

    @property
    def default_width_height(self) -> tuple[int, int]:
        """:attr:`default_size` as (width, height)."""
        width, height = self.default_size.split("*")
        return int(width), int(height)


def positive_number(_: object, attribute: Attribute[Any], value: object) -> None:
    """Validator: a number (not a bool) above 0."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise LlmPerfOptError(f"{attribute.name}: must be a positive number, got {value!r}")


def non_empty_text(_: object, attribute: Attribute[Any], value: object) -> None:
    """Validator: a non-empty string."""
    if not isinstance(value, str) or not value:
        raise LlmPerfOptError(f"{attribute.name}: must be a non-empty string, got {value!r}")


def list_as_tuple(value: object) -> object:
    """Converter: a JSON list as a tuple (anything else unchanged, for the validator to judge)."""
    return tuple(value) if isinstance(value, list) else value


def variant_from_mapping(data: object, path: Path, stem: str) -> WanVariant:
    """The record of one parsed config file at ``path`` (whose stem must be the ``model_variant``).

    Every problem names the file and the field; other families' loaders call this on their own files.
    """
    if not isinstance(data, dict):
        raise LlmPerfOptError(f"{path}: must hold a JSON object, got {type(data).__name__}")
    missing = [name for name in _JSON_FIELDS if name not in data]
    extra = sorted(set(data) - set(_JSON_FIELDS))
    if missing or extra:
        raise LlmPerfOptError(
            f"{path}: fields must be exactly {', '.join(_JSON_FIELDS)}; missing {missing}, unknown {extra}"
        )
    try:
        variant = WanVariant(config_path=str(path), **data)
    except LlmPerfOptError as error:
        raise LlmPerfOptError(f"{path}: {error}") from error
    if variant.model_variant != stem:
        raise LlmPerfOptError(
            f"{path}: model_variant: must equal the file name {stem!r}, got {variant.model_variant!r}"
        )
    return variant


VARIANTS: Final[Mapping[str, WanVariant]] = MappingProxyType({stem: _load(stem) for stem in _VARIANT_ORDER})
"""Every known variant, keyed by ``model_variant``, smallest first."""


def get_variant(name: str) -> WanVariant:
    """The variant named by its ``model_variant`` (``t2v-14b``) or ``model_id`` (``wan2.1-t2v-14b``).

    Case is ignored. An unknown name is an :class:`LlmPerfOptError` that lists the known ones.
    """
    variant: WanVariant = find_named(VARIANTS, name, "variant")
    return variant


def find_named(records: Mapping[str, Any], name: str, kind: str) -> Any:
    """The record of ``records`` whose ``model_variant`` or ``model_id`` is ``name`` (case and
    surrounding space ignored); an unknown name is an :class:`LlmPerfOptError` naming ``kind`` and
    listing the known ones. Every family's variant lookup."""
    key = name.strip().lower() if isinstance(name, str) else name
    for record in records.values():
        if key in (record.model_variant, record.model_id):
            return record
    known = ", ".join(f"{r.model_variant} ({r.model_id})" for r in records.values())
    raise LlmPerfOptError(f"model_variant: unknown {kind} {name!r}; known variants: {known}")
