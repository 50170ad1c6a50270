#!/usr/bin/env bash
# Builds pachyderm/pachd and pachyderm/job-shim (make images runs this), each
# tagged $IMAGE_TAG and latest, on the engine at DOCKER_HOST:
#   IMAGE_TAG   the version tag (default 1.2.3-py, what `pachctl deploy` names)
#   IMAGE_BASE  the base of both images (default python:3.11-slim)
# etc/docker-build.sh runs each build (BuildKit, the CA bundle as a secret).
set -euo pipefail
cd "$(dirname "$0")/.."

TAG=${IMAGE_TAG:-1.2.3-py}
BASE=${IMAGE_BASE:-python:3.11-slim}
for image in pachd job-shim; do
    echo "building pachyderm/$image:$TAG from $BASE" >&2
    bash etc/docker-build.sh --build-arg "BASE=$BASE" -f "etc/Dockerfile.$image" \
        -t "pachyderm/$image:$TAG" -t "pachyderm/$image:latest" .
done
