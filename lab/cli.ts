// dccn-lab: a local lab of bare-metal-like Docker nodes (vm1..vmN) as containers.
//
//   tsx lab/cli.ts up [--nodes N] [--engine 20|26] [--name NAME] | down [--purge] [--name NAME] | status [--name NAME]
//
// `up` converges: it starts a host engine if none answers, builds (once) the node and
// application images from Debian packages, creates the lab network and nodes, loads the
// images into every node, and writes .state/lab/{known_hosts,lab.json}. Run again it changes
// nothing. `down` removes what carries the lab's ownership label and its instance, and nothing
// else. Several labs (instances, --name) run side by side on one host engine; each has its own
// network, addresses, containers, volumes and state directory (lab/config.ts labInstance).
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
    APP_IMAGES, CACHE_DIR, DEFAULT_ENGINE, DEFAULT_INSTANCE, DEFAULT_NODES, ENGINE_LABEL, ENGINE_SOCKET, ENGINES, INSTANCE_LABEL, LAB_VAR_DIR, LABEL,
    LabInstance, MAX_NODES, NODE_DNS_OPTIONS, NODE_RUN_FLAGS, NODE_SHARED_PATH, OWNER, OWNER_LABEL, RUN_DIR, SUITE, checkEngine,
    checkInstanceName, debianMirrors, engineOf, instanceOf, labInstance,
} from "./config";
import { Engine, findEngine, LAB_ENGINE_HOST, labEnginePid, startLabEngine, stopLabEngine, strayEngineProcesses, engineVersion } from "./engine";
import { BuiltImage, checkMirror, ensureImages, missingImages, stageArchive, stagingDir, suiteOf } from "./images";
import { LabError, run, runOk, runWithProgress, say, sleep, table, which, writeIfChanged } from "./util";

const USAGE = `usage: tsx lab/cli.ts up [--nodes N] [--engine E] [--name NAME] | down [--purge] [--name NAME] | status [--name NAME]
  up       create or converge the lab: N nodes vm1..vmN (default ${DEFAULT_NODES}, 1..${MAX_NODES}; env LAB_NODES)
           running Docker Engine E: 20 (20.10, Debian bookworm) or 26 (26.1, Debian trixie; env LAB_ENGINE);
           without it a lab keeps the engine its nodes run, and a new one gets 20
  down     remove everything the lab created (keeps image caches unless --purge)
  status   print the lab's engine and node table; exit non-zero if the lab is not up
  --name   which lab (env LAB_NAME): another name is another lab beside the default one, with its own
           network, addresses, nodes and .state/lab-NAME (1-10 lower-case letters and digits)`;

// ---------------------------------------------------------------- arguments and checks

export interface Options {
    command: "up" | "down" | "status";
    nodes: number;
    purge: boolean;
    /** the lab instance's name ("default" for the default lab) */
    name: string;
    /** the engine the nodes are to run (ENGINES' key), when asked for (up only) */
    engine?: string;
}

export function parseNodes(value: string, from: string): number {
    if (!/^\d+$/.test(value.trim())) throw new LabError(`${from} must be a whole number from 1 to ${MAX_NODES}, not '${value}'`, 2);
    const n = Number(value.trim());
    if (n < 1 || n > MAX_NODES) throw new LabError(`${from} must be from 1 to ${MAX_NODES} (got ${n}): the lab has addresses for vm1..vm${MAX_NODES}`, 2);
    return n;
}

export function parseArgs(argv: string[], env: NodeJS.ProcessEnv = process.env): Options {
    const [command, ...rest] = argv;
    if (command !== "up" && command !== "down" && command !== "status") throw new LabError(USAGE, 2);
    let nodes = env.LAB_NODES !== undefined && env.LAB_NODES !== "" ? parseNodes(env.LAB_NODES, "LAB_NODES") : DEFAULT_NODES;
    let name = checkInstanceName(env.LAB_NAME ?? "", "LAB_NAME");
    // LAB_ENGINE matters to up only (down and status act on whatever engine the lab runs)
    let engine = command === "up" && env.LAB_ENGINE ? checkEngine(env.LAB_ENGINE, "LAB_ENGINE") : undefined;
    let purge = false;
    /** the value of option `a` (`--a V` or `--a=V`) */
    const value = (a: string, i: number): [string, number] => {
        const eq = a.indexOf("=");
        if (eq > 0) return [a.slice(eq + 1), i];
        if (rest[i + 1] === undefined) throw new LabError(`${a} needs a value`, 2);
        return [rest[i + 1], i + 1];
    };
    for (let i = 0; i < rest.length; i++) {
        const a = rest[i];
        const opt = a.split("=")[0];
        if (opt === "--nodes" || (a === "-n")) {
            let v: string;
            [v, i] = value(a, i);
            nodes = parseNodes(v, "--nodes");
        } else if (opt === "--name") {
            let v: string;
            [v, i] = value(a, i);
            name = checkInstanceName(v, "--name");
        } else if (opt === "--engine" && command === "up") {
            let v: string;
            [v, i] = value(a, i);
            engine = checkEngine(v, "--engine");
        } else if (a === "--purge" && command === "down") {
            purge = true;
        } else if (a === "-h" || a === "--help") {
            throw new LabError(USAGE, 0);
        } else {
            throw new LabError(`unknown argument '${a}'\n${USAGE}`, 2);
        }
    }
    return { command, nodes, purge, name, engine };
}

