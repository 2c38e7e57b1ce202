"""The analytic run behind ``Wan2_1AnalyticRequest``: evaluate the pipeline and assemble the report.

Every figure is an exact integer from the compiled formulas before it is scaled to the contract's
units. The contract asks that a parent's totals equal the sum of its children's: a module that both
has children and performs ops itself (an attention module's attention core, a block's modulation
and residual adds) therefore gets one more child, ``<id>.ops``, that holds exactly those own ops
(``qualified_class_name`` ``<class>.forward``: the ops its forward runs directly).

Per-module figures, all over the whole run (every call):

- ``calls``: calls of the module in one run (a transformer block runs ``2·steps`` times with
  guidance);
- ``total_flops_tflops``: FLOPs in FlopCounterMode's convention (matrix products, convolutions,
  attention), / 1e12; element-wise work is not in it (it is in the formulas' ``vector_flops``);
- ``total_io_tb``: bytes read + written, / 1e12, under the implementation profile's convention;
- ``memory_weights_gb``: bytes of the parameters the module owns, at the dtype they are held;
- ``memory_activations_gb``: bytes of the activations written by one call of each module beneath
  (its own ops once, plus each child's figure) — an upper bound of the working set of one pass,
  not a resident peak;
- ``memory_kvcache_gb``: 0 — no Wan2.1 stage keeps an attention key/value cache;
- ``total_time_ms``, ``share_of_model_time``: from the roofline time model on the run's device
  (``RunOptions.device``), 0 when none is given.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any, Final

import attrs
import sympy
from attrs import field, frozen

from llm_perf_opt import __version__
from llm_perf_opt.contracts.models import (
    AnalyticModuleNode,
    ModuleMetricsSnapshot,
    OperatorCategory,
    OperatorMetrics,
    Wan2_1AnalyticModel,
    Wan2_1AnalyticRequest,
    Wan2_1ModelSpec,
    Wan2_1WorkloadProfile,
)
from llm_perf_opt.deployment.engine import run_model
from llm_perf_opt.deployment.value import Deployment
from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.models import find_variant
from llm_perf_opt.report.categories import CATEGORIES, categorize
from llm_perf_opt.symbolic.compiler import Evaluator, compile_tree
from llm_perf_opt.symbolic.module import ModuleNode, ModuleTree
from llm_perf_opt.symbolic.symbols import Workload
from llm_perf_opt.symbolic.whatif import WhatIfs
from llm_perf_opt.validation import flag, instance, text
from llm_perf_opt.wan2_1 import vace_pipeline
from llm_perf_opt.wan2_1.evaluate import resolve_workload
from llm_perf_opt.wan2_1.geometry import VAE_SPATIAL_STRIDE
from llm_perf_opt.wan2_1.implementation import Implementation, get_implementation
from llm_perf_opt.wan2_1.pipeline import pipeline_key, pipeline_tree
from llm_perf_opt.wan2_1.roles import COMPONENT_MODULES, PACKAGE, PIPELINE_MODULES, ROLES
from llm_perf_opt.wan2_1.vace import VaceVariant
from llm_perf_opt.wan2_1.variants import WanVariant
from llm_perf_opt.wan2_1.workloads import resolve_profile
from llm_perf_opt.wan2_2 import pipeline as wan2_2_pipeline
from llm_perf_opt.wan2_2 import roles as wan2_2_roles
from llm_perf_opt.wan2_2.evaluate import resolve_workload as resolve_wan2_2_workload
from llm_perf_opt.wan2_2.variants import Wan22Variant
from llm_perf_opt.wan2_2.workloads import resolve_profile as resolve_wan2_2_profile

__all__ = [
    "OWN_OPS_NAME",
    "Analysis",
    "ModuleFigures",
    "RunOptions",
    "analyze",
    "report_id_for",
]

AnyVariant = WanVariant | VaceVariant | Wan22Variant
"""A variant record of either family."""

OWN_OPS_NAME: Final = "ops"
"""Name of the extra child that holds a module's own ops (and own time: transfers, communication)
when it also has children."""

TERA: Final = 10**12
GIGA: Final = 10**9

_TORCH_CLASSES: Final = frozenset(
    {
        "Linear",
        "Conv1d",
        "Conv2d",
        "Conv3d",
        "Sequential",
        "ModuleList",
        "GELU",
        "SiLU",
        "LayerNorm",
        "Embedding",
    }
)


@frozen(kw_only=True)
class RunOptions:
    """How the run is evaluated, beyond the request: recorded in the report's notes and id.

    Attributes:
        implementation: implementation profile the bytes follow (``official`` or ``diffusers``).
        guidance: classifier-free guidance on (two transformer forwards per step).
        pad_text: pad the prompt to 512 tokens, as both pipelines do.
        deployment: the deployment times and memory are predicted for (``None``: no prediction);
            its variant, implementation and guidance must be the report's.
        whatifs: sparse attention, step-cache reuse and CFG truncation (default off).
    """

    implementation: str = field(default="official", validator=text())
    guidance: bool = field(default=True, validator=flag())
    pad_text: bool = field(default=True, validator=flag())
    deployment: Deployment | None = field(
        default=None, validator=attrs.validators.optional(instance(Deployment))
    )
    whatifs: WhatIfs = field(factory=WhatIfs, validator=instance(WhatIfs))

    def fingerprint(self) -> dict[str, object]:
        """What the report id hashes: every option, the deployment by its shape and factors."""
        deployment = None
        if self.deployment is not None:
            deployment = {"shape": repr(self.deployment.shape), "factors": dict(self.deployment.factors)}
            if self.deployment.implementation is not get_implementation(self.deployment.implementation.name):
                # a profile of the same name with other weight dtypes (Wan2.2 --convert_model_dtype)
                deployment["flags"] = self.deployment.flags
        return {
            "implementation": self.implementation,
            "guidance": self.guidance,
            "pad_text": self.pad_text,
            "deployment": deployment,
            **({} if self.whatifs.off else {"whatifs": repr(self.whatifs)}),
        }


@frozen
class _OwnBreakdowns:
    """The compiled own-op breakdowns of a tree: each unique (per-call) cost once."""

    evaluator: Evaluator
    slots: Mapping[int, str]  # id(Cost) → slot key


@functools.cache
def _own_breakdowns(tree: ModuleTree, tree_key: str) -> _OwnBreakdowns:
    """Each unique own-op cost of ``tree`` once, compiled; ``tree_key`` (what determines the tree)
    keys the evaluator's disk-cache entry."""
    expressions: list[sympy.Expr] = []
    index_of: dict[sympy.Expr, int] = {}
    slots: dict[str, tuple[int, ...]] = {}
    keys: dict[int, str] = {}
    for node in tree:
        for cost in node.own_breakdown.values():
            if id(cost) in keys:
                continue
            indices = []
            for _, expr in cost:
                index = index_of.get(expr)
                if index is None:
                    index = index_of[expr] = len(expressions)
                    expressions.append(expr)
                indices.append(index)
            slot = keys[id(cost)] = str(len(keys))
            slots[slot] = tuple(indices)
    evaluator = Evaluator(tuple(expressions), slots, simplify=False, key=f"{tree_key}|own")
    return _OwnBreakdowns(evaluator, keys)


