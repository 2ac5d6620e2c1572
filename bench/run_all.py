"""Run the harness-cost benchmarks and study_cost.py one after another and print rows for bench/RESULTS.md.

Each script runs in its own process (so that one's torch thread setting or worker pool cannot
touch the next), its output is passed through, and its `RATIO name = value (... target ...)`
lines are gathered into one table: benchmark, ratio, target, date, machine, command. The machine
column records the CPU count, the load average at the start (other jobs skew every ratio) and
the GPU when torch sees one.
Usage: python bench/run_all.py [--quick] [--only harness_overhead,agent_cost]
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import Sequence

HERE = Path(__file__).resolve().parent
SCRIPTS = ("harness_overhead", "parallel_speedup", "agent_cost", "collect_throughput", "train_throughput",
           "train_layout", "study_cost")
RATIO = re.compile(r"^RATIO (\S+) = (\S+) .*?(?:target ([<>]=? [0-9.]+)|no target).*$", re.M)


def machine() -> str:
    gpu = ""
    try:
        import torch

        if torch.cuda.is_available():
            gpu = ", " + torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return (f"{os.cpu_count()} CPU {platform.machine()}{gpu}, load {os.getloadavg()[0]:.1f}, "
            f"Python {platform.python_version()}")


def main(argv: Sequence[str] | None = None) -> list[tuple[str, ...]]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes for every script (a smoke test)")
    p.add_argument("--only", default=",".join(SCRIPTS), help="comma-separated script names")
    a = p.parse_args(argv)
    rows = []
    for name in a.only.split(","):
        where = machine()
        command = f"python bench/{name}.py" + (" --quick" if a.quick else "")
        print(f"## {command}", flush=True)
        out = subprocess.run([sys.executable, str(HERE / f"{name}.py")] + (["--quick"] if a.quick else []),
                             capture_output=True, text=True, check=True).stdout
        print(out, flush=True)
        for label, value, target in RATIO.findall(out):
            rows.append((label, value, target or "-", datetime.date.today().isoformat(), where, f"`{command}`"))
    print("| benchmark | ratio | target | date | machine | command |\n|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return rows


if __name__ == "__main__":
    main()
