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


if __name__ == "__main__":
    main()
