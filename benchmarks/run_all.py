"""
Run every benchmark and print one table of figures: the ``make bench`` entry point.

One emulator runs in a separate process for the whole session; before each run it is
reset (devices, counters, token bucket) and its fault knobs are set for the regime
through the admin view. ``provisioner run`` runs as a child process, as a user runs it,
with ``--fresh --quiet --report <csv>`` (CSV only, so the XLSX writer's cost, measured
separately below, stays out of the per-call figures). Figures are medians over
``--runs`` runs with the spread (min–max); nothing is asserted except that every run
provisioned every row.

Regimes:

- rate-limited: the emulator allows 50 requests/s (burst 10) with 40 ms latency and
  the tool is not told; 1,500 MAC rows with tags. Share of the limit = successful calls
  ÷ the run's own duration (its summary's "took") ÷ 50; 429 share from the emulator's
  counters; rows/s over the whole command's wall time.
- naive baseline on the same regime: ``benchmarks/naive_baseline.py``; our wall time
  as a ratio to its wall time (both whole commands).
- latency-bound: no limit, 100 ms latency, ``--concurrency 32``, 2,000 rows; the run's
  duration ÷ (calls × 0.1 s ÷ 32).
- overhead: no latency, no limit, 5,000 rows; the child's CPU time (``os.wait4``) minus
  a one-row run's, ÷ the emulator's extra request count; the child's peak RSS.
- intake and output: ``benchmarks/bench_validate.py`` (100,000-row CSV) in its own
  process; writing a 10,000-row XLSX report with ``bench_report``'s data.

    .venv/bin/python benchmarks/run_all.py [--runs N] [--quick] [--naive-runs N]
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import structlog

# benchmarks/ is a folder of scripts, not a package: Python puts the script's own
# folder first on sys.path, so its siblings import by name.
from common import (
    OUT,
    ROOT,
    CliRun,
    Emulator,
    Spread,
    markdown_table,
    run_cli,
    start_emulator,
    wait_child,
    write_manifest,
)

NO_FAULTS = {
    "rate_limit": None,
    "burst": 10,
    "latency_ms": 0.0,
    "jitter_ms": 0.0,
    "fault_rate": 0.0,
    "drop_rate": 0.0,
    "ambiguous_rate": 0.0,
}


@dataclass(frozen=True, slots=True)
class Sizes:
    """
    How big each regime is; ``--quick`` shrinks them all.
    """

    limited_rows: int = 1500
    latency_rows: int = 2000
    overhead_rows: int = 5000
    validate_rows: int = 100_000
    report_rows: int = 10_000


QUICK = Sizes(
    limited_rows=300,
    latency_rows=500,
    overhead_rows=1000,
    validate_rows=20_000,
    report_rows=2000,
)


@dataclass
class Table:
    """
    The rows of the final table, filled regime by regime.
    """

    rows: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    #: Targets hold at full size only: a --quick run is all fixed costs.
    judged: bool = True

    def add(
        self,
        regime: str,
        figure: str,
        value: str,
        target: str = "",
        met: bool | None = None,
    ) -> None:
        """
        Add one figure, with its target and whether the median met it, if it has one.
        """
        if met is None:
            verdict = ""
        elif not self.judged:
            verdict = "n/a (--quick)"
        else:
            verdict = "yes" if met else "**no**"
        self.rows.append((regime, figure, value, target, verdict))

    def render(self) -> str:
        """
        The table as markdown.
        """
        header = ("regime", "figure", "median (min–max)", "target", "met")
        return markdown_table(header, self.rows)


def say(text: str) -> None:
    """
    Print a progress line on stderr (the table goes to stdout at the end).
    """
    print(text, file=sys.stderr, flush=True)


def checked(run: CliRun, rows: int, what: str) -> CliRun:
    """
    Stop the benchmark if a run did not provision every row: its figures would lie.
    """
    created = re.search(r"created (\d+)", run.stdout)
    if run.code != 0 or created is None or int(created[1]) != rows:
        sys.stderr.write(run.stdout + run.stderr)
        raise SystemExit(f"{what}: the run did not create all {rows} rows")
    return run


def provision_run(
    emulator: Emulator, manifest: Path, rows: int, extra: Sequence[str], what: str
) -> tuple[CliRun, dict[str, int]]:
    """
    Reset the emulator, run ``provisioner run`` over ``manifest``, return the run and
    the emulator's counters.
    """
    emulator.reset()
    report = OUT / "run-report.csv"
    run = run_cli(
        ["run", str(manifest), "--report", str(report), "--fresh", "--quiet", *extra],
        base_url=emulator.base_url,
        cwd=ROOT,
    )
    stats = emulator.stats()
    counts = {
        "calls": int(stats["requests_total"]),
        "rate_limited": int(stats["rate_limited_total"]),
    }
    return checked(run, rows, what), counts


def rate_limited(
    emulator: Emulator, table: Table, rows: int, runs: int, naive_runs: int
) -> None:
    """
    The unknown 50/s limit: our share of it, 429s, rows/s; then the naive loop.
    """
    limit = 50.0
    emulator.set_faults(**{**NO_FAULTS, "rate_limit": limit, "latency_ms": 40.0})
    manifest = write_manifest(OUT / f"bench-limited-{rows}.csv", rows)
    shares, refused, speeds, walls = [], [], [], []
    for number in range(1, runs + 1):
        run, counts = provision_run(emulator, manifest, rows, (), "rate-limited")
        assert run.duration is not None
        accepted = counts["calls"] - counts["rate_limited"]
        shares.append(accepted / run.duration / limit)
        refused.append(counts["rate_limited"] / counts["calls"])
        speeds.append(rows / run.wall)
        walls.append(run.wall)
        say(
            f"rate-limited run {number}: {run.duration:.1f} s run, {run.wall:.1f} s "
            f"wall, {accepted} ok calls = {shares[-1]:.1%} of the limit, "
            f"429s {counts['rate_limited']}/{counts['calls']}"
        )
    regime = f"rate-limited: 50/s burst 10, 40 ms, {rows} rows"
    share, share_429 = Spread.of(shares), Spread.of(refused)
    table.add(
        regime,
        "successful calls/s ÷ limit",
        share.show("{:.1f}%", 100),
        "≥ 95%",
        met=share.median >= 0.95,
    )
    table.add(
        regime,
        "calls answered 429",
        share_429.show("{:.2f}%", 100),
        "≤ 2%",
        met=share_429.median <= 0.02,
    )
    table.add(regime, "rows/s (whole command)", Spread.of(speeds).show("{:.1f}"))
    table.add(regime, "wall time, s", Spread.of(walls).show("{:.1f}"))
    naive = naive_baseline(emulator, manifest, rows, naive_runs)
    naive_walls = [n["wall"] for n in naive]
    baseline = f"naive baseline, same regime ({len(naive)} run(s))"
    table.add(
        baseline,
        "successful calls/s ÷ limit",
        Spread.of(
            [(n["calls"] - n["rate_limited"]) / n["duration"] / limit for n in naive]
        ).show("{:.1f}%", 100),
    )
    table.add(
        baseline,
        "calls answered 429",
        Spread.of([n["rate_limited"] / n["calls"] for n in naive]).show("{:.1f}%", 100),
    )
    table.add(baseline, "wall time, s", Spread.of(naive_walls).show("{:.1f}"))
    naive_wall = Spread.of(naive_walls).median
    ratio = Spread.of([wall / naive_wall for wall in walls])
    table.add(
        regime,
        "our wall time ÷ naive wall time",
        ratio.show("{:.2f}"),
        "< 1",
        met=ratio.median < 1,
    )


def naive_baseline(
    emulator: Emulator, manifest: Path, rows: int, runs: int
) -> list[dict[str, float]]:
    """
    Run ``naive_baseline.py`` on the same regime ``runs`` times.
    """
    results = []
    script = Path(__file__).resolve().parent / "naive_baseline.py"
    for number in range(1, runs + 1):
        emulator.reset()
        started = time.perf_counter()
        done = subprocess.run(
            [
                sys.executable,
                str(script),
                str(manifest),
                "--base-url",
                emulator.base_url,
            ],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        wall = time.perf_counter() - started
        figures = json.loads(done.stdout.strip().splitlines()[-1])
        if figures["failed"]:
            raise SystemExit(f"naive baseline: {figures['failed']} rows failed")
        results.append({**figures, "wall": wall})
        say(
            f"naive run {number}: {wall:.1f} s wall, 429s "
            f"{figures['rate_limited']}/{figures['calls']}"
        )
    return results


def latency_bound(emulator: Emulator, table: Table, rows: int, runs: int) -> None:
    """
    No limit, 100 ms latency, concurrency 32: the run's duration against the ideal.
    """
    latency, concurrency = 0.1, 32
    emulator.set_faults(**{**NO_FAULTS, "latency_ms": latency * 1000})
    manifest = write_manifest(OUT / f"bench-latency-{rows}.csv", rows, prefix=0x0C)
    ratios = []
    for number in range(1, runs + 1):
        run, counts = provision_run(
            emulator, manifest, rows, ("--concurrency", str(concurrency)), "latency"
        )
        assert run.duration is not None
        ideal = counts["calls"] * latency / concurrency
        ratios.append(run.duration / ideal)
        say(
            f"latency run {number}: {run.duration:.2f} s vs ideal {ideal:.2f} s "
            f"({counts['calls']} calls) = {ratios[-1]:.3f}"
        )
    ratio = Spread.of(ratios)
    table.add(
        f"latency-bound: 100 ms, concurrency 32, {rows} rows",
        "run time ÷ (calls × latency ÷ concurrency)",
        ratio.show("{:.3f}"),
        "≤ 1.10",
        met=ratio.median <= 1.10,
    )


def overhead(emulator: Emulator, table: Table, rows: int, runs: int) -> None:
    """
    No latency, no limit: the client's CPU per API call and its peak RSS.
    """
    emulator.set_faults(**NO_FAULTS)
    manifest = write_manifest(OUT / f"bench-overhead-{rows}.csv", rows, prefix=0x0D)
    tiny = write_manifest(OUT / "bench-overhead-1.csv", 1, prefix=0x0E)
    per_call, rss, speeds = [], [], []
    for number in range(1, runs + 1):
        # The start-up baseline: imports, the catalogue, the first read, a 1-row report.
        base, base_counts = provision_run(emulator, tiny, 1, (), "overhead baseline")
        run, counts = provision_run(emulator, manifest, rows, (), "overhead")
        calls = counts["calls"] - base_counts["calls"]
        per_call.append((run.cpu - base.cpu) / calls * 1000)
        rss.append(run.max_rss_mb)
        speeds.append(rows / run.wall)
        say(
            f"overhead run {number}: {run.cpu:.2f} s CPU − {base.cpu:.2f} s start-up "
            f"over {calls} calls = {per_call[-1]:.3f} ms/call; peak RSS "
            f"{run.max_rss_mb:.0f} MB; {run.wall:.1f} s wall"
        )
    regime = f"overhead: no latency, no limit, {rows} rows"
    cpu = Spread.of(per_call)
    table.add(
        regime,
        "client CPU per API call, ms",
        cpu.show("{:.3f}"),
        "≤ 0.5 ms",
        met=cpu.median <= 0.5,
    )
    table.add(regime, "peak RSS, MB", Spread.of(rss).show("{:.0f}"))
    table.add(regime, "rows/s (whole command)", Spread.of(speeds).show("{:.0f}"))


def intake(table: Table, rows: int, runs: int) -> None:
    """
    Validate a generated CSV with ``bench_validate.py`` in its own process.
    """
    script = Path(__file__).resolve().parent / "bench_validate.py"
    process = subprocess.Popen(
        [sys.executable, str(script), "--rows", str(rows), "--runs", str(runs)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert process.stdout is not None
    output = process.stdout.read()
    process.stdout.close()
    wait_child(process)
    match = re.search(
        r"median ([0-9.]+) s over \d+ runs \(min ([0-9.]+), max ([0-9.]+)\); "
        r"peak RSS (\d+) MB",
        output,
    )
    if match is None:
        raise SystemExit(f"bench_validate.py printed no figures:\n{output}")
    wall = Spread(float(match[1]), float(match[2]), float(match[3]))
    say(f"validate: {output.strip()}")
    regime = f"intake: validate a {rows:,}-row CSV"
    table.add(regime, "wall time, s (whole command)", wall.show("{:.2f}"))
    table.add(regime, "peak RSS, MB", f"{match[4]} (largest run)")


def report_output(table: Table, rows: int, runs: int) -> None:
    """
    Write an XLSX report of ``rows`` rows with ``bench_report``'s realistic data.
    """
    import tempfile

    from bench_report import make_manifest, make_outcomes

    from provisioner.models import RunStats
    from provisioner.report.files import write_report

    structlog.configure(
        wrapper_class=structlog.make_filtering_bound_logger(logging.ERROR)
    )
    started = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)
    stats = RunStats(
        started_at=started,
        finished_at=started + timedelta(seconds=600),
        api_calls=rows * 2,
        rate_limited=12,
        retries=30,
    )
    times = []
    with tempfile.TemporaryDirectory() as name:
        manifest = make_manifest(Path(name), rows)
        outcomes = make_outcomes(manifest)
        path = Path(name) / "report.xlsx"
        for _ in range(runs):
            started_at = time.perf_counter()
            write_report(manifest, outcomes, [path], stats)
            times.append(time.perf_counter() - started_at)
    say(f"report: {', '.join(f'{t:.2f}' for t in times)} s")
    table.add(
        f"output: write a {rows:,}-row XLSX report",
        "wall time, s (in process)",
        Spread.of(times).show("{:.2f}"),
    )


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (3)")
    parser.add_argument(
        "--naive-runs",
        type=int,
        default=1,
        help="runs of the naive baseline (1: one run takes minutes)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="one small run of everything"
    )
    parser.add_argument(
        "--only",
        choices=("rate-limited", "latency-bound", "overhead", "intake"),
        action="append",
        help="run only this part (repeatable); latest.md is not written",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse(argv)
    sizes, runs = (QUICK, 1) if options.quick else (Sizes(), max(1, options.runs))
    naive_runs = 1 if options.quick else max(1, options.naive_runs)
    OUT.mkdir(parents=True, exist_ok=True)
    table = Table(judged=not options.quick)
    started = time.perf_counter()
    steps: list[tuple[str, Callable[[Emulator], None]]] = [
        (
            "rate-limited",
            lambda e: rate_limited(e, table, sizes.limited_rows, runs, naive_runs),
        ),
        ("latency-bound", lambda e: latency_bound(e, table, sizes.latency_rows, runs)),
        ("overhead", lambda e: overhead(e, table, sizes.overhead_rows, runs)),
    ]
    wanted = set(
        options.only or ("rate-limited", "latency-bound", "overhead", "intake")
    )
    with start_emulator() as emulator:
        for name, step in steps:
            if name in wanted:
                say(f"== {name}")
                step(emulator)
    if "intake" in wanted:
        say("== intake and output")
        intake(table, sizes.validate_rows, runs)
        report_output(table, sizes.report_rows, runs)
    elapsed = time.perf_counter() - started
    text = "\n".join(
        [
            f"# provisioner benchmarks, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            "",
            (
                f"{runs} run(s) per figure{' (--quick)' if options.quick else ''}; "
                f"the emulator in a separate process; took {elapsed / 60:.1f} min."
            ),
            "",
            table.render(),
            "",
        ]
    )
    print(text)
    if not options.only:
        (OUT / "latest.md").write_text(text, encoding="utf-8")
        say(f"written to {(OUT / 'latest.md').relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
