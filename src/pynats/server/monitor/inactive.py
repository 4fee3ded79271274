"""``/gatewayz``, ``/leafz`` and ``/jsz``: features pynats does not have.

Theory of operation
-------------------
Monitoring tools poll these endpoints whatever the server runs, so they answer exactly
as nats-server does when the feature is not configured: no gateways, no leaf nodes,
JetStream disabled. Their query parameters are decoded all the same, so a malformed
value is the same ``400`` with the same text, and ``/jsz?leader-only=true`` is refused
as nats-server refuses it on a server that is not a JetStream leader.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pynats.server.monitor.formats import (
    JSONObject,
    QueryError,
    parse_bool,
    parse_int,
    rfc3339,
)

if TYPE_CHECKING:
    from pynats.server.server import Server


def _head(server: Server, now_ns: int | None) -> JSONObject:
    return {"server_id": server.server_id,
            "now": rfc3339(time.time_ns() if now_ns is None else now_ns)}


@dataclass(frozen=True, slots=True)
class GatewayzQuery:
    """``/gatewayz`` options: ``accs`` (boolean), ``gw_name``, ``acc_name``."""

    accounts: bool = False
    gateway: str = ""
    account: str = ""

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> GatewayzQuery:
        """Decode like nats-server's ``HandleGatewayz`` (``acc_name`` implies ``accs``).

        Raises:
            QueryError: ``accs`` is not a Go boolean.
        """
        accounts = parse_bool(params, "accs")
        account = params.get("acc_name", "")
        return cls(accounts=accounts or bool(account), gateway=params.get("gw_name", ""),
                   account=account)


def gatewayz(server: Server, query: GatewayzQuery | None = None, *,
             now_ns: int | None = None) -> JSONObject:
    """nats-server's ``/gatewayz`` without gateways: two empty maps."""
    return dict(_head(server, now_ns), outbound_gateways={}, inbound_gateways={})


@dataclass(frozen=True, slots=True)
class LeafzQuery:
    """``/leafz`` options: ``subs`` (boolean) and ``acc``."""

    subs: bool = False
    account: str = ""

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> LeafzQuery:
        """Decode like nats-server's ``HandleLeafz``.

        Raises:
            QueryError: ``subs`` is not a Go boolean.
        """
        return cls(subs=parse_bool(params, "subs"), account=params.get("acc", ""))


def leafz(server: Server, query: LeafzQuery | None = None, *,
          now_ns: int | None = None) -> JSONObject:
    """nats-server's ``/leafz`` without leaf nodes."""
    return dict(_head(server, now_ns), leafnodes=0, leafs=[])


#: ``/jsz`` booleans, in the order nats-server decodes them (``offset``/``limit`` between).
_JSZ_FLAGS = ("accounts", "streams", "consumers", "config")
_JSZ_LATE_FLAGS = ("leader-only", "raft", "stream-leader-only", "direct-consumers")


@dataclass(frozen=True, slots=True)
class JszQuery:
    """``/jsz`` options; only ``leader-only`` changes the answer without JetStream."""

    leader_only: bool = False
    account: str = ""

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> JszQuery:
        """Decode like nats-server's ``HandleJsz``.

        Raises:
            QueryError: A malformed boolean or integer.
        """
        for name in _JSZ_FLAGS:
            parse_bool(params, name)
        parse_int(params, "offset")
        parse_int(params, "limit")
        flags = {name: parse_bool(params, name) for name in _JSZ_LATE_FLAGS}
        return cls(leader_only=flags["leader-only"], account=params.get("acc", ""))


def jsz(server: Server, query: JszQuery | None = None, *,
        now_ns: int | None = None) -> JSONObject:
    """nats-server's ``/jsz`` with JetStream disabled.

    Raises:
        QueryError: ``leader-only`` was asked for: there is no JetStream leader here.
    """
    if query is not None and query.leader_only:
        raise QueryError("filtered response: not leader")
    none = {"memory": 0, "storage": 0, "reserved_memory": 0, "reserved_storage": 0,
            "accounts": 0, "ha_assets": 0, "api": {"level": 0, "total": 0, "errors": 0}}
    return dict(none, **_head(server, now_ns), disabled=True,
                config={"max_memory": 0, "max_storage": 0}, streams=0, consumers=0,
                messages=0, bytes=0, total=0)


__all__ = ["GatewayzQuery", "JszQuery", "LeafzQuery", "gatewayz", "jsz", "leafz"]
