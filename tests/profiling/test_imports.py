"""The trace import, comparison, fit and command run without torch; missing extras are clear errors."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_profiling_does_not_import_torch() -> None:
    """Importing the trace, comparison, calibration and command modules leaves torch unloaded."""
    script = (
        "import sys, llm_perf_opt.profiling.trace, llm_perf_opt.profiling.compare, "
        "llm_perf_opt.profiling.calibrate, llm_perf_opt.profiling.cli; print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_missing_ijson_names_the_extra() -> None:
    """Without ijson, importing a JSON trace is an LlmPerfOptError naming the profiling extra."""
    script = textwrap.dedent(
        """
        import sys, tempfile, pathlib
        sys.modules["ijson"] = None
        from llm_perf_opt.errors import LlmPerfOptError
        from llm_perf_opt.profiling.trace import import_trace
        path = pathlib.Path(tempfile.mkdtemp()) / "t.json"
        path.write_text('{"traceEvents": []}')
        try:
            import_trace(path)
        except LlmPerfOptError as error:
            print(error)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert "needs ijson; install the profiling extra" in result.stdout
