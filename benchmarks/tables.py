"""Print the Markdown tables of benchmarks/README.md from results/*/bench.json."""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).with_name("results")


def load(name: str) -> dict:  # type: ignore[type-arg]
    return json.loads((RESULTS / name / "bench.json").read_text())


def main() -> None:
    one = load("1m")
    print(f"1M: {one['data']['rows_total']:,} rows, {one['data']['file_mb']} MB, {one['runs']} runs\n")
    print("| method | wall s | rows/s | peak RSS MB | × ceiling | × DuckDB |\n|---|---:|---:|---:|---:|---:|")
    for r in one["results"]:
        if not r["label"].startswith("copier ") or r["label"] == "copier":
            print(f"| {r['label']} | {r['wall_seconds_median']:.2f} | {r['rows_per_second']:,} | "
                  f"{r['peak_rss_mb']:.0f} | {r['ratio_to_ceiling']:.2f} | {r['ratio_to_duckdb']:.2f} |")
    for name, label in (("1m", "batch_size"), ("1m-workers", "workers")):
        print(f"\n| `--{label.replace('_', '-')}` | wall s | peak RSS MB |\n|---:|---:|---:|")
        for r in load(name)["results"]:
            if r["label"].startswith(f"copier {label}="):
                print(f"| {r['params'][label]:,} | {r['wall_seconds_median']:.2f} | {r['peak_rss_mb']:.0f} |")
    ten = load("10m")
    print(f"\n10M: {ten['data']['rows_total']:,} rows, {ten['data']['file_mb']} MB\n")
    for r in ten["results"]:
        print(f"| {r['label']} | {r['wall_seconds_median']:.2f} | {r['rows_per_second']:,} | "
              f"{r['peak_rss_mb']:.0f} | {r['ratio_to_ceiling']:.2f} |")


SHAPES = ("sqlalchemy", "django", "numeric", "json", "without-rowid", "epoch-ms", "mixed-dates", "plain-finance")


def _cell(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def app_shapes() -> None:
    """Issues 19 and 20: per shape, rows columnar, the ratios to duckdb+keys, verify's share, tree RSS."""
    print("\n| shape | rows columnar % | --no-verify / duckdb+keys | default / duckdb+keys | verify adds "
          "| pgloader / copier | tree RSS MB |\n|---|---:|---:|---:|---:|---:|---:|")
    for shape in SHAPES:
        if not (RESULTS / f"shape-{shape}" / "bench.json").exists():
            continue
        by = {r["label"]: r for r in load(f"shape-{shape}")["results"]}
        fast, verified, pgloader = by.get("copier"), by.get("copier-verified"), by.get("pgloader")
        if fast is None or verified is None:
            continue
        share = verified["wall_seconds_median"] / fast["wall_seconds_median"] - 1
        versus = pgloader["wall_seconds_median"] / fast["wall_seconds_median"] if pgloader and pgloader["ok"] else None
        print(f"| {shape} | {_cell(fast['rows_columnar_percent'], 0)} | {_cell(fast['ratio_to_duckdb_keys'])} | "
              f"{_cell(verified['ratio_to_duckdb_keys'])} | {share:+.0%} | {_cell(versus)} | "
              f"{max(fast['peak_rss_mb'], verified['peak_rss_mb']):.0f} |")


def loads_and_reruns() -> None:
    """Issues 21 and 24: each method's median against a fresh copier load in the same run."""
    for name in ("1m-existing", "1m-bad-rows"):
        if not (RESULTS / name / "bench.json").exists():
            continue
        by = {r["label"]: r for r in load(name)["results"]}
        fresh = by["copier"]["wall_seconds_median"]
        print(f"\n{name}:\n\n| method | wall s | × copier (fresh) | peak RSS MB | ok |\n|---|---:|---:|---:|---|")
        for label, r in by.items():
            print(f"| {label} | {r['wall_seconds_median']:.2f} | {r['wall_seconds_median'] / fresh:.2f} | "
                  f"{r['peak_rss_mb']:.0f} | {'yes' if r['ok'] else 'NO'} |")


if __name__ == "__main__":
    main()
    app_shapes()
    loads_and_reruns()
