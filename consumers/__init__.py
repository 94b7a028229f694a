"""The platform: everything after the bus, one subpackage per stage of the flow.

Read it top-down as the data flows: ``ingest`` verifies batches off the bus (``keys`` says which
keys were valid) and writes them to the ``store``; ``checkpoints`` sign each partition's tree;
``query`` runs the named inspection queries; ``bundle`` exports and verifies evidence;
``store_verification`` proves the store untouched; ``report`` renders the inspection report.
``app`` wires the stages into use cases, ``cli`` gives each one a thin command; ``demo`` and
``bench`` sit apart, above the product. The allowed imports are import-linter contracts in
pyproject.toml; ``errors`` is the root every platform error derives from.
"""
