/**
 * Variable interpolation with the semantics of the Docker CLI's compose loader
 * (cli/compose/template): `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR-default}`,
 * `${VAR:?err}`, `${VAR?err}` and `$$` for a literal `$`. It applies to string
 * values only (never to keys), and a value that changed is cast back to a
 * number or boolean where the schema wants one (ports, replicas, read_only...).
 */
import { ComposeError, ComposeWarning, keyPath } from "./errors";

export type Lookup = (name: string) => string | undefined;

const SUBST = "[_a-z][_a-z0-9]*(?::?[-?][^}]*)?";
const PATTERN = new RegExp(`\\$(?:(\\$)|(${SUBST})|\\{(${SUBST})\\}|())`, "gi");

export class TemplateError extends Error {}

function partition(s: string, sep: string): [string, string] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, ""] : [s.slice(0, i), s.slice(i + sep.length)];
}

/**
 * Substitutes variables in one string. Throws {@link TemplateError} for an
 * invalid template or a missing required variable. `unset` receives the names
 * of plain variables that were not set (they become "").
 */
export function substitute(template: string, lookup: Lookup, unset?: (name: string) => void): string {
  let error: TemplateError | undefined;
  const out = template.replace(PATTERN, (_m, escaped, named, braced) => {
    if (error) return "";
    if (escaped) return escaped;
    const sub: string | undefined = named || braced;
    if (!sub) {
      error = new TemplateError(`invalid template: ${JSON.stringify(template)}`);
      return "";
    }
    if (sub.includes(":-")) {
      const [name, def] = partition(sub, ":-");
      const v = lookup(name);
      return v === undefined || v === "" ? def : v;
    }
    if (sub.includes("-")) {
      const [name, def] = partition(sub, "-");
      const v = lookup(name);
      return v === undefined ? def : v;
    }
    for (const [sep, nonEmpty] of [[":?", true], ["?", false]] as const) {
      if (!sub.includes(sep)) continue;
      const [name, msg] = partition(sub, sep);
      const v = lookup(name);
      if (v === undefined || (nonEmpty && v === "")) {
        error = new TemplateError(`required variable ${name} is missing a value: ${msg}`);
        return "";
      }
      return v;
    }
    const v = lookup(sub);
    if (v === undefined) {
      unset?.(sub);
      return "";
    }
    return v;
  });
  if (error) throw error;
  return out;
}

type Cast = (value: string) => unknown;

const toInt: Cast = (v) => {
  if (!/^[-+]?\d+$/.test(v)) throw new TemplateError(`cannot cast ${JSON.stringify(v)} to an integer`);
  return parseInt(v, 10);
};
const toFloat: Cast = (v) => {
  const n = Number(v);
  if (v.trim() === "" || Number.isNaN(n)) throw new TemplateError(`cannot cast ${JSON.stringify(v)} to a number`);
  return n;
};
const toBool: Cast = (v) => {
  switch (v.toLowerCase()) {
    case "y": case "yes": case "true": case "on": return true;
    case "n": case "no": case "false": case "off": return false;
    default: throw new TemplateError(`invalid boolean: ${v}`);
  }
};

/** Paths (`*` any key, `[]` any list item) whose interpolated value is cast, as the CLI does. */
const CASTS: Array<[string[], Cast]> = [
  ...([
    [["configs", "[]", "mode"], toInt],
    [["secrets", "[]", "mode"], toInt],
    [["healthcheck", "retries"], toInt],
    [["healthcheck", "disable"], toBool],
    [["deploy", "replicas"], toInt],
    [["deploy", "update_config", "parallelism"], toInt],
    [["deploy", "update_config", "max_failure_ratio"], toFloat],
    [["deploy", "rollback_config", "parallelism"], toInt],
    [["deploy", "rollback_config", "max_failure_ratio"], toFloat],
    [["deploy", "restart_policy", "max_attempts"], toInt],
    [["deploy", "placement", "max_replicas_per_node"], toInt],
    [["deploy", "resources", "limits", "pids"], toInt],
    [["ports", "[]", "target"], toInt],
    [["ports", "[]", "published"], toInt],
    [["ulimits", "*"], toInt],
    [["ulimits", "*", "hard"], toInt],
    [["ulimits", "*", "soft"], toInt],
    [["privileged"], toBool],
    [["read_only"], toBool],
    [["stdin_open"], toBool],
    [["tty"], toBool],
    [["init"], toBool],
    [["volumes", "[]", "read_only"], toBool],
    [["volumes", "[]", "volume", "nocopy"], toBool],
    [["volumes", "[]", "tmpfs", "size"], toInt],
  ] as Array<[string[], Cast]>).map(([p, c]): [string[], Cast] => [["services", "*", ...p], c]),
  [["networks", "*", "external"], toBool],
  [["networks", "*", "internal"], toBool],
  [["networks", "*", "attachable"], toBool],
  [["volumes", "*", "external"], toBool],
  [["secrets", "*", "external"], toBool],
  [["configs", "*", "external"], toBool],
];

function casterFor(path: string[]): Cast | undefined {
  for (const [pattern, cast] of CASTS) {
    if (pattern.length !== path.length) continue;
    if (pattern.every((p, i) => p === "*" || p === path[i])) return cast;
  }
  return undefined;
}

/**
 * Interpolates every string value of a parsed compose document. Extension
 * fields (`x-*`) are interpolated too, as the CLI does.
 */
export function interpolateConfig(
  config: Record<string, unknown>,
  lookup: Lookup,
  file: string,
  warnings: ComposeWarning[],
): Record<string, unknown> {
  const warned = new Set<string>();
  const walk = (value: unknown, match: string[], shown: Array<string | number>): unknown => {
    if (typeof value === "string") {
      let out: string;
      try {
        out = substitute(value, lookup, (name) => {
          if (warned.has(name)) return;
          warned.add(name);
          warnings.push({
            file,
            key: keyPath(...shown),
            message: `variable ${name} is not set; substituting an empty string`,
          });
        });
      } catch (e) {
        if (e instanceof TemplateError) {
          throw new ComposeError(
            file,
            keyPath(...shown),
            `invalid interpolation: ${e.message}`,
            "set the variable in the stack's environment, or escape a literal $ as $$",
          );
        }
        throw e;
      }
      if (out === value) return value;
      const cast = casterFor(match);
      if (!cast) return out;
      try {
        return cast(out);
      } catch (e) {
        throw new ComposeError(file, keyPath(...shown), `interpolated value ${JSON.stringify(out)}: ${(e as Error).message}`,
          "make the variable hold a value of the expected type");
      }
    }
    if (Array.isArray(value)) return value.map((v, i) => walk(v, [...match, "[]"], [...shown, i]));
    if (value !== null && typeof value === "object") {
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) out[k] = walk(v, [...match, k], [...shown, k]);
      return out;
    }
    return value;
  };
  return walk(config, [], []) as Record<string, unknown>;
}