function requireRoot(): void {
    if (process.getuid && process.getuid() !== 0) {
        throw new LabError(
            "the lab must run as root: it starts dockerd, builds root file systems with debootstrap and chroot, " +
                "and adds an iptables rule. Run it as root (e.g. sudo npm run lab:up).",
            4,
        );
    }
}

function requireTools(tools: string[]): void {
    const missing = tools.filter((t) => !which(t));
    if (missing.length) {
        throw new LabError(`missing prerequisites: ${missing.join(", ")} (install: apt-get install -y docker.io debootstrap openssh-client curl iptables)`, 5);
    }
}

// ---------------------------------------------------------------- subnet

const ipToInt = (ip: string) => ip.split(".").reduce((a, o) => a * 256 + Number(o), 0);

export function cidrRange(cidr: string): [number, number] {
    const [ip, bitsStr] = cidr.includes("/") ? cidr.split("/") : [cidr, "32"];
    const bits = Number(bitsStr);
    const size = 2 ** (32 - bits);
    const start = Math.floor(ipToInt(ip) / size) * size;
    return [start, start + size - 1];
}

export function overlaps(a: string, b: string): boolean {
    const [a0, a1] = cidrRange(a);
    const [b0, b1] = cidrRange(b);
    return a0 <= b1 && b0 <= a1;
}

/** Routes of the host that overlap the lab's subnet, other than the lab bridge's own. */
export function conflictingRoutes(routes: { dst: string; dev?: string }[], lab: LabInstance = labInstance()): string[] {
    return routes
        .filter((r) => r.dst && r.dst !== "default" && r.dev !== lab.bridge && /^\d+\.\d+\.\d+\.\d+(\/\d+)?$/.test(r.dst) && overlaps(r.dst, lab.subnet))
        .map((r) => `${r.dst} dev ${r.dev ?? "?"}`);
}

interface NetworkInfo {
    Name: string;
    Labels?: Record<string, string> | null;
    IPAM?: { Config?: { Subnet?: string }[] | null };
}

/**
 * Why the lab's network cannot be made, given the engine's networks: another network with its name,
 * or one whose range overlaps the lab's (another lab instance's named as such). Undefined: none.
 */
export function networkConflict(lab: LabInstance, nets: NetworkInfo[]): string | undefined {
    for (const n of nets) {
        const isLab = n.Labels?.[OWNER_LABEL] === OWNER;
        const ours = n.Name === lab.network && isLab && instanceOf(n.Labels) === lab.name;
        if (ours) continue;
        if (n.Name === lab.network) return `a docker network named ${lab.network} exists that the lab did not create; nothing was changed`;
        for (const c of n.IPAM?.Config ?? []) {
            if (!c.Subnet || !/^\d/.test(c.Subnet) || !overlaps(c.Subnet, lab.subnet)) continue;
            if (isLab) {
                return `the address range ${lab.subnet} of lab '${lab.name}' is already used by lab '${instanceOf(n.Labels)}' (docker network ` +
                    `${n.Name}, ${c.Subnet}); nothing was changed. A named lab's range comes from its name: choose another --name`;
            }
            return `the lab's address range ${lab.subnet} is already used by docker network '${n.Name}' (${c.Subnet}); nothing was changed`;
        }
    }
    return undefined;
}

function checkSubnet(lab: LabInstance, engine: Engine | undefined): void {
    // another lab's network first: its message names that lab
    if (engine) {
        const ids = runOk("docker", ["network", "ls", "-q"], { env: dockerEnv(engine) }).split("\n").filter(Boolean);
        const nets = ids.length ? (JSON.parse(runOk("docker", ["network", "inspect", ...ids], { env: dockerEnv(engine) })) as NetworkInfo[]) : [];
        const why = networkConflict(lab, nets);
        if (why) throw new LabError(why, 6);
    }
    const r = run("ip", ["-j", "-4", "route", "show", "table", "all"]);
    let routes: { dst: string; dev?: string; type?: string }[] = [];
    try {
        routes = JSON.parse(r.stdout || "[]");
    } catch {
        routes = [];
    }
    routes = routes.filter((x) => !x.type || x.type === "unicast");
    const bad = conflictingRoutes(routes, lab);
    if (bad.length) {
        throw new LabError(`the lab's address range ${lab.subnet} is already in use on this host (route ${bad.join(", ")}); nothing was changed`, 6);
    }
}

// ---------------------------------------------------------------- docker helpers

const dockerEnv = (engine: Engine) => ({ ...process.env, DOCKER_HOST: engine.host, DOCKER_CONTEXT: "" });

function dk(engine: Engine, args: string[], input?: string): string {
    return runOk("docker", args, { env: dockerEnv(engine), input });
}

function dkTry(engine: Engine, args: string[]) {
    return run("docker", args, { env: dockerEnv(engine) });
}

interface ContainerInfo {
    Id: string;
    Image: string;
    State: { Running: boolean };
    Config: { Labels?: Record<string, string> };
    HostConfig?: { DnsOptions?: string[] | null; Binds?: string[] | null };
    NetworkSettings: { Networks?: Record<string, { IPAddress?: string; IPAMConfig?: { IPv4Address?: string } }> };
}

function inspectContainer(engine: Engine, name: string): ContainerInfo | undefined {
    const r = dkTry(engine, ["container", "inspect", name]);
    if (r.code !== 0) return undefined;
    return (JSON.parse(r.stdout) as ContainerInfo[])[0];
}

