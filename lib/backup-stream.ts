/**
 * The local side of swarm-state backups (tools/ops.ts backup and restore): everything that touches
 * the archive on this machine, as streams, never as one buffer of the whole archive.
 *
 * - Backup: the archive arrives as a stream (lib/ssh.ts execStream); it is hashed and counted as it
 *   passes, optionally encrypted by `age` (Debian's package) to a recipient, and written with mode
 *   600 under a temporary name in the target directory; only when it is complete and the caller's
 *   check passed (the node's own sha256 and size of what it sent) does it get its final name. A
 *   stream cut short leaves no file that looks like a backup. With encryption the plaintext exists
 *   only in pipes between this process and age: never on this machine's disk.
 * - Restore: the file is checked before anything changes on a node (a gzip'd tar whose first entry is
 *   the swarm directory; an age file that the identity opens, its plaintext such a tar), then opened
 *   as a plaintext stream (age -d as a stream when encrypted).
 * Errors are OpsErrors naming the flag or file and the fix: the caller reports them as refusals.
 */
import { ChildProcess, spawn, spawnSync } from "child_process";
import { createHash, randomBytes } from "crypto";
import * as fs from "fs";
import * as path from "path";
import { PassThrough, Readable, Transform } from "stream";
import { pipeline } from "stream/promises";
import * as zlib from "zlib";
import { isAgeRecipient } from "./config-checks";
import { OpsError } from "./ops-plan";

/** How the archive is encrypted: the `age` arguments naming the recipient(s), and what to say about it. */
export interface Recipient {
    args: string[];
    describe: string;
}

const AGE_MAGIC = "age-encryption.org/v1\n";
const AGE_ARMOR = "-----BEGIN AGE ENCRYPTED FILE-----";

/** `age` must be installed (Debian's package `age`); the error says how. */
export function checkAge(): void {
    const r = spawnSync("age", ["--version"], { encoding: "utf8" });
    if (r.error || r.status !== 0) {
        throw new OpsError("`age` is not installed on this machine (needed to encrypt or decrypt a backup): " +
            "`apt-get install age` (tools/prereqs.sh installs it)");
    }
}

/**
 * A recipient given as `source` (`--encrypt-to` or the stack file's key): an age1 recipient, an SSH
 * public key, or a file of them (an age recipients file or an SSH `.pub` file) relative to `cwd`.
 */
export function parseRecipient(spec: string, source: string, cwd: string): Recipient {
    const fix = "name an age recipient (age1..., from `age-keygen -y KEYFILE`), an SSH public key, or a file holding them (a .pub file)";
    if (isAgeRecipient(spec.trim())) return { args: ["-r", spec.trim()], describe: spec.startsWith("age1") ? spec.trim() : spec.trim().split(" ").slice(0, 2).join(" ").slice(0, 40) + "..." };
    if (/[\x00-\x1f\x7f]/.test(spec)) throw new OpsError(`${source}: contains control characters; ${fix}`);
    if (/^AGE-SECRET-KEY-/i.test(spec.trim())) throw new OpsError(`${source}: that is an age private key (identity), not a recipient; ${fix} (never the private key)`);
    const file = path.resolve(cwd, spec);
    let st: fs.Stats;
    try {
        st = fs.statSync(file);
    } catch (e) {
        throw new OpsError(`${source}: ${file} is neither an age recipient nor a readable file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); ${fix}`);
    }
    if (!st.isFile() || st.size > 1024 * 1024) throw new OpsError(`${source}: ${file} is not a recipients file (not a regular file, or larger than 1 MiB); ${fix}`);
    let text: string;
    try {
        text = fs.readFileSync(file, "utf8");
    } catch (e) {
        throw new OpsError(`${source}: ${file} cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); ${fix}`);
    }
    if (/PRIVATE KEY|AGE-SECRET-KEY-/.test(text)) {
        throw new OpsError(`${source}: ${file} holds a private key; name the public key (the .pub file, or the age1 recipient from \`age-keygen -y\`), never the private key`);
    }
    const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== "" && !l.startsWith("#"));
    const bad = lines.findIndex((l) => !isAgeRecipient(l));
    if (lines.length === 0 || bad >= 0) {
        throw new OpsError(`${source}: ${file} ${lines.length === 0 ? "holds no recipient" : `line ${text.split(/\r?\n/).findIndex((l) => l.trim() === lines[bad]) + 1} is not an age recipient or SSH public key`}; ${fix}`);
    }
    return { args: ["-R", file], describe: `the recipients in ${file}` };
}

