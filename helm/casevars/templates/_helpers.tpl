{{/* Names and labels. */}}
{{- define "casevars.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "casevars.fullname" -}}
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

{{- define "casevars.instanceLabels" -}}
app.kubernetes.io/name: {{ include "casevars.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* The service's pods; the migration Job's pods carry component "migrate" instead. */}}
{{- define "casevars.selectorLabels" -}}
{{ include "casevars.instanceLabels" . }}
app.kubernetes.io/component: server
{{- end }}

{{/* Labels of every object, without a component. */}}
{{- define "casevars.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "casevars.instanceLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "casevars.labels" -}}
{{ include "casevars.commonLabels" . }}
app.kubernetes.io/component: server
{{- end }}

{{- define "casevars.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "casevars.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "casevars.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The Secret with DATABASE_URL and the S3 keys. */}}
{{- define "casevars.secretName" -}}
{{- default (include "casevars.fullname" .) .Values.secret.existingSecret }}
{{- end }}

{{/* The Secret with the auth files. */}}
{{- define "casevars.authSecretName" -}}
{{- default (printf "%s-auth" (include "casevars.fullname" .)) .Values.auth.existingSecret }}
{{- end }}

{{/* Where the auth Secret's files are mounted. */}}
{{- define "casevars.authDir" -}}/etc/casevars/auth{{- end }}

{{/*
The non-secret environment: `config` plus what the chart sets itself. Used by the
ConfigMap (service) and inline by the migration hook Job (which runs before the
ConfigMap exists). Values become strings (numbers through toJson, so that large ones
keep all their digits); empty ones are left out.
*/}}
{{- define "casevars.config" -}}
{{- $config := dict }}
{{- range $name, $value := .Values.config }}
{{- if kindIs "string" $value }}
{{- if $value }}
{{- $_ := set $config $name $value }}
{{- end }}
{{- else if not (kindIs "invalid" $value) }}
{{- $_ := set $config $name (toJson $value) }}
{{- end }}
{{- end }}
{{- if not (get $config "S3_ENDPOINT_URL") }}
{{- $region := default "us-east-1" (get $config "S3_REGION") }}
{{- $_ := set $config "S3_ENDPOINT_URL" (printf "https://s3.%s.amazonaws.com" $region) }}
{{- end }}
{{- $_ := set $config "CASEVARS_HOST" "0.0.0.0" }}
{{- $_ := set $config "CASEVARS_PORT" (toString .Values.containerPort) }}
{{- toYaml $config }}
{{- end }}

{{/* Environment entries read from the Secret: DATABASE_URL always, S3 keys if present. */}}
{{- define "casevars.secretEnv" -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .secretName }}
      key: DATABASE_URL
{{- range list "AWS_ACCESS_KEY_ID" "AWS_SECRET_ACCESS_KEY" }}
- name: {{ . }}
  valueFrom:
    secretKeyRef:
      name: {{ $.secretName }}
      key: {{ . }}
      optional: true
{{- end }}
{{- end }}

{{/* The Secret's data when the chart makes it. */}}
{{- define "casevars.secretData" -}}
DATABASE_URL: {{ .Values.secret.databaseUrl | b64enc | quote }}
{{- with .Values.secret.awsAccessKeyId }}
AWS_ACCESS_KEY_ID: {{ . | b64enc | quote }}
{{- end }}
{{- with .Values.secret.awsSecretAccessKey }}
AWS_SECRET_ACCESS_KEY: {{ . | b64enc | quote }}
{{- end }}
{{- end }}

{{/*
terminationGracePeriodSeconds: longer than the preStop sleep plus the service's own
shutdown grace, with 15 s left to close the Postgres pool and the S3 client.
*/}}
{{- define "casevars.shutdownGraceSeconds" -}}
{{- $grace := .Values.config.CASEVARS_SHUTDOWN_GRACE_SECONDS }}
{{- if kindIs "invalid" $grace }}{{ fail "config.CASEVARS_SHUTDOWN_GRACE_SECONDS must be set: the pod's termination grace period is derived from it" }}{{ end }}
{{- ceil (float64 $grace) | int }}
{{- end }}

{{- define "casevars.terminationGracePeriodSeconds" -}}
{{- $needed := add (int .Values.preStopSleepSeconds) (include "casevars.shutdownGraceSeconds" . | int) }}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds }}
{{- add $needed 15 }}
{{- else if le (int .Values.terminationGracePeriodSeconds) $needed }}
{{- fail (printf "terminationGracePeriodSeconds must be more than preStopSleepSeconds + CASEVARS_SHUTDOWN_GRACE_SECONDS (%d)" $needed) }}
{{- else }}
{{- .Values.terminationGracePeriodSeconds }}
{{- end }}
{{- end }}

{{/* Checks that no schema can express. */}}
{{- define "casevars.validate" -}}
{{- if .Values.auth.enabled }}
{{- if not (or .Values.auth.tokensKey .Values.auth.htpasswdKey) }}
{{- fail "auth.enabled needs auth.tokensKey or auth.htpasswdKey" }}
{{- end }}
{{- if and .Values.auth.htpasswdKey (not .Values.auth.existingSecret) }}
{{- fail "auth.htpasswdKey needs auth.existingSecret: the chart generates bearer tokens only" }}
{{- end }}
{{- end }}
{{- if and .Values.autoscaling.enabled (lt (int .Values.autoscaling.maxReplicas) (int .Values.autoscaling.minReplicas)) }}
{{- fail "autoscaling.maxReplicas must not be below autoscaling.minReplicas" }}
{{- end }}
{{- end }}

{{/* The pod-level settings shared by the Deployment and the migration Job. */}}
{{- define "casevars.podCommon" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