function labelled(engine: Engine, kind: "container" | "network" | "volume" | "image", format: string): string[] {
    const args =
        kind === "container" ? ["ps", "-a", "--filter", `label=${LABEL}`, "--format", format]
        : kind === "image" ? ["image", "ls", "--filter", `label=${LABEL}`, "--format", format]
        : [kind, "ls", "--filter", `label=${LABEL}`, "--format", format];
    return dk(engine, args).split("\n").filter(Boolean);
}

/** The lab's containers, volumes or networks of every instance, with the instance, node and engine they were made for. */
function labObjects(engine: Engine, kind: "container" | "network" | "volume"): { name: string; instance: string; node: string; engine: string }[] {
    const name = kind === "container" ? "{{.Names}}" : "{{.Name}}";
    return labelled(engine, kind, `${name}\t{{.Label "${INSTANCE_LABEL}"}}\t{{.Label "dccn-lab.node"}}\t{{.Label "${ENGINE_LABEL}"}}`).map((l) => {
        const [n, instance, node, eng] = l.split("\t");
        return { name: n, instance: instance || DEFAULT_INSTANCE, node: node ?? "", engine: eng || DEFAULT_ENGINE };
    });
}

/**
 * The engine a lab is to run: the one asked for; else the one its nodes run (their containers'
 * label, or lab.json when the host engine is not up yet); else the default.
 */
function chosenEngine(lab: LabInstance, asked: string | undefined, engine: Engine | undefined): { id: string; why: string } {
    if (asked) return { id: asked, why: "asked for" };
    const nodes = engine ? labObjects(engine, "container").filter((c) => c.instance === lab.name && c.node) : [];
    if (nodes.length) return { id: nodes[0].engine, why: "the engine its nodes run" };
    try {
        const recorded = JSON.parse(fs.readFileSync(lab.labJson, "utf8")).engine;
        if (typeof recorded === "string" && ENGINES[recorded]) return { id: recorded, why: `the engine ${lab.labJson} records` };
    } catch {
        /* a new lab */
    }
    return { id: DEFAULT_ENGINE, why: "the default" };
}

// ---------------------------------------------------------------- ssh

function sshArgs(lab: LabInstance, address: string, command: string): string[] {
    return [
        "-i", lab.keyFile,
        "-o", `UserKnownHostsFile=${lab.knownHosts}`,
        "-o", "StrictHostKeyChecking=yes",
        "-o", "BatchMode=yes",
        "-o", "ConnectTimeout=5",
        "-o", "LogLevel=ERROR",
        `root@${address}`,
        command,
    ];
}

interface NodeHealth {
    name: string;
    address: string;
    ssh: boolean;
    engine: string;
    swarm: string;
    /** the engine's API version (empty when it does not answer) */
    api?: string;
}

function nodeHealth(lab: LabInstance, name: string, address: string): NodeHealth {
    const r = run("ssh", sshArgs(lab, address, "docker version --format '{{.Server.Version}} {{.Server.APIVersion}}' && docker info --format '{{.Swarm.LocalNodeState}}'"), { timeout: 30000 });
    const sshOk = r.code !== 255 && r.code !== 127 && !/Permission denied|Host key verification failed|Connection (refused|timed out)/.test(r.stderr);
    const lines = r.stdout.trim().split("\n");
    const [version, api] = (lines[0] ?? "").split(" ");
    return {
        name,
        address,
        ssh: sshOk,
        engine: r.code === 0 ? version : sshOk ? "down" : "?",
        swarm: r.code === 0 ? lines[1] ?? "?" : "?",
        api: r.code === 0 ? api : undefined,
    };
}

function printTable(rows: NodeHealth[]): void {
    say(table(["NAME", "ADDRESS", "SSH", "ENGINE", "SWARM"], rows.map((h) => [h.name, h.address, h.ssh ? "ok" : "FAILED", h.engine, h.swarm])));
}

/** How a lab is named in messages: "the lab" for the default one, "lab NAME" for another. */
const labTitle = (lab: LabInstance) => (lab.isDefault ? "lab" : `lab ${lab.name}`);

// ---------------------------------------------------------------- up

function ensureKeyPair(lab: LabInstance, changes: string[]): string {
    fs.mkdirSync(lab.stateDir, { recursive: true, mode: 0o700 });
    if (!fs.existsSync(lab.keyFile) || !fs.existsSync(`${lab.keyFile}.pub`)) {
        fs.rmSync(lab.keyFile, { force: true });
        fs.rmSync(`${lab.keyFile}.pub`, { force: true });
        runOk("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", lab.isDefault ? "dccn-lab" : `dccn-lab-${lab.name}`, "-f", lab.keyFile]);
        changes.push("generated the SSH key pair");
    }
    return fs.readFileSync(`${lab.keyFile}.pub`, "utf8").trim() + "\n";
}

function ensureNetwork(lab: LabInstance, engine: Engine, changes: string[]): void {
    const r = dkTry(engine, ["network", "inspect", lab.network, "--format", "{{json .IPAM.Config}}"]);
    if (r.code === 0) return;
    dk(engine, [
        "network", "create", "--driver", "bridge",
        "--subnet", lab.subnet, "--gateway", lab.gateway,
        "--opt", `com.docker.network.bridge.name=${lab.bridge}`,
        "--label", LABEL,
        "--label", `${INSTANCE_LABEL}=${lab.name}`,
        lab.network,
    ]);
    changes.push(`created network ${lab.network} (${lab.subnet}, bridge ${lab.bridge})`);
}

