/**
 * The lab benchmarks (part of `npm run bench`, issue 18): the program, the Ansible peer
 * (bench/ansible/site.yml, community.docker) and the Docker CLI by hand (bench/baseline-manual.sh)
 * each walk the same chain of desired states (bench/peers-spec.ts) on the same lab instance, from
 * bare nodes (no engine; apt installs from the lab's package source) to a cluster with stacks:
 * from scratch with provisioning, no-op, a label change, image rolls of 2 and 6 replicas, a drain,
 * new stacks of 1, 5 and 20 services. Each step is timed from the command's start until the
 * command returned and the end condition holds (bench/watch-state.sh on the manager: nodes,
 * labels, availability, every service's tasks Running on the desired image), the same for every side.
 *
 * The lab instance is the bench's own (LAB_NAME, default `bench`): the bench removes the engine
 * from its nodes before every chain, which would break anyone else's lab. Its lock is held for the
 * whole part.
 */
import { spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as yaml from "js-yaml";
import { labInstance } from "../lab/config";
import { engineEnv, scratchProject } from "../tools/workspace";
import {
    ansibleChanged, ansibleInventory, ansibleVars, chainFor, cliAction, cliNodeArgs, composeText, daemonJson, DAEMON, DESCRIBE,
    ENGINE_PACKAGE, LabFacts, oursConfig, REGISTRY, SideName, SIDES, Spec, stackFile, step, TARGETS, watchArgs, Workload, WORKLOADS,
} from "./peers-spec";
import { Figure, figure, fmt, ROOT, table } from "./report";

const LOG_DIR = path.join(ROOT, ".state", "bench");
const BASELINE = path.join(__dirname, "baseline-manual.sh");
const WATCHER = path.join(__dirname, "watch-state.sh");
const NODE_ENGINE = path.join(__dirname, "node-engine.sh");
const ROLL_IMAGES = path.join(__dirname, "roll-images.sh");
const PACKAGE_SOURCE = path.join(__dirname, "package-source.sh");
const PLAYBOOK = path.join(__dirname, "ansible", "site.yml");
const PACKAGE_PORT = Number(process.env.BENCH_PACKAGE_PORT || 8077);
/** How long a step's end condition may take after its command returned. */
const WATCH_TIMEOUT_S = 300;

/** The bench's lab instance: LAB_NAME as lab/ takes it (default `bench`, never the default lab). */
export const LAB_NAME = process.env.BENCH_LAB_NAME || "bench";
export const LAB_LOCK = process.env.BENCH_LAB_LOCK || `/tmp/dccn-lab-${LAB_NAME}.lock`;

type Say = (s: string) => void;

type LabJson = LabFacts;

interface Timed {
    ms: number;
    startEpochMs: number;
    endEpochMs: number;
    status: number | null;
    log: string;
}

/** Run a command, timing it from spawn to exit; its output goes to a log file under .state/bench. */
export function timed(label: string, cmd: string, args: string[], env: NodeJS.ProcessEnv, opts: { cwd?: string; timeoutMs?: number; input?: string } = {}): Promise<Timed> {
    fs.mkdirSync(LOG_DIR, { recursive: true });
    const log = path.join(LOG_DIR, `${new Date().toISOString().replace(/[:.]/g, "-")}-${label}.log`);
    const fd = fs.openSync(log, "w");
    return new Promise((resolve, reject) => {
        const startEpochMs = Date.now();
        const start = process.hrtime.bigint();
        const child = spawn(cmd, args, { cwd: opts.cwd ?? ROOT, env, stdio: [opts.input === undefined ? "ignore" : "pipe", fd, fd] });
        if (opts.input !== undefined) child.stdin!.end(opts.input);
        const timer = setTimeout(() => child.kill("SIGTERM"), opts.timeoutMs ?? 20 * 60_000);
        child.on("error", (e) => { clearTimeout(timer); fs.closeSync(fd); reject(new Error(`${cmd}: ${e.message}`)); });
        child.on("exit", (status) => {
            clearTimeout(timer);
            fs.closeSync(fd);
            resolve({ ms: Number(process.hrtime.bigint() - start) / 1e6, startEpochMs, endEpochMs: Date.now(), status, log });
        });
    });
}

function logTail(file: string, lines = 20): string {
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

/** SSH to a node as the lab's README says, through one master connection per node kept open (the watcher's polls cost no connection). */
function sshArgs(lab: LabFacts, address: string): string[] {
    return ["-i", lab.sshPrivateKeyFile, "-o", `UserKnownHostsFile=${lab.knownHostsFile}`,
        "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR",
        "-o", "ControlMaster=auto", "-o", "ControlPath=/tmp/dccn-bench-%C", "-o", "ControlPersist=900",
        `${lab.sshUser || "root"}@${address}`];
}

function sshScript(lab: LabFacts, address: string, script: string, args: string[], timeoutMs = 300_000): Promise<string> {
    return new Promise((resolve, reject) => {
        const child = spawn("ssh", [...sshArgs(lab, address), "bash", "-s", "--", ...args.map(shellQuote)], { stdio: ["pipe", "pipe", "pipe"] });
        let out = "", err = "";
        child.stdout.on("data", (d) => (out += d));
        child.stderr.on("data", (d) => (err += d));
        const timer = setTimeout(() => child.kill("SIGTERM"), timeoutMs);
        child.on("error", (e) => { clearTimeout(timer); reject(e); });
        child.on("exit", (code) => {
            clearTimeout(timer);
            if (code === 0) resolve(out);
            else reject(new Error(`ssh ${address} ${path.basename(script)} ${args.slice(0, 3).join(" ")}...: exit ${code}: ${(out + err).trim().slice(-2000)}`));
        });
        child.stdin.end(fs.readFileSync(script));
    });
}

function sshRun(lab: LabFacts, address: string, cmd: string): string {
    const r = spawnSync("ssh", [...sshArgs(lab, address), cmd], { encoding: "utf8", timeout: 120_000 });
    if (r.status !== 0) throw new Error(`ssh ${address} ${cmd}: exit ${r.status}: ${r.stderr}`);
    return r.stdout;
}

const shellQuote = (s: string) => /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`;

/** Hold a lab's lock file while `fn` runs (flock around a process that lives as long as its stdin). */
export async function withLock<T>(lock: string, say: Say, fn: () => Promise<T>): Promise<T> {
    const holder = spawn("flock", [lock, "-c", "echo locked; exec cat >/dev/null"], { stdio: ["pipe", "pipe", "pipe"] });
    await new Promise<void>((resolve, reject) => {
        const waiting = setTimeout(() => say(`  waiting for the lab lock ${lock}`), 1000);
        let out = "";
        holder.stdout.on("data", (d) => {
            out += d;
            if (out.includes("locked")) { clearTimeout(waiting); resolve(); }
        });
        holder.on("error", (e) => { clearTimeout(waiting); reject(new Error(`flock ${lock}: ${e.message} (flock comes with util-linux)`)); });
        holder.on("exit", (code) => { clearTimeout(waiting); reject(new Error(`flock ${lock} exited ${code}`)); });
    });
    try {
        return await fn();
    } finally {
        holder.removeAllListeners("exit");
        holder.stdin!.end();
    }
}

interface Ctx {
    lab: LabJson;
    env: NodeJS.ProcessEnv;
    say: Say;
    /** The lab network's gateway: where the package source listens. */
    gateway: string;
    sourceUrl: string;
    manager: string;
}

/**
 * What the lab benchmarks need, each step doing nothing when it is there: the bench's system
 * packages (bench/prereqs.sh: Ansible, community.docker's Python libraries, dpkg-dev), the Pulumi
 * toolchain, the program built, the bench's lab instance, the package source with docker.io's
 * closure served on its gateway, the images of the benchmark stacks in a registry on every node.
 */
async function prepare(say: Say): Promise<Ctx> {
    const step = async (what: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env) => {
        const r = await timed(`prepare-${what.replace(/\W+/g, "-")}`, cmd, args, env);
        if (r.status !== 0) throw new Error(`the lab benchmarks need ${what}: \`${[cmd, ...args].join(" ")}\` failed (exit ${r.status}); log ${r.log}:\n${logTail(r.log)}`);
    };
    say(`lab: bench/prereqs.sh, the Pulumi toolchain, npm run build, the lab instance \`${LAB_NAME}\`, the package source`);
    await step("the bench's system packages", "bash", [path.join(__dirname, "prereqs.sh")]);
    await step("the Pulumi toolchain", "bash", ["tools/toolchain.sh", "--allow-missing-plugins"]);
    await step("the program built", "npm", ["run", "build"]);
    const env = { ...engineEnv(), LAB_NAME };
    const labCli = ["--import", "tsx", path.join(ROOT, "lab", "cli.ts")];
    if ((await timed("prepare-lab-status", process.execPath, [...labCli, "status"], env)).status !== 0) {
        await step(`the lab instance ${LAB_NAME}`, process.execPath, [...labCli, "up"], env);
    }
    const instance = labInstance(LAB_NAME);
    if (instance.isDefault) throw new Error("the lab benchmarks remove the engine from their lab's nodes: give them a lab of their own (BENCH_LAB_NAME), not the default lab");
    if (!fs.existsSync(instance.labJson)) throw new Error(`${instance.labJson} not found after \`LAB_NAME=${LAB_NAME} lab:up\``);
    const lab = JSON.parse(fs.readFileSync(instance.labJson, "utf8")) as LabJson;
    // The package source listens on the lab network's gateway, the host's address on the lab's bridge.
    const gateway = instance.gateway;
    await step("the package source's packages", "bash", [PACKAGE_SOURCE, "fetch", ENGINE_PACKAGE]);
    await step("the package source served", "bash", [PACKAGE_SOURCE, "serve", "--address", gateway, "--port", String(PACKAGE_PORT)]);
    const c: Ctx = { lab, env, say, gateway, sourceUrl: `http://${gateway}:${PACKAGE_PORT}/`, manager: lab.nodes[0].address };
    // The benchmark images: a registry on every node, kept by bare (node-engine.sh) and restarted with the engine.
    await Promise.all(lab.nodes.map(async (n) => {
        const has = spawnSync("ssh", [...sshArgs(lab, n.address), `command -v dockerd >/dev/null && docker image inspect ${REGISTRY.baseImage} >/dev/null && docker inspect ${REGISTRY.container} >/dev/null`]);
        if (has.status === 0) return;
        const installed = spawnSync("ssh", [...sshArgs(lab, n.address), "command -v dockerd >/dev/null"]).status === 0;
        if (!installed) {
            // A node the bench left bare: the engine again (from the package source), then its images.
            await sshScript(lab, n.address, NODE_ENGINE, ["engine", c.sourceUrl]);
        }
        await sshScript(lab, n.address, ROLL_IMAGES, ["up", REGISTRY.baseImage, String(REGISTRY.port), REGISTRY.repo, ...REGISTRY.tags]);
    }));
    return c;
}

