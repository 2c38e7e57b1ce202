"""The analytic-modeling contract: attrs classes 1:1 with the shipped ``openapi.yaml``."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from llm_perf_opt.contracts.converter import (
    CONTRACT_CLASSES,
    from_json,
    structure,
    to_json,
    unstructure,
)
from llm_perf_opt.contracts.models import (
    AnalyticModuleNode,
    AnalyticModuleSummary,
    FieldError,
    ModuleMetricsSnapshot,
    OperatorCategory,
    OperatorMetrics,
    Wan2_1AnalyticAccepted,
    Wan2_1AnalyticModel,
    Wan2_1AnalyticReportSummary,
    Wan2_1AnalyticRequest,
    Wan2_1ModelSpec,
    Wan2_1WorkloadProfile,
)

__all__ = [
    "CONTRACT_CLASSES",
    "AnalyticModuleNode",
    "AnalyticModuleSummary",
    "FieldError",
    "ModuleMetricsSnapshot",
    "OperatorCategory",
    "OperatorMetrics",
    "Wan2_1AnalyticAccepted",
    "Wan2_1AnalyticModel",
    "Wan2_1AnalyticReportSummary",
    "Wan2_1AnalyticRequest",
    "Wan2_1ModelSpec",
    "Wan2_1WorkloadProfile",
    "from_json",
    "openapi_path",
    "structure",
    "to_json",
    "unstructure",
]


def openapi_path() -> Path:
    """Absolute path of the shipped OpenAPI 3.1 document that these classes mirror."""
    return Path(str(resources.files(__package__) / "openapi.yaml")).resolve()
