"""What a run prints and saves: Markdown tables, a JSON record of every measurement, a log-log plot."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

from bench.cases import PEER_NAMES
from bench.peers import compute_dtype
from bench.suite import XCORR, CaseResult, Outcome

NOTE_WIDTH = 56


def _ms(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:.0f}" if ms >= 100 else f"{ms:.1f}" if ms >= 10 else f"{ms:.2f}"


def _cell(outcome: Outcome | None) -> str:
    if outcome is None:
        return "—"
    if outcome.timing is not None:
        return f"{_ms(outcome.timing.median_s)} [{_ms(outcome.timing.iqr_s)}]"
    note = outcome.note if len(outcome.note) <= NOTE_WIDTH else outcome.note[: NOTE_WIDTH - 1] + "…"
    text = outcome.status if outcome.status == "not installed" else f"{outcome.status} ({note})"
    return text.replace("|", "/")


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [_row(header), _row(["---"] * len(header)), *(_row(r) for r in rows)]


def _yes_no(met: bool | None) -> str:
    return "n/a" if met is None else "yes" if met else "no"


def _ratio(ours: float | None, theirs: float | None) -> str:
    return "—" if ours is None or theirs is None else f"{ours / theirs:.2f}"


def _speed_row(result: CaseResult) -> list[str]:
    best = result.best_peer()
    bars = result.case.bars
    verdicts = [result.bar_met(bar) for bar in bars]
    met = None if not bars or None in verdicts else all(verdicts)
    return [
        result.case.name,
        _cell(result.outcomes.get(XCORR)),
        *(_cell(result.outcomes.get(peer)) for peer in PEER_NAMES),
        "—" if best is None else f"{_ratio(result.median(XCORR), best[1])} ({best[0]})",
        "; ".join(map(str, bars)) or "—",
        _yes_no(met) if bars else "—",
    ]


def _mib(count: int) -> str:
    return f"{count / 2**20:.0f} MiB"


def _planner_row(result: CaseResult) -> list[str]:
    best = result.best_forced()
    differences = [
        (d, ours, peer)
        for ours, by_peer in result.differences.items()
        for peer, d in by_peer.items()
        if compute_dtype(peer, result.case) == result.case.dtype
    ]
    worst_difference = max(differences, default=None)
    auto = result.outcomes.get(XCORR)
    auto_peak = None if auto is None else auto.extra_peak_bytes
    worst_memory = result.worst_xcorr_memory()
    limit = result.memory_limit()
    return [
        result.case.name,
        result.plan,
        "—" if best is None else f"{best[0]} {_ms(best[1])}",
        _ratio(result.median(XCORR), None if best is None else best[1]),
        "—"
        if worst_difference is None
        else f"{worst_difference[0]:.1e} ({worst_difference[1]} vs {worst_difference[2]})",
        "n/a" if auto_peak is None else _mib(auto_peak),
        "n/a" if worst_memory is None else f"{_mib(worst_memory[1])} ({worst_memory[0]})",
        f"<= {_mib(limit)}",
        _yes_no(None if auto_peak is None else auto_peak <= limit)
        + " / "
        + _yes_no(None if worst_memory is None else worst_memory[1] <= limit),
    ]


def markdown(
    machine: dict[str, object], results: list[CaseResult], cold_start: dict[str, dict[str, object]] | None
) -> str:
    """The whole report: machine header, speed table, planner/accuracy/memory table, cold start."""
    lines = ["## Machine", ""]
    for key, value in machine.items():
        shown = ", ".join(f"{k} {v}" for k, v in value.items()) if isinstance(value, dict) else value
        lines.append(f"- {key}: {shown}")
    if results:
        lines += ["", "## Speed", "", 'Milliseconds per call: median [IQR]. xcorr runs with `algo="auto"`.', ""]
        header = ["case", XCORR, *PEER_NAMES, "xcorr / best peer", "bar (issue 3)", "met"]
        lines += _table(header, [_speed_row(r) for r in results])
        lines += [
            "",
            "## Planner, accuracy, memory",
            "",
            'auto / best forced: xcorr\'s `algo="auto"` time over its fastest forced algorithm (1.00 = the planner '
            "picked the best). max diff: `max |xcorr - peer| / max |peer|` over every xcorr algorithm, every peer "
            "and every output (gradients included), leaving out peers that compute in a narrower dtype than the case "
            "(fft-conv-pytorch on float64; the JSON has every pair). "
            "Extra peak: rise of the process's peak RSS during one call.",
            "",
        ]
        header = ["case", "plan (auto)", "best forced (ms)", "auto / best forced", "max diff vs peers"]
        header += ["extra peak (auto)", "extra peak (worst xcorr)", "memory bar", "met: auto / every algorithm"]
        lines += _table(header, [_planner_row(r) for r in results])
    if cold_start:
        lines += ["", "## Cold start (fresh process)", ""]
        steps = list(next(iter(cold_start.values()))["steps"])  # type: ignore[call-overload]
        header = ["numba cache", "import xcorr (ms)", *(f"{s}: first / second (ms)" for s in steps)]
        rows = []
        for state, run in cold_start.items():
            timings: dict[str, dict[str, float]] = run["steps"]  # type: ignore[assignment]
            cells = [f"{_ms(timings[s]['first_s'])} / {_ms(timings[s]['second_s'])}" for s in steps]
            rows.append([state, _ms(run["import_s"]), *cells])  # type: ignore[arg-type]
        lines += _table(header, rows)
    return "\n".join(lines) + "\n"


def _outcome_record(outcome: Outcome) -> dict[str, object]:
    record: dict[str, object] = {"status": outcome.status, "note": outcome.note}
    if outcome.timing is not None:
        record.update(dataclasses.asdict(outcome.timing))
    record["extra_peak_bytes"] = outcome.extra_peak_bytes
    return record


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def record(
    machine: dict[str, object],
    settings: dict[str, object],
    results: list[CaseResult],
    cold_start: dict[str, dict[str, object]] | None,
) -> dict[str, object]:
    """Every measurement of a run as JSON-ready data (losses and failures included)."""
    cases = []
    for result in results:
        cases.append(
            {
                "case": dataclasses.asdict(result.case),
                "plan": result.plan,
                "plan_detail": result.plan_detail,
                "outcomes": {name: _outcome_record(o) for name, o in result.outcomes.items()},
                "max_relative_difference": {
                    ours: {peer: _finite(d) for peer, d in by_peer.items()}
                    for ours, by_peer in result.differences.items()
                },
                "bars": [{"bar": str(bar), "met": result.bar_met(bar)} for bar in result.case.bars],
                "memory_bar_bytes": result.memory_limit(),
            }
        )
    return {"machine": machine, "settings": settings, "cases": cases, "cold_start": cold_start}


def write_json(path: Path, data: dict[str, object]) -> None:
    """Write ``data`` as indented JSON, creating the directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")