/** Paths no backup belongs in (kernel and device file systems). */
const SYSTEM_TREES = ["/proc", "/sys", "/dev", "/run"];

function within(p: string, dir: string): boolean {
    const rel = path.relative(dir, p);
    return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel));
}

/**
 * The directory a backup is written to (`--out`, default `.state/backups`), checked and created
 * (mode 700) before anything changes on a node: not in /proc, /sys, /dev or /run; not inside the
 * project's working tree except under `.state/` (git ignores it; elsewhere a backup could be
 * committed); an existing one a directory owned by this user or root that nobody else may write
 * (someone who can write it can replace or remove the backup). Returns its real path.
 */
export function prepareOutDir(dir: string, project: string): string {
    const flag = `--out ${JSON.stringify(dir)}`;
    if (/[\x00-\x1f\x7f]/.test(dir)) throw new OpsError(`${flag}: contains control characters; name a plain directory path`);
    const abs = path.resolve(dir);
    const check = (p: string) => {
        if (SYSTEM_TREES.some((t) => within(p, t))) throw new OpsError(`${flag}: ${p} is a system file system, not a place for backups; name a directory on a real disk`);
        const root = realOrSelf(project);
        if (within(p, root) && !within(p, path.join(root, ".state"))) {
            throw new OpsError(`${flag}: ${p} is inside the project's working tree, where a backup could be committed; ` +
                "leave --out out (the default, .state/backups, is ignored by git) or name a directory outside the project");
        }
    };
    check(abs);
    let st: fs.Stats | undefined;
    try {
        st = fs.statSync(abs);
    } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw new OpsError(`${flag}: ${abs} cannot be used (${(e as NodeJS.ErrnoException).code})`);
    }
    if (!st) {
        try {
            fs.mkdirSync(abs, { recursive: true, mode: 0o700 });
        } catch (e) {
            throw new OpsError(`${flag}: ${abs} cannot be created (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); name a directory you can write`);
        }
        st = fs.statSync(abs);
    }
    const real = fs.realpathSync(abs);
    if (real !== abs) check(real);
    if (!st.isDirectory()) throw new OpsError(`${flag}: ${abs} is not a directory; --out takes the directory the backup is written to`);
    const uid = process.getuid?.() ?? 0;
    if (st.uid !== uid && st.uid !== 0) throw new OpsError(`${flag}: ${real} belongs to another user (uid ${st.uid}), who could read or replace the backup; name a directory of your own`);
    if ((st.mode & 0o022) !== 0) {
        throw new OpsError(`${flag}: ${real} is writable by others (mode ${(st.mode & 0o7777).toString(8)}), who could replace or remove the backup; ` +
            `\`chmod go-w ${real}\` or name a directory only you can write`);
    }
    try {
        fs.accessSync(real, fs.constants.W_OK);
    } catch {
        throw new OpsError(`${flag}: ${real} is not writable; name a directory you can write`);
    }
    return real;
}

function realOrSelf(p: string): string {
    try {
        return fs.realpathSync(p);
    } catch {
        return path.resolve(p);
    }
}

