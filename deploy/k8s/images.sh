#!/usr/bin/env bash
# Builds the frontend and model-service images inside minikube, with the names and tags the chart
# uses (IfNotPresent then runs them without a registry). DRY_RUN=1 prints the commands.
set -euo pipefail
# shellcheck source=deploy/k8s/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

FRONTEND_DOCKERFILE=${FRONTEND_DOCKERFILE:-services/frontend/Dockerfile}
MODEL_SERVICE_DOCKERFILE=${MODEL_SERVICE_DOCKERFILE:-services/model_service/Dockerfile}

need minikube "see https://minikube.sigs.k8s.io/docs/start/"
[[ -n "$VERSION" ]] || die "could not read the project version from pyproject.toml; set VERSION"
cd "$ROOT"
for file in "$FRONTEND_DOCKERFILE" "$MODEL_SERVICE_DOCKERFILE"; do
  [[ -f "$file" ]] || die "$file not found (set FRONTEND_DOCKERFILE / MODEL_SERVICE_DOCKERFILE)"
done
dry_run && say "DRY_RUN=1: printing the commands only"

run minikube image build -p "$PROFILE" -t "$IMAGE_PREFIX-frontend:$VERSION" -f "$FRONTEND_DOCKERFILE" .
run minikube image build -p "$PROFILE" -t "$IMAGE_PREFIX-model-service:$VERSION" -f "$MODEL_SERVICE_DOCKERFILE" .
say "built $IMAGE_PREFIX-frontend:$VERSION and $IMAGE_PREFIX-model-service:$VERSION in minikube"
