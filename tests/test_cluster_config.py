"""cluster/: the launcher YAML against Ray's own schema, the RayJob against rsearch's real CLI."""

from __future__ import annotations

import copy
import json
import shlex
from pathlib import Path

import jsonschema
import pytest
import ray
import ray.autoscaler
import yaml

from rsearch.space import load_space

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "cluster"
LAUNCHERS = sorted(
    p.name for p in CLUSTER.glob("*.yaml") if "provider" in yaml.safe_load(p.read_text())
)
RAY_MINOR = ".".join(ray.__version__.split(".")[:2])  # "2.60"


def _yaml(name: str) -> dict:
    return yaml.safe_load((CLUSTER / name).read_text())


def _ray_schema() -> dict:
    return json.loads((Path(ray.autoscaler.__file__).parent / "ray-schema.json").read_text())


def test_there_is_a_launcher_config():
    assert "aws-gpu.yaml" in LAUNCHERS


@pytest.mark.parametrize("name", LAUNCHERS)
def test_launcher_matches_the_schema_ray_ships(name):
    config = _yaml(name)
    jsonschema.validate(config, _ray_schema())
    # What `ray up` does before it contacts the cloud: merge the provider's defaults, validate.
    from ray.autoscaler._private.util import prepare_config, validate_config

    validate_config(prepare_config(copy.deepcopy(config)))


def test_the_schema_check_catches_a_misspelt_key():
    config = _yaml("aws-gpu.yaml")
    config["available_node_types"]["gpu_worker"]["max_worker"] = 4  # max_workers
    with pytest.raises(jsonschema.ValidationError, match="max_worker"):
        jsonschema.validate(config, _ray_schema())


@pytest.mark.parametrize("name", LAUNCHERS)
def test_launcher_installs_rsearch_on_gpu_nodes_with_this_ray(name):
    config = _yaml(name)
    project = [remote for remote, local in config["file_mounts"].items() if local == "."]
    assert project, "the repository is synced to the nodes"
    setup = " && ".join(config["setup_commands"])
    assert f"pip install -e {project[0]}" in setup
    assert f"=={RAY_MINOR}." in setup  # the Ray the client runs
    assert config["docker"]["image"].startswith(f"rayproject/ray:{RAY_MINOR}.")
    gpu_types = [
        t for t in config["available_node_types"].values() if t["resources"].get("GPU", 0) > 0
    ]
    assert gpu_types and all(t["max_workers"] >= 1 for t in gpu_types)
    assert config["head_node_type"] in config["available_node_types"]
    # Token authentication on every node, with the same token everywhere.
    for commands in ("head_start_ray_commands", "worker_start_ray_commands"):
        assert any("RAY_AUTH_MODE=token ray start" in c for c in config[commands])
    assert "~/.ray/auth_token" in config["file_mounts"]


# --- KubeRay RayJob ------------------------------------------------------------------------


def _containers(rayjob: dict) -> list[dict]:
    spec = rayjob["spec"]["rayClusterSpec"]
    groups = [spec["headGroupSpec"], *spec["workerGroupSpecs"]]
    return [c for g in groups for c in g["template"]["spec"]["containers"]]


def test_rayjob_is_a_gpu_ray_cluster_with_token_auth():
    rayjob = _yaml("rayjob.yaml")
    assert rayjob["apiVersion"] == "ray.io/v1" and rayjob["kind"] == "RayJob"
    cluster = rayjob["spec"]["rayClusterSpec"]
    assert cluster["rayVersion"].startswith(f"{RAY_MINOR}.")
    assert cluster["authOptions"] == {"mode": "token"}
    gpus = [
        int(c["resources"]["limits"].get("nvidia.com/gpu", 0))
        for g in cluster["workerGroupSpecs"]
        for c in g["template"]["spec"]["containers"]
    ]
    assert gpus and min(gpus) >= 1


def test_rayjob_entrypoint_is_a_real_rsearch_tune_on_a_shipped_space():
    pytest.importorskip(
        "rsearch.commands.tune", reason="the `rsearch tune` command is not built yet"
    )
    from rsearch.cli import build_parser

    argv = shlex.split(_yaml("rayjob.yaml")["spec"]["entrypoint"])
    assert argv[0] == "rsearch"
    args = build_parser().parse_args(argv[1:])  # argparse exits on an unknown flag
    assert args.command == "tune" and args.address == "auto"
    space = load_space(ROOT / args.space)  # relative to the job's working dir: the repository
    # Every node mounts the space's data and results storage where the space expects them.
    for container in _containers(_yaml("rayjob.yaml")):
        mounts = [m["mountPath"] for m in container["volumeMounts"]]
        for path in (space.storage.path, space.data["data_dir"]):
            assert any(path == m or path.startswith(m + "/") for m in mounts), (
                container["name"],
                path,
            )


def test_image_is_rays_gpu_image_with_the_project():
    dockerfile = (CLUSTER / "Dockerfile").read_text().splitlines()
    base = next(line.split()[1] for line in dockerfile if line.startswith("FROM "))
    assert base.startswith(f"rayproject/ray:{RAY_MINOR}.") and base.endswith("-gpu")
    copied = {line.split()[-2] for line in dockerfile if line.startswith("COPY ")}
    assert {"rsearch", "search_spaces"} <= copied
    rayjob = _yaml("rayjob.yaml")
    workdir = yaml.safe_load(rayjob["spec"]["runtimeEnvYAML"])["working_dir"]
    assert all(c["workingDir"] == workdir for c in _containers(rayjob))
    assert any(line == f"WORKDIR {workdir}" for line in dockerfile)
