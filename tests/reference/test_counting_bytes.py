"""The eager byte counter: broadcast inputs once, RMS norm as the fused op a CUDA build dispatches,
nearest upsampling with the copy the CUDA kernel makes of a strided input."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

import torch

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.reference.counting import measure_forward, stored_numel

pytestmark = pytest.mark.reference


def test_an_expanded_view_counts_the_elements_it_stores() -> None:
    """A [3, 1, 8] tensor expanded to [3, 5, 8] addresses 24 elements, not 120."""
    base = torch.empty(3, 1, 8, device="meta")
    assert stored_numel(base.expand(3, 5, 8)) == 24
    assert stored_numel(torch.empty(3, 5, 8, device="meta")) == 120


class _Upsample(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.interpolate(x, scale_factor=2.0, mode="nearest-exact")


@pytest.mark.parametrize(
    ("layout", "copied"), [("contiguous", False), ("channels_last", False), ("folded", True)]
)
def test_nearest_upsampling_copies_a_strided_input_first(layout: str, copied: bool) -> None:
    """fp32 x:[12, 5, 6, 7] → [12, 5, 12, 14]: read x, write 4× its size; a strided x (frames folded
    out of [1, 5, 12, 6, 7] into the batch, a view) is read and written once more, as the CUDA kernel
    makes it contiguous first."""
    if layout == "folded":
        x = torch.empty(1, 5, 12, 6, 7, device="meta").permute(0, 2, 1, 3, 4).reshape(12, 5, 6, 7)
    else:
        x = torch.empty(12, 5, 6, 7, device="meta")
        if layout == "channels_last":
            x = x.contiguous(memory_format=torch.channels_last)
    measured = measure_forward(_Upsample(), {"x": x})
    nbytes = 4 * 12 * 5 * 6 * 7
    copy = nbytes if copied else 0
    assert (measured.total.bytes_read, measured.total.bytes_written) == (nbytes + copy, 4 * nbytes + copy)


def test_rms_norm_counts_as_one_fused_kernel() -> None:
    """bf16 x:[2, 7, 64] and weight:[64] → read x + w, write y + an fp32 rstd per row."""
    norm = torch.nn.RMSNorm(64, device="meta", dtype=torch.bfloat16)
    x = torch.empty(2, 7, 64, device="meta", dtype=torch.bfloat16)
    fused = measure_forward(norm, {"x": x})
    # read 2·7·64·2 + 64·2 = 1,920; written 2·7·64·2 + 14·4 = 1,848
    assert dict(fused.totals).keys() == {"aten._fused_rms_norm"}
    assert (fused.total.bytes_read, fused.total.bytes_written) == (1_920, 1_848)


def test_without_the_cuda_dispatch_the_composite_is_counted() -> None:
    """The meta device's own path: upcast, pow, mean, add_, rsqrt, mul, weight mul, downcast."""
    norm = torch.nn.RMSNorm(64, device="meta", dtype=torch.bfloat16)
    x = torch.empty(2, 7, 64, device="meta", dtype=torch.bfloat16)
    eager = measure_forward(norm, {"x": x}, fused_rms_norm=False)
    assert set(eager.totals) == {
        "aten._to_copy",
        "aten.pow",
        "aten.mean",
        "aten.add_",
        "aten.rsqrt",
        "aten.mul",
    }
    assert eager.total.bytes_read > 3 * measure_forward(norm, {"x": x}).total.bytes_read


def test_mismatched_weight_dtype_falls_back_to_the_composite() -> None:
    """An fp32 weight on a bf16 input is not fused on CUDA either (rms_norm_symint's dtype check)."""
    norm = torch.nn.RMSNorm(64, device="meta", dtype=torch.float32)
    x = torch.empty(2, 7, 64, device="meta", dtype=torch.bfloat16)
    assert "aten._fused_rms_norm" not in measure_forward(norm, {"x": x}).totals


class _MaskedAttention(torch.nn.Module):
    def forward(self, q: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.scaled_dot_product_attention(q, q, q, attn_mask=mask, scale=1.0)


class _Pad(torch.nn.Module):
    def __init__(self, pad: tuple[int, ...]) -> None:
        super().__init__()
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.pad(x, self.pad)


@pytest.mark.parametrize(("length", "padded"), [(16, 0), (7, 8)])
def test_a_float_mask_runs_the_memory_efficient_kernel(length: int, padded: int) -> None:
    """q:[2, 4, L, 8] bf16 and a [1, 4, L, L] bias: q, k, v and the bias read once, only the output
    written (no log-sum-exp); rows of L ≠ 0 mod 8 are first padded into a copy of width 8·⌈L/8⌉
    (the copy filled, then the bias written into it)."""
    q = torch.empty(2, 4, length, 8, device="meta", dtype=torch.bfloat16)
    mask = torch.empty(1, 4, length, length, device="meta", dtype=torch.bfloat16)
    counted = measure_forward(_MaskedAttention(), {"q": q, "mask": mask})
    kernel = counted.totals["aten._scaled_dot_product_efficient_attention"]
    bias = 2 * 4 * length * length
    assert (kernel.bytes_read, kernel.bytes_written) == (3 * q.nbytes + bias, q.nbytes)
    pad = counted.totals.get("aten.constant_pad_nd")
    if padded:
        assert pad is not None
        assert (pad.bytes_read, pad.bytes_written) == (bias, 2 * 4 * length * padded + bias)
    else:
        assert pad is None


def test_a_boolean_mask_is_a_clear_error() -> None:
    """The fused path takes an additive float mask only; a boolean one names what is accepted."""
    q = torch.empty(1, 2, 4, 8, device="meta", dtype=torch.bfloat16)
    mask = torch.empty(1, 2, 4, 4, device="meta", dtype=torch.bool)
    with pytest.raises(LlmPerfOptError, match="additive float mask"):
        measure_forward(_MaskedAttention(), {"q": q, "mask": mask})


@pytest.mark.parametrize(
    ("pad", "interior"), [((1, 1, 1, 1), 3 * 4 * 5), ((0, 2), 3 * 4 * 5), ((1, -2), 3 * 4 * 3), ((0, 0), 0)]
)
def test_a_positive_pad_fills_the_output_then_copies_the_input_into_it(
    pad: tuple[int, ...], interior: int
) -> None:
    """F.pad of a [3, 4, 5] fp32 tensor reads the input less any crop; with a positive pad it writes
    the padded output whole, then its interior again; with none, a clone."""
    x = torch.empty(3, 4, 5, device="meta")
    counted = measure_forward(_Pad(pad), {"x": x})
    cost = counted.totals["aten.constant_pad_nd"]
    out = torch.nn.functional.pad(x, pad)
    assert cost.bytes_read == 4 * (interior or 3 * 4 * 5)
    assert cost.bytes_written == out.nbytes + 4 * interior
