#!/usr/bin/env bash
# Removes what `make deploy-k8s` installed for the app: the restaurant-sentiment release and its
# namespace. Istio, the monitoring stack, Kiali and Jaeger stay for the next deploy; ALL=1 deletes
# the whole minikube profile that deploy.sh started, and them with it. DRY_RUN=1 prints the
# commands. Settings: PROFILE, NAMESPACE, RELEASE (as for deploy.sh).
set -euo pipefail
# shellcheck source=deploy/k8s/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ALL=${ALL:-0}
if [[ "$ALL" == "1" ]]; then
  need_tools minikube
else
  need_tools helm kubectl
fi
dry_run && say "DRY_RUN=1: printing the commands only"

if [[ "$ALL" == "1" ]]; then
  say "deleting the minikube cluster '$PROFILE'"
  run minikube delete -p "$PROFILE"
  exit 0
fi

say "uninstalling release $RELEASE from $NAMESPACE"
if dry_run || helm status "$RELEASE" -n "$NAMESPACE" >/dev/null 2>&1; then
  run helm uninstall "$RELEASE" -n "$NAMESPACE" --wait
else
  echo "    release $RELEASE is not installed"
fi
# The feedback key's Secret is kept by `helm uninstall` (resource policy keep); the namespace,
# which deploy.sh created for the release, takes it along.
run kubectl delete namespace "$NAMESPACE" --ignore-not-found --wait=true
say "done; the cluster keeps running (ALL=1 deletes it)"
