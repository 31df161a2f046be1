// The status CLI (tools/status.ts) against the running lab, read-only.
//
// The lab is shared: other suites init, join, leave and destroy its swarm while this runs. So these
// tests change nothing on the nodes and assert only what holds whatever the swarm looks like: every
// lab node answers, the JSON has its shape, the exit status agrees with `healthy`, a node whose
// engine is out of the swarm (before and after the run) is reported not Ready, a node whose SSH does
// not answer is Down within the connect timeout, and the registry check runs on a manager.
//
// Without the lab these tests skip; under CI=true they fail.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import * as fs from "node:fs";
import * as https from "node:https";
import { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import * as yaml from "js-yaml";
import { devStackText, workLab } from "../../tools/workspace";

// The lab these tests read (LAB_NAME's, else the default one) and its facts.
const LAB = workLab();
const { gateway: GATEWAY, keyFile: KEY_FILE, knownHosts: KNOWN_HOSTS, labJson: LAB_JSON } = LAB;

const ROOT = path.resolve(__dirname, "..", "..");
const CI = process.env.CI === "true";

function labMissing(): string | undefined {
    for (const f of [LAB_JSON, KEY_FILE, KNOWN_HOSTS]) {
        if (!fs.existsSync(f)) return `the lab is not up (${path.relative(ROOT, f)} is missing); run \`npm run lab:up\``;
    }
    if (!fs.existsSync(path.join(ROOT, "Pulumi.dev.yaml"))) return "Pulumi.dev.yaml is missing";
    return undefined;
}
const missing = labMissing();
if (missing && CI) {
    test("status against the lab: prerequisites", () => {
        assert.fail(`prerequisite missing in CI: ${missing}`);
    });
}
// In CI the test above fails; the suite itself is skipped either way rather than failing on each step.
const skip: string | false = missing ?? false;

interface Run {
    code: number | null;
    stdout: string;
    stderr: string;
    ms: number;
}

/** Run the CLI asynchronously (the test's own TLS server must keep answering meanwhile). */
function status(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
    const started = Date.now();
    return new Promise((resolve) => {
        const child = spawn(process.execPath, ["--import", "tsx", path.join(ROOT, "tools", "status.ts"), ...args], {
            cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"],
        });
        let stdout = "";
        let stderr = "";
        child.stdout.on("data", (d) => (stdout += d));
        child.stderr.on("data", (d) => (stderr += d));
        const timer = setTimeout(() => child.kill("SIGKILL"), 240_000);
        child.on("close", (code) => {
            clearTimeout(timer);
            resolve({ code, stdout, stderr, ms: Date.now() - started });
        });
    });
}

const show = (r: Run) => `exit ${r.code} after ${r.ms} ms\n--- stdout\n${r.stdout.slice(0, 6000)}\n--- stderr\n${r.stderr.slice(0, 3000)}`;

interface LabNode { name: string; address: string }
const labNodes = (): LabNode[] => JSON.parse(fs.readFileSync(LAB_JSON, "utf8")).nodes;

/** A node's own swarm state (docker info), read-only; "unreachable" when SSH does not answer. */
function localState(n: LabNode): Promise<string> {
    return new Promise((resolve) => {
        execFile("ssh", ["-i", KEY_FILE, "-o", `UserKnownHostsFile=${KNOWN_HOSTS}`, "-o", "StrictHostKeyChecking=yes",
            "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR", `root@${n.address}`,
            "docker info --format '{{.Swarm.LocalNodeState}}'"], { timeout: 60_000 }, (err, stdout) => {
            resolve(err ? "unreachable" : stdout.trim());
        });
    });
}
const localStates = async () => Object.fromEntries(await Promise.all(labNodes().map(async (n) => [n.name, await localState(n)] as const)));

function devConfig(): Record<string, any> {
    return (yaml.load(devStackText()) as { config: Record<string, any> }).config;
}

/** A scratch project holding one stack file derived from Pulumi.dev.yaml. */
function scratchStack(name: string, edit: (c: Record<string, any>) => void): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dccn-status-"));
    const config = devConfig();
    config["dccn-swarm:ssh"] = { ...config["dccn-swarm:ssh"], privateKeyFile: KEY_FILE, knownHostsFile: KNOWN_HOSTS };
    edit(config);
    fs.writeFileSync(path.join(dir, `Pulumi.${name}.yaml`), yaml.dump({ config }));
    return dir;
}

