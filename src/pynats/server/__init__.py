"""The pynats server: a drop-in nats-server for core NATS."""
