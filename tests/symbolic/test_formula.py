"""Formula views: golden simplified strings and LaTeX, equal to the raw expressions; the LaTeX document."""

from __future__ import annotations

import numpy as np
import pytest
import sympy

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.symbolic import METRICS, WORKLOAD_SYMBOLS, formula, latex_document, pretty, to_latex

from .toy import BLOCKS, toy_tree

TOKENS = "(floor((frames - 1)/4) + 1)*floor(height/16)*floor(width/16)"

GOLDEN_STRINGS = [
    # per block call, R = batch·T rows: to_qkv 2·R·64·192 + to_out 2·R·64·64 + sdpa 4·batch·4·T²·16
    # = 256·batch·T·(T + 128); called 2·steps times
    ("toy.denoiser.blocks.0.attn", "flops", f"512*batch*steps*({TOKENS} + 128)*{TOKENS}"),
    # bf16 Linear 64→64 over batch·text_len rows: 2·(64·batch·text_len + 64·64 + 64)
    ("toy.encoder.proj", "bytes_read", "128*(batch*text_len + 65)"),
    # 2·batch·16·64·(1·2·2)·T per call, 2·steps calls
    ("toy.denoiser.patch", "flops", f"16384*batch*steps*{TOKENS}"),
    # 2·batch·16·3·(3·3)·(8⌊H/8⌋·8⌊W/8⌋) per frame, frames calls
    ("toy.decoder.frame_conv", "flops", "55296*batch*frames*floor(height/8)*floor(width/8)"),
    # encoder (1000·64 + 64·64 + 64) + patch (64·16·2·2 + 64)
    # + 3 blocks·(norm 2·64 + qkv 64·192 + 192 + out 64·64 + mlp 64·256 + 256 + 256·64 + 64)
    # + frame_conv (3·16·3·3 + 3) = 68,160 + 4,160 + 3·49,792 + 435
    ("toy", "params", "222131"),
]

GOLDEN_LATEX = [
    (
        "toy.encoder.proj",
        "bytes_read",
        r"128 \cdot \left(\mathrm{batch} \cdot \mathrm{text\_len} + 65\right)",
    ),
    (
        "toy.decoder.frame_conv",
        "flops",
        r"55296 \cdot \mathrm{batch} \cdot \mathrm{frames}"
        r" \cdot \left\lfloor{\frac{\mathrm{height}}{8}}\right\rfloor"
        r" \cdot \left\lfloor{\frac{\mathrm{width}}{8}}\right\rfloor",
    ),
]


@pytest.mark.parametrize(("module_id", "metric", "expected"), GOLDEN_STRINGS)
def test_golden_simplified_strings(module_id: str, metric: str, expected: str) -> None:
    """A module's simplified formula prints as the hand-derived expression."""
    assert str(formula(toy_tree(), module_id, metric)) == expected


@pytest.mark.parametrize(("module_id", "metric", "expected"), GOLDEN_LATEX)
def test_golden_latex(module_id: str, metric: str, expected: str) -> None:
    """LaTeX spells the workload symbols out in upright type and floors as ⌊·⌋."""
    assert to_latex(formula(toy_tree(), module_id, metric)) == expected


def test_simplified_equals_raw_for_every_module() -> None:
    """Every simplified formula equals the raw derived expression, symbolically and on sample points."""
    tree = toy_tree()
    rng = np.random.default_rng(0)
    points = [
        dict(
            zip(
                WORKLOAD_SYMBOLS,
                (int(v) for v in rng.integers([1, 1, 1, 1, 1, 0], [9, 242, 2161, 3841, 101, 1025])),
                strict=True,
            )
        )
        for _ in range(5)
    ]
    for node in tree:
        for metric in METRICS:
            raw = getattr(node.aggregate, metric)
            simplified = formula(tree, node.id, metric)
            assert sympy.expand(raw - simplified) == 0, (node.id, metric)
            for point in points:
                assert raw.subs(point) == simplified.subs(point)


def test_pretty_is_multiline_text() -> None:
    """pretty() draws floors and fractions on several lines."""
    text = pretty(formula(toy_tree(), "toy.denoiser.patch", "flops"))
    assert "16384⋅batch⋅steps" in text
    assert "⎣" in text and len(text.splitlines()) == 3


def test_latex_document_shows_each_block_once() -> None:
    """The LaTeX document is standalone and writes a repeated block once as blocks.i."""
    document = latex_document(toy_tree(), metrics=("flops", "params"))
    assert document.startswith(r"\documentclass") and document.endswith("\\end{document}\n")
    assert document.count(r"\begin{align*}") == document.count(r"\end{align*}")
    assert r"\texttt{toy.denoiser.blocks.i.attn.to\_qkv}" in document
    assert "blocks.0" not in document and "blocks.1" not in document
    assert document.count(r"\subsection*") == len(toy_tree()) - (BLOCKS - 1) * 6
    assert r"\text{flops}" in document and r"\text{bytes\_read}" not in document


def test_unknown_metric_is_an_error() -> None:
    """Asking for a metric that does not exist names it and the known ones."""
    with pytest.raises(LlmPerfOptError, match="metric: unknown metric 'flop', expected one of flops"):
        formula(toy_tree(), "toy", "flop")
    with pytest.raises(LlmPerfOptError, match="metrics: unknown metric 'bytes'"):
        latex_document(toy_tree(), metrics=("bytes",))
