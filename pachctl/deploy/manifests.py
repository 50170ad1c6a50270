"""The Kubernetes objects of a Pachyderm cluster, as plain dicts.

`objects(options)` returns them in the order `kubectl create` should make
them: the namespace (unless it is "default"), pachd's service account and its
permissions, the block store's credentials (amazon, microsoft), etcd's disk
(google, amazon, microsoft), then each Service before the Deployment behind
it, so pachd's pods find the etcd Service, and job pods the pachd Service,
when they start.

The objects:
- ServiceAccount `pachyderm`, which pachd runs as; Role + RoleBinding
  `pachyderm` to run job pods (batch Jobs; read, watch and delete their pods
  and read their logs and events); ClusterRole + ClusterRoleBinding
  `pachyderm-<namespace>` to list nodes (COEFFICIENT parallelism).
- Secret `amazon-secret` (the AWS access key, when one is given: id, secret,
  token) or `microsoft-secret` (the storage account: id, secret), v1.2's names;
  pachd's container reads them as the standard AWS_* / AZURE_STORAGE_*
  variables through secretKeyRef, so no credential is written into the pod spec.
- Deployment + Service `etcd` (port 2379): the metadata store, one pod, its
  data in a hostPath (local) or on the cloud's disk through a PersistentVolume
  and its claim `etcd-storage`: a GCE persistent disk (google), an EBS volume
  (amazon), an Azure disk (microsoft).
- Deployment `pachd` (`--replicas` pods, gRPC on port 650, the Kubernetes
  executor) and Service `pachd`: port 650, NodePort 30650 on every node. Job
  pods reach pachd through its service variables (PACHD_PORT_650_TCP_ADDR).
- Deployment + Service `registry` (unless `--registry=false`): a Docker
  registry (port 5000, NodePort 30500), as in v1.2, which `pachctl
  create-pipeline --push-images` pushes to (localhost:30500 on a node) and
  job pods pull from. Its images are kept in an emptyDir: a new registry pod
  starts empty, and pipelines are pushed again.
"""

from __future__ import annotations

from typing import Any

import base64

from pachctl.deploy.options import CLOUD_TARGETS, ETCD_PORT, PACHD_PORT, REGISTRY_PORT, DeployOptions, check

Object = dict[str, Any]

SUITE = "pachyderm"
SERVICE_ACCOUNT = "pachyderm"
ETCD_CLAIM = "etcd-storage"
PACH_ROOT = "/pach"
ETCD_MOUNT = "/var/lib/etcd"
ETCD_VOLUME = "etcd-volume"  # amazon, microsoft (google's is named after its disk)
AMAZON_SECRET = "amazon-secret"
MICROSOFT_SECRET = "microsoft-secret"


