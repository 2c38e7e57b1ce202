"""MkDocs hooks: docstrings cross-reference with Sphinx roles (``:func:`name```), which the
Markdown renderer leaves as text; the rendered page keeps the code span and drops the role."""

from __future__ import annotations

import re
from typing import Any, Final

SPHINX_ROLE: Final = re.compile(r":(?:func|class|meth|data|attr|mod|exc|obj):(?=<code>)")


def on_page_content(html: str, **_kwargs: Any) -> str:
    """Drop Sphinx role prefixes in front of code spans."""
    return SPHINX_ROLE.sub("", html)
