/**
 * Lab benchmarks (part of `npm run bench`): the program through the real Pulumi engine against the
 * lab's nodes, side by side with what an administrator does today, in the same run:
 *
 *   (a) cluster from scratch: `pulumi up --stack dev` on nodes all out of the swarm, versus
 *       bench/baseline-manual.sh `up` (the document's manual steps one after another); target
 *       ours/baseline <= 0.7
 *   (b) no-op: `pulumi up --expect-no-changes` on the converged cluster, versus the baseline's
 *       idempotent part (`noop`: membership check, labels, `docker stack deploy` of the same
 *       stacks); target zero changes and ours/baseline <= 1.5
 *   (c) rolling image update: a 2-replica service moved to another image tag, `pulumi up
 *       --skip-preview` (the preview is the administrator's step before) with the tag changed in a
 *       scratch copy of the project's stack config, versus `docker service update
 *       --image` with the same update settings on the same service deployed by `docker stack
 *       deploy`; both timed until both tasks run the new image; target ours/baseline <= 1.2
 *
 *   (d) the provider's own costs (issue 14), on the converged committed dev stack: a no-op `pulumi
 *       preview` against an empty Pulumi program's preview (target <= 2x), and a no-op `pulumi up
 *       --refresh` (the no-op that reads the cluster) against that no-op preview (target <= 1.5x),
 *       with the SSH connections it opened per node (target at most one), counted from each node's
 *       sshd log ("Accepted publickey")
 *
 * The lab is shared: every part takes the lab lock (/tmp/dccn-lab.lock, BENCH_LAB_LOCK) for as
 * long as it needs the lab and leaves it converged to the committed Pulumi.dev.yaml before letting
 * go: once for (a)+(b) (paired: each side's no-op runs on the cluster it built), once for (c).
 * Ratios are taken per run (both sides back to back on the same lab), then median, min and max.
 */
import { ChildProcess, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import * as yaml from "js-yaml";
import { validateStacks, type StackEntry } from "../lib/stacks-config";
import { engineEnv, scratchProject } from "../tools/workspace";
import { expectedServices, stageStack } from "./baseline-stacks";
import { Figure, figure, fmt, ROOT, table } from "./report";

export const LAB_JSON = path.join(ROOT, ".state", "lab", "lab.json");
const BASELINE = path.join(__dirname, "baseline-manual.sh");
const WATCHER = path.join(__dirname, "watch-rollout.sh");
const ROLL_IMAGES = path.join(__dirname, "roll-images.sh");
const LOG_DIR = path.join(ROOT, ".state", "bench");
const STAGE_DIR = path.join(LOG_DIR, "stage");
/** The lock every agent and test run takes around lab work on this machine. */
export const LAB_LOCK = process.env.BENCH_LAB_LOCK || "/tmp/dccn-lab.lock";

export const TARGET_SCRATCH = 0.7;
export const TARGET_NOOP = 1.5;
export const TARGET_ROLLING = 1.2;
export const TARGET_PREVIEW = 2;
export const TARGET_REFRESH = 1.5;

/**
 * Keys of Pulumi.dev.yaml whose end state the baseline reproduces (or that create nothing on the
 * cluster; the engine provisioning stays on the nodes across runs, so both sides start from it).
 * The lab benchmarks run the dev stack with the committed Pulumi.dev.yaml cut down to these keys
 * (benchConfig): another key (the private registry) makes `pulumi up` build something the baseline
 * does not, so it is left out of both sides and named in the results. To bench it, add its manual
 * steps to baseline-manual.sh (`up`, `noop`) and its check to verifyEndState, then list the key here.
 */
const BASELINE_KEYS = ["environment", "ssh", "sshPrivateKey", "engine", "nodes", "stacks", "swarm"].map((k) => `dccn-swarm:${k}`);

/**
 * The rolling-update service: a lab image under two tags in a registry on every node, 2 replicas,
 * the webapp's update settings.
 */
const ROLL_REGISTRY = { port: 5099, repo: "bench/busybox", tagNames: ["a", "b"] };
export const ROLL = {
    /** Pushed as both tags (same content: a new reference is enough for the engine to roll the tasks). */
    baseImage: "dccn-lab/busybox:1",
    tags: ROLL_REGISTRY.tagNames.map((t) => `localhost:${ROLL_REGISTRY.port}/${ROLL_REGISTRY.repo}:${t}`),
    replicas: 2,
    /** As stacks/webapp's web service (parallelism 1, delay 5s), with the engine's defaults written out. */
    update: { parallelism: 1, delay: "5s", order: "stop-first", monitor: "5s", "failure-action": "pause" } as Record<string, string | number>,
    oursStack: "benchroll",
    baselineStack: "benchrollcli",
    service: "app",
};

export function rollCompose(image: string): string {
    const u = ROLL.update;
    return [
        "# bench/lab.ts: the rolling image update benchmark's service (written into a scratch copy of the project)",
        'version: "3.7"',
        "services:",
        `  ${ROLL.service}:`,
        `    image: ${image}`,
        // Stops on SIGTERM at once (a shell as PID 1 ignores it unless trapped, and would wait out the grace period).
        `    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1 & wait $$!; done"]`,
        "    deploy:",
        `      replicas: ${ROLL.replicas}`,
        "      update_config:",
        `        parallelism: ${u.parallelism}`,
        `        delay: ${u.delay}`,
        `        order: ${u.order}`,
        `        monitor: ${u.monitor}`,
        `        failure_action: ${u["failure-action"]}`,
        "",
    ].join("\n");
}

interface LabJson {
    /** The lab's own engine, where the node containers run (their logs hold each node's sshd log). */
    dockerHost: string;
    sshUser: string;
    sshPrivateKeyFile: string;
    knownHostsFile: string;
    nodes: { name: string; address: string }[];
}

export interface DevNode {
    hostname: string;
    address: string;
    role: "manager" | "worker";
    availability: string;
    labels: Record<string, string>;
}

interface Timed {
    ms: number;
    /** Epoch milliseconds at spawn and at exit. */
    startEpochMs: number;
    endEpochMs: number;
    status: number | null;
    log: string;
}

type Say = (s: string) => void;

function readDevConfig(dir = ROOT): Record<string, unknown> {
    const doc = yaml.load(fs.readFileSync(path.join(dir, "Pulumi.dev.yaml"), "utf8")) as { config?: Record<string, unknown> };
    return doc.config ?? {};
}

/** Stack overrides bench/baseline-stacks.ts applies to the baseline's compose file. */
const BASELINE_OVERRIDES = ["registryPrefix", "registryMap", "images", "bindPaths", "replicas", "ports", "externalSecrets"];

/**
 * The dev config both sides of the lab benchmarks build: Pulumi.dev.yaml without the keys the
 * manual baseline does not reproduce (BASELINE_KEYS) and without the stacks whose overrides it does
 * not apply (BASELINE_OVERRIDES; e.g. host-mode ports, dnsrr, created bind paths, generated
 * secrets); `leftOut` names each, for the results.
 */
export function benchConfig(config: Record<string, unknown>): { config: Record<string, unknown>; leftOut: string[] } {
    const stacks = (config["dccn-swarm:stacks"] ?? []) as Record<string, any>[];
    const stacksLeftOut: string[] = [];
    const kept = Array.isArray(stacks) ? stacks.filter((s) => {
        const extra = Object.keys(s?.overrides ?? {}).filter((k) => !BASELINE_OVERRIDES.includes(k));
        if (extra.length) stacksLeftOut.push(`stack ${s.name} (overrides ${extra.join(", ")}: the baseline's compose file has no equivalent)`);
        return extra.length === 0;
    }) : undefined;
    // The secret config values the kept stacks' external secrets come from (the baseline uses them too).
    const secretKeys = (kept ?? []).flatMap((s) => (Object.values(s?.overrides?.externalSecrets ?? {}) as any[])
        .filter((v) => typeof v?.config === "string").map((v) => `dccn-swarm:${v.config}`));
    const leftOut: string[] = [];
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(config)) {
        if (BASELINE_KEYS.includes(k) || secretKeys.includes(k)) out[k] = v;
        else leftOut.push(`\`${k}\` (the baseline does not build it)`);
    }
    if (kept) out["dccn-swarm:stacks"] = kept;
    return { config: out, leftOut: [...leftOut, ...stacksLeftOut] };
}

