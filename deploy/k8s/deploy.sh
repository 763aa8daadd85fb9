#!/usr/bin/env bash
# Creates (or updates) a local minikube cluster with Istio, the Prometheus Operator, Grafana,
# Alertmanager, Kiali and Jaeger, builds the images into it, then installs the
# restaurant-sentiment chart and waits until it is ready.
# Safe to run again: every step converges. DRY_RUN=1 prints the whole plan instead of running it,
# even on a machine without the cluster tools (it notes which ones a real run needs).
# Settings: MEMORY (MiB, 16384), CPUS (4), DRIVER, PROFILE, NAMESPACE, RELEASE, IMAGE_PREFIX,
# VERSION, IMAGES (build: build both images inside minikube from this tree, the default; load:
# copy images of those names from the host's Docker; registry: pull them from IMAGE_PREFIX),
# HELM_ARGS (extra arguments for the chart, e.g. "-f my-values.yaml").
set -euo pipefail
# shellcheck source=deploy/k8s/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MEMORY=${MEMORY:-16384}
CPUS=${CPUS:-4}
DRIVER=${DRIVER:-}
HELM_ARGS=${HELM_ARGS:-}
IMAGES=${IMAGES:-build}
[[ "$MEMORY" =~ ^[0-9]+$ ]] || die "MEMORY must be a number of MiB, got '$MEMORY'"
[[ "$CPUS" =~ ^[0-9]+$ ]] || die "CPUS must be a whole number, got '$CPUS'"
[[ "$IMAGES" =~ ^(build|load|registry)$ ]] || die "IMAGES must be build, load or registry, got '$IMAGES'"

need_cluster_tools

if dry_run; then
  say "DRY_RUN=1: printing the commands only"
  ISTIO_VERSION=${ISTIO_VERSION:-$MIN_ISTIO_VERSION}
else
  ISTIO_VERSION=${ISTIO_VERSION:-$(istioctl version --remote=false 2>/dev/null | grep -oE '[0-9]+\.[0-9]+(\.[0-9]+)?' | head -n 1)}
fi
version_at_least "$ISTIO_VERSION" "$MIN_ISTIO_VERSION" \
  || die "istioctl $ISTIO_VERSION is too old: the homepage rate limit needs Istio $MIN_ISTIO_VERSION or newer"
ISTIO_MINOR=$(grep -oE '^[0-9]+\.[0-9]+' <<<"$ISTIO_VERSION")

say "1/9 minikube cluster '$PROFILE' (${MEMORY} MiB, ${CPUS} CPUs)"
if ! dry_run && minikube status -p "$PROFILE" >/dev/null 2>&1; then
  echo "    already running"
else
  run minikube start -p "$PROFILE" --memory="$MEMORY" --cpus="$CPUS" ${DRIVER:+--driver="$DRIVER"}
fi
run minikube profile "$PROFILE"
run minikube addons enable ingress -p "$PROFILE"

# Images the cluster holds itself are run as they are (IfNotPresent): no registry has them.
CHART_IMAGE_ARGS=(--set image.repositoryPrefix="$IMAGE_PREFIX" --set frontend.tag="$VERSION")
case $IMAGES in
  build)
    say "2/9 images $FRONTEND_IMAGE and $MODEL_SERVICE_IMAGE (built inside minikube)"
    build_images
    CHART_IMAGE_ARGS+=(--set image.pullPolicy=IfNotPresent)
    ;;
  load)
    say "2/9 images $FRONTEND_IMAGE and $MODEL_SERVICE_IMAGE (loaded from the host's Docker)"
    run minikube image load -p "$PROFILE" "$FRONTEND_IMAGE"
    run minikube image load -p "$PROFILE" "$MODEL_SERVICE_IMAGE"
    CHART_IMAGE_ARGS+=(--set image.pullPolicy=IfNotPresent)
    ;;
  registry)
    say "2/9 images: pulled from $IMAGE_PREFIX by the nodes"
    ;;
esac

say "3/9 Istio $ISTIO_VERSION (istioctl install)"
run istioctl install -y -f "$K8S_DIR/istio.yaml"

say "4/9 namespace $NAMESPACE with sidecar injection"
if dry_run; then
  run kubectl create namespace "$NAMESPACE"
else
  kubectl get namespace "$NAMESPACE" >/dev/null 2>&1 || kubectl create namespace "$NAMESPACE"
fi
run kubectl label namespace "$NAMESPACE" istio-injection=enabled --overwrite

