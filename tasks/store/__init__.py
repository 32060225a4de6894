"""Everything on disk: the data home, snapshots, editions and the release store.

Read-only towards everything above it: the store never imports a source, the
publisher or the report. ``storage`` writes snapshots atomically; ``home``
resolves the data home; ``editions`` resolves an edition's vintage policy.
"""
