"""pachctl deploy and port-forward.

Every manifest deploy prints is checked against Kubernetes' own OpenAPI
schemas (kubernetes-validate, strict: unknown fields fail), for both targets
and several flag combinations, and for consistency the schemas cannot see
(selectors, references between objects, the settings pachd reads). The
checked-in manifests/ must match what deploy prints now. port-forward runs a
real (fake) kubectl first on PATH, which records its arguments.
"""

from __future__ import annotations

import base64
import json
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

# The secret values the flag sets use, and the flags that carry them.
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AWS_TOKEN = "FwoGZXIvYXdzEXAMPLETOKEN"
AZURE_KEY = "RVhBTVBMRS1BQ0NPVU5ULUtFWQ=="
SECRETS = {"--secret-access-key": AWS_SECRET, "--session-token": AWS_TOKEN, "--account-key": AZURE_KEY}

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
    "amazon": ("amazon", "--bucket", "my-pachyderm-bucket", "--volume-id", "vol-0123456789abcdef0",
               "--region", "us-west-2"),
    "amazon-keys": ("amazon", "--bucket", "pach.blocks-2", "--volume-id", "aws://us-east-1a/vol-0abcdef12",
                    "--access-key-id", "AKIAEXAMPLE", "--secret-access-key", AWS_SECRET, "--session-token",
                    AWS_TOKEN, "--s3-endpoint", "http://minio.storage:9000", "--namespace", "pach",
                    "--disk-size", "30"),
    "amazon-v1.2": ("amazon", "my-pachyderm-bucket", "AKIAEXAMPLE", AWS_SECRET, "", "us-east-1",
                    "vol-0123456789abcdef0", "10", "--dry-run"),
    "microsoft": ("microsoft", "--container", "pachyderm", "--account-name", "pachstore", "--account-key", AZURE_KEY,
                  "--volume-uri", "https://pachstore.blob.core.windows.net/vhds/etcd.vhd"),
    "microsoft-v1.2": ("microsoft", "pachyderm", "pachstore", AZURE_KEY,
                       "/subscriptions/0000/resourceGroups/pach/providers/Microsoft.Compute/disks/etcd-disk", "20",
                       "-s", "2"),
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


def test_amazon_objects() -> None:
    made = deployed(*FLAG_SETS["amazon-v1.2"])
    volume = by_kind(made, "PersistentVolume")["etcd-volume"]
    assert volume["spec"]["awsElasticBlockStore"] == {"volumeID": "vol-0123456789abcdef0", "fsType": "ext4"}
    assert volume["spec"]["capacity"] == {"storage": "10Gi"}
    assert by_kind(made, "PersistentVolumeClaim")["etcd-storage"]["spec"]["volumeName"] == "etcd-volume"
    secret = by_kind(made, "Secret")["amazon-secret"]
    assert _decoded(secret) == {"id": "AKIAEXAMPLE", "secret": AWS_SECRET}  # no token given: none stored
    env = _pachd_env(made)
    assert (env["STORAGE_BACKEND"], env["S3_BUCKET"], env["AWS_REGION"]) == ("s3", "my-pachyderm-bucket", "us-east-1")
    assert env["AWS_SECRET_ACCESS_KEY"] == {"secretKeyRef": {"name": "amazon-secret", "key": "secret"}}
    assert "AWS_SESSION_TOKEN" not in env
    pods = {name: dep["spec"]["template"]["spec"] for name, dep in by_kind(made, "Deployment").items()}
    assert pods["etcd"]["volumes"][0]["persistentVolumeClaim"] == {"claimName": "etcd-storage"}
    assert pods["pachd"]["volumes"][0]["emptyDir"] == {}


def test_amazon_without_keys_uses_the_pods_role() -> None:
    made = deployed(*FLAG_SETS["amazon"])
    assert by_kind(made, "Secret") == {}
    assert not any(name.startswith("AWS_") and name != "AWS_REGION" for name in _pachd_env(made))