const NODE_STATES = ["Ready", "Down", "Absent", "Unknown"];

/** The JSON report's shape and its internal consistency, whatever the swarm looks like. */
function checkReport(r: Run, j: any): void {
    assert.ok(r.code === 0 || r.code === 1, show(r));
    assert.equal(r.code, j.healthy ? 0 : 1, "exit status agrees with healthy\n" + show(r));
    assert.equal(typeof j.healthy, "boolean");
    assert.equal(j.healthy, j.problems.length === 0, "healthy exactly when there is no problem");
    for (const k of ["project", "stack", "environment", "checkedAt", "problems", "warnings", "swarm", "quorum", "nodes", "services", "registry"]) {
        assert.ok(k in j, `report field ${k}`);
    }
    for (const n of j.nodes) {
        assert.ok(NODE_STATES.includes(n.state), `${n.hostname}: state ${n.state}`);
        assert.equal(n.ready, n.state === "Ready");
        if (n.ready) {
            assert.equal(n.ssh.ok, true, `${n.hostname} Ready implies SSH answered`);
            assert.equal(n.localSwarmState, "active", `${n.hostname} Ready implies its engine is in a swarm`);
            assert.equal(n.swarmStatus, "ready");
        }
        if (n.configured && !n.ssh.ok) assert.equal(n.state, "Down", `${n.hostname}: SSH not answering is Down`);
        if (n.localSwarmState === "inactive") assert.equal(n.state, "Absent", `${n.hostname}: out of the swarm is Absent`);
        if (n.configured && !n.ready) assert.ok(j.problems.some((p: string) => p.startsWith(n.hostname)), `${n.hostname} not Ready is a problem`);
    }
    const q = j.quorum;
    for (const k of ["managers", "configuredManagers", "reachable", "needed", "margin", "ok"]) assert.ok(k in q, `quorum field ${k}`);
    assert.equal(q.margin, q.reachable - q.needed);
    if (q.ok) {
        assert.ok(q.reachable >= q.needed && typeof q.leader === "string", JSON.stringify(q));
        assert.equal(j.swarm.exists, true);
    } else {
        assert.equal(j.healthy, false);
    }
    for (const s of j.services) {
        assert.equal(typeof s.name, "string");
        assert.ok(s.running >= 0);
        if (s.desired !== undefined && s.desired !== null) assert.equal(s.healthy, s.running === s.desired, `service ${s.name}`);
    }
}

