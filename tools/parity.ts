// parity: deploy each compose file once with `docker stack deploy` and once through the program
// (loadCompose -> convertStack -> engine-spec -> the stack providers' check/create, as the Stack
// component's resources call them), under two stack names, one after the other; read back every
// service, network, secret and config the two left in the engine, compare them field by field
// (lib/parity.ts), remove both, and print the differences per file and a last line
//   N files, M identical, K different, R rejected by both
//
//   npm run parity -- [--local [--engine 20.10|26.1] [--local-socket PATH] | --host ssh://USER@ADDRESS[:PORT] [--key FILE] [--known-hosts FILE]] [--docker-cli PATH] [--dump DIR] FILE...
//
// Exit status: 0 no undeclared difference, 1 some file is different, 2 the check could not run.
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { loadBounded } from "../compose/yaml-bounded";
import { loadStack, type StackSpec } from "../compose";
import { engineStack, type JsonObject } from "../lib/engine-spec";
import { api, apiOk, findManager, localTransport, sshTransport, type Transport } from "../lib/engine-transport";
import {
    canonicalDeployment, compareDeployments, declaredRenames, dependsOnOrder, externalObjects, formatDifference,
    NAMESPACE_LABEL, outcome, rejectionDifferences, renderFile, summaryLine,
    type ContentNamed, type CreatedService, type Deployed, type EngineContext, type ExternalObjects, type FileResult,
} from "../lib/parity";
import {
    engineOps, externalsProvider, fileObjectProvider, networkProvider, serviceProvider,
    type Access, type Connect, type ExternalRef, type FileObjectInputs, type NetworkInputs, type ServiceInputs,
} from "../lib/stack-providers";
import { args, UsageError } from "../lib/cli-args";
import { docker as dockerLocal, type Dockerd, dockerdProblem, ENGINES, startDockerd, stopDockerd, TEST_IMAGE } from "./dockerd";

const REPO = path.resolve(__dirname, "..");
const LAB_JSON = path.join(REPO, ".state", "lab", "lab.json");

export const USAGE = `usage: npm run parity -- [--local [--engine 20.10|26.1] [--local-socket PATH] | --host ssh://USER@ADDRESS[:PORT] [--key FILE] [--known-hosts FILE]] [--docker-cli PATH] [--dump DIR] FILE...
  --local            deploy on a throwaway single-node swarm (a dockerd in its own network
                     namespace, removed at the end); images are local stand-ins
  --engine VERSION   with --local: the engine to start, 20.10 (the host's docker.io, default) or
                     26.1 (Debian trixie's 26.1.5 from tools/engines.sh's cache), each with its CLI
  --local-socket PATH  with --local: a throwaway engine already running here (the tests share
                     one per version), used and left running instead of starting one
  --host URL         the swarm manager to deploy on (default: the lab's first manager, from
                     .state/lab/lab.json, with the lab's SSH key and known_hosts)
  --key FILE         SSH private key for --host (default: the lab's)
  --known-hosts FILE known_hosts with the manager's host key (default: the lab's)
  --docker-socket PATH  the Docker socket on the manager (default: /var/run/docker.sock), for the
                     program's Engine API calls and the docker CLI's docker system dial-stdio
  --docker-cli PATH  the docker CLI that runs docker stack deploy (default: of the CLIs installed
                     here, on PATH and /usr/bin/docker, the one whose version is the engine's: the
                     CLI converts the compose file, so the reference is that version's conversion)
  --unpinned         the program converts as for a stack without a pinned engine version (the
                     newest rules, what the file needs of the engine checked by the providers);
                     default: as for a stack pinned to the engine's version
  --dump DIR         write what was compared, per file: <i>-<file>.reference.json and .program.json
Each FILE is deployed twice (docker stack deploy, then the program) under two stack names, compared
and removed again. Exit status: 0 no undeclared difference, 1 some file differs, 2 the check could not run.`;

export { UsageError };

export interface Options {
    local: boolean;
    /** --local: the engine to start (tools/dockerd.ts ENGINES), default 20.10. */
    engine?: "20.10" | "26.1";
    /** --local: a throwaway engine's socket on this machine, used instead of starting one. */
    localSocket?: string;
    /** Directory to write each file's canonical deployments to (`<i>-<name>.reference.json`, `.program.json`). */
    dump?: string;
    host?: string;
    key?: string;
    knownHosts?: string;
    /** The Docker socket on the manager (--host), when not /var/run/docker.sock. */
    dockerSocket?: string;
    /** The docker CLI to run `docker stack deploy` with (default: chosen by {@link chooseDockerCli}). */
    dockerCli?: string;
    /** The program converts as for a stack without a pinned engine version. */
    unpinned?: boolean;
    files: string[];
}

