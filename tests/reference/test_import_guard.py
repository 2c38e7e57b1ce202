"""The reference package without its optional dependencies: a clear error, not a traceback from torch."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def test_import_without_torch_names_the_extra() -> None:
    """Importing llm_perf_opt.reference where torch is absent raises LlmPerfOptError naming the extra."""
    script = textwrap.dedent(
        """
        import sys
        sys.modules["torch"] = None  # what an environment without torch looks like to find_spec
        from llm_perf_opt.errors import LlmPerfOptError
        try:
            import llm_perf_opt.reference
        except LlmPerfOptError as error:
            print(error)
        else:
            raise SystemExit("imported without torch")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert "needs torch" in result.stdout
    assert "install the reference extra" in result.stdout


def test_rest_of_library_does_not_import_torch() -> None:
    """The variant records load without importing torch."""
    script = "import sys, llm_perf_opt.wan2_1.variants; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
