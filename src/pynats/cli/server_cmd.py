"""``pynats server info|ping|check connection``: identity, load and health of a server.

Theory of operation
-------------------
Everything comes from two sources that any NATS server (pynats or nats-server) has:

* the client connection: the server's INFO (identity, version, limits, cluster) and
  PING/PONG round trips (RTT);
* with ``--monitor URL``, the HTTP monitoring endpoint: ``/varz`` for connections,
  subscriptions, message and byte totals, uptime, CPU and memory. The message rate is
  the difference of two ``/varz`` samples taken ``--interval`` apart.

``check connection`` follows the Nagios plugin conventions natscli uses (one status line
``OK|WARNING|CRITICAL|UNKNOWN ...`` with performance data after ``|``, exit status 0,
1, 2 or 3), so it drops into Nagios, Icinga, Sensu or a container health check.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from pynats.cli.connect import ConnSpec, client_error, open_client, spec_from_args
from pynats.cli.output import CliError, commas, format_duration, human_bytes, parse_duration
from pynats.cli.output import print_json as _print_json
from pynats.client import Client

NAGIOS = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "UNKNOWN"}


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add the ``server`` command group."""
    server = commands.add_parser("server", help="server identity, RTT and health checks",
                                 description=__doc__)
    sub = server.add_subparsers(dest="server_command", metavar="ACTION", required=True)

    info = sub.add_parser("info", parents=[common], help="show the server's identity and load")
    info.add_argument("--monitor", metavar="URL",
                      help="monitoring endpoint (http://host:8222) for connections and rates")
    info.add_argument("--interval", type=parse_duration, default=1.0, metavar="DURATION",
                      help="sampling interval of the message rate (default 1s)")
    info.add_argument("--json", action="store_true", help="JSON output")
    info.set_defaults(func=cmd_info)

    ping = sub.add_parser("ping", parents=[common], help="measure the round-trip time")
    ping.add_argument("--count", type=int, default=5, help="pings to send (default 5)")
    ping.add_argument("--interval", type=parse_duration, default=0.1, metavar="DURATION",
                      help="pause between pings (default 100ms)")
    ping.add_argument("--json", action="store_true", help="JSON output")
    ping.set_defaults(func=cmd_ping)

    check = sub.add_parser("check", help="Nagios-style health checks")
    kinds = check.add_subparsers(dest="check_kind", metavar="CHECK", required=True)
    conn = kinds.add_parser("connection", parents=[common],
                            help="connect, measure RTT and a publish/subscribe round trip")
    for name, default in (("connect-warn", 0.5), ("connect-critical", 1.0),
                          ("rtt-warn", 0.5), ("rtt-critical", 1.0),
                          ("req-warn", 0.5), ("req-critical", 1.0)):
        conn.add_argument(f"--{name}", type=parse_duration, default=default,
                          metavar="DURATION", help=f"threshold (default {default}s)")
    conn.add_argument("--json", action="store_true", help="JSON output")
    conn.set_defaults(func=cmd_check_connection)


# -- monitoring ------------------------------------------------------------------------------
def fetch_json(base: str, path: str, timeout: float = 5.0) -> dict[str, Any]:
    """GET ``base + path`` and decode its JSON object.

    Raises:
        CliError: the endpoint is unreachable or did not answer JSON.
    """
    url = base.rstrip("/") + path
    if "://" not in url:
        url = "http://" + url
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            data = json.loads(resp.read())
    except urllib.error.URLError as exc:
        raise CliError(f"monitoring endpoint {url}: {getattr(exc, 'reason', exc)}") from None
    except (OSError, ValueError) as exc:
        raise CliError(f"monitoring endpoint {url}: {exc}") from None
    if not isinstance(data, dict):
        raise CliError(f"monitoring endpoint {url}: not a JSON object")
    return data


def varz_rates(first: dict[str, Any], second: dict[str, Any], seconds: float) -> dict[str, float]:
    """Messages and bytes per second between two ``/varz`` samples."""
    rates = {}
    for key in ("in_msgs", "out_msgs", "in_bytes", "out_bytes"):
        delta = float(second.get(key, 0)) - float(first.get(key, 0))
        rates[key + "_per_sec"] = max(0.0, delta) / seconds if seconds > 0 else 0.0
    return rates


