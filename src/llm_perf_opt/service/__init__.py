"""The analytic contract as an HTTP service: a job queue, a persistent store and a web explorer.

Start it with ``llm-perf-opt serve`` (or ``python -m llm_perf_opt.service``) and open the printed
address. Needs the ``service`` extra.
"""

from __future__ import annotations

__all__: list[str] = []
