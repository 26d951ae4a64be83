{{/*
Names, labels and the checks every template relies on.
*/}}

{{- define "revstream.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's full name: the StatefulSet, its pods' prefix, the Services. */}}
{{- define "revstream.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "revstream.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "revstream.selectorLabels" -}}
app.kubernetes.io/name: {{ include "revstream.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "revstream.labels" -}}
helm.sh/chart: {{ include "revstream.chart" . }}
{{ include "revstream.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: worker
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "revstream.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "revstream.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "revstream.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* SASL is on when the security protocol says so. */}}
{{- define "revstream.sasl" -}}
{{- if hasPrefix "SASL_" .Values.kafka.securityProtocol -}}true{{- end -}}
{{- end -}}

{{/*
Cross-field checks JSON Schema cannot express; every manifest includes this,
so a bad combination fails the render with a message naming the values.
*/}}
{{- define "revstream.validate" -}}
{{- $_ := required "kafka.bootstrapServers is required (host:port[,host:port])" .Values.kafka.bootstrapServers -}}
{{- if gt (int .Values.replicaCount) (int .Values.inputPartitions) -}}
{{- fail (printf "replicaCount (%d) exceeds inputPartitions (%d): the extra workers would own no partition and never become ready" (int .Values.replicaCount) (int .Values.inputPartitions)) -}}
{{- end -}}
{{- if and .Values.keda.enabled (gt (int .Values.keda.maxReplicaCount) (int .Values.inputPartitions)) -}}
{{- fail (printf "keda.maxReplicaCount (%d) exceeds inputPartitions (%d)" (int .Values.keda.maxReplicaCount) (int .Values.inputPartitions)) -}}
{{- end -}}
{{- if and (include "revstream.sasl" .) (not .Values.existingSecret) -}}
{{- fail (printf "kafka.securityProtocol %s needs existingSecret (a Secret with the key %s)" .Values.kafka.securityProtocol .Values.kafka.sasl.passwordKey) -}}
{{- end -}}
{{- if and .Values.schemaRegistry.passwordKey (not .Values.existingSecret) -}}
{{- fail "schemaRegistry.passwordKey needs existingSecret" -}}
{{- end -}}
{{- end -}}

{{/* A key of the existing Secret as an env var. */}}
{{- define "revstream.secretEnv" -}}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ .key }}
{{- end -}}
