#!/usr/bin/env bash
# Makes the base images the tests build on, without an image registry, when
# the engine at DOCKER_HOST lacks them (they stay in its data root):
#   pach-local/busybox:1.35   Debian's busybox-static, one static binary and its applets
#   pach-local/debian:bookworm  a `debootstrap --variant=minbase` Debian tree
# Both are loaded with `docker import`. debootstrap fetches Debian's packages
# from the mirror in $DEBIAN_MIRROR.
set -euo pipefail

BUSYBOX=pach-local/busybox:1.35
DEBIAN=pach-local/debian:bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

present() {
    docker image inspect "$1" >/dev/null 2>&1
}

if ! command -v busybox >/dev/null || ! command -v debootstrap >/dev/null; then
    bash "$(dirname "$0")/install-system-packages.sh" --test
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if ! present "$BUSYBOX"; then
    mkdir -p "$work/busybox/bin" "$work/busybox/tmp" "$work/busybox/etc"
    cp "$(command -v busybox)" "$work/busybox/bin/busybox"
    for applet in $(busybox --list); do
        [ "$applet" = busybox ] || ln -s busybox "$work/busybox/bin/$applet"
    done
    chmod 1777 "$work/busybox/tmp"
    echo "root:x:0:0:root:/root:/bin/sh" >"$work/busybox/etc/passwd"
    tar -C "$work/busybox" -c . | docker import --change 'CMD ["/bin/sh"]' \
        --change 'ENV PATH=/bin' - "$BUSYBOX" >/dev/null
    echo "made $BUSYBOX" >&2
fi

if ! present "$DEBIAN"; then
    echo "making $DEBIAN with debootstrap (a few minutes)" >&2
    debootstrap --variant=minbase bookworm "$work/debian" "$MIRROR" >"$work/debootstrap.log" 2>&1 || {
        tail -20 "$work/debootstrap.log" >&2
        exit 1
    }
    rm -rf "$work/debian/var/cache/apt/archives/"*.deb "$work/debian/var/lib/apt/lists/"*
    tar -C "$work/debian" --numeric-owner -c . | docker import --change 'CMD ["/bin/bash"]' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$DEBIAN" >/dev/null
    echo "made $DEBIAN" >&2
fi
