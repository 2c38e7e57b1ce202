"""The contract classes against the shipped openapi.yaml: same schemas, round trips, clear errors."""

from __future__ import annotations

import copy
import json
import math
from typing import Any

import attrs
import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llm_perf_opt.contracts import (
    CONTRACT_CLASSES,
    FieldError,
    Wan2_1AnalyticRequest,
    Wan2_1WorkloadProfile,
    from_json,
    openapi_path,
    structure,
    to_json,
    unstructure,
)
from llm_perf_opt.errors import LlmPerfOptError

OPENAPI: dict[str, Any] = yaml.safe_load(openapi_path().read_text(encoding="utf-8"))
SCHEMAS: dict[str, Any] = OPENAPI["components"]["schemas"]
CLASSES_BY_NAME = {cls.__name__: cls for cls in CONTRACT_CLASSES}


def _inline(node: Any) -> Any:
    """The schema with every local ``$ref`` replaced by the schema it names (no cycles here)."""
    if isinstance(node, dict):
        if "$ref" in node:
            return _inline(SCHEMAS[node["$ref"].rsplit("/", 1)[-1]])
        return {key: _inline(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(item) for item in node]
    return node


JSON_SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text()
)
FREE_FORM_JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


def _from_schema(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Valid JSON for the subset of JSON Schema the contract uses (types, bounds, enums, patterns)."""
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kinds = schema.get("type", "object")
    if isinstance(kinds, list):
        return st.one_of(*(_from_schema({**schema, "type": kind}) for kind in kinds))
    if kinds == "null":
        return st.none()
    if kinds == "boolean":
        return st.booleans()
    if kinds == "string":
        if schema.get("pattern") == "^/":
            return st.text(min_size=0, max_size=20).map(lambda tail: "/" + tail)
        return st.text(max_size=20)
    if kinds == "integer":
        return st.integers(min_value=schema.get("minimum"), max_value=schema.get("maximum"))
    if kinds == "number":
        return st.floats(
            min_value=schema.get("minimum"),
            max_value=schema.get("maximum"),
            allow_nan=False,
            allow_infinity=False,
        ) | st.integers(min_value=0, max_value=int(schema.get("maximum", 10**6)))
    if kinds == "array":
        return st.lists(_from_schema(schema["items"]), max_size=3)
    properties = schema.get("properties")
    if properties is None:
        return st.dictionaries(st.text(max_size=8), FREE_FORM_JSON, max_size=3)
    required = set(schema.get("required", []))
    return st.fixed_dictionaries(
        {key: _from_schema(sub) for key, sub in properties.items() if key in required},
        optional={key: _from_schema(sub) for key, sub in properties.items() if key not in required},
    )


def _validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(
        {"$ref": f"#/components/schemas/{name}", "components": OPENAPI["components"]}
    )


def test_openapi_document_is_valid_openapi_31_shape() -> None:
    """The shipped document is OpenAPI 3.1 with exactly the contract's three operations."""
    assert OPENAPI["openapi"].startswith("3.1")
    operations = {(method.upper(), path) for path, item in OPENAPI["paths"].items() for method in item}
    assert operations == {
        ("POST", "/analytic/wan2-1/run"),
        ("GET", "/analytic/wan2-1/{report_id}/summary"),
        ("GET", "/analytic/wan2-1/{report_id}/model"),
    }
    for name in SCHEMAS:
        jsonschema.Draft202012Validator.check_schema(SCHEMAS[name])


def test_schema_names_equal_contract_classes() -> None:
    """openapi.yaml holds exactly the 11 schemas, one per attrs class of the same name."""
    assert len(SCHEMAS) == 11
    assert set(SCHEMAS) == set(CLASSES_BY_NAME)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_schema_fields_required_and_defaults_match_class(name: str) -> None:
    """Properties = attrs fields, required = fields without default, schema defaults = attrs defaults."""
    schema, cls = SCHEMAS[name], CLASSES_BY_NAME[name]
    fields = attrs.fields(cls)
    assert list(schema["properties"]) == [f.name for f in fields]
    assert sorted(schema.get("required", [])) == sorted(f.name for f in fields if f.default is attrs.NOTHING)
    assert schema.get("additionalProperties") is False
    for f in fields:
        if f.default is attrs.NOTHING:
            continue
        default = f.default.factory() if isinstance(f.default, attrs.Factory) else f.default  # type: ignore[arg-type]
        prop = schema["properties"][f.name]
        if default is None and "null" not in prop.get("type", []):
            # Optional, not nullable: omitted from JSON when not given, so no schema default.
            assert "default" not in prop
        else:
            assert prop["default"] == default, f"{name}.{f.name}"


@pytest.mark.parametrize("name", sorted(SCHEMAS))
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_round_trip_and_schema_validity(name: str, data: st.DataObject) -> None:
    """Any schema-valid JSON structures into an object that survives object → JSON → object and validates."""
    cls = CLASSES_BY_NAME[name]
    document = data.draw(_from_schema(_inline(SCHEMAS[name])))
    obj = structure(document, cls)
    text = to_json(obj)
    assert from_json(text, cls) == obj
    _validator(name).validate(json.loads(text))
    assert structure(unstructure(obj), cls) == obj


def _request(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "model_id": "wan2.1-t2v-14b",
        "model_variant": "t2v-14b",
        "workload_profile_id": "wan2-1-ci-tiny",
        "overrides": {"num_frames": 81},
    }
    base.update(changes)
    return base


def _snapshot(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "module_id": "diffusion.blocks.0.ffn.0",
        "profile_id": "wan2-1-ci-tiny",
        "calls": 1,
        "total_time_ms": 1.5,
        "total_flops_tflops": 2.0,
        "total_io_tb": 0.1,
        "memory_weights_gb": 0.2,
        "memory_activations_gb": 0.3,
        "memory_kvcache_gb": 0.0,
        "share_of_model_time": 0.25,
        "operator_breakdown": [
            {
                "category_id": "ffn",
                "calls": 1,
                "flops_tflops": 2.0,
                "io_tb": 0.1,
                "share_of_module_flops": 1.0,
            }
        ],
    }
    base.update(changes)
    return base


def _spec(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "model_id": "wan2.1-t2v-1.3b",
        "model_variant": "t2v-1.3b",
        "config_path": "/opt/configs/t2v-1.3b.json",
        "hidden_size": 1536,
        "num_layers": 30,
        "num_attention_heads": 12,
        "head_dim": 128,
        "mlp_intermediate_size": 8960,
        "vae_downsample_factor": 8,
        "patch_size": 2,
        "latent_channels": 16,
    }
    base.update(changes)
    return base


def _without(document: dict[str, Any], key: str) -> dict[str, Any]:
    trimmed = copy.deepcopy(document)
    del trimmed[key]
    return trimmed


BAD_INPUTS = [
    # (class, document, the exact message)
    (Wan2_1AnalyticRequest, _without(_request(), "model_id"), "model_id: required field is missing"),
    (Wan2_1AnalyticRequest, _request(model_id=7), "model_id: must be a string, got 7"),
    (Wan2_1AnalyticRequest, _request(force_rebuild="yes"), "force_rebuild: must be true or false, got 'yes'"),
    (
        Wan2_1AnalyticRequest,
        _request(overrides={"num_frames": 0}),
        "overrides.num_frames: must be ≥ 1, got 0",
    ),
    (
        Wan2_1AnalyticRequest,
        _request(overrides={"text_len": -1}),
        "overrides.text_len: must be ≥ 0, got -1",
    ),
    (
        Wan2_1AnalyticRequest,
        _request(overrides={"height": "480"}),
        "overrides.height: must be an integer ≥ 1, got '480'",
    ),
    (
        Wan2_1AnalyticRequest,
        _request(overrides={"height": 480.5}),
        "overrides.height: must be an integer ≥ 1, got 480.5",
    ),
    (
        Wan2_1AnalyticRequest,
        _request(overrides={"fps": 16}),
        "overrides.fps: unknown override; accepted: batch_size, num_frames, height, width, "
        "num_inference_steps, text_len",
    ),
    (
        Wan2_1AnalyticRequest,
        _request(priority=1),
        "priority: unknown field; accepted: model_id, model_variant, workload_profile_id, overrides, "
        "profile_run_id, force_rebuild",
    ),
    (
        CLASSES_BY_NAME["Wan2_1AnalyticAccepted"],
        {"report_id": "r", "status": "done"},
        "status: must be one of queued, running; got 'done'",
    ),
    (
        CLASSES_BY_NAME["ModuleMetricsSnapshot"],
        _snapshot(total_flops_tflops=math.nan),
        "total_flops_tflops: must be a finite number ≥ 0, got nan",
    ),
    (
        CLASSES_BY_NAME["ModuleMetricsSnapshot"],
        _snapshot(memory_weights_gb=-0.5),
        "memory_weights_gb: must be a finite number ≥ 0, got -0.5",
    ),
    (
        CLASSES_BY_NAME["ModuleMetricsSnapshot"],
        _snapshot(share_of_model_time=1.5),
        "share_of_model_time: must be a finite number ≥ 0 and ≤ 1, got 1.5",
    ),
    (
        CLASSES_BY_NAME["ModuleMetricsSnapshot"],
        _snapshot(calls=True),
        "calls: must be an integer, got True",
    ),
    (
        CLASSES_BY_NAME["ModuleMetricsSnapshot"],
        _snapshot(operator_breakdown=[{"category_id": "ffn", "calls": 1, "flops_tflops": 1.0, "io_tb": 0.0}]),
        "operator_breakdown.0.share_of_module_flops: required field is missing",
    ),
    (
        CLASSES_BY_NAME["Wan2_1ModelSpec"],
        _spec(config_path="configs/t2v-1.3b.json"),
        "config_path: must be an absolute path, got 'configs/t2v-1.3b.json'",
    ),
    (
        CLASSES_BY_NAME["Wan2_1ModelSpec"],
        _spec(num_layers=0),
        "num_layers: must be ≥ 1, got 0",
    ),
    (
        CLASSES_BY_NAME["AnalyticModuleNode"],
        {
            "module_id": "diffusion.blocks",
            "name": "blocks",
            "qualified_class_name": "torch.nn.ModuleList",
            "stage": "transformer",
            "children": [],
            "repetition": "for",
        },
        "stage: must be one of diffusion, text_encoder, vae, other; got 'transformer'",
    ),
]


@pytest.mark.parametrize(("cls", "document", "message"), BAD_INPUTS, ids=[m for _, _, m in BAD_INPUTS])
def test_bad_input_is_one_clear_error(cls: type, document: dict[str, Any], message: str) -> None:
    """Each bad document raises the library error, naming the field, the value and what is accepted."""
    with pytest.raises(LlmPerfOptError) as caught:
        structure(document, cls)
    assert str(caught.value) == message


def test_nested_errors_carry_the_full_path() -> None:
    """An error deep inside a report names its path from the document root."""
    report = {
        "report_id": "r1",
        "model": _spec(),
        "workload": {
            "profile_id": "wan2-1-ci-tiny",
            "description": "tiny",
            "batch_size": 1,
            "num_frames": 4,
            "height": 256,
            "width": 256,
            "num_inference_steps": 1,
            "text_len": 64,
        },
        "modules": [],
        "operator_categories": [],
        "module_metrics": [_snapshot(), _snapshot(memory_kvcache_gb=math.inf)],
    }
    with pytest.raises(LlmPerfOptError, match=r"^module_metrics\.1\.memory_kvcache_gb: must be a finite"):
        structure(report, CLASSES_BY_NAME["Wan2_1AnalyticModel"])


def test_malformed_json_and_non_object_are_clear_errors() -> None:
    """Text that is not JSON, a JSON NaN literal, or a non-object document are errors, not tracebacks."""
    with pytest.raises(LlmPerfOptError, match="not valid JSON"):
        from_json("{", Wan2_1AnalyticRequest)
    with pytest.raises(LlmPerfOptError, match="NaN is not a valid JSON number"):
        from_json('{"total_flops_tflops": NaN}', CLASSES_BY_NAME["ModuleMetricsSnapshot"])
    with pytest.raises(LlmPerfOptError, match="must be a JSON object"):
        structure([1, 2], Wan2_1AnalyticRequest)


def test_direct_construction_validates_too() -> None:
    """Building a class in Python applies the same validators, naming the field."""
    with pytest.raises(FieldError, match=r"^batch_size: must be ≥ 1, got 0$"):
        Wan2_1WorkloadProfile(
            profile_id="p",
            description="d",
            batch_size=0,
            num_frames=1,
            height=16,
            width=16,
            num_inference_steps=1,
            text_len=0,
        )


def test_optional_non_nullable_numbers_are_omitted_not_null() -> None:
    """A summary row without FLOPs or memory leaves the keys out instead of writing null."""
    row = structure(
        {"module_id": "diffusion", "name": "diffusion", "stage": "diffusion", "share_of_model_flops": 1},
        CLASSES_BY_NAME["AnalyticModuleSummary"],
    )
    assert unstructure(row) == {
        "module_id": "diffusion",
        "name": "diffusion",
        "stage": "diffusion",
        "share_of_model_flops": 1.0,
    }
