"""
Sum a py-spy profile by source file: where a run's CPU goes, module by module.

py-spy is not a project dependency (``pip install py-spy`` into any environment). Record
a no-fault run against an emulator started separately, then read the raw output:

    py-spy record --nonblocking --rate 1000 -f raw -o spy.txt -- \\
        .venv/bin/python -m provisioner run benchmarks/out/bench-cpu-3000.csv \\
        --report /tmp/r.csv --fresh --quiet --yes
    .venv/bin/python benchmarks/spy_by_file.py spy.txt

Each sample counts for the file of its innermost Python frame (a C call such as a
socket send or an SQLite commit counts for the Python line that made it); samples
taken while importing are summed apart, as "imports".
"""

from __future__ import annotations

import argparse
import re
from collections import Counter

_FRAME = re.compile(r".*? \((.*?):\d+\)$")
_STDLIB = re.compile(r".*/lib/python3\.\d+/")


def short(path: str) -> str:
    """A frame's file without the interpreter's or the checkout's prefix."""
    if "/site-packages/" in path:
        return path.split("/site-packages/")[-1]
    if "/provisioner/" in path:
        return "provisioner/" + path.split("/provisioner/", 1)[-1]
    return _STDLIB.sub("", path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("raw", help="py-spy's raw output (-f raw)")
    parser.add_argument("--top", type=int, default=20)
    options = parser.parse_args()
    by_file: Counter[str] = Counter()
    total = 0
    with open(options.raw, encoding="utf-8") as lines:
        for line in lines:
            stack, _, count = line.rstrip().rpartition(" ")
            if not stack:
                continue
            samples = int(count)
            total += samples
            frames = stack.split(";")
            if any("_find_and_load" in frame for frame in frames):
                by_file["imports"] += samples
                continue
            found = _FRAME.match(frames[-1])
            by_file[short(found.group(1)) if found else frames[-1]] += samples
    print(f"{total} samples")
    for name, samples in by_file.most_common(options.top):
        print(f"{samples / total:6.1%}  {name}")


if __name__ == "__main__":
    main()
