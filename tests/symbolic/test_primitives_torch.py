"""The matrix, convolution and attention primitives equal FlopCounterMode on the same shapes (needs torch)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from llm_perf_opt.symbolic.dtypes import FP32
from llm_perf_opt.symbolic.primitives import (
    addmm,
    baddbmm,
    bmm,
    conv_output_size,
    convolution,
    mm,
    scaled_dot_product_attention,
)

torch = pytest.importorskip("torch")
flop_counter = pytest.importorskip("torch.utils.flop_counter")
functional = torch.nn.functional


def _meta(*shape: int) -> Any:
    return torch.empty(*shape, device="meta")


def _counted(run: Callable[[], object]) -> int:
    with flop_counter.FlopCounterMode(display=False) as counter:
        run()
    return int(counter.get_total_flops())


@pytest.mark.parametrize(("m", "k", "n"), [(3, 5, 7), (32_760, 5120, 5120), (1, 1, 1)])
def test_mm_and_addmm_equal_flop_counter(m: int, k: int, n: int) -> None:
    """mm and addmm (bias not counted) equal FlopCounterMode's mm_flop and addmm_flop."""
    a, b, bias = _meta(m, k), _meta(k, n), _meta(n)
    assert mm(m, k, n, dtype=FP32).cost.flops == _counted(lambda: torch.mm(a, b))
    assert addmm(m, k, n, dtype=FP32).cost.flops == _counted(lambda: torch.addmm(bias, a, b))


@pytest.mark.parametrize(("b", "m", "k", "n"), [(2, 3, 5, 7), (40, 32_760, 128, 512)])
def test_bmm_and_baddbmm_equal_flop_counter(b: int, m: int, k: int, n: int) -> None:
    """bmm and baddbmm equal FlopCounterMode's bmm_flop and baddbmm_flop."""
    x, y, c = _meta(b, m, k), _meta(b, k, n), _meta(b, m, n)
    assert bmm(b, m, k, n, dtype=FP32).cost.flops == _counted(lambda: torch.bmm(x, y))
    assert baddbmm(b, m, k, n, dtype=FP32).cost.flops == _counted(lambda: torch.baddbmm(c, x, y))


# (batch, c_in, c_out, kernel, in_spatial, stride, padding, dilation, groups)
CONVOLUTIONS = [
    (2, 4, 6, (3, 3), (10, 12), (2, 2), (1, 1), (1, 1), 1),
    (1, 3, 8, (3, 5), (17, 19), (2, 1), (1, 2), (1, 1), 1),
    (1, 8, 4, (3, 3), (9, 9), (1, 1), (0, 0), (2, 2), 2),
    (1, 8, 4, (3, 3, 3), (5, 6, 7), (1, 2, 2), (1, 1, 1), (1, 1, 1), 2),
    (1, 16, 32, (3, 1, 1), (6, 10, 12), (2, 1, 1), (0, 0, 0), (1, 1, 1), 1),
    (1, 16, 5120, (1, 2, 2), (21, 60, 104), (1, 2, 2), (0, 0, 0), (1, 1, 1), 1),
]


@pytest.mark.parametrize(
    ("batch", "c_in", "c_out", "kernel", "in_spatial", "stride", "padding", "dilation", "groups"),
    CONVOLUTIONS,
)
def test_convolution_equals_flop_counter(
    batch: int,
    c_in: int,
    c_out: int,
    kernel: tuple[int, ...],
    in_spatial: tuple[int, ...],
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    dilation: tuple[int, ...],
    groups: int,
) -> None:
    """2D and 3D convolutions with stride, padding, dilation and groups equal conv_flop, shapes included."""
    x = _meta(batch, c_in, *in_spatial)
    w = _meta(c_out, c_in // groups, *kernel)
    conv = functional.conv2d if len(kernel) == 2 else functional.conv3d
    out = conv(x, w, None, stride, padding, dilation, groups)
    out_spatial = tuple(
        conv_output_size(size, k, stride=s, padding=p, dilation=d)
        for size, k, s, p, d in zip(in_spatial, kernel, stride, padding, dilation, strict=True)
    )
    assert out_spatial == tuple(out.shape[2:])
    expected = _counted(lambda: conv(x, w, _meta(c_out), stride, padding, dilation, groups))
    cost = convolution(
        batch,
        c_in,
        c_out,
        kernel=kernel,
        out_spatial=out_spatial,
        in_spatial=in_spatial,
        groups=groups,
        bias=True,
        dtype=FP32,
    ).cost
    assert cost.flops == expected


@pytest.mark.parametrize(
    ("batch", "heads", "q_len", "kv_len", "head_dim"),
    [(2, 3, 5, 7, 8), (1, 40, 1560, 512, 128), (1, 12, 257, 257, 64)],
)
def test_sdpa_equals_flop_counter(batch: int, heads: int, q_len: int, kv_len: int, head_dim: int) -> None:
    """SDPA's 4·B·H·Sq·Sk·D equals FlopCounterMode on meta and torch's sdpa_flop_count."""
    q, k, v = (
        _meta(batch, heads, q_len, head_dim),
        _meta(batch, heads, kv_len, head_dim),
        _meta(batch, heads, kv_len, head_dim),
    )
    cost = scaled_dot_product_attention(batch, heads, q_len, kv_len, head_dim, dtype=FP32).cost
    assert cost.flops == _counted(lambda: functional.scaled_dot_product_attention(q, k, v))
    assert cost.flops == flop_counter.sdpa_flop_count(q.shape, k.shape, v.shape)


def test_registry_keys_are_flop_counter_ops() -> None:
    """Every FLOP-bearing registry key (but the CPU flash variant) has a formula in torch's flop_registry."""
    keys = [
        "mm",
        "addmm",
        "bmm",
        "baddbmm",
        "convolution",
        "_scaled_dot_product_flash_attention",
        "_scaled_dot_product_efficient_attention",
        "_scaled_dot_product_cudnn_attention",
    ]
    for key in keys:
        assert getattr(torch.ops.aten, key) in flop_counter.flop_registry, key


def test_rms_norm_eager_equals_the_composite_torch_runs() -> None:
    """rms_norm_eager's five kernels move the bytes of torch's own fp32 RMS-norm composite (no weight)."""
    pytest.importorskip("diffusers")
    from llm_perf_opt.reference.counting import measure_forward
    from llm_perf_opt.symbolic.cost import Cost
    from llm_perf_opt.symbolic.primitives import rms_norm_eager

    norm = torch.nn.RMSNorm(48, elementwise_affine=False, device="meta")
    eager = measure_forward(norm, {"x": torch.empty(3, 5, 48, device="meta")}, fused_rms_norm=False)
    cost = sum((op.cost for op in rms_norm_eager(15, 48)), start=Cost())
    assert (cost.bytes_read, cost.bytes_written) == (eager.total.bytes_read, eager.total.bytes_written)
