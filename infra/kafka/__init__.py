"""A single-node Apache Kafka 4.x broker (KRaft) fetched with Maven and run without Docker.

``infra.kafka.broker`` holds the manager (fetch, start, stop, status, restart);
``infra.kafka.security`` the keytool-made certificates and the SCRAM credentials of a secured
broker; ``infra.kafka.tools`` the machine's tools it needs. The ``aigc-audit infra kafka``
commands are the CLI's (``consumers.cli.kafka``): infra imports nothing of the platform.
``pom.xml`` and ``log4j2.properties`` beside this file are package data: the broker is fetched
and configured from them, also from an installed wheel.
"""
