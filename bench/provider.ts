/**
 * The provider's own costs (issue 14; `npm run bench -- --only provider`), on the default lab's
 * committed dev stack, converged: a no-op `pulumi preview` against an empty Pulumi program's preview
 * (target <= 2x), and a no-op `pulumi up --refresh` (the no-op that reads the cluster) against that
 * no-op preview (target <= 1.5x), with the SSH sessions it opened per node (target at most one),
 * counted from each node's sshd log ("Accepted publickey"). It takes the default lab's lock
 * (/tmp/dccn-lab.lock, BENCH_PROVIDER_LOCK) and is not part of the default run: the default lab
 * belongs to whoever else uses it.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import * as yaml from "js-yaml";
import { engineEnv } from "../tools/workspace";
import { LOG_DIR, timed, withLock } from "./peers";
import { figure, fmt, ROOT, table } from "./report";

const LOCK = process.env.BENCH_PROVIDER_LOCK || "/tmp/dccn-lab.lock";
const LAB_JSON = path.join(ROOT, ".state", "lab", "lab.json");
export const TARGET_PREVIEW = 2;
export const TARGET_REFRESH = 1.5;
const PULUMI_ARGS = ["--stack", "dev", "--yes", "--non-interactive", "--color", "never"];
type Say = (s: string) => void;

function must(what: string, r: { status: number | null; log: string }): void {
    if (r.status !== 0) throw new Error(`${what} failed (exit ${r.status}); log ${r.log}`);
}

/** An empty Pulumi program (Node.js, nothing compiled) with a stack in its own file backend. */
function emptyProgram(): { dir: string; env: NodeJS.ProcessEnv } {
    fs.mkdirSync(LOG_DIR, { recursive: true });
    const dir = fs.mkdtempSync(path.join(LOG_DIR, "empty-program-"));
    fs.writeFileSync(path.join(dir, "Pulumi.yaml"), "name: bench-empty\nruntime:\n  name: nodejs\n  options:\n    typescript: false\n");
    fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name: "bench-empty", main: "index.js" }));
    fs.writeFileSync(path.join(dir, "index.js"), "// The baseline: a Pulumi program that declares nothing.\n");
    fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"));
    fs.mkdirSync(path.join(dir, "backend"));
    return { dir, env: { PULUMI_BACKEND_URL: `file://${path.join(dir, "backend")}`, PULUMI_CONFIG_PASSPHRASE: "bench-empty-program" } };
}

/** How many SSH sessions each node's sshd accepted since `sinceIso` (its log, the node container's output). */
function acceptedSessions(dockerHost: string, nodes: string[], sinceIso: string): Record<string, number> {
    const out: Record<string, number> = {};
    for (const n of nodes) {
        const r = spawnSync("docker", ["-H", dockerHost, "logs", "--since", sinceIso, n], { encoding: "utf8", timeout: 60_000 });
        if (r.status !== 0) throw new Error(`docker logs ${n}: ${r.stderr}`);
        out[n] = `${r.stdout}${r.stderr}`.split("\n").filter((l) => /Accepted publickey/.test(l)).length;
    }
    return out;
}

