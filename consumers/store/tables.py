"""The store's tables: one definition serves the embedded engine (chDB) and a ClickHouse server.

The DDL that creates them, on one node or a cluster, is ``ddl.py``'s, run by the numbered
migrations (``migrations/``). Typed tables are ReplacingMergeTree keyed on the event id, and
every insert carries a deduplication token derived from its bus position, so a retried insert
after a crash is absorbed and queries need no FINAL. Nothing here records the time of
materialisation: replaying the bus into an empty store must give the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass

TS = "DateTime64(6, 'UTC')"
NTS = f"Nullable({TS})"
DIGEST = "FixedString(32)"
LC = "LowCardinality(String)"
NSTR = "Nullable(String)"

# Window of insert tokens a MergeTree remembers; must exceed the inserts a crash can leave
# uncommitted (one poll's worth of batches times the tables each batch touches).
DEDUP_WINDOW = 100_000


BINARY_STRINGS = frozenset({"event_bytes", "message", "sealed_evidence"})
"""String columns that hold raw bytes rather than text."""


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[tuple[str, str], ...]
    order_by: str
    partition_by: str | None = None
    version: str | None = None
    """Column that decides which duplicate ReplacingMergeTree keeps (latest wins)."""

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    @property
    def binary_columns(self) -> frozenset[str]:
        """Columns whose values are bytes: digests, signatures and exact message bytes."""
        return frozenset(
            name for name, ctype in self.columns if "FixedString" in ctype or name in BINARY_STRINGS
        )


HOLD_KEYS = ("hold_keys", "Array(String)")
"""The legal-hold keys a row answers to (``subject:<id>``, ``case:<id>``): while any of them is
held, the row outlives its retention period. A batch row carries its events' keys, since it is
their proof. Added by migration 0004."""

HEAD = (
    ("event_id", "UUID"),
    ("occurred_at", TS),
    ("service_id", LC),
    ("producer_id", LC),
)
REPORT = (
    ("reported", "Bool"),
    ("authority", NSTR),
    ("report_reference", NSTR),
    ("reported_at", NTS),
)
MONTHLY = "toYYYYMM(occurred_at)"

BATCHES = Table(
    "batches",
    (
        ("producer_id", LC),
        ("sequence", "UInt64"),
        ("key_id", LC),
        ("prev_digest", DIGEST),
        ("digest", DIGEST),
        ("created_at", TS),
        ("event_count", "UInt32"),
        ("merkle_root", DIGEST),
        ("signature", "FixedString(64)"),
        ("topic", LC),
        ("partition", "UInt32"),
        ("offset", "UInt64"),
        HOLD_KEYS,
    ),
    order_by="(producer_id, sequence)",
)

EVENTS = Table(
    "events",
    (
        ("event_id", "UUID"),
        ("event_type", LC),
        ("family", LC),
        ("occurred_at", TS),
        ("service_id", LC),
        ("producer_id", LC),
        ("schema_version", "UInt16"),
        ("schema_fingerprint", "FixedString(8)"),
        ("batch_sequence", "UInt64"),
        ("leaf_index", "UInt32"),
        ("leaf_hash", DIGEST),
        ("event_bytes", "String"),
        HOLD_KEYS,
    ),
    order_by="event_id",
    partition_by=MONTHLY,
)

GENERATIONS = Table(
    "generations",
    (
        *HEAD,
        ("request_id", "String"),
        ("model_name", LC),
        ("model_version", LC),
        ("filing_number", "Nullable(String)"),
        ("modality", LC),
        ("channel", LC),
        ("subject", "String"),
        ("input_sha256", DIGEST),
        ("output_sha256", f"Nullable({DIGEST})"),
        ("input_tokens", "Nullable(UInt64)"),
        ("output_tokens", "Nullable(UInt64)"),
        ("output_bytes", "Nullable(UInt64)"),
        ("explicit_label", "Bool"),
        ("implicit_label", "Bool"),
        ("label_value", NSTR),
        ("content_producer", NSTR),
        ("produce_id", NSTR),
        ("reserved_code1", NSTR),
        ("unlabelled_on_request", "Bool"),
        ("safety_verdict", LC),
        ("minor_mode", "Bool"),
        ("latency_ms", "UInt32"),
        HOLD_KEYS,
    ),
    order_by="event_id",
    partition_by=MONTHLY,
)

MODERATION_ACTIONS = Table(
    "moderation_actions",
    (
        *HEAD,
        ("event_type", LC),
        ("case_id", "String"),
        ("target", LC),
        ("target_ref", "String"),
        ("subject", NSTR),
        ("model_name", NSTR),
        ("model_version", NSTR),
        ("detection_source", LC),
        ("risk_category", NSTR),
        ("action", LC),
        ("detected_at", TS),
        ("acted_at", NTS),
        ("reviewer", NSTR),
        ("rectification_ticket", NSTR),
        ("rectification_opened_at", NTS),
        ("rectification_due_at", NTS),
        ("rectification_closed_at", NTS),
        *REPORT,
        ("complaint_id", NSTR),
        ("complaint_channel", NSTR),
        ("complaint_received_at", NTS),
        ("complaint_due_by", NTS),
        ("complaint_handled_at", NTS),
        ("complaint_feedback_at", NTS),
        ("sealed_evidence", NSTR),
        HOLD_KEYS,
    ),
    order_by="event_id",
    partition_by=MONTHLY,
)

USER_SANCTIONS = Table(
    "user_sanctions",
    (
        *HEAD,
        ("sanction_id", "String"),
        ("subject", "String"),
        ("action", LC),
        ("reason_category", LC),
        ("restricted_functions", "Array(String)"),
        ("evidence", "Array(String)"),
        ("effective_from", TS),
        ("effective_until", NTS),
        ("records_preserved", "Bool"),
        *REPORT,
        HOLD_KEYS,
    ),
    order_by="event_id",
    partition_by=MONTHLY,
)

LEGAL_HOLD_COLUMNS = (
    ("hold_id", NSTR),
    ("hold_scope", NSTR),
    ("hold_target", NSTR),
    ("hold_action", NSTR),
    ("hold_reason", NSTR),
    ("requested_by", NSTR),
)

AGREEMENT_ACCEPTANCE_COLUMNS = (
    ("agreement_id", NSTR),
    ("agreement_version", NSTR),
    ("accepted_at", NTS),
    ("channel", NSTR),
)
"""The agreement_acceptance detail (Art. 9): which version of which service agreement the
subject accepted, when, and where (app, web, api). Added by migration 0006."""

DATA_HANDLING = Table(
    "data_handling",
    (
        *HEAD,
        ("event_type", LC),
        ("subject", NSTR),
        # personal_information_request
        ("request_id", NSTR),
        ("request_kind", NSTR),
        ("received_at", NTS),
        ("due_at", NTS),
        ("status", NSTR),
        ("completed_at", NTS),
        ("outcome", NSTR),
        # training_data_intake (dataset_id, model_* and legal_basis shared with others)
        ("dataset_id", NSTR),
        ("source", NSTR),
        ("source_kind", NSTR),
        ("legal_basis", NSTR),
        ("contains_personal_information", "Nullable(Bool)"),
        ("consent_basis", NSTR),
        ("size_bytes", "Nullable(UInt64)"),
        ("record_count", "Nullable(UInt64)"),
        ("model_name", NSTR),
        ("model_version", NSTR),
        # annotation_quality_check
        ("rules_version", NSTR),
        ("sample_size", "Nullable(UInt64)"),
        ("sampled_accuracy", "Nullable(Float64)"),
        # safety_evaluation
        ("generated_test_size", "Nullable(UInt64)"),
        ("qualified_rate", "Nullable(Float64)"),
        ("should_refuse_test_size", "Nullable(UInt64)"),
        ("refusal_rate", "Nullable(Float64)"),
        ("should_answer_test_size", "Nullable(UInt64)"),
        ("false_refusal_rate", "Nullable(Float64)"),
        # identity_verification
        ("method", NSTR),
        ("verified", "Nullable(Bool)"),
        # retention_purge and authority_disclosure (scope shared)
        ("scope", NSTR),
        ("cutoff", NTS),
        ("records_purged", "Nullable(UInt64)"),
        ("reason", NSTR),
        ("authority", NSTR),
        ("reference", NSTR),
        ("records_disclosed", "Nullable(UInt64)"),
        # legal_hold (added by migration 0003)
        *LEGAL_HOLD_COLUMNS,
        HOLD_KEYS,
        # agreement_acceptance (added by migration 0006)
        *AGREEMENT_ACCEPTANCE_COLUMNS,
    ),
    order_by="event_id",
    partition_by=MONTHLY,
)

QUARANTINE = Table(
    "quarantine",
    (
        ("topic", LC),
        ("partition", "UInt32"),
        ("offset", "UInt64"),
        ("received_at", TS),
        ("reason", LC),
        ("detail", "String"),
        ("producer_id", NSTR),
        ("key_id", NSTR),
        ("sequence", "Nullable(UInt64)"),
        ("digest", f"Nullable({DIGEST})"),
        ("advances_chain", "Bool"),
        ("message", "String"),
    ),
    order_by="(topic, partition, offset)",
)

CHAIN_FINDINGS = Table(
    "chain_findings",
    (
        ("producer_id", LC),
        ("kind", LC),
        ("expected_sequence", "Nullable(UInt64)"),
        ("got_sequence", "UInt64"),
        ("detail", "String"),
        ("topic", LC),
        ("partition", "UInt32"),
        ("offset", "UInt64"),
        ("received_at", TS),
    ),
    order_by="(topic, partition, offset, kind)",
)

KEYS = Table(
    "keys",
    (
        ("key_id", "String"),
        ("producer_id", LC),
        ("public_key", "FixedString(32)"),
        ("valid_from", TS),
        ("valid_until", NTS),
        ("revoked_at", NTS),
        ("registered_at", TS),
        ("root_key_id", "String"),
        ("signature", "FixedString(64)"),
    ),
    order_by="key_id",
    version="registered_at",
)

SCHEMA_MIGRATIONS = Table(
    "schema_migrations",
    (("version", "UInt32"), ("name", "String"), ("applied_at", TS)),
    order_by="version",
)

LEGAL_HOLDS = Table(
    "legal_holds",
    (
        ("hold_key", "String"),
        ("hold_id", "String"),
        ("active", "Bool"),
        ("occurred_at", TS),
        ("event_id", "UUID"),
    ),
    order_by="hold_key",
    version="occurred_at",
)
"""Each hold key's latest state (placed or released); the ``active_holds`` dictionary reads it."""