@frozen(kw_only=True)
class ModuleFigures:
    """Exact figures of one module over the run (the report's snapshot, before unit scaling).

    Attributes:
        calls: calls of the module in the run.
        metrics: every metric of the :class:`Cost` record over all calls (``activation_bytes``
            replaced by the per-pass working-set figure described in the module docstring).
        categories: category id → (op calls, FLOPs, bytes read + written) over the run.
    """

    calls: int
    metrics: Mapping[str, int]
    categories: Mapping[str, tuple[int, int, int]]


@frozen(kw_only=True)
class Analysis:
    """Everything one run produced: the contract's model and the exact figures behind it.

    Attributes:
        model: the ``Wan2_1AnalyticModel`` of the contract.
        figures: exact figures per module id (synthetic ``.ops`` children included).
        variant, implementation, options: what was evaluated.
        notes: what was decided, approximated or left out.
    """

    model: Wan2_1AnalyticModel
    figures: Mapping[str, ModuleFigures]
    variant: AnyVariant
    implementation: Implementation
    options: RunOptions
    notes: tuple[str, ...]
    seconds: float


def report_id_for(request: Wan2_1AnalyticRequest, options: RunOptions) -> str:
    """A report id that is the same for the same inputs and safe as a folder name.

    ``<variant>__<profile>__<12 hex digits of a hash of the request, options and library version>``;
    ``force_rebuild`` is not part of it (it only says whether to reuse).
    """
    fingerprint = {
        "request": attrs.asdict(request, filter=lambda a, _: a.name != "force_rebuild"),
        "options": options.fingerprint(),
        "version": __version__,
    }
    digest = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:12]
    safe = "".join(
        c if c.isalnum() or c in "-._" else "-"
        for c in f"{request.model_variant}__{request.workload_profile_id}"
    )
    return f"{safe}__{digest}"


