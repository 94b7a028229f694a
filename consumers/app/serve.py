"""``aigc-audit serve``: one process owns the embedded store, runs the materialiser on it, and
answers ClickHouse's HTTP interface on loopback, so analysts, other commands and Grafana reach the
store while it is being written.

The running server leaves ``<data_dir>/serve.json`` (mode 0600) with its address and a
read-only user's credentials (the ``reader``'s when this run made its password, else a per-run
``local`` reader's); other commands on the same data directory find it there and read through
clickhouse-connect instead of trying (and failing) to open the store themselves. The writer's
password is never written down: the server holds salted hashes only.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from typing import Any

from aigc_audit.consumers.app.deployment import Deployment
from aigc_audit.consumers.app.settings import Settings
from aigc_audit.consumers.errors import PlatformError
from aigc_audit.consumers.ingest.materialiser import MaterialiseStats
from aigc_audit.consumers.store.served import SERVE_FILE, ServedStore


class ServeError(PlatformError):
    """The store cannot be served."""


def serve(
    settings: Settings,
    *,
    port: int = 0,
    materialise: bool = True,
    stop: threading.Event,
    on_ready: Any = None,
    on_progress: Any = None,
) -> MaterialiseStats:
    """Serve the embedded store until ``stop`` is set; materialise from the bus meanwhile."""
    from aigc_audit.consumers.store.embedded import EmbeddedStore
    from aigc_audit.consumers.store.passwords import hash_password
    from aigc_audit.consumers.store.reader_policy import ReaderLimits
    from aigc_audit.consumers.store.server import StoreServer

    if settings.clickhouse_url:
        raise ServeError("serve owns an embedded store; with clickhouse_url set there is none")
    users, readonly, local_user, local_pw = _users(settings, hash_password)
    limits = ReaderLimits(
        max_execution_time_s=settings.reader_max_execution_time_s,
        max_memory_bytes=settings.reader_max_memory_bytes,
        max_result_rows=settings.reader_max_result_rows,
        max_result_bytes=settings.reader_max_result_bytes,
    )
    total = MaterialiseStats()
    with Deployment(settings) as deployment:
        store = deployment.store()
        if not isinstance(store, EmbeddedStore):
            raise ServeError("serve needs the embedded store")
        try:
            server = StoreServer(
                store,
                port=port,
                users=users,
                readonly_users=readonly,
                limits=limits,
                tls_cert=settings.serve_tls_cert,
                tls_key=settings.serve_tls_key,
            ).start()
        except ValueError as exc:
            raise ServeError(str(exc)) from None
        state = settings.data_dir / SERVE_FILE
        try:
            served = ServedStore(server.url(local_user, local_pw), os.getpid())
            fd = os.open(state, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                json.dump(served.__dict__, fh)
            if on_ready is not None:
                on_ready(served)
            materialiser = (
                deployment.materialiser(store=server.local_store()) if materialise else None
            )
            while not stop.is_set():
                if materialiser is None:
                    stop.wait(1.0)
                    continue
                total.add(materialiser.run_once(timeout_s=1.0))
                if on_progress is not None:
                    on_progress(total)
        finally:
            state.unlink(missing_ok=True)
            server.stop()
    return total


def _users(
    settings: Settings, hash_password: Any
) -> tuple[dict[str, str], tuple[str, ...], str, str]:
    """(user -> password hash, the read-only users, the user and password for serve.json).

    The reader's password is the configured hash, else ``AIGC_AUDIT_SERVE_READER_PASSWORD``,
    else random for this run; a writer exists only when configured (hash, or
    ``AIGC_AUDIT_SERVE_WRITER_PASSWORD``). When the reader's password is only known as a hash,
    local commands read as ``local``, a reader whose random password lives in serve.json."""
    users: dict[str, str] = {}
    readonly = ["reader"]
    if settings.serve_reader_password_hash:
        users["reader"] = settings.serve_reader_password_hash
        local_user, local_pw = "local", secrets.token_urlsafe(18)
        users["local"] = hash_password(local_pw)
        readonly.append("local")
    else:
        local_user = "reader"
        local_pw = os.environ.get("AIGC_AUDIT_SERVE_READER_PASSWORD") or secrets.token_urlsafe(18)
        users["reader"] = hash_password(local_pw)
    writer_pw = os.environ.get("AIGC_AUDIT_SERVE_WRITER_PASSWORD")
    if settings.serve_writer_password_hash:
        users["writer"] = settings.serve_writer_password_hash
    elif writer_pw:
        users["writer"] = hash_password(writer_pw)
    return users, tuple(readonly), local_user, local_pw
