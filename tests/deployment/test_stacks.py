"""The stack records: every preset loads, cites its sources, and bad data is one clear error."""

from __future__ import annotations

import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from llm_perf_opt.contracts.converter import converter, structure
from llm_perf_opt.deployment.stacks import (
    GEMM_RATE_KEYS,
    KERNEL_FAMILIES,
    KERNEL_FAMILIES_OF,
    STACK_NAMES,
    STACKS,
    Choice,
    Stack,
    get_stack,
    kernel_available,
    kernel_family,
    load_stack,
)
from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.hardware import ACCELERATORS, PRECISIONS

_FOLDER = resources.files("llm_perf_opt.deployment.stacks")
_CITATION = re.compile(r"[\w.-]+\.(py|md|json|cuh|cu|rst)\b|[\w-]+/[\w./-]+|\bv\d+\.\d+|^as for ")


def _data(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(_FOLDER.joinpath(f"{name}.json").read_text("utf-8"))
    return data


def _choices(stack: Stack) -> list[tuple[str, Choice]]:
    found = [(f"attention.{family}", choice) for family, choice in stack.attention.items()]
    for attribute in type(stack).__attrs_attrs__:
        value = getattr(stack, attribute.name)
        if isinstance(value, Choice):
            found.append((attribute.name, value))
    return found


def test_every_preset_ships_and_loads_under_its_own_name() -> None:
    """The package holds one file per preset (and the public records), each loading as its name."""
    files = sorted(p.name for p in _FOLDER.iterdir() if p.name.endswith(".json"))
    assert files == sorted([*(f"{name}.json" for name in STACK_NAMES), "public_records.json"])
    assert tuple(STACKS) == STACK_NAMES
    assert all(STACKS[name].name == name for name in STACK_NAMES)


@pytest.mark.parametrize("name", STACK_NAMES)
def test_every_choice_cites_a_file_page_or_version(name: str) -> None:
    """Every choice of every preset names the file, page or release it was read from."""
    stack = STACKS[name]
    for path, choice in _choices(stack):
        assert _CITATION.search(choice.source), f"{name}.{path}: {choice.source!r}"
    assert _CITATION.search(stack.fused_chains.source)
    assert _CITATION.search(stack.run_defaults.source)


# Facts read from each stack's code, one row per fact (file and revision in the data files).
_FACTS = [
    ("official", lambda s: s.attention_kernel("hopper"), "fa3"),  # wan/modules/attention.py
    ("official", lambda s: s.attention_kernel("ampere"), "fa2"),
    ("official", lambda s: s.offload.default, "model-per-stage"),  # generate.py --offload_model
    ("official", lambda s: s.cfg_execution.default, "two-calls"),
    ("diffusers", lambda s: s.attention_kernel("hopper"), "sdpa"),  # AttentionBackendName.NATIVE
    ("diffusers", lambda s: (s.run_defaults.t2v_steps, s.run_defaults.i2v_steps), (50, 50)),
    ("diffusers-compile", lambda s: s.fusion.default, "torch-compile"),
    ("xdit", lambda s: s.attention_kernel("ampere"), "sdpa-cudnn"),  # cuDNN before FA2
    ("xdit", lambda s: s.attention_kernel("blackwell"), "fa4"),
    ("xdit", lambda s: s.gemm_precision.options[1], "fp8-per-tensor"),  # torchao PerTensor
    ("fastvideo", lambda s: s.text_encoder.default, "cpu"),  # text_encoder_cpu_offload=True
    ("fastvideo", lambda s: s.offload.default, "layerwise-streamed"),  # dit_layerwise_offload=True
    ("fastvideo", lambda s: s.fused_chains.chains, ()),  # "fused" layers are eager PyTorch
    ("fastvideo", lambda s: s.sequence_parallel.default_for(8), "ulysses"),  # sp_size = num_gpus
    ("fastvideo", lambda s: s.offload.default_for(8), "none"),  # layerwise offload is 1-GPU only
    ("lightx2v", lambda s: s.fused_chains.chains, ("modulation", "rmsnorm", "rotary")),
    ("lightx2v", lambda s: s.attention_kernel("ada"), "sage-int8-fp16"),  # Triton path on sm89
    ("sglang-diffusion", lambda s: s.attention_kernel("ampere"), "sgl-fa3"),  # sgl-kernel FA3 on sm80
    ("sglang-diffusion", lambda s: s.attention_kernel("blackwell"), "sdpa-cudnn"),  # dynamic cuDNN
    ("sglang-diffusion", lambda s: s.attention_kernel("blackwell-rtx"), "sdpa"),  # SDPA on sm120
    ("sglang-diffusion", lambda s: (s.cfg_parallel.default, s.cfg_parallel.default_for(2)), ("off", "on")),
    ("sglang-diffusion", lambda s: s.weight_sharding.default_for(8), "fsdp"),  # performance-mode auto
    ("official", lambda s: (s.offload.default_for(1), s.offload.default_for(8)), ("model-per-stage", "none")),
    ("sglang-diffusion", lambda s: s.offload.default, "layerwise-streamed"),  # default for Wan
    ("sglang-diffusion", lambda s: "gate-residual-norm-modulation" in s.fused_chains.chains, True),
    ("diffsynth", lambda s: s.gemm_precision.options, ("bf16",)),  # fp8 storage only
    ("diffsynth", lambda s: "fp8-upcast-bf16" in s.weight_storage.options, True),
    ("diffsynth", lambda s: s.vae_decode.default, "tiled"),  # tiled=True
    ("lightx2v", lambda s: s.run_defaults.distilled_steps, 4),  # step_distill.md: DMD to 4 steps
    ("fastvideo", lambda s: s.run_defaults.distilled_steps, 3),  # FastWan DMD preset
    ("official", lambda s: s.run_defaults.distilled_steps, None),
    ("flashdreams", lambda s: s.attention_kernel("hopper"), "sdpa-cudnn"),
    ("flashdreams", lambda s: s.families, ("hopper", "blackwell")),
]


@pytest.mark.parametrize(("name", "read", "expected"), _FACTS)
def test_presets_hold_the_facts_read_from_their_code(name: str, read: Any, expected: object) -> None:
    """Each preset holds the value its own code or documentation was read to use."""
    assert read(STACKS[name]) == expected


def test_kernel_availability_follows_the_build_targets() -> None:
    """FA3 runs on Hopper only (SGLang's port also on sm80/sm89), FA4 on sm90/sm100, Sage3 on sm120."""
    assert [f for f in KERNEL_FAMILIES if kernel_available("fa3", f)] == ["hopper"]
    assert [f for f in KERNEL_FAMILIES if kernel_available("fa4", f)] == ["hopper", "blackwell"]
    assert [f for f in KERNEL_FAMILIES if kernel_available("sgl-fa3", f)] == ["ampere", "ada", "hopper"]
    assert [f for f in KERNEL_FAMILIES if kernel_available("sage3-fp4", f)] == ["blackwell-rtx"]
    assert not kernel_available("sdpa-cudnn", "cdna3")
    assert not kernel_available("no-such-kernel", "hopper")
    assert all(set(families) <= set(KERNEL_FAMILIES) for families in KERNEL_FAMILIES_OF.values())


def test_every_gemm_precision_names_a_peak_rate_key() -> None:
    """Each GEMM precision maps to a peak-rate key of the accelerator table (int8 is the one new key)."""
    assert set(GEMM_RATE_KEYS.values()) <= {*PRECISIONS, "int8"}


def test_a_stack_round_trips_through_the_converter() -> None:
    """Unstructuring a stack and structuring it again gives the same data."""
    for stack in STACKS.values():
        data = converter.unstructure(stack)
        assert converter.unstructure(structure(data, Stack)) == data


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda d: d["gemm_precision"]["options"].append("fp9"),
            "gemm_precision.options.7: unknown value 'fp9'",
        ),
        (
            lambda d: d["gemm_precision"].update(default="nvfp4", options=["bf16"]),
            "gemm_precision.default: must be one of options (bf16); got 'nvfp4'",
        ),
        (lambda d: d.update(colour="red"), "colour: unknown field; accepted: name, display_name"),
        (
            lambda d: d["attention"]["ampere"]["options"].append("fa3"),
            "attention.ampere.options.3: fa3 does not run on ampere; it runs on hopper",
        ),
        (lambda d: d["attention"].update(volta={}), "attention.volta"),
        (
            lambda d: d["run_defaults"].update(i2v_steps=0),
            "run_defaults.i2v_steps: must be an integer ≥ 1, got 0",
        ),
        (
            lambda d: d["run_defaults"].update(i2v_steps="40"),
            "run_defaults.i2v_steps: must be an integer, got '40'",
        ),
        (lambda d: d.pop("offload"), "offload: required field is missing"),
        (
            lambda d: d["fused_chains"]["chains"].append("softmax"),
            "fused_chains.chains.3: unknown chain 'softmax'",
        ),
        (
            lambda d: d["cfg_parallel"].update(source=""),
            "cfg_parallel.source: must be a non-empty string, got ''",
        ),
        (lambda d: d["offload"]["options"].append("none"), "offload.options: lists 'none' twice"),
    ],
)
def test_bad_stack_data_is_one_error_naming_file_field_and_value(
    tmp_path: Path, edit: Any, message: str
) -> None:
    """A wrong value, type, field or kernel is an error naming the file, the field path and the value."""
    data = _data("lightx2v")
    edit(data)
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(LlmPerfOptError) as raised:
        load_stack(path)
    assert str(raised.value).startswith(f"{path}: ")
    assert message in str(raised.value)