def test_microsoft_objects() -> None:
    made = deployed(*FLAG_SETS["microsoft"])
    disk = by_kind(made, "PersistentVolume")["etcd-volume"]["spec"]["azureDisk"]
    assert disk == {"diskName": "etcd.vhd", "diskURI": "https://pachstore.blob.core.windows.net/vhds/etcd.vhd",
                    "kind": "Shared", "cachingMode": "ReadWrite", "fsType": "ext4"}
    assert _decoded(by_kind(made, "Secret")["microsoft-secret"]) == {"id": "pachstore", "secret": AZURE_KEY}
    env = _pachd_env(made)
    assert (env["STORAGE_BACKEND"], env["AZURE_STORAGE_CONTAINER"]) == ("azure", "pachyderm")
    assert env["AZURE_STORAGE_KEY"] == {"secretKeyRef": {"name": "microsoft-secret", "key": "secret"}}
    managed = by_kind(deployed(*FLAG_SETS["microsoft-v1.2"]), "PersistentVolume")["etcd-volume"]["spec"]
    assert managed["azureDisk"]["kind"] == "Managed" and managed["azureDisk"]["diskName"] == "etcd-disk"
    assert managed["capacity"] == {"storage": "20Gi"}


@pytest.mark.parametrize("flags", FLAG_SETS.values(), ids=FLAG_SETS.keys())
def test_secrets_appear_only_in_the_secret(flags: tuple[str, ...]) -> None:
    """No credential in plain text anywhere in the stream, the header included."""
    text = deploy(*flags).out
    for secret in SECRETS.values():
        assert secret not in text
    for obj in parse(text):
        if obj["kind"] != "Secret":
            assert not any(secret.encode() in json.dumps(obj).encode() for secret in SECRETS.values())


def _decoded(secret: dict[str, Any]) -> dict[str, str]:
    return {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}


@pytest.mark.parametrize("flags", FLAG_SETS.values(), ids=FLAG_SETS.keys())
def test_objects_fit_together(flags: tuple[str, ...]) -> None:
    made = deployed(*flags)
    namespace = next((obj["metadata"]["name"] for obj in made if obj["kind"] == "Namespace"), "default")
    cluster_scoped = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume"}
    secrets = by_kind(made, "Secret")
    for var in by_kind(made, "Deployment")["pachd"]["spec"]["template"]["spec"]["containers"][0]["env"]:
        ref = var.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            assert ref["key"] in secrets[ref["name"]]["data"]
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


def _resolved_env(made: list[dict[str, Any]]) -> dict[str, str]:
    """The container's environment as the kubelet gives it: secretKeyRefs read from the Secrets."""
    secrets = {name: _decoded(obj) for name, obj in by_kind(made, "Secret").items()}
    env = {}
    for name, value in _pachd_env(made).items():
        if isinstance(value, str):
            env[name] = value
        elif "secretKeyRef" in value:
            env[name] = secrets[value["secretKeyRef"]["name"]][value["secretKeyRef"]["key"]]
    return env


def test_pachd_reads_the_cloud_stores_settings_from_the_manifest() -> None:
    amazon = pachd_config.load([], _resolved_env(deployed(*FLAG_SETS["amazon-keys"])))
    assert (amazon.storage, amazon.s3_bucket, amazon.s3_endpoint) == (
        "s3", "pach.blocks-2", "http://minio.storage:9000")
    assert (amazon.s3_access_key, amazon.s3_secret_key, amazon.s3_session_token) == ("AKIAEXAMPLE", AWS_SECRET,
                                                                                     AWS_TOKEN)
    azure = pachd_config.load([], _resolved_env(deployed(*FLAG_SETS["microsoft"])))
    assert (azure.storage, azure.azure_container, azure.azure_account, azure.azure_key) == (
        "azure", "pachyderm", "pachstore", AZURE_KEY)


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
    """The header's command, with the secrets it hides put back."""
    match = re.search(r"^# .*`(pachctl deploy[^`]*)`", text, re.MULTILINE)
    assert match, "the stream's header names the command that made it"
    words = shlex.split(match.group(1))[2:]
    for n, word in enumerate(words[:-1]):
        if word in SECRETS:
            assert words[n + 1] == "<hidden>", "secrets are not shown in the header"
            words[n + 1] = SECRETS[word]
    return words


