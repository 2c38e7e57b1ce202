"""Formula views: a module's metric as a simplified expression, as text, as LaTeX, as a document.

LaTeX notation: each workload symbol is written as its name in upright type, e.g.
``\\mathrm{frames}`` and ``\\mathrm{text\\_len}``, so a formula reads without a legend; ``floor`` is
``\\left\\lfloor … \\right\\rfloor``.
"""

from __future__ import annotations

from collections.abc import Iterable

import sympy

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.symbolic.cost import METRICS, simplify_expr
from llm_perf_opt.symbolic.module import ModuleNode, ModuleTree
from llm_perf_opt.symbolic.symbols import WORKLOAD_SYMBOLS

__all__ = ["LATEX_SYMBOL_NAMES", "formula", "latex_document", "pretty", "shown_modules", "to_latex"]

LATEX_SYMBOL_NAMES: dict[sympy.Symbol, str] = {
    symbol: r"\mathrm{" + symbol.name.replace("_", r"\_") + "}" for symbol in WORKLOAD_SYMBOLS
}

# The text of a block index in the LaTeX document, which shows one block of each repetition.
_BLOCK_INDEX = "i"


def formula(tree: ModuleTree, module_id: str, metric: str) -> sympy.Expr:
    """One metric of one module as a simplified expression in the six workload symbols.

    It is the module's ``aggregate`` cost (all its calls in one call of the root), the number the
    evaluator computes.
    """
    if metric not in METRICS:
        raise LlmPerfOptError(f"metric: unknown metric {metric!r}, expected one of {', '.join(METRICS)}")
    return simplify_expr(getattr(tree[module_id].aggregate, metric))


def pretty(expr: sympy.Expr) -> str:
    """Multi-line Unicode text of an expression."""
    return str(sympy.pretty(expr, use_unicode=True))


def to_latex(expr: sympy.Expr) -> str:
    """LaTeX of an expression with the workload symbols spelt out (see :data:`LATEX_SYMBOL_NAMES`)."""
    return str(sympy.latex(expr, symbol_names=LATEX_SYMBOL_NAMES, mul_symbol="dot"))


# Characters that LaTeX text mode treats specially, as they are written in running text.
_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "_": r"\_",
    "&": r"\&",
    "#": r"\#",
    "%": r"\%",
    "$": r"\$",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def _latex_text(text: str) -> str:
    return "".join(_LATEX_ESCAPES.get(char, char) for char in text)


def shown_modules(tree: ModuleTree) -> list[tuple[str, ModuleNode]]:
    """The modules a formula listing shows, in tree order, with their labels: every module, except
    that each repeated block appears once, its index written ``i`` (``blocks.i``), since its blocks
    share one set of formulas."""
    shown: dict[str, str] = {}  # id → label, for the nodes shown (the first block of each repetition)
    listed: list[tuple[str, ModuleNode]] = []
    for node in tree:
        if node.parent_id is None:
            label = node.id
        else:
            parent_label = shown.get(node.parent_id)
            if parent_label is None:  # inside a block that is not shown
                continue
            if tree[node.parent_id].repetition == "for":
                if node.name != "0":
                    continue
                label = f"{parent_label}.{_BLOCK_INDEX}"
            else:
                label = f"{parent_label}.{node.name}"
        shown[node.id] = label
        listed.append((label, node))
    return listed


def latex_document(tree: ModuleTree, metrics: Iterable[str] = METRICS) -> str:
    """A standalone LaTeX document with every module's formulas, one section per module.

    Each repeated block appears once, its index written ``i`` (``blocks.i``): its blocks share one
    set of formulas.
    """
    metrics = tuple(metrics)
    for metric in metrics:
        if metric not in METRICS:
            raise LlmPerfOptError(
                f"metrics: unknown metric {metric!r}, expected some of {', '.join(METRICS)}"
            )
    lines = [
        r"\documentclass[10pt]{article}",
        r"\usepackage[a4paper,landscape,margin=1.5cm]{geometry}",
        r"\usepackage{amsmath}",
        r"\allowdisplaybreaks",
        r"\begin{document}",
        r"\section*{Cost formulas of " + r"\texttt{" + _latex_text(tree.root_id) + "}}",
        r"Per call of the root, all calls of each module included. Symbols: "
        + ", ".join("$" + name + "$" for name in LATEX_SYMBOL_NAMES.values())
        + ".",
    ]
    for label, node in shown_modules(tree):
        title = r"\texttt{" + _latex_text(label) + "} (" + _latex_text(node.class_name) + ")"
        lines.append(r"\subsection*{" + title + "}")
        lines.append(r"\begin{align*}")
        rows = [
            r"\text{" + _latex_text(metric) + "} &= " + to_latex(formula(tree, node.id, metric))
            for metric in metrics
        ]
        lines.append((" \\\\\n").join(rows))
        lines.append(r"\end{align*}")
    lines.append(r"\end{document}")
    return "\n".join(lines) + "\n"
