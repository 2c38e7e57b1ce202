"""Compare the analytic diffusion transformer with a reference record, module id by module id.

A reference record is what :mod:`llm_perf_opt.reference` measures on the real implementation
(diffusers' ``WanTransformer3DModel`` under ``FlopCounterMode`` and a byte counter), re-keyed onto
the official ids; the golden files under ``tests/golden/dit`` hold such records, so this comparison
runs without torch as well. It is plain data in, rows out, so it lives with the declarations.

Compared, exactly, as integers:

- FLOPs of every module id the two share; every analytic id must be in the record, and a record id
  the analytic tree lacks must be a parameter-only id (the official ``modulation`` and ``emb_pos``
  parameters, which the analytic tree counts on their owning module);
- parameters of every shared id;
- bytes read and written of every Linear and convolution, and of the fused attention op(s) of every
  attention module, under the ``diffusers`` implementation profile (the one the record measures);
- for the transformer and the image encoder, bytes read and written of every module id
  (``module_bytes``: all the eager ops the module runs, its children's included); for the text
  encoder, of every id outside the attention (:data:`TEXT_ENCODER_EXACT_CLASSES`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import sympy
from attrs import frozen

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.symbolic.cost import Cost, sum_costs
from llm_perf_opt.symbolic.module import Module, Repeated
from llm_perf_opt.wan2_1.dit import declare_dit
from llm_perf_opt.wan2_1.evaluate import (
    IMAGE_ENCODER_PREFIX,
    TEXT_ENCODER_PREFIX,
    VAE_PREFIX,
    DitEvaluation,
    evaluate_dit,
    evaluate_image_encoder,
    evaluate_text_encoder,
    evaluate_vae,
)
from llm_perf_opt.wan2_1.image_encoder import declare_image_encoder
from llm_perf_opt.wan2_1.implementation import DIFFUSERS
from llm_perf_opt.wan2_1.text_encoder import declare_text_encoder
from llm_perf_opt.wan2_1.vae import declare_vae
from llm_perf_opt.wan2_1.variants import WanVariant, get_variant

__all__ = [
    "Comparison",
    "attention_op_costs",
    "compare_image_encoder_with_record",
    "compare_modules",
    "compare_text_encoder_with_record",
    "compare_vae_with_record",
    "compare_with_record",
    "vae_module_bytes",
]

_FUSED_ATTENTION_KEYS = frozenset(
    {
        "_scaled_dot_product_flash_attention",
        "_scaled_dot_product_efficient_attention",
        "_scaled_dot_product_cudnn_attention",
        "_scaled_dot_product_flash_attention_for_cpu",
    }
)
_BYTE_CLASSES = frozenset({"Linear", "Conv3d"})


@frozen
class Comparison:
    """One compared figure: module id, metric, analytic value, reference value."""

    module_id: str
    metric: str
    analytic: int
    reference: int

    @property
    def matches(self) -> bool:
        """Whether the two are equal."""
        return self.analytic == self.reference


def _walk(module: Module | Repeated, module_id: str) -> Iterator[tuple[str, Module]]:
    """Every declared module with its id, repeated blocks expanded."""
    if isinstance(module, Repeated):
        for index in range(module.count):
            yield from _walk(module.template, f"{module_id}.{index}")
        return
    yield module_id, module
    for child in module.children:
        yield from _walk(child, f"{module_id}.{child.name}")


def attention_op_costs(module: Module) -> Cost:
    """The summed cost of a module's own fused-attention ops (the attention core)."""
    return sum_costs(op.cost for op in module.ops if op.primitive in _FUSED_ATTENTION_KEYS)


def _integer(expr: sympy.Expr, values: Mapping[sympy.Symbol, object], where: str) -> int:
    value = sympy.sympify(expr).subs(values)
    if not value.is_Integer:
        raise LlmPerfOptError(f"{where}: expected an integer, got {value}")
    return int(value)