/** Every node bare: no engine, apt on the package source only (bench/node-engine.sh), checked. */
async function bare(c: Ctx): Promise<void> {
    await Promise.all(c.lab.nodes.map((n) => sshScript(c.lab, n.address, NODE_ENGINE, ["bare", c.sourceUrl, REGISTRY.container])));
    await Promise.all(c.lab.nodes.map((n) => sshScript(c.lab, n.address, NODE_ENGINE, ["check-bare", c.sourceUrl])));
}

/** The end condition after a command: watch-state.sh on the manager, `done` epoch milliseconds. */
async function endCondition(c: Ctx, spec: Spec): Promise<number> {
    const out = await sshScript(c.lab, c.manager, WATCHER, [String(WATCH_TIMEOUT_S), ...watchArgs(spec)], (WATCH_TIMEOUT_S + 30) * 1000);
    const m = /^done (\d+\.\d+)$/m.exec(out);
    if (!m) throw new Error(`end condition: ${out.trim()}`);
    return Number(m[1]) * 1000;
}

/** daemon.json on every node as configured (parsed: each side formats it its own way). */
function checkDaemonJson(c: Ctx): void {
    const want = JSON.stringify(DAEMON);
    for (const n of c.lab.nodes) {
        const got = sshRun(c.lab, n.address, "jq -S -c . /etc/docker/daemon.json").trim();
        if (got !== want) throw new Error(`${n.name}: daemon.json is ${got}, want ${want}`);
    }
}