def plot(path: Path, results: list[CaseResult]) -> bool:
    """Median time against kernel size, log-log, one line per contender, one panel per series (gray, gaussian).

    Returns False (and writes nothing) when matplotlib is not installed or no case belongs to a series.
    """
    try:
        import matplotlib
        import matplotlib.ticker

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    series = list(dict.fromkeys(r.case.series for r in results if r.case.series))  # in table order
    if not series:
        return False
    figure, axes = plt.subplots(1, len(series), figsize=(6 * len(series), 4.5), squeeze=False)
    for axis, name in zip(axes[0], series, strict=True):
        members = [r for r in results if r.case.series == name]
        for contender in (XCORR, *PEER_NAMES):
            points = [(r.case.kernel_size, r.median(contender)) for r in members]
            ran = [(k, t * 1e3) for k, t in points if t is not None]
            if ran:
                style = {"linewidth": 2.5, "color": "black"} if contender == XCORR else {}
                axis.plot(*zip(*ran, strict=True), marker="o", label=contender, **style)
        side = members[0].case.image_shape[-1]
        axis.set(xscale="log", yscale="log", xlabel="kernel size k (k x k)", ylabel="ms per call (median)")
        sizes = [r.case.kernel_size for r in members]
        axis.set_xticks(sizes, [str(k) for k in sizes])
        axis.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        axis.set_title(f"{name} {side}x{side}, {members[0].case.dtype}")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize="small")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return True
