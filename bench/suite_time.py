"""Wall time, CPU use and slowest tests of a full run of the test suite.

Runs pytest (by default the README's test command without the install step, i.e. the pyproject's
addopts: two workers, --durations=15) in a child process and records:

- ``wall_s``: seconds from start to exit;
- ``cpu_s``: user + system seconds of pytest and its descendants (the pipelines the tests start);
  SLURM jobs are children of the local cluster's ``slurmd``, not of pytest, and are not in it;
- ``machine_cpu_s``: busy seconds of the whole machine over the run (``/proc/stat``), SLURM jobs
  included; on a machine that runs nothing else this is the suite's CPU use;
- ``cpu_percent``, ``machine_cpu_percent``: those over ``wall_s`` (200 % = both cores of this
  machine busy throughout);
- the outcome line and the slowest tests as pytest printed them.

    python bench/suite_time.py [--label after] [-- extra pytest args]
        -> results/benchmarks/suite_time.csv (one row per call, appended)
           results/benchmarks/suite_slowest_<label>.csv, suite_output_<label>.txt (pytest's output)

Pair it with ``bench/overhead.py``'s ratio, or run it twice, since machines vary from day to day.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
DURATION = re.compile(r"^([\d.]+)s (call|setup|teardown)\s+(\S.*)$", re.M)
OUTCOME = re.compile(r"^=*\s*(\d+ (?:passed|failed).*?)\s*=*$", re.M)


def slowest(output: str) -> pd.DataFrame:
    """The rows of pytest's ``--durations`` table: seconds, phase, test."""
    rows = [(float(s), phase, test.strip()) for s, phase, test in DURATION.findall(output)]
    return pd.DataFrame(rows, columns=["seconds", "phase", "test"])


def outcome(output: str) -> str:
    """pytest's closing summary ("219 passed, 2 skipped in 1000.00s"), or "" if none."""
    found = OUTCOME.findall(output)
    return found[-1] if found else ""


def machine_busy_seconds() -> float:
    """Busy CPU seconds of the whole machine since boot (all cores; idle and iowait left out)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def run_suite(extra: list[str]) -> tuple[float, float, float, int, str]:
    """(wall s, CPU s of pytest's process tree, busy s of the machine, exit code, output) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy = machine_busy_seconds()
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", *extra], cwd=ROOT,
                          capture_output=True, text=True)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, machine_busy_seconds() - busy, proc.returncode, proc.stdout + proc.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--label", default="run", help="name of this measurement (e.g. before, after)")
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "benchmarks")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args()

    wall, cpu, machine_cpu, code, output = run_suite(args.pytest_args)
    args.out.mkdir(parents=True, exist_ok=True)
    row = pd.DataFrame([{
        "label": args.label, "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "cpu_percent": round(100 * cpu / wall),
        "machine_cpu_s": round(machine_cpu, 1), "machine_cpu_percent": round(100 * machine_cpu / wall),
        "exit_code": code, "outcome": outcome(output), "pytest_args": " ".join(args.pytest_args),
    }])
    table = args.out / "suite_time.csv"
    row.to_csv(table, mode="a", header=not table.exists(), index=False)
    slowest(output).to_csv(args.out / f"suite_slowest_{args.label}.csv", index=False)
    (args.out / f"suite_output_{args.label}.txt").write_text(output)  # failures in full
    print(row.to_string(index=False))
    print(slowest(output).to_string(index=False))
    if code != 0:
        print(f"failed: the whole output is in {args.out / f'suite_output_{args.label}.txt'}", file=sys.stderr)
    sys.exit(code)


if __name__ == "__main__":
    main()