/** One side's way to reach a desired state. */
interface SideRunner {
    /** Before the chain (untimed): the side's own state reset. */
    reset(): Promise<void>;
    /** Reach `spec` (workload `w`, from `prev`); the command is timed. */
    apply(w: Workload, spec: Spec, prev: Spec | undefined, label: string): Promise<Timed>;
    /** After a no-op: how many changes the side reported (the program: exit status of --expect-no-changes). */
    changes?(r: Timed): number;
}

function writeCompose(dir: string, spec: Spec): void {
    for (const s of spec.stacks) {
        const file = path.join(dir, stackFile(s.name));
        fs.mkdirSync(path.dirname(file), { recursive: true });
        fs.writeFileSync(file, composeText(s));
    }
}

const PULUMI_FLAGS = ["--yes", "--skip-preview", "--non-interactive", "--color", "never", "--stack", "bench"];

/**
 * The program: `pulumi up --yes --skip-preview --non-interactive` on a scratch copy of the project whose
 * Pulumi.bench.yaml holds the desired state (Pulumi's automation documentation: `up --yes`, the
 * preview read before in review); the no-op adds `--refresh --expect-no-changes` (reads every
 * resource from the cluster). Its own file backend, so the project's dev stack is untouched.
 */
function ours(c: Ctx): SideRunner {
    const dir = scratchProject();
    const backend = path.join(LOG_DIR, `pulumi-${LAB_NAME}`);
    fs.mkdirSync(backend, { recursive: true });
    const env = { ...c.env, PULUMI_BACKEND_URL: `file://${backend}` };
    const pulumi = (label: string, args: string[]) => timed(label, "pulumi", args, env, { cwd: dir });
    return {
        async reset() {
            await pulumi("ours-stack-rm", ["stack", "rm", "bench", "--yes", "--force", "--preserve-config", "--non-interactive"]);
            mustSucceed("pulumi stack init bench", await pulumi("ours-stack-init", ["stack", "init", "bench", "--non-interactive"]));
        },
        async apply(w, spec, _prev, label) {
            writeCompose(dir, spec);
            const file = path.join(dir, "Pulumi.bench.yaml");
            const salt = fs.existsSync(file) ? (fs.readFileSync(file, "utf8").match(/^encryptionsalt:.*$/m) ?? [""])[0] : "";
            fs.writeFileSync(file, "# bench/peers.ts: a lab benchmark's desired state\n" +
                yaml.dump({ config: oursConfig(spec, c.lab) }, { lineWidth: -1 }) + (salt ? `${salt}\n` : ""));
            return pulumi(label, ["up", ...PULUMI_FLAGS, ...(w === "noop" ? ["--refresh", "--expect-no-changes"] : [])]);
        },
        changes: (r) => (r.status === 0 ? 0 : 1),
    };
}

