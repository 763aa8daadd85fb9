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
