"""Monitoring: nats-server's HTTP endpoints, as pure snapshots under a thin HTTP shell.

Each endpoint's builder is a pure function of the server (``varz.py``, ``connz.py``,
``routez.py``, ``subsz.py``, ``accountz.py``, ``healthz.py``, ``inactive.py`` for
gateways, leaf nodes and JetStream, ``metrics.py`` for the Prometheus view), sharing
the formats of ``formats.py``. ``http.py`` (with ``httpwire.py`` and ``tls.py``) is the
listener that decodes queries, calls the builders and writes their answers.
"""
