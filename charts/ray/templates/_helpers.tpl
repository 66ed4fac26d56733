{{/*
Helpers of the ray chart. templates/_helpers.tpl at the repository root is the
handlebars twin `ray-operator render` uses; keep the two alike, define for define.
*/}}

{{/* Labels that select the release's operator pods; never change them. */}}
{{- define "ray.selectorLabels" -}}
app.kubernetes.io/name: ray
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of every object of the release. */}}
{{- define "ray.labels" -}}
{{ include "ray.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{/*
Name of the operator's ServiceAccount, (Cluster)Role, binding and Deployment:
named after the release, so several releases can coexist.
*/}}
{{- define "ray.operatorName" -}}
{{- if contains "ray-operator" .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-ray-operator" .Release.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/*
What the schema cannot check. Every template includes it first. A number may
come as a string ("0.5" from --set): the schema checks its form, this its value.
*/}}
{{- define "ray.validate" -}}
{{- if and .Values.operatorOnly .Values.clusterOnly }}
{{- fail "operatorOnly and clusterOnly cannot both be true: that installs nothing" }}
{{- end }}
{{- /* The legacy chart ran the Python operator from Ray's image. */}}
{{- $operatorRepo := regexReplaceAll "(:[^/:@]*)?(@.*)?$" .Values.operatorImage "" }}
{{- if and (not .Values.clusterOnly) (or (eq $operatorRepo "rayproject/ray") (hasSuffix "/rayproject/ray" $operatorRepo)) }}
{{- fail (printf "operatorImage: %q is Ray's image, not the operator's (a legacy values file?): set operatorImage to rayproject/ray-operator:%s" .Values.operatorImage .Chart.AppVersion) }}
{{- end }}
{{- if not (hasKey .Values.podTypes .Values.headPodType) }}
{{- fail (printf "headPodType: %q is not a key of podTypes" .Values.headPodType) }}
{{- end }}
{{- if le (float64 .Values.upscalingSpeed) 0.0 }}
{{- fail "upscalingSpeed: must be > 0" }}
{{- end }}
{{- if gt (int64 .Values.idleTimeoutMinutes) 2147483647 }}
{{- fail "idleTimeoutMinutes: must be <= 2147483647" }}
{{- end }}
{{- range $name, $pt := .Values.podTypes }}
{{- if gt (int64 $pt.minWorkers) 2147483647 }}
{{- fail (printf "podTypes.%s.minWorkers: must be <= 2147483647" $name) }}
{{- end }}
{{- if gt (int64 $pt.maxWorkers) 2147483647 }}
{{- fail (printf "podTypes.%s.maxWorkers: must be <= 2147483647" $name) }}
{{- end }}
{{- if and (hasKey $pt "numCPU") (le (float64 $pt.numCPU) 0.0) }}
{{- fail (printf "podTypes.%s.numCPU: must be > 0" $name) }}
{{- end }}
{{- if and (hasKey $pt "CPU") (le (float64 $pt.CPU) 0.0) }}
{{- fail (printf "podTypes.%s.CPU: must be > 0" $name) }}
{{- end }}
{{- if gt (int64 ($pt.minWorkers | default 0)) (int64 ($pt.maxWorkers | default 0)) }}
{{- fail (printf "podTypes.%s.minWorkers (%d) must be <= podTypes.%s.maxWorkers (%d)" $name (int64 $pt.minWorkers) $name (int64 ($pt.maxWorkers | default 0))) }}
{{- end }}
{{- end }}
{{- end }}

{{/* The least the operator needs: RayClusters, their pods and head Services, Events, its leader Lease. */}}
{{- define "ray.operatorRules" -}}
- apiGroups: [cluster.ray.io]
  resources: [rayclusters]
  verbs: [get, list, watch, patch, update]
- apiGroups: [cluster.ray.io]
  resources: [rayclusters/status]
  verbs: [get, patch, update]
# Owner references with blockOwnerDeletion need this where the
# OwnerReferencesPermissionEnforcement admission plugin runs (OpenShift).
- apiGroups: [cluster.ray.io]
  resources: [rayclusters/finalizers]
  verbs: [update]
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, create, delete, patch]
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [get, list, watch, create, update, patch, delete]
{{- end }}

{{/*
The operator Deployment; takes the root context. A namespaced operator runs in
the release namespace, a cluster-scoped one in operatorNamespace.
*/}}
{{- define "ray.operatorDeployment" -}}
{{- $root := . -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "ray.operatorName" $root }}
  namespace: {{ if .Values.namespacedOperator }}{{ .Release.Namespace }}{{ else }}{{ .Values.operatorNamespace }}{{ end }}
  labels:
    {{- include "ray.labels" $root | nindent 4 }}
    cluster.ray.io/component: operator
spec:
  replicas: 1
  selector:
    matchLabels:
      {{- include "ray.selectorLabels" $root | nindent 6 }}
      cluster.ray.io/component: operator
  template:
    metadata:
      labels:
        {{- include "ray.labels" $root | nindent 8 }}
        cluster.ray.io/component: operator
    spec:
      serviceAccountName: {{ include "ray.operatorName" $root }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        runAsGroup: 65532
        seccompProfile:
          type: RuntimeDefault
      containers:
        - name: ray-operator
          image: {{ $root.Values.operatorImage | quote }}
          imagePullPolicy: {{ $root.Values.imagePullPolicy }}
          command: [ray-operator, run]
          args:
            - --health-port
            - "8080"
            - --log-format
            - {{ $root.Values.logFormat }}
            {{- if $root.Values.allowGcsAddress }}
            - --allow-gcs-address=true
            {{- end }}
          env:
            - name: RUST_LOG
              value: {{ $root.Values.logLevel | quote }}
            {{- if .Values.namespacedOperator }}
            - name: RAY_OPERATOR_POD_NAMESPACE
              valueFrom:
                fieldRef:
                  fieldPath: metadata.namespace
            {{- end }}
          ports:
            - name: health
              containerPort: 8080
          livenessProbe:
            httpGet:
              path: /healthz
              port: health
            periodSeconds: 10
          readinessProbe:
            httpGet:
              path: /readyz
              port: health
            periodSeconds: 5
          resources:
            {{- toYaml $root.Values.operatorResources | nindent 12 }}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            runAsNonRoot: true
            capabilities:
              drop: [ALL]
            seccompProfile:
              type: RuntimeDefault
{{- end }}
