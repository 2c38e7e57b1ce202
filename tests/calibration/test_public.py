"""The public stack timings read as calibration records: what is predicted, what is left out."""

from __future__ import annotations

import json
from importlib import resources

from llm_perf_opt.calibration import CALIBRATION
from llm_perf_opt.calibration.public import public_records, published_record


def _raw(record_id: str) -> dict[str, object]:
    text = (
        resources.files("llm_perf_opt.deployment.stacks").joinpath("public_records.json").read_text("utf-8")
    )
    return next(r for r in json.loads(text)["records"] if r["id"] == record_id)


def test_forty_are_predicted_and_nine_left_out_with_their_reason() -> None:
    """Step caching on (6) and the TAEHV decoder (3) are not expressible; none is fitted."""
    read = public_records()
    assert (len(read.records), len(read.skipped)) == (40, 9)
    assert not any(record.fitted for record in read.records)
    reasons = sorted(set(read.skipped.values()))
    assert [r.split(":")[0] for r in reasons] == [
        "decoded with the TAEHV tiny autoencoder, not the Wan VAE",
        "step caching on",
    ]
    assert not {r.id for r in read.records} & {r.id for r in CALIBRATION.records}


def test_stated_kernels_and_precisions_are_kept() -> None:
    """SageAttention2 follows the kernel family; fp8-sgl is per-channel fp8; block offload is group."""
    hopper = published_record(_raw("lightx2v-bench-H200-lightx2v-1-i2v-480p"))
    ada = published_record(_raw("lightx2v-bench-RTX4090-lightx2v-5-i2v-480p"))
    assert not isinstance(hopper, str) and not isinstance(ada, str)
    assert (hopper.attention_kernel, hopper.gemm_precision, hopper.offload) == ("sage-int8-fp8", None, "none")
    assert (ada.attention_kernel, ada.gemm_precision, ada.offload) == (
        "sage-int8-fp16",
        "fp8-per-channel",
        "group",
    )
    compiled = published_record(_raw("fastvideo-A100-t2v-1.3b-compile"))
    official = published_record(_raw("flashdreams-GB200-official"))
    assert not isinstance(compiled, str) and not isinstance(official, str)
    assert compiled.fusion == official.fusion == "torch-compile"
    assert published_record(_raw("lightx2v-bench-H200-lightx2v-4-teacache-i2v-480p")).startswith(
        "step caching"
    )
