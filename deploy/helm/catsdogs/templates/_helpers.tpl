{{/* Names and labels shared by every object of the chart. */}}

{{- define "catsdogs.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "catsdogs.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "catsdogs.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "catsdogs.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "catsdogs.selectorLabels" -}}
app.kubernetes.io/name: {{ include "catsdogs.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "catsdogs.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "catsdogs.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "catsdogs.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "catsdogs.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret holding the OIDC settings: the user's own, or the chart's. */}}
{{- define "catsdogs.authSecret" -}}
{{- .Values.auth.existingSecret | default (printf "%s-auth" (include "catsdogs.fullname" .)) }}
{{- end }}

{{/* Seconds a pod may take to stop: the preStop sleep, the service's own
drain (SHUTDOWN_DRAIN_DELAY: /ready 503, still serving), the 20 s it gives
requests in flight once the listener closes, and a margin. */}}
{{- define "catsdogs.terminationGrace" -}}
{{- .Values.terminationGracePeriodSeconds | default (add .Values.drain.preStopSleepSeconds .Values.drain.delaySeconds 20 5) }}
{{- end }}
