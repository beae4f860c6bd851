// deploy/kubernetes/: rendered with `kubectl kustomize` (or, without kubectl, the base's files read directly),
// every object validated against the Kubernetes schemas (kubernetes-models), and the topology asserted: which pods
// each NetworkPolicy admits, probes, replicas, the stop sequence, the security context, the Secrets, the metrics
// port, and that nothing outside the cluster reaches the task service, Redis or PostgreSQL.
import t from 'tap'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { parseAllDocuments, parse } from 'yaml'
import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1'
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2'
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1'
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1'
import { ConfigMap, Namespace, Service } from 'kubernetes-models/v1'
import { loadConfig as loadGatewayConfig } from '../gateway/src/config.js'
import { loadConfig as loadTaskServiceConfig } from '../task-service/src/config.js'
import { fullGatewayEnvs, fullTaskServiceEnvs, keysRead, PENDING_KEYS } from './helpers/config-keys.js'

const root = new URL('../', import.meta.url)
const tree = new URL('deploy/kubernetes/', root)
const GATEWAY_CLOSE_GRACE_S = 10 // gateway/src/server.ts: closeWithGrace delay = drain + 10 s

type Obj = { apiVersion: string, kind: string, metadata: { name: string, namespace?: string, labels?: Record<string, string>, annotations?: Record<string, string> }, [key: string]: unknown }
interface LabelSelector { matchLabels?: Record<string, string>, matchExpressions?: { key: string, operator: string, values?: string[] }[] }
interface Container {
  name: string
  image: string
  ports?: { name?: string, containerPort: number }[]
  env?: { name: string, value?: string, valueFrom?: { secretKeyRef?: { name: string, key: string } } }[]
  envFrom?: { configMapRef?: { name: string }, secretRef?: { name: string } }[]
  readinessProbe?: { httpGet?: { path: string, port: string | number } }
  livenessProbe?: { httpGet?: { path: string, port: string | number } }
  lifecycle?: { preStop?: { exec?: { command: string[] }, sleep?: { seconds: number } } }
  resources?: { requests?: Record<string, string>, limits?: Record<string, string> }
  securityContext?: { allowPrivilegeEscalation?: boolean, readOnlyRootFilesystem?: boolean, runAsNonRoot?: boolean, capabilities?: { drop?: string[] } }
}
interface PodTemplate {
  metadata: { labels: Record<string, string>, annotations?: Record<string, string> }
  spec: { containers: Container[], terminationGracePeriodSeconds?: number, securityContext?: { runAsNonRoot?: boolean, runAsUser?: number }, automountServiceAccountToken?: boolean }
}
interface Workload extends Obj { spec: { replicas?: number, selector: LabelSelector, template: PodTemplate } }
interface Policy extends Obj {
  spec: {
    podSelector: LabelSelector
    policyTypes?: string[]
    ingress?: { from?: { podSelector?: LabelSelector, namespaceSelector?: LabelSelector, ipBlock?: unknown }[], ports?: { port?: number | string, protocol?: string }[] }[]
  }
}

// --- Rendering ----------------------------------------------------------------------------------------------

function kubectl (): boolean {
  try {
    execFileSync('kubectl', ['version', '--client'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}
const haveKubectl = kubectl()

function render (dir: string): Obj[] {
  const text = execFileSync('kubectl', ['kustomize', new URL(dir, tree).pathname], { encoding: 'utf8' })
  return parseAllDocuments(text).map((d) => d.toJS() as Obj).filter(Boolean)
}

/** Without kubectl: the base's resource files and its generated ConfigMaps (no hash suffix), as kustomize would list them. */
function readBase (): Obj[] {
  const kustomization = parse(readFileSync(new URL('base/kustomization.yaml', tree), 'utf8')) as {
    resources: string[], configMapGenerator: { name: string, literals: string[] }[], labels: { pairs: Record<string, string> }[]
  }
  const objects = kustomization.resources.flatMap((file) =>
    parseAllDocuments(readFileSync(new URL(`base/${file}`, tree), 'utf8')).map((d) => d.toJS() as Obj).filter(Boolean))
  for (const generator of kustomization.configMapGenerator) {
    const data = Object.fromEntries(generator.literals.map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]))
    objects.push({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: generator.name }, data })
  }
  return objects
}