/**
 * A scratch copy of the project whose Pulumi.dev.yaml is benchConfig's (the passphrase salt kept:
 * the dev stack's state is shared with the project's).
 */
function benchProject(config: Record<string, unknown>): string {
    const dir = scratchProject();
    const file = path.join(dir, "Pulumi.dev.yaml");
    const salt = (fs.readFileSync(file, "utf8").match(/^encryptionsalt:.*$/m) ?? [""])[0];
    fs.writeFileSync(file, "# bench/lab.ts: the committed dev config cut down to what the manual baseline builds\n" +
        yaml.dump({ config }, { lineWidth: -1 }) + (salt ? `${salt}\n` : ""));
    return dir;
}

/** The nodes of Pulumi.dev.yaml: the end state both sides must reach. */
export function devNodes(config = readDevConfig()): DevNode[] {
    const raw = (config["dccn-swarm:nodes"] ?? []) as Record<string, any>[];
    return raw.map((n) => ({
        hostname: String(n.hostname),
        address: String(n.address),
        role: n.role === "manager" ? "manager" : "worker",
        availability: n.availability ? String(n.availability) : "active",
        labels: Object.fromEntries(Object.entries(n.labels ?? {}).map(([k, v]) => [k, String(v)])),
    }));
}

/** The stacks of Pulumi.dev.yaml (`dccn-swarm:stacks`), validated as the program validates them. */
export function devStacks(config = readDevConfig()): StackEntry[] {
    return validateStacks(config["dccn-swarm:stacks"], "Pulumi.dev.yaml");
}

/** `--node`/`--stack` arguments of bench/baseline-manual.sh. */
export function baselineArgs(lab: LabJson, nodes: DevNode[], stacks: { name: string; dir: string }[]): string[] {
    const args = ["--key", lab.sshPrivateKeyFile, "--known-hosts", lab.knownHostsFile, "--user", lab.sshUser || "root"];
    for (const n of nodes) {
        const labels = Object.entries(n.labels).map(([k, v]) => {
            if (k.includes(",") || v.includes(",")) throw new Error(`label ${k}=${v} of ${n.hostname}: the baseline script takes no commas`);
            return `${k}=${v}`;
        });
        args.push("--node", [n.hostname, n.address, n.role, n.availability, ...labels].join(","));
    }
    for (const s of stacks) args.push("--stack", `${s.name}=${s.dir}`);
    return args;
}

/** Run a command, timing it from start to exit; its output goes to a log file under .state/bench. */
function timed(label: string, cmd: string, args: string[], env: NodeJS.ProcessEnv, opts: { cwd?: string; timeoutMs?: number } = {}): Promise<Timed> {
    fs.mkdirSync(LOG_DIR, { recursive: true });
    const log = path.join(LOG_DIR, `${new Date().toISOString().replace(/[:.]/g, "-")}-${label}.log`);
    const fd = fs.openSync(log, "w");
    return new Promise((resolve, reject) => {
        const startEpochMs = Date.now();
        const start = process.hrtime.bigint();
        const child = spawn(cmd, args, { cwd: opts.cwd ?? ROOT, env, stdio: ["ignore", fd, fd] });
        const timer = setTimeout(() => child.kill("SIGTERM"), opts.timeoutMs ?? 20 * 60_000);
        child.on("error", (e) => { clearTimeout(timer); fs.closeSync(fd); reject(new Error(`${cmd}: ${e.message}`)); });
        child.on("exit", (status) => {
            clearTimeout(timer);
            fs.closeSync(fd);
            resolve({ ms: Number(process.hrtime.bigint() - start) / 1e6, startEpochMs, endEpochMs: Date.now(), status, log });
        });
    });
}

function logTail(file: string, lines = 15): string {
    try {
        return fs.readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).map((l) => `    ${l}`).join("\n");
    } catch {
        return "";
    }
}

function mustSucceed(what: string, r: Timed): Timed {
    if (r.status !== 0) throw new Error(`${what} failed (exit ${r.status}); log ${r.log}:\n${logTail(r.log)}`);
    return r;
}

