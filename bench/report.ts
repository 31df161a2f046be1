/** Figures (median of runs with min and max), the machine and commit, and markdown tables. */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";

export const ROOT = path.resolve(__dirname, "..");

export interface Figure {
    median: number;
    min: number;
    max: number;
    runs: number;
}

export function figure(values: number[]): Figure {
    if (values.length === 0) return { median: NaN, min: NaN, max: NaN, runs: 0 };
    const s = [...values].sort((a, b) => a - b);
    const mid = Math.floor(s.length / 2);
    const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
    return { median, min: s[0], max: s[s.length - 1], runs: s.length };
}

/** `1.23 (1.20–1.31)` */
export function fmt(f: Figure, digits = 2): string {
    if (!f.runs) return "n/a";
    return `${f.median.toFixed(digits)} (${f.min.toFixed(digits)}–${f.max.toFixed(digits)})`;
}

export function table(header: string[], rows: string[][]): string {
    const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
    return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

export interface Machine {
    date: string;
    host: string;
    cpus: number;
    cpuModel: string;
    memoryGiB: number;
    os: string;
    node: string;
    pulumiSdk: string;
    commit: string;
    /** Tracked files outside bench/ with uncommitted changes (the program measured is the working tree). */
    dirty: string[];
}

function git(args: string[]): string {
    try {
        return execFileSync("git", args, { cwd: ROOT, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
    } catch {
        return "";
    }
}

function cpuModel(): string {
    const fromOs = os.cpus()[0]?.model?.trim();
    if (fromOs) return fromOs;
    try {
        const m = /^model name\s*:\s*(.+)$/m.exec(fs.readFileSync("/proc/cpuinfo", "utf8"));
        if (m) return m[1].trim();
    } catch { /* not Linux */ }
    return "unknown";
}

/** A stack file whose only change is the `encryptionsalt:` line Pulumi writes (never committed). */
function onlySalt(file: string): boolean {
    if (!/^Pulumi\.[^/]+\.yaml$/.test(file)) return false;
    const changes = git(["diff", "-U0", "HEAD", "--", file]).split("\n")
        .filter((l) => /^[+-]/.test(l) && !/^(\+\+\+|---) /.test(l));
    return changes.length > 0 && changes.every((l) => /^[+-]encryptionsalt:/.test(l));
}

export function machine(): Machine {
    let pulumiSdk = "unknown";
    try {
        pulumiSdk = JSON.parse(fs.readFileSync(path.join(ROOT, "node_modules", "@pulumi", "pulumi", "package.json"), "utf8")).version;
    } catch { /* not installed */ }
    const changed = git(["diff", "--name-only", "HEAD"]);
    return {
        date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
        host: os.hostname(),
        cpus: typeof os.availableParallelism === "function" ? os.availableParallelism() : os.cpus().length,
        cpuModel: cpuModel(),
        memoryGiB: os.totalmem() / 1024 ** 3,
        os: `${os.type()} ${os.release()} ${os.arch()}`,
        node: process.version,
        pulumiSdk,
        commit: git(["rev-parse", "--short=12", "HEAD"]) || "unknown",
        dirty: changed.split("\n").filter((f) => f && !f.startsWith("bench/") && !onlySalt(f)),
    };
}

export function machineLines(m: Machine): string[] {
    return [
        `- Date: ${m.date}`,
        `- Machine: ${m.cpus} CPUs (nproc), ${m.cpuModel}, ${m.memoryGiB.toFixed(1)} GiB memory; ${m.os}`,
        `- Software: Node ${m.node}, @pulumi/pulumi ${m.pulumiSdk}`,
        `- Commit: ${m.commit}` + (m.dirty.length ? ` plus uncommitted changes in ${m.dirty.join(", ")} (the working tree is what ran)` : ""),
    ];
}