def test_unreadable_or_malformed_files_are_errors(tmp_path: Path) -> None:
    """A missing file and a file that is not JSON are errors naming the path."""
    with pytest.raises(LlmPerfOptError, match=r"cannot read '.*absent\.json'"):
        load_stack(tmp_path / "absent.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{", encoding="utf-8")
    with pytest.raises(LlmPerfOptError, match=r"broken\.json': not valid JSON"):
        load_stack(broken)


def test_a_users_file_loads_like_a_shipped_one(tmp_path: Path) -> None:
    """A file in the shipped schema loads as a stack with the file's values."""
    data = _data("official")
    data["name"] = "my-official"
    path = tmp_path / "mine.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    assert load_stack(path).name == "my-official"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("LightX2V", "lightx2v"),
        ("sglang", "sglang-diffusion"),
        ("SGL_Diffusion", "sglang-diffusion"),
        ("xfuser", "xdit"),
        ("Diffusers Compile", "diffusers-compile"),
        ("DiffSynth-Studio", "diffsynth"),
    ],
)
def test_stacks_are_found_by_common_spellings(name: str, expected: str) -> None:
    """Case, spaces, underscores and the projects' other names find the preset."""
    assert get_stack(name).name == expected


@pytest.mark.parametrize("name", ["tensorrt", "", "   "])
def test_an_unknown_stack_lists_the_known_ones(name: str) -> None:
    """An unknown or empty stack name is an error listing every preset."""
    with pytest.raises(LlmPerfOptError) as raised:
        get_stack(name)
    assert str(raised.value).startswith("stack: ")
    assert str(raised.value).endswith("known: " + ", ".join(STACK_NAMES))


