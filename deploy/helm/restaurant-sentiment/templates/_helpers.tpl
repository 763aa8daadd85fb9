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
Image of the frontend.
*/}}
{{- define "restaurant-sentiment.frontend.image" -}}
{{- printf "%s-frontend:%s" .Values.image.repositoryPrefix (default .Chart.AppVersion .Values.frontend.tag) }}
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
{{- include "restaurant-sentiment.frontend.fullname" . }}
{{- end }}

{{/*
ServiceAccount of every model-service pod (all versions).
*/}}
{{- define "restaurant-sentiment.modelService.serviceAccount" -}}
{{- include "restaurant-sentiment.modelService.host" . }}
{{- end }}

{{/*
Name of the Secret holding the key that signs prediction ids.
*/}}
{{- define "restaurant-sentiment.feedbackSecret" -}}
{{- .Values.feedback.existingSecret | default (printf "%s-feedback" (include "restaurant-sentiment.fullname" .)) }}
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
{{- if and .Values.meshSecurity.enabled (eq .Values.meshSecurity.mtlsMode "STRICT") }}true{{ end }}
{{- end }}

{{/*
Where `helm test` posts a review. The test pod has no sidecar, so with mesh security on it goes
the way users do, through the ingress gateway; otherwise straight to the Service.
*/}}
{{- define "restaurant-sentiment.helmTestUrl" -}}
{{- if .Values.meshSecurity.enabled }}
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