export async function runProvider(runs: number, say: Say): Promise<{ lines: string[]; missed: string[] }> {
    const env = engineEnv();
    for (const [what, args] of [["the dev stack", ["tools/stack-init.sh", "dev"]]] as const) {
        must(what, await timed("provider-prepare", "bash", [...args], env));
    }
    if (!fs.existsSync(LAB_JSON)) throw new Error(`${LAB_JSON} not found: the provider part runs on the default lab (npm run lab:up)`);
    const lab = JSON.parse(fs.readFileSync(LAB_JSON, "utf8")) as { dockerHost: string };
    const config = (yaml.load(fs.readFileSync(path.join(ROOT, "Pulumi.dev.yaml"), "utf8")) as { config: Record<string, any> }).config;
    const nodes = (config["dccn-swarm:nodes"] as { hostname: string }[]).map((n) => n.hostname);
    const preview = { ours: [] as number[], base: [] as number[] }, refresh = { ours: [] as number[], base: [] as number[] };
    const connections: number[] = [];
    await withLock(LOCK, say, async () => {
        must("pulumi up --refresh (converge)", await timed("provider-converge", "pulumi", ["up", "--refresh", "--skip-preview", ...PULUMI_ARGS], env));
        const empty = emptyProgram();
        const emptyEnv = { ...env, ...empty.env };
        must("pulumi stack init (empty program)", await timed("empty-init", "pulumi", ["stack", "init", "empty", "--non-interactive"], emptyEnv, { cwd: empty.dir }));
        try {
            for (let i = 1; i <= runs; i++) {
                const e = await timed(`empty-preview-${i}`, "pulumi", ["preview", "--stack", "empty", "--non-interactive", "--color", "never"], emptyEnv, { cwd: empty.dir });
                must("pulumi preview (empty program)", e);
                const p = await timed(`noop-preview-${i}`, "pulumi", ["preview", "--expect-no-changes", "--stack", "dev", "--non-interactive", "--color", "never"], env);
                must("pulumi preview --expect-no-changes", p);
                const since = new Date(Date.now() - 1000).toISOString();
                const r = await timed(`noop-refresh-up-${i}`, "pulumi", ["up", "--refresh", "--skip-preview", "--expect-no-changes", ...PULUMI_ARGS], env);
                must("pulumi up --refresh --expect-no-changes", r);
                const sessions = acceptedSessions(lab.dockerHost, nodes, since);
                connections.push(Math.max(...Object.values(sessions)));
                say(`  run ${i}/${runs}: empty program's preview ${(e.ms / 1000).toFixed(1)} s, no-op preview ${(p.ms / 1000).toFixed(1)} s, ` +
                    `no-op up --refresh ${(r.ms / 1000).toFixed(1)} s; SSH sessions accepted per node ${JSON.stringify(sessions)}`);
                preview.ours.push(p.ms / 1000); preview.base.push(e.ms / 1000);
                refresh.ours.push(r.ms / 1000); refresh.base.push(p.ms / 1000);
            }
        } finally {
            fs.rmSync(empty.dir, { recursive: true, force: true });
        }
    });
    const pr = figure(preview.ours.map((x, i) => x / preview.base[i])), rr = figure(refresh.ours.map((x, i) => x / refresh.base[i]));
    const maxConn = Math.max(...connections);
    const missed: string[] = [];
    if (pr.median > TARGET_PREVIEW) missed.push(`no-op preview ratio ${pr.median.toFixed(2)} (target ≤ ${TARGET_PREVIEW})`);
    if (rr.median > TARGET_REFRESH) missed.push(`no-op up --refresh ratio ${rr.median.toFixed(2)} (target ≤ ${TARGET_REFRESH})`);
    if (!(maxConn <= 1)) missed.push(`no-op up --refresh opened up to ${maxConn} SSH sessions on a node (target ≤ 1)`);
    const ok = (r: number, t: number) => (r <= t ? `met (${r.toFixed(2)} ≤ ${t})` : `**MISSED** (${r.toFixed(2)} > ${t})`);
    return {
        lines: [
            table(["Benchmark", "Ours, s", "Reference, s", "Ratio", "Target", "Result"], [
                ["No-op `pulumi preview` (dev stack), against an empty program's preview", fmt(figure(preview.ours), 1), fmt(figure(preview.base), 1), fmt(pr), `≤ ${TARGET_PREVIEW}`, ok(pr.median, TARGET_PREVIEW)],
                [`No-op \`pulumi up --refresh\`, against the no-op preview (SSH sessions per node: at most ${maxConn})`, fmt(figure(refresh.ours), 1), fmt(figure(refresh.base), 1), fmt(rr),
                    `≤ ${TARGET_REFRESH}, ≤ 1 session per node`, maxConn <= 1 ? ok(rr.median, TARGET_REFRESH) : "**MISSED** (sessions)"],
            ]),
        ],
        missed,
    };
}
