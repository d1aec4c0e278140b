"""Issue #10: what a local Ray started by rsearch listens on, and --address that nobody answers."""

from __future__ import annotations

import functools
import ipaddress
import os
import socket
import time

import pytest
import ray
from ray._private import services

from rsearch.errors import UserError
from rsearch.ray_session import GCS_ANSWER_TIMEOUT_S, init_ray

# Sockets allowed to listen beyond loopback, as {process-name fragment: why, Ray issue}.
# Empty: with the node IP kept at 127.0.0.1 (rsearch.ray_session) Ray 2.60 binds every server
# to loopback. Measured before that change (node IP 127.0.0.1 turned into the external address):
# gcs_server, raylet (2 ports), the driver's and every worker's core-worker gRPC server, the
# dashboard agent's gRPC port on `::`; the dashboard agent's metrics export port, the dashboard
# head's (44227) and the autoscaler monitor's (44217) Prometheus ports on 0.0.0.0; the dashboard
# agent's HTTP port (52365) and the runtime-env agent on the external address.
# Token authentication (Ray 2.60's default for a local Ray) does not cover the metrics export
# port: GET /metrics answers 200 without a token (the agent's HTTP port and the runtime-env
# agent answer 401); on loopback that is readable by local users only.
ALLOWED_BEYOND_LOOPBACK: dict[str, str] = {}


def _is_loopback(ip: str) -> bool:
    addr = ipaddress.ip_address(ip.split("%")[0])
    mapped = getattr(addr, "ipv4_mapped", None)  # gRPC's IPv6 socket bound to ::ffff:127.0.0.1
    return addr.is_loopback or bool(mapped and mapped.is_loopback)


def _ray_listeners() -> list[tuple[str, int, int, str]]:
    """(ip, port, pid, process) of each listening TCP socket of this process (the driver) and
    of the Ray processes under it: gcs_server, raylet, dashboard, monitor, log monitor (children
    of the driver), agents and workers (children of the raylet)."""
    import psutil  # Ray ships it (ray/thirdparty_files), importable once ray is imported

    me = psutil.Process()
    found = []
    for proc in [me, *me.children(recursive=True)]:
        try:
            name = " ".join(proc.cmdline()) or proc.name()
            if proc.pid != me.pid and "ray" not in name and "gcs_server" not in name:
                continue  # some other test's child (a moto server, a browser)
            conns = proc.net_connections(kind="inet")
        except psutil.NoSuchProcess:
            continue
        found += [
            (c.laddr.ip, c.laddr.port, proc.pid, name[:100])
            for c in conns
            if c.status == psutil.CONN_LISTEN
        ]
    return sorted(found)


def _format(listeners) -> str:
    return "\n".join(f"  {ip}:{port}  pid {pid}  {name}" for ip, port, pid, name in listeners)


@pytest.mark.slow
def test_local_ray_listens_on_loopback_only(ray_local):
    ray = ray_local  # conftest: rsearch.ray_session.init_ray(num_cpus=2), a real local Ray

    @ray.remote
    def pid() -> int:
        return os.getpid()

    assert all(ray.get([pid.remote() for _ in range(2)]))  # workers exist, each a gRPC server
    node = ray._private.worker._global_node

    # The dashboard agent comes up after ray.init returns; its metrics export port is the last.
    metrics_port = node.metrics_export_port
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and metrics_port not in {
        p for _, p, _, _ in _ray_listeners()
    }:
        time.sleep(1)
    time.sleep(2)
    listeners = _ray_listeners()
    names = " ".join(name for *_, name in listeners)
    assert all(key in names for key in ("gcs_server", "raylet", "DashboardAgent", "ray::")), (
        _format(listeners)
    )
    exposed = [
        entry
        for entry in listeners
        if not _is_loopback(entry[0])
        and not any(key in entry[3] for key in ALLOWED_BEYOND_LOOPBACK)
    ]
    assert not exposed, (
        f"Ray listens beyond loopback:\n{_format(exposed)}\nall listeners:\n{_format(listeners)}"
    )
    # The node IP every Ray process was given, and what the driver reports.
    assert ray.util.get_node_ip_address() == "127.0.0.1"
    assert [n["NodeManagerAddress"] for n in ray.nodes() if n["Alive"]] == ["127.0.0.1"]
    assert node.gcs_address.startswith("127.0.0.1:")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_if_no_ray_yet(monkeypatch) -> None:
    """init_ray returns at once when this process is connected already (the session's local
    Ray of conftest.ray_local, when an earlier test started it): these tests stop before
    ray.init, so they can pretend it is not."""
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)


@pytest.mark.parametrize("address", [f"127.0.0.1:{_free_port()}", "10.255.255.1:6379"])
def test_unanswered_address_is_a_user_error_within_30_s(address, monkeypatch):
    _as_if_no_ray_yet(monkeypatch)
    start = time.monotonic()
    with pytest.raises(UserError) as err:
        init_ray(address)
    assert time.monotonic() - start < 30
    message = str(err.value)
    assert message.startswith(
        f"--address: no Ray cluster answered at {address} within {GCS_ANSWER_TIMEOUT_S} s;"
    )
    assert "\n" not in message


def test_auto_without_a_cluster_is_a_user_error(monkeypatch):
    _as_if_no_ray_yet(monkeypatch)
    # No cluster to find: neither a recorded one (/tmp/ray/ray_current_cluster) nor a running
    # gcs_server (another test's, on this machine).
    monkeypatch.setattr(
        services, "find_gcs_addresses", functools.lru_cache(lambda: [])
    )  # ray.init clears it
    monkeypatch.setattr(services, "find_bootstrap_address", lambda temp_dir: None)
    with pytest.raises(
        UserError, match=r"^--address: auto: Could not find any running Ray instance"
    ):
        init_ray("auto")


def test_malformed_address_is_a_user_error(monkeypatch):
    _as_if_no_ray_yet(monkeypatch)
    with pytest.raises(UserError, match=r"^--address: expected auto, ray://host:port or host:port"):
        init_ray("no-port-here")