/** A pass-through that hashes (sha256) and counts what goes through it. */
export class Digest extends Transform {
    private readonly h = createHash("sha256");
    bytes = 0;
    private hex?: string;
    override _transform(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null, d?: Buffer) => void): void {
        this.h.update(chunk);
        this.bytes += chunk.length;
        cb(null, chunk);
    }
    override _flush(cb: () => void): void {
        this.hex = this.h.digest("hex");
        cb();
    }
    /** The sha256 (hex) once the stream has ended. */
    get sha256(): string {
        if (this.hex === undefined) throw new Error("the stream has not ended");
        return this.hex;
    }
}

export interface WrittenBackup {
    file: string;
    /** The file's size and sha256 (the ciphertext's when encrypted). */
    bytes: number;
    sha256: string;
    /** The archive's (the plaintext's) size and sha256: what the node sent. */
    plainBytes: number;
    plainSha256: string;
}

/** What age said, reduced to its last lines; anything that looks like a key is cut out. */
function ageMessage(stderr: string): string {
    return stderr.replace(/AGE-SECRET-KEY-[A-Z0-9]+/g, "AGE-SECRET-KEY-...").trim().split("\n").slice(-3).join("; ").replace(/^age: /, "");
}

function waitExit(p: ChildProcess): Promise<number> {
    return new Promise((resolve) => {
        if (p.exitCode !== null) return resolve(p.exitCode);
        p.once("close", (code, sig) => resolve(code ?? (sig ? 128 : 1)));
        p.once("error", () => resolve(127));
    });
}

function collect(r: Readable | null, keep = 16384): () => string {
    let buf = "";
    r?.setEncoding("utf8");
    r?.on("data", (d: string) => {
        buf = (buf + d).slice(-keep);
    });
    return () => buf;
}

/**
 * Write `source` (the archive as it arrives) to `dir/name` (+ `.age` when encrypted): mode 600, under
 * a temporary name (`.name.partial-RANDOM`, created O_EXCL) until the stream has ended,
 * age (if any) has exited 0, the data is on disk, and `check` (given the plaintext's size and
 * sha256) has passed; then it is linked to its final name (never over an existing file). On any
 * failure the temporary file is removed and the error passed on.
 */
export async function writeBackupFile(source: Readable, dir: string, name: string,
    opts: { recipient?: Recipient; check?: (plain: { bytes: number; sha256: string }) => Promise<void> | void } = {}): Promise<WrittenBackup> {
    const finalName = opts.recipient ? `${name}.age` : name;
    const file = path.join(dir, finalName);
    const tmp = path.join(dir, `.${finalName}.partial-${randomBytes(6).toString("hex")}`);
    // "wx": O_CREAT|O_EXCL, which never follows a link someone put at that name.
    const out = fs.createWriteStream(tmp, { flags: "wx", mode: 0o600 });
    const plain = new Digest();
    const stored = new Digest();
    let age: ChildProcess | undefined;
    try {
        if (!opts.recipient) {
            await pipeline(source, plain, stored, out);
        } else {
            age = spawn("age", ["--encrypt", ...opts.recipient.args], { stdio: ["pipe", "pipe", "pipe"] });
            const ageErr = collect(age.stderr);
            const exited = waitExit(age);
            const [a, b, code] = await Promise.allSettled([
                pipeline(source, plain, age.stdin!),
                pipeline(age.stdout!, stored, out),
                exited,
            ]);
            if (a.status === "rejected") throw a.reason;
            if (code.status === "fulfilled" && code.value !== 0) throw new OpsError(`age could not encrypt the archive (exit ${code.value}): ${ageMessage(ageErr())}`);
            if (b.status === "rejected") throw b.reason;
        }
        const fd = fs.openSync(tmp, "r");
        try {
            fs.fsyncSync(fd);
        } finally {
            fs.closeSync(fd);
        }
        await opts.check?.({ bytes: plain.bytes, sha256: plain.sha256 });
        fs.linkSync(tmp, file);
        fs.unlinkSync(tmp);
        try {
            const d = fs.openSync(dir, "r");
            fs.fsyncSync(d);
            fs.closeSync(d);
        } catch { /* a directory fsync is best effort */ }
        return { file, bytes: stored.bytes, sha256: stored.sha256, plainBytes: plain.bytes, plainSha256: plain.sha256 };
    } catch (e) {
        age?.kill("SIGTERM");
        source.destroy();
        out.destroy();
        fs.rmSync(tmp, { force: true });
        throw e;
    }
}

