"""``python -m llm_perf_opt.hardware``: the calibration table, and with ``--fit`` the refitted factors."""

from __future__ import annotations

import argparse
import sys

from llm_perf_opt.hardware.calibration import FREE_FACTORS, calibration_table, fit_efficiencies
from llm_perf_opt.hardware.efficiency import EFFICIENCIES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m llm_perf_opt.hardware",
        description="Each calibration point's prediction, measurement and error, and the MAPE.",
    )
    parser.add_argument(
        "--fit", action="store_true", help="refit the factors and compare with the shipped ones"
    )
    args = parser.parse_args(argv)
    print(calibration_table().text())
    if args.fit:
        result = fit_efficiencies()
        print(f"\nfit ({result.iterations} steps): factor, prior, fitted, shipped")
        for factor in FREE_FACTORS:
            scope, key = factor.cells[0]
            shipped = EFFICIENCIES.value(scope, key)
            print(f"  {factor.name:<24}{factor.prior:>8.3f}{result.values[factor.name]:>9.3f}{shipped:>9.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