const forwardRule = (lab: LabInstance) => ["FORWARD", "-i", lab.bridge, "-o", lab.bridge, "-m", "comment", "--comment", lab.forwardComment, "-j", "ACCEPT"];

function ensureForwardRule(lab: LabInstance, changes: string[]): void {
    if (!which("iptables")) return;
    const rule = forwardRule(lab);
    if (run("iptables", ["-C", ...rule]).code === 0) return;
    const r = run("iptables", ["-I", ...rule]);
    if (r.code !== 0) {
        say(`  note: could not add the iptables FORWARD rule for ${lab.bridge}: ${r.stderr.trim()}`);
        return;
    }
    changes.push(`accepted forwarding on ${lab.bridge} (iptables FORWARD)`);
}

function removeForwardRule(lab: LabInstance): boolean {
    if (!which("iptables")) return false;
    const rule = forwardRule(lab);
    let removed = false;
    for (let i = 0; i < 10 && run("iptables", ["-C", ...rule]).code === 0; i++) {
        run("iptables", ["-D", ...rule]);
        removed = true;
    }
    return removed;
}

function createNode(lab: LabInstance, engine: Engine, i: number, nodeImage: BuiltImage, engineId: string, pubkey: string): void {
    const name = lab.nodeName(i);
    const cname = lab.containerName(i);
    const volume = lab.nodeVolume(i);
    const labels = ["--label", LABEL, "--label", `dccn-lab.node=${name}`, "--label", `${INSTANCE_LABEL}=${lab.name}`];
    if (dkTry(engine, ["volume", "inspect", volume]).code !== 0) {
        dk(engine, ["volume", "create", ...labels, volume]);
    }
    // A node's /etc/hosts as the engine writes it, kept in a file of its own (hostsDir).
    fs.mkdirSync(lab.hostsDir, { recursive: true });
    const hosts = path.join(lab.hostsDir, name);
    // The shared storage every node sees at /mnt/docker (sharedDir): a real directory, writable by root.
    fs.mkdirSync(lab.sharedDir, { recursive: true, mode: 0o755 });
    fs.writeFileSync(hosts, ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback", "fe00::0\tip6-localnet",
        "ff00::0\tip6-mcastprefix", "ff02::1\tip6-allnodes", "ff02::2\tip6-allrouters", `${lab.nodeAddress(i)}\t${name}`, ""].join("\n"), { mode: 0o644 });
    dk(engine, [
        "container", "create",
        "--name", cname,
        "-v", `${hosts}:/etc/hosts`,
        "--hostname", name,
        ...labels,
        "--label", `${ENGINE_LABEL}=${engineId}`,
        "--network", lab.network,
        "--ip", lab.nodeAddress(i),
        ...NODE_RUN_FLAGS,
        "-v", `${volume}:/var/lib/docker`,
        "-v", lab.sharedBind,
        "--restart", "unless-stopped",
        "--stop-timeout", "30",
        nodeImage.spec.ref,
    ]);
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "dccn-lab-"));
    try {
        fs.writeFileSync(path.join(tmp, "authorized_keys"), pubkey, { mode: 0o600 });
        dk(engine, ["cp", path.join(tmp, "authorized_keys"), `${cname}:/root/.ssh/authorized_keys`]);
    } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
    }
    dk(engine, ["start", cname]);
}

function removeNode(engine: Engine, cname: string, volume: string): void {
    dkTry(engine, ["rm", "-f", "-v", cname]);
    dkTry(engine, ["volume", "rm", "-f", volume]);
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => T | undefined): Promise<T> {
    const started = Date.now();
    for (;;) {
        const v = probe();
        if (v !== undefined) return v;
        if (Date.now() - started > timeoutMs) throw new LabError(`timed out after ${Math.round(timeoutMs / 1000)}s waiting for ${what}`);
        await sleep(1000);
    }
}

function hostKey(engine: Engine, cname: string): string | undefined {
    const r = dkTry(engine, ["exec", cname, "cat", "/etc/ssh/ssh_host_ed25519_key.pub"]);
    if (r.code !== 0) return undefined;
    const [type, key] = r.stdout.trim().split(/\s+/);
    return type === "ssh-ed25519" && key ? `${type} ${key}` : undefined;
}

function nodeImageIds(engine: Engine, cname: string, refs: string[]): Map<string, string> {
    const r = dkTry(engine, ["exec", cname, "docker", "image", "inspect", "--format", "{{.Id}}", ...refs]);
    // inspect prints the IDs it found, in order; on a partial miss it exits 1, so ask one by one then
    const ids = new Map<string, string>();
    if (r.code === 0) {
        r.stdout.trim().split("\n").forEach((id, i) => ids.set(refs[i], id.trim()));
        return ids;
    }
    for (const ref of refs) {
        const one = dkTry(engine, ["exec", cname, "docker", "image", "inspect", "--format", "{{.Id}}", ref]);
        if (one.code === 0) ids.set(ref, one.stdout.trim());
    }
    return ids;
}

