"""llm-perf-opt: what Wan2.1 video generation costs, without running it."""

from __future__ import annotations

from llm_perf_opt.errors import LlmPerfOptError

__all__ = ["LlmPerfOptError", "__version__"]

__version__ = "0.1.0"
