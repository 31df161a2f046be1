/**
 * Shared pieces of the end-to-end tests: the real Pulumi engine (through the automation API), a
 * scratch copy of the project whose stack config a test may edit, and SSH into the lab's nodes.
 *
 * The lab is the default one, or with LAB_NAME set that lab instance (`npm run lab:up -- --name
 * NAME`): its lab.json, its own Pulumi backend and a scratch copy whose stack file names its
 * addresses and key (tools/workspace.ts). Tests ask the lab's facts here (LAB, labNodes, labJson),
 * never a path or an address of their own.
 */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as yaml from "js-yaml";
import { LocalWorkspace, PulumiCommand, Stack, EngineEvent } from "@pulumi/pulumi/automation";
import { devStackText, engineEnv, forLab, scratchProject, workLab } from "../../tools/workspace";

export { devStackText, engineEnv, forLab, scratchProject };

export const ROOT = path.resolve(__dirname, "..", "..");
/** The lab these tests run on (LAB_NAME's, else the default lab). */
export const LAB = workLab();
/** Its state directory: .state/lab, or .state/lab-NAME. */
export const LAB_DIR = LAB.stateDir;
export const IN_CI = process.env.CI === "true";

/** The lab's lab.json, as `lab:up` wrote it. */
export function labJson(): { nodes: LabNode[]; sshPrivateKeyFile: string; knownHostsFile: string; dockerHost: string; engine?: string; engineVersion?: string; [k: string]: any } {
    return JSON.parse(fs.readFileSync(LAB.labJson, "utf8"));
}

/**
 * Why the end-to-end prerequisites are missing, or undefined when they are all there: the engine
 * and the lab. A test calls `skipOrFail` with it: outside CI it skips, in CI it fails.
 */
export function missingPrerequisite(): string | undefined {
    let env: Record<string, string>;
    try {
        env = engineEnv();
    } catch (e) {
        return `tools/env.sh failed (run \`npm run toolchain\`): ${(e as Error).message}`;
    }
    const v = spawnSync("pulumi", ["version"], { env, encoding: "utf8" });
    if (v.status !== 0) return "the Pulumi CLI is not available; run `npm run toolchain`";
    if (!fs.existsSync(LAB.labJson)) return `the lab is not up; run \`npm run lab:up${LAB.isDefault ? "" : ` -- --name ${LAB.name}`}\``;
    return undefined;
}

export function skipOrFail(t: { skip(msg: string): void }, why: string | undefined): boolean {
    if (!why) return false;
    if (IN_CI) throw new Error(`prerequisite missing in CI: ${why}`);
    t.skip(why);
    return true;
}

export async function devStack(workDir: string): Promise<Stack> {
    const env = engineEnv();
    const pulumiCommand = await PulumiCommand.get({ skipVersionCheck: true });
    return LocalWorkspace.createOrSelectStack({ stackName: "dev", workDir }, { envVars: env, pulumiCommand });
}

/** The scratch copy's dev stack config, as parsed YAML. */
export function devConfigOf(workDir: string): Record<string, any> {
    return (yaml.load(fs.readFileSync(path.join(workDir, "Pulumi.dev.yaml"), "utf8")) as { config: Record<string, any> }).config;
}

/** Read, edit and write the scratch copy's dev stack config. */
export function editDevConfig(workDir: string, edit: (config: Record<string, any>) => void): void {
    const file = path.join(workDir, "Pulumi.dev.yaml");
    const doc = yaml.load(fs.readFileSync(file, "utf8")) as { config: Record<string, any> };
    edit(doc.config);
    fs.writeFileSync(file, yaml.dump(doc));
}

export function nodesOf(config: Record<string, any>): any[] {
    return config["dccn-swarm:nodes"];
}

/** Resources (by URN tail) that an operation would change, with their operation. */
export function changeCollector(): { onEvent: (e: EngineEvent) => void; changes: Map<string, string> } {
    const changes = new Map<string, string>();
    return {
        changes,
        onEvent: (e: EngineEvent) => {
            const m = e.resourcePreEvent?.metadata;
            // Provider resources are the engine's own bookkeeping (the plugin's default
            // provider carries the stack config), hidden by the CLI too.
            if (m && m.op !== "same" && m.op !== "read" && !m.type.startsWith("pulumi:providers:")) {
                changes.set(m.urn.split("::").pop() as string, m.op);
            }
        },
    };
}

export interface LabNode { name: string; address: string; hostKey?: string; container?: string }
export function labNodes(): LabNode[] {
    return labJson().nodes;
}