const trees: [string, Obj[]][] = haveKubectl
  ? [['base', render('base')], ['overlays/example', render('overlays/example')]]
  : [['base (files read directly; no kubectl)', readBase()]]

// --- Schemas ------------------------------------------------------------------------------------------------

const MODELS: Record<string, new (data: never) => { validate: () => void }> = {
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'v1/ConfigMap': ConfigMap,
  'v1/Namespace': Namespace,
  'v1/Service': Service
}

// --- NetworkPolicy semantics (ingress) ----------------------------------------------------------------------

function selects (selector: LabelSelector | undefined, labels: Record<string, string>): boolean {
  if (selector === undefined) return true
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false
  for (const e of selector.matchExpressions ?? []) {
    const has = e.key in labels
    if (e.operator === 'In' && !(has && e.values!.includes(labels[e.key]!))) return false
    if (e.operator === 'NotIn' && has && e.values!.includes(labels[e.key]!)) return false
    if (e.operator === 'Exists' && !has) return false
    if (e.operator === 'DoesNotExist' && has) return false
  }
  return true
}

interface Peer { namespace: string, namespaceLabels: Record<string, string>, labels: Record<string, string> }
interface Target { namespace: string, labels: Record<string, string>, port: number, namedPorts: Record<string, number> }

/** Whether the NetworkPolicies of the target's namespace admit a TCP connection from peer to target (Kubernetes' rules). */
function admits (policies: Policy[], peer: Peer, target: Target): boolean {
  const applying = policies.filter((p) => (p.metadata.namespace ?? target.namespace) === target.namespace &&
    (p.spec.policyTypes ?? ['Ingress']).includes('Ingress') && selects(p.spec.podSelector, target.labels))
  if (applying.length === 0) return true // not isolated
  return applying.some((p) => (p.spec.ingress ?? []).some((rule) => {
    const portOk = rule.ports === undefined || rule.ports.length === 0 || rule.ports.some((port) =>
      (port.protocol ?? 'TCP') === 'TCP' && (port.port === undefined || port.port === target.port ||
        (typeof port.port === 'string' && target.namedPorts[port.port] === target.port)))
    const fromOk = rule.from === undefined || rule.from.length === 0 || rule.from.some((from) => {
      if (from.ipBlock !== undefined) return false // not a pod
      if (from.namespaceSelector === undefined) return peer.namespace === target.namespace && selects(from.podSelector, peer.labels)
      return selects(from.namespaceSelector, peer.namespaceLabels) && selects(from.podSelector, peer.labels)
    })
    return portOk && fromOk
  }))
}

// --- The assertions, per rendered tree ----------------------------------------------------------------------

