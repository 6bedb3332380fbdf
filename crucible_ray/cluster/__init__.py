"""Running crucible-ray's Ray cluster: a real multi-node cluster on one machine for
development and CI (``local``); the production manifests live under the top-level ``cluster/``."""
