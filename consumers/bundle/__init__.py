"""Bundle: the evidence an inspector takes away. ``format`` is the on-disk format both sides
share; ``export`` writes a bundle from the store; ``verify`` checks one offline with nothing but
the bundle and the root public key. ``format`` and ``verify`` import only the standard library,
fastavro, cryptography, the client library and ``checkpoints.note`` (a base install runs them);
``export`` may also import ``store`` and ``query``.
"""
