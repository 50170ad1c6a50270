"""pachctl deploy and port-forward.

Every manifest deploy prints is checked against Kubernetes' own OpenAPI
schemas (kubernetes-validate, strict: unknown fields fail), for both targets
and several flag combinations, and for consistency the schemas cannot see
(selectors, references between objects, the settings pachd reads). The
checked-in manifests/ must match what deploy prints now. port-forward runs a
real (fake) kubectl first on PATH, which records its arguments.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from pachctl.deploy import DeployOptions, objects
from pachctl.deploy.render import parse
from pachd import config as pachd_config
from tests.support.cli import Result, pachctl

ROOT = Path(__file__).resolve().parents[2]
NO_PACHD = "127.0.0.1:1"  # deploy and port-forward never talk to pachd

# The Kubernetes versions whose schemas the manifests must satisfy: the newest
# kubernetes-validate ships, and an older one still widely run.
K8S_VERSIONS = sorted({kubernetes_validate.latest_version(), "1.30.0"})

FLAG_SETS: dict[str, tuple[str, ...]] = {
    "no-target": (),
    "local": ("local",),
    "local-custom": ("local", "--namespace", "pach", "--replicas", "3", "-p", "/mnt/pachyderm/",
                     "--image-pull-policy", "Always", "--pachd-image", "registry.example.com/pachd:dev",
                     "--job-shim-image", "registry.example.com/job-shim:dev", "--node-port", "31650"),
    "google": ("google", "--bucket", "my-pachyderm-bucket"),
    "google-custom": ("google", "--bucket", "pach.blocks_2", "--disk-name", "etcd-disk", "--disk-size", "50",
                      "--namespace", "pachyderm", "-s", "2", "--node-port", "0", "--image-pull-policy", "Never",
                      "--etcd-image", "quay.io/coreos/etcd:v3.6.0"),
    "google-v1.2": ("google", "my-pachyderm-bucket", "pach-disk", "10", "--dry-run"),
    "no-registry": ("local", "--registry=false"),
    "registry-custom": ("local", "-r", "--registry-image", "registry.example.com/registry:2.8",
                        "--registry-node-port", "31500", "--node-port", "0"),
}


def deploy(*args: str) -> Result:
    return pachctl(NO_PACHD, "deploy", *args)


def deployed(*args: str) -> list[dict[str, Any]]:
    result = deploy(*args)
    assert result.code == 0, result.err
    return parse(result.out)


def by_kind(made: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {obj["metadata"]["name"]: obj for obj in made if obj["kind"] == kind}


# --- validity against the Kubernetes schemas --------------------------------------------------


@pytest.mark.parametrize("flags", FLAG_SETS.values(), ids=FLAG_SETS.keys())
@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_object_validates_strictly(flags: tuple[str, ...], version: str) -> None:
    made = deployed(*flags)
    assert made
    for obj in made:
        kubernetes_validate.validate(obj, version, strict=True)


def test_strict_validation_rejects_what_kubernetes_would() -> None:
    """The check above has teeth: an unknown field or a wrong type fails it."""
    pachd = by_kind(deployed(), "Deployment")["pachd"]
    pachd["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(pachd, kubernetes_validate.latest_version(), strict=True)
    service = by_kind(deployed(), "Service")["pachd"]
    service["spec"]["ports"][0]["port"] = "650"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(service, kubernetes_validate.latest_version(), strict=True)


# --- what the objects are, and that they fit together -----------------------------------------


def test_local_objects() -> None:
    made = deployed("local")
    assert [(obj["kind"], obj["metadata"]["name"]) for obj in made] == [
        ("ServiceAccount", "pachyderm"), ("Role", "pachyderm"), ("RoleBinding", "pachyderm"),
        ("ClusterRole", "pachyderm-default"), ("ClusterRoleBinding", "pachyderm-default"),
        ("Service", "etcd"), ("Deployment", "etcd"), ("Service", "pachd"), ("Deployment", "pachd"),
        ("Service", "registry"), ("Deployment", "registry"),
    ]
    pods = {name: dep["spec"]["template"]["spec"] for name, dep in by_kind(made, "Deployment").items()}
    assert pods["pachd"]["volumes"][0]["hostPath"]["path"] == "/var/pachyderm/pachd"
    assert pods["etcd"]["volumes"][0]["hostPath"]["path"] == "/var/pachyderm/etcd"
    pachd_port = by_kind(made, "Service")["pachd"]["spec"]
    assert pachd_port["type"] == "NodePort"
    assert pachd_port["ports"][0] == {"name": "grpc", "port": 650, "targetPort": 650, "protocol": "TCP",
                                       "nodePort": 30650}
    assert by_kind(made, "Service")["etcd"]["spec"]["ports"][0]["port"] == 2379
    for obj in made:
        assert obj["metadata"]["labels"]["suite"] == "pachyderm"


def test_the_registry() -> None:
    """v1.2's in-cluster registry, where --push-images pushes (localhost:30500 on a node)."""
    made = deployed("local")
    service = by_kind(made, "Service")["registry"]["spec"]
    assert service["type"] == "NodePort" and service["selector"] == {"app": "registry", "suite": "pachyderm"}
    assert service["ports"] == [{"name": "registry", "port": 5000, "targetPort": 5000, "protocol": "TCP",
                                 "nodePort": 30500}]
    pod = by_kind(made, "Deployment")["registry"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "registry:2" and container["ports"][0]["containerPort"] == 5000
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env == {"REGISTRY_HTTP_ADDR": ":5000", "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY": "/var/lib/registry"}
    assert pod["volumes"] == [{"name": "image-storage", "emptyDir": {}}]
    assert not by_kind(deployed("local", "--registry=false"), "Service").get("registry")
    custom = deployed(*FLAG_SETS["registry-custom"])
    assert by_kind(custom, "Service")["registry"]["spec"]["ports"][0]["nodePort"] == 31500
    assert by_kind(custom, "Deployment")["registry"]["spec"]["template"]["spec"]["containers"][0]["image"] == \
        "registry.example.com/registry:2.8"


def test_google_objects() -> None:
    made = deployed("google", "--bucket", "blocks", "--disk-name", "etcd-disk", "--disk-size", "25")
    volume = by_kind(made, "PersistentVolume")["etcd-disk"]
    claim = by_kind(made, "PersistentVolumeClaim")["etcd-storage"]
    assert volume["spec"]["gcePersistentDisk"] == {"pdName": "etcd-disk", "fsType": "ext4"}
    assert volume["spec"]["capacity"] == claim["spec"]["resources"]["requests"] == {"storage": "25Gi"}
    assert volume["spec"]["claimRef"] == {"namespace": "default", "name": "etcd-storage"}
    assert claim["spec"]["volumeName"] == "etcd-disk"
    assert volume["spec"]["storageClassName"] == claim["spec"]["storageClassName"] == ""
    pods = {name: dep["spec"]["template"]["spec"] for name, dep in by_kind(made, "Deployment").items()}
    assert pods["etcd"]["volumes"][0]["persistentVolumeClaim"] == {"claimName": "etcd-storage"}
    assert pods["pachd"]["volumes"][0]["emptyDir"] == {}
    assert by_kind(made, "Deployment")["etcd"]["spec"]["strategy"] == {"type": "Recreate"}


@pytest.mark.parametrize("flags", FLAG_SETS.values(), ids=FLAG_SETS.keys())
def test_objects_fit_together(flags: tuple[str, ...]) -> None:
    made = deployed(*flags)
    namespace = next((obj["metadata"]["name"] for obj in made if obj["kind"] == "Namespace"), "default")
    cluster_scoped = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume"}
    for obj in made:
        assert obj["metadata"].get("namespace") == (None if obj["kind"] in cluster_scoped else namespace)
    _check_deployments(made)
    _check_services(made)
    _check_permissions(made, namespace)


def _check_deployments(made: list[dict[str, Any]]) -> None:
    accounts = by_kind(made, "ServiceAccount")
    claims = by_kind(made, "PersistentVolumeClaim")
    for deployment in by_kind(made, "Deployment").values():
        template = deployment["spec"]["template"]
        assert deployment["spec"]["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
        pod = template["spec"]
        volumes = {volume["name"]: volume for volume in pod["volumes"]}
        for container in pod["containers"]:
            assert {mount["name"] for mount in container["volumeMounts"]} <= volumes.keys()
            assert all(len(port["name"]) <= 15 for port in container["ports"])
        for volume in volumes.values():
            if "persistentVolumeClaim" in volume:
                assert volume["persistentVolumeClaim"]["claimName"] in claims
        assert pod.get("serviceAccountName", "pachyderm") in accounts


def _check_services(made: list[dict[str, Any]]) -> None:
    pod_labels = [dep["spec"]["template"]["metadata"]["labels"] for dep in by_kind(made, "Deployment").values()]
    for service in by_kind(made, "Service").values():
        selector = service["spec"]["selector"].items()
        assert sum(selector <= labels.items() for labels in pod_labels) == 1
    deployments = by_kind(made, "Deployment")
    served = {
        port["containerPort"] for container in deployments["pachd"]["spec"]["template"]["spec"]["containers"]
        for port in container["ports"]
    }
    assert {port["targetPort"] for port in by_kind(made, "Service")["pachd"]["spec"]["ports"]} <= served


def _check_permissions(made: list[dict[str, Any]], namespace: str) -> None:
    for kind, role_kind in (("RoleBinding", "Role"), ("ClusterRoleBinding", "ClusterRole")):
        for binding in by_kind(made, kind).values():
            assert binding["roleRef"]["name"] in by_kind(made, role_kind)
            assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "pachyderm", "namespace": namespace}]
    role = next(iter(by_kind(made, "Role").values()))
    allowed = {(resource, verb) for rule in role["rules"] for resource in rule["resources"] for verb in rule["verbs"]}
    needed = {("jobs", "create"), ("jobs", "delete"), ("jobs", "watch"), ("pods", "list"), ("pods", "watch"),
              ("pods", "delete"), ("pods/log", "get")}
    assert needed <= allowed
    node_rules = next(iter(by_kind(made, "ClusterRole").values()))["rules"]
    assert any("nodes" in rule["resources"] and "list" in rule["verbs"] for rule in node_rules)


