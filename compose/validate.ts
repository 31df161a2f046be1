/**
 * Schema validation with ajv, turned into ComposeErrors that name the key.
 */
import { createHash } from "crypto";
import type Ajv from "ajv";
import type { ErrorObject, Options, ValidateFunction } from "ajv";
import { ComposeError } from "./errors";
import * as formats from "./formats";
import { composeV3Schema, SINCE, type SinceRule } from "./schema";

/** The validator `npm run build` generates next to this module (compose/build-validator.ts). */
export const PREBUILT_FILE = "schema-validator.js";

/** ajv as the schema is compiled with (here, or ahead by compose/build-validator.ts). */
export function newAjv(extra: Options = {}): Ajv {
  const AjvClass = (require("ajv") as { default: typeof Ajv }).default; // eslint-disable-line @typescript-eslint/no-require-imports
  const ajv = new AjvClass({ allErrors: true, verbose: true, allowUnionTypes: true, strict: true, ...extra });
  ajv.addFormat("duration", formats.duration);
  return ajv;
}

/** What identifies the schema a validator was made from. */
export function schemaHash(): string {
  return createHash("sha256").update(JSON.stringify(composeV3Schema)).digest("hex");
}

let compiled: ValidateFunction | undefined;

/** The generated validator, if there is one for this very schema. */
function prebuilt(): ValidateFunction | undefined {
  let m: (ValidateFunction & { schemaHash?: string; default?: ValidateFunction }) | undefined;
  try {
    m = require(`./${PREBUILT_FILE}`); // eslint-disable-line @typescript-eslint/no-require-imports
  } catch {
    return undefined; // run from the sources, or not built: compiled below
  }
  const fn = m?.default ?? m;
  return typeof fn === "function" && m?.schemaHash === schemaHash() ? fn : undefined;
}

function validator(): ValidateFunction {
  compiled ??= prebuilt() ?? newAjv().compile(composeV3Schema);
  return compiled;
}

function pointerToKey(pointer: string): string {
  if (!pointer) return "";
  let out = "";
  for (const raw of pointer.split("/").slice(1)) {
    const seg = raw.replace(/~1/g, "/").replace(/~0/g, "~");
    if (/^\d+$/.test(seg)) out += `[${seg}]`;
    else out += out ? `.${seg}` : seg;
  }
  return out;
}

function depth(e: ErrorObject): number {
  return e.instancePath.split("/").length + (e.keyword === "additionalProperties" ? 1 : 0);
}

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)] as number[]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return d[a.length][b.length];
}

function typeName(t: unknown): string {
  const one = (x: string) => (x === "object" ? "mapping" : x === "array" ? "list" : x);
  if (Array.isArray(t)) {
    const names = t.map((x) => one(String(x)));
    return names.length > 1 ? `${names.slice(0, -1).join(", ")} or ${names[names.length - 1]}` : names[0];
  }
  return one(String(t));
}

