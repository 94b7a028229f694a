"""The platform's errors derive from one root, ``AuditError`` (the client library's, so a
caller catches either side with one clause): ``PlatformError`` here, and one subclass per stage
beside it (``StoreError``, ``QueryError``, ``ExportError``, ...). The CLI turns any of them into
one line and exit 2; tests/test_errors.py keeps every error class of ours under the root."""

from __future__ import annotations

from aigc_audit.producers.errors import AuditError

# The import names of the `[platform]` extra's libraries (pyproject.toml). The base install
# (client library and offline verifier) has none of them, so every platform module imports
# them where they are used, and an ImportError naming one of them means "install the
# platform", not a bug; tests/test_base_install.py keeps this list in step with the extra.
PLATFORM_MODULES = frozenset({"chdb", "pyarrow", "clickhouse_connect", "brotli"})
PLATFORM_INSTALL = "pip install 'aigc-audit[platform]'"


class PlatformError(AuditError):
    """A failure the user can act on: bad configuration, a held directory, a refused query."""


def missing_platform_module(exc: BaseException) -> str | None:
    """The platform library whose absence ``exc`` reports, or None when it reports anything
    else (a base library or one of ours missing is a broken install: a traceback is right)."""
    if not isinstance(exc, ImportError) or not exc.name:
        return None
    top = exc.name.split(".", 1)[0]
    return top if top in PLATFORM_MODULES else None
