"""Ingest: poll signed batches off the bus, verify each (key, signature, Merkle root, chain),
and write accepted ones, or quarantine rejected ones with the reason, to the store.

``materialiser`` runs the loop; ``verification`` is the exact per-batch verdict; ``engine_path``
is the fast path that lets the ClickHouse engine decode generations (``poll_write`` chooses, and
tests/differential prove the two agree). May import ``keys``, ``checkpoints``, ``store`` and the
client library; never ``app``, ``cli``, ``demo`` or ``bench``.
"""
