"""How to start the real parts of aigc-audit on one machine: Kafka (KRaft) from Maven Central."""
