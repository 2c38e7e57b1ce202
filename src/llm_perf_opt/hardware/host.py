"""The host CPU, for the work the official pipeline runs there.

Two parts of a Wan2.1 run leave the GPU: the umT5-XXL encoder with ``--t5_cpu`` (in bf16, as
``T5EncoderModel(dtype=torch.bfloat16, device='cpu')`` builds it), and, with ``--offload_model``
on image-conditioned tasks, the guidance combination and the scheduler step (``wan/image2video.py``
moves both noise predictions and the latent to the CPU every step).

No CPU was measured in the references, so the rates of :data:`DEFAULT_HOST` are **assumptions**,
stated here and in docs/hardware.md, not fitted: one calibration point (C3 on one GPU) runs umT5 on
the CPU, too few to fit a rate. The roofline is the GPU's without efficiency factors (the rates are
meant as reached rates)::

    matmul, convolution, attention:  max(flops / matmul_flops, bytes / memory_bandwidth)
    element-wise:                    max(vector_flops / vector_flops, bytes / memory_bandwidth)
"""

from __future__ import annotations

from typing import Final

import sympy
from attrs import frozen

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.hardware.roofline import OpClass, maximum, op_class
from llm_perf_opt.symbolic.module import ModuleNode

__all__ = ["DEFAULT_HOST", "HostCpu", "host_own_seconds"]


@frozen(kw_only=True)
class HostCpu:
    """The reached rates of the host CPU (one process's share).

    Attributes:
        name: a label for reports.
        matmul_flops: FLOP/s of matrix products, convolutions and attention at the model's dtype
            (bf16 matrix products through oneDNN for umT5).
        vector_flops: FLOP/s of element-wise arithmetic.
        memory_bandwidth: bytes/s of host memory traffic.
        basis: why the numbers are what they are.
    """

    name: str
    matmul_flops: float
    vector_flops: float
    memory_bandwidth: float
    basis: str = ""

    def __attrs_post_init__(self) -> None:
        for name in ("matmul_flops", "vector_flops", "memory_bandwidth"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise LlmPerfOptError(f"host.{name}: must be a number > 0, got {value!r}")


DEFAULT_HOST: Final = HostCpu(
    name="server CPU (assumed)",
    matmul_flops=1.0e12,
    vector_flops=0.2e12,
    memory_bandwidth=100e9,
    basis=(
        "assumption, not a measurement: a two-socket server CPU of the kind that hosts 8 GPUs runs "
        "PyTorch's bf16 matrix products at ~1 TFLOP/s (oneDNN; a few TFLOP/s with AMX or AVX-512 "
        "BF16, far less without native bf16), element-wise work at 0.2 TFLOP/s and streams "
        "~100 GB/s of memory. umT5 on the CPU: 2 × 4.84 TFLOP ≈ 10 s at these rates"
    ),
)
"""The assumed host: see :class:`HostCpu` and docs/hardware.md."""


def host_own_seconds(node: ModuleNode, host: HostCpu = DEFAULT_HOST) -> sympy.Expr:
    """Seconds of a module's own ops on the host CPU over all its calls (per call of the root)."""
    parts = []
    for (primitive, _dtype), cost in node.own_breakdown.items():
        if op_class(primitive) is OpClass.ELEMENTWISE:
            work, rate = cost.vector_flops, host.vector_flops
        else:
            work, rate = cost.flops, host.matmul_flops
        traffic = cost.bytes_read + cost.bytes_written
        parts.append(maximum(work / sympy.Float(rate), traffic / sympy.Float(host.memory_bandwidth)))
    return node.calls * sympy.Add(*parts)