export function parseArgs(argv: string[]): Options | "help" {
    const o: Options = { local: false, files: [] };
    for (const { flag, raw: a, value } of args(argv)) {
        switch (flag) {
            case "--local": o.local = true; break;
            case "--engine": {
                const v = value();
                if (v !== "20.10" && v !== "26.1") throw new UsageError(`--engine: expected 20.10 or 26.1, got ${JSON.stringify(v)}`);
                o.engine = v;
                break;
            }
            case "--local-socket": o.localSocket = path.resolve(value()); break;
            case "--host": o.host = value(); break;
            case "--key": o.key = value(); break;
            case "--known-hosts": o.knownHosts = value(); break;
            case "--docker-socket": o.dockerSocket = value(); break;
            case "--docker-cli": o.dockerCli = value(); break;
            case "--unpinned": o.unpinned = true; break;
            case "--dump": o.dump = path.resolve(value()); break;
            case "-h": case "--help": return "help";
            case "--": break;
            default:
                if (a.startsWith("-")) throw new UsageError(`unknown argument '${a}'`);
                o.files.push(a);
        }
    }
    if (o.local && (o.host || o.key || o.knownHosts || o.dockerSocket)) throw new UsageError("--local and --host/--key/--known-hosts/--docker-socket exclude each other");
    if (!o.local && (o.engine || o.localSocket)) throw new UsageError("--engine and --local-socket go with --local");
    if (o.engine && o.localSocket) throw new UsageError("--engine starts an engine; --local-socket uses a running one: give one of them");
    // It reaches the manager's shell (the CLI's dial-stdio command): an absolute path of plain characters only.
    if (o.dockerSocket !== undefined && !/^\/[A-Za-z0-9_.\/-]+$/.test(o.dockerSocket)) {
        throw new UsageError(`--docker-socket: expected an absolute path of letters, digits and _ . / -, got ${JSON.stringify(o.dockerSocket)}`);
    }
    if (o.files.length === 0) throw new UsageError("no compose file given");
    return o;
}

/** `ssh://user@host:port` */
export function parseSshUrl(url: string): { user: string; host: string; port: number } {
    const m = /^ssh:\/\/(?:([^@/]+)@)?([^:/@]+)(?::(\d+))?\/?$/.exec(url);
    if (!m) throw new UsageError(`--host: expected ssh://USER@ADDRESS[:PORT], got ${JSON.stringify(url)}`);
    return { user: m[1] ?? "root", host: m[2], port: m[3] ? Number(m[3]) : 22 };
}

// =============================================================================================
// Where to deploy

export interface Target {
    /** One line for the report's header. */
    description: string;
    /** Engine API on the manager, version negotiated. */
    transport: Transport;
    /** `docker` CLI arguments that select the manager. */
    dockerArgs: string[];
    /** The docker CLI (path) that runs `docker stack deploy`; set by {@link main}. */
    cli?: string;
    /** The environment of the docker CLI, and the variables compose files are interpolated with. */
    env: NodeJS.ProcessEnv;
    /** Local stand-in images are made for the files' images (a throwaway engine only). */
    standIns: boolean;
    /**
     * The engine version the program's side converts for (compose/target.ts), as a stack pinned to
     * it: set by {@link main} from the engine; undefined (--unpinned): as a stack without a pinned
     * version, whose needs the providers check against the engine.
     */
    pin?: string;
    close(): Promise<void>;
}

type Any = any; // eslint-disable-line @typescript-eslint/no-explicit-any

