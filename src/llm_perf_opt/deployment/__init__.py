"""How a model runs on devices: one :class:`~.value.Deployment` value, the schedule mechanism a model
family fills, memory read off the tree, the one compiled time-and-memory engine, and sizing.

Model-independent: a family's run rules (``llm_perf_opt.wan2_1.run``) implement
:class:`~.value.ModelFamily`; the families are listed in ``llm_perf_opt.models``.
"""

from __future__ import annotations

from llm_perf_opt.deployment.engine import RunExpressions, RunModel, run_expressions, run_model
from llm_perf_opt.deployment.value import OFFLOADS, SINGLE_GPU, Deployment, ModelFamily, Overlap, Parallelism

__all__ = [
    "OFFLOADS",
    "SINGLE_GPU",
    "Deployment",
    "ModelFamily",
    "Overlap",
    "Parallelism",
    "RunExpressions",
    "RunModel",
    "run_expressions",
    "run_model",
]
