/**
 * Parsing of Go-style durations, byte sizes and CPU counts, and float32
 * rounding, as the Docker CLI's compose loader reads them.
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
