"""Verifies an export bundle offline, with nothing but the bundle and the provider's root key.

Seven numbered checks run in order and each is recorded, pass or fail; a failure never stops the
others, so one run reports everything that is wrong:

1. manifest signature: the manifest is signed by an export key the root registered, valid then;
2. files: every file has the SHA-256 and size the manifest lists, and no file is unlisted;
3. keys: every registration in ``keys.json`` is signed by the root key;
4. checkpoints: every checkpoint is signed by a registered checkpoint key, and each partition's
   checkpoints are consistent (each tree extends the one before);
5. batches: each batch head is signed by its producer's key, valid at the batch's time, and is
   a leaf of a signed checkpoint;
6. events: each event's exact bytes lead, with their inclusion proof, to their batch's signed
   Merkle root; they decode under the bundled schemas as the event they claim to be; the JSON
   Lines copy says the same;
7. counts: the manifest's counts are what the bundle holds.

The proofs chain from the root key to every event byte: root → key registrations → batch
signatures and checkpoint signatures → Merkle roots → events. Nothing here needs the store, a
network, or anything from the provider beyond the root public key. Imports are limited to the
standard library, fastavro, cryptography and the client library.

Check 6 holds nearly all the work of a big bundle (every event hashed, proven, decoded and
compared with its JSON line). It reads the events files in chunks, each first through a fast
path (``fast_events``: batches' trees rebuilt at once, JSON lines rendered by code generated per
schema, ``consumers.bundle.format.line_compiler``) that only tells whether the chunk is clean; a
chunk that is not goes through the exact check event by event, which names the problems. The chunks
of a directory bundle are spread over worker processes (``verify_bundle(..., workers=N)``; by
default one per core when the events files hold more than some 30,000 events). The result,
problems and their order included, is the same whichever way a chunk went and however many
processes checked it.
"""

from __future__ import annotations

import os
from pathlib import Path

from aigc_audit.consumers.bundle.verify.event_checks import EventChecks
from aigc_audit.consumers.bundle.verify.manifest_checks import ManifestChecks
from aigc_audit.consumers.bundle.verify.result import (
    BundleError,
    BundleVerification,
    Check,
    format_checks,
)
from aigc_audit.consumers.bundle.verify.signature_checks import SignatureChecks
from aigc_audit.consumers.bundle.verify.source import open_source

__all__ = ["BundleError", "BundleVerification", "Check", "format_checks", "verify_bundle"]


class BundleVerifier(ManifestChecks, SignatureChecks, EventChecks):
    """The seven checks, in the order of the module docstring."""


def verify_bundle(
    path: str | os.PathLike[str], root_public_key: bytes, *, workers: int | None = None
) -> BundleVerification:
    """Run every check on the bundle at ``path`` (a directory or a .zip) against the
    provider's raw 32-byte Ed25519 root public key.

    ``workers`` is how many processes check the events of a directory bundle: by default
    one per core when the bundle is big enough to gain from them, 1 for this process alone.
    The result is the same whatever it is.

    A bad bundle never raises: its failed checks say what is wrong. Raises BundleError only
    when ``path`` does not exist or is not a bundle at all.
    """
    if len(root_public_key) != 32:
        raise BundleError(f"the root public key is {len(root_public_key)} bytes, not 32")
    if workers is not None and workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    source = open_source(Path(path))
    try:
        return BundleVerifier(source, bytes(root_public_key), workers=workers).run()
    finally:
        source.close()
