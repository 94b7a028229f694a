"""The Store contract (tests/store_contract.py) on every store the platform can be given.

(a) ``embedded``: the EmbeddedStore itself. (b) ``served``: a ClickHouseStore talking to a
StoreServer that serves an EmbeddedStore from this very process, compared row for row with
the embedded store's own writes on the same engine. (c) ``clickhouse``: a real ClickHouse
server, only when ``AIGC_AUDIT_CLICKHOUSE_URL`` is set (``http://user:pw@host:8123/db``); the
tests then use a database of their own, dropped afterwards.

chDB allows one session per process, so each backend is module-scoped and closed before the
next opens (pytest runs one parameter's tests, then tears its fixture down, then the next).
"""

from __future__ import annotations

import os
import secrets
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest

from aigc_audit.consumers.store.clickhouse import ClickHouseStore
from tests.store_contract import Backend, StoreContract

URL_ENV = "AIGC_AUDIT_CLICKHOUSE_URL"
BACKENDS = ["embedded", "served", *(["clickhouse"] if os.environ.get(URL_ENV) else [])]

pytestmark = pytest.mark.chdb


@pytest.fixture(scope="module", params=BACKENDS)
def backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    if request.param == "clickhouse":
        url = urlsplit(os.environ[URL_ENV])
        database = f"aigc_audit_contract_{uuid.uuid4().hex[:12]}"
        store = ClickHouseStore.from_url(urlunsplit(url._replace(path=f"/{database}")))
        try:
            store.migrate()
            yield Backend("clickhouse", store)
        finally:
            store.command(f"DROP DATABASE IF EXISTS {database}")
            store.close()
        return

    from aigc_audit.consumers.store.embedded import EmbeddedStore
    from aigc_audit.consumers.store.server import StoreServer

    embedded = EmbeddedStore(tmp_path_factory.mktemp(request.param) / "store")
    try:
        if request.param == "embedded":
            embedded.migrate()
            yield Backend("embedded", embedded)
            return
        users = {"writer": secrets.token_urlsafe(12), "reader": secrets.token_urlsafe(12)}
        with StoreServer(embedded, users=users) as server:
            local = server.local_store()
            local.migrate()
            # The served store writes its own database beside the local one, on one engine.
            url = server.url("writer").removesuffix(f"/{embedded.database}") + "/served"
            served = ClickHouseStore.from_url(url)
            try:
                served.migrate()
                yield Backend("served", served, twin=local)
            finally:
                served.close()
    finally:
        embedded.close()


class TestStoreContract(StoreContract):
    """Runs every contract test once per backend."""