async function loadImagesIntoNode(engine: Engine, name: string, images: BuiltImage[], changes: string[]): Promise<void> {
    const have = nodeImageIds(engine, name, images.map((i) => i.spec.ref));
    const need = images.filter((i) => have.get(i.spec.ref) !== i.imageId);
    if (!need.length) return;
    const staging = stagingDir(name);
    stageArchive(need, staging);
    const log = path.join(CACHE_DIR, "logs", `load-${name}.log`);
    fs.writeFileSync(log, "");
    try {
        const s = await runWithProgress(
            `loading ${need.length} image(s) into ${name}`,
            "bash",
            ["-o", "pipefail", "-c", 'tar -h -C "$1" -cf - . | docker exec -i "$2" docker load', "load", staging, name],
            { logFile: log, env: dockerEnv(engine), lines: true },
        );
        say(`  loaded ${need.length} image(s) into ${name} in ${s}s`);
    } finally {
        fs.rmSync(staging, { recursive: true, force: true });
    }
    const after = nodeImageIds(engine, name, need.map((i) => i.spec.ref));
    for (const i of need) {
        if (after.get(i.spec.ref) !== i.imageId) throw new LabError(`${name}: ${i.spec.ref} has ID ${after.get(i.spec.ref) ?? "none"} after loading, expected ${i.imageId}`);
    }
    dkTry(engine, ["exec", name, "docker", "image", "prune", "-f", "--filter", `label=${LABEL}`]);
    changes.push(`loaded ${need.length} image(s) into ${name}`);
}

async function loadNodeImage(engine: Engine, img: BuiltImage, changes: string[]): Promise<void> {
    const r = dkTry(engine, ["image", "inspect", "--format", "{{.Id}}", img.spec.ref]);
    if (r.code === 0 && r.stdout.trim() === img.imageId) return;
    const staging = stagingDir("host");
    stageArchive([img], staging);
    const log = path.join(CACHE_DIR, "logs", "load-host.log");
    fs.writeFileSync(log, "");
    try {
        const s = await runWithProgress(`loading ${img.spec.ref} into the host engine`, "bash", ["-o", "pipefail", "-c", 'tar -h -C "$1" -cf - . | docker load', "load", staging], {
            logFile: log,
            env: dockerEnv(engine),
        });
        say(`  loaded ${img.spec.ref} in ${s}s`);
    } finally {
        fs.rmSync(staging, { recursive: true, force: true });
    }
    // the image the tag pointed at before, if any, is dangling now
    dkTry(engine, ["image", "prune", "-f", "--filter", `label=${LABEL}`]);
    changes.push(`loaded ${img.spec.ref} into the host engine`);
}

