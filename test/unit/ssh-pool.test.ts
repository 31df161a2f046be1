/**
 * lib/ssh.ts's connection pool and engine-transport's API calls through it, against a REAL sshd
 * started here on 127.0.0.1 (throwaway host and client keys in a temporary directory). A missing
 * sshd or ssh-keygen fails these tests (it does not skip them).
 */
import { after, before, describe, it } from "node:test";
import * as assert from "node:assert/strict";
import { execFileSync, spawn, type ChildProcess } from "child_process";
import * as fs from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import { closeConnections, connectionStats, RemoteError, retryFirstContact, runChecked, runScript, warmConnection, type SshTarget } from "../../lib/ssh";
import { api, apiOk, findManager, sshTransport } from "../../lib/engine-transport";
import * as swarm from "../../lib/swarm-ops";
import { freePort, spawnSshd, sshdFiles } from "../support/sshd";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dccn-sshpool-test-"));
let port = 0;
let sshd: ChildProcess | undefined;
let port2 = 0;
let sshd2: ChildProcess | undefined;
let clientKey = "";
let hostLine = "";
let otherHostLine = "";

async function startSshd(): Promise<void> {
    sshd = await spawnSshd(path.join(dir, "sshd_config"), port);
}

async function stopSshd(): Promise<void> {
    if (!sshd || sshd.exitCode !== null) return;
    const p = sshd;
    const gone = new Promise((r) => p.once("exit", r));
    // The per-connection children go too (their connections drop), as when the node goes.
    for (const child of sessionProcesses()) {
        try { process.kill(child, "SIGKILL"); } catch { /* gone */ }
    }
    p.kill("SIGKILL");
    await gone;
}

/** The per-connection sshd processes (children of the listener we started). */
function sessionProcesses(): number[] {
    if (!sshd?.pid) return [];
    try {
        return execFileSync("pgrep", ["-P", String(sshd.pid)], { encoding: "utf8" }).trim().split("\n").filter(Boolean).map(Number);
    } catch {
        return [];
    }
}

function target(over: Partial<SshTarget> = {}): SshTarget {
    return { name: "local", host: "127.0.0.1", port, user: os.userInfo().username, privateKey: clientKey, knownHosts: hostLine, connectTimeout: 5, ...over };
}

before(async () => {
    const files = sshdFiles(dir);
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(dir, "other_host")]);
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(dir, "stranger")]);
    clientKey = files.clientKey;
    port = await freePort();
    const other = fs.readFileSync(path.join(dir, "other_host.pub"), "utf8").trim().split(/\s+/);
    hostLine = `[127.0.0.1]:${port} ${files.hostKey}`;
    otherHostLine = `[127.0.0.1]:${port} ${other[0]} ${other[1]}`;
    await startSshd();
    // A second sshd that refuses streamlocal forwards, with a `docker` whose `system dial-stdio`
    // joins the fake engine's socket (the fallback path, and swarm-ops' default socket).
    fs.mkdirSync(path.join(dir, "bin"));
    fs.writeFileSync(path.join(dir, "bin", "docker"), [
        "#!/bin/sh",
        `[ "$1 $2" = "system dial-stdio" ] || exit 9`,
        `exec ${process.execPath} -e 'const s=require("net").connect(process.argv[1]);process.stdin.pipe(s);s.pipe(process.stdout)' ${path.join(dir, "api.sock")}`,
        "",
    ].join("\n"), { mode: 0o755 });
    fs.writeFileSync(path.join(dir, "sshd_config_nofwd"), fs.readFileSync(path.join(dir, "sshd_config"), "utf8")
        .replace("AllowStreamLocalForwarding yes", `AllowStreamLocalForwarding no\nSetEnv PATH=${path.join(dir, "bin")}:/usr/bin:/bin`)
        .replace("sshd.pid", "sshd2.pid"));
    port2 = await freePort();
    sshd2 = await spawnSshd(path.join(dir, "sshd_config_nofwd"), port2);
});

after(async () => {
    await closeConnections();
    await stopSshd();
    sshd2?.kill("SIGKILL");
    fs.rmSync(dir, { recursive: true, force: true });
});

