/**
 * The stack's configuration, read from `Pulumi.<stack>.yaml` and validated before any resource is
 * declared. Every error names the stack file, the key and the fix; the program stops on the first
 * set of errors so nothing changes on a node.
 */
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "./lib/sdk";
import * as yaml from "js-yaml";
import { ComposeError, loadStack, StackSpec } from "./compose";
import { ClusterConfig, ConfigError, knownHostsFor, parseSharedStorageText, pinnedKnownHostsLine, PROJECT, validateClusterConfig } from "./lib/cluster-config";
import { configIsSecret } from "./lib/pulumi-config";
import { passwordPresence, plainTextPasswordUsers, RegistryConfig, validateRegistryConfig } from "./lib/registry-config";
import { StackEntry, validateStacks } from "./lib/stacks-config";
import { stackBuilds, type StackBuild } from "./lib/stack-builds";
import type { HostSpec, SshSpec } from "./lib/resources";
import { type Protection, validateProtection } from "./lib/protection";
import { validateLockWait } from "./lib/cluster-lock";

export interface ProgramConfig {
    cluster: ClusterConfig;
    /** `Pulumi.<stack>.yaml`, named in error messages. */
    stackFile: string;
    /** How to reach nodes; the private key is a secret Output. */
    ssh: pulumi.Output<SshSpec>;
    /** Each node's address and pinned host key, by hostname. */
    hosts: Record<string, HostSpec>;
    /** Application stacks: their config entry and the converted compose file. */
    stacks: { entry: StackEntry; spec: StackSpec; builds: StackBuild[] }[];
    /** The private registry (`dccn-swarm:registry`), when the stack has one; the passwords are a secret. */
    registry?: { config: RegistryConfig; passwords: pulumi.Output<Record<string, string>> };
    /** Production protection (`environment`, `allowDestroy`): lib/protection.ts. */
    protection: Protection;
}

/** known_hosts lines for a node (lib/cluster-config.ts; the provider's cluster lock uses it too). */
export { knownHostsFor };

function fail(stackFile: string, key: string, message: string): never {
    throw new pulumi.RunError(`${stackFile}: ${PROJECT}:${key}: ${message}`);
}

export function loadConfig(): ProgramConfig {
    const cfg = new pulumi.Config(PROJECT);
    const stackFile = `Pulumi.${pulumi.getStack()}.yaml`;
    const secretKey = cfg.getSecret("sshPrivateKey");
    let cluster: ClusterConfig;
    try {
        const result = validateClusterConfig({
            environment: cfg.get("environment"),
            ssh: cfg.getObject("ssh"),
            engine: cfg.getObject("engine"),
            nodes: cfg.getObject("nodes"),
            swarm: cfg.getObject("swarm"),
            sharedStorage: parseSharedStorageText(cfg.get("sharedStorage")),
            hasSshPrivateKey: secretKey !== undefined,
            // Plain `pulumi config set sshPrivateKey` (no --secret) is refused, as the passwords are.
            sshPrivateKeyIsSecret: secretKey === undefined ? undefined : configIsSecret(`${PROJECT}:sshPrivateKey`),
        }, stackFile);
        for (const w of result.warnings) pulumi.log.warn(`${stackFile}: ${PROJECT}:${w.key}: ${w.message}`);
        cluster = result.config;
    } catch (e) {
        if (e instanceof ConfigError) throw new pulumi.RunError(e.message);
        throw e;
    }

    let privateKey: pulumi.Output<string>;
    if (cluster.ssh.privateKeyFile) {
        const file = path.resolve(cluster.ssh.privateKeyFile);
        if (!fs.existsSync(file)) {
            fail(stackFile, "ssh.privateKeyFile", `${file} does not exist` +
                (cluster.environment === "dev" ? "; run `npm run lab:up` first, it generates the lab's key" : "; point it at the administrators' key"));
        }
        privateKey = pulumi.secret(fs.readFileSync(file, "utf8"));
    } else {
        privateKey = secretKey as pulumi.Output<string>;
    }

    const knownHosts = cluster.ssh.knownHostsFile && fs.existsSync(path.resolve(cluster.ssh.knownHostsFile))
        ? fs.readFileSync(path.resolve(cluster.ssh.knownHostsFile), "utf8") : "";
    if (cluster.ssh.knownHostsFile && !knownHosts) {
        fail(stackFile, "ssh.knownHostsFile", `${path.resolve(cluster.ssh.knownHostsFile)} is missing or empty` +
            (cluster.environment === "dev" ? "; run `npm run lab:up` first, it records the lab's host keys" : ""));
    }
    const hosts: Record<string, HostSpec> = {};
    cluster.nodes.forEach((n, i) => {
        const lines = n.hostKey ? [pinnedKnownHostsLine(n.address, cluster.ssh.port, n.hostKey)] : knownHostsFor(knownHosts, n.address, cluster.ssh.port);
        if (lines.length === 0) {
            fail(stackFile, `nodes[${i}].hostKey`, `no SSH host key is pinned for ${n.hostname} (${n.address}); ` +
                "set `hostKey` from `ssh-keyscan -t ed25519 ADDRESS` after checking it on the console, or list it in `ssh.knownHostsFile`");
        }
        hosts[n.hostname] = { name: n.hostname, address: n.address, knownHosts: lines.join("\n") };
    });

    // Protection and the cluster lock's wait (the provider plugin reads lockWait itself, at configure).
    const protection = validateProtection(cluster.environment, cfg.get("allowDestroy"), stackFile);
    const lockWait = validateLockWait(cfg.get("lockWait"), stackFile);
    for (const f of [...protection.findings, ...lockWait.findings]) {
        if (f.level === "error") fail(stackFile, f.key, f.message);
        pulumi.log.warn(`${stackFile}: ${PROJECT}:${f.key}: ${f.message}`);
    }

    const registry = loadRegistryConfig(cluster, stackFile);
    const stacks = loadStacks(cfg.getObject("stacks"), stackFile, registry?.config.endpoint, cluster.engine.version);

    const ssh = pulumi.secret(privateKey.apply((key): SshSpec => ({
        user: cluster.ssh.user,
        port: cluster.ssh.port,
        privateKey: key,
        connectTimeout: cluster.ssh.connectTimeout,
    })));
    return { cluster, stackFile, ssh, hosts, stacks, ...(registry ? { registry } : {}), protection: protection.protection };
}

