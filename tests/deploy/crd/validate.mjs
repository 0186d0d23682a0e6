// Validates custom resources (Prometheus Operator's ServiceMonitor and PrometheusRule, KEDA's
// ScaledObject) against their CRD's schema, as packaged in @kubernetes-models/prometheus-operator and
// @kubernetes-models/keda (generated from the projects' CRDs):
//   1. the JSON-schema validator generated from the CRD: types, enums, patterns, required fields;
//   2. TypeScript's excess-property check against the types generated from the same CRD: unknown or
//      misspelled fields, which a CRD's open schema lets through (the API server would drop them).
// Input: a JSON array of manifests on stdin. Output: one line per problem; exit status 1 if any.
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";

const here = path.dirname(fileURLToPath(import.meta.url));
const PACKAGES = {
  "monitoring.coreos.com": "@kubernetes-models/prometheus-operator",
  "keda.sh": "@kubernetes-models/keda",
};

const docs = JSON.parse(readFileSync(0, "utf8"));
const problems = [];
const source = [];
const lineOwner = [];

for (const [i, doc] of docs.entries()) {
  const where = `${doc.kind}/${doc.metadata?.name}`;
  const group = String(doc.apiVersion).split("/")[0];
  const pkg = PACKAGES[group];
  if (!pkg) {
    problems.push(`${where}: no CRD schema known for ${doc.apiVersion}`);
    continue;
  }
  const mod = `${pkg}/${doc.apiVersion}/${doc.kind}`;
  let Model;
  try {
    Model = (await import(mod))[doc.kind];
  } catch {
    problems.push(`${where}: no CRD schema for ${doc.apiVersion} ${doc.kind}`);
    continue;
  }
  try {
    new Model(doc).validate();
  } catch (e) {
    problems.push(`${where}: ${e.message}`);
  }
  source.push(`import type { I${doc.kind} as T${i} } from "${mod}";`);
  source.push(`export const m${i}: T${i} = ${JSON.stringify(doc)};`);
  lineOwner.push(where, where);
}

if (source.length) {
  const file = path.join(here, `.check-${process.pid}.ts`);
  writeFileSync(file, source.join("\n") + "\n");
  try {
    const program = ts.createProgram([file], {
      noEmit: true,
      strict: true,
      skipLibCheck: true,
      types: [],
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
    });
    for (const d of ts.getPreEmitDiagnostics(program)) {
      const text = ts.flattenDiagnosticMessageText(d.messageText, " ");
      const line = d.file ? d.file.getLineAndCharacterOfPosition(d.start ?? 0).line : -1;
      problems.push(`${lineOwner[line] ?? "typescript"}: ${text}`);
    }
  } finally {
    rmSync(file, { force: true });
  }
}

for (const p of problems) console.log(p);
console.log(`${docs.length} custom resource(s) checked, ${problems.length} problem(s)`);
process.exit(problems.length ? 1 : 0);