async function up(opts: Options): Promise<number> {
    const t0 = Date.now();
    requireRoot();
    requireTools(["docker", "dockerd", "debootstrap", "ssh", "ssh-keygen", "curl", "tar", "ip", "chroot"]);
    const lab = labInstance(opts.name);
    const title = labTitle(lab);

    // everything that can refuse is checked before anything changes
    let engine = findEngine();
    checkSubnet(lab, engine);
    const chosen = chosenEngine(lab, opts.engine, engine);
    const engineId = chosen.id;
    const want = ENGINES[engineId];
    const mirrors = debianMirrors();
    const specs = [want.node, ...APP_IMAGES];
    const toBuild = missingImages(specs, mirrors);
    if (toBuild.length) {
        say(`images to build: ${toBuild.map((s) => s.ref).join(", ")} (from ${mirrors.main})`);
        for (const suite of new Set(toBuild.map(suiteOf))) checkMirror(mirrors, suite);
    }

    const changes: string[] = [];
    const pubkey = ensureKeyPair(lab, changes);

    if (!engine) {
        say(`starting the lab's dockerd (socket ${ENGINE_SOCKET}, data root ${LAB_VAR_DIR}/engine)`);
        engine = await startLabEngine();
        changes.push(`started the lab's dockerd ${engine.version} at ${engine.host}`);
    }
    say(`host engine: ${engine.host} (Docker ${engine.version}${engine.owned ? ", the lab's own" : ""})`);
    if (!lab.isDefault || engineId !== DEFAULT_ENGINE) {
        say(`${title}: network ${lab.network} (${lab.subnet}), nodes run Docker ${want.version} (Debian ${want.suite}; ${chosen.why})`);
    }

    const images = await ensureImages(specs, mirrors, changes);
    const nodeImage = images.get(want.node.id)!;
    await loadNodeImage(engine, nodeImage, changes);

    ensureNetwork(lab, engine, changes);
    ensureForwardRule(lab, changes);

    // this lab's nodes beyond N go (scaling the lab down); vm1..vmN are kept when they run
    for (const c of labObjects(engine, "container")) {
        const m = /^vm(\d+)$/.exec(c.node);
        if (c.instance === lab.name && m && Number(m[1]) > opts.nodes) {
            removeNode(engine, c.name, lab.nodeVolume(Number(m[1])));
            changes.push(`removed ${c.name} (beyond --nodes ${opts.nodes})`);
        }
    }

    const indexes = Array.from({ length: opts.nodes }, (_, k) => k + 1);
    const outdated: string[] = [];
    for (const i of indexes) {
        const cname = lab.containerName(i);
        let info = inspectContainer(engine, cname);
        if (info && info.Config.Labels?.[OWNER_LABEL] !== OWNER) {
            throw new LabError(`a container named ${cname} exists that the lab did not create; remove or rename it first`, 6);
        }
        if (info && instanceOf(info.Config.Labels) !== lab.name) {
            throw new LabError(`the container ${cname} belongs to lab '${instanceOf(info.Config.Labels)}', not '${lab.name}'; nothing was changed`, 6);
        }
        const ip = info?.NetworkSettings.Networks?.[lab.network]?.IPAMConfig?.IPv4Address;
        if (info && ip !== lab.nodeAddress(i)) {
            say(`  ${cname} is not at ${lab.nodeAddress(i)} on ${lab.network}: creating it again`);
            removeNode(engine, cname, lab.nodeVolume(i));
            info = undefined;
        }
        // A node from before the shared storage lacks /mnt/docker, which provisioning checks and the
        // stacks keep their data on: it is made again (a new machine to the program, which the next
        // `npm run dev` notices by its host key and provisions anew).
        if (info && !(info.HostConfig?.Binds ?? []).includes(lab.sharedBind)) {
            say(`  ${cname} has no shared storage at ${NODE_SHARED_PATH}: creating it again`);
            removeNode(engine, cname, lab.nodeVolume(i));
            info = undefined;
        }
        // Another engine: nodes are disposable, so a new one is made from the other engine's image, with
        // an empty /var/lib/docker (an engine's data is not meant to go back a version). The shared
        // storage stays, as an NFS share outlives a machine's reinstallation.
        if (info && engineOf(info.Config.Labels) !== engineId) {
            const had = ENGINES[engineOf(info.Config.Labels)];
            say(`  ${cname} runs Docker ${had?.version ?? engineOf(info.Config.Labels)} (Debian ${had?.suite ?? "?"}); the lab asks for ` +
                `${want.version} (Debian ${want.suite}): creating it again, with an empty /var/lib/docker`);
            removeNode(engine, cname, lab.nodeVolume(i));
            changes.push(`recreated ${cname} for Docker ${want.version}`);
            info = undefined;
        }
        if (!info) {
            say(`creating ${cname} (${lab.nodeAddress(i)})`);
            createNode(lab, engine, i, nodeImage, engineId, pubkey);
            changes.push(`created ${cname}`);
        } else {
            const dnsOptions = info.HostConfig?.DnsOptions ?? [];
            const ownHosts = (info.HostConfig?.Binds ?? []).some((b) => b.endsWith(":/etc/hosts"));
            if (info.Image !== nodeImage.imageId || NODE_DNS_OPTIONS.some((o) => !dnsOptions.includes(o)) || !ownHosts) outdated.push(cname);
            if (!info.State.Running) {
                say(`starting ${cname}`);
                dk(engine, ["start", cname]);
                changes.push(`started ${cname}`);
            }
        }
    }

    // host keys (generated by each node at its first boot) -> known_hosts
    const nodes: { name: string; container: string; address: string; hostKey: string }[] = [];
    for (const i of indexes) {
        const cname = lab.containerName(i);
        const key = await waitFor(`the SSH host key of ${cname}`, 60000, () => hostKey(engine!, cname));
        nodes.push({ name: lab.nodeName(i), container: cname, address: lab.nodeAddress(i), hostKey: key });
        const authorized = dkTry(engine, ["exec", cname, "cat", "/root/.ssh/authorized_keys"]);
        if (authorized.stdout !== pubkey) {
            dk(engine, ["exec", "-i", cname, "sh", "-c", "umask 077; mkdir -p /root/.ssh; cat > /root/.ssh/authorized_keys"], pubkey);
            changes.push(`installed the lab's SSH key on ${cname}`);
        }
    }
    if (writeIfChanged(lab.knownHosts, nodes.map((n) => `${n.address} ${n.hostKey}`).join("\n") + "\n")) changes.push(`wrote ${lab.knownHosts}`);

    // every node answers over SSH and its engine runs, the one asked for
    const health: NodeHealth[] = [];
    for (const n of nodes) {
        const h = await waitFor(`${n.container}: SSH and dockerd`, 120000, () => {
            const x = nodeHealth(lab, n.name, n.address);
            return x.ssh && x.engine !== "down" && x.engine !== "?" ? x : undefined;
        });
        if (!h.engine.startsWith(`${want.version}.`)) {
            throw new LabError(`${n.container} runs Docker ${h.engine}, not ${want.version} as asked (--engine ${want.id}); \`lab:down${lab.isDefault ? "" : ` --name ${lab.name}`}\` and up again`);
        }
        health.push(h);
    }

    const forNodes = APP_IMAGES.filter((s) => s.forNodes).map((s) => images.get(s.id)!);
    await Promise.all(nodes.map((n) => loadImagesIntoNode(engine!, n.container, forNodes, changes)));

    const unique = (xs: (string | undefined)[]) => [...new Set(xs.filter(Boolean))].join(", ");
    const labJson = {
        name: lab.name,
        network: lab.network,
        subnet: lab.subnet,
        engine: want.id,
        engineVersion: unique(health.map((h) => h.engine)),
        apiVersion: unique(health.map((h) => h.api)),
        sshUser: "root",
        sshPrivateKeyFile: lab.keyFile,
        knownHostsFile: lab.knownHosts,
        dockerHost: engine.host,
        nodes: nodes.map((n) => ({ name: n.name, container: n.container, address: n.address, hostKey: n.hostKey })),
        images: Object.fromEntries(
            APP_IMAGES.filter((s) => s.forNodes).map((s) => [s.id, { ref: s.ref, id: images.get(s.id)!.imageId, replaces: s.replaces }]),
        ),
    };
    if (writeIfChanged(lab.labJson, JSON.stringify(labJson, null, 2) + "\n")) changes.push(`wrote ${lab.labJson}`);

    say("");
    printTable(health);
    say("");
    const nameArgs = lab.isDefault ? [] : ["--name", lab.name];
    const npmRun = (script: string, args: string[]) => `npm run ${script}${args.length ? ` -- ${args.join(" ")}` : ""}`;
    const down = npmRun("lab:down", nameArgs);
    const upAgain = npmRun("lab:up", [...nameArgs, ...(engineId === DEFAULT_ENGINE ? [] : ["--engine", engineId])]);
    if (outdated.length) say(`note: ${outdated.join(", ")} run(s) an older node image or older run flags; \`${down} && ${upAgain}\` renews them`);
    const secs = Math.round((Date.now() - t0) / 1000);
    const what = `${title} is up (${opts.nodes} node(s), Docker ${labJson.engineVersion})`;
    if (changes.length) {
        say(`${what} in ${secs}s; changed: ${changes.length} thing(s)`);
        for (const c of changes) say(`  - ${c}`);
    } else {
        say(`${what}; nothing changed (${secs}s)`);
    }
    say(`state: ${lab.labJson}`);
    return 0;
}

