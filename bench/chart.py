"""Chart of ``row_overhead.py --json`` results: per-row overhead, ours against django-pgtrigger.

Usage::

    .venv/bin/python bench/row_overhead.py --json results.json
    .venv/bin/python bench/chart.py results.json                  # docs/images/row_overhead.png
    .venv/bin/python bench/chart.py results.json -o /tmp/chart.png

One panel per ``pgtrigger.ignore`` state; in each, one group of horizontal bars per case:
overhead in µs per affected row of django-pgtrigger's own SQL (``dpgt``), ours with template
v1 and v2 (and ``floor`` when the run had ``--floor``). Beside each group, v2's total time over
django-pgtrigger's (the paired median ratio); a black tick marks the case's per-row target.
Statement-level cases have no per-row target: their overhead is the history insert itself.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only: no display on a server or in CI

import matplotlib.pyplot as plt

DEFAULT_OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "images" / "row_overhead.png"
#: Bar colours: the competitor warm, ours blue (v2 darkest), the floor grey.
COLORS = {"dpgt": "#d9704a", "v1": "#9ec3e6", "v2": "#1f5fa8", "floor": "#9a9a9a"}
LABELS = {
    "dpgt": "django-pgtrigger 4.17",
    "v1": "pgtrigger v1 (Django-compatible)",
    "v2": "pgtrigger v2 (fast)",
    "floor": "floor: the trigger's own work",
}
CLOCKS = {"wall": "wall time", "cpu": "server CPU time"}
SHORT_CASES = {
    "version_bump": "version bump (AnyChange)",
    "fsm_valid": "FSM, valid transition",
    "fsm_other_column": "FSM, other column",
    "soft_delete": "SoftDelete",
    "protect_conditional": "Protect, condition false",
    "insert_before": "BEFORE INSERT",
    "history_update": "history on UPDATE (stmt)",
    "history_insert": "history on INSERT (stmt)",
}


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    if "cases" not in data or "variants" not in data:
        raise SystemExit(f"{path}: not a row_overhead.py --json file (of this version)")
    return data


def server_name(data: dict[str, Any]) -> str:
    """``PostgreSQL 18.6`` out of ``version()``'s long text."""
    return str(data["server"]["version"]).split(" on ", 1)[0]


def draw(data: dict[str, Any], output: Path) -> None:
    cases: dict[str, Any] = data["cases"]
    keys = list(cases)
    variants = [v for v in data["variants"] if v != "baseline"]
    states: dict[str, str] = data["states"]
    height = 0.8 / len(variants)
    fig, axes = plt.subplots(
        2,
        2,
        figsize=(14, 2.2 + 0.55 * len(keys) * 2),
        sharex=True,
        sharey=True,
        constrained_layout=True,
    )
    flat = list(axes.flat)
    largest = max(
        r["us_per_row"][v] for c in cases.values() for r in c["summary"] for v in variants
    )
    for ax, (state, label) in zip(flat, states.items()):
        for i, key in enumerate(keys):
            case = cases[key]
            row = next(r for r in case["summary"] if r["state"] == state)
            for j, variant in enumerate(variants):
                y = i + (j - (len(variants) - 1) / 2) * height
                ax.barh(
                    y,
                    row["us_per_row"][variant],
                    height=height * 0.92,
                    color=COLORS.get(variant, "#555555"),
                    label=LABELS.get(variant, variant) if i == 0 else None,
                )
            target = case["target_us_per_row"]
            if target is not None:
                ax.plot([target, target], [i - 0.45, i + 0.45], color="black", linewidth=1.5)
            ratio = row["ratios"]["v2/dpgt"]
            miss = not row["ratio_ok"] or row["us_ok"] is False
            ax.annotate(
                f"v2 {ratio:.2f}x",
                xy=(largest * 1.02, i),
                va="center",
                fontsize=8,
                color="#b00000" if miss else "#333333",
                fontweight="bold" if miss else "normal",
            )
        ax.set_title(f"pgtrigger.ignore {label}", fontsize=11)
        ax.axvline(0, color="#444444", linewidth=0.6)
        ax.grid(axis="x", color="#dddddd", linewidth=0.6)
        ax.set_axisbelow(True)
        ax.set_yticks(range(len(keys)))
        ax.set_yticklabels([SHORT_CASES.get(k, k) for k in keys], fontsize=9)
        ax.set_xlim(right=largest * 1.18)
    flat[0].invert_yaxis()  # shared by all panels: the first case on top
    for ax in flat[2:]:
        ax.set_xlabel("overhead over no trigger, µs per affected row (lower is better)")
    handles, labels = flat[0].get_legend_handles_labels()
    handles.append(plt.Line2D([], [], color="black", linewidth=1.5))
    labels.append("v2 per-row target")
    fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), fontsize=9)
    clock = CLOCKS.get(data.get("clock", "wall"), "wall time")
    fig.suptitle(
        f"Per-row trigger overhead ({clock}): {server_name(data)}, {data['rows']:,} rows,"
        f" median of {data['rounds']} rounds"
        f"\n(right: v2's total statement time / django-pgtrigger's, paired median;"
        f" red = target missed. {data['machine']['nproc']} CPUs, load"
        f" {data['machine']['load_average']})",
        fontsize=12,
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, dpi=110)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Chart row_overhead.py --json results.")
    parser.add_argument("results", type=Path, help="the JSON file row_overhead.py wrote")
    parser.add_argument(
        "-o", "--output", type=Path, default=DEFAULT_OUTPUT, help=f"PNG (default {DEFAULT_OUTPUT})"
    )
    args = parser.parse_args(argv)
    draw(load(args.results), args.output)
    print(f"chart written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
