// ops: the administrators' procedures the program does not do by itself, against a stack's nodes.
//
//   npm run ops -- backup   --stack <env> [--node NAME] [--out DIR] [--encrypt-to RECIPIENT | --no-encrypt] [--force]
//   npm run ops -- restore  --stack <env> --node NAME --from FILE [--identity FILE] --yes [--force]
//   npm run ops -- shutdown --stack <env> [--stop engine|poweroff] (--dry-run | --yes)
//   npm run ops -- reboot   --stack <env> [--stop engine|poweroff] [--dry-run] [--no-up]
//   npm run ops -- unlock   --stack <env> [--node NAME] [--unlock-key-file FILE]
//
// Plans come from lib/ops-plan.ts (pure); the node side is scripts/*.sh over lib/ssh.ts.
// Exit status: 0 done, 1 a step failed, 2 usage, stack config or a refusal before anything changed.
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { pipeline } from "stream/promises";
import * as yaml from "js-yaml";
import { loadStatusSetup, StatusSetup, StatusSetupError } from "../lib/cluster-status";
import { PROJECT } from "../lib/cluster-config";
import {
    configuredNode, defaultStopMode, ObservedManager, OpsError, OpsStep, parseStopMode, planBackup, planReboot, planRestore,
    planShutdown, renderPlan, StackPlanInput, StopMode,
} from "../lib/ops-plan";
import { Digest, inspectBackup, openBackup, parseRecipient, prepareOutDir, Recipient, checkAge, writeBackupFile } from "../lib/backup-stream";
import { parseResult, readScript, scriptStdin, scriptStdinKeepInput } from "../lib/remote-script";
import { execStream, runScript, shq, SshTarget, StreamResult } from "../lib/ssh";
import { args, UsageError } from "../lib/cli-args";
import * as swarm from "../lib/swarm-ops";
import { lockForCommand } from "../lib/cluster-lock";

export const USAGE = `usage: npm run ops -- <command> --stack <env> [options]
commands:
  backup    stream the swarm state (/var/lib/docker/swarm) of a manager, its engine stopped for the copy,
            to a file in DIR (default .state/backups) with mode 600: it holds the swarm's Raft keys
              --node NAME            the manager (default: a reachable manager that is not the leader)
              --out DIR              where to write swarm-<env>-<node>-<time>.tar.gz[.age]
              --encrypt-to RCPT      encrypt with age to RCPT: an age1... recipient, an SSH public key,
                                     or a file of them (default: dccn-swarm:backupRecipient of the stack)
              --no-encrypt           store it unencrypted (required outside environment dev without a recipient)
              --force                also when stopping that engine takes the quorum away (one manager)
  restore   put a backup onto a configured manager and re-initialise the swarm from it
            (docker swarm init --force-new-cluster); then run \`pulumi up --refresh --stack <env>\`;
            the node's previous swarm directory is kept as /var/lib/docker/swarm.previous (only one)
              --node NAME --from FILE --yes   (--force: also over a node that is in a working swarm)
              --identity FILE        the age identity or SSH private key that opens a .age backup
  shutdown  the emergency shutdown (DCCN 4.5): demote the other managers, remove stacks and
            services, stop the workers, stop the last manager
  reboot    back from the shutdown (DCCN 4.5.1): the last manager first, then the other nodes,
            promote to the configured managers, then \`pulumi up --refresh\` (registry first, then stacks);
            a manager locked by autolock is unlocked with the stack's unlock key
              --no-up       stop before the pulumi step
  unlock    unlock the managers whose engine restarted under autolock (docker swarm unlock) with the
            key the stack keeps (the secret output swarmUnlockKey)
              --node NAME   only this node (default: every configured manager)
options:
  --stop MODE     how a node is stopped/started: engine (systemctl stop/start docker; default for
                  environment dev, the lab) or poweroff (systemctl poweroff; power on by console/IPMI)
  --dry-run       print the plan only (shutdown, reboot)
  --yes           carry out a shutdown or restore (they remove services or replace swarm state)
  --key FILE      SSH private key, when the stack keeps it as the secret sshPrivateKey (or DCCN_SSH_KEY_FILE)
  --project DIR   project root holding the stack file (default: this project)
  --unlock-key-file FILE   (unlock, restore, reboot) the unlock key from FILE (one kept with an older
                  backup) instead of the stack's secret output swarmUnlockKey
exit status: 0 done, 1 a step failed, 2 usage, configuration or refused before any change`;

