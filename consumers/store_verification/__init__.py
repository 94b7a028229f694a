"""``aigc-audit verify --store``: prove the store still holds what the materialiser wrote.

Everything is recomputed from the store and the root public key alone; nothing the store says
about itself is taken on trust. The steps, in order:

1. Keys: every registration verifies under the root key.
2. Batches: each row's signed head verifies under its producer's registered key, and its
   ``digest`` column is the digest of that head.
3. Events: each batch's event rows, by leaf index, hash to the batch's signed Merkle root.
4. Derived rows: the rows of ``events``, ``batches``, the typed tables and ``legal_holds`` are
   exactly the rows the proven events give (:func:`consumers.store.rows.batch_rows`), so a row
   altered, deleted or inserted in any of them is named by table, event id and partition.
5. Checkpoints: each is signed by a checkpoint key the root registered, and its root is the
   root of the partition's tree recomputed from the batch rows.
6. Bus positions: every offset a checkpoint accounts for is in ``batches`` or ``quarantine``
   exactly once, so a deleted quarantine row is found too.

May import ``store``, ``keys``, ``checkpoints`` and the client library.
"""

from __future__ import annotations

from collections.abc import Callable

from aigc_audit.consumers.store.base import Store
from aigc_audit.consumers.store_verification.canonical import canonical, canonical_select
from aigc_audit.consumers.store_verification.checkpoint_trees import CheckpointTrees
from aigc_audit.consumers.store_verification.derived_rows import DerivedRows
from aigc_audit.consumers.store_verification.report import Check, Finding, Kind, StoreVerification
from aigc_audit.consumers.store_verification.signed_heads import SignedHeads

__all__ = [
    "Check",
    "Finding",
    "Kind",
    "StoreVerification",
    "StoreVerifier",
    "canonical",
    "canonical_select",
    "verify_store",
]


class StoreVerifier(SignedHeads, DerivedRows, CheckpointTrees):
    """Runs the steps in order on one store; each step records its check and findings."""

    def run(self) -> StoreVerification:
        self._verify_keys()
        self._verify_batches()
        self._verify_events_and_rows()
        self._verify_checkpoints()
        return self.result


def verify_store(
    store: Store,
    root_public_key: bytes,
    *,
    progress: Callable[[str, int], None] | None = None,
) -> StoreVerification:
    """Run every check on ``store`` (see the module docstring); the result lists each check and
    every finding. Read-only: it works on a served or a read-only store."""
    return StoreVerifier(store, root_public_key, progress=progress).run()
