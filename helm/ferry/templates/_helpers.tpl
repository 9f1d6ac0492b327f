{{/* Names, labels and the few values derived from others, in one place. */}}

{{- define "ferry.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "ferry.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "ferry.labels" -}}
{{ include "ferry.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The image of the operator and of Ferry's containers in task pods: always the same one. */}}
{{- define "ferry.image" -}}
{{- $image := .Values.image -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $image.repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $image.repository (default .Chart.AppVersion $image.tag) -}}
{{- end -}}
{{- end -}}

{{- define "ferry.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "ferry.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Empty when task pods use their namespace's default ServiceAccount. */}}
{{- define "ferry.taskServiceAccountName" -}}
{{- if .Values.taskServiceAccount.create -}}
{{- default (printf "%s-task" (include "ferry.fullname" .)) .Values.taskServiceAccount.name -}}
{{- else -}}
{{- .Values.taskServiceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The namespaces that run workflows, as a JSON list (templates read it with fromJsonArray). */}}
{{- define "ferry.workflowNamespaces" -}}
{{- if .Values.workflowNamespaces -}}
{{- .Values.workflowNamespaces | uniq | toJson -}}
{{- else -}}
{{- list .Release.Namespace | toJson -}}
{{- end -}}
{{- end -}}

{{- define "ferry.devObjectStoreName" -}}
{{- printf "%s-objectstore" (include "ferry.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The Secret task pods read storage credentials from, in the workflow's namespace. */}}
{{- define "ferry.storageSecret" -}}
{{- if .Values.storage.existingSecret -}}
{{- .Values.storage.existingSecret -}}
{{- else if .Values.devObjectStore.enabled -}}
{{- include "ferry.devObjectStoreName" . -}}
{{- end -}}
{{- end -}}

{{- define "ferry.bucket" -}}
{{- if .Values.storage.bucket -}}
{{- .Values.storage.bucket -}}
{{- else if .Values.devObjectStore.enabled -}}
{{- .Values.devObjectStore.bucket -}}
{{- else -}}
{{- fail "storage.bucket is required: the bucket Ferry publishes task outputs to (or set devObjectStore.enabled=true to try Ferry with a small MinIO made by the chart)" -}}
{{- end -}}
{{- end -}}

{{- define "ferry.rawDataPrefix" -}}
{{- $prefix := trimAll "/" .Values.storage.prefix -}}
{{- if $prefix -}}
{{- printf "s3://%s/%s" (include "ferry.bucket" .) $prefix -}}
{{- else -}}
{{- printf "s3://%s" (include "ferry.bucket" .) -}}
{{- end -}}
{{- end -}}

{{/* Environment of Ferry's containers in task pods (FERRY_OPERATOR_STORAGE_ENV), as JSON. */}}
{{- define "ferry.storageEnv" -}}
{{- $env := dict -}}
{{- $endpoint := .Values.storage.endpoint -}}
{{- $style := .Values.storage.addressingStyle -}}
{{- if and .Values.devObjectStore.enabled (not $endpoint) -}}
{{- $endpoint = printf "http://%s.%s.svc:%d" (include "ferry.devObjectStoreName" .) .Release.Namespace (int .Values.devObjectStore.port) -}}
{{- $style = default "path" $style -}}
{{- end -}}
{{- with $endpoint }}{{ $_ := set $env "FERRY_S3_ENDPOINT_URL" . }}{{ end -}}
{{- with .Values.storage.region }}{{ $_ := set $env "FERRY_S3_REGION" . }}{{ end -}}
{{- with .Values.storage.roleArn }}{{ $_ := set $env "FERRY_S3_ROLE_ARN" . }}{{ end -}}
{{- with $style }}{{ $_ := set $env "FERRY_S3_ADDRESSING_STYLE" . }}{{ end -}}
{{- range $name, $value := .Values.storage.extraEnv }}{{ $_ := set $env $name (toString $value) }}{{ end -}}
{{- toJson $env -}}
{{- end -}}

{{- /* storage.namespaces as the operator's FERRY_OPERATOR_NAMESPACES: each namespace's folder
(s3://<bucket>/<prefix>, the bucket defaulting to storage.bucket) and Secret. */ -}}
{{- define "ferry.namespaceStorage" -}}
{{- $all := dict -}}
{{- range $namespace, $own := .Values.storage.namespaces -}}
{{- $entry := dict -}}
{{- if or $own.bucket $own.prefix -}}
{{- $bucket := default $.Values.storage.bucket $own.bucket -}}
{{- if not $bucket }}{{ fail (printf "storage.namespaces.%s.bucket: required when storage.bucket is empty" $namespace) }}{{ end -}}
{{- $_ := set $entry "raw_data_prefix" (trimSuffix "/" (printf "s3://%s/%s" $bucket (trimAll "/" (default "" $own.prefix)))) -}}
{{- end -}}
{{- with $own.existingSecret }}{{ $_ := set $entry "storage_secret" . }}{{ end -}}
{{- $_ := set $all $namespace $entry -}}
{{- end -}}
{{- toJson $all -}}
{{- end -}}
