"""One value for a deployment: what runs (a model variant as an implementation runs it), on what
(an accelerator, how many, split how), and how (placement, kernels, precision, guidance, factors).

A :class:`Deployment` is built once where input enters — by a model family's builder, which fills
the family's defaults — and validated there, with errors that name the field, the value and what is
accepted. Every query (time per module and stage, memory per device, sizing, calibration, reports)
takes it whole. What a model family must provide to run on devices is :class:`ModelFamily`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, Protocol

import sympy
from attrs import field, frozen

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.hardware.accelerators import Accelerator
from llm_perf_opt.hardware.efficiency import EFFICIENCIES, EfficiencyTable
from llm_perf_opt.hardware.host import DEFAULT_HOST, HostCpu
from llm_perf_opt.hardware.roofline import check_kernel
from llm_perf_opt.symbolic.module import ModuleTree
from llm_perf_opt.validation import FieldError, flag, instance, integer, one_of

if TYPE_CHECKING:
    from llm_perf_opt.deployment.schedule import RunMemory, Schedule

__all__ = [
    "OFFLOADS",
    "SINGLE_GPU",
    "Deployment",
    "ModelFamily",
    "Overlap",
    "Parallelism",
]

OFFLOADS: Final = ("none", "model", "group")
"""Where weights wait between uses: ``none`` (resident), ``model`` (whole models moved to the host
between stages, ``generate.py --offload_model``), ``group`` (the transformer's weights streamed from
the host every forward, overlapped with compute, as diffusers' group offloading does)."""


@frozen
class Parallelism:
    """How one run is split over ``ulysses × ring`` GPUs.

    Attributes:
        ulysses: Ulysses degree ``U`` (``--ulysses_size``).
        ring: ring degree ``R`` (``--ring_size``).
        fsdp: transformer weights sharded with FSDP (``--dit_fsdp``).
    """

    ulysses: int = field(default=1, validator=integer(1))
    ring: int = field(default=1, validator=integer(1))
    fsdp: bool = field(default=False, validator=flag())

    def __attrs_post_init__(self) -> None:
        if self.fsdp and self.world_size == 1:
            raise FieldError(
                ("fsdp",),
                f"FSDP needs more than one GPU; got ulysses={self.ulysses}, ring={self.ring}",
            )

    @property
    def world_size(self) -> int:
        """GPUs in the run, ``P = U·R``."""
        return self.ulysses * self.ring


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
        attention_kernel: the fused attention kernel (``fa2``, ``fa3``, ``sdpa``).
        precision: the tensor precision bf16 matrix products and attention run at (``bf16``; ``fp8``
            for fp8 GEMMs where the device has the rate).
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
    guidance: bool = field(default=True, validator=flag())
    efficiencies: EfficiencyTable = field(default=EFFICIENCIES, validator=instance(EfficiencyTable))
    host: HostCpu = field(default=DEFAULT_HOST, validator=instance(HostCpu))
    overlap: Overlap = field(factory=Overlap, validator=instance(Overlap))

    def __attrs_post_init__(self) -> None:
        if self.parallelism.world_size != self.gpus:
            raise LlmPerfOptError(
                f"parallelism: ulysses × ring = {self.parallelism.ulysses} × {self.parallelism.ring} = "
                f"{self.parallelism.world_size} must equal gpus = {self.gpus}"
            )
        check_kernel(self.attention_kernel)
        self.efficiencies.for_device(self.accelerator).factor(f"attention.{self.attention_kernel}")
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
        return self.efficiencies.for_device(self.accelerator).factors

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
            self.guidance,
            self.host,
            self.overlap,
        )

    @property
    def flags(self) -> str:
        """The setup in the words of the family's own command line (plus what is not a flag)."""
        return self.family.describe(self)
