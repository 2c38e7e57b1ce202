"""Command line (placeholder until the report issue lands)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``llm-perf-opt`` command."""
    del argv
    print("llm-perf-opt")
    return 0


if __name__ == "__main__":
    sys.exit(main())