def _pachd_env(made: list[dict[str, Any]]) -> dict[str, Any]:
    container = by_kind(made, "Deployment")["pachd"]["spec"]["template"]["spec"]["containers"][0]
    return {var["name"]: var.get("value", var.get("valueFrom")) for var in container["env"]}


def test_pachd_reads_its_settings_from_the_manifest() -> None:
    """pachd's own config loader, given the container's environment, gets the cluster settings."""
    made = deployed("google", "--bucket", "blocks", "--job-shim-image", "me/shim:1", "--image-pull-policy", "Always")
    env = _pachd_env(made)
    assert env["NAMESPACE"] == {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}
    assert env["JOB_IMAGE_PULL_POLICY"] == "Always"
    loaded = pachd_config.load([], {name: value for name, value in env.items() if isinstance(value, str)})
    assert (loaded.port, str(loaded.data_dir), loaded.etcd_address) == (650, "/pach", "etcd:2379")
    assert (loaded.storage, loaded.gcs_bucket, loaded.executor) == ("gcs", "blocks", "kubernetes")
    assert loaded.job_shim_image == "me/shim:1"
    local = pachd_config.load([], {k: v for k, v in _pachd_env(deployed()).items() if isinstance(v, str)})
    assert (local.storage, local.gcs_bucket) == ("local", "")
    mount = by_kind(made, "Deployment")["pachd"]["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0]
    assert mount["mountPath"] == env["PACH_ROOT"]


def test_flags_reach_the_objects() -> None:
    made = deployed(*FLAG_SETS["google-custom"])
    deployments = by_kind(made, "Deployment")
    assert deployments["pachd"]["spec"]["replicas"] == 2 and deployments["etcd"]["spec"]["replicas"] == 1
    containers = {name: dep["spec"]["template"]["spec"]["containers"][0] for name, dep in deployments.items()}
    assert containers["etcd"]["image"] == "quay.io/coreos/etcd:v3.6.0"
    assert {container["imagePullPolicy"] for container in containers.values()} == {"Never"}
    assert "nodePort" not in by_kind(made, "Service")["pachd"]["spec"]["ports"][0]
    assert [obj["metadata"]["name"] for obj in made if obj["kind"] == "Namespace"] == ["pachyderm"]
    assert _pachd_env(made)["GCS_BUCKET"] == "pach.blocks_2"


def test_library_and_command_agree() -> None:
    options = DeployOptions(target="google", bucket="my-pachyderm-bucket", namespace="pach")
    assert objects(options) == deployed("google", "--bucket", "my-pachyderm-bucket", "--namespace", "pach")


# --- the stream itself -------------------------------------------------------------------------


def _header_command(text: str) -> list[str]:
    match = re.search(r"^# .*`(pachctl deploy[^`]*)`", text, re.MULTILINE)
    assert match, "the stream's header names the command that made it"
    return shlex.split(match.group(1))[2:]


@pytest.mark.parametrize("flags", FLAG_SETS.values(), ids=FLAG_SETS.keys())
def test_header_names_a_command_that_prints_the_same(flags: tuple[str, ...]) -> None:
    first = deploy(*flags)
    again = deploy(*_header_command(first.out))
    assert again.code == 0 and again.out == first.out
    assert first.out.startswith("# ") and "\n---\n" in first.out


def _makefile_google_flags() -> list[str]:
    match = re.search(r"^GOOGLE_DEPLOY_FLAGS\s*:?=(.*)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert match
    return shlex.split(match.group(1))


@pytest.mark.parametrize("target", ["local", "google"])
def test_checked_in_manifests_are_current(target: str) -> None:
    """manifests/<target>.yaml is `make manifests`' output; run it after changing deploy."""
    flags = _makefile_google_flags() if target == "google" else []
    printed = deploy(target, *flags)
    assert printed.code == 0
    assert (ROOT / "manifests" / f"{target}.yaml").read_bytes() == printed.out.encode()
    assert _header_command(printed.out) == [target, *flags]


# --- mistakes -----------------------------------------------------------------------------------

MISTAKES: dict[str, tuple[str, ...]] = {
    "google-without-bucket": ("google",),
    "bucket-for-local": ("local", "--bucket", "blocks"),
    "host-path-for-google": ("google", "--bucket", "blocks", "--host-path", "/data"),
    "bad-namespace": ("--namespace", "Not_A_Label"),
    "no-replicas": ("--replicas", "0"),
    "relative-host-path": ("--host-path", "data"),
    "bad-bucket": ("google", "--bucket", "B"),
    "bad-disk-name": ("google", "--bucket", "blocks", "--disk-name", "Disk"),
    "node-port-out-of-range": ("--node-port", "650"),
    "registry-node-port-out-of-range": ("--registry-node-port", "5000"),
    "node-ports-collide": ("--node-port", "30500"),
    "bucket-twice": ("google", "blocks", "--bucket", "blocks"),
    "positional-size-not-number": ("google", "blocks", "disk", "ten"),
    "positionals-for-local": ("local", "blocks"),
    "too-many-positionals": ("google", "blocks", "disk", "10", "extra"),
}


@pytest.mark.parametrize("flags", MISTAKES.values(), ids=MISTAKES.keys())
def test_mistakes_fail_with_one_line(flags: tuple[str, ...]) -> None:
    result = deploy(*flags)
    assert (result.code, result.out) == (1, "")
    assert len(result.err.splitlines()) == 1


@pytest.mark.parametrize("flags", [("amazon",), ("--image-pull-policy", "Sometimes"), ("--disk-size", "x"),
                                   ("--registry=maybe",)])
def test_unparseable_flags_are_usage_errors(flags: tuple[str, ...]) -> None:
    result = deploy(*flags)
    assert (result.code, result.out) == (2, "")


# --- port-forward -------------------------------------------------------------------------------


def _fake_kubectl(directory: Path, exit_code: int = 0) -> Path:
    """A kubectl that writes its arguments, one a line, to `args` beside itself."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "kubectl"
    script.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > "$(dirname "$0")/args"\nexit {exit_code}\n')
    script.chmod(0o755)
    return directory / "args"


@pytest.fixture
def fake_kubectl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    args = _fake_kubectl(tmp_path / "bin")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    return args


def test_port_forward_runs_kubectl(fake_kubectl: Path) -> None:
    result = pachctl(NO_PACHD, "port-forward")
    assert result.code == 0, result.err
    assert fake_kubectl.read_text().splitlines() == ["port-forward", "--namespace", "default", "svc/pachd",
                                                     "30650:650"]


def test_port_forward_flags(fake_kubectl: Path) -> None:
    result = pachctl(NO_PACHD, "port-forward", "-p", "31000", "--namespace", "pach")
    assert result.code == 0, result.err
    assert fake_kubectl.read_text().splitlines() == ["port-forward", "--namespace", "pach", "svc/pachd",
                                                     "31000:650"]


def test_port_forward_without_kubectl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    result = pachctl(NO_PACHD, "port-forward")
    assert result.code == 1 and len(result.err.splitlines()) == 1


def test_port_forward_reports_kubectl_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    args = _fake_kubectl(tmp_path / "bin", exit_code=3)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:/usr/bin:/bin")
    result = pachctl(NO_PACHD, "port-forward")
    assert result.code == 1 and len(result.err.splitlines()) == 1
    assert args.exists()


@pytest.mark.parametrize("flags", [("-p", "0"), ("-p", "70000"), ("--namespace", "Bad")])
def test_port_forward_checks_before_running(fake_kubectl: Path, flags: tuple[str, ...]) -> None:
    result = pachctl(NO_PACHD, "port-forward", *flags)
    assert result.code == 1 and len(result.err.splitlines()) == 1
    assert not fake_kubectl.exists()