function sshArgs(lab: LabJson, address: string): string[] {
    return ["-i", lab.sshPrivateKeyFile, "-o", `UserKnownHostsFile=${lab.knownHostsFile}`,
        "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR",
        `${lab.sshUser || "root"}@${address}`];
}

function ssh(lab: LabJson, address: string, cmd: string): string {
    const r = spawnSync("ssh", [...sshArgs(lab, address), cmd], { encoding: "utf8", timeout: 120_000 });
    if (r.status !== 0) throw new Error(`ssh ${address} ${cmd}: exit ${r.status}: ${r.stderr}`);
    return r.stdout;
}

/** A script file run on a node (`bash -s -- ARGS`, the script on standard input). */
function sshScript(lab: LabJson, address: string, script: string, args: string[]): string {
    const r = spawnSync("ssh", [...sshArgs(lab, address), "bash", "-s", "--", ...args],
        { input: fs.readFileSync(script), encoding: "utf8", timeout: 120_000 });
    if (r.status !== 0) throw new Error(`ssh ${address} ${path.basename(script)} ${args.join(" ")}: exit ${r.status}: ${r.stderr}`);
    return r.stdout;
}

/**
 * Hold the lab lock while `fn` runs: `flock LOCK` around a process that waits for its standard
 * input to close (so the lock goes with this process, however it ends).
 */
export async function withLabLock<T>(what: string, say: Say, fn: () => Promise<T>): Promise<T> {
    const holder = spawn("flock", [LAB_LOCK, "-c", "echo locked; exec cat >/dev/null"], { stdio: ["pipe", "pipe", "pipe"] });
    let stderr = "";
    holder.stderr.on("data", (d) => (stderr += d));
    await new Promise<void>((resolve, reject) => {
        const waiting = setTimeout(() => say(`  waiting for the lab lock ${LAB_LOCK} (another agent or test has the lab) for: ${what}`), 1000);
        let out = "";
        holder.stdout.on("data", (d) => {
            out += d;
            if (out.includes("locked")) { clearTimeout(waiting); resolve(); }
        });
        holder.on("error", (e) => { clearTimeout(waiting); reject(new Error(`flock ${LAB_LOCK}: ${e.message} (flock comes with util-linux)`)); });
        holder.on("exit", (code) => { clearTimeout(waiting); reject(new Error(`flock ${LAB_LOCK} exited ${code}: ${stderr}`)); });
    });
    const t = Date.now();
    try {
        return await fn();
    } finally {
        await release(holder);
        say(`  lab lock released after ${((Date.now() - t) / 1000).toFixed(0)} s (${what})`);
    }
}

function release(holder: ChildProcess): Promise<void> {
    return new Promise((resolve) => {
        if (holder.exitCode !== null) return resolve();
        holder.removeAllListeners("exit");
        holder.on("exit", () => resolve());
        holder.stdin!.end();
    });
}

/**
 * Both sides must reach the same end state: every configured node Ready, with its role, availability
 * and labels; every service of every stack running all its replicas on the configured image.
 */
export function verifyEndState(lab: LabJson, nodes: DevNode[], stacks: { name: string; dir: string }[]): void {
    const boot = nodes.find((n) => n.role === "manager");
    if (!boot) throw new Error("Pulumi.dev.yaml has no manager");
    const out = ssh(lab, boot.address,
        "docker node inspect --format '{{.Description.Hostname}}|{{.Status.State}}|{{.Spec.Role}}|{{.Spec.Availability}}|{{json .Spec.Labels}}' $(docker node ls -q)");
    const seen = new Map(out.trim().split("\n").filter(Boolean).map((l) => {
        const [host, state, role, availability, labels] = l.split("|");
        return [host, { state, role, availability, labels: JSON.parse(labels || "{}") as Record<string, string> }];
    }));
    const problems: string[] = [];
    for (const n of nodes) {
        const s = seen.get(n.hostname);
        if (!s) { problems.push(`${n.hostname} not in the swarm`); continue; }
        if (s.state !== "ready") problems.push(`${n.hostname} is ${s.state}`);
        if (s.role !== n.role) problems.push(`${n.hostname} is a ${s.role}, configured ${n.role}`);
        if (s.availability !== n.availability) problems.push(`${n.hostname} is ${s.availability}, configured ${n.availability}`);
        for (const [k, v] of Object.entries(n.labels)) {
            if (s.labels[k] !== v) problems.push(`${n.hostname} label ${k}=${s.labels[k] ?? "(unset)"}, configured ${v}`);
        }
    }
    for (const st of stacks) {
        const rows = ssh(lab, boot.address, `docker stack services --format '{{.Name}}|{{.Replicas}}|{{.Image}}' ${st.name}`)
            .trim().split("\n").filter(Boolean).map((l) => l.split("|"));
        for (const [svc, image] of Object.entries(expectedServices(st.name, st.dir))) {
            const row = rows.find((r) => r[0] === svc);
            if (!row) { problems.push(`service ${svc} missing`); continue; }
            const m = /^(\d+)\/(\d+)/.exec(row[1]);
            if (!m || m[1] !== m[2]) problems.push(`service ${svc} runs ${row[1]} replicas`);
            // The program may pin the reference to its digest (`resolveImage: changed`).
            if (row[2] !== image && !row[2].startsWith(`${image}@`)) problems.push(`service ${svc} runs ${row[2]}, configured ${image}`);
        }
    }
    if (problems.length) throw new Error(`end state differs from Pulumi.dev.yaml: ${problems.join("; ")}`);
}

function assertOutOfSwarm(lab: LabJson, nodes: DevNode[]): void {
    for (const n of nodes) {
        const state = ssh(lab, n.address, "docker info --format '{{.Swarm.LocalNodeState}}'").trim();
        if (state !== "inactive") throw new Error(`${n.hostname} is still in a swarm (${state}) after the reset`);
    }
}

/** What the lab benchmarks run with, after prepare(). */
interface Ctx {
    lab: LabJson;
    env: NodeJS.ProcessEnv;
    nodes: DevNode[];
    stacks: StackEntry[];
    say: Say;
    /** The scratch project (benchConfig's Pulumi.dev.yaml) the cluster-from-scratch and no-op runs use. */
    dir: string;
    /** What benchConfig left out of the committed dev config. */
    leftOut: string[];
}

