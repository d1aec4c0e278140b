"""Starting or joining Ray, the same way for `rsearch train` and `rsearch tune`."""
from __future__ import annotations

import os


def init_ray(address: str | None = None, *, num_cpus: int | None = None) -> None:
    """Join the cluster at `address` ("auto", "ray://...", "host:port"), or start a local Ray
    whose services bind to 127.0.0.1 only (DESIGN.md section 4)."""
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
