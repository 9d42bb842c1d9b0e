"""
Time one ``provisioner`` command in two checkouts, alternating, and compare them.

This machine's speed drifts by a fifth or more from one hour to the next, so two
trees are only compared fairly run by run: A, B, A, B... Each run is a fresh child
process (``<tree>/.venv/bin/python -m provisioner ARGS`` in that tree), measured from
outside: wall time, CPU time and peak RSS from ``os.wait4``. Each tree's package is
byte-compiled first, as an install does. Prints min and median per tree. The other checkout needs its own ``make install``; paths in ARGS are taken
from where you call this.

    git worktree add /tmp/old <commit> && make -C /tmp/old install
    .venv/bin/python benchmarks/interleave.py --other /tmp/old --runs 10 -- \\
        validate benchmarks/out/validate-100000.csv
"""

from __future__ import annotations

import argparse
import compileall
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def one_run(tree: Path, args: list[str]) -> tuple[float, float, float]:
    """
    Run the command once in ``tree``; return (wall s, CPU s, peak RSS MB).
    """
    started = time.perf_counter()
    child = subprocess.Popen(
        [str(tree / ".venv" / "bin" / "python"), "-m", "provisioner", *args],
        cwd=tree,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _, _, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--other", type=Path, required=True, help="the other checkout")
    parser.add_argument("--runs", type=int, default=10, help="runs per tree")
    parser.add_argument("args", nargs="+", help="the provisioner command's arguments")
    options = parser.parse_args(argv)
    # Paths in the command are the caller's: make them absolute for both trees.
    args = [
        str(Path(arg).resolve()) if Path(arg).exists() else arg for arg in options.args
    ]
    trees = {"other": options.other.resolve(), "this": ROOT}
    for tree in trees.values():
        compileall.compile_dir(tree / "provisioner", quiet=1)
    figures: dict[str, list[tuple[float, float, float]]] = {name: [] for name in trees}
    for _ in range(options.runs):
        for name, tree in trees.items():
            figures[name].append(one_run(tree, args))
    print(f"{options.runs} alternating runs of: provisioner {' '.join(options.args)}")
    for name, runs in figures.items():
        walls, cpus = [r[0] for r in runs], [r[1] for r in runs]
        print(
            f"{name:5} {trees[name]}: wall min {min(walls):.3f} median "
            f"{statistics.median(walls):.3f} s; CPU min {min(cpus):.3f} median "
            f"{statistics.median(cpus):.3f} s; peak RSS {max(r[2] for r in runs):.0f} MB"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
