"""
Run every benchmark and print one table of figures: the ``make bench`` entry point.

One emulator runs in a separate process for the whole session; before each run it is
reset (devices, counters, token bucket) and its fault knobs are set for the regime
through the admin view. ``provisioner run`` runs as a child process, as a user runs it,
with ``--fresh --quiet --report <csv>`` (CSV only, so the XLSX writer's cost, measured
separately below, stays out of the per-call figures). Figures are medians over
``--runs`` runs with the spread (min–max); nothing is asserted except that every run
provisioned every row.

Regimes (the goals are issue 15's; each figure is printed against its goal):

- rate-limited: the emulator allows 50 requests/s (burst 10) with 40 ms ±20% latency
  and the tool is not told; 1,000 MAC rows with tags over 40 workspaces. Share of the
  limit = successful calls ÷ the run's own duration (its summary's "took") ÷ 50 (goal
  ≥ 97%); 429 share from the emulator's counters (goal ≤ 1%).
- rate-limited, told: after each run above, the same run with the ``--max-rate`` that
  run's summary advised (the limit it learned, a percent under): what the next batch in
  the same org gets.
- naive baseline on the same regime: ``benchmarks/naive_baseline.py``; our wall time
  as a ratio to its wall time (both whole commands). ``--naive-runs 0`` skips it.
- latency-bound: no limit, 100 ms ±20% latency, ``--concurrency 32``, 1,000 rows over
  40 workspaces and 10 people: the run's duration ÷ the ideal calls × 0.1 s ÷ 32
  (goal ≤ 1.05). Then the same against realistic owner distributions: one or two
  devices per person, a few big workspaces among small owners, and a skewed
  (Zipf-like) mix. There the ideal is the larger of calls × 0.1 s ÷ 32 and the
  longest owner's chain (its rows' creates one at a time, then its last tags call).
- CPU per API call: no latency, no limit, 3,000 rows: the run's CPU time
  (``os.wait4``) minus ``validate``'s on the same manifest, ÷ the emulator's request
  count (goal ≤ 0.30 ms); the run's peak RSS.
- intake: ``benchmarks/bench_validate.py`` in its own process, a 100,000-row CSV
  (goal ≤ 1 s) and XLSX (goal ≤ 2 s, ≤ 300 MB); output: writing a 10,000-row XLSX
  report with ``bench_report``'s data.

The owner distributions use the emulator's seeded org (every seeded workspace and
person), so the one-or-two-devices-per-owner mix is about 160 rows: a short run.

    .venv/bin/python benchmarks/run_all.py [--runs N] [--quick] [--naive-runs N]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
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
    PEOPLE,
    ROOT,
    WORKSPACES,
    CliRun,
    Emulator,
    Spread,
    markdown_table,
    owner_rows,
    run_cli,
    start_emulator,
    wait_child,
    write_rows,
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

    limited_rows: int = 1000
    latency_rows: int = 1000
    overhead_rows: int = 3000
    validate_rows: int = 100_000
    report_rows: int = 10_000


QUICK = Sizes(
    limited_rows=300,
    latency_rows=300,
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
    emulator.set_faults(
        **{**NO_FAULTS, "rate_limit": limit, "latency_ms": 40.0, "jitter_ms": 8.0}
    )
    manifest = write_rows(
        OUT / f"bench-limited-{rows}.csv", owner_rows(spread(rows, workspaces=40))
    )
    shares, refused, speeds, walls = [], [], [], []
    told_shares, told_refused, told_rates = [], [], []
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
        # The next batch, told what this run learned: the --max-rate it advised.
        advice = re.search(r"--max-rate ([0-9.]+)", run.stdout)
        if advice is None:
            continue
        told, counts = provision_run(
            emulator, manifest, rows, ("--max-rate", advice[1]), "rate-limited, told"
        )
        assert told.duration is not None
        accepted = counts["calls"] - counts["rate_limited"]
        told_shares.append(accepted / told.duration / limit)
        told_refused.append(counts["rate_limited"] / counts["calls"])
        told_rates.append(float(advice[1]))
        say(
            f"  told --max-rate {advice[1]}: {told.duration:.1f} s run, "
            f"{told_shares[-1]:.1%} of the limit, 429s {counts['rate_limited']}"
        )
    regime = (
        f"rate-limited: 50/s burst 10 (not told), 40 ms ±20%, {rows} MAC rows "
        "over 40 workspaces"
    )
    share, share_429 = Spread.of(shares), Spread.of(refused)
    table.add(
        regime,
        "successful calls/s ÷ limit",
        share.show("{:.1f}%", 100),
        "≥ 97%",
        met=share.median >= 0.97,
    )
    table.add(
        regime,
        "calls answered 429",
        share_429.show("{:.2f}%", 100),
        "≤ 1%",
        met=share_429.median <= 0.01,
    )
    table.add(regime, "rows/s (whole command)", Spread.of(speeds).show("{:.1f}"))
    table.add(regime, "wall time, s", Spread.of(walls).show("{:.1f}"))
    if told_shares:
        told_regime = (
            "same, told the --max-rate each run above advised "
            f"({Spread.of(told_rates).show('{:.1f}')})"
        )
        table.add(
            told_regime,
            "successful calls/s ÷ limit",
            Spread.of(told_shares).show("{:.1f}%", 100),
        )
        table.add(
            told_regime,
            "calls answered 429",
            Spread.of(told_refused).show("{:.2f}%", 100),
        )
    if naive_runs < 1:
        return
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


def spread(
    rows: int, *, workspaces: int, people: int = 0
) -> list[tuple[str, str, int]]:
    """
    ``rows`` rows shared as evenly as can be over the first workspaces and people.
    """
    owners = [("workspace", w) for w in WORKSPACES[:workspaces]]
    owners += [("person", p) for p in PEOPLE[:people]]
    share, extra = divmod(rows, len(owners))
    return [
        (kind, owner, share + (1 if index < extra else 0))
        for index, (kind, owner) in enumerate(owners)
    ]


def distributions(rows: int) -> dict[str, list[tuple[str, str, int]]]:
    """
    The owner mixes the latency-bound regime is measured with, by name.
    """
    everyone = [("workspace", w) for w in WORKSPACES] + [("person", p) for p in PEOPLE]
    # One or two devices per person (the common case): every owner of the seeded org.
    few = [(kind, owner, 1 + index % 2) for index, (kind, owner) in enumerate(everyone)]
    # A few big workspaces (8% of the rows each) among all the other owners.
    big = max(1, rows * 8 // 100)
    rest = rows - 3 * big
    small = everyone[3:]
    share, extra = divmod(rest, len(small))
    mixed = [(kind, owner, big) for kind, owner in everyone[:3]] + [
        (kind, owner, share + (1 if index < extra else 0))
        for index, (kind, owner) in enumerate(small)
    ]
    # Skewed: owner k holds a share ~ 1/k (Zipf, s = 1) of the rows.
    weights = [1 / (k + 1) for k in range(len(everyone))]
    total = sum(weights)
    counts = [max(1, round(rows * w / total)) for w in weights]
    counts[-1] += rows - sum(counts)
    skewed = [
        (kind, owner, count)
        for (kind, owner), count in zip(everyone, counts, strict=True)
        if count > 0
    ]
    return {
        f"{rows} rows over 40 workspaces and 10 people": spread(
            rows, workspaces=40, people=10
        ),
        f"1–2 devices per person and workspace ({sum(c for *_, c in few)} rows)": few,
        (
            f"3 big workspaces of {big} rows among {len(small)} small owners "
            f"({rows} rows)"
        ): mixed,
        (
            f"skewed (Zipf) over {len(everyone)} owners, the largest {max(counts)} "
            f"rows ({rows} rows)"
        ): skewed,
    }


def latency_bound(emulator: Emulator, table: Table, rows: int, runs: int) -> None:
    """
    No limit, 100 ms ±20% latency, concurrency 32: the run's duration against the
    ideal, for the issue's mix and then for realistic owner distributions.
    """
    latency, concurrency = 0.1, 32
    emulator.set_faults(
        **{**NO_FAULTS, "latency_ms": latency * 1000, "jitter_ms": latency * 200}
    )
    for number, (name, owners) in enumerate(distributions(rows).items()):
        count = sum(c for *_, c in owners)
        manifest = write_rows(
            OUT / f"bench-latency-{number}.csv", owner_rows(owners, prefix=0x0C)
        )
        # One create at a time per owner, then the last row's tags call.
        chain = (max(c for *_, c in owners) + 1) * latency
        ratios = []
        for attempt in range(1, runs + 1):
            run, counts = provision_run(
                emulator,
                manifest,
                count,
                ("--concurrency", str(concurrency)),
                "latency",
            )
            assert run.duration is not None
            ideal = max(counts["calls"] * latency / concurrency, chain)
            ratios.append(run.duration / ideal)
            say(
                f"latency {name}, run {attempt}: {run.duration:.2f} s vs ideal "
                f"{ideal:.2f} s ({counts['calls']} calls) = {ratios[-1]:.3f}"
            )
        ratio = Spread.of(ratios)
        table.add(
            f"latency-bound: no limit, 100 ms ±20%, concurrency 32; {name}",
            "run time ÷ ideal",
            ratio.show("{:.3f}"),
            "≤ 1.05",
            met=ratio.median <= 1.05,
        )


def cpu_per_call(emulator: Emulator, table: Table, rows: int, runs: int) -> None:
    """
    No latency, no limit: the run's CPU time less validate's, per API call.
    """
    emulator.set_faults(**NO_FAULTS)
    manifest = write_rows(
        OUT / f"bench-cpu-{rows}.csv",
        owner_rows(spread(rows, workspaces=48, people=48), prefix=0x0D),
    )
    per_call, rss, speeds = [], [], []
    for number in range(1, runs + 1):
        validated = run_cli(["validate", str(manifest)], cwd=ROOT)
        if validated.code != 0:
            raise SystemExit(f"validate failed:\n{validated.stdout}{validated.stderr}")
        run, counts = provision_run(emulator, manifest, rows, (), "cpu per call")
        per_call.append((run.cpu - validated.cpu) / counts["calls"] * 1000)
        rss.append(run.max_rss_mb)
        speeds.append(rows / run.wall)
        say(
            f"cpu run {number}: {run.cpu:.2f} s CPU − {validated.cpu:.2f} s validate "
            f"over {counts['calls']} calls = {per_call[-1]:.3f} ms/call; peak RSS "
            f"{run.max_rss_mb:.0f} MB; {run.wall:.1f} s wall"
        )
    regime = f"CPU per API call: no latency, no limit, {rows} rows, no faults"
    cpu = Spread.of(per_call)
    table.add(
        regime,
        "(run CPU − validate CPU) ÷ calls, ms",
        cpu.show("{:.3f}"),
        "≤ 0.30 ms",
        met=cpu.median <= 0.30,
    )
    table.add(regime, "peak RSS, MB", Spread.of(rss).show("{:.0f}"))
    table.add(regime, "rows/s (whole command)", Spread.of(speeds).show("{:.0f}"))


def intake(table: Table, rows: int, runs: int) -> None:
    """
    Validate a generated CSV and XLSX with ``bench_validate.py`` in its own process.
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
    say(f"validate: {output.strip()}")
    goals = {"csv": (1.0, None), "xlsx": (2.0, 300.0)}
    for kind, (wall_goal, rss_goal) in goals.items():
        match = re.search(
            rf"validate {kind}: median ([0-9.]+) s over \d+ runs \(min ([0-9.]+), "
            rf"max ([0-9.]+)\); CPU median ([0-9.]+) s; peak RSS (\d+) MB",
            output,
        )
        if match is None:
            raise SystemExit(f"bench_validate.py printed no {kind} figures:\n{output}")
        wall = Spread(float(match[1]), float(match[2]), float(match[3]))
        regime = f"intake: validate a {rows:,}-row {kind.upper()}"
        table.add(
            regime,
            "wall time, s (whole command)",
            wall.show("{:.2f}"),
            f"≤ {wall_goal:.0f} s",
            met=wall.median <= wall_goal,
        )
        table.add(regime, "CPU time, s (median)", match[4])
        peak = float(match[5])
        table.add(
            regime,
            "peak RSS, MB (largest run)",
            match[5],
            f"≤ {rss_goal:.0f} MB" if rss_goal else "",
            met=peak <= rss_goal if rss_goal else None,
        )


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


