/**
 * Small parsers the compose loader needs: the short volume syntax, shell-like
 * splitting of string commands, and env files.
 */

export interface VolumeEntry {
  type: string;
  source?: string;
  target?: string;
  read_only?: boolean;
  consistency?: string;
  bind?: { propagation?: string };
  volume?: { nocopy?: boolean };
  tmpfs?: { size?: number };
}

const PROPAGATIONS = ["rprivate", "private", "rshared", "shared", "rslave", "slave"];

function isWindowsDrive(buffer: string, ch: string): boolean {
  return ch === ":" && buffer.length === 1 && /\p{L}/u.test(buffer);
}

function isFilePath(source: string): boolean {
  if (".~/".includes(source[0])) return true;
  if ([...source].length === 1) return false;
  if (source.startsWith("\\\\")) return true;
  const chars = [...source];
  return isWindowsDrive(chars[0], chars[1]);
}

/** cli/compose/loader ParseVolume: `[source:]target[:options]`. */
export function parseShortVolume(spec: string): VolumeEntry {
  if (spec.length === 0) throw new Error("invalid empty volume spec");
  if (spec.length <= 2) return { type: "volume", target: spec };
  const v: VolumeEntry = { type: "" };
  let buffer = "";
  const END = "\u0000";
  for (const ch of [...spec, END]) {
    if (isWindowsDrive(buffer, ch)) {
      buffer += ch;
    } else if (ch === ":" || ch === END) {
      if (buffer.length === 0) throw new Error(`invalid spec: ${spec}: empty section between colons`);
      if (v.source === undefined && ch === END) v.target = buffer;
      else if (v.source === undefined) v.source = buffer;
      else if (v.target === undefined) v.target = buffer;
      else if (ch === ":") throw new Error(`invalid spec: ${spec}: too many colons`);
      else {
        for (const option of buffer.split(",")) {
          if (option === "ro") v.read_only = true;
          else if (option === "rw") v.read_only = false;
          else if (option === "nocopy") v.volume = { nocopy: true };
          else if (PROPAGATIONS.includes(option)) v.bind = { propagation: option };
          // other options are ignored, as the CLI does
        }
      }
      buffer = "";
    } else {
      buffer += ch;
    }
  }
  if (v.source === undefined) v.type = "volume";
  else v.type = isFilePath(v.source) ? "bind" : "volume";
  if (v.read_only === false) delete v.read_only;
  return v;
}

/** github.com/google/shlex Split: words, '...' and "..." quoting, backslash escapes, # comments. */
export function shellSplit(input: string): string[] {
  const words: string[] = [];
  let i = 0;
  const n = input.length;
  const isSpace = (c: string) => c === " " || c === "\t" || c === "\r" || c === "\n";
  while (i < n) {
    while (i < n && isSpace(input[i])) i++;
    if (i >= n) break;
    if (input[i] === "#") {
      while (i < n && input[i] !== "\n") i++;
      continue;
    }
    let word = "";
    let inWord = true;
    while (i < n && inWord) {
      const c = input[i];
      if (isSpace(c)) {
        inWord = false;
        break;
      }
      if (c === "\\") {
        if (i + 1 >= n) throw new Error("EOF found after escape character");
        word += input[i + 1];
        i += 2;
      } else if (c === "'") {
        const end = input.indexOf("'", i + 1);
        if (end < 0) throw new Error("EOF found when expecting closing quote");
        word += input.slice(i + 1, end);
        i = end + 1;
      } else if (c === '"') {
        i++;
        let closed = false;
        while (i < n) {
          const d = input[i];
          if (d === "\\") {
            if (i + 1 >= n) throw new Error("EOF found after escape character");
            word += input[i + 1];
            i += 2;
          } else if (d === '"') {
            i++;
            closed = true;
            break;
          } else {
            word += d;
            i++;
          }
        }
        if (!closed) throw new Error("EOF found when expecting closing quote");
      } else {
        word += c;
        i++;
      }
    }
    words.push(word);
  }
  return words;
}

/**
 * Parses an env file as the Docker CLI does (opts.ParseEnvFile): one
 * `KEY=value` per line, taken literally (no quote removal); blank lines and
 * lines starting with `#` skipped; a bare `KEY` takes its value from the
 * environment, or is left out when it is not set there.
 */
export function parseEnvFile(content: string, lookup: (k: string) => string | undefined): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  const text = content.startsWith("\uFEFF") ? content.slice(1) : content;
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, idx) => {
    const line = raw.replace(/^\s+/, "");
    if (line.length === 0 || line.startsWith("#")) return;
    const eq = line.indexOf("=");
    const variable = (eq < 0 ? line : line.slice(0, eq)).replace(/^[ \t\n\v\f\r]+/, "");
    if (/[ \t\n\v\f\r]/.test(variable)) throw new Error(`line ${idx + 1}: variable '${variable}' contains whitespaces`);
    if (variable.length === 0) throw new Error(`line ${idx + 1}: no variable name on line '${line}'`);
    if (eq >= 0) out.push([variable, line.slice(eq + 1)]);
    else {
      const v = lookup(variable);
      if (v !== undefined) out.push([variable, v]);
    }
  });
  return out;
}
