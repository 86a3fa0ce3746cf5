{{/* Names and labels shared by every object of the chart. */}}
{{- define "weir.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "weir.labels" -}}
app.kubernetes.io/part-of: weir
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* weir.image: <registry>/<binary>:<tag>. Call with (dict "root" $ "binary" "weir-ingest"). */}}
{{- define "weir.image" -}}
{{- $tag := .root.Values.image.tag | default .root.Chart.AppVersion -}}
{{- printf "%s/%s:%s" .root.Values.image.registry .binary $tag -}}
{{- end -}}

{{- define "weir.secretName" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-secrets" (include "weir.fullname" .)) -}}
{{- end -}}

{{- define "weir.controlPlaneUrl" -}}
{{- printf "http://%s-control-plane:%v" (include "weir.fullname" .) .Values.controlPlane.port -}}
{{- end -}}

{{/* The bus section of the control plane's config. */}}
{{- define "weir.natsUrl" -}}
{{- if .Values.nats.url -}}
{{- .Values.nats.url -}}
{{- else if .Values.nats.enabled -}}
{{- printf "nats://%s-nats:4222" (include "weir.fullname" .) -}}
{{- end -}}
{{- end -}}

{{/* Sections every function's config has: storage and the link to the control plane. */}}
{{- define "weir.functionBase" -}}
storage:
{{ toYaml .Values.storage | indent 2 }}
control_plane:
  url: {{ include "weir.controlPlaneUrl" . }}
{{- end -}}

{{/* The environment every Weir container gets: credentials from the Secret. */}}
{{- define "weir.secretEnv" -}}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef: {name: {{ include "weir.secretName" . }}, key: aws-access-key-id, optional: true}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef: {name: {{ include "weir.secretName" . }}, key: aws-secret-access-key, optional: true}
{{- end -}}

{{- define "weir.podSecurity" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "weir.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: [ALL]
{{- end -}}
