#!/usr/bin/env bash
# Build the project's images from the repository root, tagged as deploy/compose.yaml names them:
#   $IMAGE_PREFIX-model-service:$TAG, $IMAGE_PREFIX-frontend:$TAG, $IMAGE_PREFIX-gateway:$TAG
#
#   IMAGE_PREFIX  default ghcr.io/restaurant-sentiment/restaurant-sentiment
#   TAG           default the project version (pyproject.toml)
#   LOCAL_BASE=1  build on local base images (deploy/docker/local-base.sh), for hosts that reach
#                 no image registry
#   PYTHON_IMAGE, UV_IMAGE, DEBIAN_IMAGE  other bases, when set (the Dockerfiles' build arguments)
#   CA_BUNDLE     a PEM file of extra CA certificates the package downloads trust (for a proxy
#                 that re-signs TLS); passed as a BuildKit secret, never stored in an image
#   DOCKER        the docker client (it must build with BuildKit)
set -euo pipefail
cd "$(dirname "$0")/../.."

DOCKER=${DOCKER:-docker}
IMAGE_PREFIX=${IMAGE_PREFIX:-ghcr.io/restaurant-sentiment/restaurant-sentiment}
TAG=${TAG:-$(python3 -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')}

options=()
if [[ ${LOCAL_BASE:-} == 1 ]]; then
    read -r -a options <<<"$(DOCKER=$DOCKER deploy/docker/local-base.sh --build-args)"
fi
for arg in PYTHON_IMAGE UV_IMAGE DEBIAN_IMAGE; do
    if [[ -n ${!arg:-} ]]; then
        options+=(--build-arg "$arg=${!arg}")
    fi
done
if [[ -n ${CA_BUNDLE:-} ]]; then
    options+=(--secret "id=ca-bundle,src=$CA_BUNDLE")
fi

build() {
    local name=$1 dockerfile=$2
    echo "building $IMAGE_PREFIX-$name:$TAG from $dockerfile" >&2
    DOCKER_BUILDKIT=1 "$DOCKER" build "${options[@]}" --file "$dockerfile" \
        --tag "$IMAGE_PREFIX-$name:$TAG" .
}

build model-service services/model-service/Dockerfile
build frontend services/frontend/Dockerfile
build gateway deploy/docker/envoy.Dockerfile
