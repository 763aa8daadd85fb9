{{/*
Expand the name of the chart.
*/}}
{{- define "restaurant-sentiment.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Create a default fully qualified app name.
Truncated at 63 characters because some Kubernetes name fields are limited to that (DNS-1123).
If the release name contains the chart name it is used as the full name.
*/}}
{{- define "restaurant-sentiment.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Create chart name and version as used by the chart label.
*/}}
{{- define "restaurant-sentiment.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "restaurant-sentiment.labels" -}}
helm.sh/chart: {{ include "restaurant-sentiment.chart" . }}
{{ include "restaurant-sentiment.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: {{ include "restaurant-sentiment.name" . }}
{{- end }}

{{/*
Selector labels: name and instance only, because Deployment selectors are immutable.
*/}}
{{- define "restaurant-sentiment.selectorLabels" -}}
app.kubernetes.io/name: {{ include "restaurant-sentiment.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Name of the model-service Service, also the host Istio routes to.
*/}}
{{- define "restaurant-sentiment.modelService.host" -}}
{{- printf "%s-model-service" (include "restaurant-sentiment.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Name of the frontend Deployment and Service.
*/}}
{{- define "restaurant-sentiment.frontend.fullname" -}}
{{- printf "%s-frontend" (include "restaurant-sentiment.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Name of the Istio Gateway both VirtualServices bind to.
*/}}
{{- define "restaurant-sentiment.gateway" -}}
{{- printf "%s-gateway" (include "restaurant-sentiment.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The image of a workload: <image.repositoryPrefix>-<component>:<tag>, plus @<digest> when one is
given (the runtime then pulls by digest and the tag only documents it). An empty tag means the
chart's appVersion.
Call with (dict "root" $ "component" "frontend" "tag" "0.1.0" "digest" "").
*/}}
{{- define "restaurant-sentiment.image" -}}
{{- $tag := default .root.Chart.AppVersion .tag }}
{{- $image := printf "%s-%s:%s" .root.Values.image.repositoryPrefix .component $tag }}
{{- if .digest }}
{{- $image = printf "%s@%s" $image .digest }}
{{- end }}
{{- $image }}
{{- end }}

{{/*
Pull policy for an image (same dict as restaurant-sentiment.image). image.pullPolicy wins when
set; otherwise a digest is immutable (IfNotPresent) and a tag can move (Always).
*/}}
{{- define "restaurant-sentiment.imagePullPolicy" -}}
{{- .root.Values.image.pullPolicy | default (ternary "IfNotPresent" "Always" (not (empty .digest))) }}
{{- end }}

{{/*
Checks that JSON schema cannot express: weights summing to 100 and unique version names.
*/}}
{{- define "restaurant-sentiment.validate" -}}
{{- $total := 0 }}
{{- $seen := dict }}
{{- range .Values.modelService.versions }}
{{- $total = add $total .weight }}
{{- if hasKey $seen .name }}
{{- fail (printf "modelService.versions: the version name %q appears more than once" .name) }}
{{- end }}
{{- $_ := set $seen .name true }}
{{- end }}
{{- if ne (int $total) 100 }}
{{- fail (printf "modelService.versions: the weights must sum to 100, they sum to %d" (int $total)) }}
{{- end }}
{{- $r := .Values.resilience }}
{{- $longest := add $r.drain.preStopSeconds $r.retries.perTryTimeoutSeconds }}
{{- if le (int $r.drain.terminationGracePeriodSeconds) (int $longest) }}
{{- fail (printf "resilience.drain.terminationGracePeriodSeconds must be longer than resilience.drain.preStopSeconds + resilience.retries.perTryTimeoutSeconds (the longest request), %ds; got %ds" (int $longest) (int $r.drain.terminationGracePeriodSeconds)) }}
{{- end }}
{{- if and .Values.feedbackStore.redis.deploy .Values.feedbackStore.url }}
{{- fail "feedbackStore: set either url (a Redis of yours) or redis.deploy (the chart's Redis), not both" }}
{{- end }}
{{- if and (gt (int $r.retries.attempts) 0) (ge (int .Values.frontend.readTimeoutSeconds) (int $r.retries.perTryTimeoutSeconds)) }}
{{- fail (printf "frontend.readTimeoutSeconds (%d) must be shorter than resilience.retries.perTryTimeoutSeconds (%d), or the gateway gives up on a page before the frontend can show its timeout message" (int .Values.frontend.readTimeoutSeconds) (int $r.retries.perTryTimeoutSeconds)) }}
{{- end }}
{{- end }}

{{/*
The drain and retry policy (values `resilience`), one definition for every object that carries
a part of it. tests/mesh/test_one_source.py fails when these differ from `make up`'s Envoy.
*/}}

{{/*
A VirtualService route's retries: each retry on another pod where there is one (Istio's
default previous-hosts predicate), `reset` covering a request cut off by a stopping server.
*/}}
{{- define "restaurant-sentiment.retries" -}}
{{- $r := .Values.resilience.retries -}}
retries:
  attempts: {{ int $r.attempts }}
  {{- if gt (int $r.attempts) 0 }}
  perTryTimeout: {{ printf "%ds" (int $r.perTryTimeoutSeconds) }}
  retryOn: {{ join "," $r.retryOn | quote }}
  {{- end }}
{{- end }}

{{/*
A DestinationRule's traffic policy: the retry circuit breaker and outlier detection on
local-origin failures (connection failures, resets, timeouts), split from 5xx answers.
*/}}
{{- define "restaurant-sentiment.trafficPolicy" -}}
{{- $r := .Values.resilience }}
{{- $o := $r.outlierDetection -}}
trafficPolicy:
  connectionPool:
    http:
      maxRetries: {{ int $r.retries.maxConcurrent }}
  outlierDetection:
    splitExternalLocalOriginErrors: true
    consecutiveLocalOriginFailures: {{ int $o.consecutiveLocalOriginFailures }}
    consecutive5xxErrors: {{ int $o.consecutive5xxErrors }}
    interval: {{ printf "%ds" (int $o.intervalSeconds) }}
    baseEjectionTime: {{ printf "%ds" (int $o.baseEjectionSeconds) }}
    maxEjectionPercent: {{ int $o.maxEjectionPercent }}
    minHealthPercent: {{ int $o.minHealthPercent }}
{{- end }}

{{/*
How a Deployment replaces and stops its pods: one new pod before an old one goes (maxSurge 1,
maxUnavailable 0), and a stopping pod keeps serving for preStopSeconds while the endpoints and
proxies take it out of rotation, then finishes its requests within the grace period.
*/}}
{{- define "restaurant-sentiment.strategy" -}}
strategy:
  type: RollingUpdate
  rollingUpdate:
    maxSurge: 1
    maxUnavailable: 0
{{- end }}

{{- define "restaurant-sentiment.preStop" -}}
lifecycle:
  preStop:
    sleep:
      seconds: {{ int .Values.resilience.drain.preStopSeconds }}
{{- end }}

{{/*
Annotations of a workload's pods: podAnnotations, plus the Istio proxy's drain on shutdown
(`proxy.istio.io/config` terminationDrainDuration: the preStop pause, then the longest request),
so the sidecar outlives the requests its container finishes. A `proxy.istio.io/config` of
podAnnotations replaces it and must then carry terminationDrainDuration itself. Call with
(dict "root" $ "annotations" <podAnnotations>).
*/}}
{{- define "restaurant-sentiment.podAnnotations" -}}
{{- $r := .root.Values.resilience }}
{{- $drain := add $r.drain.preStopSeconds $r.retries.perTryTimeoutSeconds }}
{{- $proxy := dict "proxy.istio.io/config" (printf "terminationDrainDuration: %ds" (int $drain)) }}
{{- toYaml (merge (deepCopy (.annotations | default dict)) $proxy) }}
{{- end }}

{{/*
The pod and container security settings shared by every workload.
*/}}
{{- define "restaurant-sentiment.podSecurityContext" -}}
{{- toYaml .Values.podSecurityContext }}
{{- end }}

{{/*
ServiceAccount of the frontend pods: the identity the model-service's policy admits.
*/}}
{{- define "restaurant-sentiment.frontend.serviceAccount" -}}
{{- .Values.frontend.serviceAccount.name | default (include "restaurant-sentiment.frontend.fullname" .) }}
{{- end }}

{{/*
ServiceAccount of every model-service pod (all versions).
*/}}
{{- define "restaurant-sentiment.modelService.serviceAccount" -}}
{{- .Values.modelService.serviceAccount.name | default (include "restaurant-sentiment.modelService.host" .) }}
{{- end }}

{{/*
True (non-empty) when the cluster serves an API group/version, as `helm install` learns from the
cluster and `helm template --api-versions` declares. Objects of the Istio and Prometheus Operator
APIs render only then, so a cluster without those CRDs accepts the chart.
*/}}
{{- define "restaurant-sentiment.served" -}}
{{- if .root.Capabilities.APIVersions.Has .api }}true{{ end }}
{{- end }}

{{- define "restaurant-sentiment.istio.networking" -}}
{{- include "restaurant-sentiment.served" (dict "root" . "api" "networking.istio.io/v1") }}
{{- end }}

{{- define "restaurant-sentiment.istio.envoyFilter" -}}
{{- include "restaurant-sentiment.served" (dict "root" . "api" "networking.istio.io/v1alpha3") }}
{{- end }}

{{- define "restaurant-sentiment.istio.security" -}}
{{- include "restaurant-sentiment.served" (dict "root" . "api" "security.istio.io/v1") }}
{{- end }}

{{- define "restaurant-sentiment.prometheusOperator" -}}
{{- include "restaurant-sentiment.served" (dict "root" . "api" "monitoring.coreos.com/v1") }}
{{- end }}

{{/*
True (non-empty) when the Istio mTLS and authorization policies are in force: asked for and
servable by the cluster.
*/}}
{{- define "restaurant-sentiment.meshSecurity" -}}
{{- if and .Values.meshSecurity.enabled (include "restaurant-sentiment.istio.security" .) }}true{{ end }}
{{- end }}

{{/*
The objects the values ask for but the cluster cannot take, one "kinds (api, what provides it)"
line each, for NOTES.txt.
*/}}
{{- define "restaurant-sentiment.skipped" -}}
{{- $skipped := list }}
{{- if not (include "restaurant-sentiment.istio.networking" .) }}
{{- $skipped = append $skipped "Gateway, VirtualServices, DestinationRules (networking.istio.io/v1, Istio 1.22+)" }}
{{- end }}
{{- if and .Values.rateLimit.enabled (not (include "restaurant-sentiment.istio.envoyFilter" .)) }}
{{- $skipped = append $skipped "EnvoyFilter of the homepage rate limit (networking.istio.io/v1alpha3, Istio 1.26+)" }}
{{- end }}
{{- if and .Values.meshSecurity.enabled (not (include "restaurant-sentiment.istio.security" .)) }}
{{- $skipped = append $skipped "PeerAuthentication, AuthorizationPolicies (security.istio.io/v1, Istio 1.22+)" }}
{{- end }}
{{- if not (include "restaurant-sentiment.prometheusOperator" .) }}
{{- $monitors := list }}
{{- with .Values.monitoring }}
{{- if .serviceMonitor.enabled }}{{ $monitors = append $monitors "ServiceMonitor" }}{{ end }}
{{- if .gatewayPodMonitor.enabled }}{{ $monitors = append $monitors "PodMonitor" }}{{ end }}
{{- if .prometheusRule.enabled }}{{ $monitors = append $monitors "PrometheusRule" }}{{ end }}
{{- end }}
{{- if $monitors }}
{{- $skipped = append $skipped (printf "%s (monitoring.coreos.com/v1, the Prometheus Operator)" (join ", " $monitors)) }}
{{- end }}
{{- end }}
{{- join "\n" $skipped }}
{{- end }}

{{/*
Labels of a workload's pods: the chart's labels win over podLabels, so selectors and Istio's
`app`/`version` cannot be overridden. Call with (dict "root" $ "labels" <chart labels as YAML>
"podLabels" <map>).
*/}}
{{- define "restaurant-sentiment.podLabels" -}}
{{- toYaml (mustMergeOverwrite (deepCopy (.podLabels | default dict)) (fromYaml .labels)) }}
{{- end }}

{{/*
Scheduling of a workload's pods, the `helm create` keys plus a default anti-affinity. Call with
(dict "values" <frontend or modelService values> "selector" <the pods' selector labels as YAML>).
- affinity: used as given; when empty, podAntiAffinityPreset `soft` prefers (and `hard` requires)
  nodes that run no other pod of the same workload, so replicas spread over nodes.
- topologySpreadConstraints: a constraint without labelSelector gets the workload's selector.
*/}}
{{- define "restaurant-sentiment.scheduling" -}}
{{- $selector := fromYaml .selector }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if .values.affinity }}
affinity:
  {{- toYaml .values.affinity | nindent 2 }}
{{- else if eq .values.podAntiAffinityPreset "soft" }}
affinity:
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- toYaml $selector | nindent 14 }}
{{- else if eq .values.podAntiAffinityPreset "hard" }}
affinity:
  podAntiAffinity:
    requiredDuringSchedulingIgnoredDuringExecution:
      - topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- toYaml $selector | nindent 12 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.topologySpreadConstraints }}
{{- $constraints := list }}
{{- range . }}
{{- $constraint := deepCopy . }}
{{- if not (hasKey $constraint "labelSelector") }}
{{- $_ := set $constraint "labelSelector" (dict "matchLabels" $selector) }}
{{- end }}
{{- $constraints = append $constraints $constraint }}
{{- end }}
topologySpreadConstraints:
  {{- toYaml $constraints | nindent 2 }}
{{- end }}
{{- end }}

{{/*
checkov.io/skipN annotations, one per (check id, reason) pair: the scan's findings that do not
apply here, each with the reason next to it. Call with a list of (list "CKV_K8S_43" "reason").
*/}}
{{- define "restaurant-sentiment.checkovSkips" -}}
{{- $lines := list }}
{{- range $index, $skip := . }}
{{- $lines = append $lines (printf "checkov.io/skip%d: %s" (add1 $index) (printf "%s=%s" (index $skip 0) (index $skip 1) | quote)) }}
{{- end }}
{{- join "\n" $lines }}
{{- end }}

{{/*
Name of the Secret holding the key that signs prediction ids.
*/}}
{{- define "restaurant-sentiment.feedbackSecret" -}}
{{- .Values.feedback.existingSecret | default (printf "%s-feedback" (include "restaurant-sentiment.fullname" .)) }}
{{- end }}

{{/*
The feedback store: the chart's Redis, a Redis of the user's, or none (each pod's memory).
*/}}
{{- define "restaurant-sentiment.feedbackStore.redis" -}}
{{- printf "%s-redis" (include "restaurant-sentiment.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "restaurant-sentiment.feedbackStore.url" -}}
{{- if .Values.feedbackStore.redis.deploy }}
{{- printf "redis://%s:%d/0" (include "restaurant-sentiment.feedbackStore.redis" .) (int .Values.feedbackStore.redis.port) }}
{{- else }}
{{- .Values.feedbackStore.url | default "memory" }}
{{- end }}
{{- end }}

{{/*
Name of the Secret holding the Redis password; empty when there is none.
*/}}
{{- define "restaurant-sentiment.feedbackStore.secret" -}}
{{- if .Values.feedbackStore.existingSecret }}
{{- .Values.feedbackStore.existingSecret }}
{{- else if .Values.feedbackStore.redis.deploy }}
{{- printf "%s-feedback-store" (include "restaurant-sentiment.fullname" .) }}
{{- end }}
{{- end }}

{{/*
Istio (SPIFFE) principals of the callers the AuthorizationPolicies admit.
*/}}
{{- define "restaurant-sentiment.principal.gateway" -}}
{{- printf "%s/ns/%s/sa/%s" .Values.meshSecurity.trustDomain .Values.gateway.namespace .Values.gateway.serviceAccount }}
{{- end }}

{{- define "restaurant-sentiment.principal.frontend" -}}
{{- printf "%s/ns/%s/sa/%s" .Values.meshSecurity.trustDomain .Release.Namespace (include "restaurant-sentiment.frontend.serviceAccount" .) }}
{{- end }}

{{- define "restaurant-sentiment.principal.prometheus" -}}
{{- with .Values.meshSecurity.prometheus }}
{{- printf "%s/ns/%s/sa/%s" $.Values.meshSecurity.trustDomain .namespace .serviceAccount }}
{{- end }}
{{- end }}

{{/*
True (non-empty) when Prometheus must present its Istio certificate to scrape.
*/}}
{{- define "restaurant-sentiment.scrapeWithIstioCerts" -}}
{{- if and (include "restaurant-sentiment.meshSecurity" .) (eq .Values.meshSecurity.mtlsMode "STRICT") }}true{{ end }}
{{- end }}

{{/*
Where `helm test` posts a review. The test pod has no sidecar, so with mesh security on it goes
the way users do, through the ingress gateway; otherwise straight to the Service.
*/}}
{{- define "restaurant-sentiment.helmTestUrl" -}}
{{- if include "restaurant-sentiment.meshSecurity" . }}
{{- printf "http://%s.%s.svc:%d/predict" .Values.gateway.service .Values.gateway.namespace (int .Values.gateway.port) }}
{{- else }}
{{- printf "http://%s:%d/predict" (include "restaurant-sentiment.modelService.host" .) (int .Values.modelService.port) }}
{{- end }}
{{- end }}

{{/*
The values every workload reads (the restaurant catalogue, the versions and their weights, the
cookie, the experiment's thresholds), as one JSON document in a ConfigMap. Pods mount it as a
directory, so a `helm upgrade` with new weights reaches the running frontend without a restart.
*/}}
{{- define "restaurant-sentiment.sharedValues" -}}
{{- $service := dict "port" .Values.modelService.port "versions" .Values.modelService.versions "cookie" .Values.modelService.cookie -}}
{{- dict "hosts" .Values.hosts "modelService" $service "rateLimit" .Values.rateLimit "gateway" (dict "port" .Values.gateway.port) "restaurants" .Values.restaurants "experiment" .Values.experiment | toPrettyJson }}
{{- end }}

{{- define "restaurant-sentiment.valuesConfigMap" -}}
{{ include "restaurant-sentiment.fullname" . }}-values
{{- end }}

{{/* Where the shared values are mounted in every pod. */}}
{{- define "restaurant-sentiment.valuesDir" -}}
/etc/restaurant-sentiment
{{- end }}