/**
 * The Ansible peer: `ansible-playbook -i INVENTORY bench/ansible/site.yml -e @VARS`, the whole
 * playbook for every change (as its documentation runs a site playbook; no --check, no tags). The
 * ssh on its PATH is a wrapper adding `-F` with the lab's key and known_hosts, for Ansible's own
 * connections, the docker modules' `use_ssh_client` and the docker CLI under docker_stack alike.
 */
function ansible(c: Ctx): SideRunner {
    const dir = path.join(LOG_DIR, `ansible-${LAB_NAME}`);
    fs.mkdirSync(path.join(dir, "bin"), { recursive: true });
    const sshConfig = path.join(dir, "ssh_config");
    fs.writeFileSync(sshConfig, ["Host *", `  User ${c.lab.sshUser || "root"}`, `  IdentityFile ${c.lab.sshPrivateKeyFile}`, "  IdentitiesOnly yes",
        `  UserKnownHostsFile ${c.lab.knownHostsFile}`, "  StrictHostKeyChecking yes", "  BatchMode yes", ""].join("\n"));
    fs.writeFileSync(path.join(dir, "bin", "ssh"), `#!/bin/sh\nexec /usr/bin/ssh -F ${shellQuote(sshConfig)} "$@"\n`, { mode: 0o755 });
    const env = {
        ...c.env, PATH: `${path.join(dir, "bin")}:${c.env.PATH}`, ANSIBLE_NOCOLOR: "1", ANSIBLE_RETRY_FILES_ENABLED: "0",
        ANSIBLE_LOCAL_TEMP: path.join(dir, "tmp"),
    };
    const compose = path.join(dir, "compose");
    return {
        async reset() { /* Ansible keeps no state of its own */ },
        async apply(_w, spec, _prev, label) {
            writeCompose(compose, spec);
            fs.writeFileSync(path.join(dir, "inventory.yml"), JSON.stringify(ansibleInventory(spec, c.lab), null, 1));
            fs.writeFileSync(path.join(dir, "vars.json"), JSON.stringify(ansibleVars(spec, (n) => path.join(compose, stackFile(n))), null, 1));
            return timed(label, "ansible-playbook", ["-i", path.join(dir, "inventory.yml"), PLAYBOOK, "-e", `@${path.join(dir, "vars.json")}`], env);
        },
        changes: (r) => ansibleChanged(fs.readFileSync(r.log, "utf8")).changed,
    };
}

