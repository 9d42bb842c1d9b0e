"""
Simulate the partner benchmark's regime: five orgs with one bucket each, the run as
long as its slowest org.

Each org is one ``sim_rates.simulate`` run (its own seed); five seeds make one
partner run, whose share of the limit is its slowest org's (the run ends when the
last org does). Prints, per bucket, the median share of single orgs, the median
five-org share and its spread over ``--runs`` partner runs, and the 429 episodes.

    .venv/bin/python benchmarks/experiments/sim_five_orgs.py [--runs 8]
        [--margin 0.005] [--all]

With ``controller-experiment.patch`` applied (see README.md here) its environment
knobs try the restart, climb and burst-spending changes the README's Performance
section reports as tried and set aside.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sim_rates

from provisioner.settings import RateControl
from provisioner.webex.ratelimit import DEFAULT_TUNING

ORGS = 5


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--runs", type=int, default=8, help="partner runs (8)")
    parser.add_argument("--margin", type=float, default=None)
    parser.add_argument(
        "--all", action="store_true", help="every bucket of sim_rates, not 20/s burst 5"
    )
    options = parser.parse_args(argv)
    tuning = DEFAULT_TUNING
    if options.margin is not None:
        tuning = replace(tuning, margin=options.margin)
    buckets = sim_rates.BUCKETS if options.all else ((20, 5, 600),)
    print("bucket          one org  five orgs (min-max)     episodes (max)")
    for limit, burst, calls in buckets:
        singles, runs, episodes = [], [], []
        for run in range(options.runs):
            shares = []
            for org in range(ORGS):
                outcome = sim_rates.simulate(
                    limit,
                    burst,
                    calls,
                    control=RateControl(),
                    tuning=tuning,
                    seed=run * ORGS + org,
                )
                shares.append(outcome.share)
                episodes.append(outcome.episodes)
            singles += shares
            runs.append(min(shares))
        print(
            f"{limit:>4}/s burst {burst:<3} {statistics.median(singles):6.1%}   "
            f"{statistics.median(runs):6.1%} ({min(runs):.1%}-{max(runs):.1%})   "
            f"{statistics.mean(episodes):.2f} ({max(episodes)})"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
