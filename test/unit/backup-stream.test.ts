/**
 * Swarm-state backups as streams (issue 15): the ops arguments, what is refused before a node is
 * touched (recipients, --out, --from, --identity), the local file handling (lib/backup-stream.ts:
 * temporary name, mode 600, age encryption, a cut-short stream leaves nothing), lib/ssh.ts
 * execStream through a REAL sshd, and the node scripts (scripts/swarm-backup.sh, swarm-restore.sh)
 * run here against stand-ins for docker and systemctl. Needs `age` and `age-keygen` (Debian's age,
 * tools/prereqs.sh) and sshd.
 *
 * Run: node --import tsx --test test/unit/backup-stream.test.ts
 */
import { after, before, describe, test } from "node:test";
import * as assert from "node:assert/strict";
import { execFileSync, spawn, spawnSync, type ChildProcess } from "child_process";
import { createHash, randomBytes } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { PassThrough, Readable } from "stream";
import { pipeline } from "stream/promises";
import * as yaml from "js-yaml";
import { inspectBackup, openBackup, parseRecipient, prepareOutDir, writeBackupFile } from "../../lib/backup-stream";
import { isAgeRecipient } from "../../lib/config-checks";
import { readScript, scriptStdinKeepInput } from "../../lib/remote-script";
import { closeConnections, execStream, type SshTarget } from "../../lib/ssh";
import { main, parseArgs, UsageError } from "../../tools/ops";
import { freePort, spawnSshd, sshdFiles } from "../support/sshd";

