// check-chart.mjs — the chart checks that need no helm and no cluster
// (make chart-check runs them through tools/ci/chart-check.sh):
//
//   node check-chart.mjs values SCHEMA.json VALUES.json...
//       each values document (the coalesced values helmrender wrote) is
//       valid against the chart's values.schema.json (Ajv, JSON Schema
//       draft-07, as Helm validates values before rendering);
//   node check-chart.mjs manifests RENDERED.yaml...
//       every document parses as YAML (duplicate keys are errors) and is a
//       valid Kubernetes object of its apiVersion/kind by the API schemas of
//       the kubernetes-models packages (core, apps, policy; KEDA;
//       prometheus-operator), with no field its type does not declare
//       (strictFields: TypeScript's excess-property check on the same
//       packages' types); an unknown apiVersion/kind is an error; no
//       two objects share kind and name; and the rules the chart promises
//       hold (StatefulSet: podManagementPolicy Parallel, a
//       volumeClaimTemplate mounted, enableServiceLinks false,
//       group.instance.id from metadata.name, probes on /healthz and
//       /readyz by a declared port, non-root with a read-only root
//       filesystem and an emptyDir /tmp; every Service, PDB and
//       ServiceMonitor selects what the chart deploys; every referenced
//       volume and ConfigMap exists);
//   node check-chart.mjs worker-config RENDERED.yaml DIR
//       writes the worker's ConfigMap files and container environment to DIR
//       (chart-check.sh then runs `revstream worker --check` on them).
//
// Prints one line per problem ("FILE: Kind/name: message") and exits 1 if
// there is any; prints a summary line and exits 0 otherwise.
import fs from "node:fs";
import Ajv from "ajv";
import addFormats from "ajv-formats";
import { parseAllDocuments } from "yaml";
import { spawnSync } from "node:child_process";
import os from "node:os";
import nodePath from "node:path";
import { fileURLToPath } from "node:url";

const HERE = nodePath.dirname(fileURLToPath(import.meta.url));

const problems = [];
const bad = (where, msg) => problems.push(`${where}: ${msg}`);

function checkValues(schemaFile, valueFiles) {
  const ajv = new Ajv({ allErrors: true, strict: false });
  addFormats(ajv);
  const validate = ajv.compile(JSON.parse(fs.readFileSync(schemaFile, "utf8")));
  for (const f of valueFiles) {
    const v = JSON.parse(fs.readFileSync(f, "utf8"));
    if (!validate(v))
      for (const e of validate.errors)
        bad(f, `values${e.instancePath || ""} ${e.message}${e.params && e.params.additionalProperty ? ` (${e.params.additionalProperty})` : ""}`);
  }
  return valueFiles.length;
}

const MODELS = {
  v1: (k) => `kubernetes-models/v1/${k}`,
  "apps/v1": (k) => `kubernetes-models/apps/v1/${k}`,
  "policy/v1": (k) => `kubernetes-models/policy/v1/${k}`,
  "keda.sh/v1alpha1": (k) => `@kubernetes-models/keda/keda.sh/v1alpha1/${k}`,
  "monitoring.coreos.com/v1": (k) =>
    `@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/${k}`,
};

async function model(apiVersion, kind) {
  const path = MODELS[apiVersion];
  if (!path || !/^[A-Z][A-Za-z]+$/.test(kind || "")) return null;
  try {
    const mod = await import(path(kind));
    return mod[kind] || null;
  } catch {
    return null;
  }
}

