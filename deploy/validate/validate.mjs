// Validates Kubernetes manifests against the API's OpenAPI schemas, which
// the npm package kubernetes-models ships compiled (and
// @kubernetes-models/prometheus-operator for the operator's CRDs): no
// network at run time. It checks types, formats, enums and required
// fields; unknown fields are checked by the strict Go decoder beside it.
//
// node validate.mjs FILE...
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import { Namespace } from "kubernetes-models/v1/Namespace";
import { Service } from "kubernetes-models/v1/Service";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import { DaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
import { PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";

const models = new Map(
  [Namespace, Service, ServiceAccount, DaemonSet, ServiceMonitor, PrometheusRule].map((m) => [`${m.apiVersion}/${m.kind}`, m]),
);

let failed = 0;
let checked = 0;
for (const file of process.argv.slice(2)) {
  const docs = parseAllDocuments(readFileSync(file, "utf8"));
  for (const doc of docs) {
    if (doc.errors.length > 0) {
      console.error(`${file}: YAML: ${doc.errors.map((e) => e.message).join("; ")}`);
      failed++;
      continue;
    }
    const obj = doc.toJS();
    if (obj === null) continue;
    const where = `${file}: ${obj.kind}/${obj.metadata?.name}`;
    if (obj.kind === "Kustomization") continue; // not an API object
    const Model = models.get(`${obj.apiVersion}/${obj.kind}`);
    if (!Model) {
      console.error(`${where}: no schema for ${obj.apiVersion} ${obj.kind} (add its model to validate.mjs)`);
      failed++;
      continue;
    }
    try {
      new Model(obj).validate();
      checked++;
      console.log(`ok   ${where}`);
    } catch (err) {
      console.error(`FAIL ${where}: ${err.message}`);
      failed++;
    }
  }
}
console.log(`${checked} objects valid, ${failed} failed`);
process.exit(failed > 0 || checked === 0 ? 1 : 0);