def compare_modules(
    root: Module,
    root_id: str,
    analytic: Mapping[str, Mapping[str, int]],
    values: Mapping[sympy.Symbol, object],
    reference: Mapping[str, Mapping[str, Any]],
    *,
    bytes_checked: bool = True,
    byte_classes: frozenset[str] = _BYTE_CLASSES,
    module_bytes: bool = False,
    module_byte_classes: frozenset[str] | None = None,
) -> list[Comparison]:
    """Compare one component's evaluated metrics with a reference record's ``modules``, id by id.

    ``root`` is the component's declaration (for the attention ops and the byte-compared classes),
    ``analytic`` its exact evaluation at the workload ``values``. Reference entries hold ``flops``,
    ``params``, ``bytes`` ([read, written]) for ``byte_classes`` modules and ``sdpa_bytes`` for
    modules with a fused attention op; with ``module_bytes``, every id's ``module_bytes`` too (only
    the ids of ``module_byte_classes`` when given).
    """
    rows: list[Comparison] = []
    for module_id, metrics in analytic.items():
        entry = reference.get(module_id)
        if entry is None:
            raise LlmPerfOptError(f"{module_id}: analytic module missing from the reference record")
        rows.append(Comparison(module_id, "flops", metrics["flops"], entry["flops"]))
        rows.append(Comparison(module_id, "params", metrics["params"], entry["params"]))
    for module_id, entry in reference.items():
        if module_id not in analytic and entry["flops"] != 0:
            raise LlmPerfOptError(
                f"{module_id}: the reference counts {entry['flops']} FLOPs on an id the analytic model lacks"
            )
    if not bytes_checked:
        return rows
    if module_bytes:
        classes = {module_id: module.class_name for module_id, module in _walk(root, root_id)}
        for module_id, metrics in analytic.items():
            if module_byte_classes is not None and classes.get(module_id) not in module_byte_classes:
                continue
            read, written = reference[module_id]["module_bytes"]
            rows.append(Comparison(module_id, "module_bytes_read", metrics["bytes_read"], read))
            rows.append(Comparison(module_id, "module_bytes_written", metrics["bytes_written"], written))
    for module_id, module in _walk(root, root_id):
        entry = reference[module_id]
        if module.class_name in byte_classes:
            read, written = entry["bytes"]
            rows.append(Comparison(module_id, "bytes_read", analytic[module_id]["bytes_read"], read))
            rows.append(Comparison(module_id, "bytes_written", analytic[module_id]["bytes_written"], written))
        core = attention_op_costs(module)
        if core != Cost():
            read, written = entry["sdpa_bytes"]
            where = f"{module_id}.attention"
            rows.append(
                Comparison(module_id, "sdpa_bytes_read", _integer(core.bytes_read, values, where), read)
            )
            rows.append(
                Comparison(
                    module_id, "sdpa_bytes_written", _integer(core.bytes_written, values, where), written
                )
            )
    return rows


def compare_with_record(
    record: Mapping[str, Any], *, bytes_checked: bool = True, variant: WanVariant | None = None
) -> list[Comparison]:
    """Every comparison of the analytic transformer with one DiT reference record.

    ``bytes_checked=False`` compares FLOPs and parameters only (for batches where diffusers runs the
    image cross-attention projections as an expanded ``bmm``, whose bytes differ from ``addmm``).
    Bytes include every module's whole eager traffic (``module_bytes``). ``variant`` is the
    transformer record of another family (Wan2.2); by default the record's ``variant`` is looked up
    among the Wan2.1 variants.
    """
    if variant is None:
        variant = get_variant(record["variant"])
    load = record["workload"]
    evaluation: DitEvaluation = evaluate_dit(
        variant,
        batch=load["batch"],
        frames=load["frames"],
        height=load["height"],
        width=load["width"],
        text_len=load["text_len"],
        pad_text=False,
        implementation=DIFFUSERS,
    )
    return compare_modules(
        declare_dit(variant, DIFFUSERS),
        "diffusion",
        evaluation.metrics,
        evaluation.workload.subs(),
        record["modules"],
        bytes_checked=bytes_checked,
        module_bytes=True,
    )


