/**
 * Parsing of Go-style durations, byte sizes and CPU counts, and the one
 * normalised duration spelling used in the output (the provider's own).
 */

const UNIT_NS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  "µs": 1e3, // U+00B5
  "μs": 1e3, // U+03BC
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  h: 3600e9,
};

/** Parses a Go duration (`1h2m3.5s`, `300ms`, `0`) into nanoseconds; undefined when invalid. */
export function parseDuration(input: string): number | undefined {
  let s = input;
  let sign = 1;
  if (s.startsWith("-") || s.startsWith("+")) {
    if (s[0] === "-") sign = -1;
    s = s.slice(1);
  }
  if (s === "0") return 0;
  if (s === "") return undefined;
  let total = 0;
  const re = /^(\d*)(?:\.(\d*))?(ns|us|µs|μs|ms|s|m|h)/;
  while (s.length > 0) {
    const m = re.exec(s);
    if (!m || (m[1] === "" && (m[2] === undefined || m[2] === ""))) return undefined;
    const whole = m[1] === "" ? 0 : Number(m[1]);
    const frac = m[2] ? Number(`0.${m[2]}`) : 0;
    const unit = UNIT_NS[m[3]];
    total += Math.round(whole * unit + frac * unit);
    s = s.slice(m[0].length);
  }
  return sign * total;
}

function trimFrac(intPart: number, frac: number, digits: number): string {
  if (frac === 0) return String(intPart);
  const f = String(frac).padStart(digits, "0").replace(/0+$/, "");
  return `${intPart}.${f}`;
}

/** Go's time.Duration.String(). */
export function goDurationString(ns: number): string {
  if (ns === 0) return "0s";
  const neg = ns < 0;
  let u = Math.abs(Math.round(ns));
  let out: string;
  if (u < 1e3) out = `${u}ns`;
  else if (u < 1e6) out = `${trimFrac(Math.floor(u / 1e3), u % 1e3, 3)}µs`;
  else if (u < 1e9) out = `${trimFrac(Math.floor(u / 1e6), u % 1e6, 6)}ms`;
  else {
    const h = Math.floor(u / 3600e9);
    u -= h * 3600e9;
    const m = Math.floor(u / 60e9);
    u -= m * 60e9;
    const sec = `${trimFrac(Math.floor(u / 1e9), u % 1e9, 9)}s`;
    out = h > 0 ? `${h}h${m}m${sec}` : m > 0 ? `${m}m${sec}` : sec;
  }
  return neg ? `-${out}` : out;
}

/**
 * The normalised spelling of a duration in the output: Go's String() with a
 * trailing `m0s` / `h0m` dropped (`1m`, `1h`, `1m30s`, `500ms`), which is how
 * the docker provider reads durations back from the engine, so that a value
 * written as `60s` and one read back as `1m` never show as a diff.
 */
export function normaliseDuration(ns: number): string {
  let s = goDurationString(ns);
  if (s.endsWith("m0s")) s = s.slice(0, -2);
  if (s.endsWith("h0m")) s = s.slice(0, -2);
  return s;
}

/** go-units RAMInBytes: `50M` = 52428800, `1.5G`, `512mb`, `1024` (binary multiples). */
export function ramInBytes(input: string | number): number | undefined {
  if (typeof input === "number") return Number.isInteger(input) ? input : undefined;
  const m = /^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$/.exec(input);
  if (!m) return undefined;
  const size = Number(m[1]);
  if (Number.isNaN(size)) return undefined;
  const mult: Record<string, number> = { k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };
  const k = m[2] ? mult[m[2].toLowerCase()] : 1;
  return Math.trunc(size * k);
}

/** opts.ParseCPUs: a decimal CPU count to nano CPUs; undefined when invalid or too precise. */
export function parseCpus(input: string | number): number | undefined {
  const s = String(input).trim();
  const m = /^(\d*)(?:\.(\d*))?$/.exec(s);
  if (!m || (m[1] === "" && !m[2])) return undefined;
  const frac = m[2] ?? "";
  if (frac.replace(/0+$/, "").length > 9) return undefined; // "value is too precise"
  const nano = BigInt(m[1] || "0") * 1_000_000_000n + BigInt((frac + "000000000").slice(0, 9));
  return Number(nano);
}

/**
 * A number as Go prints a float32 (the compose `max_failure_ratio` is a float32 in the CLI and the
 * engine): the value rounded to single precision, in the shortest decimal that reads back as the
 * same float32 (`0.123456789` is `0.12345679`, `0.25` stays `0.25`).
 */
export function float32String(x: number): string {
  const f = Math.fround(x);
  if (!Number.isFinite(f)) return String(f);
  for (let p = 1; p <= 9; p++) {
    const s = Number(f.toPrecision(p));
    if (Math.fround(s) === f) return String(s);
  }
  return String(f);
}
