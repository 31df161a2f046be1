/**
 * js-yaml's load with a bound on what anchors and aliases expand to ("billion laughs").
 *
 * js-yaml resolves an alias to the very object its anchor built, so a file of a few hundred bytes
 * parses quickly into a small graph whose tree (what interpolation, validation and JSON.stringify
 * walk) has billions of nodes. js-yaml has no alias limit (4.x bounds nesting depth and, from 4.3,
 * merge keys, not alias fan-out), so the loader's `listener` is used: at the close of every node the
 * size of its expanded tree is computed from its children's, memoised by object identity, so the
 * check costs one step per node and edge of the graph and never materialises the tree. The first
 * node whose expanded size passes the limit stops the load, naming its line.
 *
 * Written by hand (js-yaml has no option for it); the size is a weight close to the bytes of the
 * expanded document: 1 per node, plus the length of each string and mapping key.
 */
import * as yaml from "js-yaml";

/** Expanded weight allowed: far above any real compose file (the project's stacks weigh under 2 000 each). */
export const MAX_EXPANDED_WEIGHT = 4_000_000;

export class YamlExpansionError extends Error {
  constructor(readonly line: number, readonly column: number, readonly weight: number, readonly limit: number) {
    super(`anchors and aliases expand to more than ${limit} (a YAML "billion laughs"): the node ending at line ${line}, column ${column} alone weighs at least ${weight}`);
    this.name = "YamlExpansionError";
  }
}

interface ListenerState {
  result: unknown;
  line: number;
  position: number;
  lineStart: number;
}

/** yaml.load, refusing a document whose anchors/aliases expand beyond `limit` (YamlExpansionError). */
export function loadBounded(text: string, options: yaml.LoadOptions = {}, limit = MAX_EXPANDED_WEIGHT): unknown {
  const memo = new WeakMap<object, number>();
  const weigh = (v: unknown): number => {
    if (typeof v === "string") return 1 + v.length;
    if (typeof v !== "object" || v === null) return 1;
    const known = memo.get(v);
    if (known !== undefined) return known;
    let w = 1;
    if (Array.isArray(v)) {
      for (const item of v) {
        w += weigh(item);
        if (w > limit) break;
      }
    } else {
      for (const [k, item] of Object.entries(v)) {
        w += k.length + weigh(item);
        if (w > limit) break;
      }
    }
    memo.set(v, w);
    return w;
  };
  const listener = (event: string, state: ListenerState) => {
    if (event !== "close") return;
    const w = weigh(state.result);
    if (w > limit) throw new YamlExpansionError(state.line + 1, state.position - state.lineStart + 1, w, limit);
  };
  return yaml.load(text, { ...options, listener: listener as unknown as yaml.LoadOptions["listener"] });
}