@pytest.mark.parametrize("flags", FLAG_SETS.values(), ids=FLAG_SETS.keys())
def test_header_names_a_command_that_prints_the_same(flags: tuple[str, ...]) -> None:
    first = deploy(*flags)
    again = deploy(*_header_command(first.out))
    assert again.code == 0 and again.out == first.out
    assert first.out.startswith("# ") and "\n---\n" in first.out


def _makefile_flags(target: str) -> list[str]:
    if target == "local":
        return []
    match = re.search(rf"^{target.upper()}_DEPLOY_FLAGS\s*:?=(.*)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert match
    return shlex.split(match.group(1))


@pytest.mark.parametrize("target", ["local", "google", "amazon", "microsoft"])
def test_checked_in_manifests_are_current(target: str) -> None:
    """manifests/<target>.yaml is `make manifests`' output; run it after changing deploy."""
    flags = _makefile_flags(target)
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
    "amazon-without-volume": ("amazon", "--bucket", "blocks"),
    "amazon-without-bucket": ("amazon", "--volume-id", "vol-0123456789abcdef0"),
    "amazon-bad-bucket": ("amazon", "--bucket", "My_Bucket", "--volume-id", "vol-0123456789abcdef0"),
    "amazon-bad-volume": ("amazon", "--bucket", "blocks", "--volume-id", "pach-disk"),
    "amazon-id-without-secret": ("amazon", "--bucket", "blocks", "--volume-id", "vol-0123456789abcdef0",
                                 "--access-key-id", "AKIAEXAMPLE"),
    "amazon-token-alone": ("amazon", "--bucket", "blocks", "--volume-id", "vol-0123456789abcdef0",
                           "--session-token", "t"),
    "amazon-bad-region": ("amazon", "--bucket", "blocks", "--volume-id", "vol-0123456789abcdef0", "--region", "west"),
    "amazon-bad-endpoint": ("amazon", "--bucket", "blocks", "--volume-id", "vol-0123456789abcdef0",
                            "--s3-endpoint", "minio:9000"),
    "amazon-too-many": ("amazon", "b", "id", "secret", "", "us-east-1", "vol-0123456789abcdef0", "10", "x"),
    "amazon-size-not-number": ("amazon", "blocks", "id", "secret", "", "us-east-1", "vol-0123456789abcdef0", "ten"),
    "disk-name-for-amazon": ("amazon", "--bucket", "blocks", "--volume-id", "vol-0123456789abcdef0",
                             "--disk-name", "d"),
    "region-for-google": ("google", "--bucket", "blocks", "--region", "us-east-1"),
    "microsoft-without-key": ("microsoft", "--container", "blocks", "--account-name", "acct", "--volume-uri", "/d/x"),
    "microsoft-key-not-base64": ("microsoft", "blocks", "acct", "not base64!",
                                 "https://acct.blob.core.windows.net/v/x.vhd", "10"),
    "microsoft-bad-uri": ("microsoft", "blocks", "acct", AZURE_KEY, "etcd.vhd", "10"),
    "microsoft-bad-container": ("microsoft", "C_1", "acct", AZURE_KEY, "/d/x", "10"),
    "microsoft-bad-account": ("microsoft", "blocks", "Acct-1", AZURE_KEY, "/d/x", "10"),
    "container-for-amazon": ("amazon", "--bucket", "blocks", "--volume-id", "vol-0123456789abcdef0",
                             "--container", "blocks"),
    "bucket-for-microsoft": ("microsoft", "blocks", "acct", AZURE_KEY, "/d/x", "--bucket", "b1"),
}


@pytest.mark.parametrize("flags", MISTAKES.values(), ids=MISTAKES.keys())
def test_mistakes_fail_with_one_line(flags: tuple[str, ...]) -> None:
    result = deploy(*flags)
    assert (result.code, result.out) == (1, "")
    assert len(result.err.splitlines()) == 1


@pytest.mark.parametrize("flags", [("azure",), ("--image-pull-policy", "Sometimes"), ("--disk-size", "x"),
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
