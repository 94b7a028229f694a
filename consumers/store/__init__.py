"""Store: where verified events live. ``EmbeddedStore`` (chDB, the ClickHouse engine in-process)
and ``ClickHouseStore`` (a server) behind one ``Store`` protocol, one set of tables and DDL
(``tables``, ``ddl``, ``migrations``), the rows a batch becomes (``rows``), and ``serve``'s HTTP
interface with its reader allow-list (``server``, ``reader_policy``). The bottom stage: imports
only ``consumers.errors`` and the client library.
"""