def _qualified_class_name(node: ModuleNode, variant: AnyVariant) -> str:
    pipelines, components = PIPELINE_MODULES, COMPONENT_MODULES
    if isinstance(variant, Wan22Variant):
        pipelines, components = wan2_2_roles.PIPELINE_MODULES, wan2_2_roles.component_modules(variant)
    if node.parent_id is None:
        return f"{pipelines.get(node.class_name, PACKAGE)}.{node.class_name}"
    if node.class_name in _TORCH_CLASSES:
        return f"torch.nn.{node.class_name}"
    component = node.id.split(".", 1)[0]
    return f"{components.get(component, PACKAGE)}.{node.class_name}"


def variant_tree(
    variant: AnyVariant,
    implementation: Implementation,
    guidance: bool,
    sparse_attention: str = "ideal",
    step_cache: str | None = None,
) -> tuple[ModuleTree, str]:
    """The whole-run tree of a variant of either family, and its disk-cache key. A sparse-attention
    pattern's overhead and a step-cache module are declared for Wan2.1's pipeline (ρ, k and τ
    are symbols of every family's formulas)."""
    if isinstance(variant, Wan22Variant | VaceVariant):
        if sparse_attention != "ideal":
            raise LlmPerfOptError(
                f"sparse_attention: the {sparse_attention!r} pattern's overhead is declared for the "
                f"Wan2.1 text- and image-to-video variants, not {variant.model_variant} (accepted: "
                "'ideal', the density ρ alone)"
            )
        if step_cache is not None:
            raise LlmPerfOptError(
                f"step_cache: the {step_cache!r} module is declared for the Wan2.1 text- and "
                f"image-to-video variants, not {variant.model_variant} (accepted: none; reused steps "
                "alone)"
            )
    if isinstance(variant, Wan22Variant):
        return (
            wan2_2_pipeline.pipeline_tree(variant, implementation, guidance),
            wan2_2_pipeline.pipeline_key(variant, implementation, guidance),
        )
    if isinstance(variant, VaceVariant):
        images = variant.reference_images
        return (
            vace_pipeline.pipeline_tree(variant, implementation, guidance, images),
            f"wan2.1 vace pipeline|{variant!r}|{implementation!r}|{guidance}|{images}",
        )
    methods = (sparse_attention, step_cache)
    return (
        pipeline_tree(variant, implementation, guidance, *methods),
        pipeline_key(variant, implementation, guidance, *methods),
    )


def _json_params(params: Mapping[str, object]) -> dict[str, Any]:
    return json.loads(json.dumps(dict(params), default=str))  # type: ignore[no-any-return]


def _post_order(tree: ModuleTree) -> Iterator[ModuleNode]:
    return reversed(list(tree))


