"""``/healthz``: is the server ready for connections?

Theory of operation
-------------------
nats-server's ``healthz`` first checks that the server accepts clients
(``readyForConnections``), then, when JetStream is enabled, that JetStream and its
assets are current. pynats has no JetStream, so the answer depends only on the client
listener: open means ``{"status": "ok"}``; not open yet, or closed in lame duck mode,
is nats-server's ``500`` with ``failed to be ready for connections after 1ms: server``.

The JetStream switches are still decoded (a bad boolean is a ``400``, as in
nats-server) and the two argument checks nats-server makes before anything else
(``stream`` needs ``account``, ``consumer`` needs ``stream``) still apply.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from pynats.server.monitor.formats import JSONObject, parse_bool

if TYPE_CHECKING:
    from pynats.server.server import Server

#: Error nats-server's ``healthz`` gives when the client listener is not open.
NOT_READY: Final = "failed to be ready for connections after 1ms: server"


@dataclass(frozen=True, slots=True)
class HealthzQuery:
    """The options of one ``/healthz`` request.

    The JetStream switches are decoded (bad values are a 400, as in nats-server) but
    change nothing: JetStream is not supported, so it is never checked.
    """

    js_enabled: bool = False
    js_enabled_only: bool = False
    js_server_only: bool = False
    js_meta_only: bool = False
    details: bool = False
    account: str = ""
    stream: str = ""
    consumer: str = ""

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> HealthzQuery:
        """Decode query parameters in nats-server's order, with its error messages.

        Raises:
            QueryError: A boolean parameter has a value Go cannot parse.
        """
        return cls(js_enabled=parse_bool(params, "js-enabled"),
                   js_enabled_only=parse_bool(params, "js-enabled-only"),
                   js_server_only=parse_bool(params, "js-server-only"),
                   js_meta_only=parse_bool(params, "js-meta-only"),
                   details=parse_bool(params, "details"), account=params.get("account", ""),
                   stream=params.get("stream", ""), consumer=params.get("consumer", ""))


def healthz(server: Server, query: HealthzQuery | None = None) -> tuple[int, JSONObject]:
    """The health of the server, as nats-server's ``/healthz`` reports it.

    Args:
        server: The server.
        query: Decoded query parameters (defaults when None).

    Returns:
        The HTTP status and the body: ``(200, {"status": "ok"})`` when healthy.
    """
    q = query or HealthzQuery()
    if q.stream and not q.account:
        return _unhealthy(400, q.details, "BAD_REQUEST",
                          '"account" must not be empty when checking stream health')
    if q.consumer and not q.stream:
        return _unhealthy(400, q.details, "BAD_REQUEST",
                          '"stream" must not be empty when checking consumer health')
    if server.lame_duck_mode or not server.client_port:
        return _unhealthy(500, q.details, "CONNECTION", NOT_READY)
    return 200, {"status": "ok"}


def _unhealthy(status: int, details: bool, kind: str, error: str) -> tuple[int, JSONObject]:
    if details:
        return status, {"status": "error", "errors": [{"type": kind, "error": error}]}
    return status, {"status": "error", "error": error}


__all__ = ["NOT_READY", "HealthzQuery", "healthz"]
