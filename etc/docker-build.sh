#!/usr/bin/env bash
# `docker build ARGS...` with BuildKit, and the CA bundle pip trusts passed as
# the build secret `ca` (RUN --mount=type=secret,id=ca: in no layer):
#   BUILD_CA_FILE  the bundle (default: pip's, else the system's); where TLS
#                  to the package index is intercepted, builds need it
# BuildKit comes from a docker CLI with buildx, or Docker 20.10-22's own.
set -euo pipefail

CA=${BUILD_CA_FILE:-${PIP_CERT:-${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}}}

cli=""
for candidate in docker /usr/bin/docker; do
    command -v "$candidate" >/dev/null || continue
    if "$candidate" buildx version >/dev/null 2>&1; then
        cli=$candidate
        break
    fi
    version=$("$candidate" version --format '{{.Client.Version}}' 2>/dev/null || true)
    if [ -n "$version" ] && [ "${version%%.*}" -lt 23 ] 2>/dev/null; then
        cli=$candidate  # BuildKit built in, no buildx needed
        break
    fi
done
if [ -z "$cli" ]; then
    echo "no docker CLI with BuildKit: install docker-buildx (or Debian's docker.io)" >&2
    exit 1
fi

secret=()
if [ -s "$CA" ]; then
    secret=(--secret "id=ca,src=$CA")
fi
DOCKER_BUILDKIT=1 exec "$cli" build "${secret[@]}" "$@"