const PULUMI_ARGS = ["--stack", "dev", "--yes", "--non-interactive", "--color", "never", ...(process.env.BENCH_TRACE ? ["-v=7", "--logtostderr", "--logflow"] : [])];

/**
 * What the lab benchmarks need, brought up as `npm run dev` does (each step does nothing when it
 * is already there): system packages, the Pulumi toolchain, the lab (`lab:up` under the lab lock
 * when `lab:status` finds it down), the dev stack.
 */
async function prepare(say: Say): Promise<Ctx> {
    const { config, leftOut } = benchConfig(readDevConfig());
    const nodes = devNodes(config);
    const stacks = devStacks(config);
    if (leftOut.length) say(`lab: left out of the cluster-from-scratch and no-op benchmarks: ${leftOut.join("; ")}`);
    const step = async (what: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env) => {
        const r = await timed(`prepare-${what.replace(/\W+/g, "-")}`, cmd, args, env);
        if (r.status !== 0) {
            throw new Error(`the lab benchmarks need ${what}: \`${[cmd, ...args].join(" ")}\` failed (exit ${r.status}); log ${r.log}:\n${logTail(r.log)}`);
        }
    };
    say("lab: prerequisites (tools/prereqs.sh), the Pulumi toolchain (tools/toolchain.sh), the lab (lab:up), the dev stack");
    await step("the system packages", "bash", ["tools/prereqs.sh"]);
    await step("the Pulumi toolchain", "bash", ["tools/toolchain.sh", "--allow-missing-plugins"]);
    const env = engineEnv();
    await step("the Pulumi CLI", "pulumi", ["version"], env);
    const labCli = ["--import", "tsx", path.join(ROOT, "lab", "cli.ts")];
    // A lab that is up is used as it is (lab:up would reload its images if another checkout built them differently).
    if ((await timed("prepare-lab-status", process.execPath, [...labCli, "status"], env)).status !== 0) {
        await withLabLock("lab:up", say, () => step("the lab", process.execPath, [...labCli, "up"], env));
    }
    await step("the dev stack", "bash", ["tools/stack-init.sh", "dev"], env);
    if (!fs.existsSync(LAB_JSON)) throw new Error(`${LAB_JSON} not found after lab:up`);
    const lab = JSON.parse(fs.readFileSync(LAB_JSON, "utf8")) as LabJson;
    for (const n of nodes) ssh(lab, n.address, "true");
    return { lab, env, nodes, stacks, say, dir: benchProject(config), leftOut };
}

/**
 * Every node out of the swarm and nothing in the dev stack's state: `pulumi destroy` (the program's
 * teardown order), then `docker swarm leave --force` on every node. When the destroy fails on a
 * state another run left behind (a rebuilt lab, a drill's roles), the nodes leave first and
 * `pulumi destroy --refresh` follows (the refresh drops what the swarm no longer has).
 */
async function resetLab(c: Ctx, base: string[], label: string, cwd = ROOT): Promise<void> {
    const d = await timed(`${label}-destroy`, "pulumi", ["destroy", "--skip-preview", ...PULUMI_ARGS], c.env, { cwd });
    mustSucceed("baseline reset", await timed(`${label}-leave`, "bash", [BASELINE, "reset", ...base], c.env));
    if (d.status !== 0) {
        c.say(`  pulumi destroy failed on the state it found (log ${d.log}); nodes out of the swarm, then pulumi destroy --refresh`);
        mustSucceed("pulumi destroy --refresh", await timed(`${label}-destroy-refresh`, "pulumi", ["destroy", "--refresh", "--skip-preview", ...PULUMI_ARGS], c.env, { cwd }));
    }
    assertOutOfSwarm(c.lab, c.nodes);
}

/** Back to the committed Pulumi.dev.yaml, whatever the lab is in: refresh and up, else a reset and up. */
async function restoreLab(c: Ctx, reset: () => Promise<void>): Promise<void> {
    const up = await timed("restore-up", "pulumi", ["up", "--refresh", "--skip-preview", ...PULUMI_ARGS], c.env);
    if (up.status === 0) return;
    c.say(`  pulumi up --refresh failed (log ${up.log}); a reset, then pulumi up`);
    await reset();
    mustSucceed("pulumi up (restore)", await timed("restore-up-after-reset", "pulumi", ["up", "--skip-preview", ...PULUMI_ARGS], c.env));
}

interface Side { ours: number[]; baseline: number[]; ratio: number[] }
const side = (): Side => ({ ours: [], baseline: [], ratio: [] });
function add(s: Side, ours: number, baseline: number): void {
    s.ours.push(ours);
    s.baseline.push(baseline);
    s.ratio.push(ours / baseline);
}

/** Where a `pulumi up` spent its time, from its log: the update phase and each service's create. */
interface Phases {
    totalS: number;
    /** Pulumi's `Duration:` (the update after the preview). */
    updateS: number;
    /** SwarmService name -> seconds its create (or update) took, as Pulumi prints them. */
    services: Record<string, number>;
}

export function phasesOf(r: { ms: number; log: string }): Phases {
    const text = fs.existsSync(r.log) ? fs.readFileSync(r.log, "utf8") : "";
    const d = /^Duration: (?:(\d+)m)?(\d+)s$/m.exec(text);
    const services: Record<string, number> = {};
    for (const m of text.matchAll(/SwarmService (\S+) (?:created|updated) \((\d+(?:\.\d+)?)s\)/g)) services[m[1]] = Number(m[2]);
    return { totalS: r.ms / 1000, updateS: d ? Number(d[1] ?? 0) * 60 + Number(d[2]) : NaN, services };
}

function phaseNote(p: Phases[]): string {
    const before = figure(p.map((x) => x.totalS - x.updateS));
    const names = [...new Set(p.flatMap((x) => Object.keys(x.services)))];
    const svc = names.map((n) => `${n} ${fmt(figure(p.map((x) => x.services[n]).filter((v) => v !== undefined)), 0)} s`);
    return `start-up and preview ${fmt(before, 1)} s` + (svc.length ? `; services (Pulumi's per-resource time): ${svc.join(", ")}` : "");
}

