"""The Kubernetes objects of a Pachyderm cluster, as plain dicts.

`objects(options)` returns them in the order `kubectl create` should make
them: the namespace (unless it is "default"), pachd's service account and its
permissions, etcd's disk (google), then each Service before the Deployment
behind it, so pachd's pods find the etcd Service, and job pods the pachd
Service, when they start.

The objects:
- ServiceAccount `pachyderm`, which pachd runs as; Role + RoleBinding
  `pachyderm` to run job pods (batch Jobs; read, watch and delete their pods
  and read their logs and events); ClusterRole + ClusterRoleBinding
  `pachyderm-<namespace>` to list nodes (COEFFICIENT parallelism).
- Deployment + Service `etcd` (port 2379): the metadata store, one pod, its
  data in a hostPath (local) or on a GCE persistent disk through a
  PersistentVolume and its claim `etcd-storage` (google).
- Deployment `pachd` (`--replicas` pods, gRPC on port 650, the Kubernetes
  executor) and Service `pachd`: port 650, NodePort 30650 on every node. Job
  pods reach pachd through its service variables (PACHD_PORT_650_TCP_ADDR).
"""

from __future__ import annotations

from typing import Any

from pachctl.deploy.options import ETCD_PORT, PACHD_PORT, DeployOptions, check

Object = dict[str, Any]

SUITE = "pachyderm"
SERVICE_ACCOUNT = "pachyderm"
ETCD_CLAIM = "etcd-storage"
PACH_ROOT = "/pach"
ETCD_MOUNT = "/var/lib/etcd"


def objects(options: DeployOptions) -> list[Object]:
    """Every object of the deployment `options` describes (checked first)."""
    check(options)
    made: list[Object] = []
    if options.namespace != "default":
        made.append({"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(options.namespace)})
    made += permissions(options)
    if options.target == "google":
        made += [etcd_volume(options), etcd_claim(options)]
    made += [etcd_service(options), etcd_deployment(options), pachd_service(options), pachd_deployment(options)]
    return made


def labels(app: str | None = None) -> dict[str, str]:
    return ({"app": app} if app else {}) | {"suite": SUITE}


def _meta(name: str, app: str | None = None, namespace: str | None = None) -> Object:
    meta: Object = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    meta["labels"] = labels(app)
    return meta


def _rule(group: str, resources: list[str], verbs: list[str]) -> Object:
    return {"apiGroups": [group], "resources": resources, "verbs": verbs}


def permissions(options: DeployOptions) -> list[Object]:
    """pachd's service account, what it may do in its namespace, and reading nodes."""
    ns = options.namespace
    rbac = "rbac.authorization.k8s.io/v1"
    cluster_name = f"{SUITE}-{ns}"
    subjects = [{"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": ns}]
    read = ["get", "list", "watch"]
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(SERVICE_ACCOUNT, "pachd", ns)},
        {"apiVersion": rbac, "kind": "Role", "metadata": _meta(SERVICE_ACCOUNT, "pachd", ns), "rules": [
            _rule("batch", ["jobs"], ["create", *read, "update", "patch", "delete"]),
            _rule("", ["pods"], [*read, "delete"]),
            _rule("", ["pods/log"], ["get"]),
            _rule("", ["events"], read),
        ]},
        {"apiVersion": rbac, "kind": "RoleBinding", "metadata": _meta(SERVICE_ACCOUNT, "pachd", ns),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": SERVICE_ACCOUNT},
         "subjects": subjects},
        {"apiVersion": rbac, "kind": "ClusterRole", "metadata": _meta(cluster_name, "pachd"),
         "rules": [_rule("", ["nodes"], read)]},
        {"apiVersion": rbac, "kind": "ClusterRoleBinding", "metadata": _meta(cluster_name, "pachd"),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": cluster_name},
         "subjects": subjects},
    ]


def etcd_volume(options: DeployOptions) -> Object:
    """google: the existing GCE disk `--disk-name`, reserved for etcd's claim."""
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": _meta(options.disk_name, "etcd"), "spec": {
        "capacity": {"storage": f"{options.disk_size}Gi"},
        "accessModes": ["ReadWriteOnce"],
        "persistentVolumeReclaimPolicy": "Retain",
        "storageClassName": "",
        "claimRef": {"namespace": options.namespace, "name": ETCD_CLAIM},
        "gcePersistentDisk": {"pdName": options.disk_name, "fsType": "ext4"},
    }}


def etcd_claim(options: DeployOptions) -> Object:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": _meta(ETCD_CLAIM, "etcd", options.namespace), "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": "",
                "volumeName": options.disk_name,
                "resources": {"requests": {"storage": f"{options.disk_size}Gi"}},
            }}