/**
 * The Docker CLI by hand (bench/baseline-manual.sh): the one command an administrator types for
 * each change, over SSH connections kept open; the compose files staged on the manager beforehand
 * (untimed), as they sit on the shared storage.
 */
function cli(c: Ctx): SideRunner {
    const stageDir = path.join(LOG_DIR, `cli-${LAB_NAME}`);
    const daemon = path.join(stageDir, "daemon.json");
    const base = () => ["--key", c.lab.sshPrivateKeyFile, "--known-hosts", c.lab.knownHostsFile, "--user", c.lab.sshUser || "root"];
    const stackArgs = (names: string[]) => names.flatMap((n) => ["--stack", `${n}=${path.join(stageDir, n)}`]);
    const stage = (spec: Spec) => {
        for (const s of spec.stacks) {
            const d = path.join(stageDir, s.name);
            fs.mkdirSync(d, { recursive: true });
            fs.writeFileSync(path.join(d, "docker-compose.baseline.yml"), composeText(s));
            // `docker stack deploy`'s defaults: the tag resolved to its digest through the manager's engine.
            fs.writeFileSync(path.join(d, ".baseline.env"), "DCCN_RESOLVE_IMAGE=always\n");
        }
    };
    return {
        async reset() {
            fs.mkdirSync(stageDir, { recursive: true });
            fs.writeFileSync(daemon, daemonJson() + "\n");
            // Every stack the chain deploys, staged on the manager before it starts.
            let s: Spec | undefined;
            for (const w of chainFor(["stacks1", "stacks5", "stacks20"])) s = step(s, w, c.lab.nodes);
            stage(s!);
            mustSucceed("baseline stage", await timed("cli-stage", "bash", [BASELINE, "stage", ...base(), ...cliNodeArgs(s!), ...stackArgs(s!.stacks.map((x) => x.name))], c.env));
        },
        async apply(w, spec, prev, label) {
            const a = cliAction(prev, spec, w);
            const nodes = cliNodeArgs(spec);
            const all = stackArgs(spec.stacks.map((x) => x.name));
            const args = a.kind === "up" ? ["up", ...base(), ...nodes, ...all, "--daemon-json", daemon, "--engine-package", ENGINE_PACKAGE]
                : a.kind === "noop" ? ["noop", ...base(), ...nodes, ...all]
                    : a.kind === "node-update" ? ["node-update", ...base(), ...nodes, "--target", a.target, "--what", a.what]
                        : a.kind === "update-image" ? ["update-image", ...base(), ...nodes, "--service", a.service, "--image", a.image]
                            : ["deploy", ...base(), ...nodes, ...stackArgs([a.stack])];
            return timed(label, "bash", [BASELINE, ...args], c.env);
        },
    };
}

export interface PeerResults {
    /** Seconds per workload, side and run (runs in order). */
    times: Record<Workload, Record<SideName, number[]>>;
    /** No-op runs that reported changes, per side. */
    noopChanges: Record<SideName, number>;
    /** Tasks on the drained node before each drain. */
    drainTasks: number[];
    /** Load average (1 min) at the start of each chain: the machine is shared. */
    load: number[];
}

