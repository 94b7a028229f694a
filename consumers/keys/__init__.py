"""Keys: the private key files the platform holds (``key_files``, outside the store's reach),
the signed key registrations on the bus (``registry``) and the keyring ingest judges batches by
(``keyring``). May import ``store`` and the client library only.
"""