export type BackupKind = "tar.gz" | "age";

export interface BackupSource {
    kind: BackupKind;
    /** The archive (plaintext tar.gz) as a stream. */
    stream: Readable;
    /** Resolves when the stream was read whole and decrypted without error; rejects naming the file otherwise. */
    done: Promise<void>;
    /** Stop reading (and decrypting). */
    destroy(): void;
}

/**
 * What the file is, from its first bytes: a gzip stream (a plaintext backup) or an age file (binary
 * or armored). Refuses a missing, unreadable, empty or special file, and anything else.
 */
export function backupKind(file: string): BackupKind {
    const flag = `--from ${file}`;
    let st: fs.Stats;
    try {
        st = fs.statSync(file);
    } catch (e) {
        throw new OpsError(`${flag}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : `cannot be read (${(e as NodeJS.ErrnoException).code})`}; ` +
            "name a backup written by `npm run ops -- backup` (default directory .state/backups)");
    }
    if (!st.isFile()) throw new OpsError(`${flag}: not a regular file; name a backup written by \`npm run ops -- backup\``);
    const head = Buffer.alloc(64);
    let n: number;
    try {
        const fd = fs.openSync(file, "r");
        try {
            n = fs.readSync(fd, head, 0, head.length, 0);
        } finally {
            fs.closeSync(fd);
        }
    } catch (e) {
        throw new OpsError(`${flag}: cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); run as a user who can read it (it should be mode 600, owned by you)`);
    }
    const h = head.subarray(0, n);
    if (h.length >= 3 && h[0] === 0x1f && h[1] === 0x8b && h[2] === 0x08) return "tar.gz";
    const text = h.toString("latin1");
    if (text.startsWith(AGE_MAGIC) || text.startsWith(AGE_ARMOR)) return "age";
    throw new OpsError(`${flag}: is not a swarm backup (${n === 0 ? "the file is empty" : "neither a gzip'd tar nor an age-encrypted file"}); ` +
        "name a .tar.gz or .tar.gz.age file written by `npm run ops -- backup`");
}

/** Open the backup as a plaintext stream; `identity` (age -i) for an encrypted one. */
export function openBackup(file: string, identity?: string): BackupSource {
    const kind = backupKind(file);
    if (kind === "tar.gz") {
        const stream = fs.createReadStream(file);
        const done = new Promise<void>((resolve, reject) => {
            stream.once("end", resolve);
            stream.once("error", (e) => reject(new OpsError(`--from ${file}: reading failed: ${e.message}`)));
            stream.once("close", () => resolve());
        });
        return { kind, stream, done, destroy: () => stream.destroy() };
    }
    if (!identity) throw new OpsError(`--from ${file} is encrypted (age): pass --identity FILE, the private key (age identity or SSH key) whose recipient it was encrypted to`);
    const age = spawn("age", ["--decrypt", "-i", identity, file], { stdio: ["ignore", "pipe", "pipe"] });
    const err = collect(age.stderr);
    // Read from the start: when a child exits, Node resumes (and so discards) an output stream
    // nobody listens to yet (child_process flushStdio). A small archive is decrypted whole before the
    // caller's channel is open; piped here, it waits in this PassThrough (backpressure holds age).
    const stream = age.stdout!.pipe(new PassThrough());
    age.stdout!.on("error", (e) => stream.destroy(e));
    const done = waitExit(age).then((code) => {
        if (code === 0) return;
        const why = err();
        if (code === 127 && !why) throw new OpsError("`age` is not installed on this machine: `apt-get install age` (tools/prereqs.sh installs it)");
        if (/no identity matched/i.test(why)) {
            throw new OpsError(`--identity ${identity} does not open --from ${file} (no identity matched any of its recipients); ` +
                "pass the private key whose public key (recipient) the backup was encrypted to");
        }
        throw new OpsError(`--from ${file} could not be decrypted with --identity ${identity}: ${ageMessage(why)}`);
    });
    done.catch(() => undefined);
    return { kind, stream, done, destroy: () => { age.kill("SIGTERM"); age.stdout!.destroy(); stream.destroy(); } };
}