/** The dev stack's secret config value `dccn-swarm:KEY`, decrypted by the Pulumi CLI, for the baseline's `docker secret create`. */
function devConfigValue(env: NodeJS.ProcessEnv, key: string): string {
    const r = spawnSync("pulumi", ["config", "get", "--stack", "dev", `dccn-swarm:${key}`], { cwd: ROOT, env, encoding: "utf8" });
    if (r.status !== 0) throw new Error(`the baseline needs dccn-swarm:${key}: \`pulumi config get --stack dev dccn-swarm:${key}\` failed: ${r.stderr.trim()}`);
    return r.stdout.replace(/\n$/, "");
}

/** (a) cluster from scratch and (b) no-op, one locked section per run. */
async function scratchAndNoop(c: Ctx, runs: number): Promise<{ scratch: Side; noop: Side; noopChanges: number; phases: Phases[]; noopPhases: Phases[] }> {
    const staged = c.stacks.map((e) => ({ name: e.name, dir: stageStack(e, ROOT, STAGE_DIR, (key) => devConfigValue(c.env, key)) }));
    const base = baselineArgs(c.lab, c.nodes, staged);
    const reset = () => resetLab(c, base, "reset", c.dir);
    const scratch = side(), noop = side();
    const phases: Phases[] = [], noopPhases: Phases[] = [];
    let noopChanges = 0;
    await withLabLock(`cluster from scratch and no-op, ${runs} runs`, c.say, async () => {
        for (let i = 1; i <= runs; i++) {
            try {
                c.say(`lab run ${i}/${runs}: reset (pulumi destroy, swarm leave), baseline up`);
                await reset();
                mustSucceed("baseline stage", await timed("baseline-stage", "bash", [BASELINE, "stage", ...base], c.env));
                const b = mustSucceed("baseline up", await timed(`baseline-up-${i}`, "bash", [BASELINE, "up", ...base], c.env));
                verifyEndState(c.lab, c.nodes, staged);
                c.say(`  baseline up ${(b.ms / 1000).toFixed(1)} s; baseline no-op`);
                const bn = mustSucceed("baseline noop", await timed(`baseline-noop-${i}`, "bash", [BASELINE, "noop", ...base], c.env));
                c.say(`  baseline no-op ${(bn.ms / 1000).toFixed(1)} s; reset, pulumi up`);
                await reset();
                const o = mustSucceed("pulumi up", await timed(`pulumi-up-${i}`, "pulumi", ["up", ...PULUMI_ARGS], c.env, { cwd: c.dir }));
                verifyEndState(c.lab, c.nodes, staged);
                c.say(`  pulumi up ${(o.ms / 1000).toFixed(1)} s; pulumi up with nothing to change`);
                const on = await timed(`pulumi-noop-${i}`, "pulumi", ["up", "--expect-no-changes", ...PULUMI_ARGS], c.env, { cwd: c.dir });
                if (on.status !== 0) {
                    noopChanges++;
                    c.say(`  pulumi up --expect-no-changes exited ${on.status} (changes found?); see ${on.log}`);
                }
                c.say(`  pulumi no-op ${(on.ms / 1000).toFixed(1)} s`);
                phases.push(phasesOf(o));
                noopPhases.push(phasesOf(on));
                add(scratch, o.ms / 1000, b.ms / 1000);
                add(noop, on.ms / 1000, bn.ms / 1000);
            } catch (e) {
                c.say(`lab run ${i} failed: ${(e as Error).message}\nrestoring the lab to the committed Pulumi.dev.yaml`);
                await restoreLab(c, reset).catch((r) => c.say(`restoring failed too: ${(r as Error).message}`));
                throw e;
            }
        }
        c.say("back to the committed Pulumi.dev.yaml (pulumi up --refresh)");
        await restoreLab(c, reset);
    });
    return { scratch, noop, noopChanges, phases, noopPhases };
}

/** The rolling-update stack entry in a project's Pulumi.dev.yaml, on `image`. */
function setRollEntry(dir: string, image: string): void {
    const file = path.join(dir, "Pulumi.dev.yaml");
    const doc = yaml.load(fs.readFileSync(file, "utf8")) as { config: Record<string, any> };
    const stacks: any[] = (doc.config["dccn-swarm:stacks"] ??= []);
    const entry = {
        name: ROLL.oursStack,
        file: `stacks/${ROLL.oursStack}/docker-compose.yml`,
        overrides: { images: { [ROLL.service]: image } },
    };
    const i = stacks.findIndex((s) => s.name === ROLL.oursStack);
    if (i >= 0) stacks[i] = entry; else stacks.push(entry);
    fs.writeFileSync(file, yaml.dump(doc, { lineWidth: -1 }));
}

/** Parses an engine timestamp (RFC 3339 with nanoseconds) to epoch milliseconds. */
function engineTime(s: string): number {
    const t = Date.parse(s.trim().replace(/(\.\d{3})\d+/, "$1"));
    if (Number.isNaN(t)) throw new Error(`unexpected engine timestamp ${JSON.stringify(s)}`);
    return t;
}

interface Rollout {
    /** From the command's start until both tasks ran the new image (the watcher on the manager). */
    untilRunningS: number;
    /** From the command's start until it returned. */
    commandS: number;
    /** From the command's start until the engine started the update (UpdateStatus.StartedAt). */
    leadS: number;
}

/**
 * (c) Rolling image update. Lab clocks: the nodes are containers on this machine, so the
 * watcher's `date` on the manager and this process's clock are the same clock.
 */