function emptyResults(): PeerResults {
    const per = <T>(f: () => T) => Object.fromEntries(WORKLOADS.map((w) => [w, f()])) as Record<Workload, T>;
    return {
        times: per(() => ({ ours: [], ansible: [], cli: [] })),
        noopChanges: { ours: 0, ansible: 0, cli: 0 },
        drainTasks: [],
        load: [],
    };
}

/** One side's chain on bare nodes: every selected workload in order, each timed to its end condition. */
async function chain(c: Ctx, side: SideName, runner: SideRunner, run: number, chainW: Workload[], selected: Workload[], res: PeerResults): Promise<void> {
    res.load.push(os.loadavg()[0]);
    c.say(`run ${run}, ${side}: bare nodes (engine removed), then ${chainW.join(", ")} (load average ${os.loadavg()[0].toFixed(1)})`);
    await bare(c);
    await runner.reset();
    sshRun(c.lab, c.manager, "true"); // the watcher's master connection, open before anything is timed
    let prev: Spec | undefined;
    for (const w of chainW) {
        const spec = step(prev, w, c.lab.nodes);
        if (w === "drain") {
            const target = spec.nodes.filter((n) => n.role === "worker").pop()!.hostname;
            res.drainTasks.push(Number(sshRun(c.lab, c.manager, `docker node ps ${target} --filter desired-state=running -q | wc -l`).trim()));
        }
        const r = await runner.apply(w, spec, prev, `${side}-${w}-${run}`);
        if (r.status !== 0 && !(w === "noop" && side === "ours")) mustSucceed(`${side} ${w}`, r);
        const done = await endCondition(c, spec).catch((e: Error) => { throw new Error(`${side} ${w}: ${e.message} (command log ${r.log})`); });
        const s = (Math.max(done, r.endEpochMs) - r.startEpochMs) / 1000;
        if (w === "scratch") checkDaemonJson(c);
        if (w === "noop" && runner.changes) {
            const n = runner.changes(r);
            if (n) { res.noopChanges[side]++; c.say(`  ${side} no-op reported ${n} change(s); log ${r.log}`); }
        }
        if (selected.includes(w)) res.times[w][side].push(s);
        c.say(`  ${side} ${w}: ${s.toFixed(1)} s (command ${(r.ms / 1000).toFixed(1)} s)`);
        prev = spec;
    }
}

export interface PeerOptions {
    runs: number;
    workloads: Workload[];
}

/** Runs the chains (sides in a rotating order per run), holding the instance's lock. */
export async function runPeers(opts: PeerOptions, say: Say): Promise<PeerResults> {
    const c = await prepare(say);
    const res = emptyResults();
    const chainW = chainFor(opts.workloads);
    await withLock(LAB_LOCK, say, async () => {
        const runners: Record<SideName, SideRunner> = { ours: ours(c), ansible: ansible(c), cli: cli(c) };
        for (let run = 1; run <= opts.runs; run++) {
            // Rotate which side goes first, so a drift in the machine's load spreads over every side.
            const order = SIDES.map((_, i) => SIDES[(i + run - 1) % SIDES.length]);
            for (const side of order) await chain(c, side, runners[side], run, chainW, opts.workloads, res);
        }
    });
    return res;
}

function ratios(a: number[], b: number[]): number[] {
    return a.map((x, i) => x / b[i]).filter((x) => Number.isFinite(x));
}

export function verdict(r: Figure, max: number): string {
    if (!r.runs) return "not measured";
    return r.median <= max ? `met (${r.median.toFixed(2)} ≤ ${max})` : `**MISSED** (${r.median.toFixed(2)} > ${max})`;
}

