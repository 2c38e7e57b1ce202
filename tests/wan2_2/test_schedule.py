"""The A14B expert step split: closed form against a direct simulation of the official schedule."""

from __future__ import annotations

import numpy as np
import pytest

from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.symbolic.symbols import S
from llm_perf_opt.wan2_2 import expert_split, get_variant
from llm_perf_opt.wan2_2.schedule import expert_steps


def simulated_high_noise_steps(steps: int, shift: float, boundary: float, trained: int = 1000) -> int:
    """Steps with ``t ≥ boundary·N``, timesteps built as FlowUniPCMultistepScheduler.set_timesteps."""
    training_sigmas = (1.0 - np.linspace(1, 1 / trained, trained)[::-1]).astype(np.float32)
    sigma_max = float(training_sigmas[0])
    sigmas = np.linspace(sigma_max, 0.0, steps + 1)[:-1]
    sigmas = shift * sigmas / (1 + (shift - 1) * sigmas)
    timesteps = (sigmas * trained).astype(np.int64)  # torch .to(int64) truncates the same way
    return int(np.count_nonzero(timesteps >= boundary * trained))


def test_official_defaults() -> None:
    """T2V-A14B at 40 steps, shift 12, boundary 0.875: 26 high-noise steps; I2V at shift 5, 0.9: 15."""
    t2v, i2v = expert_split(get_variant("t2v-a14b")), expert_split(get_variant("i2v-a14b"))
    assert t2v is not None and i2v is not None
    assert (int(t2v.high_noise.subs(S, 40)), int(t2v.low_noise.subs(S, 40))) == (26, 14)
    assert (int(i2v.high_noise.subs(S, 40)), int(i2v.low_noise.subs(S, 40))) == (15, 25)
    assert expert_split(get_variant("ti2v-5b")) is None


@pytest.mark.parametrize("shift", [1.0, 2.0, 3.0, 5.0, 8.0, 12.0, 16.5])
@pytest.mark.parametrize("boundary", [0.1, 0.5, 0.875, 0.9, 0.95, 0.999])
def test_closed_form_equals_the_simulated_schedule(shift: float, boundary: float) -> None:
    """For 1–200 steps the closed form counts exactly the simulated high-noise steps; the rest are low."""
    split = expert_steps(boundary, shift)
    for steps in range(1, 201):
        high = int(split.high_noise.subs(S, steps))
        assert high == simulated_high_noise_steps(steps, shift, boundary), steps
        assert int(split.low_noise.subs(S, steps)) == steps - high


def test_split_is_monotone_in_the_boundary() -> None:
    """A later switch never gives the high-noise expert more steps."""
    counts = [int(expert_steps(b, 5.0).high_noise.subs(S, 50)) for b in (0.2, 0.5, 0.8, 0.9, 0.99)]
    assert counts == sorted(counts, reverse=True)


@pytest.mark.parametrize("boundary", [0, 1, -0.5, 1.5, True, "0.9"])
def test_boundary_outside_the_open_interval_is_an_error(boundary: object) -> None:
    """A boundary outside (0, 1) is an error that names the field and the accepted range."""
    with pytest.raises(LlmPerfOptError, match=r"boundary: must be a number in \(0, 1\)"):
        expert_steps(boundary, 5.0)  # type: ignore[arg-type]


def test_bad_shift_is_an_error() -> None:
    """A non-positive shift is an error naming sample_shift."""
    with pytest.raises(LlmPerfOptError, match="sample_shift: must be a positive number"):
        expert_steps(0.9, 0.0)