def _exact_figures(
    tree: ModuleTree, workload: Workload, key: str
) -> tuple[dict[str, ModuleFigures], dict[str, ModuleFigures]]:
    """(figures per tree node, figures of the synthetic own-ops children keyed by their id)."""
    aggregates = compile_tree(tree, key=key).evaluate_exact(workload)
    own = _own_breakdowns(tree, key)
    own_values = own.evaluator.evaluate_exact(workload)
    values = workload.subs()
    calls_of: dict[sympy.Expr, int] = {}

    def calls(node: ModuleNode) -> int:
        found = calls_of.get(node.calls)
        if found is None:
            found = calls_of[node.calls] = int(sympy.sympify(node.calls).subs(values))
        return found

    figures: dict[str, ModuleFigures] = {}
    synthetic: dict[str, ModuleFigures] = {}
    for node in _post_order(tree):
        count = calls(node)
        own_categories: dict[str, list[int]] = {}
        own_activation = 0
        for kind, cost in node.own_breakdown.items():
            per_call = own_values[own.slots[id(cost)]]
            own_activation += per_call["activation_bytes"]
            entry = own_categories.setdefault(categorize(kind, node, tree, ROLES), [0, 0, 0])
            entry[0] += node.own_op_counts.get(kind, 0) * count
            entry[1] += per_call["flops"] * count
            entry[2] += (per_call["bytes_read"] + per_call["bytes_written"]) * count
        categories = {key: list(value) for key, value in own_categories.items()}
        activation = own_activation
        for child_id in node.children:
            child = figures[child_id]
            activation += child.metrics["activation_bytes"]
            for key, (n, flops, io) in child.categories.items():
                entry = categories.setdefault(key, [0, 0, 0])
                entry[0] += n
                entry[1] += flops
                entry[2] += io
        metrics = dict(aggregates[node.id])
        metrics["activation_bytes"] = activation
        figures[node.id] = ModuleFigures(
            calls=count, metrics=metrics, categories={k: (v[0], v[1], v[2]) for k, v in categories.items()}
        )
        if node.children and node.own_breakdown:
            own_metrics = dict(metrics)
            for child_id in node.children:
                for metric, value in figures[child_id].metrics.items():
                    own_metrics[metric] -= value
            synthetic[f"{node.id}.{OWN_OPS_NAME}"] = ModuleFigures(
                calls=count,
                metrics=own_metrics,
                categories={k: (v[0], v[1], v[2]) for k, v in own_categories.items()},
            )
    return figures, synthetic


def _operator_breakdown(figures: ModuleFigures) -> list[OperatorMetrics]:
    flops = figures.metrics["flops"]
    rows = []
    for category_id in CATEGORIES:
        found = figures.categories.get(category_id)
        if found is None:
            continue
        n, category_flops, io = found
        rows.append(
            OperatorMetrics(
                category_id=category_id,
                calls=n,
                flops_tflops=category_flops / TERA,
                io_tb=io / TERA,
                share_of_module_flops=category_flops / flops if flops else 0.0,
            )
        )
    return rows


def _snapshot(
    module_id: str, profile_id: str, figures: ModuleFigures, seconds: float, total_seconds: float
) -> ModuleMetricsSnapshot:
    m = figures.metrics
    return ModuleMetricsSnapshot(
        module_id=module_id,
        profile_id=profile_id,
        calls=figures.calls,
        total_time_ms=seconds * 1e3,
        total_flops_tflops=m["flops"] / TERA,
        total_io_tb=(m["bytes_read"] + m["bytes_written"]) / TERA,
        memory_weights_gb=m["weight_bytes"] / GIGA,
        memory_activations_gb=m["activation_bytes"] / GIGA,
        memory_kvcache_gb=0.0,
        share_of_model_time=min(1.0, seconds / total_seconds) if total_seconds > 0 else 0.0,
        operator_breakdown=_operator_breakdown(figures),
    )


def _model_spec(variant: AnyVariant, notes: str) -> Wan2_1ModelSpec:
    record = variant.transformer if isinstance(variant, Wan22Variant | VaceVariant) else variant
    return Wan2_1ModelSpec(
        model_id=variant.model_id,
        model_variant=variant.model_variant,
        config_path=record.config_path,
        hidden_size=record.dim,
        num_layers=record.num_layers,
        num_attention_heads=record.num_heads,
        head_dim=record.head_dim,
        mlp_intermediate_size=record.ffn_dim,
        vae_downsample_factor=record.vae_stride[1]
        if isinstance(variant, Wan22Variant)
        else VAE_SPATIAL_STRIDE,
        patch_size=record.patch_size[1],
        latent_channels=record.z_dim,
        notes=notes,
    )


def _categories(tree: ModuleTree) -> list[OperatorCategory]:
    classes: dict[str, set[str]] = {key: set() for key in CATEGORIES}
    for node in tree:
        for kind in node.own_breakdown:
            classes[categorize(kind, node, tree, ROLES)].add(node.class_name)
    return [
        OperatorCategory(
            category_id=category.category_id,
            display_name=category.display_name,
            description=category.description,
            match_classes=sorted(classes[category.category_id]),
        )
        for category in CATEGORIES.values()
        if classes[category.category_id]
    ]


