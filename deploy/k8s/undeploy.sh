#!/usr/bin/env bash
# Removes the restaurant-sentiment release and its namespace. ALL=1 also deletes the whole
# minikube cluster (Istio, monitoring, Kiali and Jaeger with it). DRY_RUN=1 prints the commands.
set -euo pipefail
# shellcheck source=deploy/k8s/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ALL=${ALL:-0}
need_cluster_tools
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
run kubectl delete namespace "$NAMESPACE" --ignore-not-found --wait=true
say "done; the cluster keeps running (ALL=1 deletes it)"