_TEXT_ENCODER_BYTE_CLASSES = frozenset({"Linear"})
_IMAGE_ENCODER_BYTE_CLASSES = frozenset({"Linear", "Conv2d"})


def compare_text_encoder_with_record(
    record: Mapping[str, Any], *, bytes_checked: bool = True
) -> list[Comparison]:
    """Every comparison of the analytic umT5-XXL with one text-encoder reference record.

    The record measures transformers' ``UMT5EncoderModel`` in bf16, the ``diffusers`` profile; its
    prompts are unpadded (``text_len`` is what ran). Every id's whole eager bytes are compared, the
    attention as a CUDA build runs transformers' SDPA path (the memory-efficient kernel with the
    position bias as its mask, docs/encoders.md), and each attention's fused op on its own.
    """
    load = record["workload"]
    evaluation = evaluate_text_encoder(
        batch=load["batch"], text_len=load["text_len"], pad_text=False, implementation=DIFFUSERS
    )
    return compare_modules(
        declare_text_encoder(DIFFUSERS),
        TEXT_ENCODER_PREFIX,
        evaluation.metrics,
        evaluation.workload.subs(),
        record["modules"],
        bytes_checked=bytes_checked,
        byte_classes=_TEXT_ENCODER_BYTE_CLASSES,
        module_bytes=True,
    )


def compare_image_encoder_with_record(
    record: Mapping[str, Any], *, bytes_checked: bool = True
) -> list[Comparison]:
    """Every comparison of the analytic CLIP image encoder with one image-encoder reference record.

    The record measures transformers' ``CLIPVisionModel`` (all 32 blocks) in fp32, the ``diffusers``
    profile. Bytes are compared on the Linear layers (``to_qkv`` as the sum of q_proj, k_proj and
    v_proj), the patch convolution and the fused attention op of every block, and every id's whole
    eager traffic (``module_bytes``).
    """
    load = record["workload"]
    evaluation = evaluate_image_encoder(load["num_images"], batch=load["batch"], implementation=DIFFUSERS)
    return compare_modules(
        declare_image_encoder(evaluation.num_images, DIFFUSERS),
        IMAGE_ENCODER_PREFIX,
        evaluation.metrics,
        evaluation.workload.subs(),
        record["modules"],
        bytes_checked=bytes_checked,
        byte_classes=_IMAGE_ENCODER_BYTE_CLASSES,
        module_bytes=True,
    )


_VAE_CONV_CLASSES = frozenset({"CausalConv3d", "Conv2d"})
_CONVOLUTION_KEYS = frozenset({"convolution"})


def _walk_calls(
    module: Module, module_id: str, calls: sympy.Expr
) -> Iterator[tuple[str, Module, sympy.Expr]]:
    """Every declared module (no repeated blocks) with its id and its calls per call of the root."""
    yield module_id, module, calls
    for child in module.children:
        if isinstance(child, Module):
            yield from _walk_calls(child, f"{module_id}.{child.name}", calls * child.calls)


def _op_bytes(
    module: Module, keys: frozenset[str], calls: sympy.Expr, values: Mapping[sympy.Symbol, object], where: str
) -> tuple[int, int]:
    """[read, written] of a module's own ops of the given primitives, over all its calls."""
    cost = sum_costs(op.cost for op in module.ops if op.primitive in keys).scaled(calls)
    return _integer(cost.bytes_read, values, where), _integer(cost.bytes_written, values, where)


