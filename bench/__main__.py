"""``python -m bench``: run the table, print Markdown, save JSON (and the plot). ``--help`` for options."""

from __future__ import annotations

import argparse
import datetime
import sys
import time
from pathlib import Path

from bench import cases, cold_start, machine, report, suite
from bench.timing import FULL_POLICY, QUICK_POLICY

RESULTS = machine.REPOSITORY / "bench" / "results"
PLOT = machine.REPOSITORY / "docs" / "bench.png"


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="xcorr beside OpenCV, SciPy, torch and fft-conv-pytorch, one process, median [IQR] per call.",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, short timing (under a minute)")
    parser.add_argument("--threads", type=int, default=2, help="threads for every library (default 2)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every input (default 0)")
    parser.add_argument("--only", metavar="TEXT", help="run only the cases whose name contains TEXT")
    parser.add_argument("--cold-start", action="store_true", help="measure only the cold start (fresh processes)")
    parser.add_argument("--json", type=Path, help=f"where to save the JSON record (default {RESULTS}/<date>.json)")
    parser.add_argument("--plot", type=Path, help=f"where to save the plot (default {PLOT}; none with --quick)")
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    return args


_START = time.perf_counter()


def _log(message: str) -> None:
    print(f"{time.perf_counter() - _START:7.1f} s  {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; progress goes to stderr, the report to stdout."""
    args = _arguments(argv)
    threads = machine.set_threads(args.threads)
    header = machine.describe(threads)
    table = [] if args.cold_start else cases.table(cases.QUICK if args.quick else cases.FULL)
    if args.only:
        table = [case for case in table if args.only in case.name]
    policy = QUICK_POLICY if args.quick else FULL_POLICY
    results = suite.run(table, policy, args.threads, args.seed, _log)
    cold = None
    if args.cold_start or not args.quick:
        _log("cold start (two fresh processes)")
        cold = cold_start.measure(args.threads)
    print(report.markdown(header, results, cold))
    stamp = datetime.datetime.now().strftime("%Y-%m-%d_%H%M%S")
    json_path = args.json or RESULTS / f"{stamp}{'-quick' if args.quick else ''}.json"
    settings = {"preset": "quick" if args.quick else "full", "seed": args.seed, "only": args.only}
    settings["policy"] = vars(policy).copy()
    report.write_json(json_path, report.record(header, settings, results, cold))
    print(f"JSON: {json_path}")
    plot_path = args.plot or (None if args.quick else PLOT)
    if plot_path is not None and results and report.plot(plot_path, results):
        print(f"plot: {plot_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
