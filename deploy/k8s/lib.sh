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

# Stops with what to install when a command is missing; checked in DRY_RUN too.
need() {
  local name=$1 hint=$2
  command -v "$name" >/dev/null 2>&1 || die "$name is not installed: $hint"
}

need_cluster_tools() {
  local missing=0
  for tool in minikube kubectl helm istioctl; do
    if ! command -v "$tool" >/dev/null 2>&1; then
      missing=1
      case $tool in
        minikube) printf 'error: minikube is not installed: see https://minikube.sigs.k8s.io/docs/start/\n' >&2 ;;
        kubectl) printf 'error: kubectl is not installed: see https://kubernetes.io/docs/tasks/tools/\n' >&2 ;;
        helm) printf 'error: helm is not installed: see https://helm.sh/docs/intro/install/\n' >&2 ;;
        istioctl) printf 'error: istioctl (Istio %s or newer) is not installed: see https://istio.io/latest/docs/setup/getting-started/#download\n' "$MIN_ISTIO_VERSION" >&2 ;;
      esac
    fi
  done
  [[ $missing == 0 ]] || exit 1
}

# True when version $1 is at least version $2 (both MAJOR.MINOR[.PATCH]).
version_at_least() {
  [[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n 1)" == "$2" ]]
}
