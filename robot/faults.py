"""The one shape of a `skillstack bench faults` entry, shared by every area's benchmark.

It lives on the lowest floor so that every area can use it. Each area
(`hw.benchmarks.faults_filter`, `faults_server`, `skills.fault_bench_sensors`,
`planners.faults_input`) returns a list of these from ``run(small, seed)``.
"""

from __future__ import annotations


def fault_entry(
    fault: str, criterion: str, trials: int, worst: float, limit: float, unit: str
) -> dict:
    """``{"fault", "criterion", "trials", "worst", "limit", "unit", "passed"}``: passed when
    the worst case over ``trials`` is within ``limit`` (a NaN or infinite worst case, which
    the areas report for a criterion that could not be measured, never passes)."""
    return {
        "fault": fault,
        "criterion": criterion,
        "trials": int(trials),
        "worst": float(worst),
        "limit": float(limit),
        "unit": unit,
        "passed": bool(worst <= limit),
    }
