"""``python -m llm_perf_opt.service``: the ``serve`` command on its own."""

from __future__ import annotations

import sys

from llm_perf_opt.service.cli import main

if __name__ == "__main__":
    sys.exit(main())