def commit() -> str:
    """
    The commit measured, with "+changes" when the work tree differs from it.
    """
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    ).stdout.strip()
    return f"{head or 'unknown'}{' +changes' if dirty else ''}"


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--runs", type=int, default=3, help="runs per figure (3)")
    parser.add_argument(
        "--naive-runs",
        type=int,
        default=1,
        help="runs of the naive baseline (1: one run takes minutes; 0: none)",
    )
    parser.add_argument(
        "--quick", action="store_true", help="one small run of everything"
    )
    parser.add_argument(
        "--only",
        choices=("rate-limited", "latency-bound", "cpu", "intake"),
        action="append",
        help="run only this part (repeatable); latest.md is not written",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse(argv)
    sizes, runs = (QUICK, 1) if options.quick else (Sizes(), max(1, options.runs))
    naive_runs = min(1, options.naive_runs) if options.quick else options.naive_runs
    OUT.mkdir(parents=True, exist_ok=True)
    table = Table(judged=not options.quick)
    started = time.perf_counter()
    load_before = os.getloadavg()[1]
    steps: list[tuple[str, Callable[[Emulator], None]]] = [
        (
            "rate-limited",
            lambda e: rate_limited(e, table, sizes.limited_rows, runs, naive_runs),
        ),
        ("latency-bound", lambda e: latency_bound(e, table, sizes.latency_rows, runs)),
        ("cpu", lambda e: cpu_per_call(e, table, sizes.overhead_rows, runs)),
    ]
    wanted = set(options.only or ("rate-limited", "latency-bound", "cpu", "intake"))
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
    load_after = os.getloadavg()[1]
    text = "\n".join(
        [
            f"# provisioner benchmarks, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            "",
            (
                f"Commit {commit()}; {runs} run(s) per figure"
                f"{' (--quick)' if options.quick else ''}; the emulator in a "
                f"separate process; took {elapsed / 60:.1f} min. Load average "
                f"(5 min) {load_before:.1f} before, {load_after:.1f} after, on "
                f"{os.cpu_count()} cores."
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