function runDocker(t: Target, args: string[], timeoutMs = 300_000): SpawnSyncReturns<string> {
    return spawnSync(t.cli ?? "docker", [...t.dockerArgs, ...args], { encoding: "utf8", env: t.env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
}

function cleanEnv(): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = { ...process.env };
    // The target is chosen here, not by the caller's docker environment.
    for (const k of ["DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_API_VERSION"]) delete env[k];
    return env;
}

async function localTarget(o: Options): Promise<Target> {
    if (o.localSocket) {
        const socket = o.localSocket;
        if (!fs.existsSync(socket)) throw new SetupError(`--local: --local-socket ${socket} does not exist`);
        const transport = await findManager([localTransport(`throwaway dockerd ${socket}`, socket)]).catch((e) => {
            throw new SetupError(`--local: ${socket}: ${(e as Error).message}`);
        });
        const v = await apiOk(transport, { method: "GET", path: "/version" }, "reading the engine's version");
        return {
            description: `a throwaway single-node swarm (dockerd ${v.json?.Version}, Engine API ${transport.apiVersion}, in its own network namespace)`,
            transport, dockerArgs: ["-H", `unix://${socket}`], env: cleanEnv(), standIns: true,
            close: async () => undefined, // not ours to stop
        };
    }
    const engine = ENGINES[o.engine ?? "20.10"];
    const problem = dockerdProblem(engine);
    if (problem) throw new SetupError(`--local: ${problem}`);
    let d: Dockerd;
    try {
        d = await startDockerd(engine);
    } catch (e) {
        throw new SetupError(`--local: ${(e as Error).message}`);
    }
    try {
        const transport = await findManager([localTransport(`throwaway dockerd ${d.socket}`, d.socket)]);
        const version = dockerLocal(d, ["version", "--format", "{{.Server.Version}}"]).stdout.trim();
        return {
            description: `a throwaway single-node swarm (dockerd ${version}, Engine API ${transport.apiVersion}, in its own network namespace)`,
            transport, dockerArgs: ["-H", `unix://${d.socket}`], env: cleanEnv(), standIns: true,
            close: () => stopDockerd(d),
        };
    } catch (e) {
        await stopDockerd(d);
        throw e;
    }
}

interface LabJson {
    sshUser: string;
    sshPrivateKeyFile: string;
    knownHostsFile: string;
    nodes: { name: string; address: string }[];
}

async function hostTarget(o: Options): Promise<Target> {
    let lab: LabJson | undefined;
    if (!o.host || !o.key || !o.knownHosts) {
        try {
            lab = JSON.parse(fs.readFileSync(LAB_JSON, "utf8"));
        } catch (e) {
            const missing = [o.host ? "" : "--host", o.key ? "" : "--key", o.knownHosts ? "" : "--known-hosts"].filter(Boolean).join(", ");
            throw new SetupError(`${missing} not given and the lab's ${LAB_JSON} cannot be read (${(e as Error).message}); ` +
                "start the lab (npm run lab:up), pass them, or use --local");
        }
    }
    const url = o.host ?? `ssh://${lab!.sshUser}@${lab!.nodes[0].address}`;
    const { user, host, port } = parseSshUrl(url);
    const keyFile = path.resolve(o.key ?? lab!.sshPrivateKeyFile);
    const khFile = path.resolve(o.knownHosts ?? lab!.knownHostsFile);
    for (const f of [keyFile, khFile]) if (!fs.existsSync(f)) throw new SetupError(`${f} does not exist`);
    // The docker CLI runs `ssh` from PATH for ssh:// hosts: a wrapper in a private directory adds
    // the key and the pinned host keys, so nothing under ~/.ssh is read or written.
    const realSsh = spawnSync("bash", ["-c", "command -v ssh"], { encoding: "utf8" }).stdout.trim();
    if (!realSsh) throw new SetupError("ssh is not installed");
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dccn-parity-ssh-"));
    fs.writeFileSync(path.join(dir, "ssh"), sshWrapper(realSsh, keyFile, khFile, o.dockerSocket), { mode: 0o700 });
    const env = cleanEnv();
    env.PATH = `${dir}:${env.PATH ?? "/usr/bin:/bin"}`;
    const transport = await findManager([sshTransport({
        name: host, host, port, user, privateKey: fs.readFileSync(keyFile, "utf8"), knownHosts: fs.readFileSync(khFile, "utf8"), connectTimeout: 10,
    }, o.dockerSocket)]).catch((e) => {
        fs.rmSync(dir, { recursive: true, force: true });
        throw new SetupError((e as Error).message);
    });
    return {
        description: `the swarm manager ${url} (Engine API ${transport.apiVersion})`,
        transport, dockerArgs: ["-H", `ssh://${user}@${host}${port !== 22 ? `:${port}` : ""}`], env, standIns: false,
        close: async () => fs.rmSync(dir, { recursive: true, force: true }),
    };
}

/**
 * The `ssh` the docker CLI finds first on PATH: the real one with the key and pinned host keys.
 * With `socket` (checked by parseArgs), the CLI's remote `docker system dial-stdio` names it.
 */
export function sshWrapper(realSsh: string, keyFile: string, knownHostsFile: string, socket?: string): string {
    const q = (s: string) => "'" + s.replace(/'/g, "'\\''") + "'";
    return [
        socket ? "#!/bin/bash" : "#!/bin/sh",
        ...(socket ? [
            `if [ "$#" -ge 3 ] && [ "\${*: -3}" = "docker system dial-stdio" ]; then set -- "\${@:1:$#-3}" docker -H unix://${socket} system dial-stdio; fi`,
        ] : []),
        `exec ${q(realSsh)} -F /dev/null -i ${q(keyFile)} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=yes ` +
        `-o UserKnownHostsFile=${q(knownHostsFile)} -o GlobalKnownHostsFile=/dev/null -o ConnectTimeout=10 -o LogLevel=ERROR "$@"`,
        "",
    ].join("\n");
}

class SetupError extends Error {}

export interface DockerCli {
    path: string;
    /** `docker --version`'s version, e.g. `20.10.24+dfsg1`. */
    version: string;
}

/**
 * The CLI to run `docker stack deploy` with: `docker stack deploy` converts the compose file in the
 * client, so the reference is the conversion of the CLI's version, and the one that matters is the
 * version the cluster's nodes run (their engine's). Exactly the engine's version first, then the
 * same major.minor, else the first candidate (PATH's), with a note saying so.
 */
export function pickDockerCli(candidates: DockerCli[], engineVersion: string): { cli: DockerCli; note?: string } | undefined {
    if (candidates.length === 0) return undefined;
    const minor = (v: string) => v.split(".").slice(0, 2).join(".");
    const exact = candidates.find((c) => c.version === engineVersion);
    if (exact) return { cli: exact };
    const close = candidates.find((c) => minor(c.version) === minor(engineVersion));
    if (close) return { cli: close };
    const cli = candidates[0];
    return {
        cli,
        note: `no docker CLI of the engine's version ${engineVersion} here (found ${candidates.map((c) => `${c.path} ${c.version}`).join(", ")}): ` +
            `the reference is docker CLI ${cli.version}'s conversion; pass --docker-cli to choose`,
    };
}

/**
 * The docker CLIs here: PATH's `docker`, then /usr/bin/docker and /usr/local/bin/docker, then the
 * cached engines' (tools/engines.sh: 26.1.5), one per real file.
 */
function installedDockerClis(): DockerCli[] {
    const out: DockerCli[] = [];
    const seen = new Set<string>();
    const onPath = spawnSync("bash", ["-c", "command -v docker"], { encoding: "utf8" }).stdout.trim();
    for (const p of [onPath, "/usr/bin/docker", "/usr/local/bin/docker", ...Object.values(ENGINES).map((e) => e.cli)]) {
        if (!p || !fs.existsSync(p)) continue;
        const real = fs.realpathSync(p);
        if (seen.has(real)) continue;
        seen.add(real);
        const v = spawnSync(p, ["--version"], { encoding: "utf8", env: cleanEnv() });
        const m = /Docker version ([^\s,]+)/.exec(v.stdout ?? "");
        if (m) out.push({ path: p, version: m[1] });
    }
    return out;
}

/** The engine's version (`GET /version`). */
async function engineVersionOf(t: Target): Promise<string> {
    const v = await apiOk(t.transport, { method: "GET", path: "/version" }, "reading the engine's version");
    return String(v.json?.Version ?? "");
}

/** Sets `t.cli`; returns a note for the report header when the CLI's version is not the engine's. */
async function chooseDockerCli(t: Target, given: string | undefined): Promise<string | undefined> {
    if (given) {
        if (!fs.existsSync(given)) throw new SetupError(`--docker-cli: ${given} does not exist`);
        t.cli = given;
        return undefined;
    }
    const engineVersion = await engineVersionOf(t);
    const pick = pickDockerCli(installedDockerClis(), engineVersion);
    if (!pick) throw new SetupError("no docker CLI found (PATH, /usr/bin/docker, tools/engines.sh's): install docker.io, or pass --docker-cli");
    t.cli = pick.cli.path;
    return pick.note;
}

/** The engine to deploy on: a throwaway one (--local) or a manager over SSH. */
export function openTarget(o: Options): Promise<Target> {
    return o.local ? localTarget(o) : hostTarget(o);
}

// =============================================================================================
// Engine reads

const q = (filters: Record<string, string[]>) => encodeURIComponent(JSON.stringify(filters));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function listLabelled(t: Transport, kind: "services" | "networks" | "secrets" | "configs", stack: string): Promise<Any[]> {
    const r = await apiOk(t, { method: "GET", path: `/${kind}?filters=${q({ label: [`${NAMESPACE_LABEL}=${stack}`] })}` }, `listing ${kind} of stack ${stack}`);
    return (r.json ?? []) as Any[];
}

async function readDeployment(t: Transport, stack: string): Promise<{ deployed: Deployed; created: Record<string, string> }> {
    const services: JsonObject[] = [];
    const created: Record<string, string> = {};
    for (const s of await listLabelled(t, "services", stack)) {
        const svc = await engineOps.inspectService(t, s.ID);
        if (!svc) continue;
        services.push(svc);
        created[svc.Spec?.Name] = svc.CreatedAt;
    }
    const networks: JsonObject[] = [];
    for (const n of await listLabelled(t, "networks", stack)) {
        const r = await apiOk(t, { method: "GET", path: `/networks/${encodeURIComponent(n.Id)}` }, `inspecting network ${n.Name}`);
        networks.push(r.json);
    }
    return {
        deployed: { services, networks, secrets: await listLabelled(t, "secrets", stack), configs: await listLabelled(t, "configs", stack) },
        created,
    };
}

async function engineContext(t: Transport): Promise<EngineContext> {
    const ids = async (kind: "networks" | "secrets" | "configs") => {
        const r = await apiOk(t, { method: "GET", path: `/${kind}` }, `listing ${kind}`);
        const out: Record<string, string> = {};
        for (const x of (r.json ?? []) as Any[]) out[x.Id ?? x.ID] = x.Name ?? x.Spec?.Name;
        return out;
    };
    const swarm = (await apiOk(t, { method: "GET", path: "/swarm" }, "reading the swarm")).json ?? {};
    return {
        networks: await ids("networks"), secrets: await ids("secrets"), configs: await ids("configs"),
        addressPools: swarm.DefaultAddrPool ?? [], subnetSize: swarm.SubnetSize ?? 24,
    };
}

/**
 * Removes whatever of `stack` is still there (services, then secrets and configs, then networks),
 * waiting for tasks to go; returns what it had to remove.
 */
async function sweep(t: Transport, stack: string): Promise<string[]> {
    const left: string[] = [];
    for (const s of await listLabelled(t, "services", stack)) {
        left.push(`service ${s.Spec?.Name}`);
        await api(t, { method: "DELETE", path: `/services/${s.ID}` });
    }
    await waitNoTasks(t, stack);
    for (const kind of ["secrets", "configs"] as const) {
        for (const o of await listLabelled(t, kind, stack)) {
            left.push(`${kind.slice(0, -1)} ${o.Spec?.Name}`);
            await api(t, { method: "DELETE", path: `/${kind}/${o.ID}` });
        }
    }
    for (const n of await listLabelled(t, "networks", stack)) {
        left.push(`network ${n.Name}`);
        const until = Date.now() + 60_000;
        for (;;) {
            const r = await api(t, { method: "DELETE", path: `/networks/${n.Id}` });
            if (r.status < 300 || r.status === 404 || Date.now() > until) break;
            await sleep(1000);
        }
    }
    return left;
}

async function waitNoTasks(t: Transport, stack: string, timeoutMs = 60_000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (Date.now() < until) {
        const r = await api(t, { method: "GET", path: `/tasks?filters=${q({ label: [`${NAMESPACE_LABEL}=${stack}`] })}` });
        if (r.status !== 200 || ((r.json ?? []) as Any[]).length === 0) return;
        await sleep(1000);
    }
}

// =============================================================================================
// Stand-ins and externals

const STANDIN = "dccn-parity/standin:1";
/** The stand-in's entrypoint: runs until stopped, whatever arguments (the compose `command`) it gets. */
const STANDIN_ENTRYPOINT = ["/bin/sh", "-c", "trap 'exit 0' TERM INT; while :; do sleep 3600 & wait $!; done", "standin"];

/** The busybox-static test image with an entrypoint that keeps running; made once per engine. */
function standInBase(t: Target): void {
    if (runDocker(t, ["image", "inspect", STANDIN]).status === 0) return;
    const name = `dccn-parity-standin-${process.pid}`;
    const c = runDocker(t, ["create", "--network", "none", "--name", name, `${TEST_IMAGE}:1`, "true"]);
    if (c.status !== 0) throw new Error(`making the stand-in image: docker create failed: ${c.stderr.trim()}`);
    try {
        const commit = runDocker(t, ["commit", "-c", `ENTRYPOINT ${JSON.stringify(STANDIN_ENTRYPOINT)}`, "-c", "CMD []", name, STANDIN]);
        if (commit.status !== 0) throw new Error(`making the stand-in image: docker commit failed: ${commit.stderr.trim()}`);
    } finally {
        runDocker(t, ["rm", "-f", name]);
    }
}

/** Tags the stand-in under each image reference not yet present; returns the note for the report. */
function standIns(t: Target, images: string[]): string | undefined {
    if (images.length === 0) return undefined;
    standInBase(t);
    const pinned = images.filter((i) => i.includes("@"));
    for (const image of images.filter((i) => !i.includes("@"))) {
        if (runDocker(t, ["image", "inspect", image]).status === 0) continue;
        const r = runDocker(t, ["tag", STANDIN, image]);
        if (r.status !== 0) throw new Error(`tagging the stand-in as ${image}: ${r.stderr.trim()}`);
    }
    return `images are local stand-ins (busybox-static, an entrypoint that sleeps), nothing is pulled: ${images.filter((i) => !i.includes("@")).join(", ")}` +
        (pinned.length > 0 ? `; digest references cannot be stood in and stay missing: ${pinned.join(", ")}` : "");
}

/** Image references of the file's services (raw, uninterpolated ones skipped) and of the converted stack. */
function imagesOf(doc: unknown, spec: StackSpec | undefined): string[] {
    const out = new Set<string>();
    const services = (doc as Any)?.services;
    if (services && typeof services === "object") {
        for (const s of Object.values(services) as Any[]) if (typeof s?.image === "string" && !s.image.includes("$")) out.add(s.image);
    }
    for (const s of spec?.services ?? []) out.add(String((s.spec as Any).TaskTemplate.ContainerSpec.Image));
    return [...out].sort();
}

const RUN_LABEL = "dccn-parity.run";

/** Creates the external networks, secrets and configs a file names that do not exist; returns what it made. */
async function provideExternals(t: Transport, ext: ExternalObjects, run: string): Promise<{ kind: string; id: string; name: string }[]> {
    const made: { kind: string; id: string; name: string }[] = [];
    const labels = { [RUN_LABEL]: run };
    for (const name of ext.networks) {
        const r = await api(t, { method: "GET", path: `/networks/${encodeURIComponent(name)}` });
        if (r.status === 200) continue;
        const c = await apiOk(t, { method: "POST", path: "/networks/create", body: { Name: name, Driver: "overlay", Attachable: true, CheckDuplicate: true, Labels: labels } },
            `creating the external network ${name}`);
        made.push({ kind: "networks", id: c.json.Id, name });
    }
    for (const kind of ["secrets", "configs"] as const) {
        for (const name of ext[kind]) {
            const r = await apiOk(t, { method: "GET", path: `/${kind}?filters=${q({ name: [name] })}` }, `listing ${kind}`);
            if (((r.json ?? []) as Any[]).some((x) => x.Spec?.Name === name)) continue;
            const data = Buffer.from(`parity stand-in for the external ${kind.slice(0, -1)} ${name}\n`).toString("base64");
            const c = await apiOk(t, { method: "POST", path: `/${kind}/create`, body: { Name: name, Data: data, Labels: labels } },
                `creating the external ${kind.slice(0, -1)} ${name}`);
            made.push({ kind, id: c.json.ID, name });
        }
    }
    return made;
}

// =============================================================================================
// The two deployments

interface Side {
    rejected?: string;
    /** What the deployment printed or did beyond the specs, for notes. */
    notes: string[];
}

/** The CLI's notice about --detach, printed on every deploy: not part of any verdict. */
const DETACH_NOTICE = /^(Since --detach=false was not specified|In a future release, --detach=false)/;

function tail(s: string, lines = 8): string {
    return s.trim().split("\n").filter((l) => l.trim() && !DETACH_NOTICE.test(l)).slice(-lines).join("\n");
}

/** `docker stack deploy` as a user runs it (defaults: --resolve-image always, detached). */
function deployReference(t: Target, file: string, stack: string): Side {
    const r = runDocker(t, ["stack", "deploy", "-c", file, stack]);
    if (r.error) throw new Error(`running docker stack deploy: ${r.error.message}`);
    if (r.status !== 0) return { rejected: tail(r.stderr || r.stdout) || `exit ${r.status}`, notes: [] };
    return { notes: [] };
}

async function removeReference(t: Target, stack: string): Promise<string[]> {
    let r = runDocker(t, ["stack", "rm", "--detach=false", stack]);
    // CLIs before 23 neither have nor need --detach (they return at once; the sweep below waits).
    if (r.status !== 0 && /unknown flag: --detach/.test(r.stderr)) r = runDocker(t, ["stack", "rm", stack]);
    if (r.status === 0) await waitNoTasks(t.transport, stack);
    const notes: string[] = [];
    if (r.status !== 0 && !/Nothing found in stack/.test(r.stderr)) notes.push(`docker stack rm ${stack}: ${tail(r.stderr, 3)}`);
    const left = await sweep(t.transport, stack);
    if (left.length > 0) notes.push(`left after docker stack rm, removed by the tool: ${left.join(", ")}`);
    return notes;
}

interface Created {
    kind: "network" | "secret" | "config" | "service";
    id: string;
    props: Any;
}

interface OurSide extends Side {
    spec?: StackSpec;
    created: Created[];
}

function access(t: Target): Access {
    // The providers reach the engine through `connect` below; these only identify it in messages.
    return { managers: [{ name: t.transport.name, address: "-", knownHosts: "" }], ssh: { user: "-", port: 22, privateKey: "", connectTimeout: 10 } };
}

/**
 * The program's path: load and convert the file as for a stack pinned to the engine's version, or
 * (--unpinned) without a pinned version (compose/target.ts: the newest rules, and what the file
 * needs of the engine, which the providers check against this engine), then the providers' check and create in the Stack component's order
 * (networks, secrets, configs, externals, services in depends_on order).
 * A service whose tasks cannot run here (stand-in images, host paths or node labels absent) is
 * created but does not converge: waited for only a second, it counts as created.
 */
async function deployOurs(t: Target, file: string, stack: string): Promise<OurSide> {
    const side: OurSide = { created: [], notes: [] };
    try {
        side.spec = loadStack(file, { stackName: stack, env: t.env, engineVersion: t.pin }).spec;
    } catch (e) {
        side.rejected = (e as Error).message;
        return side;
    }
    const spec = side.spec;
    const eng = engineStack(spec);
    const connect: Connect = async () => t.transport;
    const base = { ...access(t), stack, file: spec.file, ...(spec.requires ? { requires: spec.requires } : {}) };
    const net = networkProvider(connect);
    const fobj = fileObjectProvider(connect);
    const svc = serviceProvider(connect);
    const notConverged: string[] = [];
    const serviceInputs = (s: (typeof eng.services)[number]): ServiceInputs =>
        ({ ...base, key: `services.${s.key}`, name: s.name, spec: s.spec, convergeTimeout: 1, stableSeconds: 0 });
    const networkInputs = (n: (typeof eng.networks)[number]): NetworkInputs => ({ ...base, key: `networks.${n.key}`, name: n.name, create: n.create });
    try {
        // Every check first, as a Pulumi preview runs them before anything changes.
        for (const [provider, inputs] of [...eng.networks.map((n) => [net, networkInputs(n)] as const), ...eng.services.map((x) => [svc, serviceInputs(x)] as const)]) {
            const checked = await provider.check!({} as Any, inputs);
            if (checked.failures && checked.failures.length > 0) throw new Error(checked.failures.map((f) => f.reason).join("\n"));
        }
        for (const n of eng.networks) {
            const inputs = networkInputs(n);
            const r = await net.create(inputs);
            side.created.push({ kind: "network", id: r.id, props: r.outs });
        }
        for (const [kind, list] of [["secret", eng.secrets], ["config", eng.configs]] as const) {
            for (const o of list) {
                const inputs: FileObjectInputs = {
                    ...base, key: `${kind}s.${o.key}`, kind, name: o.name, labels: o.spec.Labels as Record<string, string>, data: String(o.spec.Data),
                    ...(o.spec.Templating ? { templating: o.spec.Templating as JsonObject } : {}),
                    ...(o.spec.Driver ? { driver: o.spec.Driver as JsonObject } : {}),
                };
                const r = await fobj.create(inputs);
                side.created.push({ kind, id: r.id, props: r.outs });
            }
        }
        const refs: ExternalRef[] = [];
        for (const kind of ["network", "secret", "config"] as const) {
            for (const name of spec.external[`${kind}s`]) {
                const usedBy = spec.services.filter((s) => s[`${kind}s`].includes(name)).map((s) => `services.${s.key}.${kind}s`);
                refs.push({ kind, name, usedBy });
            }
        }
        if (refs.length > 0) {
            const ext = externalsProvider(connect);
            const inputs = { ...access(t), stack, file: spec.file, refs };
            const checked = await ext.check!({} as Any, inputs);
            if (checked.failures && checked.failures.length > 0) throw new Error(checked.failures.map((f) => f.reason).join("\n"));
            await ext.create(inputs);
        }
        for (const s of eng.services) {
            const inputs = serviceInputs(s);
            try {
                const r = await svc.create(inputs);
                side.created.push({ kind: "service", id: r.id, props: r.outs });
            } catch (e) {
                const msg = (e as Error).message;
                const there = await engineOps.inspectService(t.transport, s.name);
                if (!there || !/did not converge/.test(msg)) throw e;
                notConverged.push(s.key);
                side.created.push({ kind: "service", id: there.ID, props: inputs });
            }
        }
    } catch (e) {
        side.rejected = (e as Error).message;
    }
    if (notConverged.length > 0) {
        side.notes.push(`services not converged within the second the tool waits (their tasks need what this engine may not have: ` +
            `the real images, host paths, node labels), compared as created: ${notConverged.join(", ")}`);
    }
    return side;
}

/** The providers' delete, in the reverse order of creation; then anything left is swept. */
async function removeOurs(t: Target, side: OurSide, stack: string): Promise<string[]> {
    const connect: Connect = async () => t.transport;
    const notes: string[] = [];
    const providers = { network: networkProvider(connect), secret: fileObjectProvider(connect), config: fileObjectProvider(connect), service: serviceProvider(connect) };
    for (const c of [...side.created].reverse()) {
        try {
            await providers[c.kind].delete!(c.id, c.props);
        } catch (e) {
            notes.push(`removing ${c.kind} ${c.props.name} through the provider failed: ${(e as Error).message}`);
        }
    }
    const left = await sweep(t.transport, stack);
    if (left.length > 0) notes.push(`left after the program's removal, removed by the tool: ${left.join(", ")}`);
    return notes;
}

// =============================================================================================
// One file

function counts(d: Deployed): string {
    const n = (x: unknown[], w: string) => `${x.length} ${w}${x.length === 1 ? "" : "s"}`;
    return [n(d.services, "service"), n(d.networks, "network"), n(d.secrets, "secret"), n(d.configs, "config")].join(", ");
}

function createdOrder(created: Record<string, string>, stack: string): CreatedService[] {
    return Object.entries(created).map(([name, createdAt]) => ({ key: name.startsWith(`${stack}_`) ? name.slice(stack.length + 1) : name, createdAt }));
}

export interface FileRun {
    /** Stack names of the two deployments. */
    names: { reference: string; ours: string };
    /** Label value of the external objects made for this run. */
    run: string;
    /** Path prefix to write the canonical deployments to (`<prefix>.reference.json`, `.program.json`). */
    dump?: string;
    log: (s: string) => void;
}

/** Cleanups of the file being compared, run when the tool is interrupted. */
const onInterrupt = new Set<() => Promise<void>>();

export async function runFile(t: Target, file: string, { names, run, dump, log }: FileRun): Promise<FileResult> {
    const abs = path.resolve(file);
    const result: FileResult = { file, differences: [], declared: [], notes: [] };
    let doc: unknown;
    try {
        doc = loadBounded(fs.readFileSync(abs, "utf8")); // an alias bomb is refused, not expanded
    } catch {
        doc = undefined; // both sides report what is wrong with the file
    }
    // The program's conversion, once, to know the images and externals (the deployment converts
    // again, as a Pulumi run does).
    let probe: StackSpec | undefined;
    try {
        probe = loadStack(abs, { stackName: names.ours, env: t.env, engineVersion: t.pin }).spec;
    } catch {
        probe = undefined;
    }
    const externals = externalObjects(doc);
    for (const kind of ["networks", "secrets", "configs"] as const) {
        for (const n of probe?.external[kind] ?? []) if (!externals[kind].includes(n)) externals[kind].push(n);
    }
    const made: { kind: string; id: string; name: string }[] = [];
    const removed = { reference: false, ours: false };
    const cleanup = async () => {
        for (const [side, stack] of [["reference", names.reference], ["ours", names.ours]] as const) {
            if (!removed[side]) await sweep(t.transport, stack).catch(() => undefined);
        }
        for (const m of made.splice(0).reverse()) await api(t.transport, { method: "DELETE", path: `/${m.kind}/${m.id}` }).catch(() => undefined);
    };
    onInterrupt.add(cleanup);
    try {
        made.push(...await provideExternals(t.transport, externals, run));
        if (made.length > 0) {
            result.notes.push(`external objects the file needs, created for the run and removed after: ${made.map((m) => `${m.kind.slice(0, -1)} ${m.name}`).join(", ")}`);
        }
        if (t.standIns) {
            const note = standIns(t, imagesOf(doc, probe));
            if (note) result.notes.push(note);
        }

        log(`${file}: docker stack deploy as ${names.reference}`);
        const ref = deployReference(t, abs, names.reference);
        const refRead = await readDeployment(t.transport, names.reference);
        const refCtx = await engineContext(t.transport);
        log(`${file}: docker stack rm ${names.reference}`);
        result.notes.push(...(await removeReference(t, names.reference)));
        removed.reference = true;

        log(`${file}: the program as ${names.ours}`);
        const ours = await deployOurs(t, abs, names.ours);
        const ourRead = await readDeployment(t.transport, names.ours);
        const ourCtx = await engineContext(t.transport);
        log(`${file}: the program's deployment removed through the providers`);
        result.notes.push(...ours.notes, ...(await removeOurs(t, ours, names.ours)));
        removed.ours = true;

        result.referenceRejected = ref.rejected;
        result.oursRejected = ours.rejected;
        result.differences.push(...rejectionDifferences(ref.rejected, ours.rejected));
        if (ref.rejected !== undefined || ours.rejected !== undefined) {
            for (const [who, d, failed] of [["docker stack deploy", refRead.deployed, ref.rejected], ["the program", ourRead.deployed, ours.rejected]] as const) {
                const n = d.services.length + d.networks.length + d.secrets.length + d.configs.length;
                if (n > 0) result.notes.push(`${who} ${failed !== undefined ? "had created" : "deployed"} ${counts(d)}${failed !== undefined ? " before it failed" : ""} (removed)`);
            }
            return result;
        }

        const spec = ours.spec!;
        const contentNamed: ContentNamed[] = [
            ...spec.secrets.map((s) => ({ kind: "secret" as const, name: s.name, stackDeployName: s.stackDeployName })),
            ...spec.configs.map((s) => ({ kind: "config" as const, name: s.name, stackDeployName: s.stackDeployName })),
        ];
        const present = {
            secret: ourRead.deployed.secrets.map((s: Any) => s.Spec?.Name),
            config: ourRead.deployed.configs.map((s: Any) => s.Spec?.Name),
        };
        const { rename, declared } = declaredRenames(contentNamed, present, names.ours);
        const a = canonicalDeployment(refRead.deployed, { stack: names.reference, engine: refCtx });
        const b = canonicalDeployment(ourRead.deployed, { stack: names.ours, engine: ourCtx, rename });
        if (dump) {
            fs.writeFileSync(`${dump}.reference.json`, JSON.stringify(a, null, 2) + "\n");
            fs.writeFileSync(`${dump}.program.json`, JSON.stringify(b, null, 2) + "\n");
        }
        result.differences.push(...compareDeployments(a, b).map(formatDifference));
        result.declared.push(...declared);
        const deps = Object.fromEntries(spec.services.map((s) => [s.key, s.dependsOn]));
        const order = dependsOnOrder(deps, createdOrder(ourRead.created, names.ours), createdOrder(refRead.created, names.reference));
        result.declared.push(...order.declared);
        result.differences.push(...order.violations);
        result.notes.unshift(`compared: docker stack deploy's ${counts(refRead.deployed)} with the program's ${counts(ourRead.deployed)}`);
        return result;
    } finally {
        await cleanup();
        onInterrupt.delete(cleanup);
        log(`${file}: done`);
    }
}

// =============================================================================================

export async function main(argv: string[]): Promise<number> {
    let opts: Options | "help";
    try {
        opts = parseArgs(argv);
    } catch (e) {
        process.stderr.write(`parity: ${(e as Error).message}\n${USAGE}\n`);
        return 2;
    }
    if (opts === "help") {
        process.stdout.write(USAGE + "\n");
        return 0;
    }
    for (const f of opts.files) {
        if (!fs.existsSync(f)) {
            process.stderr.write(`parity: ${f} does not exist\n`);
            return 2;
        }
    }
    const started = Date.now();
    const log = (s: string) => process.stderr.write(`parity: [${((Date.now() - started) / 1000).toFixed(1)}s] ${s}\n`);
    let target: Target;
    try {
        log(opts.local ? "starting a throwaway dockerd" : "connecting to the manager");
        target = await openTarget(opts);
    } catch (e) {
        process.stderr.write(`parity: ${(e as Error).message}\n`);
        return 2;
    }
    let cliNote: string | undefined;
    try {
        cliNote = await chooseDockerCli(target, opts.dockerCli);
        if (!opts.unpinned) target.pin = await engineVersionOf(target);
    } catch (e) {
        await target.close();
        process.stderr.write(`parity: ${(e as Error).message}\n`);
        return 2;
    }
    const cli = runDocker(target, ["version", "--format", "{{.Client.Version}}"]).stdout.trim();
    const run = randomBytes(3).toString("hex");
    const results: FileResult[] = [];
    if (opts.dump) fs.mkdirSync(opts.dump, { recursive: true });
    let aborted = false;
    const interrupted = (signal: NodeJS.Signals) => {
        aborted = true;
        log(`${signal}: removing what this run deployed`);
        Promise.all([...onInterrupt].map((c) => c())).finally(() => target.close()).finally(() => process.exit(130));
    };
    process.once("SIGINT", interrupted);
    process.once("SIGTERM", interrupted);
    try {
        process.stdout.write(`parity: docker stack deploy (docker CLI ${cli || "?"}, ${target.cli}) vs the program (loadStack ${target.pin ? `pinned to engine ${target.pin}` : "without a pinned engine"}, convertStack, engine-spec, ` +
            `the stack providers' check/create) on ${target.description}; one after the other under two stack names, ` +
            "compared as read back from the engine (docker stack deploy creates no volumes: their specs are the services' mount options)\n");
        if (cliNote) process.stdout.write(`parity: note: ${cliNote}\n`);
        for (const [i, file] of opts.files.entries()) {
            if (aborted) break;
            const names = { reference: `pd${run}x${i}`, ours: `pp${run}x${i}` };
            const dump = opts.dump ? path.join(opts.dump, `${i}-${path.basename(file).replace(/\.ya?ml$/, "")}`) : undefined;
            let r: FileResult;
            try {
                r = await runFile(target, file, { names, run, dump, log });
            } catch (e) {
                r = { file, differences: [`the comparison could not run: ${(e as Error).message}`], declared: [], notes: [] };
            }
            if (aborted) break;
            results.push(r);
            process.stdout.write(renderFile(r) + "\n");
        }
    } finally {
        if (!aborted) await target.close();
    }
    if (aborted) return new Promise<number>(() => undefined); // the signal handler exits
    process.stdout.write(summaryLine(results) + "\n");
    return results.some((r) => outcome(r) === "different") ? 1 : 0;
}

if (require.main === module) {
    main(process.argv.slice(2)).then(
        (code) => process.exit(code),
        (err) => {
            process.stderr.write(`parity: ${err?.stack ?? err}\n`);
            process.exit(2);
        },
    );
}
