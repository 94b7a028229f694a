"""The state the checks share: the bundle, the root key, and what earlier checks established."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aigc_audit.consumers.bundle.format import records as fmt
from aigc_audit.consumers.bundle.verify.inclusion import BatchState
from aigc_audit.consumers.bundle.verify.result import BundleVerification, Problems
from aigc_audit.consumers.bundle.verify.source import BundleSource, Unreadable, reason_of
from aigc_audit.producers.signing import KeyRegistration, key_id_for


def same_json(line: str, rendered: str) -> bool:
    try:
        return bool(json.loads(line) == json.loads(rendered))
    except ValueError:
        return False


class VerifierBase:
    def __init__(
        self, source: BundleSource, root_public_key: bytes, *, workers: int | None = None
    ) -> None:
        self.source = source
        self.workers = workers
        """Processes that check the events (check 6): None for as many as the machine has
        cores when the bundle is big enough to gain from them, 1 for this process alone."""
        self.root = root_public_key
        self.root_id = key_id_for(root_public_key)
        self.result = BundleVerification(Path(source.label))
        self.manifest: dict[str, Any] | None = None
        self.manifest_error: str | None = None
        self.registrations: list[KeyRegistration] | None = None
        self.keys_error: str | None = None
        self.trusted: dict[str, KeyRegistration] = {}
        self.checkpoint_roots: dict[tuple[str, int], bytes] = {}
        self.batches: dict[tuple[str, int], BatchState] = {}
        self.found: dict[str, Any] = {}

    def run(self) -> BundleVerification:
        self._load()
        try:
            self._start()
            self._run_steps()
        finally:
            self._finish()
        self.result.counts = self.found
        self.result.manifest = self.manifest
        return self.result

    if TYPE_CHECKING:
        # The checks, each defined by the mixin of its stage (ManifestChecks, SignatureChecks,
        # EventChecks) that BundleVerifier combines; declared here for _run_steps only.
        def _check_manifest(self, problem: Problems) -> str: ...
        def _check_files(self, problem: Problems) -> str: ...
        def _check_keys(self, problem: Problems) -> str: ...
        def _check_checkpoints(self, problem: Problems) -> str: ...
        def _check_batches(self, problem: Problems) -> str: ...
        def _check_events(self, problem: Problems) -> str: ...
        def _check_counts(self, problem: Problems) -> str: ...

    def _start(self) -> None:
        """Set going, ahead of the checks, work that does not depend on their outcome."""

    def _finish(self) -> None:
        """Release what ``_start`` took."""

    def _run_steps(self) -> None:
        for step in (
            self._check_manifest,
            self._check_files,
            self._check_keys,
            self._check_checkpoints,
            self._check_batches,
            self._check_events,
            self._check_counts,
        ):
            name, ok_detail = step.__doc__.split(":", 1) if step.__doc__ else ("?", "")
            problems = Problems()
            try:
                detail = step(problems)
            except Exception as exc:  # a bundle crafted to break the verifier fails, not crashes
                problems(f"cannot be checked: {type(exc).__name__}: {reason_of(exc)}")
                detail = ""
            self.result.checks.append(problems.check(name.strip(), detail or ok_detail.strip()))

    # -- shared inputs ----------------------------------------------------------------------

    def _read_json(self, name: str) -> Any:
        try:
            return fmt.parse_json(self.source.read(name), name)
        except Unreadable as exc:
            raise fmt.FormatError(str(exc)) from None

    def _load(self) -> None:
        if self.source.damage:
            self.manifest_error = self.source.damage
        else:
            try:
                manifest = self._read_json(fmt.MANIFEST)
                if not isinstance(manifest, dict):
                    raise fmt.FormatError(f"{fmt.MANIFEST} is not a JSON object")
                self.manifest = manifest
            except fmt.FormatError as exc:
                self.manifest_error = str(exc)
        try:
            data = self._read_json(fmt.KEYS_FILE)
            if not isinstance(data, list):
                raise fmt.FormatError(f"{fmt.KEYS_FILE} is not a JSON list")
            self.registrations = [fmt.registration_from_json(item) for item in data]
        except fmt.FormatError as exc:
            self.keys_error = str(exc)

    def _latest(self, regs: list[KeyRegistration], key_id: str) -> KeyRegistration | None:
        found = [r for r in regs if r.key_id == key_id]
        return max(found, key=lambda r: r.registered_at_us) if found else None