/**
 * Run a command on a lab node over SSH with the lab's key (or `keyFile`), checking its pinned host
 * key. `input` goes to the command's standard input (passwords travel there, never on a command line).
 */
export function runOnNode(name: string, cmd: string, input?: string, keyFile?: string): { status: number | null; stdout: string; stderr: string } {
    const lab = labJson();
    const node = lab.nodes.find((n: LabNode) => n.name === name);
    if (!node) throw new Error(`no lab node ${name}`);
    const r = spawnSync("ssh", ["-i", keyFile ?? lab.sshPrivateKeyFile, "-o", "IdentitiesOnly=yes", "-o", `UserKnownHostsFile=${lab.knownHostsFile}`,
        "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR",
        `root@${node.address}`, cmd], { encoding: "utf8", timeout: 120_000, ...(input !== undefined ? { input } : {}) });
    return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

/** runOnNode's standard output; a failure throws unless `allowFail`. */
export function onNode(name: string, cmd: string, opts: { allowFail?: boolean; input?: string; keyFile?: string } = {}): string {
    const r = runOnNode(name, cmd, opts.input, opts.keyFile);
    if (r.status !== 0 && !opts.allowFail) throw new Error(`${name}: ${cmd} failed (${r.status}): ${r.stderr}`);
    return r.stdout;
}

export interface SwarmNodeRow { hostname: string; status: string; availability: string; manager: string }

/** `docker node ls` as seen from a manager. */
export function nodeTable(manager = "vm1"): SwarmNodeRow[] {
    return onNode(manager, "docker node ls --format '{{.Hostname}}|{{.Status}}|{{.Availability}}|{{.ManagerStatus}}'")
        .trim().split("\n").filter(Boolean).map((l) => {
            const [hostname, status, availability, manager] = l.split("|");
            return { hostname, status, availability, manager };
        });
}

export function nodeLabels(node: string, manager = "vm1"): Record<string, string> {
    return JSON.parse(onNode(manager, `docker node inspect ${node} --format '{{json .Spec.Labels}}'`).trim() || "{}") ?? {};
}

export function swarmState(node: string): string {
    return onNode(node, "docker info --format '{{.Swarm.LocalNodeState}}'").trim();
}

/** A lab node's address, as a regular expression's text (for messages that name it). */
export function nodeAddressRe(name: string): string {
    const node = labJson().nodes.find((n) => n.name === name);
    if (!node) throw new Error(`no lab node ${name} in ${LAB.labJson}`);
    return node.address.replace(/\./g, "\\.");
}

/** The container of a lab node on the host engine (`vm3` on the default lab, `NAME-vm3` on lab NAME). */
export function nodeContainer(name: string): string {
    const node = labJson().nodes.find((n) => n.name === name);
    if (!node) throw new Error(`no lab node ${name} in ${LAB.labJson}`);
    return node.container ?? name;
}

/**
 * Run the Docker CLI against the lab's host engine (the one the node containers run on, shared by
 * every lab): name a node's container with nodeContainer(). On a named lab a bare node name (`vm3`)
 * would be the default lab's container, so it is refused.
 */
export function labEngine(...args: string[]): string {
    const bare = args.find((a) => /^vm\d+$/.test(a));
    if (!LAB.isDefault && bare) throw new Error(`labEngine: ${bare} is the default lab's container; use nodeContainer("${bare}") for lab ${LAB.name}'s`);
    const lab = labJson();
    const r = spawnSync("docker", ["-H", lab.dockerHost, ...args], { encoding: "utf8", timeout: 120_000 });
    if (r.status !== 0) throw new Error(`docker ${args.join(" ")} failed: ${r.stderr}`);
    return r.stdout;
}

/** The lab's pinned host key of a node (`ssh-ed25519 AAAA...`). */
export function labHostKey(name: string): string {
    const node = labJson().nodes.find((n) => n.name === name);
    if (!node?.hostKey) throw new Error(`no lab node ${name} with a host key in ${LAB.labJson}`);
    return node.hostKey;
}

/** Poll `check` until it returns true (or fail after `timeoutSec`). */
export async function waitFor(what: string, check: () => boolean, timeoutSec = 120): Promise<void> {
    const until = Date.now() + timeoutSec * 1000;
    for (;;) {
        let ok = false;
        try {
            ok = check();
        } catch {
            ok = false;
        }
        if (ok) return;
        if (Date.now() > until) throw new Error(`timed out after ${timeoutSec}s waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 2000));
    }
}

/** tools/TOOL.ts ARGS against the suite's scratch copy of the project, with how long it took. */
function runTool(tool: string, dir: string, args: string[], timeoutMs: number): { status: number; stdout: string; stderr: string; ms: number } {
    const started = Date.now();
    const r = spawnSync(process.execPath, ["--import", "tsx", path.join(ROOT, "tools", `${tool}.ts`), ...args, "--project", dir],
        { encoding: "utf8", timeout: timeoutMs, cwd: ROOT });
    return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - started };
}

/** `npm run ops -- ARGS` against the suite's scratch copy of the project. */
export function ops(dir: string, ...args: string[]): { status: number; out: string } {
    const r = runTool("ops", dir, args, 900_000);
    return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** `npm run status -- ARGS` against the suite's scratch copy of the project, with how long it took. */
export function statusOf(dir: string, ...args: string[]): { status: number; stdout: string; stderr: string; ms: number } {
    return runTool("status", dir, args, 300_000);
}

/** Services and how many of their tasks run, as a manager lists them. */
export function services(manager = "vm1"): Record<string, string> {
    const out = onNode(manager, "docker service ls --format '{{.Name}} {{.Replicas}}'").trim();
    return Object.fromEntries(out.split("\n").filter(Boolean).map((l) => l.split(" ")));
}

/** daemon.json's log-opts max-file on a node (drills change it to touch every node). */
export function maxFile(node: string): string {
    return JSON.parse(onNode(node, "cat /etc/docker/daemon.json"))["log-opts"]?.["max-file"];
}

/**
 * Bring the lab back to the committed dev config from whatever a failed run left behind, the way an
 * administrator would: managers demoted one per `up` (the quorum check refuses more at once).
 */
export async function convergeToCommitted(stack: Stack, workDir: string): Promise<void> {
    // The committed settings (for the lab the suite runs on), without the passphrase salt Pulumi may
    // have written into the work tree.
    const committed = devStackText().replace(/^encryptionsalt:.*\n?/m, "");
    const salt = (fs.readFileSync(path.join(workDir, "Pulumi.dev.yaml"), "utf8").match(/^encryptionsalt:.*$/m) ?? [""])[0];
    fs.writeFileSync(path.join(workDir, "Pulumi.dev.yaml"), committed + (salt ? `${salt}\n` : ""));
    const wanted = new Set((yaml.load(committed) as any).config["dccn-swarm:nodes"]
        .filter((n: any) => n.role === "manager").map((n: any) => n.hostname));
    const quiet = { onOutput: (_: string) => undefined };
    // A create an earlier failure interrupted is dropped (the program's creates adopt what exists).
    await stack.refresh({ ...quiet, clearPendingCreates: true });
    // The managers the quorum check compares against: the swarm resource's last applied inputs.
    const state = await stack.exportStack();
    const cluster = (state.deployment.resources ?? []).find((r: any) => r.type === "dccn-swarm:index:SwarmCluster");
    const current: string[] = (cluster?.inputs?.managers ?? []).map((m: any) => m.name);
    const extra = current.filter((h) => !wanted.has(h));
    // Keep all but one of the extra managers for now; demote them one per up.
    for (let i = extra.length - 1; i >= 1; i--) {
        editDevConfig(workDir, (c) => {
            for (const n of nodesOf(c)) if (extra.slice(0, i).includes(n.hostname)) n.role = "manager";
        });
        await upRemovingLeftovers(stack);
        fs.writeFileSync(path.join(workDir, "Pulumi.dev.yaml"), committed + (salt ? `${salt}\n` : ""));
    }
    await upRemovingLeftovers(stack);
}

/**
 * `up`; when it stops on a service the state does not hold that keeps a network of a removed stack
 * (a test that failed while its service was converging), remove that service as the error says and
 * `up` again, as an administrator would.
 */
async function upRemovingLeftovers(stack: Stack): Promise<void> {
    for (let attempt = 0; ; attempt++) {
        try {
            await stack.up(quiet);
            return;
        } catch (e) {
            const leftover = /remove it \(docker service rm ([\w.-]+)\)/.exec(String((e as Error).message));
            if (!leftover || attempt >= 3) throw e;
            console.log(`# convergeToCommitted: removing ${leftover[1]}, left on the swarm by an earlier failure, as the error says`);
            onNode("vm1", `docker service rm ${leftover[1]} >/dev/null`);
        }
    }
}

export const quiet = { onOutput: (_: string) => undefined };

export interface LabSuite {
    stack: Stack;
    /** The scratch copy of the project this suite edits. */
    dir: string;
    /** Why the suite cannot run (engine or lab missing), for skipOrFail. */
    missing?: string;
}

/**
 * Register a suite's setup on the dev stack: a scratch copy of the project, the lab brought to the
 * committed config before the suite (whatever an earlier run left) and again after it.
 */
export function useLabSuite(before: (fn: () => Promise<void>) => void, after: (fn: () => Promise<void>) => void): LabSuite {
    const suite = {} as LabSuite;
    before(async () => {
        suite.missing = missingPrerequisite();
        if (suite.missing) return;
        suite.dir = scratchProject();
        suite.stack = await devStack(suite.dir);
        await convergeToCommitted(suite.stack, suite.dir);
    });
    after(async () => {
        if (suite.missing) return;
        await convergeToCommitted(suite.stack, suite.dir);
        fs.rmSync(suite.dir, { recursive: true, force: true });
    });
    return suite;
}

/**
 * What the cluster holds, by ID with its version, and each engine's process and daemon.json: what
 * any change made on the cluster would alter (a state-only update leaves all of it as it was).
 */
export function clusterFacts(): Record<string, string> {
    const facts: Record<string, string> = {};
    const lines = (cmd: string) => onNode("vm1", cmd).trim().split("\n").filter(Boolean);
    for (const l of lines("docker node ls -q | xargs docker node inspect --format '{{.ID}} {{.Description.Hostname}} {{.Version.Index}} {{json .Spec}}'")) {
        facts[`node ${l.split(" ")[1]}`] = l;
    }
    for (const l of lines("docker service ls -q | xargs -r docker service inspect --format '{{.Spec.Name}} {{.ID}} {{.Version.Index}}'")) facts[`service ${l.split(" ")[0]}`] = l;
    for (const l of lines("docker network ls --filter driver=overlay --format '{{.Name}} {{.ID}}'")) facts[`network ${l.split(" ")[0]}`] = l;
    for (const l of lines("docker secret ls --format '{{.Name}} {{.ID}}'")) facts[`secret ${l.split(" ")[0]}`] = l;
    for (const l of lines("docker config ls --format '{{.Name}} {{.ID}}'")) facts[`config ${l.split(" ")[0]}`] = l;
    for (const n of labNodes()) facts[`engine ${n.name}`] = onNode(n.name, "pidof dockerd; stat -c %Y /etc/docker/daemon.json").trim();
    return facts;
}

/** The dev stack's state as the CLI exports it (secrets stay encrypted there; the Automation API's exportStack decrypts them). */
export function exportedState(dir: string): string {
    const r = spawnSync("pulumi", ["stack", "export", "--stack", "dev"], { cwd: dir, env: engineEnv(), encoding: "utf8", maxBuffer: 256 << 20 });
    if (r.status !== 0) throw new Error(`pulumi stack export failed: ${r.stderr}`);
    return r.stdout;
}

/**
 * Watch this machine while something runs: every file under the temporary directory (up to 1 MiB,
 * a few levels deep) and every process's command line, for `needle` (a line of a private key).
 * stop() scans once more and returns where it was seen.
 */
export function watchForSecret(needle: string): { stop: () => string[] } {
    const seen = new Set<string>();
    const scanDir = (dir: string, depth: number) => {
        let entries: fs.Dirent[];
        try { entries = fs.readdirSync(dir, { withFileTypes: true }); } catch { return; }
        for (const e of entries) {
            const p = path.join(dir, e.name);
            if (e.isDirectory() && depth > 0) scanDir(p, depth - 1);
            else if (e.isFile()) {
                try {
                    if (fs.statSync(p).size <= 1 << 20 && fs.readFileSync(p, "latin1").includes(needle)) seen.add(`file ${p}`);
                } catch { /* gone meanwhile */ }
            }
        }
    };
    const scan = () => {
        scanDir(os.tmpdir(), 4);
        for (const pid of fs.readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
            try {
                if (fs.readFileSync(`/proc/${pid}/cmdline`, "latin1").includes(needle)) seen.add(`command line of pid ${pid}`);
            } catch { /* gone meanwhile */ }
        }
    };
    const timer = setInterval(scan, 150);
    return { stop: () => { clearInterval(timer); scan(); return [...seen]; } };
}

/**
 * A line of an OpenSSH private key file that only this key has, as the file holds it: the body's
 * second-to-last line (the private part). The body's first line is the same for every unencrypted
 * key of a type, so it proves nothing.
 */
export function keyMaterial(keyFile: string): string {
    const body = fs.readFileSync(keyFile, "utf8").split("\n").filter((l) => l && !l.startsWith("-----"));
    return body[body.length - 2];
}