// ---------------------------------------------------------------- down

/**
 * Removes one lab's containers, volumes and network from an engine (by the ownership label and the
 * lab's instance); with `purgeImages`, the lab images too. Returns what it removed and the other labs
 * that still have containers there.
 */
function cleanEngine(lab: LabInstance, engine: Engine, purgeImages: boolean): { removed: string[]; others: string[] } {
    const removed: string[] = [];
    const mine = (kind: "container" | "network" | "volume") => labObjects(engine, kind).filter((o) => o.instance === lab.name).map((o) => o.name);
    const containers = mine("container");
    if (containers.length) {
        dk(engine, ["rm", "-f", "-v", ...containers]);
        removed.push(`containers ${containers.join(", ")}`);
    }
    const volumes = mine("volume");
    if (volumes.length) {
        dk(engine, ["volume", "rm", "-f", ...volumes]);
        removed.push(`volumes ${volumes.join(", ")}`);
    }
    const networks = mine("network");
    if (networks.length) {
        dk(engine, ["network", "rm", ...networks]);
        removed.push(`network ${networks.join(", ")}`);
    }
    const others = [...new Set(labObjects(engine, "container").map((o) => o.instance))];
    // lab images no tag points at any more (replaced by a newer build)
    dkTry(engine, ["image", "prune", "-f", "--filter", `label=${LABEL}`]);
    if (purgeImages && !others.length) {
        const imgs = labelled(engine, "image", "{{.ID}}");
        if (imgs.length) {
            dkTry(engine, ["image", "rm", "-f", ...new Set(imgs)]);
            removed.push(`${new Set(imgs).size} image(s)`);
        }
    }
    return { removed, others };
}

async function down(opts: Options): Promise<number> {
    requireRoot();
    requireTools(["docker"]);
    const lab = labInstance(opts.name);
    const title = labTitle(lab);
    const removed: string[] = [];

    // every engine the lab may have used: the one it would use now, and its own
    const hosts = new Set<string>();
    let current: Engine | undefined;
    try {
        current = findEngine();
    } catch (e) {
        say(`note: ${(e as Error).message}; cleaning the lab's own engine only`);
    }
    if (current) hosts.add(current.host);
    let startedForDown = false;
    if (!labEnginePid() && fs.existsSync(path.join(LAB_VAR_DIR, "engine")) && which("dockerd") && (!current || current.host !== LAB_ENGINE_HOST)) {
        // the lab's engine is stopped but holds lab containers: start it to remove them
        say("starting the lab's dockerd to remove what it holds");
        await startLabEngine();
        startedForDown = true;
    }
    if (labEnginePid() && engineVersion(LAB_ENGINE_HOST)) hosts.add(LAB_ENGINE_HOST);
    // other labs on the lab's own engine keep it running (it is one engine for every lab)
    let othersOnLabEngine: string[] = [];
    for (const host of hosts) {
        const r = cleanEngine(lab, { host, owned: host === LAB_ENGINE_HOST, version: "" }, opts.purge);
        for (const x of r.removed) removed.push(`${x} (engine ${host})`);
        if (host === LAB_ENGINE_HOST) othersOnLabEngine = r.others;
    }
    if (removeForwardRule(lab)) removed.push(`iptables FORWARD rule for ${lab.bridge}`);

    if (othersOnLabEngine.length && !startedForDown) {
        say(`the lab's dockerd keeps running: ${othersOnLabEngine.map((o) => (o === DEFAULT_INSTANCE ? "the default lab" : `lab ${o}`)).join(", ")} still use(s) it`);
    } else {
        const pid = labEnginePid();
        if (await stopLabEngine()) {
            if (!startedForDown) removed.push(`the lab's dockerd (pid ${pid})`);
        }
        const strays = strayEngineProcesses();
        for (const p of strays) {
            try {
                process.kill(p, "SIGKILL");
            } catch {
                /* gone */
            }
        }
        if (strays.length) removed.push(`${strays.length} leftover process(es) of the lab engine`);
        // mounts a lab engine that was killed may have left (its data root is bind-mounted on itself)
        if (!labEnginePid()) {
            const under = (m: string, d: string) => m === d || m.startsWith(d + "/");
            const mounts = fs
                .readFileSync("/proc/mounts", "utf8")
                .split("\n")
                .map((l) => l.split(" ")[1])
                .filter((m) => m && (under(m, RUN_DIR) || under(m, LAB_VAR_DIR)))
                .reverse();
            for (const m of mounts) if (run("umount", [m]).code !== 0) run("umount", ["-l", m]);
        }
        fs.rmSync(RUN_DIR, { recursive: true, force: true });
    }

    for (const f of [lab.labJson, lab.knownHosts, lab.hostsDir, lab.sharedDir]) {
        if (fs.existsSync(f)) {
            fs.rmSync(f, { recursive: true });
            removed.push(path.basename(f));
        }
    }
    // the caches and the engine's data serve every lab: purged only when no other lab is left
    const purgeShared = opts.purge && !othersOnLabEngine.length;
    if (opts.purge) {
        for (const d of [...(purgeShared ? [CACHE_DIR, LAB_VAR_DIR] : []), lab.stateDir]) {
            if (fs.existsSync(d)) {
                fs.rmSync(d, { recursive: true, force: true });
                removed.push(d);
            }
        }
    }
    if (removed.length) {
        say(`${title} is down; removed:`);
        for (const r of removed) say(`  - ${r}`);
    } else {
        say(`${title} is down; there was nothing to remove`);
    }
    if (!purgeShared) say(`image caches kept in ${CACHE_DIR} and ${LAB_VAR_DIR}/engine (${opts.purge ? "other labs use them" : "lab:down --purge removes them"})`);
    return 0;
}

