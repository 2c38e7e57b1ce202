"""The shipped variant records against the official configs and the diffusers conversion script."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import attrs
import pytest

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.wan2_1.variants import VARIANTS, WanVariant, get_variant

SHARED: dict[str, Any] = {
    "freq_dim": 256,
    "out_dim": 16,
    "text_dim": 4096,
    "text_len": 512,
    "patch_size": (1, 2, 2),
    "window_size": (-1, -1),
    "eps": 1e-6,
    "qk_norm": True,
    "cross_attn_norm": True,
    "vae_stride": (4, 8, 8),
    "z_dim": 16,
    "head_dim": 128,
}
"""Settings every Wan2.1 variant shares (wan/configs/shared_config.py, wan_*.py, wan/modules/model.py)."""

SIZE_1_3B: dict[str, Any] = {
    "dim": 1536,
    "ffn_dim": 8960,
    "num_heads": 12,
    "num_layers": 30,
    "supported_sizes": ("480*832", "832*480"),
    "frame_sizes": ((480, 832), (832, 480)),
}
SIZE_14B: dict[str, Any] = {
    "dim": 5120,
    "ffn_dim": 13824,
    "num_heads": 40,
    "num_layers": 40,
    "supported_sizes": ("720*1280", "1280*720", "480*832", "832*480"),
    "frame_sizes": ((720, 1280), (1280, 720), (480, 832), (832, 480)),
}
NO_IMAGE: dict[str, Any] = {
    "in_dim": 16,
    "num_images": 0,
    "image_tokens_per_image": None,
    "image_dim": None,
    "image_tokens": 0,
}
ONE_IMAGE: dict[str, Any] = {
    "in_dim": 36,
    "num_images": 1,
    "image_tokens_per_image": 257,
    "image_dim": 1280,
    "image_tokens": 257,
}
TWO_IMAGES: dict[str, Any] = {
    "in_dim": 36,
    "num_images": 2,
    "image_tokens_per_image": 257,
    "image_dim": 1280,
    "image_tokens": 514,
}

EXPECTED: dict[str, dict[str, Any]] = {
    "t2v-1.3b": {
        "model_id": "wan2.1-t2v-1.3b",
        "official_task": "t2v-1.3B",
        "model_type": "t2v",
        "checkpoint": "Wan-AI/Wan2.1-T2V-1.3B",
        **SIZE_1_3B,
        **NO_IMAGE,
    },
    "t2v-14b": {
        "model_id": "wan2.1-t2v-14b",
        "official_task": "t2v-14B",
        "model_type": "t2v",
        "checkpoint": "Wan-AI/Wan2.1-T2V-14B",
        **SIZE_14B,
        **NO_IMAGE,
    },
    "i2v-14b-480p": {
        "model_id": "wan2.1-i2v-14b-480p",
        "official_task": "i2v-14B",
        "model_type": "i2v",
        "checkpoint": "Wan-AI/Wan2.1-I2V-14B-480P",
        **SIZE_14B,
        **ONE_IMAGE,
    },
    "i2v-14b-720p": {
        "model_id": "wan2.1-i2v-14b-720p",
        "official_task": "i2v-14B",
        "model_type": "i2v",
        "checkpoint": "Wan-AI/Wan2.1-I2V-14B-720P",
        **SIZE_14B,
        **ONE_IMAGE,
    },
    "flf2v-14b": {
        "model_id": "wan2.1-flf2v-14b",
        "official_task": "flf2v-14B",
        "model_type": "flf2v",
        "checkpoint": "Wan-AI/Wan2.1-FLF2V-14B-720P",
        **SIZE_14B,
        **TWO_IMAGES,
    },
}
"""The official configs ( in_dim 36 and 257 tokens per image from the I2V/FLF2V code)."""

CONFIG_DIR = Path(next(iter(VARIANTS.values())).config_path).parent


def test_variants_are_the_public_ones_in_order() -> None:
    """VARIANTS lists the five public DiT variants, smallest first, keyed by model_variant."""
    assert list(VARIANTS) == list(EXPECTED)
    assert all(key == variant.model_variant for key, variant in VARIANTS.items())


@pytest.mark.parametrize("name", list(EXPECTED))
def test_every_value_matches_the_official_config(name: str) -> None:
    """Each record holds exactly the official config values of its variant."""
    variant = VARIANTS[name]
    for field_name, value in {**SHARED, **EXPECTED[name]}.items():
        assert getattr(variant, field_name) == value, field_name


@pytest.mark.parametrize("name", list(EXPECTED))
def test_record_is_the_file(name: str) -> None:
    """The JSON file is the single source: every field of the record equals the file's value."""
    variant = VARIANTS[name]
    data = json.loads(Path(variant.config_path).read_text(encoding="utf-8"))
    record = {key: list(v) if isinstance(v, tuple) else v for key, v in attrs.asdict(variant).items()}
    assert record.pop("config_path") == variant.config_path
    assert record == data


