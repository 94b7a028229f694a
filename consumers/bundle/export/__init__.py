"""Export bundles: the selected events with every proof an inspector needs to check them offline.

``bundle_format`` names the files and (de)serialises their records (shared by the writer and the
verifier, ``consumers.bundle.verify``); ``exporter`` writes a bundle from the store.

This package imports nothing heavy on import: the verifier, which must run with nothing but the
bundle and the root public key, imports ``bundle_format`` through it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ExportError", "ExportSummary", "export_bundle"]


def __getattr__(name: str) -> Any:
    # The exporter needs the store's modules; load it only when asked for.
    if name in __all__:
        from aigc_audit.consumers.bundle.export import exporter

        return getattr(exporter, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
