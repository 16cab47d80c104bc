#!/usr/bin/env bash
# Reproduce the numbers in README.md and benchmarks/README.md (about 40 minutes on 2 cores
# before the app shapes; they add about an hour, the bad-rows run more until issue 24 lands).
# Needs: pip install -e ".[bench]"; apt-get install pgloader (optional); a PostgreSQL in
# $COPIER_DSN or passed as --dsn (without one, copier bench starts a throwaway server).
set -euo pipefail
cd "$(dirname "$0")"
out=results
# The current code, as in README.md's "Performance":
# 1M transactions, every method (the headline table, baseline duckdb+keys).
copier bench --rows 1000000 --runs 5 --methods ceiling,copier,copier-verified,duckdb,duckdb+keys,pgloader \
  --out "$out/1m-columnar" --data-dir "$out/data" "$@"
# One worker against two.
copier bench --rows 1000000 --runs 5 --methods copier --workers 1,2 --out "$out/1m-workers-columnar" \
  --data-dir "$out/data" "$@"
# 500 tables of 20 rows: the per-table cost.
copier bench --shape many --rows 10000 --runs 5 --methods copier,copier-verified,duckdb,duckdb+keys,pgloader \
  --out "$out/many-500" --data-dir "$out/data" "$@"
# 60 columns, and 2.7 KB of text a row: memory stays bounded.
copier bench --shape wide --shape text --rows 200000 --runs 1 --methods copier,copier-verified,duckdb+keys \
  --out "$out/wide-text" --data-dir "$out/data" "$@"
# 10M: linear time and flat memory.
copier bench --rows 10000000 --runs 1 --methods copier,copier-verified,duckdb+keys --out "$out/10m-columnar" \
  --data-dir "$out/data" "$@"
# App shapes (issues 19 and 20): one big table of 500,000 rows and its parent, as SQLAlchemy,
# Django, Prisma and hand-written schemas store them; the plain finance file at 1M rows.
for shape in sqlalchemy django numeric json without-rowid epoch-ms mixed-dates; do
  copier bench --shape "$shape" --rows 500000 --runs 5 --methods copier,copier-verified,duckdb+keys,pgloader \
    --out "$out/shape-$shape" --data-dir "$out/data" "$@"
done
copier bench --shape plain-finance --rows 1000000 --runs 5 --methods copier,copier-verified,duckdb+keys,pgloader \
  --out "$out/shape-plain-finance" --data-dir "$out/data" "$@"
# Loading into a schema an ORM made (issue 21): copier plan --sql applied first, untimed.
copier bench --rows 1000000 --runs 5 --methods copier,copier-existing,copier-truncate \
  --out "$out/1m-existing" --data-dir "$out/data" "$@"
# Bad rows and reruns (issue 24): 20,000 bad rows among 1M, an append rerun of a loaded
# target. Before issue 24 these took ~6 and ~19 minutes a run: hence --runs 1 there.
copier bench --rows 1000000 --runs "${BAD_ROWS_RUNS:-1}" --methods copier,copier-existing,copier-bad-rows,copier-append-rerun \
  --bad-rows 20000 --out "$out/1m-bad-rows" --data-dir "$out/data" "$@"
# The 200k app-shape table in README.md (about 6 minutes), and the set-aside path into
# ORM-made schemas (about 2 minutes):
#   for s in sqlalchemy django numeric json without-rowid epoch-ms mixed-dates; do
#     copier bench --shape $s --rows 200000 --runs 5 --methods copier,copier-verified,duckdb+keys --out "$out/shape-$s-200k"; done
#   copier bench --shape plain-finance --rows 200000 --runs 5 --methods copier,copier-verified,duckdb+keys,pgloader \
#     --out "$out/shape-plain-finance-200k"
#   for v in "" --django --alembic; do python existing_schema.py --rows 300000 --runs 5 $v; done
# Earlier code's sections of benchmarks/README.md (kept for the record: results/1m,
# 1m-verify, 1m-workers, 10m) came from:
#   copier bench --rows 1000000 --runs 5 --batch-size 2000,5000,10000,50000 --out "$out/1m"
#   copier bench --rows 1000000 --runs 5 --methods ceiling,copier,copier-verified,duckdb,pgloader --out "$out/1m-verify"
#   copier bench --rows 1000000 --runs 5 --methods copier --workers 1,2,4 --out "$out/1m-workers"
#   copier bench --rows 10000000 --runs 1 --methods ceiling,copier --out "$out/10m"
