#!/usr/bin/env bash
# PostgreSQL first-start hook (mounted into /docker-entrypoint-initdb.d by docker-compose.yml): apply ibkrtool's
# numbered migrations from sql/ and record each in ibkr_data.schema_version exactly as `ibkrtool db init` does,
# so a later `ibkrtool db init` finds the schema current and changes nothing. Each file and its record commit together.
#
# Environment: POSTGRES_USER, POSTGRES_DB (set by the postgres image), IBKRTOOL_SQL_DIR (default /ibkrtool-sql);
# psql's own PGHOST/PGPORT/PGPASSWORD when run outside the image.
set -euo pipefail
sql_dir=${IBKRTOOL_SQL_DIR:-/ibkrtool-sql}
shopt -s nullglob
files=("$sql_dir"/[0-9][0-9][0-9]_*.sql)
if [ ${#files[@]} -eq 0 ]; then
  echo "postgres-init: no migrations in $sql_dir" >&2
  exit 1
fi
for file in "${files[@]}"; do
  base=$(basename "$file" .sql)
  version=$((10#${base%%_*}))
  name=${base#*_}
  echo "postgres-init: applying $base" >&2
  psql -v ON_ERROR_STOP=1 --quiet --single-transaction --username "${POSTGRES_USER:-postgres}" \
    --dbname "${POSTGRES_DB:-postgres}" --file "$file" \
    --command "INSERT INTO ibkr_data.schema_version (version, name, applied_at) VALUES ($version, '$name', now())"
done
