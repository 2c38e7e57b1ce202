"""The layers say what they are: no Wan module id or class name outside the Wan layer, and the
import order import-linter enforces in CI."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "llm_perf_opt"
WAN_LAYER = ("wan2_1", "wan2_2", "reference")
"""The Wan families' declarations and run rules, and the reference harness of the real Wan code."""
WAN_FILES = ("profiling/annotate.py",)
"""Files outside those packages that work on the real Wan modules (they name their classes)."""
WAN_NAMES = re.compile(
    r"""["'](Wan[A-Z]\w*|CausalConv3d|T5Encoder|T5Attention|VisionTransformer)["']"""
    r"""|["'](vae|diffusion|text_encoder|image_encoder)\.[a-z_]+"""
)
"""A Wan class name or module id as a string literal."""


def _outside_the_wan_layer() -> list[Path]:
    return [
        path
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.relative_to(PACKAGE).parts[0] not in WAN_LAYER
        and path.relative_to(PACKAGE).as_posix() not in WAN_FILES
    ]


@pytest.mark.parametrize("path", _outside_the_wan_layer(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_wan_names_outside_the_wan_layer(path: Path) -> None:
    """Model-independent code names no Wan class or module id: it reads them from the family."""
    found = [
        f"{number}: {line.strip()}"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if WAN_NAMES.search(line)
    ]
    assert not found, f"{path.name} names Wan modules:\n" + "\n".join(found)


def test_the_pattern_catches_wan_names() -> None:
    """The check would catch a class name and a module id."""
    assert WAN_NAMES.search('node.class_name == "WanSelfAttention"')
    assert WAN_NAMES.search('seconds["vae.conv1"]')
    assert not WAN_NAMES.search('"diffusion"')