// ---------------------------------------------------------------- status

interface LabJson {
    name?: string;
    engine?: string;
    engineVersion?: string;
    apiVersion?: string;
    network?: string;
    subnet?: string;
    nodes: { name: string; container?: string; address: string }[];
}

async function status(opts: Options): Promise<number> {
    requireRoot();
    const lab = labInstance(opts.name);
    const title = labTitle(lab);
    const engine = findEngine();
    if (!engine) {
        say(`${title} is not up: no Docker engine answers (DOCKER_HOST, /var/run/docker.sock, or the lab's own)`);
        return 1;
    }
    let state: LabJson;
    try {
        state = JSON.parse(fs.readFileSync(lab.labJson, "utf8"));
    } catch {
        say(`${title} is not up: ${lab.labJson} is missing (run npm run lab:up${lab.isDefault ? "" : ` -- --name ${lab.name}`})`);
        return 1;
    }
    say(`host engine: ${engine.host} (Docker ${engine.version})`);
    const eng = ENGINES[state.engine ?? DEFAULT_ENGINE];
    say(`${title}: nodes run Docker ${state.engineVersion ?? eng?.version ?? "?"}${state.apiVersion ? ` (API ${state.apiVersion})` : ""}, ` +
        `engine ${state.engine ?? DEFAULT_ENGINE} (Debian ${eng?.suite ?? SUITE}); network ${state.network ?? lab.network} (${state.subnet ?? lab.subnet})`);
    const rows = state.nodes.map((n) => {
        const info = inspectContainer(engine, n.container ?? n.name);
        if (!info || !info.State.Running) return { name: n.name, address: n.address, ssh: false, engine: info ? "stopped" : "missing", swarm: "?" };
        return nodeHealth(lab, n.name, n.address);
    });
    printTable(rows);
    const ok = rows.every((r) => r.ssh && r.engine !== "down" && r.engine !== "?" && r.engine !== "missing" && r.engine !== "stopped");
    if (!ok) say(`${title} is not (fully) up`);
    return ok ? 0 : 1;
}

// ---------------------------------------------------------------- main

const LOCK_FILE = "/run/dccn-lab-cli.lock";

/** One up or down at a time (test suites and people may start them together). */
async function lock(): Promise<void> {
    const started = Date.now();
    let told = false;
    for (;;) {
        try {
            const fd = fs.openSync(LOCK_FILE, "wx");
            fs.writeSync(fd, String(process.pid));
            fs.closeSync(fd);
            process.on("exit", () => {
                try {
                    if (fs.readFileSync(LOCK_FILE, "utf8") === String(process.pid)) fs.rmSync(LOCK_FILE);
                } catch {
                    /* gone */
                }
            });
            return;
        } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
        }
        const holder = Number(fs.readFileSync(LOCK_FILE, "utf8").trim() || 0);
        if (!holder || !fs.existsSync(`/proc/${holder}`)) {
            fs.rmSync(LOCK_FILE, { force: true });
            continue;
        }
        if (!told) {
            say(`waiting for another lab command (pid ${holder}) to finish`);
            told = true;
        }
        if (Date.now() - started > 40 * 60 * 1000) throw new LabError(`another lab command (pid ${holder}) has been running for 40 minutes; giving up`);
        await sleep(1000);
    }
}

async function main(argv: string[]): Promise<number> {
    const opts = parseArgs(argv);
    if (opts.command !== "status") {
        requireRoot();
        await lock();
    }
    switch (opts.command) {
        case "up":
            return up(opts);
        case "down":
            return down(opts);
        case "status":
            return status(opts);
    }
}

if (require.main === module) {
    main(process.argv.slice(2)).then(
        (code) => process.exit(code),
        (err) => {
            if (err instanceof LabError) {
                if (err.exitCode === 0) {
                    say(err.message);
                    process.exit(0);
                }
                process.stderr.write(`lab: error: ${err.message}\n`);
                process.exit(err.exitCode);
            }
            process.stderr.write(`lab: ${err?.stack ?? err}\n`);
            process.exit(1);
        },
    );
}
