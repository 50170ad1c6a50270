#!/usr/bin/env bash
# Installs the Debian packages pachd and its tests need, when missing:
#   etcd-server   the metadata backend (and the etcd the tests start)
#   fuse3         fusermount3, for `pachctl mount` and FUSE pods
#   libfuse3-dev  headers pyfuse3 compiles against
#   pkg-config    how pyfuse3 finds them
#   gcc           the compiler for pyfuse3
#   bubblewrap    bwrap, which confines local pods like containers
#   nodejs, npm   the Node.js client of the foreign-client test and Azurite (when no node is on PATH)
# With --test, also what only the tests need:
#   chromium      the headless browser of the console's end-to-end tests
#   docker.io     the Docker engine (dockerd, containerd, runc) the Docker executor
#                 and image tests run against (when no dockerd is on PATH)
#   busybox-static, debootstrap
#                 the local base images the tests build (no image registry needed)
#   docker-registry
#                 a real image registry on loopback, for the --push-images test
#   zsh, fish     the shells whose completion scripts tests/pachctl/test_completion.py runs
set -euo pipefail

wanted=(etcd-server fuse3 libfuse3-dev pkg-config gcc bubblewrap)
testing=false
if [ "${1:-}" = "--test" ]; then
    testing=true
    wanted+=(chromium busybox-static debootstrap docker-registry zsh fish)
fi
missing=()
for pkg in "${wanted[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    missing+=(nodejs npm)
fi
if $testing && ! command -v dockerd >/dev/null; then
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
# Another apt or dpkg run (an unattended upgrade, a second checkout's install)
# may hold the lock: wait for it rather than fail.
apt=($sudo apt-get -o DPkg::Lock::Timeout=900 -y -q)
if ! "${apt[@]}" install "${missing[@]}" >/dev/null; then
    "${apt[@]}" update >/dev/null
    "${apt[@]}" install "${missing[@]}" >/dev/null
fi