async function rolling(c: Ctx, runs: number): Promise<{ until: Side; command: Side; lead: Side }> {
    const boot = c.nodes.find((n) => n.role === "manager")!;
    const until = side(), command = side(), lead = side();
    const [tagA, tagB] = ROLL.tags;
    await withLabLock(`rolling image update, ${runs} runs`, c.say, async () => {
        const dir = scratchProject();
        const composeDir = path.join(dir, "stacks", ROLL.oursStack);
        fs.mkdirSync(composeDir, { recursive: true });
        fs.writeFileSync(path.join(composeDir, "docker-compose.yml"), rollCompose(tagA));
        const baseEntry: StackEntry = validateStacks([{
            name: ROLL.baselineStack, file: path.join(composeDir, "docker-compose.yml"),
            overrides: { images: { [ROLL.service]: tagA } },
        }], "bench/lab.ts")[0];
        const staged = { name: ROLL.baselineStack, dir: stageStack(baseEntry, dir, path.join(STAGE_DIR, "roll")) };
        const base = baselineArgs(c.lab, c.nodes, [staged]);
        const ours = `${ROLL.oursStack}_${ROLL.service}`, theirs = `${ROLL.baselineStack}_${ROLL.service}`;
        const images = (mode: "up" | "down") => {
            for (const n of c.nodes) {
                sshScript(c.lab, n.address, ROLL_IMAGES, [mode, ROLL.baseImage, String(ROLL_REGISTRY.port), ROLL_REGISTRY.repo, ...ROLL_REGISTRY.tagNames]);
            }
        };
        const reset = () => resetLab(c, base, "roll-reset");
        try {
            c.say(`rolling update: a registry on every node with ${ROLL.baseImage} as ${ROLL.tags.join(" and ")}, both services deployed on ${tagA}`);
            images("up");
            setRollEntry(dir, tagA);
            const setup = await timed("roll-setup-up", "pulumi", ["up", "--refresh", "--skip-preview", ...PULUMI_ARGS], c.env, { cwd: dir });
            if (setup.status !== 0) {
                c.say(`  pulumi up --refresh failed on the state it found (log ${setup.log}); a reset, then pulumi up`);
                await reset();
                mustSucceed("pulumi up (rolling update set-up)", await timed("roll-setup-up-after-reset", "pulumi", ["up", "--skip-preview", ...PULUMI_ARGS], c.env, { cwd: dir }));
            }
            mustSucceed("baseline stage", await timed("roll-stage", "bash", [BASELINE, "stage", ...base], c.env));
            mustSucceed("baseline deploy", await timed("roll-deploy", "bash", [BASELINE, "deploy", ...base], c.env));
            for (const svc of [ours, theirs]) await watch(c, boot.address, svc, tagA, 120).done;

            for (let i = 1; i <= runs; i++) {
                const to = i % 2 ? tagB : tagA;
                const runOurs = async (): Promise<Rollout> => {
                    setRollEntry(dir, to);
                    const w = watch(c, boot.address, ours, to);
                    await w.ready;
                    // The change as it is applied once its preview was read: the preview is the administrator's own
                    // step before (part d measures it); Pulumi's Automation API runs `up` the same way.
                    const r = mustSucceed("pulumi up (rolling update)", await timed(`roll-pulumi-${i}`, "pulumi", ["up", "--skip-preview", ...PULUMI_ARGS], c.env, { cwd: dir }));
                    const done = await w.done;
                    return rollout(c, boot.address, ours, r.startEpochMs, done, r.endEpochMs);
                };
                const runBaseline = async (): Promise<Rollout> => {
                    const w = watch(c, boot.address, theirs, to);
                    await w.ready;
                    const r = mustSucceed("docker service update --image", await timed(`roll-baseline-${i}`, "bash",
                        [BASELINE, "update-image", ...base, "--service", theirs, "--image", to,
                            ...Object.entries(ROLL.update).flatMap(([k, v]) => ["--update", `${k}=${v}`])], c.env));
                    const done = await w.done;
                    const log = fs.readFileSync(r.log, "utf8");
                    const start = /^start (\d+\.\d+)$/m.exec(log), end = /^end (\d+\.\d+)$/m.exec(log);
                    if (!start || !end) throw new Error(`baseline update-image printed no start/end times; log ${r.log}`);
                    return rollout(c, boot.address, theirs, Number(start[1]) * 1000, done, Number(end[1]) * 1000);
                };
                // Alternate which side goes first, so a drift in the machine's load spreads over both.
                let o: Rollout, b: Rollout;
                if (i % 2) { o = await runOurs(); b = await runBaseline(); } else { b = await runBaseline(); o = await runOurs(); }
                c.say(`  rolling update run ${i}/${runs} to ${to}: until both tasks run it: ours ${o.untilRunningS.toFixed(1)} s, baseline ${b.untilRunningS.toFixed(1)} s; ` +
                    `command returned: ours ${o.commandS.toFixed(1)} s, baseline ${b.commandS.toFixed(1)} s; engine update started after: ours ${o.leadS.toFixed(1)} s, baseline ${b.leadS.toFixed(1)} s`);
                add(until, o.untilRunningS, b.untilRunningS);
                add(command, o.commandS, b.commandS);
                add(lead, o.leadS, b.leadS);
            }
        } finally {
            c.say("rolling update: removing both services (docker stack rm; pulumi up --refresh with the committed Pulumi.dev.yaml) and the registries");
            try {
                mustSucceed("baseline rm", await timed("roll-rm", "bash", [BASELINE, "rm", ...base], c.env));
                await restoreLab(c, reset);
                images("down");
            } catch (e) {
                c.say(`cleaning up after the rolling update failed: ${(e as Error).message}`);
            }
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });
    return { until, command, lead };
}

function rollout(c: Ctx, address: string, service: string, startMs: number, doneMs: number, endMs: number): Rollout {
    const started = ssh(c.lab, address, `docker service inspect --format '{{.UpdateStatus.StartedAt}}' ${service}`);
    return { untilRunningS: (doneMs - startMs) / 1000, commandS: (endMs - startMs) / 1000, leadS: (engineTime(started) - startMs) / 1000 };
}

/** bench/watch-rollout.sh on a manager: `ready` once it watches, `done` (epoch ms) at the end condition. */
function watch(c: Ctx, address: string, service: string, image: string, timeoutS = 300): { ready: Promise<void>; done: Promise<number> } {
    const child = spawn("ssh", [...sshArgs(c.lab, address), "bash", "-s", "--", service, image, String(ROLL.replicas), String(timeoutS)],
        { stdio: ["pipe", "pipe", "pipe"] });
    child.stdin.end(fs.readFileSync(WATCHER));
    let out = "", err = "";
    child.stderr.on("data", (d) => (err += d));
    let onReady: () => void = () => undefined;
    const ready = new Promise<void>((r) => (onReady = r));
    child.stdout.on("data", (d) => {
        out += d;
        if (out.includes("ready\n")) onReady();
    });
    const done = new Promise<number>((resolve, reject) => {
        child.on("error", (e) => reject(e));
        child.on("exit", (code) => {
            const m = /^done (\d+\.\d+)$/m.exec(out);
            if (code === 0 && m) resolve(Number(m[1]) * 1000);
            else reject(new Error(`${service} did not run ${ROLL.replicas} tasks on ${image} within ${timeoutS} s (watcher exit ${code}): ${out}${err}`));
        });
    });
    // A watcher that fails before `ready` must not leave the caller waiting.
    done.catch(() => onReady());
    return { ready, done };
}

/** An empty Pulumi program (Node.js, nothing compiled) with a stack in its own file backend. */
function emptyProgram(): { dir: string; env: NodeJS.ProcessEnv } {
    const dir = fs.mkdtempSync(path.join(LOG_DIR, "empty-program-"));
    fs.writeFileSync(path.join(dir, "Pulumi.yaml"), "name: bench-empty\nruntime:\n  name: nodejs\n  options:\n    typescript: false\n");
    fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name: "bench-empty", main: "index.js" }));
    fs.writeFileSync(path.join(dir, "index.js"), "// The baseline: a Pulumi program that declares nothing.\n");
    fs.symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"));
    fs.mkdirSync(path.join(dir, "backend"));
    return { dir, env: { PULUMI_BACKEND_URL: `file://${path.join(dir, "backend")}`, PULUMI_CONFIG_PASSPHRASE: "bench-empty-program" } };
}

