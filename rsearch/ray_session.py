"""Starting or joining Ray, the same way for `rsearch train` and `rsearch tune`.

Ray is imported at the top: its callers import this module only where Ray is about to start.
"""

from __future__ import annotations

import contextlib
import os

import grpc
import ray
from ray._common.network_utils import is_localhost, parse_address
from ray._private import ray_constants, services
from ray._private.authentication.authentication_token_setup import (
    maybe_enable_token_auth_if_token_available,
)
from ray._private.grpc_utils import init_grpc_channel  # Ray's TLS and token-auth settings

from rsearch.errors import UserError

# Ray 2.60 turns a node IP of 127.0.0.1 / localhost into the machine's external address
# (services.resolve_ip_for_localhost -> get_node_ip_address) unless this switch, meant for
# macOS/Windows, says "single-node only" (ray_constants.ENABLE_RAY_CLUSTER false): then the node IP
# stays 127.0.0.1, and every Ray server keys its bind address off "is the node IP localhost": GCS,
# raylet and core-worker gRPC servers (then on ::ffff:127.0.0.1, not ::), the dashboard agent (gRPC,
# HTTP, metrics export), the runtime-env agent, the dashboard head's and the autoscaler monitor's
# Prometheus ports (dashboard/head.py, autoscaler/_private/monitor.py). Measured by
# tests/test_ray_listeners.py.
_SINGLE_NODE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
# How long a "host:port" address gets to answer as a Ray GCS. One gRPC round trip; a live GCS
# answers in milliseconds, so this only bounds the wait for an address nobody answers at
# (Ray itself retries for minutes: 20 tries of a 5 s connect plus a 30 s cluster-ID wait).
GCS_ANSWER_TIMEOUT_S = 20


def init_ray(address: str | None = None, *, num_cpus: int | None = None) -> None:
    """Join the cluster at `address` ("auto", "ray://...", "host:port"), or start a local Ray
    whose every listening socket is on loopback (issue #10)."""
    if ray.is_initialized():
        return
    # Inside `ray job submit`, RAY_ADDRESS names the cluster the job belongs to.
    source = "--address" if address else "RAY_ADDRESS"
    address = address or os.environ.get("RAY_ADDRESS")
    if address and address != "local":
        _join(address, source)
        return
    # address="local": always a fresh local Ray; never silently join a cluster that some
    # earlier `ray start` left recorded in /tmp/ray.
    with _loopback_node_ip():
        ray.init(
            address="local",
            num_cpus=num_cpus,
            include_dashboard=False,
            dashboard_host="127.0.0.1",
            _node_ip_address="127.0.0.1",
            log_to_driver=True,
            configure_logging=True,
            logging_level="WARNING",
        )


def _join(address: str, source: str) -> None:
    if "://" in address:  # ray://host:port, Ray Client: left to Ray
        ray.init(address=address, log_to_driver=True)
        return
    if address == "auto":
        address = _find_local_cluster(source)
    parsed = parse_address(address)
    if parsed is None or not parsed[1].isdigit():
        raise UserError(
            f"{source}: expected auto, ray://host:port or host:port (the head's GCS port), "
            f"got {address!r}"
        )
    _check_gcs_answers(address, source)
    # 127.0.0.1:port means this machine's loopback: without this Ray would dial the external
    # address instead, where a head bound to loopback does not listen.
    with _loopback_node_ip() if is_localhost(parsed[0]) else contextlib.nullcontext():
        ray.init(address=address, log_to_driver=True)


def _find_local_cluster(source: str) -> str:
    """What ray.init(address="auto") would join (RAY_ADDRESS, the cluster recorded by the last
    `ray start`, else a running gcs_server), so that it gets the same bounded check. Without
    a cluster Ray raises ConnectionError at once ("Could not find any running Ray instance")."""
    with _loopback_node_ip():  # a head bound to loopback is found as 127.0.0.1:port: keep it
        services.find_gcs_addresses.cache_clear()  # cached per process; ray.init clears it too
        try:
            found = services.canonicalize_bootstrap_address("auto")
        except ConnectionError as e:
            raise UserError(f"{source}: auto: {e}") from e
    if not found:  # RAY_ADDRESS=local
        raise UserError(f"{source}: auto: no running Ray cluster found")
    # As ray.init does for "auto" (not for an explicit address): send the token if one exists.
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)
    return found


def _check_gcs_answers(address: str, source: str) -> None:
    """Ask the GCS at `address` for its cluster ID, with a deadline: ray.init would retry for
    minutes. A TCP connect is not enough: a firewall or transparent proxy may accept any
    connection (the sandbox this was written in answers 10.255.255.1:6379 that way)."""
    channel = init_grpc_channel(address)
    # NodeInfoGcsService.GetClusterId takes an empty request: b"" needs no generated protos.
    call = channel.unary_unary(
        "/ray.rpc.NodeInfoGcsService/GetClusterId",
        request_serializer=lambda _: b"",
        response_deserializer=lambda b: b,
    )
    try:
        call(None, timeout=GCS_ANSWER_TIMEOUT_S)
    except grpc.RpcError as e:
        if e.code() == grpc.StatusCode.UNAUTHENTICATED:
            # A Ray GCS with token authentication, and no (or another) token sent: ray.init
            # would retry that for minutes too.
            raise UserError(
                f"{source}: the Ray cluster at {address} rejected this process's authentication "
                f"token ({e.details()}); set RAY_AUTH_MODE=token and the cluster's token in "
                f"RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or ~/.ray/auth_token"
            ) from None
        raise UserError(
            f"{source}: no Ray cluster answered at {address} within {GCS_ANSWER_TIMEOUT_S} s; "
            f"expected the head's GCS address (host:port of `ray start --head --port`), "
            f"or auto / ray://host:port (gRPC said: {e.code().name}: {e.details()})"
        ) from None
    finally:
        channel.close()


@contextlib.contextmanager
def _loopback_node_ip():
    """Ray's "single node" switch for the time of ray.init: the env var for the processes
    it starts (raylet, agents, workers inherit it), the constant for this one (Ray read the
    env var when it was imported). Restored afterwards so nothing started later by this
    process (another ray.init joining a cluster, a `ray job` subprocess) inherits it."""
    saved_env, saved_flag = os.environ.get(_SINGLE_NODE_ENV), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[_SINGLE_NODE_ENV] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    try:
        yield
    finally:
        ray_constants.ENABLE_RAY_CLUSTER = saved_flag
        if saved_env is None:
            os.environ.pop(_SINGLE_NODE_ENV, None)
        else:
            os.environ[_SINGLE_NODE_ENV] = saved_env