def test_a_family_without_a_kernel_is_an_error_naming_the_supported_ones() -> None:
    """Asking a stack for a family it has no kernel for names the families it has."""
    with pytest.raises(
        LlmPerfOptError, match="flashdreams has no attention kernel for 'ampere'; families: hopper, blackwell"
    ):
        STACKS["flashdreams"].attention_kernel("ampere")


def test_a_choice_rejects_a_default_outside_its_options_and_repeats() -> None:
    """A choice whose default is not among its options, or that repeats an option, is an error."""
    with pytest.raises(LlmPerfOptError, match="default: must be one of options"):
        Choice(default="on", options=("off",), source="x.py")
    with pytest.raises(LlmPerfOptError, match="options: lists 'off' twice"):
        Choice(default="off", options=("off", "off"), source="x.py")
    with pytest.raises(LlmPerfOptError, match="options: must list at least one value"):
        Choice(default="off", options=(), source="x.py")
    with pytest.raises(LlmPerfOptError, match="multi_gpu_default: must be one of options"):
        Choice(default="off", options=("off",), source="x.py", multi_gpu_default="on")


def test_every_shipped_device_maps_to_a_kernel_family() -> None:
    """Shipped devices keep their family as kernel family, except the sm120 RTX 5090 (blackwell-rtx)."""
    families = {name: kernel_family(name, device.family) for name, device in ACCELERATORS.items()}
    assert families["rtx5090"] == "blackwell-rtx"
    assert families["b200"] == families["gb200"] == "blackwell"
    assert families["h100-sxm"] == "hopper" and families["mi300x"] == "cdna3"
    assert kernel_family("rtx-pro-6000-server", "blackwell") == "blackwell-rtx"
    with pytest.raises(LlmPerfOptError, match="family: unknown device family 'volta'"):
        kernel_family("v100", "volta")