/** How many SSH sessions each node's sshd accepted since `sinceIso` (its log, the node container's output). */
function acceptedSessions(c: Ctx, sinceIso: string): Record<string, number> {
    const out: Record<string, number> = {};
    for (const n of c.nodes) {
        const r = spawnSync("docker", ["-H", c.lab.dockerHost, "logs", "--since", sinceIso, n.hostname], { encoding: "utf8", timeout: 60_000 });
        if (r.status !== 0) throw new Error(`docker logs ${n.hostname}: ${r.stderr}`);
        out[n.hostname] = `${r.stdout}${r.stderr}`.split("\n").filter((l) => /sshd.*Accepted publickey|Accepted publickey/.test(l)).length;
    }
    return out;
}

/** (d) The provider's own costs: no-op preview against an empty program, no-op up --refresh against the no-op preview. */
async function providerCosts(c: Ctx, runs: number): Promise<{ preview: Side; refresh: Side; connections: number[] }> {
    const preview = side(), refresh = side();
    const connections: number[] = [];
    await withLabLock(`no-op preview and no-op up --refresh, ${runs} runs`, c.say, async () => {
        c.say("provider costs: the committed dev stack converged (pulumi up --refresh)");
        mustSucceed("pulumi up --refresh (converge)", await timed("provider-converge", "pulumi", ["up", "--refresh", "--skip-preview", ...PULUMI_ARGS], c.env));
        const empty = emptyProgram();
        const emptyEnv = { ...c.env, ...empty.env };
        mustSucceed("pulumi stack init (empty program)", await timed("empty-init", "pulumi", ["stack", "init", "empty", "--non-interactive"], emptyEnv, { cwd: empty.dir }));
        try {
            for (let i = 1; i <= runs; i++) {
                const e = mustSucceed("pulumi preview (empty program)", await timed(`empty-preview-${i}`, "pulumi",
                    ["preview", "--stack", "empty", "--non-interactive", "--color", "never"], emptyEnv, { cwd: empty.dir }));
                const p = mustSucceed("pulumi preview --expect-no-changes", await timed(`noop-preview-${i}`, "pulumi",
                    ["preview", "--expect-no-changes", "--stack", "dev", "--non-interactive", "--color", "never"], c.env));
                const since = new Date(Date.now() - 1000).toISOString();
                const r = mustSucceed("pulumi up --refresh --expect-no-changes", await timed(`noop-refresh-up-${i}`, "pulumi",
                    ["up", "--refresh", "--skip-preview", "--expect-no-changes", ...PULUMI_ARGS], c.env));
                const sessions = acceptedSessions(c, since);
                connections.push(Math.max(...Object.values(sessions)));
                c.say(`  run ${i}/${runs}: empty program's preview ${(e.ms / 1000).toFixed(1)} s, no-op preview ${(p.ms / 1000).toFixed(1)} s, ` +
                    `no-op up --refresh ${(r.ms / 1000).toFixed(1)} s; SSH sessions accepted per node ${JSON.stringify(sessions)}`);
                add(preview, p.ms / 1000, e.ms / 1000);
                add(refresh, r.ms / 1000, p.ms / 1000);
            }
        } finally {
            fs.rmSync(empty.dir, { recursive: true, force: true });
        }
    });
    return { preview, refresh, connections };
}

export type LabPart = "scratch" | "rolling" | "provider";

export interface LabOptions {
    runs: number;
    parts: LabPart[];
}

export interface LabSummary {
    lines: string[];
    missed: string[];
}

function verdict(ratio: Figure, target: number, extra = true): string {
    if (!ratio.runs) return "not measured";
    return ratio.median <= target && extra ? `met (${ratio.median.toFixed(2)} ≤ ${target})` : `**MISSED** (${ratio.median.toFixed(2)} > ${target}${extra ? "" : " or changes found"})`;
}

