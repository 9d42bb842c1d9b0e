"""
Print what ``mutmut run`` found, per module: mutants killed out of those tried, and
the survivors by name (``mutmut show NAME`` prints one's diff).

Usage: python scripts/mutation_report.py [MODULE-PREFIX]

Run by ``make mutate`` after mutmut. A survivor is either a missing test (write
it) or an equivalent mutant, which cannot change behaviour: mark its line
``# pragma: no mutate`` with a comment saying why.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

MUTMUT = Path(sys.executable).with_name("mutmut")
# provisioner.intake.mac.x_normalise_mac__mutmut_27 or ...ratelimit.xǁEpisodeǁdrain__mutmut_3
NAME = re.compile(
    r"^\s*(?P<name>(?P<module>[\w.]+?)\.x[_ǁ]\S*__mutmut_\d+): (?P<status>.+)$"
)
KILLED = {"killed", "caught by type check", "timeout"}


def main(prefix: str = "") -> int:
    listing = subprocess.run(
        [str(MUTMUT), "results", "--all", "True"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    tried: dict[str, int] = defaultdict(int)
    killed: dict[str, int] = defaultdict(int)
    survivors: dict[str, list[str]] = defaultdict(list)
    for line in listing.splitlines():
        found = NAME.match(line)
        if found is None or not found["name"].startswith(prefix):
            continue
        module, status = found["module"], found["status"].strip()
        if status == "not checked":
            continue
        tried[module] += 1
        if status in KILLED:
            killed[module] += 1
        else:
            survivors[module].append(f"{found['name']} ({status})")
    if not tried:
        print("no mutant was tried: run `make mutate` first")
        return 1
    width = max(len(module) for module in tried)
    print(f"{'module':<{width}}  killed / tried")
    for module in sorted(tried):
        share = 100 * killed[module] / tried[module]
        print(
            f"{module:<{width}}  {killed[module]:>4} / {tried[module]:<4} {share:5.1f}%"
        )
    total_killed, total = sum(killed.values()), sum(tried.values())
    print(
        f"{'all':<{width}}  {total_killed:>4} / {total:<4} {100 * total_killed / total:5.1f}%"
    )
    for module in sorted(survivors):
        print(f"\nsurvivors in {module}:")
        for name in sorted(survivors[module]):
            print(f"  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:2]))
