// Runs the Khronos glTF validator (npm gltf-validator) on one .glb and prints its report as one JSON line.
// Usage: node validate_gltf.mjs FILE.glb
import { readFileSync } from "node:fs";
import validator from "gltf-validator";

const bytes = new Uint8Array(readFileSync(process.argv[2]));
const report = await validator.validateBytes(bytes, { maxIssues: 0 });
const messages = report.issues.messages.map((m) => ({ code: m.code, severity: m.severity, message: m.message, pointer: m.pointer }));
console.log(JSON.stringify({
  validatorVersion: report.validatorVersion,
  numErrors: report.issues.numErrors,
  numWarnings: report.issues.numWarnings,
  numInfos: report.issues.numInfos,
  numHints: report.issues.numHints,
  messages,
  info: report.info,
}));