MODEL_NOTES: Final = (
    "Modelled: the stages listed in the module tree, with the calls the official loop makes. "
    "FLOPs follow FlopCounterMode (2 per multiply-add, bias not counted, attention 4·B·H·Sq·Sk·D); "
    "element-wise work is counted separately and is not in total_flops_tflops. "
    "Parameters equal the reference implementation's."
)


FLOAT64_EXACT: Final = 2**53
"""Integers above this are not all representable in float64, the contract's number type."""


def _float_notes(root: ModuleFigures) -> tuple[str, ...]:
    """A note when the run's exact figures exceed float64's exact integer range."""
    largest = max(root.metrics.values())
    if largest <= FLOAT64_EXACT:
        return ()
    name = max(root.metrics, key=lambda metric: root.metrics[metric])
    return (
        f"exact figures exceed 2^53 (the run's {name} is {largest:,}): the contract's float fields "
        "(TFLOP, TB, GB) carry them rounded to float64's 15–16 significant digits; the library's exact "
        "evaluation (evaluate_exact, the dit command) gives the integers",
    )


def request_workload(
    request: Wan2_1AnalyticRequest, variant: AnyVariant, pad_text: bool
) -> tuple[Wan2_1WorkloadProfile, Workload, list[str], list[str]]:
    """The request's profile (with its overrides) and the workload the pipeline really runs, with
    the notes of each (a Wan2.2 variant by Wan2.2's rules: its default steps, its size grid; a VACE
    variant with a masked control video and its record's reference images)."""
    if isinstance(variant, Wan22Variant):
        profile, profile_notes = resolve_wan2_2_profile(
            request.workload_profile_id, variant, request.overrides
        )
        workload, workload_notes = resolve_wan2_2_workload(
            variant,
            batch=profile.batch_size,
            frames=profile.num_frames,
            height=profile.height,
            width=profile.width,
            steps=profile.num_inference_steps,
            text_len=profile.text_len,
            pad_text=pad_text,
        )
    elif isinstance(variant, VaceVariant):
        profile, profile_notes = resolve_profile(
            request.workload_profile_id, variant.transformer, request.overrides
        )
        workload, workload_notes = vace_pipeline.resolve_workload(
            variant,
            control_video=True,
            mask=True,
            reference_images=variant.reference_images,
            batch=profile.batch_size,
            frames=profile.num_frames,
            height=profile.height,
            width=profile.width,
            steps=profile.num_inference_steps,
        )
    else:
        profile, profile_notes = resolve_profile(request.workload_profile_id, variant, request.overrides)
        workload, workload_notes = resolve_workload(
            variant,
            batch=profile.batch_size,
            frames=profile.num_frames,
            height=profile.height,
            width=profile.width,
            steps=profile.num_inference_steps,
            text_len=profile.text_len,
            pad_text=pad_text,
        )
    return profile, workload, list(profile_notes), list(workload_notes)


