// Tests of the local lab (lab/cli.ts): input checks, lab instances' facts, then up / idempotent up /
// status, and (only with LAB_TEST_DOWN=1, since other suites share the lab) down.
//
// They act on the lab LAB_NAME names (the default lab when unset), with the engine LAB_ENGINE names
// (else the one that lab runs): `LAB_NAME=lab26 LAB_ENGINE=26 node --import tsx --test
// test/lab/lab.test.ts` checks a Docker 26 lab beside the default one.
//
// The lab needs root, debootstrap and dockerd. Without them these tests are skipped, except
// under CI=true, where a missing prerequisite is a failure.
import assert from "node:assert/strict";
import { spawnSync, SpawnSyncReturns } from "node:child_process";
import * as fs from "node:fs";
import * as net from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { describe, test, after } from "node:test";
import { conflictingRoutes, networkConflict, overlaps, parseArgs } from "../../lab/cli";
import { ENGINE_SOCKET, ENGINES, INSTANCE_LABEL, RUN_DIR, LABEL, SYSTEM_SOCKET, currentLab, labInstance, namedOctet } from "../../lab/config";
import { forLab } from "../../tools/workspace";

/** The lab these tests act on, and its facts. */
const LAB = currentLab();
const { bridge: BRIDGE, keyFile: KEY_FILE, knownHosts: KNOWN_HOSTS, labJson: LAB_JSON } = LAB;
/** `--name NAME` for the CLI when the lab is not the default one. */
const NAME_ARGS = LAB.isDefault ? [] : ["--name", LAB.name];

const REPO = path.resolve(__dirname, "..", "..");
const CLI = path.join(REPO, "lab", "cli.ts");
const CI = process.env.CI === "true";

function which(cmd: string): boolean {
    return (process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin")
        .split(":")
        .concat(["/usr/sbin", "/sbin"])
        .some((d) => fs.existsSync(path.join(d, cmd)));
}

const missing = [
    ...(process.getuid?.() === 0 ? [] : ["root"]),
    ...["debootstrap", "dockerd", "docker", "ssh", "ip", "curl"].filter((c) => !which(c)),
];
/** undefined: run; a string: skip with that reason */
const needsLab: string | undefined = missing.length && !CI ? `prerequisites missing: ${missing.join(", ")}` : undefined;

function lab(args: string[], env: NodeJS.ProcessEnv = {}, opts: { timeoutMs?: number; uid?: number } = {}): SpawnSyncReturns<string> {
    const argv = ["--import", "tsx", CLI, ...args.slice(0, 1), ...NAME_ARGS, ...args.slice(1)];
    const cmd = opts.uid !== undefined ? "setpriv" : process.execPath;
    const full = opts.uid !== undefined ? [`--reuid=${opts.uid}`, `--regid=${opts.uid}`, "--clear-groups", process.execPath, ...argv] : argv;
    return spawnSync(cmd, full, {
        cwd: REPO,
        encoding: "utf8",
        env: { ...process.env, ...env },
        timeout: opts.timeoutMs ?? 45 * 60 * 1000,
        maxBuffer: 32 * 1024 * 1024,
    });
}

const show = (r: SpawnSyncReturns<string>) => `exit ${r.status}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;

function engineHosts(): string[] {
    const hosts: string[] = [];
    if (process.env.DOCKER_HOST) hosts.push(process.env.DOCKER_HOST);
    if (fs.existsSync(SYSTEM_SOCKET)) hosts.push(`unix://${SYSTEM_SOCKET}`);
    if (fs.existsSync(ENGINE_SOCKET)) hosts.push(`unix://${ENGINE_SOCKET}`);
    return hosts;
}

/** This lab's containers, networks or volumes on every engine (another lab's are not its business). */
function labelled(kind: "ps" | "network" | "volume"): string[] {
    const out: string[] = [];
    const instance = `{{.Label "${INSTANCE_LABEL}"}}`;
    for (const host of engineHosts()) {
        const args = kind === "ps" ? ["ps", "-a", "--filter", `label=${LABEL}`, "--format", `{{.ID}} {{.Names}} ${instance}`] : [kind, "ls", "--filter", `label=${LABEL}`, "--format", `{{.Name}} ${instance}`];
        const r = spawnSync("docker", args, { encoding: "utf8", env: { ...process.env, DOCKER_HOST: host }, timeout: 30000 });
        if (r.status !== 0) continue;
        for (const l of r.stdout.split("\n").filter(Boolean)) {
            const words = l.trim().split(" ");
            const of = words.length > (kind === "ps" ? 2 : 1) ? words.pop()! : "default";
            if (of === LAB.name) out.push(`${host} ${words.join(" ")}`);
        }
    }
    return out.sort();
}