CHECKPOINTS = Table(
    "checkpoints",
    (
        ("topic", LC),
        ("partition", "UInt32"),
        ("tree_size", "UInt64"),
        ("root_hash", DIGEST),
        ("next_offset", "UInt64"),
        ("origin", "String"),
        ("key_id", "String"),
        ("signed_at", TS),
        ("note", "String"),
    ),
    order_by="(topic, partition, tree_size, next_offset)",
)
"""Signed checkpoints of each bus partition's tree of accepted batches (C2SP signed notes, the
whole note in ``note``); ``tree_size`` batches, the first ``next_offset`` bus offsets. Written
by the materialiser (migration 0005); kept as long as the keys, since every export needs them."""

FAMILY_TABLES: dict[str, Table] = {
    "aigc.audit.Generation": GENERATIONS,
    "aigc.audit.ModerationAction": MODERATION_ACTIONS,
    "aigc.audit.UserSanction": USER_SANCTIONS,
    "aigc.audit.DataHandling": DATA_HANDLING,
}
"""The typed table each event family's rows go to."""

ALL_TABLES: tuple[Table, ...] = (
    BATCHES,
    EVENTS,
    GENERATIONS,
    MODERATION_ACTIONS,
    USER_SANCTIONS,
    DATA_HANDLING,
    QUARANTINE,
    CHAIN_FINDINGS,
    KEYS,
    LEGAL_HOLDS,
    CHECKPOINTS,
    SCHEMA_MIGRATIONS,
)
