"""Measured against predicted: profiler traces attributed to module ids, compared with a report.

- :mod:`.annotate` (needs torch): name a live model's profiler ranges by official module ids;
- :mod:`.trace`: import a torch.profiler Chrome trace or an Nsight Systems SQLite export and
  attribute its measured work to those ids;
- :mod:`.compare`: measured against a report's predicted times, stored under its ``profile_run_id``;
- :mod:`.calibrate`: what an efficiency fit needs from a trace, and a draft fit;
- :mod:`.cli`: the ``profile`` command.
"""

from llm_perf_opt.profiling.trace import ModuleTiming, TraceProfile, import_trace

__all__ = ["ModuleTiming", "TraceProfile", "import_trace"]