describe("the SSH pool (ssh2, real sshd)", () => {
    it("runs bash -s with the script on stdin and strict mode, and returns code, stdout, stderr", async () => {
        const r = await runScript(target(), "echo out; echo err >&2; read -r x <<<\"$0\"; printf '%s' \"$-\"; exit 3", 20);
        assert.equal(r.code, 3);
        assert.match(r.stdout, /^out\n/);
        assert.match(r.stdout, /e/); // set -e is on
        assert.equal(r.stderr, "err\n");
        const failed = await runScript(target(), "false; echo not reached", 20);
        assert.equal(failed.code, 1);
        assert.equal(failed.stdout, "");
        await assert.rejects(runChecked(target(), "a step", "echo why >&2; exit 4", 20), /local \(127\.0\.0\.1\): a step failed \(exit 4\): why/);
    });

    it("many calls, in parallel too, share one connection", async () => {
        const before = connectionStats()[`127.0.0.1:${port}`] ?? 0;
        for (let i = 0; i < 5; i++) assert.equal((await runChecked(target(), "echo", `echo ${i}`, 20)).trim(), String(i));
        const outs = await Promise.all(Array.from({ length: 25 }, (_, i) => runChecked(target({ name: `n${i}` }), "parallel", `sleep 0.2; echo ${i}`, 60)));
        assert.deepEqual(outs.map((o) => Number(o.trim())), Array.from({ length: 25 }, (_, i) => i));
        const after = connectionStats()[`127.0.0.1:${port}`] ?? 0;
        assert.ok(after - before <= 1, `opened ${after - before} connections`);
        assert.equal(after, 1, "one connection for the whole file so far");
    });

    it("the plain address form is accepted for a non-22 port, a key pinned for another port is not", async () => {
        const plain = hostLine.replace(`[127.0.0.1]:${port}`, "127.0.0.1");
        assert.equal((await runChecked(target({ knownHosts: plain }), "plain", "echo ok", 20)).trim(), "ok");
        const patterns = hostLine.replace(`[127.0.0.1]:${port}`, `example.org,[127.0.0.1]:${port}`);
        assert.equal((await runChecked(target({ knownHosts: `# comment\n${otherHostLine.replace(`:${port}`, ":1")}\n${patterns}` }), "patterns", "echo ok", 20)).trim(), "ok");
        const elsewhere = hostLine.replace(`[127.0.0.1]:${port}`, "[127.0.0.1]:2222");
        const e = await runScript(target({ knownHosts: elsewhere }), "true", 20).then(() => undefined, (x) => x);
        assert.equal((e as RemoteError).hostKeyMismatch, true);
    });

    it("a host key that is not the pinned one is refused with hostKeyMismatch (on a new and on a pooled connection), not retried", async () => {
        // Pooled connection exists for this key: the per-call check refuses.
        let t0 = Date.now();
        const e1 = await runScript(target({ knownHosts: otherHostLine }), "true", 20).then(() => undefined, (x) => x) as RemoteError;
        assert.ok(e1 instanceof RemoteError);
        assert.equal(e1.hostKeyMismatch, true);
        assert.match(e1.message, /^local \(127\.0\.0\.1\): host key verification failed: the node's SSH host key is not the pinned one; check the node/);
        // A new connection (another client key): the handshake refuses.
        const stranger = fs.readFileSync(path.join(dir, "stranger"), "utf8");
        t0 = Date.now();
        const e2 = await runScript(target({ knownHosts: otherHostLine, privateKey: stranger }), "true", 20).then(() => undefined, (x) => x) as RemoteError;
        assert.equal(e2.hostKeyMismatch, true);
        assert.ok(Date.now() - t0 < 3000, "not retried");
        assert.ok(!e2.message.includes("PRIVATE KEY"));
    });

    it("a refused key fails at once with the connection-failure wording, never naming the key", async () => {
        const stranger = fs.readFileSync(path.join(dir, "stranger"), "utf8");
        const t0 = Date.now();
        const e = await runScript(target({ privateKey: stranger }), "true", 20).then(() => undefined, (x) => x) as RemoteError;
        assert.match(e.message, /^local \(127\.0\.0\.1\): SSH connection failed: authentication as \S+ refused/);
        assert.equal(e.hostKeyMismatch, false);
        assert.ok(!e.message.includes(stranger.split("\n")[1]));
        assert.ok(Date.now() - t0 < 3000, "not retried");
    });

    it("a node never reached fails at once with the connection-failure wording", async () => {
        const closed = await freePort();
        const e = await runScript(target({ port: closed, knownHosts: hostLine }), "true", 20).then(() => undefined, (x) => x) as RemoteError;
        assert.match(e.message, new RegExp(`^local \\(127\\.0\\.0\\.1\\): SSH connection failed: connect to host 127\\.0\\.0\\.1 port ${closed}: Connection refused`));
    });

    it("a node never reached whose sshd is restarting: waited for when retryFirstContact is set (the provider sets it)", async () => {
        // sshd moves for a while to a port this process has not reached yet.
        const usual = port;
        await stopSshd();
        port = await freePort();
        const fresh = target({ knownHosts: hostLine.replace(`]:${usual} `, `]:${port} `) });
        retryFirstContact(15_000);
        try {
            setTimeout(() => { void startSshd(); }, 1500);
            assert.equal((await runChecked(fresh, "first contact", "echo hello", 60)).trim(), "hello");
        } finally {
            retryFirstContact(0);
            await new Promise((r) => setTimeout(r, 1600));
            await stopSshd();
            port = usual;
            await startSshd();
        }
    });

    it("the whole call's time limit", async () => {
        await assert.rejects(runScript(target(), "sleep 30", 1), /^RemoteError: local \(127\.0\.0\.1\): no answer within 1s|no answer within 1s/);
        assert.equal((await runChecked(target(), "after", "echo still", 20)).trim(), "still");
    });

    it("sshd killed and started again between calls: the next call reconnects", async () => {
        assert.equal((await runChecked(target(), "before", "echo a", 20)).trim(), "a");
        const opened = connectionStats()[`127.0.0.1:${port}`];
        await stopSshd();
        await startSshd();
        assert.equal((await runChecked(target(), "after restart", "echo b", 30)).trim(), "b");
        assert.equal(connectionStats()[`127.0.0.1:${port}`], opened + 1);
    });

    it("sshd restarting while a call starts: the call waits for it (retries a node reached before)", async () => {
        await stopSshd();
        setTimeout(() => { void startSshd(); }, 1500);
        assert.equal((await runChecked(target(), "while restarting", "echo back", 60)).trim(), "back");
    });

    it("a call in flight whose connection is killed is run again on a new connection", async () => {
        const mark = path.join(dir, "attempts");
        fs.rmSync(mark, { force: true });
        const call = runChecked(target(), "in flight", `echo x >> ${mark}; sleep 2; echo done`, 60);
        for (let i = 0; i < 50 && !fs.existsSync(mark); i++) await new Promise((r) => setTimeout(r, 100));
        const sessions = sessionProcesses();
        assert.ok(sessions.length > 0, "a per-connection sshd");
        for (const p of sessions) process.kill(p, "SIGKILL");
        assert.equal((await call).trim(), "done");
        assert.equal(fs.readFileSync(mark, "utf8"), "x\nx\n");
    });

    it("writes nothing under the temporary directory", async () => {
        const ours = path.basename(dir);
        // What the ssh(1)/curl implementation made (other processes on this machine write to /tmp too).
        const list = () => new Set(fs.readdirSync(os.tmpdir()).filter((n) => n !== ours && /^(dccn-ssh-|dccn-api\.|ssh-)/.test(n)));
        const before = list();
        for (let i = 0; i < 3; i++) await runChecked(target(), "tmp check", "true", 20);
        await closeConnections();
        await runChecked(target(), "tmp check, new connection", "true", 20);
        assert.deepEqual([...list()].filter((n) => !before.has(n)), []);
        // Strictly: a process with its own empty TMPDIR leaves it empty.
        const tmp = fs.mkdtempSync(path.join(dir, "tmpdir-"));
        await childRun(`await runScript(t, "true", 20);`, { TMPDIR: tmp });
        assert.deepEqual(fs.readdirSync(tmp).filter((n) => !n.startsWith("tsx-")), [], "only tsx's own cache (the child runs under tsx)");
    });

    it("a process that made a call exits by itself (the idle pooled connection does not hold it)", async () => {
        const { doneToExitMs, stdout } = await childRun(`const r = await runScript(t, "echo hi", 20); console.log(r.stdout.trim());`);
        assert.equal(stdout.trim().split("\n")[0], "hi");
        assert.ok(doneToExitMs < 1000, `exited ${doneToExitMs} ms after its work`);
    });
});

/** Run `body` in a child node process with `t` and runScript in scope; times when its work ended and when it exited. */
async function childRun(body: string, env: Record<string, string> = {}): Promise<{ stdout: string; doneToExitMs: number }> {
    const file = path.join(dir, `child-${Date.now()}.ts`);
    fs.writeFileSync(file, [
        `import { runScript } from ${JSON.stringify(path.resolve(__dirname, "../../lib/ssh"))};`,
        "const t = JSON.parse(process.env.DCCN_TEST_TARGET!);",
        "(async () => {",
        body,
        "process.stderr.write(`DONE ${Date.now()}\\n`);",
        "})();",
        "",
    ].join("\n"));
    const child = spawn(process.execPath, ["--import", "tsx", file], {
        env: { ...process.env, ...env, DCCN_TEST_TARGET: JSON.stringify(target()) }, stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout!.on("data", (d) => (stdout += d));
    child.stderr!.on("data", (d) => (stderr += d));
    const killer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    const code = await new Promise<number | null>((r) => child.on("exit", (c) => r(c)));
    const exited = Date.now();
    clearTimeout(killer);
    const m = /DONE (\d+)/.exec(stderr);
    assert.ok(m, `the child did its work (exit ${code}): ${stderr}`);
    assert.equal(code, 0, stderr);
    return { stdout, doneToExitMs: exited - Number(m[1]) };
}

describe("Engine API calls through the pooled connection (streamlocal forward to a Unix socket)", () => {
    let server: http.Server;
    const sock = path.join(dir, "api.sock");
    const seen: { method: string; url: string; headers: http.IncomingHttpHeaders; body: string }[] = [];
    let infoState = "active";
    let pendingCalls = 0;

    before(async () => {
        server = http.createServer((req, res) => {
            let body = "";
            req.on("data", (d) => (body += d));
            req.on("end", () => {
                seen.push({ method: req.method!, url: req.url!, headers: req.headers, body });
                const json = (status: number, v: unknown) => {
                    res.writeHead(status, { "Content-Type": "application/json" });
                    res.end(JSON.stringify(v));
                };
                if (req.url === "/version") return json(200, { ApiVersion: "1.43", Version: "24.0.7" });
                if (req.url?.endsWith("/info")) {
                    const state = infoState === "pending-then-active" && pendingCalls++ < 1 ? "pending" : infoState === "pending-then-active" ? "active" : infoState;
                    return json(200, { Swarm: { LocalNodeState: state, ControlAvailable: state === "active", NodeID: "n1", NodeAddr: "10.0.0.1", Cluster: { ID: "c1" }, Managers: 1, RemoteManagers: [{ Addr: "10.0.0.1:2377" }] } });
                }
                if (req.url?.endsWith("/nodes")) return json(200, []);
                if (req.url?.startsWith("/v1.41/missing")) return json(404, { message: "no such thing" });
                if (req.url?.startsWith("/v1.41/text")) {
                    res.writeHead(200, { "Content-Type": "text/plain" });
                    return res.end("plain text\n");
                }
                return json(201, { Id: "abc", got: body ? JSON.parse(body) : null });
            });
        });
        await new Promise<void>((r) => server.listen(sock, r));
    });

    after(async () => {
        await new Promise((r) => server.close(r));
    });

    it("api(): version prefix, query verbatim, body, secret header only in the request, any status", async () => {
        const t = sshTransport(target(), sock);
        const opened = connectionStats()[`127.0.0.1:${port}`];
        const body = { Name: "x", Env: ["P=it's $HOME `x`"] };
        const r = await api(t, { method: "POST", path: "/services/create?x=1&filters=%7B%22a%22%3A1%7D", body, headers: { "X-Registry-Auth": "c2VjcmV0" } });
        assert.equal(r.status, 201);
        assert.deepEqual(r.json, { Id: "abc", got: body });
        const got = seen.at(-1)!;
        assert.equal(got.url, "/v1.41/services/create?x=1&filters=%7B%22a%22%3A1%7D");
        assert.equal(got.headers["x-registry-auth"], "c2VjcmV0");
        assert.equal(got.headers["content-type"], "application/json");
        assert.deepEqual(JSON.parse(got.body), body);

        const missing = await api(t, { method: "DELETE", path: "/missing/1" });
        assert.equal(missing.status, 404);
        assert.equal(missing.json.message, "no such thing");
        await assert.rejects(apiOk(t, { method: "GET", path: "/missing/2" }, "reading a thing"), /local \(127\.0\.0\.1\): reading a thing failed \(HTTP 404\): no such thing/);
        const text = await api(t, { method: "GET", path: "/text" });
        assert.deepEqual([text.status, text.text, text.json], [200, "plain text\n", undefined]);
        const post = await api(t, { method: "POST", path: "/services/abc/update?version=3" });
        assert.equal(seen.at(-1)!.body, "");
        assert.equal(post.status, 201);

        const many = await Promise.all(Array.from({ length: 30 }, () => api(t, { method: "GET", path: "/version" }, true)));
        assert.ok(many.every((m) => m.status === 200 && m.json.ApiVersion === "1.43"));
        assert.equal(connectionStats()[`127.0.0.1:${port}`], opened, "no new SSH connection for API calls");
    });

    it("a socket that is not there: a RemoteError naming the call", async () => {
        const t = sshTransport(target(), path.join(dir, "nothing.sock"));
        await assert.rejects(api(t, { method: "GET", path: "/info" }), (e: Error) => e instanceof RemoteError && /^local \(127\.0\.0\.1\): GET \/info: /.test(e.message));
    });

    it("findManager (both modules): one implementation over the Engine API, honouring exclude; dial-stdio when streamlocal is refused", async () => {
        infoState = "active";
        const t = await findManager([sshTransport(target(), sock)]);
        assert.equal(t.apiVersion, "1.41");
        // swarm-ops' findManager speaks to /var/run/docker.sock: the second sshd refuses the
        // forward, so the call goes through its fake `docker system dial-stdio` to our server.
        const opened = connectionStats()[`127.0.0.1:${port2}`] ?? 0;
        const line = hostLine.replace(`:${port}`, `:${port2}`);
        const h = await swarm.findManager([target({ name: "m1", port: port2, knownHosts: line }), target({ name: "m2", port: port2, knownHosts: line })], "m1");
        assert.equal(h.target.name, "m2");
        assert.deepEqual(h.info, { state: "active", nodeId: "n1", nodeAddr: "10.0.0.1", controlAvailable: true, clusterId: "c1", managers: 1, engineVersion: "24.0.7", remoteManagers: ["10.0.0.1"] });
        // The version, the swarm state and the quorum asked at once, in the engine's own API version.
        assert.deepEqual(seen.slice(-3).map((r) => r.url).sort(), ["/info", "/nodes", "/version"]);
        assert.equal(connectionStats()[`127.0.0.1:${port2}`], opened + 1);
    });

    it("findManager waits for a pending manager, and fails with the forceNewCluster hint when there is none", async () => {
        // swarm-ops' findManager talks to /var/run/docker.sock; this module's to any socket.
        infoState = "pending-then-active";
        pendingCalls = 0;
        const t0 = Date.now();
        await findManager([sshTransport(target(), sock)], { settleSec: 20 });
        assert.ok(Date.now() - t0 >= 2500, "waited for the pending state to settle");
        infoState = "inactive";
        await assert.rejects(findManager([sshTransport(target(), sock)], { settleSec: 20 }),
            /^RemoteError: no reachable swarm manager with a quorum: local \(127\.0\.0\.1\): not a manager \(swarm state inactive\)\. If a majority of managers is lost for good, set `swarm\.forceNewCluster`|no reachable swarm manager with a quorum: local \(127\.0\.0\.1\): not a manager \(swarm state inactive\)\. If a majority/);
    });

    it("warmConnection opens the pooled connection ahead of the first call, which reuses it; an unreachable node is left for the call to report", async () => {
        const config = path.join(dir, "sshd_config_warm");
        fs.writeFileSync(config, fs.readFileSync(path.join(dir, "sshd_config"), "utf8").replace("sshd.pid", "sshd3.pid"));
        const port3 = await freePort();
        const sshd3 = await spawnSshd(config, port3);
        try {
            const t = target({ name: "warm", port: port3, knownHosts: hostLine.replace(`:${port}`, `:${port3}`) });
            assert.equal(connectionStats()[`127.0.0.1:${port3}`] ?? 0, 0);
            warmConnection(t);
            const until = Date.now() + 10_000;
            while ((connectionStats()[`127.0.0.1:${port3}`] ?? 0) === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
            assert.equal(connectionStats()[`127.0.0.1:${port3}`], 1, "connected with no call made");
            assert.equal((await runChecked(t, "after warming", "echo warm", 20)).trim(), "warm");
            assert.equal(connectionStats()[`127.0.0.1:${port3}`], 1, "the call used the warmed connection");
        } finally {
            sshd3.kill("SIGKILL");
        }
        const closed = await freePort();
        const t = target({ name: "nobody", port: closed, knownHosts: hostLine.replace(`:${port}`, `:${closed}`) });
        warmConnection(t); // no throw, no unhandled rejection
        const started = Date.now();
        await assert.rejects(runScript(t, "true", 20), (e: Error) => e instanceof RemoteError && /nobody \(127\.0\.0\.1\)/.test(e.message));
        assert.ok(Date.now() - started < 5000, "the call reports the refused connection at once");
    });
});