/** A tar header block: `ustar` magic, and the first member's name. */
function tarHeader(block: Buffer): { name: string } | undefined {
    if (block.length < 512 || block.subarray(257, 262).toString("latin1") !== "ustar") return undefined;
    const name = block.subarray(0, 100).toString("latin1").replace(/\0.*$/s, "");
    return { name };
}

/**
 * Check a backup before anything changes on a node: its kind, that the identity opens it (age reads
 * the header and the first chunk), and that its plaintext is a gzip'd tar whose first entry is the
 * swarm directory. Only the first kilobytes are read; nothing is written anywhere.
 */
export async function inspectBackup(file: string, identity?: string): Promise<BackupKind> {
    const kind = backupKind(file);
    if (identity !== undefined) {
        if (kind !== "age") throw new OpsError(`--identity ${identity}: --from ${file} is not encrypted; leave --identity out`);
        let st: fs.Stats;
        try {
            st = fs.statSync(identity);
            fs.accessSync(identity, fs.constants.R_OK);
        } catch (e) {
            throw new OpsError(`--identity ${identity}: cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); name the private key file the backup was encrypted for`);
        }
        if (!st.isFile()) throw new OpsError(`--identity ${identity}: not a regular file; name the private key file the backup was encrypted for`);
    }
    if (kind === "age") checkAge();
    const src = openBackup(file, identity);
    const gunzip = zlib.createGunzip();
    const first = await new Promise<Buffer | Error>((resolve) => {
        let got = Buffer.alloc(0);
        const sink = new PassThrough();
        src.stream.on("error", (e) => resolve(e));
        gunzip.on("error", (e) => resolve(e));
        sink.on("data", (d: Buffer) => {
            got = Buffer.concat([got, d]);
            if (got.length >= 512) resolve(got);
        });
        sink.on("end", () => resolve(got));
        src.stream.pipe(gunzip).pipe(sink);
        src.done.catch((e) => resolve(e as Error));
    });
    if (first instanceof Error || first.length < 512) {
        // Ended early: age's own verdict (a wrong identity, a damaged file) explains it best.
        const verdict = await Promise.race([src.done.then(() => undefined, (e: Error) => e), new Promise<undefined>((r) => { (setTimeout(r, 5000) as unknown as NodeJS.Timeout).unref(); })]);
        if (verdict instanceof OpsError) {
            src.destroy();
            throw verdict;
        }
    }
    src.destroy();
    gunzip.destroy();
    if (first instanceof Error) {
        if (first instanceof OpsError) throw first;
        throw new OpsError(`--from ${file}: is not a swarm backup (its ${kind === "age" ? "plaintext is not" : "content is not"} a gzip stream: ${first.message})`);
    }
    const header = tarHeader(first);
    if (!header) throw new OpsError(`--from ${file}: is not a swarm backup (${first.length < 512 ? "too short" : "not a tar archive"} inside the ${kind === "age" ? "encryption" : "compression"})`);
    if (!/^(\.\/)?swarm(\/|$)/.test(header.name)) {
        throw new OpsError(`--from ${file}: is a tar archive but not of a swarm directory (first entry ${JSON.stringify(header.name.slice(0, 60))}); name a backup written by \`npm run ops -- backup\``);
    }
    return kind;
}
