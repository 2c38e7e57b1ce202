"""How one ``generate.py`` run is set up: GPUs, parallel degrees and the placement flags.

The official command line (Wan-Video/Wan2.1 ``generate.py``) and what
each flag does to a run:

- ``--ulysses_size U --ring_size R``: sequence parallelism over ``U·R`` GPUs (must equal the world
  size); ``--dit_fsdp`` / ``--t5_fsdp``: FSDP of the transformer / of umT5 (rejected on one GPU).
- ``--offload_model`` (default: on with one GPU, off with more): umT5 goes back to the CPU after
  encoding, the transformer after sampling, CLIP after the image encode; image-conditioned tasks
  also move both noise predictions and the latent to the CPU every step and run the guidance and
  the scheduler step there.
- ``--t5_cpu``: umT5 runs on the CPU ("only works without t5_fsdp").

:func:`run_config` fills the defaults the way ``generate.py`` and the README's recipes do and
rejects what the official code rejects, with errors naming the field, the value and what is
accepted.
"""

from __future__ import annotations

from attrs import frozen

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.hardware.accelerators import Accelerator
from llm_perf_opt.hardware.efficiency import ATTENTION_KERNELS, EFFICIENCIES, EfficiencyTable
from llm_perf_opt.hardware.parallel import (
    DEFAULT_OVERLAP,
    SINGLE_GPU,
    Overlap,
    Parallelism,
    check_parallelism,
)

__all__ = ["RunConfig", "default_parallelism", "run_config"]


@frozen(kw_only=True)
class RunConfig:
    """One run's setup, validated and with defaults filled (build it with :func:`run_config`).

    Attributes:
        gpus: GPUs in the run (the world size).
        parallelism: Ulysses and ring degrees and ``--dit_fsdp``.
        offload: ``--offload_model``.
        t5_cpu: ``--t5_cpu``: umT5 on the host CPU.
        t5_fsdp: ``--t5_fsdp``: umT5 sharded with FSDP over the GPUs.
        attention_kernel: the fused attention kernel (``fa2``, ``fa3``, ``sdpa``).
        guidance: classifier-free guidance: two transformer forwards per step.
        overlap: what communication hides behind compute.
    """

    gpus: int
    parallelism: Parallelism
    offload: bool
    t5_cpu: bool
    t5_fsdp: bool
    attention_kernel: str
    guidance: bool = True
    overlap: Overlap = DEFAULT_OVERLAP

    @property
    def flags(self) -> str:
        """The ``generate.py`` flags of this setup (plus the attention kernel, which is not a flag)."""
        parts = []
        if self.parallelism.ulysses > 1:
            parts.append(f"--ulysses_size {self.parallelism.ulysses}")
        if self.parallelism.ring > 1:
            parts.append(f"--ring_size {self.parallelism.ring}")
        if self.parallelism.fsdp:
            parts.append("--dit_fsdp")
        if self.t5_fsdp:
            parts.append("--t5_fsdp")
        parts.append(f"--offload_model {self.offload}")
        if self.t5_cpu:
            parts.append("--t5_cpu")
        return " ".join(parts) + f" ({self.attention_kernel})"


def default_parallelism(num_heads: int, gpus: int) -> Parallelism:
    """The README's multi-GPU recipe for ``gpus`` GPUs: ``--dit_fsdp --ulysses_size gpus`` when the
    heads split that many ways, else ``--ring_size gpus`` (as for T2V-1.3B on 8 GPUs); one GPU runs
    alone."""
    if gpus == 1:
        return SINGLE_GPU
    if num_heads % gpus == 0:
        return Parallelism(ulysses=gpus, fsdp=True)
    return Parallelism(ring=gpus, fsdp=True)


def _flag(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise LlmPerfOptError(f"{name}: must be true or false, got {value!r}")
    return value


def run_config(
    num_heads: int,
    accelerator: Accelerator,
    *,
    gpus: int = 1,
    parallelism: Parallelism | None = None,
    offload: bool | None = None,
    t5_cpu: bool = False,
    t5_fsdp: bool | None = None,
    attention_kernel: str = "fa2",
    guidance: bool = True,
    overlap: Overlap = DEFAULT_OVERLAP,
    efficiencies: EfficiencyTable = EFFICIENCIES,
) -> RunConfig:
    """Validate a run's setup and fill the official defaults.

    ``parallelism`` defaults to :func:`default_parallelism`; ``offload`` to ``generate.py``'s
    default (on with one GPU only); ``t5_fsdp`` to the transformer's FSDP unless umT5 runs on the
    CPU (the README pairs ``--dit_fsdp --t5_fsdp``). Raises for a non-positive GPU count, degrees
    whose product is not ``gpus``, heads that do not split ``U`` ways, FSDP on one GPU, ``--t5_cpu``
    with ``--t5_fsdp``, and an attention kernel the device's family does not run.
    """
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 1:
        raise LlmPerfOptError(f"gpus: must be an integer ≥ 1, got {gpus!r}")
    if parallelism is None:
        parallelism = default_parallelism(num_heads, gpus)
    elif not isinstance(parallelism, Parallelism):
        raise LlmPerfOptError(f"parallelism: expected a Parallelism, got {parallelism!r}")
    if parallelism.world_size != gpus:
        raise LlmPerfOptError(
            f"parallelism: ulysses × ring = {parallelism.ulysses} × {parallelism.ring} = "
            f"{parallelism.world_size} must equal gpus = {gpus} (generate.py asserts it)"
        )
    check_parallelism(parallelism, num_heads=num_heads)
    offload = gpus == 1 if offload is None else _flag("offload", offload)
    t5_cpu = _flag("t5_cpu", t5_cpu)
    if t5_fsdp is None:
        t5_fsdp = parallelism.fsdp and not t5_cpu
    t5_fsdp = _flag("t5_fsdp", t5_fsdp)
    if t5_fsdp and gpus == 1:
        raise LlmPerfOptError(
            "t5_fsdp: FSDP needs more than one GPU (generate.py rejects it on one); got gpus=1"
        )
    if t5_fsdp and t5_cpu:
        raise LlmPerfOptError(
            "t5_cpu: the official umT5 on the CPU only works without --t5_fsdp; got t5_cpu=True "
            "with t5_fsdp=True (accepted: one of them)"
        )
    if attention_kernel not in ATTENTION_KERNELS:
        raise LlmPerfOptError(
            f"attention_kernel: unknown kernel {attention_kernel!r}; accepted: {', '.join(ATTENTION_KERNELS)}"
        )
    efficiencies.for_device(accelerator).factor(f"attention.{attention_kernel}")
    return RunConfig(
        gpus=gpus,
        parallelism=parallelism,
        offload=offload,
        t5_cpu=t5_cpu,
        t5_fsdp=t5_fsdp,
        attention_kernel=attention_kernel,
        guidance=_flag("guidance", guidance),
        overlap=overlap,
    )
