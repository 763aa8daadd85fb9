#!/usr/bin/env bash
# Builds the frontend and model-service images inside minikube, with the names and tags the chart
# uses, from this working tree. DRY_RUN=1 prints the commands. `make deploy-k8s` does this too
# (IMAGES=build, its default); run this alone to rebuild after a change, then restart the pods.
# Settings: PROFILE, IMAGE_PREFIX, VERSION, FRONTEND_DOCKERFILE, MODEL_SERVICE_DOCKERFILE.
set -euo pipefail
# shellcheck source=deploy/k8s/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_tools minikube
dry_run && say "DRY_RUN=1: printing the commands only"
build_images
say "built $FRONTEND_IMAGE and $MODEL_SERVICE_IMAGE in minikube"
