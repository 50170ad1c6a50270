#!/usr/bin/env bash
# Installs the Debian packages pachd and its tests need, when missing:
#   etcd-server   the metadata backend (and the etcd the tests start)
#   fuse3         fusermount3, for `pachctl mount` and FUSE pods
#   libfuse3-dev  headers pyfuse3 compiles against
#   pkg-config    how pyfuse3 finds them
#   gcc           the compiler for pyfuse3
#   nodejs, npm   the Node.js client of the foreign-client test (when no node is on PATH)
#   docker.io     the Docker engine (dockerd, containerd, runc) the Docker executor
#                 tests and `make images` run against (when no dockerd is on PATH)
#   busybox-static, debootstrap
#                 the local base images the tests build (no image registry needed)
#   docker-registry
#                 a real image registry on loopback, for the --push-images test
set -euo pipefail

wanted=(etcd-server fuse3 libfuse3-dev pkg-config gcc busybox-static debootstrap docker-registry)
missing=()
for pkg in "${wanted[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    missing+=(nodejs npm)
fi
if ! command -v dockerd >/dev/null; then
    missing+=(docker.io)
fi
[ ${#missing[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null; then
    echo "missing system packages: ${missing[*]}; install them with your package manager" >&2
    exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
echo "installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Another apt run (a second worktree's install) may hold the dpkg lock: apt
# waits for it up to this many seconds instead of failing at once.
apt_install=($sudo apt-get -o DPkg::Lock::Timeout=600 install -y -q)
if ! "${apt_install[@]}" "${missing[@]}" >/dev/null; then
    $sudo apt-get -o DPkg::Lock::Timeout=600 update -q >/dev/null
    "${apt_install[@]}" "${missing[@]}" >/dev/null
fi
