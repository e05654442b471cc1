#!/bin/sh
# Back to the starting point between rehearsal runs: the old server's database re-created from its
# template (the snapshot the rehearsal starts from), the new server's database re-created empty.
# cutover runs this in the scenario's folder with CUTOVER_OLD_URL and CUTOVER_NEW_URL set; each
# command connects to the server's maintenance database (postgres) to do it.
set -eu
db=shop
psql -X -q -v ON_ERROR_STOP=1 "${CUTOVER_OLD_URL%/*}/postgres" \
  -c "drop database if exists $db with (force)" -c "create database $db template ${db}_template"
psql -X -q -v ON_ERROR_STOP=1 "${CUTOVER_NEW_URL%/*}/postgres" \
  -c "drop database if exists $db with (force)" -c "create database $db"
echo "reset: $db re-created on both servers"
