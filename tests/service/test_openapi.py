"""The served OpenAPI document: the shipped contract unchanged, plus the service's additions."""

from __future__ import annotations

from typing import Any

import pytest

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.service.openapi import contract_document, merge_additions, served_document


def _contains(outer: Any, inner: Any, path: str = "") -> list[str]:
    """Where ``inner`` is not a sub-document of ``outer`` (every key present, every value equal)."""
    if isinstance(inner, dict):
        if not isinstance(outer, dict):
            return [path]
        return [
            p
            for key, value in inner.items()
            for p in _contains(outer.get(key, KeyError), value, f"{path}/{key}")
        ]
    return [] if outer == inner else [path]


def test_the_served_document_contains_every_contract_operation_and_schema_unchanged() -> None:
    """Each path, operation and schema of contracts/openapi.yaml is served with the same content."""
    contract, served = contract_document(), served_document()
    assert set(contract["paths"]) == {
        "/analytic/wan2-1/run",
        "/analytic/wan2-1/{report_id}/summary",
        "/analytic/wan2-1/{report_id}/model",
    }
    assert _contains(served["paths"], contract["paths"]) == []
    assert _contains(served["components"], contract["components"]) == []
    for name, schema in contract["components"]["schemas"].items():
        assert served["components"]["schemas"][name] == schema
    for path, item in contract["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                assert served["paths"][path][method]["responses"][status] == response


def test_the_service_adds_its_reads_and_error_responses() -> None:
    """The extra reads are served operations, and the contract's reads document 404 and 409."""
    served = served_document()
    operations = {op["operationId"] for item in served["paths"].values() for op in item.values()}
    assert {"getWan2_1AnalyticJobStatus", "listWan2_1AnalyticReports", "getHealth"} <= operations
    summary = served["paths"]["/analytic/wan2-1/{report_id}/summary"]["get"]["responses"]
    assert set(summary) == {"200", "404", "409"}
    run = served["paths"]["/analytic/wan2-1/run"]["post"]["responses"]
    assert set(run) == {"202", "413", "422", "503"}


def test_an_addition_may_not_change_the_contract() -> None:
    """Merging a differing value at a key the contract states is an error naming the key."""
    with pytest.raises(LlmPerfOptError, match="/info/title would change the contract"):
        merge_additions(contract_document(), {"info": {"title": "something else"}})


def test_the_served_document_is_a_valid_openapi_3_1_document() -> None:
    """schemathesis loads the served document and finds every operation."""
    schemathesis = pytest.importorskip("schemathesis")
    schema = schemathesis.openapi.from_dict(served_document())
    labels = [result.ok().label for result in schema.get_all_operations()]
    assert labels == [
        "POST /analytic/wan2-1/run",
        "GET /analytic/wan2-1/{report_id}/summary",
        "GET /analytic/wan2-1/{report_id}/model",
        "GET /analytic/wan2-1/{report_id}/status",
        "GET /analytic/wan2-1/reports",
        "GET /analytic/wan2-1/options",
        "GET /analytic/wan2-1/curve",
        "GET /analytic/wan2-1/formula",
        "GET /health",
    ]
