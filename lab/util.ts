// Small helpers of the lab CLI: running commands, progress output, errors.
import { spawn, spawnSync, SpawnSyncOptions } from "node:child_process";
import * as fs from "node:fs";

/** An error the CLI reports as one clear line (no stack trace) and exits non-zero. */
export class LabError extends Error {
    constructor(message: string, readonly exitCode = 1) {
        super(message);
    }
}

export interface RunResult {
    code: number;
    stdout: string;
    stderr: string;
}

/** Runs a command to completion and returns its exit code and output. Never throws on exit codes. */
export function run(cmd: string, args: string[], opts: SpawnSyncOptions & { input?: string } = {}): RunResult {
    const r = spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 64 * 1024 * 1024, ...opts });
    if (r.error) {
        return { code: 127, stdout: "", stderr: String(r.error.message) };
    }
    return { code: r.status ?? 128, stdout: String(r.stdout ?? ""), stderr: String(r.stderr ?? "") };
}

/** Runs a command and returns its trimmed stdout; throws a LabError with its stderr on failure. */
export function runOk(cmd: string, args: string[], opts: SpawnSyncOptions & { input?: string } = {}): string {
    const r = run(cmd, args, opts);
    if (r.code !== 0) {
        const msg = (r.stderr || r.stdout).trim().split("\n").slice(-5).join("\n");
        throw new LabError(`${cmd} ${args.join(" ")} failed (exit ${r.code}): ${msg}`);
    }
    return r.stdout.trim();
}

export function which(cmd: string): string | undefined {
    for (const dir of (process.env.PATH ?? "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin").split(":")) {
        const p = `${dir}/${cmd}`;
        try {
            fs.accessSync(p, fs.constants.X_OK);
            return p;
        } catch {
            /* next */
        }
    }
    return undefined;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function say(line: string): void {
    process.stdout.write(line + "\n");
}

/**
 * Runs a long command with its output going to a log file, printing elapsed seconds while it runs.
 * On failure, prints the end of the log and throws a LabError.
 */
export async function runWithProgress(
    label: string,
    cmd: string,
    args: string[],
    opts: { logFile: string; env?: NodeJS.ProcessEnv; stdinFrom?: string; lines?: boolean },
): Promise<number> {
    const started = Date.now();
    const secs = () => Math.round((Date.now() - started) / 1000);
    // progress on one rewritten line on a terminal, unless several run at once (lines)
    const tty = Boolean(process.stdout.isTTY) && !opts.lines;
    const out = fs.openSync(opts.logFile, "a");
    const input = opts.stdinFrom ? fs.openSync(opts.stdinFrom, "r") : "ignore";
    const child = spawn(cmd, args, { stdio: [input, out, out], env: opts.env ?? process.env });
    let last = -1;
    const tick = () => {
        const s = secs();
        if (tty) {
            process.stdout.write(`\r  ${label} ... ${s}s `);
        } else if (s - last >= 15) {
            last = s;
            say(`  ${label} ... ${s}s`);
        }
    };
    tick();
    const timer = setInterval(tick, tty ? 1000 : 5000);
    const code: number = await new Promise((resolve) => {
        child.on("error", () => resolve(127));
        child.on("exit", (c, sig) => resolve(c ?? (sig ? 128 : 1)));
    });
    clearInterval(timer);
    fs.closeSync(out);
    if (typeof input === "number") fs.closeSync(input);
    if (tty) process.stdout.write("\r");
    if (code !== 0) {
        say(`  ${label} failed after ${secs()}s; end of ${opts.logFile}:`);
        const tail = fs.readFileSync(opts.logFile, "utf8").trimEnd().split("\n").slice(-15);
        for (const l of tail) say(`    ${l}`);
        const mirror = tail.find((l) => /did not answer|apt-get update failed/.test(l));
        throw new LabError(mirror ? mirror.replace(/^error: /, "") : `${label} failed (exit ${code}); see ${opts.logFile}`, code === 3 ? 3 : 1);
    }
    return secs();
}

export function writeIfChanged(file: string, content: string, mode = 0o644): boolean {
    try {
        if (fs.readFileSync(file, "utf8") === content) return false;
    } catch {
        /* missing */
    }
    fs.writeFileSync(file + ".tmp", content, { mode });
    fs.renameSync(file + ".tmp", file);
    return true;
}

/** Prints rows as an aligned table. */
export function table(header: string[], rows: string[][]): string {
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
    const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join("  ");
    return [line(header), ...rows.map(line)].join("\n");
}
