// dccn-lab: a local lab of bare-metal-like Docker nodes (vm1..vmN) as containers.
//
//   tsx lab/cli.ts up [--nodes N] | down [--purge] | status
//
// `up` converges: it starts a host engine if none answers, builds (once) the node and
// application images from Debian packages, creates the lab network and nodes, loads the
// images into every node, and writes .state/lab/{known_hosts,lab.json}. Run again it changes
// nothing. `down` removes what carries the lab's ownership label, and nothing else.
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import {
    BRIDGE, DEFAULT_NODES, ENGINE_SOCKET, GATEWAY, IMAGES, KEY_FILE, KNOWN_HOSTS, LAB_JSON, LAB_VAR_DIR, NODE_HOSTS_DIR, LABEL, MAX_NODES,
    NETWORK, NODE_DNS_OPTIONS, NODE_RUN_FLAGS, OWNER, OWNER_LABEL, RUN_DIR, SHARED_BIND, SHARED_DIR, STATE_DIR, SUBNET, CACHE_DIR, debianMirrors,
    nodeAddress, nodeName, nodeVolume,
} from "./config";
import { Engine, findEngine, LAB_ENGINE_HOST, labEnginePid, startLabEngine, stopLabEngine, strayEngineProcesses, engineVersion } from "./engine";
import { BuiltImage, checkMirror, ensureImages, missingImages, stageArchive, stagingDir } from "./images";
import { LabError, run, runOk, runWithProgress, say, sleep, table, which, writeIfChanged } from "./util";

const USAGE = `usage: tsx lab/cli.ts up [--nodes N] | down [--purge] | status
  up       create or converge the lab: N nodes vm1..vmN (default ${DEFAULT_NODES}, 1..${MAX_NODES}; env LAB_NODES)
  down     remove everything the lab created (keeps image caches unless --purge)
  status   print the node table; exit non-zero if the lab is not up`;

// ---------------------------------------------------------------- arguments and checks

