{{/*
Names, labels and the pieces every Chat4All pod shares. Templates pass a
dict: `root` is the top context ($), `component` the service
(gateway, router, status-consumer, store, connector, create-topics),
`platform` a connector's platform.
*/}}

{{- define "chat4all.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "chat4all.fullname" -}}
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

{{/* The name of a component's objects: <fullname>-<component>[-<platform>]. */}}
{{- define "chat4all.componentName" -}}
{{- $name := printf "%s-%s" (include "chat4all.fullname" .root) .component }}
{{- if .platform }}
{{- $name = printf "%s-%s" $name .platform }}
{{- end }}
{{- $name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "chat4all.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The version label: the image tag, made a valid label value. */}}
{{- define "chat4all.version" -}}
{{- regexReplaceAll "[^A-Za-z0-9_.-]" (.Values.image.tag | default .Chart.AppVersion) "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* What selects a component's pods; never changes for a release. */}}
{{- define "chat4all.selectorLabels" -}}
app.kubernetes.io/name: {{ include "chat4all.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- if .platform }}
chat4all.io/platform: {{ .platform }}
{{- end }}
{{- end }}

{{- define "chat4all.labels" -}}
{{ include "chat4all.selectorLabels" . }}
app.kubernetes.io/part-of: chat4all
app.kubernetes.io/version: {{ include "chat4all.version" .root | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ include "chat4all.chart" .root }}
{{- with .root.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* metadata: name and labels of a component's object. */}}
{{- define "chat4all.metadata" -}}
name: {{ include "chat4all.componentName" . }}
labels:
  {{- include "chat4all.labels" . | nindent 2 }}
{{- end }}

{{- define "chat4all.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "chat4all.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "chat4all.image" -}}
{{- $image := merge (dict) (.image | default dict) .root.Values.image }}
{{- printf "%s:%s" $image.repository ($image.tag | default .root.Chart.AppVersion) }}
{{- end }}

{{- define "chat4all.configName" -}}
{{- printf "%s-config" (include "chat4all.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "chat4all.storeAddr" -}}
{{- printf "http://%s:%d" (include "chat4all.componentName" (dict "root" . "component" "store")) (int .Values.store.port) }}
{{- end }}

{{- define "chat4all.listen" -}}
{{- $host := .root.Values.listenHost }}
{{- printf "%s:%d" $host (int .port) }}
{{- end }}

{{/* The enabled connectors, comma-separated, in a stable order. */}}
{{- define "chat4all.enabledPlatforms" -}}
{{- $enabled := list }}
{{- range $platform, $c := .Values.connectors }}
{{- if $c.enabled }}
{{- $enabled = append $enabled $platform }}
{{- end }}
{{- end }}
{{- join "," $enabled }}
{{- end }}

{{/*
Where the gateway reaches each enabled connector's adapter (its Connector
gRPC, for the calls that read a platform): `platform=uri,...`.
*/}}
{{- define "chat4all.connectorAddrs" -}}
{{- $addrs := list }}
{{- range $platform, $connector := .Values.connectors }}
{{- if $connector.enabled }}
{{- $c := include "chat4all.connectorConfig" (dict "root" $ "connector" $connector) | fromJson }}
{{- $service := include "chat4all.componentName" (dict "root" $ "component" "connector" "platform" $platform) }}
{{- $addrs = append $addrs (printf "%s=http://%s:%d" $platform $service (int $c.grpcPort)) }}
{{- end }}
{{- end }}
{{- join "," $addrs }}
{{- end }}

{{/*
A connector's settings as JSON (read with fromJson): the platform's own
entry over connectorDefaults, key by key (sprig's merge would turn an
explicit `enabled: false` back into the default's true).
*/}}
{{- define "chat4all.connectorConfig" -}}
{{- $defaults := .root.Values.connectorDefaults -}}
{{- $out := deepCopy $defaults -}}
{{- range $key, $value := .connector -}}
{{- if and (kindIs "map" $value) (kindIs "map" (index $defaults $key)) -}}
{{- $merged := deepCopy (index $defaults $key) -}}
{{- range $k, $v := $value }}{{ $_ := set $merged $k $v }}{{ end -}}
{{- $_ := set $out $key $merged -}}
{{- else -}}
{{- $_ := set $out $key $value -}}
{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end }}

{{/* An `env` map (name: value) as a list of EnvVars, in name order. */}}
{{- define "chat4all.envMap" -}}
{{- $env := list }}
{{- range $name, $value := . }}
{{- $env = append $env (dict "name" $name "value" (toString $value)) }}
{{- end }}
{{- toYaml $env }}
{{- end }}

{{/*
One Chat4All container. Keys: root, name, command (list), image (an
optional override of .Values.image), env (a list of EnvVars), extraEnv (an
`env` map), ports (a list of {name, port}), probePort (grpc.health.v1),
resources, volumeMounts, otelServiceName, metricsPort and metricsName (the
port's name, "metrics" unless two containers share the pod).
*/}}
{{- define "chat4all.container" -}}
{{- $root := .root -}}
- name: {{ .name }}
  image: {{ include "chat4all.image" (dict "root" $root "image" .image) | quote }}
  imagePullPolicy: {{ (.image | default dict).pullPolicy | default $root.Values.image.pullPolicy }}
  command:
    {{- toYaml .command | nindent 4 }}
  envFrom:
    - configMapRef:
        name: {{ include "chat4all.configName" $root }}
  env:
    - name: OTEL_SERVICE_NAME
      value: {{ .otelServiceName | quote }}
    - name: CHAT4ALL_METRICS_ADDR
      value: {{ include "chat4all.listen" (dict "root" $root "port" .metricsPort) | quote }}
    {{- with .env }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
    {{- with .extraEnv }}
    {{- include "chat4all.envMap" . | nindent 4 }}
    {{- end }}
  ports:
    {{- range .ports }}
    - name: {{ .name }}
      containerPort: {{ .port }}
      protocol: TCP
    {{- end }}
    - name: {{ .metricsName | default "metrics" }}
      containerPort: {{ .metricsPort }}
      protocol: TCP
  livenessProbe:
    grpc:
      port: {{ .probePort }}
    {{- toYaml $root.Values.probes.liveness | nindent 4 }}
  readinessProbe:
    grpc:
      port: {{ .probePort }}
    {{- toYaml $root.Values.probes.readiness | nindent 4 }}
  resources:
    {{- toYaml .resources | nindent 4 }}
  securityContext:
    {{- toYaml $root.Values.securityContext | nindent 4 }}
  {{- with .volumeMounts }}
  volumeMounts:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}

{{/* Pod metadata: labels, and a checksum so a config change rolls pods. */}}
{{- define "chat4all.podMetadata" -}}
labels:
  {{- include "chat4all.labels" . | nindent 2 }}
  {{- with .root.Values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
annotations:
  checksum/config: {{ include (print .root.Template.BasePath "/configmap.yaml") .root | sha256sum }}
  {{- with .root.Values.podAnnotations }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{/* Pod spec fields every Chat4All pod shares (before `containers:`). */}}
{{- define "chat4all.podCommon" -}}
{{- $values := .root.Values -}}
serviceAccountName: {{ include "chat4all.serviceAccountName" .root }}
automountServiceAccountToken: false
{{- with $values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml $values.podSecurityContext | nindent 2 }}
{{- with .terminationGracePeriodSeconds }}
terminationGracePeriodSeconds: {{ . }}
{{- end }}
{{- with $values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with $values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if $values.topologySpread }}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "chat4all.selectorLabels" . | nindent 8 }}
{{- end }}
{{- end }}

{{/*
A Deployment of one or more Chat4All containers. Keys: root, component,
platform (optional), values (the component's values: replicaCount,
autoscaling, terminationGracePeriodSeconds), containers (a list of dicts for
"chat4all.container"), recreate (one pod at a time, for a volume only one
may hold), volumes (optional).
*/}}
{{- define "chat4all.deployment" -}}
{{- $ctx := dict "root" .root "component" .component "platform" .platform -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  {{- include "chat4all.metadata" $ctx | nindent 2 }}
spec:
  {{- if .recreate }}
  replicas: 1
  {{- else if not .values.autoscaling.enabled }}
  replicas: {{ .values.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 5
  {{- if .recreate }}
  strategy:
    type: Recreate
  {{- else }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 1
      maxUnavailable: 0
  {{- end }}
  selector:
    matchLabels:
      {{- include "chat4all.selectorLabels" $ctx | nindent 6 }}
  template:
    metadata:
      {{- include "chat4all.podMetadata" $ctx | nindent 6 }}
    spec:
      {{- include "chat4all.podCommon" (merge (dict "terminationGracePeriodSeconds" .values.terminationGracePeriodSeconds) $ctx) | nindent 6 }}
      containers:
        {{- range .containers }}
        {{- include "chat4all.container" . | nindent 8 }}
        {{- end }}
      {{- with .volumes }}
      volumes:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end }}

{{/* A ClusterIP-style Service. Keys: root, component, platform, type, annotations, ports ({name, port, appProtocol}). */}}
{{- define "chat4all.service" -}}
{{- $ctx := dict "root" .root "component" .component "platform" .platform -}}
apiVersion: v1
kind: Service
metadata:
  {{- include "chat4all.metadata" $ctx | nindent 2 }}
  {{- with .annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ .type | default "ClusterIP" }}
  selector:
    {{- include "chat4all.selectorLabels" $ctx | nindent 4 }}
  ports:
    {{- range .ports }}
    - name: {{ .name }}
      port: {{ .port }}
      targetPort: {{ .name }}
      protocol: TCP
      {{- with .appProtocol }}
      appProtocol: {{ . }}
      {{- end }}
    {{- end }}
{{- end }}

{{/*
Every Deployment that may scale out, as a JSON list of {component, platform,
values} (read with fromJsonArray): what the HPAs and PDBs range over. The
embedded store is not among them: it is one pod on one volume.
*/}}
{{- define "chat4all.workloads" -}}
{{- $workloads := list
      (dict "component" "gateway" "values" .Values.gateway)
      (dict "component" "router" "values" .Values.router)
      (dict "component" "status-consumer" "values" .Values.statusConsumer) -}}
{{- if ne .Values.store.backend "embedded" -}}
{{- $workloads = append $workloads (dict "component" "store" "values" .Values.store) -}}
{{- end -}}
{{- range $platform, $connector := .Values.connectors -}}
{{- if $connector.enabled -}}
{{- $c := include "chat4all.connectorConfig" (dict "root" $ "connector" $connector) | fromJson -}}
{{- $workloads = append $workloads (dict "component" "connector" "platform" $platform "values" $c) -}}
{{- end -}}
{{- end -}}
{{- toJson $workloads -}}
{{- end }}
