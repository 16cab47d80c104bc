#!/usr/bin/env bash
# Closing median-of-5 benchmarks on a quiet machine.
set -uo pipefail
cd "$(dirname "$0")/.."
# run inside the venv copier is installed in (pip install -e ".[bench]")
mkdir -p "${BENCH_DATA:-/tmp/copier-bench-data}"
for s in sqlalchemy django numeric json without-rowid epoch-ms mixed-dates plain-finance; do
  m=copier,copier-verified,duckdb+keys
  [ "$s" = plain-finance ] && m=$m,pgloader
  copier bench --shape $s --rows 200000 --runs 5 --methods $m --out benchmarks/results/shape-$s-200k --data-dir "${BENCH_DATA:-/tmp/copier-bench-data}" || echo "FAILED $s"
done
python benchmarks/existing_schema.py --rows 300000 --runs 5 || echo FAILED existing
python benchmarks/existing_schema.py --rows 300000 --runs 5 --django || echo FAILED django
python benchmarks/existing_schema.py --rows 300000 --runs 5 --alembic || echo FAILED alembic
copier bench --rows 1000000 --runs 5 --methods copier,copier-existing,copier-bad-rows,copier-append-rerun --bad-rows 20000 --out benchmarks/results/1m-bad-rows || echo FAILED badrows
copier bench --rows 1000000 --runs 5 --methods copier,copier-verified,duckdb+keys,pgloader --out benchmarks/results/1m-columnar || echo FAILED 1m