const mtime = (f: string) => (fs.existsSync(f) ? fs.statSync(f).mtimeMs : null);

/** What the lab has created: compared before and after a command that must change nothing. */
function snapshot() {
    return {
        runDir: fs.existsSync(RUN_DIR),
        labJson: mtime(LAB_JSON),
        knownHosts: mtime(KNOWN_HOSTS),
        key: mtime(KEY_FILE),
        containers: labelled("ps"),
        networks: labelled("network"),
        volumes: labelled("volume"),
        forwardRule: spawnSync("iptables", ["-S", "FORWARD"], { encoding: "utf8" }).stdout?.includes(BRIDGE) ?? false,
    };
}

function labIsUp(): boolean {
    return fs.existsSync(LAB_JSON) && lab(["status"], {}, { timeoutMs: 120000 }).status === 0;
}

describe("lab: arguments (no root needed)", () => {
    test("parseArgs: default 3 nodes, --nodes, --nodes=, LAB_NODES", () => {
        assert.equal(parseArgs(["up"], {}).nodes, 3);
        assert.equal(parseArgs(["up", "--nodes", "2"], {}).nodes, 2);
        assert.equal(parseArgs(["up", "--nodes=9"], {}).nodes, 9);
        assert.equal(parseArgs(["up"], { LAB_NODES: "5" }).nodes, 5);
        assert.equal(parseArgs(["up", "--nodes", "1"], { LAB_NODES: "5" }).nodes, 1);
        assert.equal(parseArgs(["down", "--purge"], {}).purge, true);
    });
    test("parseArgs: 0, 10, -1, 2.5, abc and unknown arguments are rejected", () => {
        for (const bad of [["up", "--nodes", "0"], ["up", "--nodes", "10"], ["up", "--nodes", "-1"], ["up", "--nodes", "2.5"], ["up", "--nodes", "abc"], ["up", "--bogus"], ["sideways"]]) {
            assert.throws(() => parseArgs(bad, {}), /1 to 9|from 1 to 9|unknown argument|usage/, bad.join(" "));
        }
        assert.throws(() => parseArgs(["up"], { LAB_NODES: "10" }), /LAB_NODES must be from 1 to 9/);
    });
    test("parseArgs: --name / LAB_NAME pick a lab, --engine / LAB_ENGINE an engine (up only); bad values refused", () => {
        assert.equal(parseArgs(["up"], {}).name, "default");
        assert.equal(parseArgs(["up"], {}).engine, undefined, "no engine asked for: the lab keeps its own (a new one gets 20)");
        assert.equal(parseArgs(["up", "--name", "lab26"], {}).name, "lab26");
        assert.equal(parseArgs(["status", "--name=lab26"], {}).name, "lab26");
        assert.equal(parseArgs(["down"], { LAB_NAME: "lab26" }).name, "lab26");
        assert.equal(parseArgs(["down", "--name", "other"], { LAB_NAME: "lab26" }).name, "other");
        assert.equal(parseArgs(["up"], { LAB_NAME: "default" }).name, "default");
        assert.equal(parseArgs(["up"], { LAB_NAME: "" }).name, "default");
        assert.equal(parseArgs(["up", "--engine", "26"], {}).engine, "26");
        assert.equal(parseArgs(["up", "--engine=26.1"], {}).engine, "26");
        assert.equal(parseArgs(["up", "--engine", "20.10"], {}).engine, "20");
        assert.equal(parseArgs(["up"], { LAB_ENGINE: "26" }).engine, "26");
        assert.equal(parseArgs(["up", "--engine", "20"], { LAB_ENGINE: "26" }).engine, "20");
        // LAB_ENGINE is up's: down and status act on whatever the lab runs
        assert.equal(parseArgs(["down"], { LAB_ENGINE: "26" }).engine, undefined);
        for (const bad of [["up", "--engine", "25"], ["up", "--engine", "latest"], ["up", "--engine"], ["down", "--engine", "26"]]) {
            assert.throws(() => parseArgs(bad, {}), /--engine must be 20 \(Docker 20\.10, Debian bookworm\) or 26 \(Docker 26\.1, Debian trixie\)|needs a value|unknown argument/, bad.join(" "));
        }
        assert.throws(() => parseArgs(["up"], { LAB_ENGINE: "19" }), /LAB_ENGINE must be 20 .* or 26/);
        for (const bad of ["Lab26", "26lab", "lab-26", "lab_26", "abcdefghijk", "../x", "a b"]) {
            assert.throws(() => parseArgs(["up", "--name", bad], {}), /--name must be 1 to 10 lower-case letters and digits/, bad);
            assert.throws(() => parseArgs(["up"], { LAB_NAME: bad }), /LAB_NAME must be 1 to 10/, bad);
        }
        assert.throws(() => parseArgs(["up", "--name"], {}), /--name needs a value/);
    });

    test("lab instances: the default lab's facts as they always were; a named lab's all its own, from its name", () => {
        const d = labInstance();
        assert.equal(d.name, "default");
        assert.equal(d.network, "dccn-lab");
        assert.equal(d.bridge, "dccn-lab0");
        assert.equal(d.subnet, "172.28.213.0/24");
        assert.equal(d.gateway, "172.28.213.1");
        assert.equal(d.containerName(1), "vm1");
        assert.equal(d.nodeName(1), "vm1");
        assert.equal(d.nodeAddress(3), "172.28.213.13");
        assert.equal(d.nodeVolume(2), "dccn-lab-vm2-docker");
        assert.equal(d.stateDir, path.join(REPO, ".state", "lab"));
        assert.equal(d.labJson, path.join(REPO, ".state", "lab", "lab.json"));
        assert.equal(d.keyFile, path.join(REPO, ".state", "lab", "id_ed25519"));
        assert.equal(d.sharedDir, "/var/lib/dccn-lab/shared");
        assert.equal(d.forwardComment, "dccn-lab");
        assert.equal(JSON.stringify(labInstance("default")), JSON.stringify(d), "--name default is the default lab");

        const a = labInstance("lab26");
        assert.equal(a.network, "dccn-lab-lab26");
        assert.equal(a.bridge, "dlab-lab26");
        assert.equal(a.nodeName(1), "vm1", "hostnames stay vm1..vmN in every lab");
        assert.equal(a.containerName(1), "lab26-vm1");
        assert.equal(a.nodeVolume(1), "dccn-lab-lab26-vm1-docker");
        assert.equal(a.stateDir, path.join(REPO, ".state", "lab-lab26"));
        assert.equal(a.knownHosts, path.join(REPO, ".state", "lab-lab26", "known_hosts"));
        assert.equal(a.hostsDir, path.join(REPO, ".state", "lab-lab26", "hosts"));
        assert.equal(a.sharedDir, "/var/lib/dccn-lab/shared-lab26");
        assert.equal(a.sharedBind, "/var/lib/dccn-lab/shared-lab26:/mnt/docker");
        assert.match(a.subnet, /^172\.28\.(21[4-9]|2[2-4]\d|25[0-3])\.0\/24$/);
        assert.equal(a.subnet, `172.28.${namedOctet("lab26")}.0/24`, "the same on every machine: derived from the name");
        assert.equal(a.nodeAddress(2), `${a.prefix}12`);
        assert.equal(a.gateway, `${a.prefix}1`);
        assert.ok(!overlaps(a.subnet, d.subnet), "never the default lab's range");
        // every instance-specific fact differs between two labs
        const b = labInstance("zz9");
        for (const k of ["network", "bridge", "stateDir", "labJson", "keyFile", "knownHosts", "hostsDir", "sharedDir", "forwardComment"] as const) {
            assert.notEqual(a[k], d[k], k);
            assert.notEqual(a[k], b[k], k);
        }
        assert.notEqual(a.containerName(1), d.containerName(1));
        assert.notEqual(a.nodeVolume(1), b.nodeVolume(1));
        // the longest name still gives a bridge name Linux accepts (at most 15 characters)
        assert.ok(labInstance("abcdefghij").bridge.length <= 15);
        // named labs spread over 40 ranges
        const octets = new Set(Array.from({ length: 400 }, (_, i) => namedOctet(`l${i}`)));
        assert.ok(octets.size === 40 && Math.min(...octets) === 214 && Math.max(...octets) === 253, [...octets].join(","));
    });

    test("overlaps: another lab's network on the same range is named; a foreign one too; the lab's own is no conflict", () => {
        const a = labInstance("lab26");
        const net = (name: string, subnet: string, labels: Record<string, string> = {}) => ({ Name: name, Labels: labels, IPAM: { Config: [{ Subnet: subnet }] } });
        const labLabels = (instance?: string) => ({ "dccn-lab.owner": "dccn-swarm", ...(instance ? { [INSTANCE_LABEL]: instance } : {}) });
        assert.equal(networkConflict(a, [net("dccn-lab-lab26", a.subnet, labLabels("lab26")), net("dccn-lab", "172.28.213.0/24", labLabels())]), undefined);
        assert.match(networkConflict(a, [net("dccn-lab-other", a.subnet, labLabels("other"))]) ?? "",
            new RegExp(`address range ${a.subnet.replace(/\./g, "\\.")} of lab 'lab26' is already used by lab 'other' \\(docker network dccn-lab-other.*choose another --name`));
        assert.match(networkConflict(a, [net("mynet", `${a.prefix}128/25`)]) ?? "", /already used by docker network 'mynet'/);
        assert.match(networkConflict(a, [net("dccn-lab-lab26", "10.9.0.0/16")]) ?? "", /named dccn-lab-lab26 exists that the lab did not create/);
        // the default lab's network made before instances (no instance label) is the default lab's
        assert.equal(networkConflict(labInstance(), [net("dccn-lab", "172.28.213.0/24", labLabels())]), undefined);
        assert.match(networkConflict(labInstance(), [net("dccn-lab-x", "172.28.213.0/25", labLabels("x"))]) ?? "", /already used by lab 'x'/);
    });

    test("the dev stack file for a named lab: its addresses, key and known_hosts; the default lab's unchanged", () => {
        const text = fs.readFileSync(path.join(REPO, "Pulumi.dev.yaml"), "utf8");
        assert.equal(forLab(text, labInstance()), text);
        const a = labInstance("lab26");
        const out = forLab(text, a);
        assert.doesNotMatch(out, /172\.28\.213\./);
        assert.doesNotMatch(out, /\.state\/lab\//);
        assert.match(out, new RegExp(`privateKeyFile: ${a.keyFile}\n`));
        assert.match(out, new RegExp(`knownHostsFile: ${a.knownHosts}\n`));
        for (const i of [1, 2, 3]) assert.match(out, new RegExp(`address: ${a.prefix.replace(/\./g, "\\.")}1${i}\n`));
        assert.match(forLab("x: 172.28.213.250\ny: 10.172.28.213.1\nz: 172.28.213.1234\n", a), new RegExp(`^x: ${a.prefix.replace(/\./g, "\\.")}250\ny: 10\.172\.28\.213\.1\nz: 172\.28\.213\.1234\n$`));
    });

    test("subnet overlap", () => {
        assert.ok(overlaps("172.28.213.0/24", "172.28.0.0/16"));
        assert.ok(overlaps("172.28.213.240/28", "172.28.213.0/24"));
        assert.ok(!overlaps("172.28.214.0/24", "172.28.213.0/24"));
        assert.deepEqual(conflictingRoutes([{ dst: "default", dev: "eth0" }, { dst: "172.28.213.0/24", dev: "dccn-lab0" }, { dst: "10.0.0.0/8", dev: "eth0" }]), []);
        assert.deepEqual(conflictingRoutes([{ dst: "172.28.0.0/16", dev: "br-x" }]), ["172.28.0.0/16 dev br-x"]);
        const a = labInstance("lab26");
        assert.deepEqual(conflictingRoutes([{ dst: a.subnet, dev: a.bridge }, { dst: "172.28.213.0/24", dev: "dccn-lab0" }], a), []);
        assert.deepEqual(conflictingRoutes([{ dst: a.subnet, dev: "dccn-lab0" }], a), [`${a.subnet} dev dccn-lab0`]);
    });
});

describe("lab: bad input changes nothing", { skip: needsLab }, () => {
    test("prerequisites are there", () => {
        assert.deepEqual(missing, [], `the lab needs: ${missing.join(", ")} (install docker.io and debootstrap, run as root)`);
    });

    test("--nodes 0, --nodes 10, LAB_NODES=10 are rejected before anything is created", () => {
        const before = snapshot();
        for (const [args, env] of [[["up", "--nodes", "0"], {}], [["up", "--nodes", "10"], {}], [["up"], { LAB_NODES: "10" }]] as [string[], NodeJS.ProcessEnv][]) {
            const r = lab(args, env, { timeoutMs: 60000 });
            assert.equal(r.status, 2, show(r));
            assert.match(r.stderr, /must be from 1 to 9/);
        }
        assert.deepEqual(snapshot(), before);
    });

    test("not root: a clear error", { skip: !which("setpriv") && "setpriv missing" }, () => {
        const before = snapshot();
        const r = lab(["up"], { HOME: "/tmp" }, { timeoutMs: 60000, uid: 65534 });
        assert.equal(r.status, 4, show(r));
        assert.match(r.stderr, /must run as root/);
        assert.deepEqual(snapshot(), before);
    });

    test("a Debian mirror that does not answer: a time-out error, not a hang", async () => {
        // a server that accepts connections and never answers
        const sockets: net.Socket[] = [];
        const server = net.createServer((s) => sockets.push(s));
        await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
        const port = (server.address() as net.AddressInfo).port;
        const cache = fs.mkdtempSync(path.join(os.tmpdir(), "dccn-lab-cache-"));
        try {
            const before = snapshot();
            const started = Date.now();
            const r = lab(["up"], { LAB_MIRROR: `http://127.0.0.1:${port}/debian`, LAB_MIRROR_TIMEOUT: "3", LAB_CACHE_DIR: cache }, { timeoutMs: 120000 });
            const secs = (Date.now() - started) / 1000;
            assert.equal(r.status, 3, show(r));
            assert.match(r.stderr, /did not answer/);
            assert.match(r.stderr, /time-out/);
            assert.ok(secs < 60, `took ${secs}s`);
            assert.deepEqual(snapshot(), before);
            assert.deepEqual(fs.readdirSync(cache), []);
        } finally {
            for (const s of sockets) s.destroy();
            server.close();
            fs.rmSync(cache, { recursive: true, force: true });
        }
    });

    test("an address range already in use: a clear error", () => {
        const dev = "dccnlabtest0";
        const ip = (...a: string[]) => spawnSync("ip", a, { encoding: "utf8" });
        ip("link", "del", dev);
        // a dummy interface where the kernel has the module, else an empty bridge
        let added = ip("link", "add", dev, "type", "dummy");
        if (added.status !== 0) added = ip("link", "add", dev, "type", "bridge");
        if (added.status !== 0) {
            if (CI) assert.fail(`cannot add a dummy interface: ${added.stderr}`);
            return;
        }
        try {
            // a /28 at the top of the lab's range: overlaps, and takes no lab address away
            assert.equal(ip("addr", "add", `${LAB.prefix}241/28`, "dev", dev).status, 0);
            assert.equal(ip("link", "set", dev, "up").status, 0);
            const before = snapshot();
            const r = lab(["up"], {}, { timeoutMs: 120000 });
            assert.equal(r.status, 6, show(r));
            assert.match(r.stderr, new RegExp(`${LAB.subnet.replace(/[./]/g, "\\$&")} is already in use`));
            assert.match(r.stderr, new RegExp(dev));
            assert.deepEqual(snapshot(), before);
        } finally {
            ip("link", "del", dev);
        }
    });
});

describe("lab: up, up again, status", { skip: needsLab }, () => {
    const nodes = Number(process.env.LAB_NODES || 3);
    let wasUp = false;
    let firstUp: SpawnSyncReturns<string>;
    /** The engine the lab is to run: LAB_ENGINE's, else the one it runs, else 20. */
    let engine = "20";

    test("up gives N nodes reachable over SSH with the generated key, engines running", { timeout: 50 * 60 * 1000 }, () => {
        wasUp = labIsUp();
        const recorded = fs.existsSync(LAB_JSON) ? JSON.parse(fs.readFileSync(LAB_JSON, "utf8")).engine : undefined;
        engine = process.env.LAB_ENGINE ? parseArgs(["up"], { LAB_ENGINE: process.env.LAB_ENGINE }).engine! : recorded ?? "20";
        const started = Date.now();
        firstUp = lab(["up"]);
        const secs = Math.round((Date.now() - started) / 1000);
        assert.equal(firstUp.status, 0, show(firstUp));
        process.stdout.write(`# lab:up took ${secs}s (lab was ${wasUp ? "already up" : "not up"})\n`);
        const state = JSON.parse(fs.readFileSync(LAB_JSON, "utf8"));
        assert.equal(state.name, LAB.name);
        assert.equal(state.network, LAB.network);
        assert.equal(state.subnet, LAB.subnet);
        assert.equal(state.engine, engine);
        assert.ok(state.engineVersion.startsWith(`${ENGINES[engine].version}.`), `lab.json: Docker ${state.engineVersion}`);
        assert.equal(state.sshUser, "root");
        assert.equal(state.sshPrivateKeyFile, KEY_FILE);
        assert.equal(state.knownHostsFile, KNOWN_HOSTS);
        assert.match(state.dockerHost, /^(unix|tcp|ssh):\/\//);
        assert.equal(state.nodes.length, nodes);
        for (const img of ["registry", "redis", "mariadb", "php-apache", "busybox"]) {
            assert.match(state.images[img].ref, /^dccn-lab\//);
            assert.match(state.images[img].id, /^sha256:[0-9a-f]{64}$/);
        }
        const knownHosts = fs.readFileSync(KNOWN_HOSTS, "utf8").trim().split("\n");
        state.nodes.forEach((n: { name: string; address: string; hostKey: string }, i: number) => {
            assert.equal(n.name, `vm${i + 1}`);
            assert.equal(n.address, `${LAB.prefix}${11 + i}`);
            assert.match(n.hostKey, /^ssh-ed25519 AAAA/);
            assert.ok(knownHosts.includes(`${n.address} ${n.hostKey}`), `known_hosts has ${n.address}`);
            const r = spawnSync(
                "ssh",
                ["-i", KEY_FILE, "-o", `UserKnownHostsFile=${KNOWN_HOSTS}`, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", `root@${n.address}`, "docker info --format '{{.Swarm.LocalNodeState}}'"],
                { encoding: "utf8", timeout: 60000 },
            );
            assert.equal(r.status, 0, `ssh ${n.address}: ${r.stderr}`);
            // a node this up created is not in a swarm; one that was kept may be in use by
            // another suite's swarm
            if (firstUp.stdout.includes(`created ${n.name}\n`)) assert.equal(r.stdout.trim(), "inactive");
            else assert.match(r.stdout.trim(), /^(inactive|active|pending|locked)$/);
            // the application images are loaded, with the IDs lab.json names
            const imgs = spawnSync(
                "ssh",
                ["-i", KEY_FILE, "-o", `UserKnownHostsFile=${KNOWN_HOSTS}`, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", `root@${n.address}`, "docker image ls --no-trunc --format '{{.Repository}}:{{.Tag}} {{.ID}}'"],
                { encoding: "utf8", timeout: 60000 },
            );
            for (const img of Object.values(state.images) as { ref: string; id: string }[]) assert.ok(imgs.stdout.includes(`${img.ref} ${img.id}`), `${n.name} has ${img.ref}`);
        });
        // password logins are refused
        const pw = spawnSync(
            "ssh",
            ["-o", `UserKnownHostsFile=${KNOWN_HOSTS}`, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password,keyboard-interactive", `root@${state.nodes[0].address}`, "true"],
            { encoding: "utf8", timeout: 60000 },
        );
        assert.notEqual(pw.status, 0);
        assert.match(pw.stderr, /Permission denied \(publickey\)/);
        assert.match(firstUp.stdout, /NAME\s+ADDRESS\s+SSH\s+ENGINE\s+SWARM/);
    });

    test("every node runs the engine asked for (26: Engine API 1.45 or later)", () => {
        const state = JSON.parse(fs.readFileSync(LAB_JSON, "utf8"));
        for (const n of state.nodes as { name: string; address: string }[]) {
            const r = spawnSync(
                "ssh",
                ["-i", KEY_FILE, "-o", `UserKnownHostsFile=${KNOWN_HOSTS}`, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", `root@${n.address}`,
                    "docker version --format '{{.Server.Version}} {{.Server.APIVersion}} {{.Client.Version}}'; . /etc/os-release; echo $VERSION_CODENAME"],
                { encoding: "utf8", timeout: 60000 },
            );
            assert.equal(r.status, 0, r.stderr);
            const [versions, codename] = r.stdout.trim().split("\n");
            const [server, api, client] = versions.split(" ");
            assert.ok(server.startsWith(`${ENGINES[engine].version}.`), `${n.name}: engine ${server}, asked for ${ENGINES[engine].version}`);
            assert.ok(client.startsWith(`${ENGINES[engine].version}.`), `${n.name}: CLI ${client}`);
            assert.equal(codename, ENGINES[engine].suite);
            const [major, minor] = api.split(".").map(Number);
            if (engine === "26") assert.ok(major > 1 || minor >= 45, `${n.name}: API ${api}`);
            else assert.equal(api, "1.41", `${n.name}: API ${api}`);
            assert.equal(state.apiVersion, api);
        }
    });

    test("up again changes nothing", { timeout: 10 * 60 * 1000 }, () => {
        const before = snapshot();
        const lj = fs.readFileSync(LAB_JSON, "utf8");
        const started = Date.now();
        const r = lab(["up"]);
        process.stdout.write(`# warm lab:up took ${Math.round((Date.now() - started) / 1000)}s\n`);
        assert.equal(r.status, 0, show(r));
        assert.match(r.stdout, /nothing changed/);
        assert.deepEqual(snapshot(), before);
        assert.equal(fs.readFileSync(LAB_JSON, "utf8"), lj);
    });

    test("status prints the node table and exits 0", () => {
        const r = lab(["status"], {}, { timeoutMs: 300000 });
        assert.equal(r.status, 0, show(r));
        const prefix = LAB.prefix.replace(/\./g, "\\.");
        for (let i = 1; i <= nodes; i++) assert.match(r.stdout, new RegExp(`vm${i}\\s+${prefix}${10 + i}\\s+ok\\s+${ENGINES[engine].version.replace(".", "\\.")}\\.\\S+\\s+\\S+`));
        assert.match(r.stdout, new RegExp(`nodes run Docker ${ENGINES[engine].version.replace(".", "\\.")}\\.\\S+ \\(API [\\d.]+\\), engine ${engine} \\(Debian ${ENGINES[engine].suite}\\)`));
    });
});

describe("lab: a second lab beside it, and its down", { skip: needsLab }, () => {
    // A one-node lab with its own name, made and removed while the lab under test runs: its range,
    // containers and state are its own, and its `down` leaves the other lab and the shared engine as
    // they were. It runs the engine the lab under test runs (its images are built already).
    const other = labInstance(LAB.name === "labtwin" ? "labtwin2" : "labtwin");
    const otherLab = (args: string[]) => spawnSync(process.execPath, ["--import", "tsx", CLI, ...args, "--name", other.name], {
        cwd: REPO, encoding: "utf8", env: { ...process.env, LAB_NAME: "", LAB_NODES: "", LAB_ENGINE: "" }, timeout: 15 * 60 * 1000, maxBuffer: 32 * 1024 * 1024,
    });
    after(() => {
        // down, not --purge: that would also drop the shared caches when no other lab is left
        otherLab(["down"]);
        fs.rmSync(other.stateDir, { recursive: true, force: true });
    });

    test("up --name: a lab of its own beside this one; another engine remakes its node, then it keeps that engine; down --name removes it alone and the engine keeps running", { timeout: 30 * 60 * 1000 }, () => {
        const engine = JSON.parse(fs.readFileSync(LAB_JSON, "utf8")).engine ?? "20";
        const before = snapshot();
        const started = Date.now();
        const up = otherLab(["up", "--nodes", "1", "--engine", engine]);
        process.stdout.write(`# second lab's up (1 node) took ${Math.round((Date.now() - started) / 1000)}s\n`);
        assert.equal(up.status, 0, show(up));
        const state = JSON.parse(fs.readFileSync(other.labJson, "utf8"));
        assert.equal(state.subnet, other.subnet);
        assert.notEqual(state.subnet, LAB.subnet);
        assert.deepEqual(state.nodes.map((n: { name: string; container: string; address: string }) => [n.name, n.container, n.address]), [["vm1", `${other.name}-vm1`, `${other.prefix}11`]]);
        const ssh = spawnSync("ssh", ["-i", other.keyFile, "-o", `UserKnownHostsFile=${other.knownHosts}`, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
            `root@${other.prefix}11`, "hostname; cat /etc/hosts"], { encoding: "utf8", timeout: 60000 });
        assert.equal(ssh.status, 0, ssh.stderr);
        assert.match(ssh.stdout, /^vm1\n/);
        assert.match(ssh.stdout, new RegExp(`^${other.prefix.replace(/\./g, "\\.")}11\tvm1$`, "m"));
        // this lab's key does not open the other lab's node
        const cross = spawnSync("ssh", ["-i", KEY_FILE, "-o", "IdentitiesOnly=yes", "-o", `UserKnownHostsFile=${other.knownHosts}`, "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes", `root@${other.prefix}11`, "true"], { encoding: "utf8", timeout: 60000 });
        assert.notEqual(cross.status, 0);
        assert.deepEqual({ ...snapshot(), forwardRule: before.forwardRule }, before, "this lab's containers, network, volumes and files as they were");

        // The other engine: its node is made again from the other node image, saying so (the first time
        // on a machine, that image is built); then up without --engine keeps it.
        const otherEngine = engine === "26" ? "20" : "26";
        const switched = otherLab(["up", "--nodes", "1", "--engine", otherEngine]);
        assert.equal(switched.status, 0, show(switched));
        const v = (s: string) => s.replace(".", "\\.");
        assert.match(switched.stdout, new RegExp(`${other.name}-vm1 runs Docker ${v(ENGINES[engine].version)} \\(Debian ${ENGINES[engine].suite}\\); ` +
            `the lab asks for ${v(ENGINES[otherEngine].version)} \\(Debian ${ENGINES[otherEngine].suite}\\): creating it again`));
        const version = spawnSync("ssh", ["-i", other.keyFile, "-o", `UserKnownHostsFile=${other.knownHosts}`, "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes",
            `root@${other.prefix}11`, "docker version --format '{{.Server.Version}}'"], { encoding: "utf8", timeout: 60000 });
        assert.equal(version.status, 0, version.stderr);
        assert.ok(version.stdout.startsWith(`${ENGINES[otherEngine].version}.`), `the node runs ${version.stdout.trim()}`);
        const kept = otherLab(["up", "--nodes", "1"]);
        assert.equal(kept.status, 0, show(kept));
        assert.match(kept.stdout, /nothing changed/);
        assert.equal(JSON.parse(fs.readFileSync(other.labJson, "utf8")).engine, otherEngine, "a lab keeps its engine when none is asked for");
        assert.deepEqual({ ...snapshot(), forwardRule: before.forwardRule }, before, "this lab as it was");

        const down = otherLab(["down"]);
        assert.equal(down.status, 0, show(down));
        assert.match(down.stdout, /the lab's dockerd keeps running: .*still use/);
        assert.equal(fs.existsSync(other.labJson), false);
        assert.equal(fs.existsSync(other.sharedDir), false);
        assert.equal(spawnSync("ip", ["link", "show", other.bridge]).status === 0, false, `bridge ${other.bridge} is gone`);
        assert.equal(spawnSync("iptables", ["-S", "FORWARD"], { encoding: "utf8" }).stdout.includes(other.bridge), false);
        assert.deepEqual(snapshot(), before, "this lab as it was");
        const st = lab(["status"], {}, { timeoutMs: 300000 });
        assert.equal(st.status, 0, show(st));
    });
});

describe("lab: down (LAB_TEST_DOWN=1)", { skip: needsLab ?? (process.env.LAB_TEST_DOWN !== "1" && "set LAB_TEST_DOWN=1 to take the shared lab down") }, () => {
    test("down leaves no container, network, volume or file of the lab; the engine and its processes go with the last lab", { timeout: 10 * 60 * 1000 }, () => {
        const r = lab(["down"], {}, { timeoutMs: 600000 });
        assert.equal(r.status, 0, show(r));
        const s = snapshot();
        assert.deepEqual(s.containers, []);
        assert.deepEqual(s.networks, []);
        assert.deepEqual(s.volumes, []);
        assert.equal(s.forwardRule, false);
        assert.equal(s.labJson, null);
        assert.equal(fs.existsSync(LAB.sharedDir), false);
        const st = lab(["status"], {}, { timeoutMs: 120000 });
        assert.notEqual(st.status, 0);
        assert.equal(spawnSync("ip", ["link", "show", BRIDGE]).status === 0, false, `bridge ${BRIDGE} is gone`);
        if (/keeps running/.test(r.stdout)) return; // another lab still runs on the engine
        assert.equal(s.runDir, false);
        const procs = fs
            .readdirSync("/proc")
            .filter((p) => /^\d+$/.test(p))
            .filter((p) => {
                try {
                    const c = fs.readFileSync(`/proc/${p}/cmdline`, "utf8");
                    return c.includes("/run/dccn-lab") || c.includes("/var/lib/dccn-lab") || c.includes("lab-init");
                } catch {
                    return false;
                }
            });
        assert.deepEqual(procs, []);
    });
});

after(() => {
    /* nothing to clean: every test cleans up what it made */
});