export interface Options {
    command: "up" | "down" | "status";
    nodes: number;
    purge: boolean;
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
    let purge = false;
    for (let i = 0; i < rest.length; i++) {
        const a = rest[i];
        if (a === "--nodes" || a === "-n") {
            if (rest[i + 1] === undefined) throw new LabError(`${a} needs a value`, 2);
            nodes = parseNodes(rest[++i], "--nodes");
        } else if (a.startsWith("--nodes=")) {
            nodes = parseNodes(a.slice("--nodes=".length), "--nodes");
        } else if (a === "--purge" && command === "down") {
            purge = true;
        } else if (a === "-h" || a === "--help") {
            throw new LabError(USAGE, 0);
        } else {
            throw new LabError(`unknown argument '${a}'\n${USAGE}`, 2);
        }
    }
    return { command, nodes, purge };
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

/** Routes of the host that overlap the lab subnet, other than the lab bridge's own. */
export function conflictingRoutes(routes: { dst: string; dev?: string }[]): string[] {
    return routes
        .filter((r) => r.dst && r.dst !== "default" && r.dev !== BRIDGE && /^\d+\.\d+\.\d+\.\d+(\/\d+)?$/.test(r.dst) && overlaps(r.dst, SUBNET))
        .map((r) => `${r.dst} dev ${r.dev ?? "?"}`);
}

function checkSubnet(engine: Engine | undefined): void {
    const r = run("ip", ["-j", "-4", "route", "show", "table", "all"]);
    let routes: { dst: string; dev?: string; type?: string }[] = [];
    try {
        routes = JSON.parse(r.stdout || "[]");
    } catch {
        routes = [];
    }
    routes = routes.filter((x) => !x.type || x.type === "unicast");
    const bad = conflictingRoutes(routes);
    if (bad.length) {
        throw new LabError(`the lab's address range ${SUBNET} is already in use on this host (route ${bad.join(", ")}); nothing was changed`, 6);
    }
    if (!engine) return;
    const ids = runOk("docker", ["network", "ls", "-q"], { env: dockerEnv(engine) }).split("\n").filter(Boolean);
    if (!ids.length) return;
    const nets = JSON.parse(runOk("docker", ["network", "inspect", ...ids], { env: dockerEnv(engine) })) as {
        Name: string;
        Labels?: Record<string, string>;
        IPAM?: { Config?: { Subnet?: string }[] };
    }[];
    for (const n of nets) {
        const ours = n.Name === NETWORK && n.Labels?.[OWNER_LABEL] === OWNER;
        if (n.Name === NETWORK && !ours) throw new LabError(`a docker network named ${NETWORK} exists that the lab did not create; nothing was changed`, 6);
        for (const c of n.IPAM?.Config ?? []) {
            if (!ours && c.Subnet && /^\d/.test(c.Subnet) && overlaps(c.Subnet, SUBNET)) {
                throw new LabError(`the lab's address range ${SUBNET} is already used by docker network '${n.Name}' (${c.Subnet}); nothing was changed`, 6);
            }
        }
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

// ---------------------------------------------------------------- ssh

function sshArgs(address: string, command: string): string[] {
    return [
        "-i", KEY_FILE,
        "-o", `UserKnownHostsFile=${KNOWN_HOSTS}`,
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
}

function nodeHealth(name: string, address: string): NodeHealth {
    const r = run("ssh", sshArgs(address, "docker version --format '{{.Server.Version}}' && docker info --format '{{.Swarm.LocalNodeState}}'"), { timeout: 30000 });
    const sshOk = r.code !== 255 && r.code !== 127 && !/Permission denied|Host key verification failed|Connection (refused|timed out)/.test(r.stderr);
    const lines = r.stdout.trim().split("\n");
    return {
        name,
        address,
        ssh: sshOk,
        engine: r.code === 0 ? lines[0] : sshOk ? "down" : "?",
        swarm: r.code === 0 ? lines[1] ?? "?" : "?",
    };
}

function printTable(rows: NodeHealth[]): void {
    say(table(["NAME", "ADDRESS", "SSH", "ENGINE", "SWARM"], rows.map((h) => [h.name, h.address, h.ssh ? "ok" : "FAILED", h.engine, h.swarm])));
}

// ---------------------------------------------------------------- up

function ensureKeyPair(changes: string[]): string {
    fs.mkdirSync(STATE_DIR, { recursive: true, mode: 0o700 });
    if (!fs.existsSync(KEY_FILE) || !fs.existsSync(`${KEY_FILE}.pub`)) {
        fs.rmSync(KEY_FILE, { force: true });
        fs.rmSync(`${KEY_FILE}.pub`, { force: true });
        runOk("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "dccn-lab", "-f", KEY_FILE]);
        changes.push("generated the SSH key pair");
    }
    return fs.readFileSync(`${KEY_FILE}.pub`, "utf8").trim() + "\n";
}

function ensureNetwork(engine: Engine, changes: string[]): void {
    const r = dkTry(engine, ["network", "inspect", NETWORK, "--format", "{{json .IPAM.Config}}"]);
    if (r.code === 0) return;
    dk(engine, [
        "network", "create", "--driver", "bridge",
        "--subnet", SUBNET, "--gateway", GATEWAY,
        "--opt", `com.docker.network.bridge.name=${BRIDGE}`,
        "--label", LABEL,
        NETWORK,
    ]);
    changes.push(`created network ${NETWORK} (${SUBNET}, bridge ${BRIDGE})`);
}

const FORWARD_RULE = ["FORWARD", "-i", BRIDGE, "-o", BRIDGE, "-m", "comment", "--comment", "dccn-lab", "-j", "ACCEPT"];

function ensureForwardRule(changes: string[]): void {
    if (!which("iptables")) return;
    if (run("iptables", ["-C", ...FORWARD_RULE]).code === 0) return;
    const r = run("iptables", ["-I", ...FORWARD_RULE]);
    if (r.code !== 0) {
        say(`  note: could not add the iptables FORWARD rule for ${BRIDGE}: ${r.stderr.trim()}`);
        return;
    }
    changes.push(`accepted forwarding on ${BRIDGE} (iptables FORWARD)`);
}

function removeForwardRule(): boolean {
    if (!which("iptables")) return false;
    let removed = false;
    for (let i = 0; i < 10 && run("iptables", ["-C", ...FORWARD_RULE]).code === 0; i++) {
        run("iptables", ["-D", ...FORWARD_RULE]);
        removed = true;
    }
    return removed;
}

function createNode(engine: Engine, i: number, nodeImage: BuiltImage, pubkey: string): void {
    const name = nodeName(i);
    const volume = nodeVolume(i);
    if (dkTry(engine, ["volume", "inspect", volume]).code !== 0) {
        dk(engine, ["volume", "create", "--label", LABEL, "--label", `dccn-lab.node=${name}`, volume]);
    }
    // A node's /etc/hosts as the engine writes it, kept in a file of its own (NODE_HOSTS_DIR).
    fs.mkdirSync(NODE_HOSTS_DIR, { recursive: true });
    const hosts = path.join(NODE_HOSTS_DIR, name);
    // The shared storage every node sees at /mnt/docker (SHARED_DIR): a real directory, writable by root.
    fs.mkdirSync(SHARED_DIR, { recursive: true, mode: 0o755 });
    fs.writeFileSync(hosts, ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback", "fe00::0\tip6-localnet",
        "ff00::0\tip6-mcastprefix", "ff02::1\tip6-allnodes", "ff02::2\tip6-allrouters", `${nodeAddress(i)}\t${name}`, ""].join("\n"), { mode: 0o644 });
    dk(engine, [
        "container", "create",
        "--name", name,
        "-v", `${hosts}:/etc/hosts`,
        "--hostname", name,
        "--label", LABEL,
        "--label", `dccn-lab.node=${name}`,
        "--network", NETWORK,
        "--ip", nodeAddress(i),
        ...NODE_RUN_FLAGS,
        "-v", `${volume}:/var/lib/docker`,
        "-v", SHARED_BIND,
        "--restart", "unless-stopped",
        "--stop-timeout", "30",
        nodeImage.spec.ref,
    ]);
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "dccn-lab-"));
    try {
        fs.writeFileSync(path.join(tmp, "authorized_keys"), pubkey, { mode: 0o600 });
        dk(engine, ["cp", path.join(tmp, "authorized_keys"), `${name}:/root/.ssh/authorized_keys`]);
    } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
    }
    dk(engine, ["start", name]);
}

function removeNode(engine: Engine, name: string, volume: string): void {
    dkTry(engine, ["rm", "-f", "-v", name]);
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

function hostKey(engine: Engine, name: string): string | undefined {
    const r = dkTry(engine, ["exec", name, "cat", "/etc/ssh/ssh_host_ed25519_key.pub"]);
    if (r.code !== 0) return undefined;
    const [type, key] = r.stdout.trim().split(/\s+/);
    return type === "ssh-ed25519" && key ? `${type} ${key}` : undefined;
}

function nodeImageIds(engine: Engine, name: string, refs: string[]): Map<string, string> {
    const r = dkTry(engine, ["exec", name, "docker", "image", "inspect", "--format", "{{.Id}}", ...refs]);
    // inspect prints the IDs it found, in order; on a partial miss it exits 1, so ask one by one then
    const ids = new Map<string, string>();
    if (r.code === 0) {
        r.stdout.trim().split("\n").forEach((id, i) => ids.set(refs[i], id.trim()));
        return ids;
    }
    for (const ref of refs) {
        const one = dkTry(engine, ["exec", name, "docker", "image", "inspect", "--format", "{{.Id}}", ref]);
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

    // everything that can refuse is checked before anything changes
    let engine = findEngine();
    checkSubnet(engine);
    const mirrors = debianMirrors();
    const toBuild = missingImages(mirrors);
    if (toBuild.length) {
        say(`images to build: ${toBuild.map((s) => s.ref).join(", ")} (from ${mirrors.main})`);
        checkMirror(mirrors);
    }

    const changes: string[] = [];
    const pubkey = ensureKeyPair(changes);

    if (!engine) {
        say(`starting the lab's dockerd (socket ${ENGINE_SOCKET}, data root ${LAB_VAR_DIR}/engine)`);
        engine = await startLabEngine();
        changes.push(`started the lab's dockerd ${engine.version} at ${engine.host}`);
    }
    say(`host engine: ${engine.host} (Docker ${engine.version}${engine.owned ? ", the lab's own" : ""})`);

    const images = await ensureImages(mirrors, changes);
    const nodeImage = images.get("node")!;
    await loadNodeImage(engine, nodeImage, changes);

    ensureNetwork(engine, changes);
    ensureForwardRule(changes);

    // nodes beyond N go (scaling the lab down); vm1..vmN are kept when they run
    for (const line of labelled(engine, "container", '{{.Names}}\t{{.Label "dccn-lab.node"}}')) {
        const [cname, node] = line.split("\t");
        const m = /^vm(\d+)$/.exec(node ?? "");
        if (m && Number(m[1]) > opts.nodes) {
            removeNode(engine, cname, nodeVolume(Number(m[1])));
            changes.push(`removed ${cname} (beyond --nodes ${opts.nodes})`);
        }
    }

    const indexes = Array.from({ length: opts.nodes }, (_, k) => k + 1);
    const outdated: string[] = [];
    for (const i of indexes) {
        const name = nodeName(i);
        let info = inspectContainer(engine, name);
        if (info && info.Config.Labels?.[OWNER_LABEL] !== OWNER) {
            throw new LabError(`a container named ${name} exists that the lab did not create; remove or rename it first`, 6);
        }
        const ip = info?.NetworkSettings.Networks?.[NETWORK]?.IPAMConfig?.IPv4Address;
        if (info && ip !== nodeAddress(i)) {
            say(`  ${name} is not at ${nodeAddress(i)} on ${NETWORK}: creating it again`);
            removeNode(engine, name, nodeVolume(i));
            info = undefined;
        }
        // A node from before the shared storage lacks /mnt/docker, which provisioning checks and the
        // stacks keep their data on: it is made again (a new machine to the program, which the next
        // `npm run dev` notices by its host key and provisions anew).
        if (info && !(info.HostConfig?.Binds ?? []).includes(SHARED_BIND)) {
            say(`  ${name} has no shared storage at ${SHARED_BIND.split(":")[1]}: creating it again`);
            removeNode(engine, name, nodeVolume(i));
            info = undefined;
        }
        if (!info) {
            say(`creating ${name} (${nodeAddress(i)})`);
            createNode(engine, i, nodeImage, pubkey);
            changes.push(`created ${name}`);
        } else {
            const dnsOptions = info.HostConfig?.DnsOptions ?? [];
            const ownHosts = (info.HostConfig?.Binds ?? []).some((b) => b.endsWith(":/etc/hosts"));
            if (info.Image !== nodeImage.imageId || NODE_DNS_OPTIONS.some((o) => !dnsOptions.includes(o)) || !ownHosts) outdated.push(name);
            if (!info.State.Running) {
                say(`starting ${name}`);
                dk(engine, ["start", name]);
                changes.push(`started ${name}`);
            }
        }
    }

    // host keys (generated by each node at its first boot) -> known_hosts
    const nodes: { name: string; address: string; hostKey: string }[] = [];
    for (const i of indexes) {
        const name = nodeName(i);
        const key = await waitFor(`the SSH host key of ${name}`, 60000, () => hostKey(engine!, name));
        nodes.push({ name, address: nodeAddress(i), hostKey: key });
        const authorized = dkTry(engine, ["exec", name, "cat", "/root/.ssh/authorized_keys"]);
        if (authorized.stdout !== pubkey) {
            dk(engine, ["exec", "-i", name, "sh", "-c", "umask 077; mkdir -p /root/.ssh; cat > /root/.ssh/authorized_keys"], pubkey);
            changes.push(`installed the lab's SSH key on ${name}`);
        }
    }
    if (writeIfChanged(KNOWN_HOSTS, nodes.map((n) => `${n.address} ${n.hostKey}`).join("\n") + "\n")) changes.push(`wrote ${KNOWN_HOSTS}`);

    // every node answers over SSH and its engine runs
    const health: NodeHealth[] = [];
    for (const n of nodes) {
        const h = await waitFor(`${n.name}: SSH and dockerd`, 120000, () => {
            const x = nodeHealth(n.name, n.address);
            return x.ssh && x.engine !== "down" && x.engine !== "?" ? x : undefined;
        });
        health.push(h);
    }

    const forNodes = IMAGES.filter((s) => s.forNodes).map((s) => images.get(s.id)!);
    await Promise.all(nodes.map((n) => loadImagesIntoNode(engine!, n.name, forNodes, changes)));

    const labJson = {
        network: NETWORK,
        subnet: SUBNET,
        sshUser: "root",
        sshPrivateKeyFile: KEY_FILE,
        knownHostsFile: KNOWN_HOSTS,
        dockerHost: engine.host,
        nodes: nodes.map((n) => ({ name: n.name, address: n.address, hostKey: n.hostKey })),
        images: Object.fromEntries(
            IMAGES.filter((s) => s.forNodes).map((s) => [s.id, { ref: s.ref, id: images.get(s.id)!.imageId, replaces: s.replaces }]),
        ),
    };
    if (writeIfChanged(LAB_JSON, JSON.stringify(labJson, null, 2) + "\n")) changes.push(`wrote ${LAB_JSON}`);

    say("");
    printTable(health);
    say("");
    if (outdated.length) say(`note: ${outdated.join(", ")} run(s) an older node image or older run flags; \`npm run lab:down && npm run lab:up\` renews them`);
    const secs = Math.round((Date.now() - t0) / 1000);
    if (changes.length) {
        say(`lab is up (${opts.nodes} node(s)) in ${secs}s; changed: ${changes.length} thing(s)`);
        for (const c of changes) say(`  - ${c}`);
    } else {
        say(`lab is up (${opts.nodes} node(s)); nothing changed (${secs}s)`);
    }
    say(`state: ${LAB_JSON}`);
    return 0;
}

// ---------------------------------------------------------------- down

function cleanEngine(engine: Engine, purge: boolean): string[] {
    const removed: string[] = [];
    const containers = labelled(engine, "container", "{{.Names}}");
    if (containers.length) {
        dk(engine, ["rm", "-f", "-v", ...containers]);
        removed.push(`containers ${containers.join(", ")}`);
    }
    const volumes = labelled(engine, "volume", "{{.Name}}");
    if (volumes.length) {
        dk(engine, ["volume", "rm", "-f", ...volumes]);
        removed.push(`volumes ${volumes.join(", ")}`);
    }
    const networks = labelled(engine, "network", "{{.Name}}");
    if (networks.length) {
        dk(engine, ["network", "rm", ...networks]);
        removed.push(`network ${networks.join(", ")}`);
    }
    // lab images no tag points at any more (replaced by a newer build)
    dkTry(engine, ["image", "prune", "-f", "--filter", `label=${LABEL}`]);
    if (purge) {
        const imgs = labelled(engine, "image", "{{.ID}}");
        if (imgs.length) {
            dkTry(engine, ["image", "rm", "-f", ...new Set(imgs)]);
            removed.push(`${new Set(imgs).size} image(s)`);
        }
    }
    return removed;
}

async function down(opts: Options): Promise<number> {
    requireRoot();
    requireTools(["docker"]);
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
    for (const host of hosts) {
        const r = cleanEngine({ host, owned: host === LAB_ENGINE_HOST, version: "" }, opts.purge);
        for (const x of r) removed.push(`${x} (engine ${host})`);
    }
    if (removeForwardRule()) removed.push(`iptables FORWARD rule for ${BRIDGE}`);

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

    for (const f of [LAB_JSON, KNOWN_HOSTS, NODE_HOSTS_DIR, SHARED_DIR]) {
        if (fs.existsSync(f)) {
            fs.rmSync(f, { recursive: true });
            removed.push(path.basename(f));
        }
    }
    if (opts.purge) {
        for (const d of [CACHE_DIR, LAB_VAR_DIR, STATE_DIR]) {
            if (fs.existsSync(d)) {
                fs.rmSync(d, { recursive: true, force: true });
                removed.push(d);
            }
        }
    }
    if (removed.length) {
        say("lab is down; removed:");
        for (const r of removed) say(`  - ${r}`);
    } else {
        say("lab is down; there was nothing to remove");
    }
    if (!opts.purge) say(`image caches kept in ${CACHE_DIR} and ${LAB_VAR_DIR}/engine (lab:down --purge removes them)`);
    return 0;
}

// ---------------------------------------------------------------- status

async function status(): Promise<number> {
    requireRoot();
    const engine = findEngine();
    if (!engine) {
        say("lab is not up: no Docker engine answers (DOCKER_HOST, /var/run/docker.sock, or the lab's own)");
        return 1;
    }
    let lab: { nodes: { name: string; address: string }[] };
    try {
        lab = JSON.parse(fs.readFileSync(LAB_JSON, "utf8"));
    } catch {
        say(`lab is not up: ${LAB_JSON} is missing (run npm run lab:up)`);
        return 1;
    }
    say(`host engine: ${engine.host} (Docker ${engine.version})`);
    const rows = lab.nodes.map((n) => {
        const info = inspectContainer(engine, n.name);
        if (!info || !info.State.Running) return { name: n.name, address: n.address, ssh: false, engine: info ? "stopped" : "missing", swarm: "?" };
        return nodeHealth(n.name, n.address);
    });
    printTable(rows);
    const ok = rows.every((r) => r.ssh && r.engine !== "down" && r.engine !== "?" && r.engine !== "missing" && r.engine !== "stopped");
    if (!ok) say("lab is not (fully) up");
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
            return status();
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
