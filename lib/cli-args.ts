/**
 * Command-line arguments of the operator commands (tools/status.ts, tools/ops.ts, tools/parity.ts):
 * `--flag value`, `--flag=value` and bare words, one at a time. A flag's value is taken only when
 * the caller asks for it, so boolean flags and words need no declaration.
 */
export class UsageError extends Error {}

export interface Arg {
    /** The flag (`--stack`) or bare word as given, without an inline `=value`. */
    flag: string;
    /** The argument as written. */
    raw: string;
    /** The flag's value (inline or the next argument); a missing or empty one is a UsageError. */
    value(): string;
}

export function* args(argv: string[]): Generator<Arg> {
    for (let i = 0; i < argv.length; i++) {
        const raw = argv[i];
        const eq = raw.startsWith("--") ? raw.indexOf("=") : -1;
        const flag = eq > 0 ? raw.slice(0, eq) : raw;
        const inline = eq > 0 ? raw.slice(eq + 1) : undefined;
        yield {
            flag,
            raw,
            value: () => {
                const v = inline ?? argv[++i];
                if (v === undefined || v === "") throw new UsageError(`${flag} needs a value`);
                return v;
            },
        };
    }
}