function describe(file: string, e: ErrorObject, all: ErrorObject[]): ComposeError {
  const key = pointerToKey(e.instancePath);
  switch (e.keyword) {
    case "additionalProperties": {
      const prop = String((e.params as { additionalProperty: string }).additionalProperty);
      const full = key ? `${key}.${prop}` : prop;
      const known = Object.keys(((e.parentSchema as { properties?: object })?.properties) ?? {});
      const near = known
        .map((k) => [k, editDistance(k, prop)] as const)
        .filter(([, dist]) => dist <= 2)
        .sort((a, b) => a[1] - b[1])[0];
      let fix = near ? `did you mean \`${near[0]}\`?` : "remove it or check its spelling";
      if (!key && !near && !prop.startsWith("x-")) {
        fix = "top-level keys are version, services, networks, volumes, secrets, configs and x-* extensions; " +
          "a compose v1 file (services at the top level) must be rewritten under `services:`";
      }
      return new ComposeError(file, full, `unknown key \`${prop}\` is not allowed here`, fix);
    }
    case "type": {
      const expected = typeName((e.params as { type: unknown }).type);
      return new ComposeError(file, key, `must be a ${expected}`, `write it as a ${expected}` +
        (expected === "string" ? " (quote it)" : ""));
    }
    case "oneOf": {
      // Report the alternative that got furthest, if any.
      const nested = all.filter((x) => x !== e && x.instancePath.startsWith(e.instancePath) && x.keyword !== "oneOf");
      const deeper = nested.filter((x) => x.instancePath !== e.instancePath || x.keyword === "additionalProperties");
      if (deeper.length > 0) {
        deeper.sort((a, b) => depth(b) - depth(a));
        return describe(file, deeper[0], all);
      }
      const types = nested.filter((x) => x.keyword === "type").map((x) => (x.params as { type: unknown }).type);
      const flat = [...new Set(types.flat())];
      if (flat.length > 0) return new ComposeError(file, key, `must be a ${typeName(flat)}`, "change its form");
      return new ComposeError(file, key, "does not match any allowed form", "check the compose file reference");
    }
    case "uniqueItems":
      return new ComposeError(file, key, "contains duplicate entries", "remove the duplicates");
    case "format":
      return new ComposeError(file, key, `${JSON.stringify(e.data)} is not a valid ${(e.params as { format: string }).format}`,
        "write a duration such as 10s, 1m30s or 500ms");
    case "enum":
      return new ComposeError(file, key, `must be one of ${((e.params as { allowedValues: unknown[] }).allowedValues)
        .map((v) => JSON.stringify(v)).join(", ")}`, "use one of the allowed values");
    case "required":
      return new ComposeError(file, key ? `${key}.${(e.params as { missingProperty: string }).missingProperty}` :
        (e.params as { missingProperty: string }).missingProperty, "is required", "add it");
    default:
      return new ComposeError(file, key, e.message ?? "is invalid", "check the compose file reference");
  }
}

/** Validates against the v3 schema; throws the most specific problem as a ComposeError. */
export function validateSchema(file: string, config: Record<string, unknown>): void {
  const validate = validator();
  if (validate(config)) return;
  const errors = validate.errors ?? [];
  // The most specific error wins, as in the CLI; ties go to unknown keys, then type errors.
  const rank = (e: ErrorObject) => (e.keyword === "additionalProperties" ? 2 : e.keyword === "type" ? 1 : 0);
  const sorted = [...errors].sort((a, b) => depth(b) - depth(a) || rank(b) - rank(a));
  // Prefer errors not inside a failed oneOf branch that another branch satisfies: pick the deepest
  // non-oneOf error whose parent oneOf (if any) is itself reported.
  throw describe(file, sorted[0], errors);
}

function matchRule(rule: SinceRule, config: unknown, minor: number, file: string): void {
  const walk = (node: unknown, i: number, shown: string): void => {
    if (node === null || node === undefined) return;
    if (i === rule.path.length) {
      if (rule.ext) {
        if (typeof node !== "object" || Array.isArray(node)) return;
        for (const k of Object.keys(node as object)) {
          if (k.startsWith("x-")) fail(shown ? `${shown}.${k}` : k);
        }
      } else if (!rule.long || (typeof node === "object" && !Array.isArray(node))) {
        fail(shown);
      }
      return;
    }
    const seg = rule.path[i];
    if (seg === "[]") {
      if (Array.isArray(node)) node.forEach((item, idx) => walk(item, i + 1, `${shown}[${idx}]`));
      return;
    }
    if (typeof node !== "object" || Array.isArray(node)) return;
    const obj = node as Record<string, unknown>;
    const keys = seg === "*" ? Object.keys(obj) : seg in obj ? [seg] : [];
    for (const k of keys) walk(obj[k], i + 1, shown ? `${shown}.${k}` : k);
  };
  const fail = (key: string) => {
    throw new ComposeError(file, key, `requires compose file format 3.${rule.since} or later (the file says 3.${minor})`,
      `raise \`version:\` to "3.${rule.since}" or later`);
  };
  walk(config, 0, "");
}

/** Rejects keys newer than the file's declared 3.x minor version, as the CLI's per-version schemas do. */
export function validateVersionFeatures(file: string, config: Record<string, unknown>, minor: number): void {
  for (const rule of SINCE) {
    if (minor < rule.since) matchRule(rule, config, minor, file);
  }
}
