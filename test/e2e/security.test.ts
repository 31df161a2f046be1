/**
 * Issue 17's drills: the swarm's own security lifecycle on the lab, through the real engine. Each
 * change previews as exactly one update of the swarm resource; none leaks a token or the unlock
 * key into the output of `up`, `ops`, `status` or the state; the suite leaves the lab converged
 * (autolock off again, the default certificate lifetime, the committed config).
 */
import { describe, test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import {
    changeCollector, editDevConfig, exportedState, labNodes, nodeTable, onNode, ops, quiet, runOnNode, skipOrFail, statusOf, swarmState, useLabSuite, waitFor,
} from "./support";

/** `npm run status -- --stack dev ARGS` against the suite's scratch copy, its output and error in one text. */
function status(dir: string, ...args: string[]): { status: number; out: string; stdout: string } {
    const r = statusOf(dir, "--stack", "dev", ...args);
    return { status: r.status, out: `${r.stdout}${r.stderr}`, stdout: r.stdout };
}

const CERTS = "/var/lib/docker/swarm/certificates";
/** A lab node's address (lab.json: whichever lab this suite runs on). */
const addressOf = (name: string) => labNodes().find((n) => n.name === name)!.address;

describe("swarm security drills on the lab (dev stack)", { concurrency: 1 }, () => {
    const suite = useLabSuite(before, after);
    const setSwarm = (sw: Record<string, unknown> | undefined) => editDevConfig(suite.dir, (c) => {
        if (sw === undefined) delete c["dccn-swarm:swarm"];
        else c["dccn-swarm:swarm"] = sw;
    });
    /** What a preview would change, by resource name. */
    async function previewChanges(): Promise<[string, string][]> {
        const c = changeCollector();
        await suite.stack.preview({ onEvent: c.onEvent, ...quiet });
        return [...c.changes];
    }
    /** `up`, returning everything it printed. */
    async function up(opts: { refresh?: boolean } = {}): Promise<string> {
        let log = "";
        await suite.stack.up({ ...opts, onOutput: (s: string) => { log += s; } });
        return log;
    }
    const autolocked = () => onNode("vm1", "docker info --format '{{.Swarm.Cluster.Spec.EncryptionConfig.AutoLockManagers}}'").trim();

    test("autolock: the unlock key a secret output; a restarted manager is locked, status says so, ops reboot unlocks it with the stored key; a rotation gives a new key", async (t) => {
        if (skipOrFail(t, suite.missing)) return;
        setSwarm({ autolock: true });
        assert.deepEqual(await previewChanges(), [["swarm-cluster", "update"]], "exactly the swarm's update");
        const log = await up();
        assert.equal(autolocked(), "true");
        const outputs = await suite.stack.outputs();
        const key = String(outputs.swarmUnlockKey?.value ?? "");
        assert.match(key, /^SWMKEY-1-/);
        assert.equal(outputs.swarmUnlockKey.secret, true, "a secret stack output");
        assert.equal(onNode("vm1", "docker swarm unlock-key -q").trim(), key, "the swarm's own key");
        assert.ok(!log.includes(key), "not in the output of up");
        assert.ok(!exportedState(suite.dir).includes(key), "not in plain text in the state");
        await suite.stack.preview({ expectNoChanges: true, ...quiet });

        // The manager's engine restarts (an update, a crash): it comes back locked.
        onNode("vm1", "systemctl restart docker");
        await waitFor("vm1 locked", () => swarmState("vm1") === "locked", 60);
        const s = status(suite.dir);
        assert.equal(s.status, 1, s.out);
        assert.match(s.out, new RegExp(`^vm1\\s+${addressOf("vm1").replace(/\./g, "\\.")}\\s+Locked\\b`, "m"));
        assert.match(s.out, /vm1 is locked \(autolock\): .*npm run ops -- unlock --stack dev/);
        assert.ok(!s.out.includes(key));

        // The program's reboot unlocks it with the stored key, and its `up --refresh` converges.
        const r = ops(suite.dir, "reboot", "--stack", "dev");
        assert.equal(r.status, 0, r.out);
        assert.match(r.out, /start the engine on vm1.*\n\s+engine was running; unlocked \(autolock\) with the stack's unlock key/);
        assert.ok(!r.out.includes(key), "not in the output of ops");
        assert.equal(swarmState("vm1"), "active");
        await suite.stack.preview({ expectNoChanges: true, ...quiet });

        // A new unlock key: one update of the swarm; the output follows the swarm's new key.
        setSwarm({ autolock: true, rotateUnlockKey: "drill" });
        assert.deepEqual(await previewChanges(), [["swarm-cluster", "update"]], "exactly the swarm's update");
        const rotateLog = await up();
        const rotated = String((await suite.stack.outputs()).swarmUnlockKey?.value ?? "");
        assert.match(rotated, /^SWMKEY-1-/);
        assert.notEqual(rotated, key, "a new key");
        assert.equal(onNode("vm1", "docker swarm unlock-key -q").trim(), rotated, "the swarm's own key is the output");
        assert.ok(!rotateLog.includes(rotated) && !exportedState(suite.dir).includes(rotated), "the new key in neither the output of up nor the state");
        await suite.stack.preview({ expectNoChanges: true, ...quiet });

        // Off again: the key is no output any more.
        setSwarm({ autolock: false });
        await up();
        assert.equal(autolocked(), "false");
        assert.equal("swarmUnlockKey" in await suite.stack.outputs(), false);
    });

    test("join tokens: rotation is one update of the swarm; a node joining with the old token is refused, one joining through the program succeeds", async (t) => {
        if (skipOrFail(t, suite.missing)) return;
        const token = (role: string) => onNode("vm1", `docker swarm join-token -q ${role}`).trim();
        const oldWorker = token("worker");
        const oldManager = token("manager");
        setSwarm({ rotateJoinTokens: "drill" });
        assert.deepEqual(await previewChanges(), [["swarm-cluster", "update"]]);
        const log = await up();
        const newWorker = token("worker");
        assert.notEqual(newWorker, oldWorker);
        assert.notEqual(token("manager"), oldManager);
        assert.ok(![newWorker, oldWorker].some((k) => log.includes(k) || exportedState(suite.dir).includes(k)), "no token in the output or the state");

        // vm3 leaves by hand; joining with the old token is refused (the token only on curl's standard input).
        onNode("vm3", "docker swarm leave --force >/dev/null");
        const body = { ListenAddr: "0.0.0.0:2377", AdvertiseAddr: addressOf("vm3"), RemoteAddrs: [`${addressOf("vm1")}:2377`], JoinToken: oldWorker };
        const join = runOnNode("vm3", "curl -sS --max-time 90 --unix-socket /var/run/docker.sock -H 'Content-Type: application/json' " +
            "--data-binary @- -w '\\n%{http_code}' http://localhost/v1.41/swarm/join", JSON.stringify(body));
        const code = join.stdout.trim().split("\n").pop();
        assert.notEqual(code, "200", `the old token is refused: ${join.stdout}`);
        assert.match(join.stdout, /valid join token is necessary/i);
        assert.equal(swarmState("vm3"), "inactive");

        // Through the program: once the manager lists vm3 as down (as `docker node ls` shows an
        // administrator), refresh finds it out of the swarm and up joins it with the current token.
        await waitFor("the manager lists vm3 as down", () => nodeTable().find((n) => n.hostname === "vm3")?.status === "Down", 90);
        await up({ refresh: true });
        assert.equal(swarmState("vm3"), "active");
        assert.equal(nodeTable().find((n) => n.hostname === "vm3" && n.status === "Ready")?.hostname, "vm3");
        await suite.stack.preview({ expectNoChanges: true, ...quiet });
    });

    test("CA rotation with a 720h certificate lifetime: one update of the swarm; every node's certificate from the new CA, with that lifetime", async (t) => {
        if (skipOrFail(t, suite.missing)) return;
        const caKey = () => JSON.parse(onNode("vm1", "docker info --format '{{json .Swarm.Cluster.TLSInfo}}'")).CertIssuerPublicKey as string;
        const rootOf = (n: string) => onNode(n, `openssl x509 -noout -fingerprint -sha256 -in ${CERTS}/swarm-root-ca.crt`).trim();
        const nodes = labNodes().map((n) => n.name);
        const caBefore = caKey();
        const tokenBefore = onNode("vm1", "docker swarm join-token -q worker").trim();
        const rootsBefore = Object.fromEntries(nodes.map((n) => [n, rootOf(n)]));
        setSwarm({ rotateCa: "drill", nodeCertExpiry: "720h" });
        assert.deepEqual(await previewChanges(), [["swarm-cluster", "update"]]);
        await up();
        const caAfter = caKey();
        assert.notEqual(caAfter, caBefore, "a new root CA");
        assert.notEqual(onNode("vm1", "docker swarm join-token -q worker").trim(), tokenBefore, "the join tokens carry the new CA's digest");
        const issuers = onNode("vm1", "docker node inspect $(docker node ls -q) --format '{{.Description.Hostname}} {{json .Description.TLSInfo.CertIssuerPublicKey}}'")
            .trim().split("\n").map((l) => l.split(" ")).map(([h, k]) => [h, JSON.parse(k) as string]);
        assert.deepEqual(issuers.map(([h]) => h).sort(), nodes);
        for (const [h, issuer] of issuers) assert.equal(issuer, caAfter, `${h}'s certificate is issued by the new CA`);
        for (const n of nodes) {
            // On the node's disk too: the new root, the node certificate verifying against it, 720 h (+1 h backdating).
            await waitFor(`${n}'s new root CA on disk`, () => rootOf(n) !== rootsBefore[n], 60);
            assert.match(onNode(n, `openssl verify -CAfile ${CERTS}/swarm-root-ca.crt ${CERTS}/swarm-node.crt`), /: OK$/m);
            const [start, end] = onNode(n, `for d in startdate enddate; do date -u -d "$(openssl x509 -noout -$d -in ${CERTS}/swarm-node.crt | cut -d= -f2)" +%s; done`)
                .trim().split("\n").map(Number);
            const hours = (end - start) / 3600;
            assert.ok(hours >= 720 && hours <= 722, `${n}: certificate lifetime ${hours} h`);
        }
        const s = status(suite.dir, "--json");
        const report = JSON.parse(s.stdout);
        assert.deepEqual([report.security.caRotationInProgress, report.security.nodeCertExpiryDays, report.security.nodesWithPreviousCa], [false, 30, []]);
        for (const n of report.nodes) {
            assert.equal(n.certificate.fromCurrentCa, true, n.hostname);
            assert.ok(n.certificate.daysLeft >= 29 && n.certificate.daysLeft <= 30, `${n.hostname} expires in ${n.certificate.daysLeft} days`);
        }
        await suite.stack.preview({ expectNoChanges: true, ...quiet });
        // Docker's default lifetime again (the committed config leaves the swarm's setting as it is).
        setSwarm({ nodeCertExpiry: "2160h" });
        await up();
        assert.equal(onNode("vm1", "docker info --format '{{.Swarm.Cluster.Spec.CAConfig.NodeCertExpiry}}'").trim(), "2160h0m0s");
        setSwarm(undefined);
        await suite.stack.preview({ expectNoChanges: true, ...quiet });
    });
});
