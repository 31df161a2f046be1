// Tests of the local lab (lab/cli.ts): input checks, then up / idempotent up / status, and
// (only with LAB_TEST_DOWN=1, since other suites share the lab) down.
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
import { conflictingRoutes, overlaps, parseArgs } from "../../lab/cli";
import { ENGINE_SOCKET, KNOWN_HOSTS, KEY_FILE, LAB_JSON, RUN_DIR, LABEL, SYSTEM_SOCKET, BRIDGE } from "../../lab/config";

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
    const argv = ["--import", "tsx", CLI, ...args];
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

function labelled(kind: "ps" | "network" | "volume"): string[] {
    const out: string[] = [];
    for (const host of engineHosts()) {
        const args = kind === "ps" ? ["ps", "-a", "--filter", `label=${LABEL}`, "--format", "{{.ID}} {{.Names}}"] : [kind, "ls", "--filter", `label=${LABEL}`, "--format", "{{.Name}}"];
        const r = spawnSync("docker", args, { encoding: "utf8", env: { ...process.env, DOCKER_HOST: host }, timeout: 30000 });
        if (r.status === 0) out.push(...r.stdout.split("\n").filter(Boolean).map((l) => `${host} ${l}`));
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
    test("subnet overlap", () => {
        assert.ok(overlaps("172.28.213.0/24", "172.28.0.0/16"));
        assert.ok(overlaps("172.28.213.240/28", "172.28.213.0/24"));
        assert.ok(!overlaps("172.28.214.0/24", "172.28.213.0/24"));
        assert.deepEqual(conflictingRoutes([{ dst: "default", dev: "eth0" }, { dst: "172.28.213.0/24", dev: BRIDGE }, { dst: "10.0.0.0/8", dev: "eth0" }]), []);
        assert.deepEqual(conflictingRoutes([{ dst: "172.28.0.0/16", dev: "br-x" }]), ["172.28.0.0/16 dev br-x"]);
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
            assert.equal(ip("addr", "add", "172.28.213.241/28", "dev", dev).status, 0);
            assert.equal(ip("link", "set", dev, "up").status, 0);
            const before = snapshot();
            const r = lab(["up"], {}, { timeoutMs: 120000 });
            assert.equal(r.status, 6, show(r));
            assert.match(r.stderr, /172\.28\.213\.0\/24 is already in use/);
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

    test("up gives N nodes reachable over SSH with the generated key, engines running", { timeout: 50 * 60 * 1000 }, () => {
        wasUp = labIsUp();
        const started = Date.now();
        firstUp = lab(["up"]);
        const secs = Math.round((Date.now() - started) / 1000);
        assert.equal(firstUp.status, 0, show(firstUp));
        process.stdout.write(`# lab:up took ${secs}s (lab was ${wasUp ? "already up" : "not up"})\n`);
        const state = JSON.parse(fs.readFileSync(LAB_JSON, "utf8"));
        assert.equal(state.network, "dccn-lab");
        assert.equal(state.subnet, "172.28.213.0/24");
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
            assert.equal(n.address, `172.28.213.${11 + i}`);
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
        for (let i = 1; i <= nodes; i++) assert.match(r.stdout, new RegExp(`vm${i}\\s+172\\.28\\.213\\.${10 + i}\\s+ok\\s+\\S+\\s+\\S+`));
    });
});

describe("lab: down (LAB_TEST_DOWN=1)", { skip: needsLab ?? (process.env.LAB_TEST_DOWN !== "1" && "set LAB_TEST_DOWN=1 to take the shared lab down") }, () => {
    test("down leaves no container, network, volume or process of the lab", { timeout: 10 * 60 * 1000 }, () => {
        const r = lab(["down"], {}, { timeoutMs: 600000 });
        assert.equal(r.status, 0, show(r));
        const s = snapshot();
        assert.deepEqual(s.containers, []);
        assert.deepEqual(s.networks, []);
        assert.deepEqual(s.volumes, []);
        assert.equal(s.forwardRule, false);
        assert.equal(s.runDir, false);
        assert.equal(s.labJson, null);
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
        const st = lab(["status"], {}, { timeoutMs: 120000 });
        assert.notEqual(st.status, 0);
        assert.equal(spawnSync("ip", ["link", "show", BRIDGE]).status === 0, false, `bridge ${BRIDGE} is gone`);
    });
});

after(() => {
    /* nothing to clean: every test cleans up what it made */
});
