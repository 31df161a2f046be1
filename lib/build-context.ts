/**
 * An image's build context, as the Docker CLI sends it to the engine's build endpoint: the files of
 * a directory in the repository, less what its `.dockerignore` excludes, as one tar stream. Made
 * the same way on every machine (names sorted, owner root, times zeroed, modes 0644/0755), so its
 * sha256 names the content alone: a fresh clone of the same commit gives the same digest, and the
 * image is built again only when a file it could use changed.
 */
import { createHash } from "crypto";
import * as fs from "fs";
import * as path from "path";
import dockerignore from "@balena/dockerignore";
import * as tar from "tar-stream";

/** The most a context may hold; a bigger one is almost always a forgotten `.dockerignore`. */
export const MAX_CONTEXT_BYTES = 256 * 1024 * 1024;

export class BuildContextError extends Error {
    constructor(message: string) {
        super(message);
        this.name = "BuildContextError";
    }
}

export interface BuildContext {
    /** The tar stream's bytes (uncompressed). */
    tar: Buffer;
    /** `sha256:<hex>` of `tar`. */
    digest: string;
    /** Regular files in it. */
    files: number;
}

interface Entry {
    name: string;
    type: "file" | "directory" | "symlink";
    abs: string;
    mode: number;
    linkname?: string;
}

/**
 * Walks `dir` (an absolute path), keeping what `.dockerignore` allows. Special files (sockets,
 * devices, FIFOs) are refused, as the engine would fail on them; symbolic links go in as links (the
 * build sees the link, not what it points to), as the CLI sends them.
 */
function walk(dir: string, dockerfile: string): Entry[] {
    let ignore: ReturnType<typeof dockerignore> | undefined;
    const ignoreFile = path.join(dir, ".dockerignore");
    if (fs.existsSync(ignoreFile)) ignore = dockerignore({ ignorecase: false }).add(fs.readFileSync(ignoreFile, "utf8"));
    // The CLI always sends the Dockerfile and .dockerignore, whatever .dockerignore says.
    const always = new Set([".dockerignore", dockerfile.split(path.sep).join("/")]);
    const out: Entry[] = [];
    const visit = (rel: string) => {
        const abs = rel ? path.join(dir, rel) : dir;
        const names = fs.readdirSync(abs).sort();
        for (const n of names) {
            const r = rel ? `${rel}/${n}` : n;
            const a = path.join(abs, n);
            const st = fs.lstatSync(a);
            const excluded = ignore !== undefined && !always.has(r) && ignore.ignores(r);
            if (st.isDirectory()) {
                // An excluded folder is still walked: a `!` rule may bring back a file in it.
                if (!excluded) out.push({ name: r, type: "directory", abs: a, mode: 0o755 });
                visit(r);
            } else if (excluded) {
                continue;
            } else if (st.isFile()) {
                out.push({ name: r, type: "file", abs: a, mode: st.mode & 0o111 ? 0o755 : 0o644 });
            } else if (st.isSymbolicLink()) {
                out.push({ name: r, type: "symlink", abs: a, mode: 0o777, linkname: fs.readlinkSync(a) });
            } else {
                throw new BuildContextError(`${a} is not a regular file, folder or link (a socket, device or FIFO); ` +
                    "remove it from the build context or list it in the context's .dockerignore");
            }
        }
    };
    visit("");
    return out;
}

/**
 * The context of `dir` with `dockerfile` (relative to it) for the build endpoint. Errors name the
 * path and the fix; nothing is sent anywhere.
 */
export async function packContext(dir: string, dockerfile = "Dockerfile", maxBytes = MAX_CONTEXT_BYTES): Promise<BuildContext> {
    let st: fs.Stats;
    try {
        st = fs.statSync(dir);
    } catch {
        throw new BuildContextError(`the build context ${dir} does not exist`);
    }
    if (!st.isDirectory()) throw new BuildContextError(`the build context ${dir} is not a folder`);
    const df = path.join(dir, dockerfile);
    if (!fs.existsSync(df) || !fs.statSync(df).isFile()) throw new BuildContextError(`the build context ${dir} has no ${dockerfile}`);
    const entries = walk(dir, dockerfile);
    let size = 0;
    for (const e of entries) if (e.type === "file") size += fs.statSync(e.abs).size;
    if (size > maxBytes) {
        throw new BuildContextError(`the build context ${dir} holds ${(size / 1048576).toFixed(0)} MiB (at most ${(maxBytes / 1048576).toFixed(0)} MiB); ` +
            "list what the image does not need in the context's .dockerignore");
    }
    const pack = tar.pack();
    const chunks: Buffer[] = [];
    const done = new Promise<void>((resolve, reject) => {
        pack.on("data", (c: Buffer) => chunks.push(c));
        pack.on("end", resolve);
        pack.on("error", reject);
    });
    const header = (e: Entry, size?: number): tar.Headers => ({
        name: e.name, type: e.type, mode: e.mode, mtime: new Date(0), uid: 0, gid: 0, uname: "", gname: "",
        ...(size !== undefined ? { size } : {}), ...(e.linkname !== undefined ? { linkname: e.linkname } : {}),
    });
    let files = 0;
    for (const e of entries) {
        if (e.type === "file") {
            const data = fs.readFileSync(e.abs);
            await new Promise<void>((resolve, reject) => pack.entry(header(e, data.length), data, (err) => err ? reject(err) : resolve()));
            files++;
        } else {
            pack.entry(header(e));
        }
    }
    pack.finalize();
    await done;
    const bytes = Buffer.concat(chunks);
    return { tar: bytes, digest: `sha256:${createHash("sha256").update(bytes).digest("hex")}`, files };
}
