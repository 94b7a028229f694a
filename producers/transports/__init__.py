"""The buses, both halves of each together: ``BusWriter``/``BusReader`` (``base``), the embedded
log (``embedded_log``, a SQLite file), and Kafka's writer, reader, topic set-up and TLS/SASL
(``kafka_*``). The platform reads through the same package the client writes through; like
all of the client library, it never imports ``consumers``.
"""
