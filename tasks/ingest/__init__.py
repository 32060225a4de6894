"""Ingest: fetch every configured source into a snapshot, validate it, record lineage.

``core`` runs one source end to end; ``preflight`` checks sources before a run
(``talent-index sources check`` / ``discover``).
"""