def compare_vae_with_record(record: Mapping[str, Any], *, bytes_checked: bool = True) -> list[Comparison]:
    """Every comparison of the analytic VAE with one VAE reference record (an encode or a decode).

    The record measures diffusers' ``AutoencoderKLWan`` in fp32 (the ``diffusers`` profile: the batch
    in one pass). FLOPs and parameters of every id the record keys; the record cannot key the two
    SiLU applications of a residual block (diffusers applies one shared activation module for both,
    whose work counts on the block) nor the parameter-free modules of the part that did not run.
    Bytes: every id's whole eager traffic (``module_bytes``, :func:`vae_module_bytes`), and on their
    own the convolution ops of every ``CausalConv3d`` and ``Conv2d`` (all chunks) and the fused
    attention op of every ``AttentionBlock``.
    """
    encodes, decodes = (1, 0) if record["use"] == "encode" else (0, 1)
    load = record["workload"]
    evaluation = evaluate_vae(
        frames=load["frames"],
        height=load["height"],
        width=load["width"],
        batch=load["batch"],
        encodes=encodes,
        decodes=decodes,
        implementation=DIFFUSERS,
    )
    root = declare_vae(DIFFUSERS, encodes=encodes, decodes=decodes)
    reference = record["modules"]
    values = evaluation.workload.subs()
    declared = {
        module_id: (module, calls)
        for module_id, module, calls in _walk_calls(root, VAE_PREFIX, sympy.Integer(1))
    }
    analytic: dict[str, Mapping[str, int]] = {}
    for module_id, metrics in evaluation.metrics.items():
        module, calls = declared[module_id]
        if module_id not in reference:
            shared_activation = module.class_name == "SiLU" and module_id.split(".")[-2] == "residual"
            idle = calls == 0 and metrics["params"] == 0
            if shared_activation or idle:
                continue
        analytic[module_id] = metrics
    rows = compare_modules(root, VAE_PREFIX, analytic, values, reference, bytes_checked=False)
    if not bytes_checked:
        return rows
    rows += vae_module_bytes(analytic, reference)
    rows += vae_kernel_bytes(
        ((module_id, module, calls) for module_id, (module, calls) in declared.items()), values, reference
    )
    return rows


def vae_module_bytes(
    analytic: Mapping[str, Mapping[str, int]], reference: Mapping[str, Any]
) -> list[Comparison]:
    """Bytes read and written of every compared VAE id (its whole eager traffic, sub-ids included)
    against the record's ``module_bytes``, for both VAEs.

    A residual block's ``residual`` Sequential is left out: diffusers applies the block's one SiLU
    module at ``residual.1`` and ``residual.4`` inside the block's own forward, so the reference counts
    that work on the block, not under ``residual``; the block's id (and every id above it) compares
    the whole.
    """
    rows: list[Comparison] = []
    for module_id, metrics in analytic.items():
        if module_id.endswith(".residual"):
            continue
        read, written = reference[module_id]["module_bytes"]
        rows.append(Comparison(module_id, "module_bytes_read", metrics["bytes_read"], read))
        rows.append(Comparison(module_id, "module_bytes_written", metrics["bytes_written"], written))
    return rows


def vae_kernel_bytes(
    declared: Iterable[tuple[str, Module, sympy.Expr]],
    values: Mapping[sympy.Symbol, object],
    reference: Mapping[str, Any],
) -> list[Comparison]:
    """Bytes read and written by each VAE module's convolutions and fused attention (over all its
    ``calls``) against the reference's ``conv_bytes`` / ``sdpa_bytes`` of that id: the kernel bytes
    every VAE (Wan2.1's, Wan2.2's) is compared on."""
    rows: list[Comparison] = []
    for module_id, module, calls in declared:
        checks = []
        if module.class_name in _VAE_CONV_CLASSES:
            checks.append(("conv_bytes", _CONVOLUTION_KEYS))
        if attention_op_costs(module) != Cost():
            checks.append(("sdpa_bytes", _FUSED_ATTENTION_KEYS))
        for key, primitives in checks:
            read, written = _op_bytes(module, primitives, calls, values, f"{module_id}.{key}")
            reference_read, reference_written = reference[module_id][key]
            rows.append(Comparison(module_id, f"{key}_read", read, reference_read))
            rows.append(Comparison(module_id, f"{key}_written", written, reference_written))
    return rows