export async function runLab(opts: LabOptions, say: Say): Promise<LabSummary> {
    const c = await prepare(say);
    const rows: string[][] = [];
    const missed: string[] = [];
    const notes: string[] = [];
    const row = (name: string, s: Side, target: string, result: string, ratio = true) =>
        rows.push([name, fmt(figure(s.ours), 1), fmt(figure(s.baseline), 1), ratio ? fmt(figure(s.ratio)) : "–", target, result]);

    if (opts.parts.includes("scratch")) {
        const { scratch, noop, noopChanges, phases, noopPhases } = await scratchAndNoop(c, opts.runs);
        const sr = figure(scratch.ratio), nr = figure(noop.ratio);
        row(`Cluster from scratch (${c.nodes.length} nodes, ${c.stacks.length} stack${c.stacks.length === 1 ? "" : "s"})`, scratch, `≤ ${TARGET_SCRATCH}`, verdict(sr, TARGET_SCRATCH));
        row(`No-op (${noopChanges ? `${noopChanges} run(s) with changes` : "zero changes"})`, noop, `≤ ${TARGET_NOOP}, zero changes`, verdict(nr, TARGET_NOOP, noopChanges === 0));
        if (sr.median > TARGET_SCRATCH) missed.push(`cluster from scratch ratio ${sr.median.toFixed(2)} (target ≤ ${TARGET_SCRATCH})`);
        if (nr.median > TARGET_NOOP) missed.push(`no-op ratio ${nr.median.toFixed(2)} (target ≤ ${TARGET_NOOP})`);
        if (noopChanges > 0) missed.push(`no-op found changes in ${noopChanges} run(s)`);
        notes.push("Cluster from scratch: ours is `pulumi up --stack dev --yes` (preview included) on nodes all out of the swarm (before each " +
            "side: `pulumi destroy`, `docker swarm leave --force` on every node, checked); the baseline is `bench/baseline-manual.sh up` " +
            "(the document's manual steps one after another over SSH, one connection per node kept open). The end state is checked " +
            "against Pulumi.dev.yaml after each. No-op: `pulumi up --expect-no-changes` versus `baseline-manual.sh noop` (membership " +
            "check, labels re-applied, `docker stack deploy` of the same stacks), each on the cluster its own side built. " +
            (c.leftOut.length ? `Both sides build the committed Pulumi.dev.yaml without ${c.leftOut.join("; ")}. ` : "") +
            `Where ours spent its time (from its logs): from scratch, ${phaseNote(phases)}; no-op, ${phaseNote(noopPhases)}.`);
    }
    if (opts.parts.includes("rolling")) {
        const { until, command, lead } = await rolling(c, opts.runs);
        const ur = figure(until.ratio);
        const u = ROLL.update;
        row(`Rolling image update (${ROLL.replicas} replicas), until both tasks run the new image`, until, `≤ ${TARGET_ROLLING}`, verdict(ur, TARGET_ROLLING));
        row("Rolling image update, until the command returned", command, "", "(for information)");
        row("Rolling image update, until the engine started the update", lead, "", "(for information)", false);
        if (ur.median > TARGET_ROLLING) missed.push(`rolling image update ratio ${ur.median.toFixed(2)} (target ≤ ${TARGET_ROLLING})`);
        const rollout = figure(until.ours.map((x, i) => x - lead.ours[i])), rolloutB = figure(until.baseline.map((x, i) => x - lead.baseline[i]));
        notes.push(`Rolling image update: service \`${ROLL.oursStack}_${ROLL.service}\`, ${ROLL.replicas} replicas of \`${ROLL.baseImage}\` pushed ` +
            `as ${ROLL.tags.map((t) => `\`${t}\``).join(" and ")} to a registry on every node (bench/roll-images.sh), moved from one tag to the ` +
            "other (alternating; the same content, so the pull is a manifest check, as for an image already on the nodes); update settings " +
            `parallelism ${u.parallelism}, delay ${u.delay}, order ${u.order}, monitor ${u.monitor}, failure action ${u["failure-action"]} ` +
            "(stacks/webapp's web service, the engine's defaults written out). Ours: `pulumi up --skip-preview --stack dev --yes` in a " +
            "scratch copy of the project whose Pulumi.dev.yaml has the new tag in the stack's `overrides.images`: the change as it is applied " +
            "after the administrator has read its `pulumi preview` (as Pulumi's Automation API runs `up`); a preview in the same command " +
            "adds about the no-op preview's time of part (d) before the engine starts. Baseline: `docker service " +
            `update --image TAG ${Object.entries(u).map(([k, v]) => `--update-${k} ${v}`).join(" ")}\` on the manager, on ` +
            `the same service deployed by \`docker stack deploy\` as \`${ROLL.baselineStack}\`. Both pin the tag to its registry digest (the ` +
            "program's default `resolveImage: changed`, the CLI's default). Both timed from the command's start until " +
            "a watcher on the manager (bench/watch-rollout.sh, polling `docker service ps` every 0.25 s) sees both tasks Running on the " +
            `new image. The engine's own part (update start to both tasks running) took ${fmt(rollout, 1)} s for ours and ` +
            `${fmt(rolloutB, 1)} s for the baseline; the rest is the time before the engine started the update.`);
    }
    if (opts.parts.includes("provider")) {
        const { preview, refresh, connections } = await providerCosts(c, opts.runs);
        const pr = figure(preview.ratio), rr = figure(refresh.ratio);
        const maxConn = connections.length ? Math.max(...connections) : NaN;
        row("No-op `pulumi preview` (dev stack), against an empty program's preview", preview, `≤ ${TARGET_PREVIEW}`, verdict(pr, TARGET_PREVIEW));
        row(`No-op \`pulumi up --refresh\`, against the no-op preview (SSH sessions per node: at most ${maxConn})`, refresh,
            `≤ ${TARGET_REFRESH}, ≤ 1 session per node`, verdict(rr, TARGET_REFRESH, maxConn <= 1));
        if (pr.median > TARGET_PREVIEW) missed.push(`no-op preview ratio ${pr.median.toFixed(2)} (target ≤ ${TARGET_PREVIEW})`);
        if (rr.median > TARGET_REFRESH) missed.push(`no-op up --refresh ratio ${rr.median.toFixed(2)} (target ≤ ${TARGET_REFRESH})`);
        if (!(maxConn <= 1)) missed.push(`no-op up --refresh opened up to ${maxConn} SSH sessions on a node (target ≤ 1)`);
        notes.push("Provider costs: on the committed dev stack, converged. The empty program is a Node.js Pulumi program that declares " +
            "nothing, with its own file-backend stack (`pulumi preview`). Ours: `pulumi preview --expect-no-changes --stack dev` (the " +
            "program and its provider plugin compiled ahead; the plugin diffs every resource), then `pulumi up --refresh --skip-preview " +
            "--expect-no-changes` (every resource read from the cluster). SSH sessions: the lines `Accepted publickey` each node's sshd " +
            "logged during that up (the node containers' output).");
    }
    const lines = [
        `${opts.runs} runs per figure (median, min–max), ratios taken per run; logs in .state/bench/.`,
        "",
        table(["Benchmark", "Ours, s", "Baseline, s", "Ratio ours/baseline", "Target", "Result"], rows),
        "",
        ...notes.flatMap((n) => [`- ${n}`]),
    ];
    return { lines, missed };
}
