"""Starting or joining Ray, the same way for `rsearch train` and `rsearch tune`."""
from __future__ import annotations

import os


def init_ray(address: str | None = None, *, num_cpus: int | None = None) -> None:
    """Join the cluster at `address` ("auto", "ray://...", "host:port"), or start a local Ray
    asked to use 127.0.0.1 as its node address. Measured on Ray 2.60 (issue #10): that does
    not keep its gRPC servers (GCS, raylet, workers, dashboard agent) and the autoscaler
    monitor from listening on every interface, with token authentication on; binding them
    all to loopback is still open."""
    import ray

    if ray.is_initialized():
        return
    # Inside `ray job submit`, RAY_ADDRESS names the cluster the job belongs to.
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=True)
        return
    # address="local": always a fresh local Ray; never silently join a cluster that some
    # earlier `ray start` left recorded in /tmp/ray.
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
             log_to_driver=True, configure_logging=True, logging_level="WARNING")