const REPO = path.resolve(__dirname, "..", "..");
const dirs: string[] = [];
function tempDir(prefix = "dccn-backup-unit-"): string {
    const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
    dirs.push(d);
    return d;
}
after(() => {
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** An age identity and its recipient, and an SSH key pair, in a fresh directory. */
function keys(): { dir: string; identity: string; recipient: string; sshPub: string; sshKey: string } {
    const dir = tempDir();
    const identity = path.join(dir, "id.age");
    execFileSync("age-keygen", ["-o", identity], { stdio: "ignore" });
    const recipient = execFileSync("age-keygen", ["-y", identity], { encoding: "utf8" }).trim();
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", path.join(dir, "ssh")]);
    return { dir, identity, recipient, sshPub: path.join(dir, "ssh.pub"), sshKey: path.join(dir, "ssh") };
}

/** A tar.gz of a directory named `swarm` with raft/ and certificates/ (what a backup holds). */
function swarmArchive(dir: string, extra?: (swarm: string) => void): Buffer {
    const root = fs.mkdtempSync(path.join(dir, "src-"));
    fs.mkdirSync(path.join(root, "swarm", "raft", "wal-v3-encrypted"), { recursive: true });
    fs.mkdirSync(path.join(root, "swarm", "certificates"));
    fs.writeFileSync(path.join(root, "swarm", "raft", "wal-v3-encrypted", "0.wal"), Buffer.alloc(70_000, 7));
    fs.writeFileSync(path.join(root, "swarm", "certificates", "swarm-node.key"), "not a real key\n");
    fs.writeFileSync(path.join(root, "swarm", "state.json"), "[]\n");
    extra?.(path.join(root, "swarm"));
    return execFileSync("tar", ["-C", root, "-czf", "-", ...fs.readdirSync(root)]);
}

describe("ops arguments for backup and restore", () => {
    test("--encrypt-to, --no-encrypt, --identity and where they belong", () => {
        const b = parseArgs(["backup", "--stack", "prod", "--encrypt-to", "age1xyz", "--out", "/srv/b"], "/p");
        assert.ok(b !== "help");
        assert.deepEqual([b.encryptTo, b.noEncrypt, b.out], ["age1xyz", false, "/srv/b"]);
        const n = parseArgs(["backup", "--stack", "prod", "--no-encrypt"], "/p");
        assert.ok(n !== "help" && n.noEncrypt);
        const r = parseArgs(["restore", "--stack", "dev", "--from", "b.age", "--identity=k"], "/p");
        assert.ok(r !== "help");
        assert.equal(r.identity, path.resolve("k"));
        assert.throws(() => parseArgs(["backup", "--stack", "p", "--encrypt-to", "x", "--no-encrypt"], "/p"), /--encrypt-to and --no-encrypt contradict/);
        assert.throws(() => parseArgs(["restore", "--stack", "p", "--from", "f", "--encrypt-to", "x"], "/p"), /--encrypt-to belongs to backup, not restore/);
        assert.throws(() => parseArgs(["backup", "--stack", "p", "--identity", "k"], "/p"), /--identity belongs to restore, not backup/);
        assert.throws(() => parseArgs(["restore", "--stack", "p", "--from", "f", "--out", "d"], "/p"), /--out belongs to backup/);
        assert.throws(() => parseArgs(["backup", "--stack", "p", "--from", "f"], "/p"), /--from belongs to restore/);
        assert.throws(() => parseArgs(["backup", "--stack", "p", "--encrypt-to"], "/p"), UsageError);
    });

    test("recipients: age1, SSH public keys and files of them; private keys and garbage refused", () => {
        const k = keys();
        assert.ok(isAgeRecipient(k.recipient));
        assert.deepEqual(parseRecipient(k.recipient, "--encrypt-to", "/").args, ["-r", k.recipient]);
        assert.deepEqual(parseRecipient(k.sshPub, "--encrypt-to", "/").args, ["-R", k.sshPub]);
        assert.deepEqual(parseRecipient("ssh.pub", "--encrypt-to", k.dir).args, ["-R", k.sshPub], "relative to the directory given");
        const sshLine = fs.readFileSync(k.sshPub, "utf8").trim();
        assert.deepEqual(parseRecipient(sshLine, "--encrypt-to", "/").args, ["-r", sshLine]);
        assert.throws(() => parseRecipient(k.sshKey, "--encrypt-to", "/"), /--encrypt-to: .*ssh holds a private key; name the public key/);
        assert.throws(() => parseRecipient(k.identity, "--encrypt-to", "/"), /holds a private key/);
        const secret = fs.readFileSync(k.identity, "utf8").split("\n").find((l) => l.startsWith("AGE-SECRET-KEY-"))!;
        assert.throws(() => parseRecipient(secret, "--encrypt-to", "/"), (e: Error) => /age private key \(identity\), not a recipient/.test(e.message) && !e.message.includes(secret));
        assert.throws(() => parseRecipient("age1short", "--encrypt-to", "/"), /is neither an age recipient nor a readable file .*ENOENT.*age-keygen -y/);
        fs.writeFileSync(path.join(k.dir, "mixed"), `# team\n${k.recipient}\nnot a key\n`);
        assert.throws(() => parseRecipient(path.join(k.dir, "mixed"), "Pulumi.prod.yaml: `dccn-swarm:backupRecipient`", "/"),
            /^OpsError: Pulumi\.prod\.yaml: `dccn-swarm:backupRecipient`: .*mixed line 3 is not an age recipient/);
        fs.writeFileSync(path.join(k.dir, "empty"), "# nobody\n");
        assert.throws(() => parseRecipient(path.join(k.dir, "empty"), "--encrypt-to", "/"), /holds no recipient/);
        assert.throws(() => parseRecipient("/dev/null", "--encrypt-to", "/"), /not a recipients file/);
    });

    test("--out: system trees, the project's tree, files, others' or shared directories refused; a new one made 700", () => {
        const project = tempDir();
        const ok = prepareOutDir(path.join(project, ".state", "backups"), project);
        assert.equal(fs.statSync(ok).mode & 0o777, 0o700);
        assert.throws(() => prepareOutDir("/proc/self/cwd", project), /--out "\/proc\/self\/cwd": \/proc\/self\/cwd is a system file system/);
        assert.throws(() => prepareOutDir("/dev/shm", project), /system file system/);
        assert.throws(() => prepareOutDir(path.join(project, "stacks"), project), /inside the project's working tree, where a backup could be committed/);
        const outside = tempDir();
        fs.symlinkSync(path.join(project, "lib"), path.join(outside, "link"));
        fs.mkdirSync(path.join(project, "lib"));
        assert.throws(() => prepareOutDir(path.join(outside, "link"), project), /inside the project's working tree/, "a symlink into the project");
        fs.writeFileSync(path.join(outside, "file"), "");
        assert.throws(() => prepareOutDir(path.join(outside, "file"), project), /is not a directory; --out takes the directory/);
        fs.mkdirSync(path.join(outside, "shared"), { mode: 0o777 });
        fs.chmodSync(path.join(outside, "shared"), 0o1777);
        assert.throws(() => prepareOutDir(path.join(outside, "shared"), project), /is writable by others \(mode 1777\).*chmod go-w/);
        assert.throws(() => prepareOutDir("/tmp", project), /writable by others/);
        assert.throws(() => prepareOutDir(`${outside}/a\nb`, project), /control characters/);
        assert.equal(fs.existsSync(`${outside}/a\nb`), false);
    });
});

describe("the backup file (lib/backup-stream.ts)", () => {
    test("written as it streams: mode 600, sha256 and size of what passed, final name only when whole", async () => {
        const dir = tempDir();
        const data = swarmArchive(dir);
        let checked: { bytes: number; sha256: string } | undefined;
        const w = await writeBackupFile(Readable.from([data.subarray(0, 1000), data.subarray(1000)]), dir, "swarm-t-a1-1.tar.gz",
            { check: (p) => { checked = p; } });
        assert.equal(w.file, path.join(dir, "swarm-t-a1-1.tar.gz"));
        assert.deepEqual(checked, { bytes: data.length, sha256: sha(data) });
        assert.deepEqual([w.bytes, w.sha256, w.plainBytes], [data.length, sha(data), data.length]);
        assert.equal(fs.statSync(w.file).mode & 0o777, 0o600);
        assert.deepEqual(fs.readFileSync(w.file), data);
        assert.deepEqual(fs.readdirSync(dir).filter((f) => f.startsWith(".")), [], "no temporary file left");
        // Never over an existing file.
        await assert.rejects(writeBackupFile(Readable.from([data]), dir, "swarm-t-a1-1.tar.gz"), /EEXIST/);
        assert.deepEqual(fs.readFileSync(w.file), data);
    });

    test("a stream cut short, or a failed check, leaves no file at all", async () => {
        const dir = tempDir();
        const cut = new PassThrough();
        const p = writeBackupFile(cut, dir, "cut.tar.gz");
        cut.write(Buffer.alloc(200_000, 1));
        setImmediate(() => cut.destroy(new Error("the SSH connection was lost")));
        await assert.rejects(p, /the SSH connection was lost/);
        await assert.rejects(writeBackupFile(Readable.from([Buffer.alloc(10)]), dir, "bad.tar.gz", { check: () => { throw new Error("node says 11 bytes"); } }), /node says 11/);
        const k = keys();
        const cut2 = new PassThrough();
        const p2 = writeBackupFile(cut2, dir, "cut2.tar.gz", { recipient: parseRecipient(k.recipient, "--encrypt-to", "/") });
        cut2.write(Buffer.alloc(300_000, 2));
        setTimeout(() => cut2.destroy(new Error("lost mid-way")), 50);
        await assert.rejects(p2, /lost mid-way/);
        assert.deepEqual(fs.readdirSync(dir), [], "neither final nor temporary files");
    });

    test("encrypted to an age recipient or an SSH key: only ciphertext on disk; restore decrypts it as a stream", async () => {
        const k = keys();
        const dir = tempDir();
        const data = swarmArchive(dir);
        for (const [how, spec, identity] of [["age", k.recipient, k.identity], ["ssh", k.sshPub, k.sshKey]]) {
            const w = await writeBackupFile(Readable.from([data]), dir, `swarm-${how}.tar.gz`, { recipient: parseRecipient(spec, "--encrypt-to", "/") });
            assert.equal(w.file, path.join(dir, `swarm-${how}.tar.gz.age`));
            assert.equal(fs.statSync(w.file).mode & 0o777, 0o600);
            const stored = fs.readFileSync(w.file);
            assert.ok(stored.subarray(0, 21).toString() === "age-encryption.org/v1", "an age file");
            assert.equal(stored.indexOf(data.subarray(0, 64)), -1, "no plaintext in the file");
            assert.deepEqual([w.plainBytes, w.plainSha256, w.sha256], [data.length, sha(data), sha(stored)]);
            assert.equal(await inspectBackup(w.file, identity), "age");
            const src = openBackup(w.file, identity);
            const chunks: Buffer[] = [];
            await pipeline(src.stream, new PassThrough().on("data", (d: Buffer) => chunks.push(d)));
            await src.done;
            assert.deepEqual(Buffer.concat(chunks), data);
        }
    });

    test("a decrypted stream read only after age has exited is whole (the channel opens later than age ends)", async () => {
        // Node resumes, and so discards, a child's output nobody reads when the child exits: a small
        // backup used to reach the node as 0 bytes when its channel opened after age had finished.
        const k = keys();
        const dir = tempDir();
        const small = swarmArchive(dir);
        const big = execFileSync("gzip", ["-1", "-c"], { input: randomBytes(3 << 20), maxBuffer: 8 << 20 });
        for (const data of [small, big]) {
            const w = await writeBackupFile(Readable.from([data]), dir, `late-${data.length}.tar.gz`, { recipient: parseRecipient(k.recipient, "--encrypt-to", "/") });
            const src = openBackup(w.file, k.identity);
            if (data === small) await src.done; // age has exited
            await new Promise((r) => setTimeout(r, 300));
            const chunks: Buffer[] = [];
            await pipeline(src.stream, new PassThrough().on("data", (d: Buffer) => chunks.push(d)));
            await src.done;
            assert.equal(Buffer.concat(chunks).length, data.length);
            assert.equal(sha(Buffer.concat(chunks)), sha(data));
        }
    });

    test("--from and --identity refused before any node is touched, naming the flag and the fix", async () => {
        const k = keys();
        const other = keys();
        const dir = tempDir();
        const plain = path.join(dir, "b.tar.gz");
        fs.writeFileSync(plain, swarmArchive(dir), { mode: 0o600 });
        assert.equal(await inspectBackup(plain), "tar.gz");
        await assert.rejects(inspectBackup(path.join(dir, "missing")), /--from .*missing: no such file; name a backup written by `npm run ops -- backup`/);
        await assert.rejects(inspectBackup(dir), /--from .*: not a regular file/);
        fs.writeFileSync(path.join(dir, "empty"), "");
        await assert.rejects(inspectBackup(path.join(dir, "empty")), /is not a swarm backup \(the file is empty\)/);
        fs.writeFileSync(path.join(dir, "notes.txt"), "hello\n");
        await assert.rejects(inspectBackup(path.join(dir, "notes.txt")), /is not a swarm backup \(neither a gzip'd tar nor an age-encrypted file\)/);
        fs.writeFileSync(path.join(dir, "text.gz"), execFileSync("gzip", ["-c"], { input: "just text, no tar ".repeat(100) }));
        await assert.rejects(inspectBackup(path.join(dir, "text.gz")), /is not a swarm backup \(not a tar archive inside the compression\)/);
        const etc = execFileSync("tar", ["-C", REPO, "-czf", "-", "scripts"]);
        fs.writeFileSync(path.join(dir, "other.tar.gz"), etc);
        await assert.rejects(inspectBackup(path.join(dir, "other.tar.gz")), /a tar archive but not of a swarm directory \(first entry "scripts\//);
        fs.writeFileSync(path.join(dir, "cut.tar.gz"), fs.readFileSync(plain).subarray(0, 40));
        await assert.rejects(inspectBackup(path.join(dir, "cut.tar.gz")), /is not a swarm backup/);
        fs.chmodSync(plain, 0o000);
        if (process.getuid?.() !== 0) await assert.rejects(inspectBackup(plain), /cannot be read/);
        fs.chmodSync(plain, 0o600);
        await assert.rejects(inspectBackup(plain, k.identity), /--identity .*: --from .* is not encrypted; leave --identity out/);

        const enc = (await writeBackupFile(fs.createReadStream(plain), dir, "e.tar.gz", { recipient: parseRecipient(k.recipient, "--encrypt-to", "/") })).file;
        await assert.rejects(inspectBackup(enc), /--from .*e\.tar\.gz\.age is encrypted \(age\): pass --identity FILE/);
        await assert.rejects(inspectBackup(enc, other.identity), /--identity .* does not open --from .* \(no identity matched any of its recipients\); pass the private key whose public key/);
        await assert.rejects(inspectBackup(enc, path.join(dir, "nokey")), /--identity .*nokey: cannot be read \(ENOENT\)/);
        await assert.rejects(inspectBackup(enc, other.sshKey), /does not open/);
        // An age file whose plaintext is no swarm archive.
        const notSwarm = (await writeBackupFile(Readable.from([etc]), dir, "s.tar.gz", { recipient: parseRecipient(k.recipient, "--encrypt-to", "/") })).file;
        await assert.rejects(inspectBackup(notSwarm, k.identity), /not of a swarm directory/);
    });

    test("ops refuses an unencrypted backup outside dev (and a bad recipient or --out) before reaching any node", async () => {
        const dir = tempDir();
        fs.writeFileSync(path.join(dir, "id"), "KEY\n", { mode: 0o600 });
        const stack = (env: string, extra: Record<string, unknown> = {}) => fs.writeFileSync(path.join(dir, `Pulumi.${env}.yaml`), yaml.dump({ config: {
            "dccn-swarm:environment": env,
            "dccn-swarm:ssh": { privateKeyFile: "id", connectTimeout: 1 },
            // Port 9 of TEST-NET-1: a node that would be reached would hang or fail; none is reached.
            "dccn-swarm:nodes": [{ hostname: "a1", address: "192.0.2.1", role: "manager", hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIUnitOps" }],
            ...extra,
        } }));
        stack("prod");
        stack("staging", { "dccn-swarm:backupRecipient": "age1nope" });
        stack("qa", { "dccn-swarm:backupRecipient": 42 });
        const err: string[] = [];
        const [o, e] = [process.stdout.write, process.stderr.write];
        process.stdout.write = (() => true) as typeof process.stdout.write;
        process.stderr.write = ((s: string) => { err.push(s); return true; }) as typeof process.stderr.write;
        const started = Date.now();
        try {
            assert.equal(await main(["backup", "--stack", "prod", "--project", dir]), 2);
            assert.equal(await main(["backup", "--stack", "staging", "--project", dir]), 2);
            assert.equal(await main(["backup", "--stack", "qa", "--project", dir]), 2);
            assert.equal(await main(["backup", "--stack", "prod", "--encrypt-to", "/nonexistent.pub", "--project", dir]), 2);
            assert.equal(await main(["backup", "--stack", "prod", "--no-encrypt", "--out", "/proc/1", "--project", dir]), 2);
            assert.equal(await main(["restore", "--stack", "prod", "--node", "a1", "--from", path.join(dir, "id"), "--yes", "--project", dir]), 2);
        } finally {
            process.stdout.write = o;
            process.stderr.write = e;
        }
        const lines = err.join("").split("\n").filter((l) => l.startsWith("ops: "));
        assert.match(lines[0], /a backup of environment prod must be encrypted .*--encrypt-to RECIPIENT.*`dccn-swarm:backupRecipient` in Pulumi\.prod\.yaml; --no-encrypt stores it unencrypted on purpose/);
        assert.match(lines[1], /Pulumi\.staging\.yaml: `dccn-swarm:backupRecipient`: .*age1nope is neither an age recipient nor a readable file/);
        assert.match(lines[2], /Pulumi\.qa\.yaml: `dccn-swarm:backupRecipient` must be a string/);
        assert.match(lines[3], /--encrypt-to "\/nonexistent\.pub": \/nonexistent\.pub is neither an age recipient nor a readable file/);
        assert.match(lines[4], /--out "\/proc\/1": \/proc\/1 is a system file system/);
        assert.match(lines[5], /--from .*id: is not a swarm backup/);
        assert.ok(Date.now() - started < 5000, "no node was tried (its connection would time out)");
        assert.deepEqual(fs.readdirSync(dir).sort(), ["Pulumi.prod.yaml", "Pulumi.qa.yaml", "Pulumi.staging.yaml", "id"], "no backup directory made");
    });
});

describe("execStream through a real sshd", () => {
    const dir = tempDir("dccn-execstream-");
    let sshd: ChildProcess | undefined;
    let t: SshTarget;
    before(async () => {
        const files = sshdFiles(dir);
        const port = await freePort();
        sshd = await spawnSshd(files.config, port);
        t = { name: "local", host: "127.0.0.1", port, user: os.userInfo().username, privateKey: files.clientKey, knownHosts: `[127.0.0.1]:${port} ${files.hostKey}`, connectTimeout: 5 };
    });
    after(async () => {
        await closeConnections();
        sshd?.kill("SIGKILL");
    });

    test("32 MiB out and in, flow-controlled, hashed on both sides; the script's stdin starts right after it", async () => {
        const out = await execStream(t, scriptStdinKeepInput("head -c 33554432 /dev/urandom | tee >(sha256sum | cut -c1-64 >&2); echo sent-all >&2\n", {}));
        out.stdin.end();
        // Not read for a second: the node waits (SSH window, pipes), nothing piles up here.
        let errText = "";
        await new Promise((r) => setTimeout(r, 1000));
        const buffered = out.stdout.readableLength;
        const h = createHash("sha256");
        let n = 0;
        for await (const chunk of out.stdout) {
            h.update(chunk as Buffer);
            n += (chunk as Buffer).length;
        }
        const r = await out.done;
        errText = r.stderr;
        assert.equal(r.code, 0, r.stderr);
        assert.equal(n, 32 * 1024 * 1024);
        assert.match(errText, new RegExp(h.digest("hex")));
        assert.match(errText, /sent-all/);
        assert.ok(buffered < 4 * 1024 * 1024, `flow-controlled: ${buffered} bytes waited here while nobody read`);

        const data = Buffer.alloc(8 * 1024 * 1024);
        for (let i = 0; i < data.length; i += 4096) data.write(`line ${i}\n`, i);
        const inn = await execStream(t, scriptStdinKeepInput('echo "got $(sha256sum | cut -c1-64) $X"\n', { X: "it's" }));
        let text = "";
        inn.stdout.on("data", (d: Buffer) => { text += d; });
        await pipeline(Readable.from([data]), inn.stdin);
        const r2 = await inn.done;
        assert.equal(r2.code, 0, r2.stderr);
        assert.equal(text.trim(), `got ${sha(data)} it's`);
    });

    test("data the script leaves unread is never run as commands, and the sender does not hang", async () => {
        const marker = path.join(dir, "pwned");
        const s = await execStream(t, scriptStdinKeepInput("head -c 5 >/dev/null; exit 3\n", {}));
        s.stdout.resume();
        const evil = Buffer.from(`\ntouch ${marker}\n`.repeat(200_000));
        await pipeline(Readable.from([evil]), s.stdin).catch(() => undefined);
        const r = await s.done;
        assert.equal(r.code, 3);
        assert.equal(fs.existsSync(marker), false);
    });

    test("a stream that goes quiet is closed, not killed: the script's EXIT trap runs and its exit is reported", async () => {
        const flag = path.join(dir, "trap-ran");
        const s = await execStream(t, scriptStdinKeepInput(`trap '' PIPE HUP; trap 'touch ${flag}' EXIT; cat >/dev/null; sleep 2; exit 4\n`, {}), { idleTimeoutSec: 1 });
        s.stdout.resume();
        s.stdin.end();
        const r = await s.done;
        assert.match(r.failure ?? "", /nothing moved for 1s/);
        assert.equal(r.code, 4, "the command's own exit status, after its traps");
        assert.ok(fs.existsSync(flag), "the EXIT trap ran");
        s.close("again"); // harmless
    });
});

describe("the node scripts, with docker and systemctl stand-ins", () => {
    /** A fake node: SWARM_DIR under a temp root, `docker` and `systemctl` that log and answer. */
    function node() {
        const root = tempDir("dccn-node-");
        const bin = path.join(root, "bin");
        fs.mkdirSync(bin);
        fs.mkdirSync(path.join(root, "docker"));
        const log = path.join(root, "calls");
        fs.writeFileSync(log, "");
        fs.writeFileSync(path.join(bin, "systemctl"), `#!/bin/sh\necho "systemctl $*" >>${log}\n`, { mode: 0o755 });
        fs.writeFileSync(path.join(bin, "docker"), [
            "#!/bin/sh",
            `echo "docker $*" >>${log}`,
            'case "$*" in',
            '  *"LocalNodeState}} {{.Swarm.ControlAvailable"*) echo "active true" ;;',
            '  *LocalNodeState*) echo active ;;',
            '  *NodeID*) echo node1 ;;',
            '  *Cluster.ID*) echo cluster1 ;;',
            '  *AutoLockManagers*) echo false ;;',
            '  version*) echo 20.10.24 ;;',
            "esac",
            "",
        ].join("\n"), { mode: 0o755 });
        fs.writeFileSync(path.join(bin, "ip"), "#!/bin/sh\n", { mode: 0o755 });
        const env = { PATH: `${bin}:/usr/bin:/bin`, SWARM_DIR: path.join(root, "docker", "swarm"), WAIT_TIMEOUT: "2", ADVERTISE_ADDR: "10.0.0.1" };
        const calls = () => fs.readFileSync(log, "utf8").split("\n").filter((l) => l.startsWith("systemctl"));
        return { root, env, calls, swarm: env.SWARM_DIR };
    }

    test("swarm-backup.sh: the archive alone on stdout with its sha256 and size; the engine started again even when the reader goes away", async () => {
        const n = node();
        fs.mkdirSync(path.join(n.swarm, "raft"), { recursive: true });
        fs.mkdirSync(path.join(n.swarm, "certificates"));
        fs.writeFileSync(path.join(n.swarm, "raft", "big"), Buffer.alloc(4 * 1024 * 1024).map(() => Math.floor(Math.random() * 256)));
        const r = spawnSync("bash", [path.join(REPO, "scripts", "swarm-backup.sh")], { env: n.env, maxBuffer: 64 * 1024 * 1024 });
        assert.equal(r.status, 0, r.stderr.toString());
        const result = /DCCN_RESULT changed=0 bytes=(\d+) sha256=([0-9a-f]{64}) engine_version=20\.10\.24 autolock=false/.exec(r.stderr.toString());
        assert.ok(result, r.stderr.toString());
        assert.deepEqual([Number(result[1]), result[2]], [r.stdout.length, sha(r.stdout)]);
        assert.match(execFileSync("tar", ["-tzf", "-"], { input: r.stdout, encoding: "utf8" }), /^swarm\/raft\/big$/m);
        assert.deepEqual(n.calls(), ["systemctl stop docker", "systemctl start docker"]);

        // The reader takes 1000 bytes and goes: tar fails on EPIPE, the engine is started, the script says so.
        fs.writeFileSync(path.join(n.root, "calls"), "");
        const cut = spawn("bash", ["-c", `bash ${path.join(REPO, "scripts", "swarm-backup.sh")} | head -c 1000 >/dev/null`], { env: n.env, stdio: ["ignore", "ignore", "pipe"] });
        let err = "";
        cut.stderr!.on("data", (d) => (err += d));
        await new Promise((res) => cut.on("close", res));
        assert.match(err, /DCCN_RESULT changed=0 error=tar-failed/);
        assert.deepEqual(n.calls(), ["systemctl stop docker", "systemctl start docker"]);
    });

    test("swarm-restore.sh: a bad or cut-short stream changes nothing; two restores keep exactly one previous directory", () => {
        const n = node();
        const restore = (input: Buffer) => spawnSync("bash", [path.join(REPO, "scripts", "swarm-restore.sh")], { env: n.env, input, encoding: "utf8" });
        const src = tempDir();
        const a = swarmArchive(src, (s) => fs.writeFileSync(path.join(s, "which"), "A"));
        const b = swarmArchive(src, (s) => fs.writeFileSync(path.join(s, "which"), "B"));
        fs.mkdirSync(path.join(n.swarm, "raft"), { recursive: true });
        fs.writeFileSync(path.join(n.swarm, "which"), "live");
        fs.mkdirSync(`${n.swarm}.before-restore.20240101T000000Z`);
        const listing = () => fs.readdirSync(path.dirname(n.swarm)).sort();

        for (const [what, input, why] of [
            ["cut short", a.subarray(0, a.length - 100), /did not unpack whole/],
            ["not gzip", Buffer.from("hello"), /did not unpack whole/],
            ["another tree", execFileSync("tar", ["-C", REPO, "-czf", "-", "scripts"]), /holds more than the swarm directory|holds no swarm state/],
            ["a symlink inside", swarmArchive(src, (s) => fs.symlinkSync("/etc/shadow", path.join(s, "raft", "link"))), /links or special files/],
        ] as const) {
            const r = restore(input as Buffer);
            assert.equal(r.status, 1, `${what}: ${r.stderr}`);
            assert.match(r.stdout, /DCCN_RESULT changed=0 error=bad-archive/, what);
            assert.match(r.stderr, why as RegExp, what);
            assert.deepEqual(n.calls(), [], `${what}: the engine is not touched`);
            assert.deepEqual(listing(), ["swarm", "swarm.before-restore.20240101T000000Z"], `${what}: nothing left behind`);
        }

        const r1 = restore(a);
        assert.equal(r1.status, 0, r1.stderr);
        assert.match(r1.stdout, new RegExp(`DCCN_RESULT changed=1 previous=${n.swarm}.previous previous_from=this removed_old=1 bytes=${a.length} sha256=${sha(a)} node_id=node1 cluster_id=cluster1`));
        assert.deepEqual(listing(), ["swarm", "swarm.previous"]);
        assert.equal(fs.readFileSync(path.join(n.swarm, "which"), "utf8"), "A");
        assert.equal(fs.readFileSync(path.join(`${n.swarm}.previous`, "which"), "utf8"), "live");
        assert.equal(fs.statSync(`${n.swarm}.previous`).mode & 0o777, 0o700);

        const r2 = restore(b);
        assert.equal(r2.status, 0, r2.stderr);
        assert.match(r2.stdout, /previous_from=this removed_old=0/);
        assert.deepEqual(listing(), ["swarm", "swarm.previous"], "still one previous directory");
        assert.equal(fs.readFileSync(path.join(`${n.swarm}.previous`, "which"), "utf8"), "A", "the last one replaced the one before");

        // The swarm state was lost (an empty directory): the previous one from the earlier restore stays.
        fs.rmSync(n.swarm, { recursive: true });
        fs.mkdirSync(n.swarm);
        const r3 = restore(a);
        assert.equal(r3.status, 0, r3.stderr);
        assert.match(r3.stdout, /previous_from=earlier/);
        assert.equal(fs.readFileSync(path.join(`${n.swarm}.previous`, "which"), "utf8"), "A");
        // Stopped for the swap, started; stopped again after --force-new-cluster (stale overlay devices go), started.
        assert.deepEqual(n.calls().slice(-4), ["systemctl stop docker", "systemctl start docker", "systemctl stop docker", "systemctl start docker"], n.calls().join(", "));
    });
});
