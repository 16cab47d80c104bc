#!/usr/bin/env bash
# Reproduce the numbers in README.md and benchmarks/README.md (about 30 minutes on 2 cores).
# Needs: pip install -e ".[bench]"; apt-get install pgloader (optional); a PostgreSQL in
# $COPIER_DSN or passed as --dsn (without one, copier bench starts a throwaway server).
set -euo pipefail
cd "$(dirname "$0")"
out=results
# 1M transactions: every method, and the batch-size sweep the default comes from.
copier bench --rows 1000000 --runs 5 --batch-size 2000,5000,10000,50000 --out "$out/1m" --data-dir "$out/data" "$@"
# 1M with verification: the README's table (the default run, load then verify, beside the rest).
copier bench --rows 1000000 --runs 5 --methods ceiling,copier,copier-verified,duckdb,pgloader --out "$out/1m-verify" --data-dir "$out/data" "$@"
# The worker-process sweep the default --workers comes from.
copier bench --rows 1000000 --runs 5 --methods copier --workers 1,2,4 --out "$out/1m-workers" --data-dir "$out/data" "$@"
# 10M: linear time and flat memory.
copier bench --rows 10000000 --runs 1 --methods ceiling,copier --out "$out/10m" --data-dir "$out/data" "$@"
