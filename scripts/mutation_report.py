"""
Print what ``mutmut run`` found, per module: mutants killed out of those tried, and
the survivors by name (``mutmut show NAME`` prints one's diff).

Usage: python scripts/mutation_report.py [MODULE-PREFIX]

Run by ``make mutate`` after mutmut. A survivor is either a missing test (write
it) or an equivalent mutant, which cannot change behaviour. Name an equivalent one
in ``docs/mutation-survivors.md`` (a table row: the mutant's name in backticks, then
a cell starting "equivalent", then why), or, when every mutant of its line is
equivalent, mark the line ``# pragma: no mutate`` with a comment saying why. A
survivor named there is printed with a note saying so; those without one are the
work left. Mutant numbers shift when a function changes: a name the file lists that
no longer survives is printed too, so the table is mended rather than trusted.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

MUTMUT = Path(sys.executable).with_name("mutmut")
SURVIVORS_DOC = (
    Path(__file__).resolve().parent.parent / "docs" / "mutation-survivors.md"
)
# | `provisioner.intake.mac.x__scientific__mutmut_10` | equivalent: ... | ... |
EQUIVALENT_ROW = re.compile(
    r"^\|\s*`(?P<name>[^`]+__mutmut_\d+)`\s*\|\s*equivalent", re.IGNORECASE
)
# provisioner.intake.mac.x_normalise_mac__mutmut_27 or ...ratelimit.xǁEpisodeǁdrain__mutmut_3
NAME = re.compile(
    r"^\s*(?P<name>(?P<module>[\w.]+?)\.x[_ǁ]\S*__mutmut_\d+): (?P<status>.+)$"
)
KILLED = {"killed", "caught by type check", "timeout"}


def named_equivalent(doc: Path = SURVIVORS_DOC) -> set[str]:
    """
    Return the mutants ``doc``'s tables name as equivalent (none without the file).
    """
    if not doc.is_file():
        return set()
    lines = doc.read_text(encoding="utf-8").splitlines()
    return {found["name"] for line in lines if (found := EQUIVALENT_ROW.match(line))}


def main(prefix: str = "") -> int:
    listing = subprocess.run(
        [str(MUTMUT), "results", "--all", "True"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    tried: dict[str, int] = defaultdict(int)
    killed: dict[str, int] = defaultdict(int)
    survivors: dict[str, dict[str, str]] = defaultdict(dict)
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
            survivors[module][found["name"]] = status
    if not tried:
        print("no mutant was tried: run `make mutate` first")
        return 1
    equivalent = named_equivalent()
    width = max(len(module) for module in tried)
    print(f"{'module':<{width}}  killed / tried   share  survivors  named equivalent")
    for module in [*sorted(tried), "all"]:
        if module == "all":
            done, total = sum(killed.values()), sum(tried.values())
            left = [name for names in survivors.values() for name in names]
        else:
            done, total = killed[module], tried[module]
            left = list(survivors.get(module, {}))
        named = sum(1 for name in left if name in equivalent)
        print(
            f"{module:<{width}}  {done:>6} / {total:<6} {100 * done / total:5.1f}%"
            f"  {len(left):>9}  {named:>16}"
        )
    for module in sorted(survivors):
        print(f"\nsurvivors in {module}:")
        for name, status in sorted(survivors[module].items()):
            note = (
                f" equivalent: see {SURVIVORS_DOC.name}" if name in equivalent else ""
            )
            print(f"  {name} ({status}){note}")
    # Only modules this listing covers: the others' names were not tried here.
    surviving = {name for names in survivors.values() for name in names}
    stale = sorted(
        name
        for name in equivalent - surviving
        if name.startswith(prefix) and any(name.startswith(f"{m}.x") for m in tried)
    )
    if stale:
        print(f"\nnamed as equivalent in {SURVIVORS_DOC.name} but not surviving now:")
        for name in stale:
            print(f"  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:2]))
