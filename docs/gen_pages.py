"""Pages generated at build time by mkdocs-gen-files: every module's FLOP formula per variant, and
the API reference pages (one per module, rendered from the docstrings by mkdocstrings)."""

from __future__ import annotations

from typing import Final

import mkdocs_gen_files

from llm_perf_opt.symbolic.formula import LATEX_SYMBOL_NAMES, formula, shown_modules, to_latex
from llm_perf_opt.wan2_1.implementation import OFFICIAL
from llm_perf_opt.wan2_1.pipeline import pipeline_tree
from llm_perf_opt.wan2_1.variants import VARIANTS

REFERENCE_MODULES: Final = (
    "llm_perf_opt.errors",
    "llm_perf_opt.symbolic.symbols",
    "llm_perf_opt.symbolic.cost",
    "llm_perf_opt.symbolic.primitives",
    "llm_perf_opt.symbolic.module",
    "llm_perf_opt.symbolic.compiler",
    "llm_perf_opt.symbolic.formula",
    "llm_perf_opt.wan2_1.variants",
    "llm_perf_opt.wan2_1.implementation",
    "llm_perf_opt.wan2_1.workloads",
    "llm_perf_opt.wan2_1.pipeline",
    "llm_perf_opt.wan2_1.evaluate",
    "llm_perf_opt.wan2_1.run",
    "llm_perf_opt.models",
    "llm_perf_opt.hardware.accelerators",
    "llm_perf_opt.hardware.efficiency",
    "llm_perf_opt.hardware.roofline",
    "llm_perf_opt.hardware.collectives",
    "llm_perf_opt.hardware.host",
    "llm_perf_opt.deployment.value",
    "llm_perf_opt.deployment.schedule",
    "llm_perf_opt.deployment.engine",
    "llm_perf_opt.deployment.memory",
    "llm_perf_opt.deployment.sizing",
    "llm_perf_opt.calibration",
    "llm_perf_opt.report.analysis",
    "llm_perf_opt.report.summary",
    "llm_perf_opt.report.compare",
    "llm_perf_opt.report.files",
    "llm_perf_opt.plots",
    "llm_perf_opt.plots.breakdown",
    "llm_perf_opt.plots.scaling",
    "llm_perf_opt.plots.roofline",
    "llm_perf_opt.plots.multi_gpu",
    "llm_perf_opt.plots.deployments",
    "llm_perf_opt.plots.calibration",
    "llm_perf_opt.plots.cli",
    "llm_perf_opt.plots.gallery",
    "llm_perf_opt.plots.defaults",
)


def formula_page(variant_name: str) -> str:
    """Markdown of every shown module's whole-run FLOP formula of one variant."""
    variant = VARIANTS[variant_name]
    tree = pipeline_tree(variant, OFFICIAL, True)
    symbols = ", ".join(f"${name}$" for name in LATEX_SYMBOL_NAMES.values())
    lines = [
        f"# FLOP formulas: {variant.model_id}",
        "",
        "Every module of the whole run (text encoder, image encoder where the task has one, VAE, "
        "diffusion transformer, scheduler), with classifier-free guidance, as the closed form the "
        "evaluators compile: all calls of the module in one run, in FlopCounterMode's convention. "
        f"Symbols: {symbols}. Each repeated block is shown once, its index written `i`.",
        "",
    ]
    for label, node in shown_modules(tree):
        lines += [
            f"### `{label}`",
            "",
            f"{node.class_name}",
            "",
            "$$",
            r"\mathrm{flops} = " + to_latex(formula(tree, node.id, "flops")),
            "$$",
            "",
        ]
    return "\n".join(lines)


def index_page() -> str:
    """Markdown of the formulas' landing page."""
    lines = [
        "# FLOP formulas",
        "",
        "One page per variant, generated from the module declarations when the site is built "
        "(`docs/gen_pages.py`): the same expressions `llm-perf-opt formula` prints and the "
        "evaluators compile. FLOPs do not depend on the implementation profile (bytes do).",
        "",
    ]
    lines += [f"- [{VARIANTS[name].model_id}]({name}.md)" for name in VARIANTS]
    return "\n".join(lines) + "\n"


def main() -> None:
    """Write the generated pages into the site's virtual files."""
    with mkdocs_gen_files.open("formulas/index.md", "w") as page:
        page.write(index_page())
    for name in VARIANTS:
        with mkdocs_gen_files.open(f"formulas/{name}.md", "w") as page:
            page.write(formula_page(name))
    lines = ["# API reference", "", "Generated from the docstrings.", ""]
    for module in REFERENCE_MODULES:
        with mkdocs_gen_files.open(f"reference/{module}.md", "w") as page:
            page.write(f"# `{module}`\n\n::: {module}\n")
        lines.append(f"- [`{module}`]({module}.md)")
    with mkdocs_gen_files.open("reference/index.md", "w") as page:
        page.write("\n".join(lines) + "\n")


main()