def analyze(request: Wan2_1AnalyticRequest, options: RunOptions | None = None) -> Analysis:
    """Evaluate one request and assemble its ``Wan2_1AnalyticModel`` with exact figures behind it."""
    options = options or RunOptions()
    variant = find_variant(request.model_variant)
    if request.model_id.strip().lower() != variant.model_id:
        raise LlmPerfOptError(
            f"model_id: {request.model_id!r} does not match model_variant {variant.model_variant!r} "
            f"(its model_id is {variant.model_id!r})"
        )
    implementation = get_implementation(options.implementation)
    if options.deployment is not None and options.deployment.implementation.name == implementation.name:
        implementation = options.deployment.implementation  # with its weight dtypes (convert_model_dtype)
    profile, workload, profile_notes, workload_notes = request_workload(request, variant, options.pad_text)
    workload = options.whatifs.applied(workload)
    methods = (options.whatifs.sparse_attention, options.whatifs.step_cache)
    tree, tree_key = variant_tree(variant, implementation, options.guidance, *methods)
    run = options.deployment
    if run is not None and run.variant is variant:
        # the deployment's own run (a Wan2.2 image-to-video run, converted weights): same variant
        tree, tree_key = run.family.pipeline_tree(run), run.family.tree_key(run)
    figures, synthetic = _exact_figures(tree, workload, tree_key)
    seconds: dict[str, float] = {}
    own_seconds: dict[str, float] = {}
    time_notes: tuple[str, ...] = ("no device given: times are 0",)
    if options.deployment is not None:
        deployment = options.deployment
        if (
            deployment.variant is not variant
            or deployment.implementation.name != implementation.name
            or deployment.guidance != options.guidance
        ):
            raise LlmPerfOptError(
                f"deployment: built for {deployment.variant.model_variant} / "
                f"{deployment.implementation.name} / guidance {deployment.guidance}; the report is of "
                f"{variant.model_variant} / {implementation.name} / guidance {options.guidance}"
            )
        timed = run_model(deployment, tree).evaluate_point(workload)
        seconds = {node.id: timed[f"module.{node.id}"] for node in tree}
        own_seconds = {node.id: timed[f"own.{node.id}"] for node in tree}
        peak = timed["peak_memory"]
        capacity = deployment.accelerator.memory_bytes
        fits = (
            f"fits the device's {capacity / GIGA:.1f} GB"
            if peak <= capacity
            else f"DOES NOT FIT the device's {capacity / GIGA:.1f} GB"
        )
        time_notes = (
            f"times: roofline model on {deployment.accelerator.name} × {deployment.gpus}, "
            f"{deployment.flags} with the calibrated efficiency factors (an approximation; see the "
            "hardware documentation)",
            f"predicted peak memory per device: {peak / GIGA:.2f} GB ({fits})",
        )
    total_seconds = seconds.get(tree.root_id, 0.0)
    for node in tree:
        own_id = f"{node.id}.{OWN_OPS_NAME}"
        if node.children and own_id not in synthetic and own_seconds.get(node.id, 0.0) > 0:
            # no ops of its own, but time of its own: host transfers, communication
            synthetic[own_id] = ModuleFigures(
                calls=figures[node.id].calls,
                metrics=dict.fromkeys(figures[node.id].metrics, 0),
                categories={},
            )
    notes = (
        f"implementation profile: {implementation.name} ({implementation.description})",
        "classifier-free guidance on: two transformer forwards per step"
        if options.guidance
        else "classifier-free guidance off: one transformer forward per step",
        *options.whatifs.notes(),
        *profile_notes,
        *workload_notes,
        *time_notes,
        *_float_notes(figures[tree.root_id]),
        MODEL_NOTES,
    )
    report_id = report_id_for(request, options)
    modules: list[AnalyticModuleNode] = []
    snapshots: list[ModuleMetricsSnapshot] = []
    all_figures: dict[str, ModuleFigures] = {}
    for node in tree:
        children = list(node.children)
        own_id = f"{node.id}.{OWN_OPS_NAME}"
        if own_id in synthetic:
            children.append(own_id)
        modules.append(
            AnalyticModuleNode(
                module_id=node.id,
                name=node.name,
                qualified_class_name=_qualified_class_name(node, variant),
                stage=node.stage,  # type: ignore[arg-type]
                parent_id=node.parent_id,
                children=children,
                repetition=node.repetition,
                repetition_count=node.repetition_count,
                constructor_params=_json_params(node.params),
            )
        )
        snapshots.append(
            _snapshot(node.id, profile.profile_id, figures[node.id], seconds.get(node.id, 0.0), total_seconds)
        )
        all_figures[node.id] = figures[node.id]
        if own_id in synthetic:
            modules.append(
                AnalyticModuleNode(
                    module_id=own_id,
                    name=OWN_OPS_NAME,
                    qualified_class_name=f"{_qualified_class_name(node, variant)}.forward",
                    stage=node.stage,  # type: ignore[arg-type]
                    parent_id=node.id,
                    children=[],
                    repetition="none",
                    repetition_count=None,
                    constructor_params={"primitives": sorted({kind[0] for kind in node.own_breakdown})},
                )
            )
            snapshots.append(
                _snapshot(
                    own_id,
                    profile.profile_id,
                    synthetic[own_id],
                    own_seconds.get(node.id, 0.0),
                    total_seconds,
                )
            )
            all_figures[own_id] = synthetic[own_id]
    model = Wan2_1AnalyticModel(
        report_id=report_id,
        model=_model_spec(variant, " ".join(notes)),
        workload=profile,
        modules=modules,
        operator_categories=_categories(tree),
        module_metrics=snapshots,
        profile_run_id=request.profile_run_id,
    )
    return Analysis(
        model=model,
        figures=all_figures,
        variant=variant,
        implementation=implementation,
        options=options,
        notes=notes,
        seconds=total_seconds,
    )
