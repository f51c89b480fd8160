#!/bin/sh
# Run once by the postgres image when it creates the database: lets the compose `replica`
# profile's standby stream from this server over the compose network, with the password.
set -eu
echo "host replication all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
