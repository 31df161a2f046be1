/**
 * The cluster lock (lib/cluster-lock.ts, scripts/cluster-lock.sh): the pure parts, then the lock
 * itself against a REAL sshd on 127.0.0.1 (test/support/sshd.ts), with flock on this machine: a
 * second holder waits or is refused naming the first, a token hands the lock to a child, a holder
 * killed with SIGKILL or gone silent frees it within a bounded time.
 */
import { after, before, describe, it } from "node:test";
import * as assert from "node:assert/strict";
import { spawn, type ChildProcess } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
    acquireClusterLock, busyMessage, ClusterLockError, currentHolder, describeHolder, encodeHolder, lockNode, lockSwitchedOff, oneLine,
    parseHolder, parseLockLine, validateLockWait, DEFAULT_LOCK_WAIT_SEC,
} from "../../lib/cluster-lock";
import { closeConnections, type SshTarget } from "../../lib/ssh";
import { freePort, spawnSshd, sshdFiles } from "../support/sshd";
import { tempDir } from "./harness";

describe("cluster lock: pure parts", () => {
    it("lockWait: default, whole seconds, refusals name the key and the fix", () => {
        assert.equal(validateLockWait(undefined, "Pulumi.prod.yaml").value, DEFAULT_LOCK_WAIT_SEC);
        assert.equal(validateLockWait("300", "Pulumi.prod.yaml").value, 300);
        assert.equal(validateLockWait(0, "Pulumi.prod.yaml").value, 0);
        for (const bad of ["-1", "1.5", "ten", 1e9, true, "0x10"]) {
            const r = validateLockWait(bad, "Pulumi.prod.yaml");
            assert.equal(r.findings.length, 1, String(bad));
            assert.equal(r.findings[0].key, "lockWait");
            assert.match(r.findings[0].message, /pulumi config set --stack prod lockWait 300/);
        }
    });

    it("the holder's description survives the trip as one shell-safe line", () => {
        const h = { who: "root@admin 1", pid: 42, command: "pulumi up --stack prod\n--yes; rm -rf / `x` $(y)" };
        const line = encodeHolder(h);
        assert.match(line, /^[A-Za-z0-9=%._~!*'()-]+( [A-Za-z0-9=%._~!*'()-]+)*$/);
        const back = parseHolder(`${line} since=2026-12-07T10:00:00Z`);
        assert.equal(back.who, "root@admin 1");
        assert.equal(back.pid, 42);
        assert.equal(back.command, "pulumi up --stack prod --yes; rm -rf / `x` $(y)");
        assert.equal(back.since, "2026-12-07T10:00:00Z");
        assert.equal(parseHolder("garbage %E0%A4%A").who, "unknown");
        assert.equal(oneLine("x".repeat(500)).length, 300);
    });

    it("describes who holds it and since when", () => {
        const now = new Date("2026-12-07T10:03:00Z");
        const h = { who: "root@admin1", pid: 7, command: "pulumi up --stack prod", since: "2026-12-07T10:00:00Z" };
        assert.equal(describeHolder(h, now), "root@admin1 (pid 7: pulumi up --stack prod) since 2026-12-07T10:00:00Z (3 min ago)");
        const m = busyMessage("vm1", h, 120, "Pulumi.prod.yaml", now);
        assert.match(m, /cluster lock on vm1 is still held after waiting 120s by root@admin1 \(pid 7: pulumi up --stack prod\) since 2026-12-07T10:00:00Z/);
        assert.match(m, /dccn-swarm:lockWait` in Pulumi\.prod\.yaml/);
    });

    it("parses the script's answers", () => {
        assert.deepEqual(parseLockLine("DCCN_LOCK held"), { state: "held" });
        assert.equal(parseLockLine("DCCN_LOCK busy who=a%40b pid=3 command=x since=2026-01-01T00:00:00Z")?.state, "busy");
        assert.deepEqual(parseLockLine("DCCN_LOCK error=no-flock"), { state: "error", error: "no-flock" });
        assert.equal(parseLockLine("something else"), undefined);
    });

    it("the lock's node is the first configured manager; the switch", () => {
        assert.equal(lockNode({ nodes: [{ hostname: "w1", role: "worker" }, { hostname: "m2", role: "manager" }, { hostname: "m1", role: "manager" }] as never }), "m2");
        // A recovery from a surviving manager: the lock is kept there (the first one may be lost).
        assert.equal(lockNode({ nodes: [{ hostname: "m2", role: "manager" }, { hostname: "m1", role: "manager" }] as never, swarm: { forceNewCluster: "m1" } }), "m1");
        assert.equal(lockSwitchedOff({ DCCN_CLUSTER_LOCK: "off" }), true);
        assert.equal(lockSwitchedOff({}), false);
        assert.match(currentHolder("pulumi up").who, /@/);
    });
});

describe("cluster lock: against a real sshd", () => {
    // Removed when the test process ends, whatever happens (harness tempDir): no key stays in /tmp.
    const dir = tempDir("dccn-lock-test-");
    const lockDir = path.join(dir, "lock");
    let sshd: ChildProcess | undefined;
    let t: SshTarget;
    let keyFile = "";
    const holder = (command: string) => ({ who: "tester@here", pid: process.pid, command });

    before(async () => {
        const files = sshdFiles(dir);
        const port = await freePort();
        sshd = await spawnSshd(files.config, port);
        keyFile = files.clientKeyFile;
        t = { name: "m1", host: "127.0.0.1", port, user: os.userInfo().username, privateKey: files.clientKey, knownHosts: `[127.0.0.1]:${port} ${files.hostKey}`, connectTimeout: 5 };
    });
    after(async () => {
        await closeConnections();
        sshd?.kill("SIGKILL");
        fs.rmSync(dir, { recursive: true, force: true });
    });

    it("a second holder is refused naming the first, or gets it once the first releases", async () => {
        const first = await acquireClusterLock(t, { waitSec: 0, holder: holder("pulumi up --stack prod"), lockDir });
        assert.equal(first.inherited, false);
        const refused = await acquireClusterLock(t, { waitSec: 0, holder: holder("ops backup"), lockDir, stackFile: "Pulumi.prod.yaml" }).then(() => undefined, (e) => e);
        assert.ok(refused instanceof ClusterLockError, String(refused));
        assert.match(refused.message, /cluster lock on m1 is held by tester@here \(pid \d+: pulumi up --stack prod\) since \d{4}-\d\d-\d\dT/);
        // Waiting: the first releases after a second.
        let busySeen = false;
        const second = acquireClusterLock(t, { waitSec: 60, holder: holder("ops backup"), lockDir, onBusy: () => (busySeen = true) });
        // Released once the second is waiting (a channel takes a second or two to start on a busy machine).
        for (let i = 0; i < 200 && !busySeen; i++) await new Promise((r) => setTimeout(r, 100));
        assert.ok(busySeen, "the second one waits");
        const released = Date.now();
        await first.release();
        await (await second).release();
        assert.ok(Date.now() - released < 10_000);
    });

    it("hands the lock to a child that presents the holder's token, not to another", async () => {
        const parent = await acquireClusterLock(t, { waitSec: 0, holder: holder("ops reboot"), token: "tok-1", lockDir });
        const child = await acquireClusterLock(t, { waitSec: 0, holder: holder("pulumi up"), parentToken: "tok-1", lockDir });
        assert.equal(child.inherited, true);
        await assert.rejects(acquireClusterLock(t, { waitSec: 0, holder: holder("pulumi up"), parentToken: "tok-2", lockDir }), /held by tester@here \(pid \d+: ops reboot\)/);
        assert.equal(fs.statSync(path.join(lockDir, "token")).mode & 0o077, 0, "the token file is the owner's only");
        await parent.release();
    });

    it("a holder killed with SIGKILL frees the lock at once; a silent one after its heartbeat", async () => {
        const code = [
            "const { acquireClusterLock } = require(" + JSON.stringify(path.resolve(__dirname, "../../lib/cluster-lock.ts")) + ");",
            "const fs = require('fs');",
            "const t = JSON.parse(process.env.T); t.privateKey = fs.readFileSync(process.env.KEY_FILE, 'utf8');",
            "acquireClusterLock(t, { waitSec: 0, holder: { who: 'victim@here', pid: process.pid, command: 'doomed' }, lockDir: process.env.LOCK_DIR })",
            "  .then(() => { console.log('HELD'); setInterval(() => undefined, 1000); }, (e) => { console.error(e.message); process.exit(1); });",
        ].join("\n");
        const { privateKey: _key, ...noKey } = t;
        const victim = spawn(process.execPath, ["--import", "tsx", "-e", code], {
            env: { ...process.env, T: JSON.stringify(noKey), KEY_FILE: keyFile, LOCK_DIR: lockDir }, stdio: ["ignore", "pipe", "inherit"],
        });
        await new Promise<void>((resolve, reject) => {
            victim.stdout!.on("data", (d) => String(d).includes("HELD") && resolve());
            victim.once("exit", (c) => reject(new Error(`the victim exited ${c}`)));
        });
        await assert.rejects(acquireClusterLock(t, { waitSec: 0, holder: holder("x"), lockDir }), /held by victim@here \(pid \d+: doomed\)/);
        const killed = Date.now();
        victim.kill("SIGKILL");
        const next = await acquireClusterLock(t, { waitSec: 20, holder: holder("after the kill"), lockDir });
        const freedSec = (Date.now() - killed) / 1000;
        assert.ok(freedSec < 5, `freed after ${freedSec}s`);
        await next.release();

        // Silent: no heartbeat (its machine vanished without closing the connection).
        const silent = await acquireClusterLock(t, { waitSec: 0, holder: holder("silent"), lockDir, heartbeatSec: 2, heartbeatEverySec: 3600 });
        const t0 = Date.now();
        const again = await acquireClusterLock(t, { waitSec: 20, holder: holder("after silence"), lockDir });
        assert.ok((Date.now() - t0) / 1000 < 6);
        assert.match(await silent.lost, /closed/);
        await again.release();
    });

    it("an unreachable lock node is named with the way out", async () => {
        const e = await acquireClusterLock({ ...t, port: await freePort() }, { waitSec: 0, holder: holder("x"), lockDir }).then(() => undefined, (x) => x);
        assert.ok(e instanceof ClusterLockError);
        assert.match(e.message, /cannot take the cluster lock on m1 \(the first configured manager\): .*Connection refused.*DCCN_CLUSTER_LOCK=off/);
        assert.doesNotMatch(e.message, /PRIVATE KEY/);
    });
});
