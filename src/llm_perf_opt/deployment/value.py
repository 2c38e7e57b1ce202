"""One value for a deployment: what runs (a model variant as an implementation runs it), on what
(an accelerator, how many, split how), and how (placement, kernels, precision, guidance, factors).

A :class:`Deployment` is built once where input enters — by a model family's builder, which fills
the family's defaults — and validated there, with errors that name the field, the value and what is
accepted. Every query (time per module and stage, memory per device, sizing, calibration, reports)
takes it whole. What a model family must provide to run on devices is :class:`ModelFamily`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol

import sympy
from attrs import field, frozen

from llm_perf_opt.deployment.stacks.record import FUSED_CHAINS, kernel_available, kernel_family
from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.hardware.accelerators import Accelerator
from llm_perf_opt.hardware.efficiency import EFFICIENCIES, EfficiencyTable
from llm_perf_opt.hardware.host import DEFAULT_HOST, HostCpu
from llm_perf_opt.hardware.kernels import (
    ATTENTION_KERNELS,
    GEMM_PRECISIONS,
    WEIGHT_STORAGE_BYTES,
    get_gemm_precision,
    get_kernel,
)
from llm_perf_opt.symbolic.module import ModuleTree
from llm_perf_opt.symbolic.whatif import SPARSE_PATTERNS
from llm_perf_opt.validation import FieldError, flag, instance, integer, one_of, text

if TYPE_CHECKING:
    from llm_perf_opt.deployment.schedule import RunMemory, Schedule

__all__ = [
    "CFG_DEGREES",
    "OFFLOADS",
    "SINGLE_GPU",
    "VAE_DECODES",
    "Deployment",
    "ModelFamily",
    "Overlap",
    "Parallelism",
]

OFFLOADS: Final = ("none", "model", "group", "sequential")
"""Where weights wait between uses: ``none`` (resident), ``model`` (whole models moved to the host
between stages, ``generate.py --offload_model``), ``group`` (the transformer's weights streamed from
the host every forward, overlapped with compute, as diffusers' group offloading does),
``sequential`` (every layer's weights copied from the host when it is called and dropped after, not
overlapped: diffusers' ``enable_sequential_cpu_offload``)."""
VAE_DECODES: Final = ("whole", "parallel")
"""How the VAE decodes: ``whole`` on rank 0, ``parallel`` split over every GPU of the run."""
CFG_DEGREES: Final = (1, 2)
"""Guidance branches run at once on separate GPU groups: 1 (one after the other) or 2 (CFG parallel)."""


def _cfg_degree(_instance: object, attribute: Any, value: object) -> None:
    if isinstance(value, bool) or value not in CFG_DEGREES:
        raise FieldError((attribute.name,), f"must be 1 or 2 (CFG parallel), got {value!r}")


@frozen
class Parallelism:
    """How one run is split over ``cfg × ulysses × ring`` GPUs.

    Attributes:
        ulysses: Ulysses degree ``U`` (``--ulysses_size``).
        ring: ring degree ``R`` (``--ring_size``).
        fsdp: transformer weights sharded with FSDP (``--dit_fsdp``) within a sequence group.
        cfg: CFG-parallel degree (:data:`CFG_DEGREES`): with 2 the conditional and the unconditional
            forwards of each step run at once on two groups of ``U·R`` GPUs.
    """

    ulysses: int = field(default=1, validator=integer(1))
    ring: int = field(default=1, validator=integer(1))
    fsdp: bool = field(default=False, validator=flag())
    cfg: int = field(default=1, validator=_cfg_degree)

    def __attrs_post_init__(self) -> None:
        if self.fsdp and self.sequence_size == 1:
            raise FieldError(
                ("fsdp",),
                f"FSDP needs more than one GPU per group; got ulysses={self.ulysses}, ring={self.ring}",
            )

    @property
    def sequence_size(self) -> int:
        """GPUs one forward is split over, ``P = U·R``."""
        return self.ulysses * self.ring

    @property
    def world_size(self) -> int:
        """GPUs in the run, ``cfg·U·R``."""
        return self.cfg * self.ulysses * self.ring


SINGLE_GPU: Final = Parallelism()
"""One GPU: no sequence split, no FSDP."""


@frozen
class Overlap:
    """What communication hides behind compute.

    Attributes:
        ring_with_attention: ring K/V passes overlap the attention (ring flash attention).
        fsdp_with_compute: a block's FSDP all-gather overlaps the previous block's compute.
    """

    ring_with_attention: bool = field(default=True, validator=flag())
    fsdp_with_compute: bool = field(default=True, validator=flag())


class ModelFamily(Protocol):
    """What a model family provides to run on devices (Wan2.1's is :mod:`llm_perf_opt.wan2_1.run`).

    ``name`` is the family's name (``wan2.1``); ``stages`` the stages of a run, in the order they
    run (their seconds add up to the total).
    """

    @property
    def name(self) -> str: ...

    @property
    def stages(self) -> tuple[str, ...]: ...

    @property
    def frame_stride(self) -> int:
        """Frame counts the family's VAE produces are ``frame_stride·k + 1``."""
        ...

    @property
    def size_multiple(self) -> int:
        """Heights and widths the family's pipeline accepts are multiples of this."""
        ...

    def check(self, deployment: Deployment) -> None:
        """Raise for a deployment the family's code rejects (naming the field and what is accepted)."""
        ...

    def pipeline_tree(self, deployment: Deployment) -> ModuleTree:
        """The module tree of one whole run of the deployment's variant."""
        ...

    def tree_key(self, deployment: Deployment) -> str:
        """What determines :meth:`pipeline_tree` (with the package's code): the disk cache's key."""
        ...

    def schedule(self, tree: ModuleTree, deployment: Deployment) -> Schedule:
        """What the run adds to each module's roofline: collectives, copies, work on the host."""
        ...

    def stage_seconds(
        self, seconds: Mapping[str, sympy.Expr], own: Mapping[str, sympy.Expr]
    ) -> dict[str, sympy.Expr]:
        """Seconds per stage (of :attr:`stages`) from the modules' total and own seconds."""
        ...

    def memory(self, tree: ModuleTree, deployment: Deployment) -> RunMemory:
        """Bytes per device, part by part and phase by phase."""
        ...

    def describe(self, deployment: Deployment) -> str:
        """The setup in the words of the family's own command line."""
        ...


def _precision_on_device(instance: Deployment, attribute: Any, value: object) -> None:
    if not isinstance(value, str) or not instance.accelerator.supports(value) or value in ("fp32", "tf32"):
        tensor = [p for p in instance.accelerator.precisions if p not in ("fp32", "tf32")]
        raise FieldError(
            (attribute.name,),
            f"{instance.accelerator.name} has no {value!r} tensor rate; supported: {', '.join(tensor)}",
        )


def _gemm_on_device(instance: Deployment, attribute: Any, value: object) -> None:
    gemm = get_gemm_precision(value)  # type: ignore[arg-type]
    if gemm.rate != "bf16" and not instance.accelerator.supports(gemm.rate):
        lacking = [
            name
            for name, g in GEMM_PRECISIONS.items()
            if g.rate == "bf16" or instance.accelerator.supports(g.rate)
        ]
        raise FieldError(
            (attribute.name,),
            f"{value} runs at the {gemm.rate} rate, which {instance.accelerator.name} does not have; "
            f"accepted on it: {', '.join(lacking)}",
        )


def _names(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _chains(_instance: object, attribute: Any, value: tuple[str, ...]) -> None:
    for chain in value:
        if chain not in FUSED_CHAINS:
            raise FieldError(
                (attribute.name,), f"unknown chain {chain!r}; accepted: {', '.join(FUSED_CHAINS)}"
            )


def _check_attention(deployment: Deployment) -> None:
    """The kernel exists, runs on the device's kernel family at rates the device has, and has an
    efficiency factor there."""
    kernel = get_kernel(deployment.attention_kernel)
    device = deployment.accelerator
    family = kernel_family(device.name, device.family)
    if not kernel_available(kernel.name, family):
        raise LlmPerfOptError(
            f"attention_kernel: {kernel.name} does not run on {device.name} ({family}); it runs on "
            f"{', '.join(kernel.families)}; on {family}: "
            + ", ".join(k for k in ATTENTION_KERNELS if kernel_available(k, family))
        )
    for rate in (kernel.qk_rate, kernel.pv_rate):
        if rate != "bf16" and not device.supports(rate):
            raise LlmPerfOptError(
                f"attention_kernel: {kernel.name} runs at the {rate} rate, which {device.name} does not have"
            )
    deployment.efficiencies.for_device(device, deployment.stack).factor(kernel.factor_key)


@frozen(kw_only=True, eq=False)
class Deployment:
    """One deployment: a variant, as an implementation runs it, on devices, set up one way.

    Build it with the model family's builder (``llm_perf_opt.models.build_deployment``), which
    fills the family's defaults; construction validates every field and the combination.

    Attributes:
        family: the model family's run rules.
        variant: the family's variant record.
        implementation: the family's implementation profile (which bytes the ops move).
        accelerator: the device.
        gpus: devices in the run (the world size).
        parallelism: Ulysses and ring degrees and FSDP of the transformer.
        offload: one of :data:`OFFLOADS`.
        text_encoder_cpu: the text encoder runs on the host CPU.
        text_encoder_fsdp: the text encoder is sharded with FSDP over the GPUs.
        attention_kernel: the fused attention kernel (one of
            :data:`~llm_perf_opt.hardware.kernels.ATTENTION_KERNELS`, available on the device's
            kernel family).
        precision: the tensor precision bf16 matrix products and attention run at (``bf16``; ``fp8``
            for every bf16 tensor op at the fp8 rate where the device has it).
        gemm_precision: the precision of the transformer's linear layers
            (:data:`~llm_perf_opt.hardware.kernels.GEMM_PRECISIONS`: fp8 per tensor, channel or
            block, int8, NVFP4 …), with its activation quantisation priced.
        weight_storage: how the transformer's weights are held
            (:data:`~llm_perf_opt.hardware.kernels.WEIGHT_STORAGE_BYTES`): their memory and the
            bytes each GEMM reads (an upcast storage adds a cast per use).
        fused_chains: the element-wise chains of the transformer that run as one kernel each
            (:data:`~llm_perf_opt.deployment.stacks.record.FUSED_CHAINS`).
        cuda_graphs: a denoising step is replayed from a CUDA graph (recorded; no launch term is
            priced).
        vae_decode: one of :data:`VAE_DECODES`.
        sparse_attention: the sparse-attention pattern whose overhead the self-attention carries
            (:data:`~llm_perf_opt.symbolic.whatif.SPARSE_PATTERNS`; ``ideal``: the density ρ alone).
            The density itself is a workload input (``attention_density``), like the reused steps.
        step_cache: the step-cache method whose module the run declares (TeaCache, MagCache; the
            family's names), or ``None`` (reused steps alone).
        stack: the inference stack's name (a preset of :mod:`llm_perf_opt.deployment.stacks` or a
            user's): selects its ``framework`` efficiency factor.
        guidance: classifier-free guidance: two transformer forwards per step.
        efficiencies: the efficiency factors (their values; the compiled engine takes them as inputs).
        host: the host CPU's rates.
        overlap: what communication hides behind compute.
    """

    family: ModelFamily
    variant: Any
    implementation: Any
    accelerator: Accelerator = field(validator=instance(Accelerator))
    gpus: int = field(validator=integer(1))
    parallelism: Parallelism = field(validator=instance(Parallelism))
    offload: str = field(default="none", validator=one_of(OFFLOADS))
    text_encoder_cpu: bool = field(default=False, validator=flag())
    text_encoder_fsdp: bool = field(default=False, validator=flag())
    attention_kernel: str = field(default="fa2")
    precision: str = field(default="bf16", validator=_precision_on_device)
    gemm_precision: str = field(default="bf16", validator=_gemm_on_device)
    weight_storage: str = field(default="bf16", validator=one_of(tuple(WEIGHT_STORAGE_BYTES)))
    fused_chains: tuple[str, ...] = field(default=(), converter=_names, validator=_chains)
    cuda_graphs: bool = field(default=False, validator=flag())
    vae_decode: str = field(default="whole", validator=one_of(VAE_DECODES))
    sparse_attention: str = field(default="ideal", validator=one_of(tuple(SPARSE_PATTERNS)))
    step_cache: str | None = field(default=None)
    stack: str = field(default="official", validator=text())
    guidance: bool = field(default=True, validator=flag())
    efficiencies: EfficiencyTable = field(default=EFFICIENCIES, validator=instance(EfficiencyTable))
    host: HostCpu = field(default=DEFAULT_HOST, validator=instance(HostCpu))
    overlap: Overlap = field(factory=Overlap, validator=instance(Overlap))

    def __attrs_post_init__(self) -> None:
        if self.parallelism.world_size != self.gpus:
            split = self.parallelism
            names, degrees = ("cfg × ", f"{split.cfg} × ") if split.cfg > 1 else ("", "")
            raise LlmPerfOptError(
                f"parallelism: {names}ulysses × ring = {degrees}{split.ulysses} × {split.ring} = "
                f"{split.world_size} must equal gpus = {self.gpus}"
            )
        _check_attention(self)
        if self.parallelism.cfg == 2 and not self.guidance:
            raise LlmPerfOptError(
                "cfg_parallel: CFG parallelism runs the two guidance forwards on two GPU groups and "
                "needs guidance; got guidance=False (accepted: cfg_parallel off without guidance)"
            )
        if self.text_encoder_fsdp and self.gpus == 1:
            raise LlmPerfOptError("text_encoder_fsdp: FSDP needs more than one GPU; got gpus=1")
        if self.text_encoder_fsdp and self.text_encoder_cpu:
            raise LlmPerfOptError(
                "text_encoder_cpu: the text encoder on the CPU cannot also be sharded with FSDP; got "
                "text_encoder_cpu=True with text_encoder_fsdp=True (accepted: one of them)"
            )
        self.family.check(self)

    @property
    def factors(self) -> Mapping[str, float]:
        """The efficiency factors of this deployment's device, by key."""
        return self.efficiencies.for_device(self.accelerator, self.stack).factors

    @property
    def shape(self) -> tuple[object, ...]:
        """Everything the time and memory expressions depend on (the factor values are inputs to
        the compiled engine, not part of its shape)."""
        device = self.accelerator
        return (
            self.family.name,
            getattr(self.variant, "model_variant", repr(self.variant)),
            getattr(self.implementation, "name", repr(self.implementation)),
            device.name,
            tuple(sorted(device.peak_tflops.items())),
            device.memory_gb,
            device.memory_bandwidth_tbps,
            device.link_gbps_per_direction,
            device.link_group_size,
            device.host_link_gbps_per_direction,
            self.gpus,
            self.parallelism,
            self.offload,
            self.text_encoder_cpu,
            self.text_encoder_fsdp,
            self.attention_kernel,
            self.precision,
            self.gemm_precision,
            self.weight_storage,
            self.fused_chains,
            self.cuda_graphs,
            self.vae_decode,
            self.sparse_attention,
            self.step_cache,
            self.stack,
            self.guidance,
            self.host,
            self.overlap,
        )

    @property
    def flags(self) -> str:
        """The setup in the words of the family's own command line (plus what is not a flag)."""
        return self.family.describe(self)
