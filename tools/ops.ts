// ops: the administrators' procedures the program does not do by itself, against a stack's nodes.
//
//   npm run ops -- backup   --stack <env> [--node NAME] [--out DIR] [--force]
//   npm run ops -- restore  --stack <env> --node NAME --from FILE --yes [--force]
//   npm run ops -- shutdown --stack <env> [--stop engine|poweroff] (--dry-run | --yes)
//   npm run ops -- reboot   --stack <env> [--stop engine|poweroff] [--dry-run] [--no-up]
//
// Plans come from lib/ops-plan.ts (pure); the node side is scripts/*.sh over lib/ssh.ts.
// Exit status: 0 done, 1 a step failed, 2 usage, stack config or a refusal before anything changed.
import { spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import * as yaml from "js-yaml";
import { loadStatusSetup, StatusSetup, StatusSetupError } from "../lib/cluster-status";
import { PROJECT } from "../lib/cluster-config";
import {
    configuredNode, defaultStopMode, ObservedManager, OpsError, OpsStep, parseStopMode, planBackup, planReboot, planRestore,
    planShutdown, renderPlan, StackPlanInput, StopMode,
} from "../lib/ops-plan";
import { parseResult, readScript, scriptStdin } from "../lib/remote-script";
import { runScript, shq, SshTarget } from "../lib/ssh";
import { args, UsageError } from "../lib/cli-args";
import * as swarm from "../lib/swarm-ops";
import { lockForCommand } from "../lib/cluster-lock";

export const USAGE = `usage: npm run ops -- <command> --stack <env> [options]
commands:
  backup    copy the swarm state (/var/lib/docker/swarm) of a manager, its engine stopped for the copy,
            to DIR (default .state/backups) with mode 600: it holds the swarm's Raft keys, keep it secret
              --node NAME   the manager (default: a reachable manager that is not the leader)
              --out DIR     where to write swarm-<env>-<node>-<time>.tar.gz
              --force       also when stopping that engine takes the quorum away (one manager)
  restore   put a backup onto a configured manager and re-initialise the swarm from it
            (docker swarm init --force-new-cluster); then run \`pulumi up --refresh --stack <env>\`
              --node NAME --from FILE --yes   (--force: also over a node that is in a working swarm)
  shutdown  the emergency shutdown (DCCN 4.5): demote the other managers, remove stacks and
            services, stop the workers, stop the last manager
  reboot    back from the shutdown (DCCN 4.5.1): the last manager first, then the other nodes,
            promote to the configured managers, then \`pulumi up --refresh\` (registry first, then stacks)
              --no-up       stop before the pulumi step
options:
  --stop MODE     how a node is stopped/started: engine (systemctl stop/start docker; default for
                  environment dev, the lab) or poweroff (systemctl poweroff; power on by console/IPMI)
  --dry-run       print the plan only (shutdown, reboot)
  --yes           carry out a shutdown or restore (they remove services or replace swarm state)
  --key FILE      SSH private key, when the stack keeps it as the secret sshPrivateKey (or DCCN_SSH_KEY_FILE)
  --project DIR   project root holding the stack file (default: this project)
exit status: 0 done, 1 a step failed, 2 usage, configuration or refused before any change`;

type Command = "backup" | "restore" | "shutdown" | "reboot";

export interface CliOptions {
    command: Command;
    stack: string;
    node?: string;
    out?: string;
    from?: string;
    stop?: StopMode;
    force: boolean;
    dryRun: boolean;
    yes: boolean;
    up: boolean;
    key?: string;
    project: string;
}

export { UsageError };

export function parseArgs(argv: string[], defaultProject: string): CliOptions | "help" {
    const o: Partial<CliOptions> = { force: false, dryRun: false, yes: false, up: true, project: defaultProject };
    for (const { flag, raw: a, value } of args(argv)) {
        switch (flag) {
            case "backup": case "restore": case "shutdown": case "reboot":
                if (o.command) throw new UsageError(`one command only (got ${o.command} and ${a})`);
                o.command = flag;
                break;
            case "--stack": case "-s": o.stack = value(); break;
            case "--node": o.node = value(); break;
            case "--out": o.out = path.resolve(value()); break;
            case "--from": o.from = path.resolve(value()); break;
            case "--stop":
                try { o.stop = parseStopMode(value()); } catch (e) { throw new UsageError((e as Error).message); }
                break;
            case "--force": o.force = true; break;
            case "--dry-run": o.dryRun = true; break;
            case "--yes": o.yes = true; break;
            case "--no-up": o.up = false; break;
            case "--key": o.key = value(); break;
            case "--project": o.project = path.resolve(value()); break;
            case "-h": case "--help": return "help";
            default: throw new UsageError(`unknown argument '${a}'`);
        }
    }
    if (!o.command) throw new UsageError("a command is required: backup, restore, shutdown or reboot");
    if (!o.stack) throw new UsageError("--stack is required");
    if (o.command === "restore" && !o.from) throw new UsageError("restore needs --from FILE (a backup made by `npm run ops -- backup`)");
    return o as CliOptions;
}

const say = (s: string) => process.stdout.write(s + "\n");

function target(setup: StatusSetup, node: string): SshTarget {
    configuredNode(setup.cluster, setup.stackFile, node);
    const ep = setup.endpoints.find((e) => e.hostname === node);
    if (!ep?.target) throw new OpsError(`${node}: ${ep?.error ?? "cannot be reached"}`);
    return ep.target;
}

function managerTargets(setup: StatusSetup): SshTarget[] {
    return setup.cluster.nodes.filter((n) => n.role === "manager")
        .map((n) => setup.endpoints.find((e) => e.hostname === n.hostname)?.target).filter((t): t is SshTarget => !!t);
}

/** A step on a node failed (as opposed to a refusal before any change). */
class StepError extends OpsError {
    readonly step = true;
}

/** Run a script from scripts/ on a node; its DCCN_RESULT values, or an OpsError naming node and script. */
async function runNodeScript(t: SshTarget, script: string, env: Record<string, string>, timeoutSec: number, data?: string):
    Promise<{ values: Record<string, string>; stdout: string }> {
    const r = await runScript(t, scriptStdin(readScript(script), env, data), timeoutSec);
    const result = parseResult(r.stdout);
    if (r.code !== 0 || !result) {
        const why = r.stderr.trim().split("\n").slice(-4).join("; ");
        throw new StepError(`${t.name} (${t.host}): ${script} failed (exit ${r.code}${result?.values.error ? `, ${result.values.error}` : ""}): ${why}`);
    }
    return { values: result.values, stdout: r.stdout };
}

/** The managers as a manager with a quorum lists them; undefined when none answers with a quorum. */
async function observeManagers(setup: StatusSetup): Promise<ObservedManager[] | undefined> {
    let m: swarm.ManagerHandle;
    try {
        m = await swarm.findManager(managerTargets(setup), undefined, 20);
    } catch {
        return undefined;
    }
    const r = await runScript(m.target, "docker node ls --filter role=manager --format '{{.Hostname}}|{{.ManagerStatus}}'", 60);
    if (r.code !== 0) return undefined;
    return r.stdout.trim().split("\n").filter(Boolean).map((l) => {
        const [hostname, status] = l.split("|");
        return { hostname, reachable: status === "Leader" || status === "Reachable", leader: status === "Leader" };
    });
}

/** After the engine of a manager stopped and started: until its tasks are really back (lib/swarm-ops.ts). */
async function settle(t: SshTarget): Promise<void> {
    say(`${t.name}: waiting until the swarm has replaced the tasks whose containers went with the engine stop`);
    say(await swarm.settleReport(t));
}

function stamp(d = new Date()): string {
    return d.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
}

async function backup(setup: StatusSetup, opts: CliOptions): Promise<number> {
    const plan = planBackup(setup.cluster, setup.stackFile, await observeManagers(setup), { node: opts.node, force: opts.force });
    if (plan.quorumLoss) say(`warning (--force): ${plan.quorumLoss}`);
    const t = target(setup, plan.node);
    say(`backing up the swarm state of ${plan.node}: stopping its engine, archiving /var/lib/docker/swarm, starting it again`);
    const started = Date.now();
    const { values, stdout } = await runNodeScript(t, "swarm-backup.sh", {}, 300);
    const m = /^DCCN_ARCHIVE_BEGIN\n([\s\S]*?)\nDCCN_ARCHIVE_END$/m.exec(stdout);
    const archive = m ? Buffer.from(m[1].replace(/\s+/g, ""), "base64") : Buffer.alloc(0);
    if (!m || archive.length !== Number(values.bytes)) {
        throw new StepError(`${plan.node}: the archive did not arrive whole (${archive.length} of ${values.bytes} bytes)`);
    }
    const dir = opts.out ?? path.join(opts.project, ".state", "backups");
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
    const file = path.join(dir, `swarm-${opts.stack}-${plan.node}-${stamp()}.tar.gz`);
    fs.writeFileSync(file, archive, { mode: 0o600, flag: "wx" });
    const sha = crypto.createHash("sha256").update(archive).digest("hex");
    say(`${plan.node}: engine running again after ${((Date.now() - started) / 1000).toFixed(1)}s`);
    await settle(t);
    say(`written ${file} (${archive.length} bytes, mode 600, sha256 ${sha})`);
    say(`engine version ${values.engine_version}: restore onto an engine of the same version` +
        (values.autolock === "true" ? "; the swarm is autolocked: keep its unlock key (docker swarm unlock-key) with the backup" : ""));
    say("it holds the swarm's Raft log and the keys that encrypt it: keep it as secret as the SSH key");
    return 0;
}

async function restore(setup: StatusSetup, opts: CliOptions): Promise<number> {
    const node = planRestore(setup.cluster, setup.stackFile, opts.node);
    const file = opts.from as string;
    let archive: Buffer;
    try {
        archive = fs.readFileSync(file);
    } catch (e) {
        throw new OpsError(`--from ${file}: cannot be read: ${(e as Error).message}`);
    }
    if ((fs.statSync(file).mode & 0o077) !== 0) say(`warning: ${file} is readable by others than its owner; it holds the swarm's keys (chmod 600)`);
    const t = target(setup, node.hostname);
    const info = await swarm.swarmInfo(t);
    if (info.state === "active" && !opts.force) {
        throw new OpsError(`${node.hostname} is in a swarm now (state active, cluster ${info.clusterId ?? "unknown"}); ` +
            "restoring replaces its swarm state: make sure that is meant, then pass --force");
    }
    if (!opts.yes) throw new OpsError(`restore replaces the swarm state of ${node.hostname}; pass --yes to carry it out`);
    say(`restoring ${path.basename(file)} onto ${node.hostname}: stopping its engine, putting the archive in place of /var/lib/docker/swarm ` +
        "(the old one is kept beside it), starting the engine, docker swarm init --force-new-cluster");
    const { values } = await runNodeScript(t, "swarm-restore.sh", { ADVERTISE_ADDR: node.address }, 300,
        archive.toString("base64").replace(/.{76}/g, "$&\n"));
    say(`${node.hostname}: the only manager of swarm ${values.cluster_id} (node ${values.node_id}); previous state ${values.previous}`);
    await settle(t);
    say(`next: \`pulumi up --refresh --stack ${opts.stack}\` joins the other managers again and brings the cluster to its configured shape`);
    return 0;
}

function stackPlanInput(opts: CliOptions, setup: StatusSetup): StackPlanInput {
    const doc = yaml.load(fs.readFileSync(path.join(opts.project, setup.stackFile), "utf8")) as { config?: Record<string, unknown> };
    const config = doc?.config ?? {};
    const stacks = ((config[`${PROJECT}:stacks`] as { name?: unknown }[] | undefined) ?? [])
        .map((s) => String(s?.name ?? "")).filter(Boolean);
    return { stack: opts.stack, stacks, registry: config[`${PROJECT}:registry`] !== undefined, mode: opts.stop ?? defaultStopMode(setup.cluster) };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function untilTrue(what: string, timeoutSec: number, check: () => Promise<boolean>): Promise<void> {
    const until = Date.now() + timeoutSec * 1000;
    for (;;) {
        if (await check().catch(() => false)) return;
        if (Date.now() > until) throw new OpsError(`timed out after ${timeoutSec}s waiting for ${what}`);
        await sleep(2000);
    }
}

async function nodeList(m: swarm.ManagerHandle): Promise<{ hostname: string; status: string; manager: string }[]> {
    const r = await runScript(m.target, "docker node ls --format '{{.Hostname}}|{{.Status}}|{{.ManagerStatus}}'", 60);
    if (r.code !== 0) throw new OpsError(`${m.target.name}: docker node ls failed: ${r.stderr.trim()}`);
    return r.stdout.trim().split("\n").filter(Boolean).map((l) => {
        const [hostname, status, manager] = l.split("|");
        return { hostname, status, manager };
    });
}

async function runStep(setup: StatusSetup, opts: CliOptions, s: OpsStep): Promise<string> {
    const st = s.step;
    switch (st.kind) {
        case "demote": case "promote": {
            const m = await swarm.findManager([target(setup, st.via)]);
            const row = (await nodeList(m)).find((r) => r.hostname === st.node);
            if (!row) return `${st.node} is not in the swarm; skipped`;
            const isManager = row.manager !== "";
            if ((st.kind === "demote") !== isManager) return `already a ${isManager ? "manager" : "worker"}`;
            await swarm.setRole(m, st.node, st.kind === "demote" ? "worker" : "manager");
            if (st.kind === "promote") {
                await untilTrue(`${st.node} reachable as a manager`, 120, async () =>
                    (await nodeList(m)).find((r) => r.hostname === st.node)?.manager === "Reachable");
            }
            return st.kind === "demote" ? "demoted" : "promoted, reachable";
        }
        case "remove-services": {
            const { values } = await runNodeScript(target(setup, st.via), "swarm-remove-services.sh", { STACKS: st.stacks.join(" ") }, 300);
            return `${values.stacks} stack(s) and ${values.services} other service(s) removed; none left`;
        }
        case "stop": {
            let values: Record<string, string>;
            try {
                values = (await runNodeScript(target(setup, st.node), "engine-power.sh", { ACTION: st.mode === "poweroff" ? "poweroff" : "stop" }, 180)).values;
            } catch (e) {
                // Powered off already (a second run of the shutdown): SSH does not answer. Said, not hidden.
                if (st.mode === "poweroff" && /SSH connection failed/.test((e as Error).message)) {
                    return "does not answer over SSH: taken as powered off already (check its console)";
                }
                throw e;
            }
            return values.changed === "1" ? `engine ${values.engine}` : "already stopped";
        }
        case "start": {
            const t = target(setup, st.node);
            if (st.mode === "poweroff") say(`       waiting for ${st.node} to be powered on (up to 15 min)`);
            let values: Record<string, string> = {};
            await untilTrue(`${st.node}'s engine`, st.mode === "poweroff" ? 900 : 120, async () => {
                values = (await runNodeScript(t, "engine-power.sh", { ACTION: "start" }, 150)).values;
                return true;
            });
            return values.changed === "1" ? "engine started" : "engine was running";
        }
        case "wait-ready": {
            const via = target(setup, st.via);
            await untilTrue(`${st.nodes.join(", ")} Ready`, 180, async () => {
                const m = await swarm.findManager([via], undefined, 5);
                const rows = await nodeList(m);
                return st.nodes.every((n) => rows.some((r) => r.hostname === n && r.status === "Ready"));
            });
            return "Ready";
        }
        case "pulumi-up": {
            if (!opts.up) return "skipped (--no-up)";
            const env = path.join(opts.project, "tools", "env.sh");
            const r = spawnSync("bash", ["-c", `. ${shq(env)} >/dev/null && pulumi up --stack ${shq(st.stack)} --yes --refresh --skip-preview --cwd ${shq(opts.project)}`],
                { stdio: ["ignore", "inherit", "inherit"] });
            if (r.status !== 0) throw new OpsError(`pulumi up --refresh --stack ${st.stack} failed (exit ${r.status}); fix what it names and run it again`);
            return "the stacks are back";
        }
    }
}

async function carryOut(setup: StatusSetup, opts: CliOptions, title: string, steps: OpsStep[]): Promise<number> {
    if (opts.dryRun) {
        process.stdout.write(renderPlan(`${title} (dry run: nothing is changed)`, steps));
        return 0;
    }
    say(title);
    for (const [i, s] of steps.entries()) {
        say(`  ${String(i + 1).padStart(2)}. [${s.doc}] ${s.text}`);
        const started = Date.now();
        try {
            const result = await runStep(setup, opts, s);
            say(`       ${result} (${((Date.now() - started) / 1000).toFixed(1)}s)`);
        } catch (e) {
            say(`       FAILED: ${(e as Error).message}`);
            process.stderr.write(`ops: step ${i + 1} failed; the steps before it are done, none after it was started\n`);
            return 1;
        }
    }
    return 0;
}

export async function main(argv: string[]): Promise<number> {
    let opts: CliOptions | "help";
    try {
        opts = parseArgs(argv, path.resolve(__dirname, ".."));
    } catch (e) {
        process.stderr.write(`ops: ${(e as Error).message}\n${USAGE}\n`);
        return 2;
    }
    if (opts === "help") {
        say(USAGE);
        return 0;
    }
    let setup: StatusSetup;
    try {
        setup = loadStatusSetup({ root: opts.project, stack: opts.stack, keyFile: opts.key });
    } catch (e) {
        if (!(e instanceof StatusSetupError)) throw e;
        process.stderr.write(`ops: ${e.message}\n`);
        return 2;
    }
    // The cluster lock, for the whole command (not for a dry run): a second command or a `pulumi up`
    // waits for it or is refused naming the holder; `pulumi up` started by this one gets it handed over.
    let lock: Awaited<ReturnType<typeof lockForCommand>>;
    try {
        lock = opts.dryRun ? undefined : await lockForCommand(setup, say);
    } catch (e) {
        process.stderr.write(`ops: ${(e as Error).message}\n`);
        return 2;
    }
    try {
        switch (opts.command) {
            case "backup": return await backup(setup, opts);
            case "restore": return await restore(setup, opts);
            case "shutdown": {
                const steps = planShutdown(setup.cluster, stackPlanInput(opts, setup));
                if (!opts.dryRun && !opts.yes) {
                    process.stdout.write(renderPlan(`emergency shutdown of ${opts.stack}`, steps));
                    throw new OpsError("the shutdown removes every service; pass --yes to carry it out (--dry-run to only print it)");
                }
                return await carryOut(setup, opts, `emergency shutdown of ${opts.stack} (DCCN 4.5)`, steps);
            }
            case "reboot":
                return await carryOut(setup, opts, `reboot of ${opts.stack} from the shutdown (DCCN 4.5.1)`,
                    planReboot(setup.cluster, stackPlanInput(opts, setup)));
        }
        return 2; // not reached: every command has its case
    } catch (e) {
        // A refusal (OpsError) comes before anything changed: 2. A step that failed (on a node): 1.
        const refused = (e as Error).name === "OpsError" && !(e as StepError).step;
        process.stderr.write(`ops: ${(e as Error).message}\n`);
        return refused ? 2 : 1;
    } finally {
        await lock?.release();
    }
}

if (require.main === module) {
    main(process.argv.slice(2)).then(
        (code) => process.exit(code),
        (err) => {
            process.stderr.write(`ops: ${err?.stack ?? err}\n`);
            process.exit(2);
        },
    );
}
