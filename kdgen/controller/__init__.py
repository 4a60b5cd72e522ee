"""status-sync's controller: the parts that act on a cluster, each small and tested alone.

Only ``client`` imports the cluster client; every other module takes plain dicts and a clock,
so the unit tests in ``tests/controller/`` run them against a fake client without a cluster.
"""