// Unknown fields: the API schemas above accept any extra key (as the API
// server does unless asked to be strict), so a misspelt field
// (readinesProbe) would pass. kubeconform -strict refuses them; here the
// TypeScript compiler does, from the same packages' type declarations: each
// object becomes an object literal of its kind's interface, and tsc's
// excess-property check names every field the type does not have.
function strictFields(objs) {
  const dir = fs.mkdtempSync(nodePath.join(os.tmpdir(), "rs-chart-strict-"));
  try {
    fs.symlinkSync(nodePath.join(HERE, "node_modules"), nodePath.join(dir, "node_modules"));
    const lines = [];
    const where = [];
    const imports = new Map();
    for (const { f, o } of objs) {
      const mod = MODELS[o.apiVersion] && MODELS[o.apiVersion](o.kind);
      if (!mod) continue;
      const type = `T${imports.size}`;
      if (!imports.has(mod)) imports.set(mod, type);
      where.push(`${f}: ${o.kind}/${o.metadata && o.metadata.name}`);
      lines.push(`export const m${lines.length}: ${imports.get(mod)} = ${JSON.stringify(o)};`);
    }
    const head = [...imports].map(([mod, type]) => `import type { I${mod.split("/").pop()} as ${type} } from "${mod}";`);
    fs.writeFileSync(nodePath.join(dir, "manifests.ts"), [...head, ...lines].join("\n") + "\n");
    const tsc = nodePath.join(HERE, "node_modules", "typescript", "bin", "tsc");
    const r = spawnSync(process.execPath, [tsc, "--noEmit", "--strict", "--skipLibCheck",
      "--module", "nodenext", "--moduleResolution", "nodenext", "--target", "es2022",
      "--pretty", "false", nodePath.join(dir, "manifests.ts")], { encoding: "utf8" });
    for (const line of (r.stdout || "").split("\n").filter(Boolean)) {
      const m = line.match(/manifests\.ts\((\d+),\d+\): error TS\d+: (.*)/);
      if (m && Number(m[1]) > head.length) bad(where[Number(m[1]) - head.length - 1], `unknown or mistyped field: ${m[2]}`);
      else bad("tsc", line);
    }
    if (r.status !== 0 && !(r.stdout || "").trim()) bad("tsc", `failed: ${r.stderr || r.error}`);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const matches = (selector, labels) =>
  Object.entries(selector || {}).every(([k, v]) => (labels || {})[k] === v);

function statefulSetRules(where, o, byKind) {
  const s = o.spec || {};
  const pod = (s.template && s.template.spec) || {};
  const podLabels = (s.template && s.template.metadata && s.template.metadata.labels) || {};
  if (s.podManagementPolicy !== "Parallel") bad(where, "podManagementPolicy is not Parallel");
  if (pod.enableServiceLinks !== false) bad(where, "enableServiceLinks is not false");
  if (!matches(s.selector && s.selector.matchLabels, podLabels))
    bad(where, "selector does not match the pod template's labels");
  const claims = (s.volumeClaimTemplates || []).map((c) => c.metadata && c.metadata.name);
  if (claims.length === 0) bad(where, "no volumeClaimTemplates (RocksDB needs a volume per pod)");
  const vols = new Map((pod.volumes || []).map((v) => [v.name, v]));
  const psc = pod.securityContext || {};
  if (psc.runAsNonRoot !== true) bad(where, "pod securityContext.runAsNonRoot is not true");
  for (const v of vols.values())
    if (v.configMap && !byKind.ConfigMap.has(v.configMap.name))
      bad(where, `volume ${v.name}: ConfigMap ${v.configMap.name} is not in the chart`);
  for (const c of pod.containers || []) {
    const cw = `${where} container ${c.name}`;
    const sc = c.securityContext || {};
    if (sc.readOnlyRootFilesystem !== true) bad(cw, "readOnlyRootFilesystem is not true");
    if (sc.allowPrivilegeEscalation !== false) bad(cw, "allowPrivilegeEscalation is not false");
    const mounts = c.volumeMounts || [];
    for (const m of mounts)
      if (!vols.has(m.name) && !claims.includes(m.name))
        bad(cw, `volumeMount ${m.name}: no such volume or claim`);
    if (!mounts.some((m) => claims.includes(m.name))) bad(cw, "the state claim is not mounted");
    const tmp = mounts.find((m) => m.mountPath === "/tmp");
    if (!tmp || !(vols.get(tmp.name) || {}).emptyDir) bad(cw, "/tmp is not an emptyDir");
    const gid = (c.env || []).find((e) => e.name === "REVSTREAM_GROUP_INSTANCE_ID");
    const ref = gid && gid.valueFrom && gid.valueFrom.fieldRef;
    if (!ref || ref.fieldPath !== "metadata.name")
      bad(cw, "REVSTREAM_GROUP_INSTANCE_ID is not the pod name (fieldRef metadata.name)");
    const ports = new Set((c.ports || []).flatMap((p) => [p.name, p.containerPort]));
    const want = { startupProbe: "/healthz", livenessProbe: "/healthz", readinessProbe: "/readyz" };
    for (const [probe, path] of Object.entries(want)) {
      const g = c[probe] && c[probe].httpGet;
      if (!g) bad(cw, `no ${probe}`);
      else if (g.path !== path) bad(cw, `${probe} is on ${g.path}, not ${path}`);
      else if (!ports.has(g.port)) bad(cw, `${probe} port ${g.port} is not a container port`);
    }
  }
  return { podLabels, ports: new Set((pod.containers || []).flatMap((c) => (c.ports || []).flatMap((p) => [p.name, p.containerPort]))) };
}

async function checkManifests(files) {
  let n = 0;
  const objs = [];
  for (const f of files) {
    for (const doc of parseAllDocuments(fs.readFileSync(f, "utf8"), { uniqueKeys: true })) {
      if (doc.errors.length) {
        for (const e of doc.errors) bad(f, `YAML: ${e.message}`);
        continue;
      }
      const o = doc.toJS();
      if (o === null || o === undefined) continue;
      const src = (doc.commentBefore || "").match(/Source: (\S+)/);
      objs.push({ f: src ? src[1] : f, o });
    }
  }
  const byKind = { ConfigMap: new Set() };
  const seen = new Set();
  for (const { f, o } of objs) {
    const id = `${o.kind}/${o.metadata && o.metadata.name}`;
    if (seen.has(id)) bad(f, `${id}: defined twice`);
    seen.add(id);
    if (o.kind === "ConfigMap") byKind.ConfigMap.add(o.metadata.name);
  }
  let sts = null;
  for (const { f, o } of objs) {
    const where = `${f}: ${o.kind}/${o.metadata && o.metadata.name}`;
    const M = await model(o.apiVersion, o.kind);
    if (!M) {
      bad(where, `unknown apiVersion/kind ${o.apiVersion}/${o.kind}`);
      continue;
    }
    try {
      new M(o).validate();
    } catch (e) {
      bad(where, `API schema: ${String(e.message || e).split("\n").join("; ")}`);
    }
    n++;
    if (o.kind === "StatefulSet") sts = statefulSetRules(where, o, byKind);
  }
  strictFields(objs);
  if (!sts) bad(files.join(","), "no StatefulSet rendered");
  else
    for (const { f, o } of objs) {
      const where = `${f}: ${o.kind}/${o.metadata.name}`;
      const s = o.spec || {};
      if (o.kind === "Service") {
        if (!matches(s.selector, sts.podLabels) || !s.selector) bad(where, "selector does not select the worker pods");
        for (const p of s.ports || [])
          if (!sts.ports.has(p.targetPort)) bad(where, `targetPort ${p.targetPort} is not a container port`);
      }
      if (o.kind === "PodDisruptionBudget" && !matches(s.selector && s.selector.matchLabels, sts.podLabels))
        bad(where, "selector does not select the worker pods");
      if (o.kind === "ServiceMonitor") {
        const svc = objs.find(({ o: x }) => x.kind === "Service" && matches(s.selector.matchLabels, x.metadata.labels));
        if (!svc) bad(where, "selects no Service of the chart");
        else if (!(s.endpoints || []).every((e) => (svc.o.spec.ports || []).some((p) => p.name === e.port)))
          bad(where, "an endpoint port is not a port of the selected Service");
      }
    }
  return n;
}

// The worker's view of a rendered release: the ConfigMap's files and the
// worker container's environment (a Secret's key as "<secret>/<key>", a
// fieldRef as the first pod's name), written to DIR as worker.properties,
// policy.properties (if any) and env (NAME=VALUE lines), with the ConfigMap
// mount path pointed at DIR, for `revstream worker --check`.
function workerConfig(file, dir) {
  const objs = parseAllDocuments(fs.readFileSync(file, "utf8")).map((d) => d.toJS()).filter(Boolean);
  const sts = objs.find((o) => o.kind === "StatefulSet");
  const c = sts.spec.template.spec.containers.find((x) => x.name === "worker");
  const mount = c.volumeMounts.find((m) => m.name === "config").mountPath;
  const cmName = sts.spec.template.spec.volumes.find((v) => v.name === "config").configMap.name;
  const cm = objs.find((o) => o.kind === "ConfigMap" && o.metadata.name === cmName);
  for (const [name, text] of Object.entries(cm.data))
    fs.writeFileSync(nodePath.join(dir, name), text.split(`${mount}/`).join(`${dir}/`));
  const env = (c.env || []).map((e) => {
    const vf = e.valueFrom || {};
    if (vf.secretKeyRef) return `${e.name}=${vf.secretKeyRef.name}/${vf.secretKeyRef.key}`;
    if (vf.fieldRef) return `${e.name}=${sts.metadata.name}-0`;
    return `${e.name}=${e.value}`;
  });
  fs.writeFileSync(nodePath.join(dir, "env"), env.join("\n") + "\n");
  return Object.keys(cm.data).length;
}

const [cmd, ...args] = process.argv.slice(2);
let count = 0;
if (cmd === "values" && args.length >= 2) count = checkValues(args[0], args.slice(1));
else if (cmd === "manifests" && args.length >= 1) count = await checkManifests(args);
else if (cmd === "worker-config" && args.length === 2) count = workerConfig(args[0], args[1]);
else {
  console.error("usage: check-chart.mjs values SCHEMA VALUES.json... | manifests FILE.yaml... | worker-config FILE.yaml DIR");
  process.exit(2);
}
for (const p of problems) console.log(p);
if (problems.length) {
  console.log(`check-chart ${cmd}: ${problems.length} problem(s)`);
  process.exit(1);
}
console.log(`check-chart ${cmd}: ${count} checked, no problem`);