# -- info -----------------------------------------------------------------------------------
def cmd_info(args: argparse.Namespace) -> int:
    """Run ``server info``."""
    return asyncio.run(_info(args, spec_from_args(args)))


async def _info(args: argparse.Namespace, spec: ConnSpec) -> int:
    nc = await open_client(spec, reconnect=False)
    try:
        rtt = await nc.rtt(timeout=spec.timeout)
        info = nc.server_info
        report: dict[str, Any] = {
            "url": nc.connected_url, "server_id": info.server_id,
            "server_name": info.server_name, "version": info.version, "proto": info.proto,
            "host": info.host, "port": info.port, "max_payload": info.max_payload,
            "headers": info.headers, "auth_required": info.auth_required,
            "tls_required": info.tls_required, "cluster": info.cluster,
            "connect_urls": list(info.connect_urls), "client_id": info.client_id,
            "client_ip": info.client_ip, "rtt_ms": round(rtt * 1000, 3),
        }
        if args.monitor:  # while connected, so this connection is counted too
            report.update(await _monitor(args.monitor, args.interval))
    finally:
        with contextlib.suppress(Exception):
            await nc.close()
    if args.json:
        _print_json(report)
    else:
        print_info(report)
    return 0


async def _monitor(base: str, interval: float) -> dict[str, Any]:
    """``/varz`` figures and the message rates over ``interval``."""
    first = await asyncio.to_thread(fetch_json, base, "/varz")
    started = time.monotonic()
    await asyncio.sleep(interval)
    second = await asyncio.to_thread(fetch_json, base, "/varz")
    keys = ("connections", "total_connections", "subscriptions", "slow_consumers",
            "in_msgs", "out_msgs", "in_bytes", "out_bytes", "uptime", "mem", "cpu",
            "cores", "start", "routes")
    return {"varz": {k: second[k] for k in keys if k in second},
            "rates": varz_rates(first, second, time.monotonic() - started)}


def print_info(report: dict[str, Any]) -> None:
    """The human form of ``server info``."""
    rows: list[tuple[str, str]] = [
        ("Server", report["server_id"] if report["server_name"] in ("", report["server_id"])
         else f"{report['server_name']} ({report['server_id']})"),
        ("Version", f"{report['version']} (protocol {report['proto']})"),
        ("URL", str(report["url"])),
        ("Listening", f"{report['host']}:{report['port']}"),
        ("Max payload", human_bytes(report["max_payload"])),
        ("Headers", "yes" if report["headers"] else "no"),
        ("Auth required", "yes" if report["auth_required"] else "no"),
        ("TLS required", "yes" if report["tls_required"] else "no"),
        ("Cluster", report["cluster"] or "-"),
        ("Client", f"id {report['client_id']} from {report['client_ip'] or '-'}"),
        ("RTT", format_duration(report["rtt_ms"] / 1000)),
    ]
    varz = report.get("varz")
    if varz is not None:
        rates = report["rates"]
        rows += [
            ("Connections", f"{commas(varz.get('connections', 0))} "
                            f"(total {commas(varz.get('total_connections', 0))})"),
            ("Subscriptions", commas(varz.get("subscriptions", 0))),
            ("Messages", f"in {commas(varz.get('in_msgs', 0))} / out "
                         f"{commas(varz.get('out_msgs', 0))}"),
            ("Bytes", f"in {human_bytes(varz.get('in_bytes', 0))} / out "
                      f"{human_bytes(varz.get('out_bytes', 0))}"),
            ("Rate", f"in {commas(rates['in_msgs_per_sec'])} msgs/sec / out "
                     f"{commas(rates['out_msgs_per_sec'])} msgs/sec"),
            ("Slow consumers", commas(varz.get("slow_consumers", 0))),
            ("Uptime", str(varz.get("uptime", "-"))),
            ("Memory", human_bytes(varz.get("mem", 0))),
            ("CPU", f"{varz.get('cpu', 0)}%"),
        ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:>{width}}: {value}")


# -- ping -----------------------------------------------------------------------------------
def cmd_ping(args: argparse.Namespace) -> int:
    """Run ``server ping``."""
    if args.count < 1:
        raise CliError("--count must be at least 1")
    return asyncio.run(_ping(args, spec_from_args(args)))