for (const [name, objects] of trees) {
  t.test(name, async (t) => {
    const find = <T extends Obj>(kind: string, objName: string): T => {
      const found = objects.find((o) => o.kind === kind && (o.metadata.name === objName || o.metadata.name.startsWith(`${objName}-`)))
      if (!found) throw new Error(`${name}: no ${kind} ${objName}`)
      return found as T
    }
    const workloads = objects.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet') as Workload[]
    const policies = objects.filter((o) => o.kind === 'NetworkPolicy') as Policy[]
    const namespace = objects.find((o) => o.kind === 'Namespace')?.metadata.name ?? 'default'
    const podLabels = (workload: string): Record<string, string> => find<Workload>('Deployment', workload).spec.template.metadata.labels
    const configMap = (cmName: string): Record<string, string> => (find<Obj>('ConfigMap', cmName) as Obj & { data: Record<string, string> }).data

    t.test('every object validates against the Kubernetes schemas', async (t) => {
      t.ok(objects.length >= 12, `${objects.length} objects`)
      for (const o of objects) {
        const Model = MODELS[`${o.apiVersion}/${o.kind}`]
        if (!t.ok(Model, `${o.kind} ${o.metadata.name}: a known kind (${o.apiVersion})`)) continue
        t.doesNotThrow(() => new Model!(o as never).validate(), `${o.kind} ${o.metadata.name}`)
      }
      t.notOk(objects.some((o) => o.kind === 'Secret'), 'no Secret is committed (they are created by the operator)')
    })

    t.test('the gateway: replicas, probes, the stop sequence, resources, hardening', async (t) => {
      const gateway = find<Workload>('Deployment', 'gateway')
      t.ok((gateway.spec.replicas ?? 1) >= 2, 'at least 2 replicas')
      const pod = gateway.spec.template.spec
      const c = pod.containers[0]!
      const http = c.ports?.find((p) => p.name === 'http')?.containerPort
      t.equal(http, 8080)
      t.same(c.readinessProbe?.httpGet, { path: '/readyz', port: 'http' }, 'readiness on /readyz')
      t.same(c.livenessProbe?.httpGet, { path: '/healthz', port: 'http' }, 'liveness on /healthz')
      // preStop, then SIGTERM starts the drain, then the gateway's own close grace: all inside the grace period.
      const preStopS = c.lifecycle?.preStop?.sleep?.seconds ?? Number(c.lifecycle?.preStop?.exec?.command.join(' ').match(/^sleep (\d+)$/)?.[1])
      t.ok(preStopS > 0, `preStop waits ${preStopS} s for endpoints to drop the pod`)
      const drainMs = Number(configMap('todo-gateway').SHUTDOWN_DRAIN_MS)
      t.ok(drainMs > 0, `SHUTDOWN_DRAIN_MS ${drainMs}`)
      t.ok((pod.terminationGracePeriodSeconds ?? 30) >= preStopS + drainMs / 1000 + GATEWAY_CLOSE_GRACE_S,
        `terminationGracePeriodSeconds ${pod.terminationGracePeriodSeconds} ≥ ${preStopS} + ${drainMs / 1000} + ${GATEWAY_CLOSE_GRACE_S}`)
    })

    t.test('every workload: resources, non-root, read-only root, no privilege escalation, no API token', async (t) => {
      t.same(workloads.map((w) => w.metadata.name).sort(), haveKubectl && name.startsWith('overlays') ? ['gateway', 'postgres', 'redis', 'task-service'] : ['gateway', 'redis', 'task-service'])
      for (const w of workloads) {
        const pod = w.spec.template.spec
        t.equal(pod.automountServiceAccountToken, false, `${w.metadata.name}: no service account token`)
        t.equal(pod.securityContext?.runAsNonRoot, true, `${w.metadata.name}: runAsNonRoot`)
        t.ok((pod.securityContext?.runAsUser ?? 0) > 0, `${w.metadata.name}: a non-zero uid`)
        for (const c of pod.containers) {
          t.ok(c.resources?.requests?.cpu && c.resources.requests.memory, `${w.metadata.name}: requests`)
          t.ok(c.resources?.limits?.memory, `${w.metadata.name}: a memory limit`)
          t.equal(c.securityContext?.allowPrivilegeEscalation, false, `${w.metadata.name}: no privilege escalation`)
          t.equal(c.securityContext?.readOnlyRootFilesystem, true, `${w.metadata.name}: read-only root file system`)
          t.same(c.securityContext?.capabilities?.drop, ['ALL'], `${w.metadata.name}: all capabilities dropped`)
          t.ok(c.readinessProbe && c.livenessProbe, `${w.metadata.name}: readiness and liveness probes`)
        }
      }
      const task = find<Workload>('Deployment', 'task-service').spec.template.spec.containers[0]!
      t.same(task.readinessProbe?.httpGet, { path: '/readyz', port: 'http' })
      t.same(task.livenessProbe?.httpGet, { path: '/healthz', port: 'http' })
    })

    t.test('the HPA scales the gateway from at least 2, the PDB keeps it serving', async (t) => {
      const hpa = find<Obj & { spec: { scaleTargetRef: { kind: string, name: string }, minReplicas: number, maxReplicas: number } }>('HorizontalPodAutoscaler', 'gateway')
      t.same(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: 'gateway' })
      t.ok(hpa.spec.minReplicas >= 2 && hpa.spec.maxReplicas > hpa.spec.minReplicas)
      const pdb = find<Obj & { spec: { selector: LabelSelector, maxUnavailable?: number, minAvailable?: number } }>('PodDisruptionBudget', 'gateway')
      t.ok(selects(pdb.spec.selector, podLabels('gateway')), 'selects the gateway pods')
      t.notOk(selects(pdb.spec.selector, podLabels('task-service')), 'and no others')
      t.ok(pdb.spec.maxUnavailable === 1 || (pdb.spec.minAvailable ?? 0) >= 1)
      const gatewayContainer = find<Workload>('Deployment', 'gateway').spec.template.spec.containers[0]!
      t.ok(gatewayContainer.resources?.requests?.cpu, 'CPU requests, which the HPA measures against')
    })

    t.test('nothing outside the cluster reaches the task service, Redis or PostgreSQL', async (t) => {
      const services = objects.filter((o) => o.kind === 'Service') as (Obj & { spec: { type?: string, selector: Record<string, string> } })[]
      for (const s of services) {
        const exposed = s.spec.type === 'LoadBalancer' || s.spec.type === 'NodePort' || s.spec.type === 'ExternalName'
        const backsGateway = selects({ matchLabels: s.spec.selector }, podLabels('gateway'))
        if (exposed) t.ok(backsGateway, `${s.metadata.name} (${s.spec.type}) is the gateway's`)
      }
      t.equal(find<Obj & { spec: { type?: string } }>('Service', 'task-service').spec.type ?? 'ClusterIP', 'ClusterIP', 'task-service is ClusterIP')
      t.notOk(objects.some((o) => o.kind === 'Ingress' || o.kind === 'Route'), 'no Ingress')
      if (name.startsWith('overlays')) {
        const gw = find<Obj & { spec: { type?: string, externalTrafficPolicy?: string } }>('Service', 'gateway')
        t.equal(gw.spec.type, 'LoadBalancer')
        t.equal(gw.spec.externalTrafficPolicy, 'Local', 'client addresses kept for the per-IP limit')
      }
    })

    t.test('NetworkPolicies: the task service from gateway pods only, PostgreSQL from the task service only', async (t) => {
      const peer = (labels: Record<string, string>, ns = namespace): Peer => ({ namespace: ns, namespaceLabels: { 'kubernetes.io/metadata.name': ns }, labels })
      const gatewayPod = peer(podLabels('gateway'))
      const taskPod = peer(podLabels('task-service'))
      const redisPod = peer(podLabels('redis'))
      const strangerPod = peer({ app: 'debug-shell' })
      const foreignGateway = peer(podLabels('gateway'), 'other-team')
      const monitoring = peer({ 'app.kubernetes.io/name': 'prometheus' }, 'monitoring')
      const postgresLabels = { ...podLabels('task-service'), 'app.kubernetes.io/name': 'postgres', 'app.kubernetes.io/component': 'database' }
      const postgresPod = peer(postgresLabels)
      const target = (labels: Record<string, string>, port: number): Target => ({ namespace, labels, port, namedPorts: {} })

      const task = target(podLabels('task-service'), 3001)
      t.ok(admits(policies, gatewayPod, task), 'gateway → task-service:3001 admitted')
      for (const [who, p] of [['redis', redisPod], ['postgres', postgresPod], ['another task-service', taskPod], ['any other pod', strangerPod],
        ['a gateway-labelled pod of another namespace', foreignGateway], ['the monitoring namespace', monitoring]] as const) {
        t.notOk(admits(policies, p, task), `${who} → task-service:3001 refused`)
      }
      t.notOk(admits(policies, gatewayPod, target(podLabels('task-service'), 9464)), 'gateway → task-service metrics refused')
      t.ok(admits(policies, monitoring, target(podLabels('task-service'), 9464)), 'monitoring → task-service metrics admitted')

      const pg = target(postgresLabels, 5432)
      t.ok(admits(policies, taskPod, pg), 'task-service → postgres:5432 admitted')
      for (const [who, p] of [['gateway', gatewayPod], ['redis', redisPod], ['any other pod', strangerPod], ['monitoring', monitoring]] as const) {
        t.notOk(admits(policies, p, pg), `${who} → postgres:5432 refused`)
      }

      const redis = target(podLabels('redis'), 6379)
      t.ok(admits(policies, gatewayPod, redis), 'gateway → redis admitted')
      t.notOk(admits(policies, taskPod, redis), 'task-service → redis refused')
      t.notOk(admits(policies, strangerPod, redis), 'any other pod → redis refused')

      t.ok(admits(policies, peer({ any: 'client' }, 'elsewhere'), target(podLabels('gateway'), 8080)), 'anyone → gateway:8080 admitted (the public endpoint)')
      t.notOk(admits(policies, strangerPod, target(podLabels('gateway'), 9464)), 'gateway metrics only from monitoring')
      t.notOk(admits(policies, strangerPod, target({ 'app.kubernetes.io/name': 'something-new' }, 80)), 'default deny for any other pod')
    })

    t.test('Secrets and settings: each service gets its own, and its config accepts them', async (t) => {
      const envFrom = (workload: string): { configMaps: string[], secrets: string[] } => {
        const c = find<Workload>('Deployment', workload).spec.template.spec.containers[0]!
        return {
          configMaps: (c.envFrom ?? []).flatMap((e) => e.configMapRef ? [e.configMapRef.name] : []),
          secrets: (c.envFrom ?? []).flatMap((e) => e.secretRef ? [e.secretRef.name] : [])
        }
      }
      t.same(envFrom('gateway').secrets, ['todo-gateway'])
      t.same(envFrom('task-service').secrets, ['todo-task-service'])
      const docs = readFileSync(new URL('docs/deployment.md', root), 'utf8')
      for (const secret of ['todo-gateway', 'todo-task-service']) t.match(docs, `create secret generic ${secret}`, `docs say how to create ${secret}`)
      t.match(docs, /`todo-postgres`[^\n]*\n?[^\n]*POSTGRES_PASSWORD|POSTGRES_PASSWORD[^|]*`todo-postgres`|`todo-postgres` Secret/, 'and todo-postgres')

      // The ConfigMap plus what the docs put in the Secret make a configuration the service starts with.
      const gatewayCm = configMap(envFrom('gateway').configMaps[0]!.replace(/-[a-z0-9]{10}$/, ''))
      const gatewayEnv = { ...gatewayCm, BETTER_AUTH_SECRET: 'a-secret-of-at-least-thirty-two-bytes!!', GATEWAY_ASSERTION_PRIVATE_KEY: fullGatewayEnvs[0]!.GATEWAY_ASSERTION_PRIVATE_KEY, JWT_AUDIENCE: gatewayCm.JWT_AUDIENCE || 'https://app.example.com' }
      const gatewayConfig = loadGatewayConfig(gatewayEnv)
      t.equal(gatewayConfig.port, 8080)
      t.equal(gatewayConfig.host, '0.0.0.0')
      t.equal(gatewayConfig.taskServiceUrl, 'http://task-service:3001')
      t.equal(gatewayConfig.limits?.rateLimit.redisUrl, 'redis://redis:6379', 'limits shared in Redis')
      const taskCm = configMap(envFrom('task-service').configMaps[0]!.replace(/-[a-z0-9]{10}$/, ''))
      const taskConfig = loadTaskServiceConfig({ ...taskCm, GATEWAY_ASSERTION_PUBLIC_KEY: fullTaskServiceEnvs[0]!.GATEWAY_ASSERTION_PUBLIC_KEY, DATABASE_URL: 'postgres://todo:p%2Fw@db:5432/tasks' })
      t.equal(taskConfig.port, 3001)
      t.equal(taskConfig.host, '0.0.0.0')
      // Every key in a ConfigMap is a setting its service reads (or one being wired in).
      const gatewayKeys = new Set([...keysRead(loadGatewayConfig, fullGatewayEnvs), ...PENDING_KEYS.gateway])
      for (const key of Object.keys(gatewayCm)) t.ok(gatewayKeys.has(key), `gateway ConfigMap: ${key} is a gateway setting`)
      const taskKeys = new Set([...keysRead(loadTaskServiceConfig, fullTaskServiceEnvs), ...PENDING_KEYS['task-service']])
      for (const key of Object.keys(taskCm)) t.ok(taskKeys.has(key), `task-service ConfigMap: ${key} is a task-service setting`)
      t.equal(taskCm.ALLOWED_HOSTS, new URL(gatewayCm.TASK_SERVICE_URL!).host, 'the task service answers to the host the gateways call')

      if (name.startsWith('overlays')) {
        const env = find<Workload>('Deployment', 'task-service').spec.template.spec.containers[0]!.env ?? []
        const password = env.find((e) => e.name === 'PGPASSWORD')
        t.same(password?.valueFrom?.secretKeyRef, { name: 'todo-postgres', key: 'POSTGRES_PASSWORD' }, 'in-cluster PostgreSQL: the password from its Secret, as PGPASSWORD')
        const url = new URL(env.find((e) => e.name === 'DATABASE_URL')?.value ?? 'x:')
        t.equal(url.password, '', 'no password inside the URL')
        t.equal(url.hostname, 'postgres')
        const pgEnv = find<Workload>('StatefulSet', 'postgres').spec.template.spec.containers[0]!.env ?? []
        t.same(pgEnv.find((e) => e.name === 'POSTGRES_PASSWORD')?.valueFrom?.secretKeyRef, { name: 'todo-postgres', key: 'POSTGRES_PASSWORD' })
        t.match(find<Workload>('StatefulSet', 'postgres').spec.template.spec.containers[0]!.image, /^postgres:15-/, 'PostgreSQL 15, as compose and CI')
      }
    })

    t.test('metrics: annotated port = the container port named metrics = METRICS_PORT, never on a Service', async (t) => {
      for (const workload of ['gateway', 'task-service']) {
        const template = find<Workload>('Deployment', workload).spec.template
        const annotations = template.metadata.annotations ?? {}
        const metricsPort = template.spec.containers[0]!.ports?.find((p) => p.name === 'metrics')?.containerPort
        t.equal(annotations['prometheus.io/scrape'], 'true', `${workload}: scrape`)
        t.equal(Number(annotations['prometheus.io/port']), metricsPort, `${workload}: annotated port`)
        t.equal(annotations['prometheus.io/path'], '/metrics')
        t.equal(Number(configMap(`todo-${workload}`).METRICS_PORT), metricsPort, `${workload}: METRICS_PORT`)
      }
      const services = objects.filter((o) => o.kind === 'Service') as (Obj & { spec: { ports: { port: number, targetPort?: string | number }[] } })[]
      t.notOk(services.some((s) => s.spec.ports.some((p) => p.targetPort === 'metrics' || p.port === 9464)), 'no Service exposes the metrics port')
    })
  })
}