describe("status against the lab (read-only)", { skip, concurrency: false }, () => {
    let tlsServer: https.Server | undefined;
    let tlsPort = 0;
    let tmp = "";

    before(async () => {
        // A stand-in registry on the lab's gateway: a self-signed certificate valid 30 days, /v2/ answering 401.
        tmp = fs.mkdtempSync(path.join(os.tmpdir(), "dccn-status-tls-"));
        await new Promise<void>((resolve, reject) => execFile("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-nodes", "-days", "30", "-subj", `/CN=${GATEWAY}`, "-keyout", path.join(tmp, "key.pem"), "-out", path.join(tmp, "cert.pem")],
        (err) => (err ? reject(err) : resolve())));
        tlsServer = https.createServer({ key: fs.readFileSync(path.join(tmp, "key.pem")), cert: fs.readFileSync(path.join(tmp, "cert.pem")) }, (req, res) => {
            res.writeHead(req.url === "/v2/" ? 401 : 404, { "Docker-Distribution-Api-Version": "registry/2.0", "WWW-Authenticate": 'Basic realm="test"' });
            res.end("{}");
        });
        await new Promise<void>((resolve, reject) => {
            tlsServer?.once("error", reject);
            tlsServer?.listen(0, GATEWAY, () => resolve());
        });
        tlsPort = (tlsServer.address() as AddressInfo).port;
    });

    after(() => {
        tlsServer?.close();
        if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    });

    test("npm run status -- --stack dev --json --svg: every lab node answers; shape and exit status agree", { timeout: 600_000 }, async () => {
        const svgFile = path.join(tmp, "cluster.svg");
        // Other suites stop and restart lab nodes; wait (a bounded while) for a run in which all three answer.
        let r: Run | undefined;
        let j: any;
        let before: Record<string, string> = {};
        let afterStates: Record<string, string> = {};
        for (let attempt = 0; attempt < 5; attempt++) {
            if (attempt > 0) await new Promise((res) => setTimeout(res, 15_000));
            before = await localStates();
            r = await status(["--stack", "dev", "--json", "--svg", svgFile]);
            afterStates = await localStates();
            j = JSON.parse(r.stdout);
            checkReport(r, j);
            if (j.nodes.filter((n: any) => n.configured).every((n: any) => n.ssh.ok)) break;
        }
        assert.ok(r);
        const names = labNodes().map((n) => n.name);
        assert.deepEqual(j.nodes.filter((n: any) => n.configured).map((n: any) => n.hostname), names);
        for (const n of j.nodes.filter((x: any) => x.configured)) {
            assert.equal(n.ssh.ok, true, `${n.hostname} reachable over SSH\n${show(r)}`);
            assert.match(n.engineVersion ?? "", /^\d+\.\d+/, `${n.hostname} engine version`);
            // Ground truth read separately: a node out of the swarm before and after the run is not Ready.
            if (before[n.hostname] === "inactive" && afterStates[n.hostname] === "inactive") {
                assert.equal(n.state, "Absent", `${n.hostname} is out of the swarm\n${show(r)}`);
                assert.equal(n.ready, false);
            }
            // (A node whose engine says active may still be Absent: left behind in a swarm that a
            // recovery drill replaced. So nothing is asserted for that case.)
        }
        assert.equal(j.stack, "dev");
        assert.equal(j.environment, "dev");
        const reg = devConfig()["dccn-swarm:registry"];
        if (reg === undefined) assert.deepEqual(j.registry, { configured: false, status: "not configured", healthy: true, problems: [] });
        else assert.equal(j.registry.host, reg.host);

        const svg = fs.readFileSync(svgFile, "utf8");
        assert.match(svg, /^<\?xml version="1.0" encoding="UTF-8"\?>\n<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
        assert.match(svg, /<\/svg>\n$/);
        assert.equal((svg.match(/<g[\s>]/g) ?? []).length, (svg.match(/<\/g>/g) ?? []).length, "balanced groups");
        for (const n of j.nodes) assert.ok(svg.includes(`id="node-${n.hostname}"`), `SVG shows ${n.hostname}`);
        for (const s of j.services) assert.ok(svg.includes(`>${s.name}`), `SVG shows service ${s.name}`);

        // The table agrees with the JSON on health.
        const t = await status(["--stack", "dev"]);
        assert.ok(t.code === 0 || t.code === 1, show(t));
        assert.match(t.stdout, /^dccn-swarm status: stack dev \(environment dev\) at \S+: (HEALTHY|UNHEALTHY)\n/);
        assert.equal(t.code === 0, /: HEALTHY\n/.test(t.stdout));
        for (const name of names) assert.match(t.stdout, new RegExp(`^${name}\\s`, "m"));
        assert.match(t.stdout, /^MANAGERS {2}/m);
        assert.match(t.stdout, /^REGISTRY {2}/m);
    });

    test("a node whose SSH does not answer is Down within the connect timeout; the registry is checked on a manager", { timeout: 300_000 }, async () => {
        const project = scratchStack("statuslab", (c) => {
            c["dccn-swarm:ssh"].connectTimeout = 3;
            c["dccn-swarm:nodes"].push({
                hostname: "vm-gone", address: `${LAB.prefix}250`, role: "worker",
                hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIStatusLabTestNoSuchHost000000000000000000",
            });
            c["dccn-swarm:registry"] = { host: GATEWAY, port: tlsPort };
        });
        try {
            const r = await status(["--project", project, "--stack", "statuslab", "--json"]);
            const j = JSON.parse(r.stdout);
            checkReport(r, j);
            assert.equal(r.code, 1, show(r));
            const gone = j.nodes.find((n: any) => n.hostname === "vm-gone");
            assert.equal(gone.state, "Down");
            assert.equal(gone.ready, false);
            assert.equal(gone.ssh.ok, false);
            assert.match(gone.ssh.error, new RegExp(`${LAB.prefix.replace(/\./g, "\\.")}250`));
            assert.ok(j.problems.some((p: string) => p.startsWith("vm-gone is Down: ")), j.problems.join("\n"));
            // connectTimeout is 3 s; the whole check must not wait much longer than the slowest live node.
            assert.ok(r.ms < 60_000, `took ${r.ms} ms`);

            // The registry: checked on a node (a manager when there is one), answering 401, with a
            // certificate the node does not trust (no certs.d CA for it) and 29-30 days left.
            const g = j.registry;
            assert.equal(g.configured, true);
            assert.equal(g.host, GATEWAY);
            assert.equal(g.port, tlsPort);
            assert.equal(g.url, `https://${GATEWAY}:${tlsPort}/v2/`);
            assert.ok(labNodes().some((n) => n.name === g.checkedFrom), `checked from a lab node: ${g.checkedFrom}`);
            if (j.swarm.readFrom) assert.equal(g.checkedFrom, j.swarm.readFrom, "checked on the manager with the quorum");
            else assert.equal(g.checkedFrom, "vm1", "no quorum: checked on the configured manager");
            assert.equal(g.httpStatus, 401, JSON.stringify(g));
            assert.equal(g.answering, true);
            assert.equal(g.tlsVerified, false);
            assert.ok(g.certDaysLeft === 29 || g.certDaysLeft === 30, `days left ${g.certDaysLeft}`);
            assert.match(g.certNotAfter, /GMT$/);
            assert.equal(g.healthy, false);
            assert.ok(j.problems.some((p: string) => /its TLS certificate does not verify/.test(p)), j.problems.join("\n"));

            // Nothing listening on the registry port: not answering, and said so.
            const closed = scratchStack("statuslab", (c) => {
                c["dccn-swarm:registry"] = { host: GATEWAY, port: 9 };
            });
            try {
                const r2 = await status(["--project", closed, "--stack", "statuslab", "--json"]);
                const j2 = JSON.parse(r2.stdout);
                checkReport(r2, j2);
                assert.equal(r2.code, 1);
                assert.equal(j2.registry.answering, false, JSON.stringify(j2.registry));
                assert.ok(j2.problems.some((p: string) => /does not answer 200 or 401/.test(p)), j2.problems.join("\n"));
            } finally {
                fs.rmSync(closed, { recursive: true, force: true });
            }
        } finally {
            fs.rmSync(project, { recursive: true, force: true });
        }
    });

    test("the secret-key case: --key or DCCN_SSH_KEY_FILE, else a clear error and exit 2", { timeout: 300_000 }, async () => {
        const project = scratchStack("statussecret", (c) => {
            delete c["dccn-swarm:ssh"].privateKeyFile;
            c["dccn-swarm:sshPrivateKey"] = { secure: "v1:c3RhdHVzLXRlc3Q=" };
        });
        try {
            const none = await status(["--project", project, "--stack", "statussecret"], { DCCN_SSH_KEY_FILE: "" });
            assert.equal(none.code, 2, show(none));
            assert.match(none.stderr, /sshPrivateKey.*--key FILE or DCCN_SSH_KEY_FILE/);
            const noneJson = await status(["--project", project, "--stack", "statussecret", "--json"], { DCCN_SSH_KEY_FILE: "" });
            assert.equal(noneJson.code, 2);
            assert.equal(JSON.parse(noneJson.stdout).healthy, false);
            for (const [args, env] of [[["--key", KEY_FILE], { DCCN_SSH_KEY_FILE: "" }], [[], { DCCN_SSH_KEY_FILE: KEY_FILE }]] as const) {
                const r = await status(["--project", project, "--stack", "statussecret", "--json", ...args], env);
                const j = JSON.parse(r.stdout);
                checkReport(r, j);
                // At least one node answered with that key (others may be restarting under another suite).
                assert.ok(j.nodes.some((n: any) => n.ssh.ok), show(r));
            }
        } finally {
            fs.rmSync(project, { recursive: true, force: true });
        }
    });

    test("bad usage and an unknown stack exit 2 without touching a node", async () => {
        const r = await status([]);
        assert.equal(r.code, 2);
        assert.match(r.stderr, /--stack is required/);
        const u = await status(["--stack", "no-such-stack"]);
        assert.equal(u.code, 2);
        assert.match(u.stderr, /Pulumi\.no-such-stack\.yaml does not exist; name an existing stack with --stack \(.*dev.*\)/);
        const h = await status(["--help"]);
        assert.equal(h.code, 0);
        assert.match(h.stdout, /usage: npm run status -- --stack <env>/);
    });
});