def _service(name: str, port_name: str, port: int, options: DeployOptions, node_port: int | None = None) -> Object:
    service_port: Object = {"name": port_name, "port": port, "targetPort": port, "protocol": "TCP"}
    spec: Object = {"selector": labels(name), "ports": [service_port]}
    if node_port is not None:
        spec = {"type": "NodePort"} | spec
        if node_port:
            service_port["nodePort"] = node_port
    return {"apiVersion": "v1", "kind": "Service", "metadata": _meta(name, name, options.namespace), "spec": spec}


def etcd_service(options: DeployOptions) -> Object:
    return _service("etcd", "client", ETCD_PORT, options)


def pachd_service(options: DeployOptions) -> Object:
    return _service("pachd", "grpc", PACHD_PORT, options, node_port=options.node_port)


def _deployment(name: str, options: DeployOptions, *, replicas: int, pod: Object,
                strategy: str = "RollingUpdate") -> Object:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(name, name, options.namespace),
            "spec": {
                "replicas": replicas,
                "strategy": {"type": strategy},
                "selector": {"matchLabels": labels(name)},
                "template": {"metadata": {"labels": labels(name)}, "spec": pod},
            }}


def _host_path(options: DeployOptions, directory: str) -> Object:
    return {"path": f"{options.host_path.rstrip('/')}/{directory}", "type": "DirectoryOrCreate"}


def etcd_deployment(options: DeployOptions) -> Object:
    """One etcd member; Recreate, so the old pod lets go of the data before the new one starts."""
    client_url = f"http://0.0.0.0:{ETCD_PORT}"
    container: Object = {
        "name": "etcd",
        "image": options.etcd_image,
        "imagePullPolicy": options.image_pull_policy,
        "command": ["/usr/local/bin/etcd"],
        "args": [
            f"--data-dir={ETCD_MOUNT}/data",
            f"--listen-client-urls={client_url}",
            f"--advertise-client-urls=http://etcd:{ETCD_PORT}",
            "--auto-compaction-retention=1",
        ],
        "ports": [{"name": "client", "containerPort": ETCD_PORT, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/health", "port": ETCD_PORT}, "periodSeconds": 5},
        "volumeMounts": [{"name": "etcd-data", "mountPath": ETCD_MOUNT}],
    }
    volume: Object = {"name": "etcd-data"}
    if options.target == "google":
        volume["persistentVolumeClaim"] = {"claimName": ETCD_CLAIM}
    else:
        volume["hostPath"] = _host_path(options, "etcd")
    pod = {"containers": [container], "volumes": [volume]}
    return _deployment("etcd", options, replicas=1, pod=pod, strategy="Recreate")


def pachd_env(options: DeployOptions) -> list[Object]:
    """pachd's settings (see pachd/config.py): etcd, block storage, the Kubernetes executor."""
    values = [
        ("PORT", str(PACHD_PORT)),
        ("PACHD_HOST", "0.0.0.0"),  # pachd's own default is loopback only; the Service must reach it
        ("PACH_ROOT", PACH_ROOT),
        ("ETCD_ADDRESS", f"etcd:{ETCD_PORT}"),
        ("STORAGE_BACKEND", "gcs" if options.target == "google" else "local"),
        ("GCS_BUCKET", options.bucket),
        ("PACHD_EXECUTOR", "kubernetes"),
        ("JOB_SHIM_IMAGE", options.job_shim_image),
        ("JOB_IMAGE_PULL_POLICY", options.image_pull_policy),
    ]
    env: list[Object] = [{"name": name, "value": value} for name, value in values if value]
    namespace = {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"}}
    env.append({"name": "NAMESPACE", "valueFrom": namespace})
    return env


def pachd_deployment(options: DeployOptions) -> Object:
    container: Object = {
        "name": "pachd",
        "image": options.pachd_image,
        "imagePullPolicy": options.image_pull_policy,
        "env": pachd_env(options),
        "ports": [{"name": "grpc", "containerPort": PACHD_PORT, "protocol": "TCP"}],
        "readinessProbe": {"tcpSocket": {"port": PACHD_PORT}, "initialDelaySeconds": 2, "periodSeconds": 5},
        "volumeMounts": [{"name": "pach-data", "mountPath": PACH_ROOT}],
    }
    # local: blocks live in the data dir, so it must outlive the pod. google:
    # blocks are in the bucket and metadata in etcd; the data dir is scratch.
    volume: Object = {"name": "pach-data"}
    if options.target == "google":
        volume["emptyDir"] = {}
    else:
        volume["hostPath"] = _host_path(options, "pachd")
    pod = {"serviceAccountName": SERVICE_ACCOUNT, "containers": [container], "volumes": [volume]}
    return _deployment("pachd", options, replicas=options.replicas, pod=pod)
