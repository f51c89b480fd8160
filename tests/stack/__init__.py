"""The compose topology on this machine (scripts/stack.py): nginx, two replicas, a worker,
PgBouncer and a Redis Cluster, and what scaling out must not break."""