async def _ping(args: argparse.Namespace, spec: ConnSpec) -> int:
    nc = await open_client(spec, reconnect=False)
    rtts: list[float] = []
    try:
        name = nc.server_info.server_name or nc.server_info.server_id
        for n in range(args.count):
            rtt = await nc.rtt(timeout=spec.timeout)
            rtts.append(rtt)
            if not args.json:
                print(f"{name} ({nc.connected_url}): seq={n + 1} rtt={format_duration(rtt)}",
                      flush=True)
            if n + 1 < args.count:
                await asyncio.sleep(args.interval)
    finally:
        with contextlib.suppress(Exception):
            await nc.close()
    summary = {"server": name, "count": len(rtts), "min_ms": min(rtts) * 1000,
               "avg_ms": statistics.fmean(rtts) * 1000, "max_ms": max(rtts) * 1000}
    if args.json:
        _print_json({**summary, "rtts_ms": [r * 1000 for r in rtts]})
    else:
        print(f"\n{len(rtts)} pings: min {format_duration(min(rtts))} | avg "
              f"{format_duration(statistics.fmean(rtts))} | max {format_duration(max(rtts))}")
    return 0


# -- check connection -----------------------------------------------------------------------
def threshold_status(value: float, warn: float, critical: float) -> int:
    """0 below ``warn``, 1 from ``warn``, 2 from ``critical``."""
    if value >= critical:
        return 2
    return 1 if value >= warn else 0


def cmd_check_connection(args: argparse.Namespace) -> int:
    """Run ``server check connection``; the exit status is the Nagios status."""
    try:
        spec = spec_from_args(args)
    except CliError as exc:
        return _check_report(args, 3, [f"UNKNOWN: {exc}"], [])
    return asyncio.run(_check_connection(args, spec))


async def _check_connection(args: argparse.Namespace, spec: ConnSpec) -> int:
    started = time.monotonic()
    try:
        nc = await open_client(spec, reconnect=False)
    except BaseException as exc:
        error = client_error(exc, spec)
        if error is None:
            raise
        return _check_report(args, 2, [f"CRITICAL:connection failed: {error}"], [])
    connect_time = time.monotonic() - started
    try:
        rtt = await nc.rtt(timeout=max(spec.timeout, args.rtt_critical))
        req_time = await _round_trip(nc, max(spec.timeout, args.req_critical))
    except BaseException as exc:
        error = client_error(exc, spec)
        if error is None:
            raise
        return _check_report(args, 2, [f"CRITICAL:{error}"], [])
    finally:
        with contextlib.suppress(Exception):
            await nc.close()
    checks = [
        ("connected to", f"{nc.connected_url or spec.url} in", "connect_time", connect_time,
         args.connect_warn, args.connect_critical),
        ("rtt time", "", "rtt", rtt, args.rtt_warn, args.rtt_critical),
        ("round trip took", "", "request_time", req_time, args.req_warn, args.req_critical),
    ]
    status = 0
    messages, perf = [], []
    for what, where, label, value, warn, crit in checks:
        level = threshold_status(value, warn, crit)
        status = max(status, level)
        text = f"{what} {where} {format_duration(value)}".replace("  ", " ")
        messages.append(f"{NAGIOS[level]}:{text}")
        perf.append((label, value, warn, crit))
    return _check_report(args, status, messages, perf)


async def _round_trip(nc: Client, timeout: float) -> float:
    """Seconds for a message to come back through the server on a fresh inbox."""
    inbox = nc.new_inbox()
    sub = nc.subscribe(inbox, max_msgs=1)
    await nc.flush(timeout)
    started = time.monotonic()
    nc.publish(inbox, b"pynats check")
    await sub.next_msg(timeout=timeout)
    return time.monotonic() - started


def _check_report(args: argparse.Namespace, status: int, messages: list[str],
                  perf: list[tuple[str, float, float, float]]) -> int:
    if getattr(args, "json", False):
        _print_json({"check": "connection", "status": NAGIOS[status], "exit": status,
                     "messages": messages,
                     "perf": {label: {"value": value, "warn": warn, "crit": crit}
                              for label, value, warn, crit in perf}})
        return status
    line = f"{NAGIOS[status]} Connection {' '.join(messages)}"
    if perf:
        line += " | " + " ".join(f"{label}={value:.4f}s;{warn:.4f};{crit:.4f}"
                                 for label, value, warn, crit in perf)
    print(line, flush=True)
    sys.stdout.flush()
    return status