type Command = "backup" | "restore" | "shutdown" | "reboot" | "unlock";

export interface CliOptions {
    command: Command;
    stack: string;
    node?: string;
    out?: string;
    from?: string;
    /** backup: the recipient to encrypt to (`--encrypt-to`). */
    encryptTo?: string;
    /** backup: store it unencrypted on purpose (`--no-encrypt`). */
    noEncrypt: boolean;
    /** restore: the age identity of an encrypted backup (`--identity`). */
    identity?: string;
    stop?: StopMode;
    force: boolean;
    dryRun: boolean;
    yes: boolean;
    up: boolean;
    key?: string;
    /** unlock, restore, reboot: a file holding the unlock key (else the stack's output swarmUnlockKey). */
    unlockKeyFile?: string;
    project: string;
}

export { UsageError };

export function parseArgs(argv: string[], defaultProject: string): CliOptions | "help" {
    const o: Partial<CliOptions> = { force: false, dryRun: false, yes: false, up: true, noEncrypt: false, project: defaultProject };
    for (const { flag, raw: a, value } of args(argv)) {
        switch (flag) {
            case "backup": case "restore": case "shutdown": case "reboot": case "unlock":
                if (o.command) throw new UsageError(`one command only (got ${o.command} and ${a})`);
                o.command = flag;
                break;
            case "--stack": case "-s": o.stack = value(); break;
            case "--node": o.node = value(); break;
            case "--out": o.out = path.resolve(value()); break;
            case "--from": o.from = path.resolve(value()); break;
            case "--encrypt-to": o.encryptTo = value(); break;
            case "--no-encrypt": o.noEncrypt = true; break;
            case "--identity": o.identity = path.resolve(value()); break;
            case "--stop":
                try { o.stop = parseStopMode(value()); } catch (e) { throw new UsageError((e as Error).message); }
                break;
            case "--force": o.force = true; break;
            case "--dry-run": o.dryRun = true; break;
            case "--yes": o.yes = true; break;
            case "--no-up": o.up = false; break;
            case "--key": o.key = value(); break;
            case "--unlock-key-file": o.unlockKeyFile = path.resolve(value()); break;
            case "--project": o.project = path.resolve(value()); break;
            case "-h": case "--help": return "help";
            default: throw new UsageError(`unknown argument '${a}'`);
        }
    }
    if (!o.command) throw new UsageError("a command is required: backup, restore, shutdown, reboot or unlock");
    if (!o.stack) throw new UsageError("--stack is required");
    if (o.command === "restore" && !o.from) throw new UsageError("restore needs --from FILE (a backup made by `npm run ops -- backup`)");
    const only = (flag: string, given: unknown, command: Command) => {
        if (given && o.command !== command) throw new UsageError(`${flag} belongs to ${command}, not ${o.command}`);
    };
    only("--encrypt-to", o.encryptTo, "backup");
    only("--no-encrypt", o.noEncrypt, "backup");
    only("--out", o.out, "backup");
    only("--identity", o.identity, "restore");
    only("--from", o.from, "restore");
    if (o.encryptTo && o.noEncrypt) throw new UsageError("--encrypt-to and --no-encrypt contradict each other: give one");
    if (o.unlockKeyFile && !["unlock", "restore", "reboot"].includes(o.command)) {
        throw new UsageError(`--unlock-key-file belongs to unlock, restore or reboot, not ${o.command}`);
    }
    if (o.command === "unlock" && (o.dryRun || o.yes)) throw new UsageError("unlock takes neither --dry-run nor --yes: it changes nothing but the lock state of locked managers");
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

/** A key of the stack's config as the stack file holds it (plain values only). */
function stackConfigValue(opts: CliOptions, setup: StatusSetup, key: string): unknown {
    const doc = yaml.load(fs.readFileSync(path.join(opts.project, setup.stackFile), "utf8")) as { config?: Record<string, unknown> } | undefined;
    return doc?.config?.[`${PROJECT}:${key}`];
}

/**
 * Whom the backup is encrypted to: --encrypt-to, else the stack's `backupRecipient`; none with
 * --no-encrypt. Outside environment dev a backup without a recipient needs --no-encrypt: a
 * plaintext copy of the Raft keys is then a decision, not an accident.
 */
export function backupRecipient(opts: CliOptions, setup: StatusSetup): Recipient | undefined {
    if (opts.noEncrypt) return undefined;
    if (opts.encryptTo) return parseRecipient(opts.encryptTo, `--encrypt-to ${JSON.stringify(opts.encryptTo)}`, process.cwd());
    const configured = stackConfigValue(opts, setup, "backupRecipient");
    if (configured !== undefined && configured !== "") {
        const where = `${setup.stackFile}: \`${PROJECT}:backupRecipient\``;
        if (typeof configured !== "string") throw new OpsError(`${where} must be a string (an age1... recipient, an SSH public key, or a file of them), got ${JSON.stringify(configured)}`);
        return parseRecipient(configured, where, opts.project);
    }
    if (setup.cluster.environment !== "dev") {
        throw new OpsError(`a backup of environment ${setup.cluster.environment} must be encrypted (it holds the swarm's Raft keys): ` +
            `pass --encrypt-to RECIPIENT (age1... or an SSH public key file), or set \`${PROJECT}:backupRecipient\` in ${setup.stackFile}; ` +
            "--no-encrypt stores it unencrypted on purpose");
    }
    return undefined;
}

/** The node's side of a streamed script, as one line for a message: its error and the tail of what it said. */
function nodeFailure(t: SshTarget, script: string, r: StreamResult): string {
    const result = parseResult(r.stderr) ?? undefined;
    const said = r.stderr.split("\n").filter((l) => l.trim() && !l.startsWith("DCCN_RESULT")).slice(-6).join("; ");
    return `${t.name} (${t.host}): ${script} failed (exit ${r.code}${result?.values.error ? `, ${result.values.error}` : ""}${r.failure ? `, ${r.failure}` : ""})${said ? `: ${said}` : ""}`;
}

/** The unlock key's shape; a file or output holding anything else is refused without echoing it. */
const UNLOCK_KEY_RE = /^SWMKEY-1-[A-Za-z0-9+/=_-]+$/;

/**
 * The stack's unlock key: the secret output `swarmUnlockKey` read with the pinned CLI (into this
 * process's memory: never printed, never on a command line), or `--unlock-key-file`. Undefined when
 * the stack has no such output (autolock not configured). Asked for only when a node is locked.
 */
export function unlockKeySource(opts: Pick<CliOptions, "project" | "stack" | "unlockKeyFile">): () => Promise<string | undefined> {
    let cached: Promise<string | undefined> | undefined;
    return () => (cached ??= (async () => {
        if (opts.unlockKeyFile) {
            let text: string;
            try {
                text = fs.readFileSync(opts.unlockKeyFile, "utf8").trim();
            } catch (e) {
                throw new OpsError(`--unlock-key-file ${opts.unlockKeyFile} cannot be read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
            }
            if (!UNLOCK_KEY_RE.test(text)) throw new OpsError(`--unlock-key-file ${opts.unlockKeyFile} does not hold a swarm unlock key (SWMKEY-1-...); its content is not shown`);
            if ((fs.statSync(opts.unlockKeyFile).mode & 0o077) !== 0) say(`warning: --unlock-key-file ${opts.unlockKeyFile} is readable by others than its owner (chmod 600)`);
            return text;
        }
        const env = path.join(opts.project, "tools", "env.sh");
        const r = spawnSync("bash", ["-c", `. ${shq(env)} >/dev/null && pulumi stack output swarmUnlockKey --show-secrets --stack ${shq(opts.stack)} --cwd ${shq(opts.project)}`],
            { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 1 << 20 });
        if (r.status !== 0) {
            if (/does not have output property|not found/i.test(r.stderr)) return undefined;
            throw new OpsError(`reading the stack's unlock key (pulumi stack output swarmUnlockKey --stack ${opts.stack}) failed (exit ${r.status}): ` +
                `${r.stderr.trim().split("\n").slice(-2).join("; ")}; or pass --unlock-key-file FILE`);
        }
        const key = r.stdout.trim();
        if (key === "") return undefined;
        if (!UNLOCK_KEY_RE.test(key)) throw new OpsError(`the stack's output swarmUnlockKey is not a swarm unlock key (SWMKEY-1-...); its content is not shown`);
        return key;
    })());
}

/** `unlock`: every configured manager (or --node) that is locked is unlocked with the stack's key. */
async function unlockNodes(setup: StatusSetup, opts: CliOptions): Promise<number> {
    const names = opts.node ? [configuredNode(setup.cluster, setup.stackFile, opts.node).hostname]
        : setup.cluster.nodes.filter((n) => n.role === "manager").map((n) => n.hostname);
    const key = unlockKeySource(opts);
    let failed = 0;
    for (const name of names) {
        try {
            const unlocked = await swarm.unlockIfLocked(target(setup, name), key);
            say(`${name}: ${unlocked ? "unlocked with the stack's unlock key; its swarm is active again" : "not locked"}`);
        } catch (e) {
            failed++;
            say(`${name}: FAILED: ${(e as Error).message}`);
        }
    }
    return failed ? 1 : 0;
}

/** A command checked on this machine (its refusals come before any node is reached), ready to run. */
type Prepared = () => Promise<number>;

async function backup(setup: StatusSetup, opts: CliOptions): Promise<Prepared> {
    // Everything that can be refused here is refused before the lock is taken and an engine stops.
    const recipient = backupRecipient(opts, setup);
    if (recipient) checkAge();
    const dir = prepareOutDir(opts.out ?? path.join(opts.project, ".state", "backups"), opts.project);
    return () => backupOnNode(setup, opts, recipient, dir);
}

async function backupOnNode(setup: StatusSetup, opts: CliOptions, recipient: ReturnType<typeof backupRecipient>, dir: string): Promise<number> {
    const plan = planBackup(setup.cluster, setup.stackFile, await observeManagers(setup), { node: opts.node, force: opts.force });
    if (plan.quorumLoss) say(`warning (--force): ${plan.quorumLoss}`);
    const t = target(setup, plan.node);
    say(`backing up the swarm state of ${plan.node}: stopping its engine, streaming /var/lib/docker/swarm, starting it again` +
        (recipient ? `; encrypted to ${recipient.describe}` : "; unencrypted"));
    const started = Date.now();
    const s = await execStream(t, scriptStdinKeepInput(readScript("swarm-backup.sh"), {}), { idleTimeoutSec: 300 });
    s.stdin.end();
    const name = `swarm-${opts.stack}-${plan.node}-${stamp()}.tar.gz`;
    let nodeResult: Record<string, string> = {};
    let written;
    try {
        written = await writeBackupFile(s.stdout, dir, name, {
            recipient,
            check: async (plain) => {
                const r = await s.done;
                const result = parseResult(r.stderr);
                if (r.code !== 0 || !result || result.values.error) throw new StepError(nodeFailure(t, "swarm-backup.sh", r));
                nodeResult = result.values;
                if (result.values.bytes !== String(plain.bytes) || result.values.sha256 !== plain.sha256) {
                    throw new StepError(`${plan.node}: the archive did not arrive whole (received ${plain.bytes} bytes, sha256 ${plain.sha256}; ` +
                        `the node sent ${result.values.bytes} bytes, sha256 ${result.values.sha256}); no file was written, run the backup again`);
                }
            },
        });
    } catch (e) {
        // This side failed (the disk, age): the node sees its reader go and starts its engine again.
        s.close((e as Error).message);
        const r = await s.done;
        const node = parseResult(r.stderr);
        const why = e instanceof StepError ? e.message : `${(e as Error).message}` +
            (r.code !== 0 || node?.values.error ? `; on the node: ${nodeFailure(t, "swarm-backup.sh", r)}` : "");
        throw new StepError(`${why}; no backup file was written`);
    }
    say(`${plan.node}: engine running again after ${((Date.now() - started) / 1000).toFixed(1)}s`);
    // Under autolock the restarted manager is locked: unlocked with the stack's key before its tasks are waited for.
    try {
        if (await swarm.unlockIfLocked(t, unlockKey(opts))) say(`${plan.node}: unlocked (autolock) with the stack's unlock key`);
    } catch (e) {
        say(`warning: ${(e as Error).message}`);
    }
    await settle(t);
    say(`written ${written.file} (${written.bytes} bytes, mode 600, sha256 ${written.sha256})`);
    if (recipient) say(`the archive inside: ${written.plainBytes} bytes, sha256 ${written.plainSha256} (as the node computed it); restore with --identity <the private key of ${recipient.describe}>`);
    else say(`its sha256 is the one the node computed as it sent it`);
    say(`engine version ${nodeResult.engine_version}: restore onto an engine of the same version` +
        (nodeResult.autolock === "true" ? "; the swarm is autolocked: keep its unlock key of now (the stack's output swarmUnlockKey) with the backup: " +
            "a restore needs it (--unlock-key-file) once the key is rotated" : ""));
    say(recipient ? "it holds the swarm's Raft log and keys, encrypted: keep the identity that opens it as secret as the SSH key"
        : "it holds the swarm's Raft log and the keys that encrypt it, unencrypted: keep it as secret as the SSH key");
    return 0;
}

async function restore(setup: StatusSetup, opts: CliOptions): Promise<Prepared> {
    const node = planRestore(setup.cluster, setup.stackFile, opts.node);
    const file = opts.from as string;
    // The file is what it claims before the lock is taken and the node touched: a swarm backup, opened by the identity.
    const kind = await inspectBackup(file, opts.identity);
    if ((fs.statSync(file).mode & 0o077) !== 0) say(`warning: ${file} is readable by others than its owner; it holds the swarm's keys (chmod 600)`);
    if (opts.identity && (fs.statSync(opts.identity).mode & 0o077) !== 0) say(`warning: --identity ${opts.identity} is readable by others than its owner (chmod 600)`);
    return () => restoreOnNode(setup, opts, node, file, kind);
}

async function restoreOnNode(setup: StatusSetup, opts: CliOptions, node: ReturnType<typeof planRestore>, file: string, kind: Awaited<ReturnType<typeof inspectBackup>>): Promise<number> {
    const t = target(setup, node.hostname);
    const info = await swarm.swarmInfo(t);
    if (info.state === "active" && !opts.force) {
        throw new OpsError(`${node.hostname} is in a swarm now (state active, cluster ${info.clusterId ?? "unknown"}); ` +
            "restoring replaces its swarm state: make sure that is meant, then pass --force");
    }
    if (!opts.yes) throw new OpsError(`restore replaces the swarm state of ${node.hostname}; pass --yes to carry it out`);
    say(`restoring ${path.basename(file)}${kind === "age" ? " (decrypted as it streams)" : ""} onto ${node.hostname}: unpacking it beside /var/lib/docker/swarm, ` +
        "stopping its engine, keeping the current swarm directory as swarm.previous (the only one kept), starting the engine, docker swarm init --force-new-cluster");
    // An autolocked backup comes back locked after every engine start: the script unlocks it with the
    // stack's key (or --unlock-key-file), which travels with the script on standard input.
    let key: string | undefined;
    try {
        key = await unlockKey(opts)();
    } catch (e) {
        say(`note: ${(e as Error).message}; an autolocked backup will stop locked`);
    }
    const src = openBackup(file, opts.identity);
    const s = await execStream(t, scriptStdinKeepInput(readScript("swarm-restore.sh"), { ADVERTISE_ADDR: node.address, UNLOCK_KEY: key }), { idleTimeoutSec: 300 });
    const sent = new Digest();
    let out = "";
    s.stdout.setEncoding("utf8");
    s.stdout.on("data", (d: string) => { out = (out + d).slice(-16384); });
    s.stdout.on("error", () => { /* the channel's end tells */ });
    let sendError: Error | undefined;
    await pipeline(src.stream, sent, s.stdin).catch((e: Error) => {
        // This side failed (reading, decrypting): the node sees its input end short and changes nothing.
        sendError = e;
        s.close(e.message);
    });
    const decrypted = await src.done.then(() => undefined, (e: Error) => e);
    const r = await s.done;
    const result = parseResult(out);
    if (r.code !== 0 || !result || result.values.error) {
        const local = decrypted ?? sendError;
        const sentWhat = sent.writableFinished ? `sent ${sent.bytes} bytes, sha256 ${sent.sha256}` : `sent ${sent.bytes} bytes before this side stopped`;
        throw new StepError(`${nodeFailure(t, "swarm-restore.sh", { ...r, stderr: `${r.stderr}\n${out}` })}` +
            `; this side ${sentWhat}` + (local ? `; on this side: ${local.message}` : "") + (result?.values.changed === "1" ? "" : "; nothing was changed on the node"));
    }
    const v = result.values;
    if (v.bytes !== String(sent.bytes) || v.sha256 !== sent.sha256) {
        say(`warning: the node received ${v.bytes} bytes (sha256 ${v.sha256}), ${sent.bytes} were sent (sha256 ${sent.sha256}); the archive unpacked whole (gzip checks it)`);
    }
    say(`${node.hostname}: the only manager of swarm ${v.cluster_id} (node ${v.node_id}); the archive arrived whole (${v.bytes} bytes, sha256 ${v.sha256})`);
    say(v.previous === "none" ? `${node.hostname}: there was no previous swarm state to keep`
        : `${node.hostname}: the previous swarm state is kept in ${v.previous}${v.previous_from === "earlier" ? " (from an earlier restore: this node's swarm directory was empty)" : ""}; ` +
            "it is replaced at the next restore");
    if (v.autolock_turned_off === "1") {
        say(`${node.hostname}: the backup's swarm was autolocked: unlocked with the unlock key, and autolock turned off for the re-initialisation ` +
            "(Docker cannot force a new cluster from an autolocked state); with `swarm.autolock: true` the next `pulumi up --refresh` turns it on again " +
            "with a new unlock key (output swarmUnlockKey)");
    }
    if (v.removed_old !== "0") say(`${node.hostname}: removed ${v.removed_old} swarm.before-restore.* director${v.removed_old === "1" ? "y" : "ies"} older versions had left`);
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

/** One unlock-key source per command run (the stack's output is read at most once). */
const unlockKeys = new WeakMap<CliOptions, () => Promise<string | undefined>>();
function unlockKey(opts: CliOptions): () => Promise<string | undefined> {
    let k = unlockKeys.get(opts);
    if (!k) unlockKeys.set(opts, (k = unlockKeySource(opts)));
    return k;
}

async function runStep(setup: StatusSetup, opts: CliOptions, s: OpsStep): Promise<string> {
    const st = s.step;
    switch (st.kind) {
        case "demote": case "promote": {
            const m = await swarm.findManager([target(setup, st.via)]);
            const row = (await nodeList(m)).find((r) => r.hostname === st.node);
            if (!row) return `${st.node} is not in the swarm; skipped`;
            const isManager = row.manager !== "";
            if (st.kind === "promote" && isManager && row.manager === "Unreachable") {
                // A manager that does not answer counts against the quorum: no promotion after it
                // before it answers.
                await untilTrue(`${st.node} reachable as a manager`, 120, async () =>
                    (await nodeList(m)).find((r) => r.hostname === st.node)?.manager === "Reachable");
                return "already a manager, reachable";
            }
            if ((st.kind === "demote") !== isManager) return `already a ${isManager ? "manager" : "worker"}`;
            // setRole returns once a promoted node is a reachable manager, and once a demoted one holds
            // a worker's certificate (its engine is stopped next in a shutdown).
            await swarm.setRole(m, st.node, st.kind === "demote" ? "worker" : "manager", target(setup, st.node));
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
            // Under autolock a manager's engine comes back locked: unlocked with the stack's key.
            const unlocked = await swarm.unlockIfLocked(t, unlockKey(opts));
            return (values.changed === "1" ? "engine started" : "engine was running") + (unlocked ? "; unlocked (autolock) with the stack's unlock key" : "");
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

/** Each command's checks on this machine; what it returns runs it on the cluster. */
async function prepare(setup: StatusSetup, opts: CliOptions): Promise<Prepared> {
    switch (opts.command) {
        case "backup": return backup(setup, opts);
        case "restore": return restore(setup, opts);
        case "shutdown": {
            const steps = planShutdown(setup.cluster, stackPlanInput(opts, setup));
            if (!opts.dryRun && !opts.yes) {
                process.stdout.write(renderPlan(`emergency shutdown of ${opts.stack}`, steps));
                throw new OpsError("the shutdown removes every service; pass --yes to carry it out (--dry-run to only print it)");
            }
            return () => carryOut(setup, opts, `emergency shutdown of ${opts.stack} (DCCN 4.5)`, steps);
        }
        case "reboot": {
            const steps = planReboot(setup.cluster, stackPlanInput(opts, setup));
            return () => carryOut(setup, opts, `reboot of ${opts.stack} from the shutdown (DCCN 4.5.1)`, steps);
        }
        case "unlock": {
            if (opts.node) configuredNode(setup.cluster, setup.stackFile, opts.node);
            return () => unlockNodes(setup, opts);
        }
    }
    throw new OpsError(`unknown command ${String(opts.command)}`);
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
    // First what this machine can refuse (arguments, files, the plan), then the cluster lock for the
    // whole command (not for a dry run): a second command or a `pulumi up` waits for it or is refused
    // naming the holder; a `pulumi up` started by this one gets it handed over.
    let run: Prepared;
    try {
        run = await prepare(setup, opts);
    } catch (e) {
        process.stderr.write(`ops: ${(e as Error).message}\n`);
        return 2;
    }
    let lock: Awaited<ReturnType<typeof lockForCommand>>;
    try {
        lock = opts.dryRun ? undefined : await lockForCommand(setup, say);
    } catch (e) {
        process.stderr.write(`ops: ${(e as Error).message}\n`);
        return 2;
    }
    try {
        return await run();
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
    // Idle SSH connections and the lock's channel are unref'd: without this the process could end
    // (exit status 0) while main still waits on one of them, such as the lock's release.
    setInterval(() => undefined, 60_000);
    main(process.argv.slice(2)).then(
        (code) => process.exit(code),
        (err) => {
            process.stderr.write(`ops: ${err?.stack ?? err}\n`);
            process.exit(2);
        },
    );
}