@pytest.mark.parametrize("name", list(EXPECTED))
def test_config_path_is_an_absolute_shipped_file(name: str) -> None:
    """config_path is the absolute path of <model_variant>.json inside the package's configs folder."""
    path = Path(VARIANTS[name].config_path)
    assert path.is_absolute()
    assert path.is_file()
    assert path.name == f"{name}.json"
    assert path.parent == CONFIG_DIR
    assert path.parts[-4:-1] == ("llm_perf_opt", "wan2_1", "configs")


def test_every_shipped_config_file_is_a_variant() -> None:
    """No config file ships without being listed in VARIANTS."""
    assert sorted(p.stem for p in CONFIG_DIR.glob("*.json")) == sorted(VARIANTS)


@pytest.mark.parametrize("name", list(EXPECTED))
def test_source_note_cites_the_official_config(name: str) -> None:
    """Every record says where its values come from: the official configs and the diffusers conversion."""
    source = VARIANTS[name].source
    assert "Wan-Video/Wan2.1 wan/configs/" in source
    assert "convert_wan_to_diffusers.py" in source


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("t2v-14b", "t2v-14b"),
        ("wan2.1-t2v-14b", "t2v-14b"),
        ("T2V-1.3B", "t2v-1.3b"),
        ("Wan2.1-I2V-14B-720P", "i2v-14b-720p"),
        (" flf2v-14b ", "flf2v-14b"),
    ],
)
def test_get_variant_accepts_variant_or_model_id(query: str, expected: str) -> None:
    """get_variant finds a variant by model_variant or model_id, ignoring case and surrounding spaces."""
    assert get_variant(query) is VARIANTS[expected]


@pytest.mark.parametrize("query", ["vace-14b", "i2v-14B", "t2v-13b", ""])
def test_unknown_variant_lists_the_known_ones(query: str) -> None:
    """An unknown name is an LlmPerfOptError that quotes it and lists every known variant and id."""
    with pytest.raises(LlmPerfOptError) as raised:
        get_variant(query)
    message = str(raised.value)
    assert message.startswith("model_variant: unknown variant")
    assert repr(query) in message
    for variant in VARIANTS.values():
        assert variant.model_variant in message
        assert variant.model_id in message


@pytest.mark.parametrize(
    ("change", "field_name"),
    [
        ({"dim": 0}, "dim"),
        ({"model_type": "vace"}, "model_type"),
        ({"patch_size": (1, 2)}, "patch_size"),
        ({"qk_norm": 1}, "qk_norm"),
        ({"num_images": 0}, "num_images"),
        ({"image_dim": None}, "image_dim"),
        ({"num_heads": 7}, "dim"),
        ({"config_path": "relative.json"}, "config_path"),
        ({"supported_sizes": ("1280x720",)}, "supported_sizes"),
    ],
)
def test_invalid_record_names_the_field(change: dict[str, Any], field_name: str) -> None:
    """A record with a bad value fails with an LlmPerfOptError naming the field and the value."""
    with pytest.raises(LlmPerfOptError, match=field_name):
        attrs.evolve(VARIANTS["i2v-14b-480p"], **change)


def test_records_are_frozen() -> None:
    """A variant record cannot be changed after loading."""
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        VARIANTS["t2v-14b"].dim = 1  # type: ignore[misc]


def test_variant_type_is_exported() -> None:
    """Every value of VARIANTS is a WanVariant."""
    assert all(isinstance(v, WanVariant) for v in VARIANTS.values())
