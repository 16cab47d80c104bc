#!/usr/bin/env bash
# The generated 1M-row finance file migrated into one stock PostgreSQL 15 server and into
# the kit's 3-node Citus cluster (--distribute auto), alternated, in one run (README: Into a
# Citus cluster). Both servers are started here with the same settings as the kit's nodes
# (stock, max_connections = 300). Needs root (the servers run as user postgres), as the kit.
#   benchmarks/citus.sh            two rounds
#   ROUNDS=1 ROWS=300000 benchmarks/citus.sh
set -euo pipefail
cd "$(dirname "$0")/.."
KIT=${COPIER_CITUS_KIT:-../shared/citus}
ROWS=${ROWS:-1000000}
WORK=${WORK:-/tmp/copier-citus-bench}
PGBIN=${COPIER_CITUS_PGBIN:-/usr/lib/postgresql/15/bin}
SRC=$WORK/finance-$ROWS.sqlite
SINGLE=postgresql://postgres@127.0.0.1:9730/postgres
mkdir -p "$WORK" && chown postgres "$WORK"
[ -f "$SRC" ] || python -c "from pathlib import Path; from copier.bench.data import generate; generate(Path('$SRC'), $ROWS)"
if ! pg_isready -q -h 127.0.0.1 -p 9730; then
  [ -d "$WORK/single" ] || su postgres -c "$PGBIN/initdb -D $WORK/single -A trust -U postgres >/dev/null"
  su postgres -c "$PGBIN/pg_ctl -w -D $WORK/single -l $WORK/single.log \
    -o '-p 9730 -k $WORK -c listen_addresses=127.0.0.1 -c max_connections=300' start" >/dev/null
fi
bash "$KIT/build.sh" >/dev/null
CLUSTER=$(bash "$KIT/start.sh" 9700 2>/dev/null | tail -1)
for round in ${ROUNDS:-1 2}; do
  for where in single cluster; do
    schema=bench_$where
    if [ "$where" = single ]; then dsn=$SINGLE; flags=(); else dsn=$CLUSTER; flags=(--distribute auto); fi
    psql -q "$dsn" -c "DROP SCHEMA IF EXISTS $schema CASCADE" 2>/dev/null
    start=$(date +%s.%N)
    copier migrate "$SRC" --dsn "$dsn" --schema "$schema" "${flags[@]}" -q --report "$WORK/$where-$round.json"
    end=$(date +%s.%N)
    python -c "import json; d = json.load(open('$WORK/$where-$round.json')); \
print('$where round $round: %.2f s' % ($end - $start), 'exit', d['exit_code'], 'phases', d['phases'])"
    psql -q "$dsn" -c "DROP SCHEMA $schema CASCADE" 2>/dev/null
  done
done
echo "stop: bash $KIT/stop.sh 9700; su postgres -c '$PGBIN/pg_ctl -D $WORK/single stop'"
