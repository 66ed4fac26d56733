{{!--
Handlebars twin of charts/ray/templates/_helpers.tpl, used by `ray-operator
render`; keep the two alike, define for define. Each inline-partial block
is registered as the template NAME (like a Go `define`, with surrounding
whitespace trimmed) and rendered by `include NAME CONTEXT`.
--}}

{{!-- Labels that select the release's operator pods; never change them. --}}
{{#*inline "ray.selectorLabels"}}
app.kubernetes.io/name: ray
app.kubernetes.io/instance: {{Release.Name}}
{{/inline}}

{{!-- Labels of every object of the release. --}}
{{#*inline "ray.labels"}}
{{include "ray.selectorLabels" this}}
app.kubernetes.io/version: {{quote Chart.AppVersion}}
app.kubernetes.io/managed-by: {{Release.Service}}
helm.sh/chart: {{printf "%s-%s" Chart.Name Chart.Version}}
{{/inline}}

{{!--
Name of the operator's ServiceAccount, (Cluster)Role, binding and Deployment:
named after the release, so several releases can coexist.
--}}
{{#*inline "ray.operatorName"}}
{{~#if (contains "ray-operator" Release.Name)~}}
{{trimSuffix "-" (trunc 63 Release.Name)}}
{{~else~}}
{{trimSuffix "-" (trunc 63 (printf "%s-ray-operator" Release.Name))}}
{{~/if~}}
{{/inline}}

{{!--
What the schema cannot check. Every template includes it first. A number may
come as a string ("0.5" from --set): the schema checks its form, this its value.
(render's values::check refuses bad values before the templates run; the
checks stay here so the twins stay alike.)
--}}
{{#*inline "ray.validate"}}
{{#if (and Values.operatorOnly Values.clusterOnly)}}
{{fail "operatorOnly and clusterOnly cannot both be true: that installs nothing"}}
{{/if}}
{{!-- The legacy chart ran the Python operator from Ray's image. --}}
{{#with (imageRepository Values.operatorImage) as |operatorRepo|}}
{{#if (and (not @root.Values.clusterOnly) (or (eq operatorRepo "rayproject/ray") (hasSuffix "/rayproject/ray" operatorRepo)))}}
{{fail (printf "operatorImage: %q is Ray's image, not the operator's (a legacy values file?): set operatorImage to rayproject/ray-operator:%s" @root.Values.operatorImage @root.Chart.AppVersion)}}
{{/if}}
{{/with}}
{{#unless (hasKey Values.podTypes Values.headPodType)}}
{{fail (printf "headPodType: %q is not a key of podTypes" Values.headPodType)}}
{{/unless}}
{{#if (lte (float64 Values.upscalingSpeed) 0)}}
{{fail "upscalingSpeed: must be > 0"}}
{{/if}}
{{#if (gt (int64 Values.idleTimeoutMinutes) 2147483647)}}
{{fail "idleTimeoutMinutes: must be <= 2147483647"}}
{{/if}}
{{#each Values.podTypes as |pt name|}}
{{#if (gt (int64 pt.minWorkers) 2147483647)}}
{{fail (printf "podTypes.%s.minWorkers: must be <= 2147483647" name)}}
{{/if}}
{{#if (gt (int64 pt.maxWorkers) 2147483647)}}
{{fail (printf "podTypes.%s.maxWorkers: must be <= 2147483647" name)}}
{{/if}}
{{#if (and (hasKey pt "numCPU") (lte (float64 pt.numCPU) 0))}}
{{fail (printf "podTypes.%s.numCPU: must be > 0" name)}}
{{/if}}
{{#if (and (hasKey pt "CPU") (lte (float64 pt.CPU) 0))}}
{{fail (printf "podTypes.%s.CPU: must be > 0" name)}}
{{/if}}
{{#if (gt (int64 (default 0 pt.minWorkers)) (int64 (default 0 pt.maxWorkers)))}}
{{fail (printf "podTypes.%s.minWorkers (%d) must be <= podTypes.%s.maxWorkers (%d)" name (int64 pt.minWorkers) name (int64 (default 0 pt.maxWorkers)))}}
{{/if}}
{{/each}}
{{/inline}}

{{!-- The least the operator needs: RayClusters, their pods and head Services, Events, its leader Lease. --}}
{{#*inline "ray.operatorRules"}}
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
{{/inline}}

{{!--
The operator Deployment; takes the root context. A namespaced operator runs in
the release namespace, a cluster-scoped one in operatorNamespace.
--}}
{{#*inline "ray.operatorDeployment"}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{include "ray.operatorName" this}}
  namespace: {{#if Values.namespacedOperator}}{{Release.Namespace}}{{else}}{{Values.operatorNamespace}}{{/if}}
  labels:
    {{~nindent 4 (include "ray.labels" this)}}
    cluster.ray.io/component: operator
spec:
  replicas: 1
  selector:
    matchLabels:
      {{~nindent 6 (include "ray.selectorLabels" this)}}
      cluster.ray.io/component: operator
  template:
    metadata:
      labels:
        {{~nindent 8 (include "ray.labels" this)}}
        cluster.ray.io/component: operator
    spec:
      serviceAccountName: {{include "ray.operatorName" this}}
      {{#with Values.imagePullSecrets}}
      imagePullSecrets:
        {{~nindent 8 (toYaml this)}}
      {{/with}}
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        runAsGroup: 65532
        seccompProfile:
          type: RuntimeDefault
      containers:
        - name: ray-operator
          image: {{quote Values.operatorImage}}
          imagePullPolicy: {{Values.imagePullPolicy}}
          command: [ray-operator, run]
          args:
            - --health-port
            - "8080"
            - --log-format
            - {{Values.logFormat}}
            {{#if Values.allowGcsAddress}}
            - --allow-gcs-address=true
            {{/if}}
          env:
            - name: RUST_LOG
              value: {{quote Values.logLevel}}
            {{#if Values.namespacedOperator}}
            - name: RAY_OPERATOR_POD_NAMESPACE
              valueFrom:
                fieldRef:
                  fieldPath: metadata.namespace
            {{/if}}
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
            {{~nindent 12 (toYaml Values.operatorResources)}}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            runAsNonRoot: true
            capabilities:
              drop: [ALL]
            seccompProfile:
              type: RuntimeDefault
{{/inline}}
