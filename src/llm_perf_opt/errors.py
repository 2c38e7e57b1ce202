"""The library's one error type.

Every failure the library reports on purpose is a :class:`LlmPerfOptError` whose message names the
field (as a dotted path where there is one), the bad value and what is accepted, e.g.
``overrides.num_frames: must be ≥ 1, got 0``.
"""

from __future__ import annotations

__all__ = ["LlmPerfOptError"]


class LlmPerfOptError(ValueError):
    """Bad input or a broken declaration, with a message that says what and where."""
