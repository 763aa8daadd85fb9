# Shared by deploy.sh, undeploy.sh and images.sh: settings, prerequisite checks and DRY_RUN.
# shellcheck shell=bash

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
K8S_DIR="$ROOT/deploy/k8s"
CHART_DIR="$ROOT/deploy/helm/restaurant-sentiment"

PROFILE=${PROFILE:-restaurant-sentiment}
NAMESPACE=${NAMESPACE:-restaurant}
RELEASE=${RELEASE:-restaurant-sentiment}
MONITORING_NAMESPACE=${MONITORING_NAMESPACE:-monitoring}
# The oldest Istio whose Envoy accepts the rate limit's per-client buckets (max_dynamic_descriptors).
MIN_ISTIO_VERSION=1.26
IMAGE_PREFIX=${IMAGE_PREFIX:-ghcr.io/restaurant-sentiment/restaurant-sentiment}
VERSION=${VERSION:-$(sed -n 's/^version = "\(.*\)"$/\1/p' "$ROOT/pyproject.toml" | head -n 1)}
DRY_RUN=${DRY_RUN:-0}

dry_run() { [[ "$DRY_RUN" == "1" ]]; }

# Runs a command, or only prints it when DRY_RUN=1.
run() {
  if dry_run; then
    printf '+'
    printf ' %q' "$@"
    printf '\n'
  else
    "$@"
  fi
}

say() { printf '==> %s\n' "$*"; }

die() {
  printf 'error: %s\n' "$*" >&2
  exit 1
}

# Where to get each cluster tool.
tool_hint() {
  case $1 in
    minikube) printf 'minikube is not installed: see https://minikube.sigs.k8s.io/docs/start/' ;;
    kubectl) printf 'kubectl is not installed: see https://kubernetes.io/docs/tasks/tools/' ;;
    helm) printf 'helm is not installed: see https://helm.sh/docs/intro/install/' ;;
    istioctl) printf 'istioctl (Istio %s or newer) is not installed: see https://istio.io/latest/docs/setup/getting-started/#download' "$MIN_ISTIO_VERSION" ;;
    *) printf '%s is not installed' "$1" ;;
  esac
}

# Stops, naming what to install, when a tool is missing. With DRY_RUN=1 nothing runs, so the
# plan is printed anyway and the missing tools are only noted (on standard error).
need_tools() {
  local missing=0 tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 && continue
    missing=1
    if dry_run; then
      printf 'note: %s; a real run needs it\n' "$(tool_hint "$tool")" >&2
    else
      printf 'error: %s\n' "$(tool_hint "$tool")" >&2
    fi
  done
  [[ $missing == 0 ]] || dry_run || exit 1
}

need_cluster_tools() { need_tools minikube kubectl helm istioctl; }

# The Dockerfiles of both images, wherever this checkout keeps them (FRONTEND_DOCKERFILE and
# MODEL_SERVICE_DOCKERFILE override). Paths are relative to the repository root.
first_file() {
  local path
  for path in "$@"; do
    [[ -f "$ROOT/$path" ]] && { printf '%s' "$path"; return; }
  done
  printf '%s' "$1"
}
FRONTEND_DOCKERFILE=${FRONTEND_DOCKERFILE:-$(first_file services/frontend/Dockerfile)}
MODEL_SERVICE_DOCKERFILE=${MODEL_SERVICE_DOCKERFILE:-$(first_file services/model-service/Dockerfile services/model_service/Dockerfile)}
FRONTEND_IMAGE="$IMAGE_PREFIX-frontend:$VERSION"
MODEL_SERVICE_IMAGE="$IMAGE_PREFIX-model-service:$VERSION"

# Builds both images inside the minikube profile, with the names and tags the chart uses.
build_images() {
  [[ -n "$VERSION" ]] || die "could not read the project version from pyproject.toml; set VERSION"
  local file
  for file in "$FRONTEND_DOCKERFILE" "$MODEL_SERVICE_DOCKERFILE"; do
    [[ -f "$file" || -f "$ROOT/$file" ]] \
      || die "$file not found (set FRONTEND_DOCKERFILE / MODEL_SERVICE_DOCKERFILE)"
  done
  (
    cd "$ROOT" || exit 1
    run minikube image build -p "$PROFILE" -t "$FRONTEND_IMAGE" -f "$FRONTEND_DOCKERFILE" .
    run minikube image build -p "$PROFILE" -t "$MODEL_SERVICE_IMAGE" -f "$MODEL_SERVICE_DOCKERFILE" .
  )
}

# True when version $1 is at least version $2 (both MAJOR.MINOR[.PATCH]).
version_at_least() {
  [[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1)" == "$2" ]]
}
