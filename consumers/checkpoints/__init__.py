"""Signed checkpoints: per bus partition, an append-only RFC 6962 tree of the accepted batches,
whose head the materialiser signs as a C2SP signed note (``note.py``, ``checkpointer.py``).
May import ``store`` and the client library; ``note`` alone serves the offline verifier.
"""
