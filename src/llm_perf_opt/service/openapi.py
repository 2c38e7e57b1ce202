"""The served OpenAPI document: the shipped contract with the service's additions merged in.

The contract (``contracts/openapi.yaml``) is taken as it is; ``openapi_service.yaml`` beside this
module adds the operations, responses, query parameters and schemas the service serves beyond it.
The merge only adds: an addition that would change a value the contract states is an error, so
every operation and schema of the contract is served unchanged.
"""

from __future__ import annotations

import copy
import functools
import json
from importlib import resources
from typing import Any

import yaml

from llm_perf_opt.errors import LlmPerfOptError

__all__ = ["contract_document", "merge_additions", "served_document", "served_json"]


def _load(package: str, name: str) -> dict[str, Any]:
    text = resources.files(package).joinpath(name).read_text(encoding="utf-8")
    document = yaml.safe_load(text)
    if not isinstance(document, dict):
        raise LlmPerfOptError(f"{name}: not a YAML mapping")
    return document


def contract_document() -> dict[str, Any]:
    """The shipped contract, as parsed from ``contracts/openapi.yaml``."""
    return _load("llm_perf_opt.contracts", "openapi.yaml")


def merge_additions(base: dict[str, Any], additions: dict[str, Any], where: str = "") -> dict[str, Any]:
    """``base`` with every key of ``additions`` added, recursively; a differing value is an error."""
    merged = copy.deepcopy(base)
    for key, value in additions.items():
        path = f"{where}/{key}"
        if key not in merged:
            merged[key] = copy.deepcopy(value)
        elif isinstance(merged[key], dict) and isinstance(value, dict):
            merged[key] = merge_additions(merged[key], value, path)
        elif merged[key] != value:
            raise LlmPerfOptError(f"openapi: the service's addition at {path} would change the contract")
    return merged


def _choices() -> dict[str, list[str]]:
    from llm_perf_opt.service.compute import catalogue

    choices = catalogue()
    return {
        "variants": [variant["model_variant"] for variant in choices["variants"]],
        "devices": list(choices["devices"]),
        "metrics": list(choices["metrics"]),
    }


def _fill_enums(node: Any, choices: dict[str, list[str]]) -> Any:
    """Replace each ``x-enum-of: NAME`` by ``enum`` of the library's current choices."""
    if isinstance(node, list):
        return [_fill_enums(item, choices) for item in node]
    if not isinstance(node, dict):
        return node
    filled = {key: _fill_enums(value, choices) for key, value in node.items() if key != "x-enum-of"}
    if "x-enum-of" in node:
        filled["enum"] = choices[node["x-enum-of"]]
    return filled


@functools.cache
def served_document() -> dict[str, Any]:
    """The document the server serves at ``/openapi.json``."""
    additions = _fill_enums(_load("llm_perf_opt.service", "openapi_service.yaml"), _choices())
    return merge_additions(contract_document(), additions)


@functools.cache
def served_json() -> bytes:
    """:func:`served_document` as JSON bytes."""
    return json.dumps(served_document(), indent=2, ensure_ascii=False).encode()