say "5/9 Prometheus Operator, Prometheus, Alertmanager and Grafana (kube-prometheus-stack)"
run helm repo add prometheus-community https://prometheus-community.github.io/helm-charts --force-update
run helm repo add kiali https://kiali.org/helm-charts --force-update
run helm repo update prometheus-community kiali
if dry_run; then
  run kubectl create namespace "$MONITORING_NAMESPACE"
  run kubectl create secret generic grafana-admin -n "$MONITORING_NAMESPACE" \
    --from-literal=admin-user=admin --from-literal=admin-password='<random>'
else
  kubectl get namespace "$MONITORING_NAMESPACE" >/dev/null 2>&1 \
    || kubectl create namespace "$MONITORING_NAMESPACE"
  # A random Grafana password made once in the cluster, never a default one from a file.
  if ! kubectl get secret grafana-admin -n "$MONITORING_NAMESPACE" >/dev/null 2>&1; then
    kubectl create secret generic grafana-admin -n "$MONITORING_NAMESPACE" \
      --from-literal=admin-user=admin \
      --from-literal=admin-password="$(head -c 18 /dev/urandom | base64 | tr -d '/+=')"
  fi
fi
run helm upgrade --install kube-prometheus-stack prometheus-community/kube-prometheus-stack \
  -n "$MONITORING_NAMESPACE" -f "$K8S_DIR/kube-prometheus-stack-values.yaml" \
  ${KUBE_PROMETHEUS_STACK_VERSION:+--version "$KUBE_PROMETHEUS_STACK_VERSION"} \
  --wait --timeout 15m

run kubectl apply -f "$K8S_DIR/istio-podmonitor.yaml"

say "6/9 Jaeger (Istio $ISTIO_MINOR sample add-on) and tracing"
run kubectl apply -f "https://raw.githubusercontent.com/istio/istio/release-$ISTIO_MINOR/samples/addons/jaeger.yaml"
run kubectl apply -f "$K8S_DIR/telemetry.yaml"

say "7/9 Kiali"
run helm upgrade --install kiali-server kiali/kiali-server -n istio-system \
  -f "$K8S_DIR/kiali-values.yaml" ${KIALI_VERSION:+--version "$KIALI_VERSION"} --wait --timeout 10m

say "8/9 restaurant-sentiment $VERSION (release $RELEASE in $NAMESPACE)"
# shellcheck disable=SC2086 # HELM_ARGS is a list of extra arguments.
run helm upgrade --install "$RELEASE" "$CHART_DIR" -n "$NAMESPACE" \
  "${CHART_IMAGE_ARGS[@]}" $HELM_ARGS --wait --timeout 10m

say "9/9 waiting for the pods"
run kubectl rollout status deployment -n "$NAMESPACE" -l "app.kubernetes.io/instance=$RELEASE" --timeout=5m
run kubectl wait pods -n "$NAMESPACE" -l "app.kubernetes.io/instance=$RELEASE,app.kubernetes.io/component!=test" \
  --for=condition=Ready --timeout=5m
run helm test "$RELEASE" -n "$NAMESPACE" --logs

cat <<EOT

restaurant-sentiment is deployed.

Reach the ingress gateway, then open the app:
  minikube tunnel -p $PROFILE        (keep it running; on macOS/Windows it serves 127.0.0.1)
      http://app.localhost/              the web app
      http://service.localhost/apidocs   the model-service API
  or, on any platform:
  kubectl port-forward -n istio-system svc/istio-ingressgateway 8080:80
      http://app.localhost:8080/   and   http://service.localhost:8080/apidocs

Pick a model version (testers): send the cookie model-service-version=stable or =canary, e.g.
  curl -H 'Cookie: model-service-version=canary' -H 'Content-Type: application/json' \\
    -d '{"review": "Lovely food", "restaurantName": "Gourmet Haven"}' http://service.localhost/predict

Dashboards:
  Grafana (folder custom > Restaurant Metrics):
      kubectl port-forward -n $MONITORING_NAMESPACE svc/kube-prometheus-stack-grafana 3000:80   -> http://localhost:3000
      user admin, password: kubectl get secret -n $MONITORING_NAMESPACE grafana-admin -o jsonpath='{.data.admin-password}' | base64 -d
  Prometheus:   kubectl port-forward -n $MONITORING_NAMESPACE svc/kube-prometheus-stack-prometheus 9090:9090   -> http://localhost:9090
  Alertmanager: kubectl port-forward -n $MONITORING_NAMESPACE svc/kube-prometheus-stack-alertmanager 9093:9093 -> http://localhost:9093
  Kiali:        istioctl dashboard kiali
  Jaeger:       istioctl dashboard jaeger
EOT