/**
 * Validate the `stacks` key and load, validate and convert every compose file, all before any
 * resource is declared: a malformed or rejected file stops the program with the file and key.
 */
function loadStacks(raw: unknown, stackFile: string, registry: string | undefined, engineVersion: string | undefined): { entry: StackEntry; spec: StackSpec; builds: StackBuild[] }[] {
    let entries: StackEntry[];
    try {
        entries = validateStacks(raw, stackFile);
    } catch (e) {
        if (e instanceof ConfigError) throw new pulumi.RunError(e.message);
        throw e;
    }
    return entries.map((entry, i) => {
        const file = path.resolve(entry.file);
        if (!fs.existsSync(file)) fail(stackFile, `stacks[${i}].file`, `${entry.file} does not exist`);
        try {
            // The rules of the pinned engine's docker stack deploy, else the newest with what the file needs of the engine (compose/target.ts).
            const { loaded, spec } = loadStack(file, { stackName: entry.name, env: entry.env, engineVersion }, entry.overrides);
            // The images the program builds (lib/stack-builds.ts): their contexts checked now, before any change.
            const { builds, warnings } = stackBuilds(loaded, spec, entry, i, stackFile, registry);
            const built = new Set(builds.map((b) => `services.${b.service}.build`));
            for (const w of [...spec.warnings.filter((w) => !built.has(w.key)), ...warnings]) {
                pulumi.log.warn(`${path.relative(process.cwd(), w.file) || w.file}: ${w.key}: ${w.message}`);
            }
            return { entry, spec, builds };
        } catch (e) {
            if (e instanceof ComposeError) throw new pulumi.RunError(`${stackFile}: ${PROJECT}:stacks[${i}] (${entry.name}): ${e.message}`);
            throw e;
        }
    });
}

/** Users with a plain-text password in the stack file (read from the program's directory, if it is there). */
function plainTextUsersIn(stackFile: string): string[] {
    try {
        const doc = yaml.load(fs.readFileSync(path.resolve(stackFile), "utf8")) as { config?: unknown } | undefined;
        return plainTextPasswordUsers(doc?.config);
    } catch {
        return [];
    }
}

/**
 * Reads and validates `dccn-swarm:registry` and `dccn-swarm:registryPasswords` (call it before any
 * resource is declared). Undefined when the stack has no registry. A bad setting stops the program
 * with the stack file, the key and the fix; the passwords are only checked for presence here.
 */
export function loadRegistryConfig(cluster: ClusterConfig, stackFile: string): { config: RegistryConfig; passwords: pulumi.Output<Record<string, string>> } | undefined {
    const cfg = new pulumi.Config(PROJECT);
    const key = `${PROJECT}:registryPasswords`;
    // The raw text is parsed only to learn which users have a password; nothing of it is kept or printed.
    const text = pulumi.runtime.getConfig(key);
    let parsed: unknown;
    let malformed = false;
    if (text !== undefined) {
        try {
            parsed = JSON.parse(text);
        } catch {
            malformed = true;
        }
    }
    const presence = text === undefined ? undefined : passwordPresence(parsed);
    if (text !== undefined && presence === undefined) malformed = true;
    let result;
    try {
        result = validateRegistryConfig({
            registry: cfg.getObject("registry"),
            passwords: presence,
            passwordsAreSecret: text === undefined ? undefined : configIsSecret(key),
            passwordsMalformed: malformed,
            plainTextUsers: plainTextUsersIn(stackFile),
        }, cluster.nodes, stackFile, cluster.sharedStorage?.path);
    } catch (e) {
        if (e instanceof ConfigError) throw new pulumi.RunError(e.message);
        throw e;
    }
    if (!result) return undefined;
    for (const w of result.warnings) pulumi.log.warn(`${stackFile}: ${PROJECT}:${w.key}: ${w.message}`);
    return { config: result.config, passwords: cfg.requireSecretObject<Record<string, string>>("registryPasswords") };
}