/** The table and notes of results.md for the lab part, and the targets missed. */
export function peerReport(res: PeerResults, opts: PeerOptions, lab: { name: string }): { lines: string[]; missed: string[] } {
    const rows: string[][] = [];
    const missed: string[] = [];
    for (const w of opts.workloads) {
        const t = res.times[w];
        const ra = figure(ratios(t.ours, t.ansible)), rc = figure(ratios(t.ours, t.cli));
        const judged = TARGETS.filter((x) => x.workload === w).map((x) => {
            const r = x.peer === "ansible" ? ra : rc;
            const v = verdict(r, x.max);
            if (v.startsWith("**MISSED")) missed.push(`${DESCRIBE[w].toLowerCase()}: ours/${x.peer === "ansible" ? "Ansible" : "CLI"} ${r.median.toFixed(2)} (target ≤ ${x.max})`);
            return `ours/${x.peer === "ansible" ? "Ansible" : "CLI"} ≤ ${x.max}: ${v}`;
        });
        const name = w === "drain" && res.drainTasks.length ? `${DESCRIBE[w]} (N = ${figure(res.drainTasks).median})` : DESCRIBE[w];
        rows.push([name, fmt(figure(t.ours), 1), fmt(figure(t.ansible), 1), fmt(figure(t.cli), 1), fmt(ra), fmt(rc), judged.join("; ") || "(for information)"]);
    }
    if (opts.workloads.includes("noop")) {
        for (const s of SIDES) {
            if (res.noopChanges[s]) missed.push(`no-op: ${s} reported changes in ${res.noopChanges[s]} run(s)`);
        }
    }
    const lines = [
        `${opts.runs} runs per figure (median, min–max), ratios taken per run; every side on lab instance \`${lab.name}\`, one chain per side ` +
        "and run from bare nodes (sides in a rotating order); logs in .state/bench/. Load average (1 min) at the start of the chains: " +
        `${fmt(figure(res.load), 1)} on ${os.cpus().length} CPUs.`,
        "",
        table(["Workload", "Ours, s", "Ansible, s", "CLI, s", "Ours/Ansible", "Ours/CLI", "Targets (issue 18)"], rows),
        "",
        "- Every figure: from the command's start until it returned and the end condition held (bench/watch-state.sh on the manager, " +
        "polling every 0.25 s over an open connection: every node in the swarm, ready, with its role, availability and labels; every " +
        "service's tasks meant to run, exactly its replicas, Running on its image, none on a drained node). After the cluster from " +
        "scratch, daemon.json is checked on every node (parsed).",
        "- Starting point of every chain: bench/node-engine.sh `bare` on every node (docker.io, containerd, runc and tini removed with apt-get, " +
        "daemon.json and the swarm state deleted; the image store kept, so the stacks' images are on the nodes) and apt pointed only at the " +
        "lab's package source (bench/package-source.sh: docker.io's dependency closure from Debian bookworm, served over HTTP on the lab " +
        "network's gateway). Every side installs the engine from it with `apt-get install --no-install-recommends docker.io`.",
        "- Ours: `pulumi up --yes --skip-preview --non-interactive` on the desired state in a scratch project's stack config (Pulumi's " +
        "automation use: the preview is read in review before); the no-op is `pulumi up --refresh --expect-no-changes` (reads every " +
        "resource from the cluster).",
        "- Ansible: `ansible-playbook -i INVENTORY bench/ansible/site.yml -e @VARS`, the whole playbook for every workload (Debian's ansible " +
        "7.7, ansible-core 2.14, community.docker 3.4.7): the engine with `raw` over SSH (the nodes have no Python), then docker_swarm, " +
        "docker_node and docker_stack on this machine through `docker_host: ssh://` (`use_ssh_client`); a no-op is the same run reporting changed=0.",
        "- CLI: bench/baseline-manual.sh, the command an administrator types for each change over SSH connections kept open: `up` (engine on " +
        "each node one after another, swarm init, joins, labels, `docker stack deploy`, waiting for the stack), `noop` (membership check, " +
        "labels re-applied, the stacks re-deployed), `docker node update --label-add` / `--availability drain`, `docker service update --image`, " +
        "`docker stack deploy` of the new stack.",
        "- Services: the lab's busybox as `localhost:5099/bench/busybox:a|b` from a registry on every node (bench/roll-images.sh), update " +
        "settings parallelism 1, delay 5s, order stop-first, monitor 5s, failure action pause; images resolved to their digest by each " +
        "side's default (the program `changed`, the CLI and docker_stack `always`).",
    ];
    return { lines, missed };
}

export { LOG_DIR };