def objects(options: DeployOptions) -> list[Object]:
    """Every object of the deployment `options` describes (checked first)."""
    check(options)
    made: list[Object] = []
    if options.namespace != "default":
        made.append({"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(options.namespace)})
    made += permissions(options)
    made += credentials(options)
    if options.target in CLOUD_TARGETS:
        made += [etcd_volume(options), etcd_claim(options)]
    made += [etcd_service(options), etcd_deployment(options), pachd_service(options), pachd_deployment(options)]
    if options.registry:
        made += [registry_service(options), registry_deployment(options)]
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


def credentials(options: DeployOptions) -> list[Object]:
    """The block store's credentials as a Secret (amazon with an access key, microsoft)."""
    data: dict[str, str] = {}
    if options.target == "amazon" and options.access_key_id:
        name = AMAZON_SECRET
        data = {"id": options.access_key_id, "secret": options.secret_access_key}
        if options.session_token:
            data["token"] = options.session_token
    elif options.target == "microsoft":
        name = MICROSOFT_SECRET
        data = {"id": options.account_name, "secret": options.account_key}
    if not data:
        return []
    return [{"apiVersion": "v1", "kind": "Secret", "metadata": _meta(name, "pachd", options.namespace),
             "type": "Opaque",
             "data": {key: base64.b64encode(value.encode()).decode() for key, value in data.items()}}]


def _disk(options: DeployOptions) -> Object:
    """The volume source of etcd's disk on each cloud."""
    if options.target == "google":
        return {"gcePersistentDisk": {"pdName": options.disk_name, "fsType": "ext4"}}
    if options.target == "amazon":
        return {"awsElasticBlockStore": {"volumeID": options.volume_id, "fsType": "ext4"}}
    managed = options.volume_uri.startswith("/")  # a managed disk's resource ID, else a VHD blob's URL
    return {"azureDisk": {"diskName": options.volume_uri.rstrip("/").rsplit("/", 1)[-1],
                          "diskURI": options.volume_uri, "kind": "Managed" if managed else "Shared",
                          "cachingMode": "ReadWrite", "fsType": "ext4"}}


def _volume_name(options: DeployOptions) -> str:
    return options.disk_name if options.target == "google" else ETCD_VOLUME


def etcd_volume(options: DeployOptions) -> Object:
    """The cloud's existing disk (`--disk-name`, `--volume-id`, `--volume-uri`), reserved for etcd's claim."""
    return {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": _meta(_volume_name(options), "etcd"),
            "spec": {
                "capacity": {"storage": f"{options.disk_size}Gi"},
                "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Retain",
                "storageClassName": "",
                "claimRef": {"namespace": options.namespace, "name": ETCD_CLAIM},
            } | _disk(options)}


def etcd_claim(options: DeployOptions) -> Object:
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": _meta(ETCD_CLAIM, "etcd", options.namespace), "spec": {
                "accessModes": ["ReadWriteOnce"],
                "storageClassName": "",
                "volumeName": _volume_name(options),
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
    if options.target in CLOUD_TARGETS:
        volume["persistentVolumeClaim"] = {"claimName": ETCD_CLAIM}
    else:
        volume["hostPath"] = _host_path(options, "etcd")
    pod = {"containers": [container], "volumes": [volume]}
    return _deployment("etcd", options, replicas=1, pod=pod, strategy="Recreate")


_STORAGE_BACKEND = {"local": "local", "google": "gcs", "amazon": "s3", "microsoft": "azure"}


def _store_env(options: DeployOptions) -> list[tuple[str, str]]:
    if options.target == "google":
        return [("GCS_BUCKET", options.bucket)]
    if options.target == "amazon":
        return [("S3_BUCKET", options.bucket), ("AWS_REGION", options.region),
                ("AWS_ENDPOINT_URL_S3", options.s3_endpoint)]
    if options.target == "microsoft":
        return [("AZURE_STORAGE_CONTAINER", options.container)]
    return []


# The variables pachd reads each Secret's keys as (the SDKs' standard names).
_SECRET_VARIABLES = {
    AMAZON_SECRET: (("AWS_ACCESS_KEY_ID", "id"), ("AWS_SECRET_ACCESS_KEY", "secret"), ("AWS_SESSION_TOKEN", "token")),
    MICROSOFT_SECRET: (("AZURE_STORAGE_ACCOUNT", "id"), ("AZURE_STORAGE_KEY", "secret")),
}


def _secret_env(options: DeployOptions) -> list[Object]:
    """The credentials, read from the Secret `credentials` makes."""
    return [{"name": var, "valueFrom": {"secretKeyRef": {"name": secret["metadata"]["name"], "key": key}}}
            for secret in credentials(options)
            for var, key in _SECRET_VARIABLES[secret["metadata"]["name"]] if key in secret["data"]]


def pachd_env(options: DeployOptions) -> list[Object]:
    """pachd's settings (see pachd/config.py): etcd, block storage, the Kubernetes executor."""
    values = [
        ("PORT", str(PACHD_PORT)),
        ("PACHD_HOST", "0.0.0.0"),  # pachd's own default is loopback only; the Service must reach it
        ("PACH_ROOT", PACH_ROOT),
        ("ETCD_ADDRESS", f"etcd:{ETCD_PORT}"),
        ("STORAGE_BACKEND", _STORAGE_BACKEND[options.target]),
        *_store_env(options),
        ("PACHD_EXECUTOR", "kubernetes"),
        ("JOB_SHIM_IMAGE", options.job_shim_image),
        ("JOB_IMAGE_PULL_POLICY", options.image_pull_policy),
    ]
    env: list[Object] = [{"name": name, "value": value} for name, value in values if value]
    env += _secret_env(options)
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
    # local: blocks live in the data dir, so it must outlive the pod. The clouds:
    # blocks are in the bucket or container and metadata in etcd; the data dir is scratch.
    volume: Object = {"name": "pach-data"}
    if options.target in CLOUD_TARGETS:
        volume["emptyDir"] = {}
    else:
        volume["hostPath"] = _host_path(options, "pachd")
    pod = {"serviceAccountName": SERVICE_ACCOUNT, "containers": [container], "volumes": [volume]}
    return _deployment("pachd", options, replicas=options.replicas, pod=pod)


def registry_service(options: DeployOptions) -> Object:
    return _service("registry", "registry", REGISTRY_PORT, options, node_port=options.registry_node_port)


def registry_deployment(options: DeployOptions) -> Object:
    """One registry pod, its images in an emptyDir (as v1.2's)."""
    storage = "/var/lib/registry"
    limits = {"cpu": "100m", "memory": "100Mi"}
    container: Object = {
        "name": "registry",
        "image": options.registry_image,
        "imagePullPolicy": options.image_pull_policy,
        "env": [{"name": "REGISTRY_HTTP_ADDR", "value": f":{REGISTRY_PORT}"},
                {"name": "REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", "value": storage}],
        "ports": [{"name": "registry", "containerPort": REGISTRY_PORT, "protocol": "TCP"}],
        "resources": {"requests": dict(limits), "limits": dict(limits)},
        "readinessProbe": {"httpGet": {"path": "/v2/", "port": REGISTRY_PORT}, "periodSeconds": 5},
        "volumeMounts": [{"name": "image-storage", "mountPath": storage}],
    }
    pod = {"containers": [container], "volumes": [{"name": "image-storage", "emptyDir": {}}]}
    return _deployment("registry", options, replicas=1, pod=pod, strategy="Recreate")
