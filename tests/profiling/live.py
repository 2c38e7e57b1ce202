"""A real trace made on the CPU: a small diffusers Wan transformer and VAE decoder with random weights,
run under torch.profiler with the module-id annotation; shared by the profiling tests."""

from __future__ import annotations

from pathlib import Path

import attrs
import torch
from diffusers import AutoencoderKLWan
from torch.profiler import ProfilerActivity, profile

from llm_perf_opt.profiling.annotate import annotate
from llm_perf_opt.reference.dit import DitWorkload, build_diffusers_dit, dit_inputs
from llm_perf_opt.wan2_1.vae import WanVAEConfig
from llm_perf_opt.wan2_1.variants import WanVariant, get_variant

SMALL_DIT = attrs.evolve(
    get_variant("t2v-1.3b"), dim=64, num_heads=2, ffn_dim=128, num_layers=2, text_dim=32, freq_dim=16
)
"""T2V-1.3B's structure at a size that runs in milliseconds on a CPU."""
DIT_WORKLOAD = DitWorkload(batch=1, frames=5, height=32, width=32, text_len=16)
"""2 latent frames of 4×4 latents: 8 video tokens, 16 text tokens."""
FORWARDS = 2
"""Transformer forwards in the trace (one guided step: conditional and unconditional)."""
SMALL_VAE = WanVAEConfig(dim=8)
"""The Wan-VAE's structure with 8 base channels instead of 96."""
VAE_FRAMES, VAE_HEIGHT, VAE_WIDTH = 5, 16, 16
"""The decoded video: 2 latent frames (2 decoder chunks) of 2×2 latents."""


def _random_inputs(variant: WanVariant) -> dict[str, torch.Tensor]:
    empty = dit_inputs(variant, DIT_WORKLOAD, torch.float32, device="cpu")
    return {
        name: torch.randn_like(t) if t.is_floating_point() else torch.full_like(t, 500)
        for name, t in empty.items()
    }


def record_trace(path: Path) -> Path:
    """Run the small transformer twice and the small VAE decoder once under the profiler, after one
    unprofiled warm-up run of each; write the Chrome trace to ``path``."""
    torch.manual_seed(0)
    dit = build_diffusers_dit(SMALL_DIT, torch.float32, device="cpu")
    vae = AutoencoderKLWan(base_dim=SMALL_VAE.dim).eval()  # type: ignore[no-untyped-call]
    inputs = _random_inputs(SMALL_DIT)
    latents = torch.randn(1, SMALL_VAE.z_dim, (VAE_FRAMES - 1) // 4 + 1, VAE_HEIGHT // 8, VAE_WIDTH // 8)
    with torch.no_grad():  # warm-up: oneDNN builds each convolution's kernel on its first call
        dit(**inputs)
        vae.decode(latents)
    with (
        annotate(dit),
        annotate(vae),
        profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof,
        torch.no_grad(),
    ):
        for _ in range(FORWARDS):
            dit(**inputs)
        vae.decode(latents)
    prof.export_chrome_trace(str(path))
    return path
