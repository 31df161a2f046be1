// Building the lab's images from Debian packages, caching them by content, and loading them.
//
// One debootstrap (minbase) root file system is the shared base layer. Each image adds one
// layer: the changes apt-get and lab/image-setup.sh make on top of the base (build-layer.sh).
// An image is kept in CACHE_DIR/images/<id>-<key>/ in `docker save` layout (manifest.json,
// config, layer tars linked from CACHE_DIR/layers), so its ID is known without an engine and
// `docker load` of it gives the same ID on every engine.
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { CACHE_DIR, ImageSpec, LAB_DIR, Mirrors, MIRROR_TIMEOUT_S, OWNER, OWNER_LABEL, SUITE } from "./config";
import { LabError, run, runWithProgress, say } from "./util";

export interface BuiltImage {
    spec: ImageSpec;
    key: string;
    /** sha256:... image ID (digest of the config) */
    imageId: string;
    dir: string;
}

const sha256 = (data: string | Buffer) => createHash("sha256").update(data).digest("hex");

function labFile(name: string): string {
    return fs.readFileSync(path.join(LAB_DIR, name), "utf8");
}

/** lab/ files copied into an image's build chroot: image-setup.sh and what it installs. */
const assetsOf = (spec: ImageSpec) => ["image-setup.sh", ...spec.assets];

/** The Debian release an image is built from. */
export const suiteOf = (spec: ImageSpec) => spec.suite ?? SUITE;

export function baseKey(mirrors: Mirrors, suite: string = SUITE): string {
    return sha256(JSON.stringify({ v: 1, suite, security: Boolean(mirrors.security), script: labFile("build-base.sh") })).slice(0, 16);
}

export function imageKey(spec: ImageSpec, mirrors: Mirrors): string {
    return sha256(
        JSON.stringify({
            v: 1,
            base: spec.standalone ? null : baseKey(mirrors, suiteOf(spec)),
            suite: suiteOf(spec),
            spec,
            script: labFile("build-layer.sh"),
            assets: assetsOf(spec).map((a) => [a, labFile(a)]),
        }),
    ).slice(0, 16);
}

const baseTar = (key: string) => path.join(CACHE_DIR, `base-${key}.tar`);
const layerTar = (spec: ImageSpec, key: string) => path.join(CACHE_DIR, "layers", `${spec.id}-${key}.tar`);
const imageDir = (spec: ImageSpec, key: string) => path.join(CACHE_DIR, "images", `${spec.id}-${key}`);

export function cachedImage(spec: ImageSpec, mirrors: Mirrors): BuiltImage | undefined {
    const key = imageKey(spec, mirrors);
    const dir = imageDir(spec, key);
    try {
        const meta = JSON.parse(fs.readFileSync(path.join(dir, "lab-meta.json"), "utf8"));
        for (const l of meta.layers as string[]) fs.accessSync(l);
        return { spec, key, imageId: meta.imageId, dir };
    } catch {
        return undefined;
    }
}

/** Images not in the cache: building them needs the mirror. */
export function missingImages(specs: ImageSpec[], mirrors: Mirrors): ImageSpec[] {
    return specs.filter((s) => !cachedImage(s, mirrors));
}

/** Fails fast, before anything changes, when the mirror does not answer (for the release `suite`). */
export function checkMirror(mirrors: Mirrors, suite: string = SUITE): void {
    const url = `${mirrors.main}/dists/${suite}/Release`;
    const r = run("curl", ["-fsS", "-o", "/dev/null", "--connect-timeout", String(MIRROR_TIMEOUT_S), "--max-time", String(MIRROR_TIMEOUT_S), url]);
    if (r.code !== 0) {
        const why = r.code === 28 ? `no answer within ${MIRROR_TIMEOUT_S}s (time-out)` : r.stderr.trim() || `curl exit ${r.code}`;
        throw new LabError(`the Debian mirror ${mirrors.main} did not answer: ${why}. Images cannot be built; set LAB_MIRROR to a reachable mirror.`, 3);
    }
}

function removeStale(dir: string, prefix: string, keep: string): void {
    let entries: string[] = [];
    try {
        entries = fs.readdirSync(dir);
    } catch {
        return;
    }
    for (const e of entries) {
        // PREFIX then the 16-digit key: node- is not node-trixie-
        const ours = e.startsWith(prefix) && /^[0-9a-f]{16}(\.tar)?$/.test(e.slice(prefix.length));
        if (ours && e !== keep) fs.rmSync(path.join(dir, e), { recursive: true, force: true });
    }
}

async function sha256File(file: string): Promise<string> {
    const h = createHash("sha256");
    await new Promise<void>((resolve, reject) => {
        fs.createReadStream(file, { highWaterMark: 4 * 1024 * 1024 })
            .on("data", (d) => h.update(d))
            .on("end", () => resolve())
            .on("error", reject);
    });
    return h.digest("hex");
}

function logFile(name: string): string {
    const dir = path.join(CACHE_DIR, "logs");
    fs.mkdirSync(dir, { recursive: true });
    const f = path.join(dir, `${name}.log`);
    fs.writeFileSync(f, "");
    return f;
}

/** Cache file names of a release other than SUITE carry its name (base-trixie-KEY.tar, apt-trixie/). */
const suiteTag = (suite: string) => (suite === SUITE ? "" : `${suite}-`);

async function ensureBase(mirrors: Mirrors, suite: string): Promise<string> {
    const key = baseKey(mirrors, suite);
    const tar = baseTar(`${suiteTag(suite)}${key}`);
    if (fs.existsSync(tar)) return tar;
    fs.mkdirSync(CACHE_DIR, { recursive: true });
    const args = [path.join(LAB_DIR, "build-base.sh"), tar, mirrors.main, suite, String(MIRROR_TIMEOUT_S)];
    if (mirrors.security) args.push(mirrors.security);
    const s = await runWithProgress(`debootstrap --variant=minbase ${suite} (base layer)`, "bash", args, { logFile: logFile(`base${suite === SUITE ? "" : `-${suite}`}`) });
    say(`  built the ${suite} base layer in ${s}s (${mb(tar)})`);
    // an older base of the same release is stale now (the other releases' bases stay)
    for (const e of fs.readdirSync(CACHE_DIR)) {
        const other = e.startsWith("base-") && e.endsWith(".tar") && e !== path.basename(tar);
        const sameSuite = suite === SUITE ? /^base-[0-9a-f]{16}\.tar$/.test(e) : e.startsWith(`base-${suite}-`);
        if (other && sameSuite) fs.rmSync(path.join(CACHE_DIR, e), { force: true });
    }
    return tar;
}

function mb(file: string): string {
    return `${Math.round(fs.statSync(file).size / 1e6)} MB`;
}

async function buildImage(spec: ImageSpec, mirrors: Mirrors): Promise<BuiltImage> {
    const key = imageKey(spec, mirrors);
    const suite = suiteOf(spec);
    const base = await ensureBase(mirrors, suite);
    const layer = layerTar(spec, key);
    fs.mkdirSync(path.dirname(layer), { recursive: true });
    const assets = fs.mkdtempSync(path.join(CACHE_DIR, ".assets-"));
    try {
        for (const a of assetsOf(spec)) fs.copyFileSync(path.join(LAB_DIR, a), path.join(assets, a));
        const s = await runWithProgress(
            `building ${spec.ref}`,
            "bash",
            [path.join(LAB_DIR, "build-layer.sh"), base, layer, spec.setup ?? spec.id, String(MIRROR_TIMEOUT_S), assets, ...spec.packages],
            // package lists of one release only per cache: an apt-get update of another would replace them
            { logFile: logFile(spec.id), env: { ...process.env, LAB_APT_CACHE: path.join(CACHE_DIR, `apt${suite === SUITE ? "" : `-${suite}`}`) } },
        );
        say(`  built ${spec.ref} in ${s}s (layer ${mb(layer)})`);
    } finally {
        fs.rmSync(assets, { recursive: true, force: true });
    }
    removeStale(path.dirname(layer), `${spec.id}-`, path.basename(layer));

    const layers = spec.standalone ? [layer] : [base, layer];
    const diffIds: string[] = [];
    for (const l of layers) diffIds.push(`sha256:${await sha256File(l)}`);
    const created = new Date().toISOString();
    const arch = process.arch === "arm64" ? "arm64" : "amd64";
    const history = [
        ...(spec.standalone ? [] : [{ created, created_by: `dccn-lab: debootstrap --variant=minbase ${suite}` }]),
        { created, created_by: `dccn-lab: apt-get install ${spec.packages.join(" ")}; image-setup.sh ${spec.id}` },
    ];
    const config = {
        architecture: arch,
        os: "linux",
        created,
        config: {
            ...spec.config,
            Labels: { [OWNER_LABEL]: OWNER, "dccn-lab.image": spec.id, "dccn-lab.key": key },
        },
        rootfs: { type: "layers", diff_ids: diffIds },
        history,
    };
    const configJson = JSON.stringify(config);
    const configHex = sha256(configJson);
    const dir = imageDir(spec, key);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, `${configHex}.json`), configJson);
    const meta = { ref: spec.ref, imageId: `sha256:${configHex}`, config: `${configHex}.json`, layers, diffIds };
    fs.writeFileSync(path.join(dir, "lab-meta.json"), JSON.stringify(meta, null, 2));
    removeStale(path.dirname(dir), `${spec.id}-`, path.basename(dir));
    return { spec, key, imageId: meta.imageId, dir };
}

/** The given lab images, from the cache or built now (builds print progress). */
export async function ensureImages(specs: ImageSpec[], mirrors: Mirrors, changes: string[]): Promise<Map<string, BuiltImage>> {
    const out = new Map<string, BuiltImage>();
    for (const spec of specs) {
        let img = cachedImage(spec, mirrors);
        if (!img) {
            img = await buildImage(spec, mirrors);
            changes.push(`built image ${spec.ref}`);
        }
        out.set(spec.id, img);
    }
    return out;
}

/**
 * Writes a `docker save`-layout directory holding the given images (layers shared by several
 * images appear once) into `staging`, with the layer tars as symbolic links into the cache;
 * `tar -h` turns it into the stream `docker load` reads.
 */
export function stageArchive(images: BuiltImage[], staging: string): void {
    fs.rmSync(staging, { recursive: true, force: true });
    fs.mkdirSync(staging, { recursive: true });
    const manifest: unknown[] = [];
    const layerNames = new Map<string, string>();
    for (const img of images) {
        const meta = JSON.parse(fs.readFileSync(path.join(img.dir, "lab-meta.json"), "utf8"));
        fs.copyFileSync(path.join(img.dir, meta.config), path.join(staging, meta.config));
        const layers: string[] = [];
        (meta.layers as string[]).forEach((l, i) => {
            const hex = (meta.diffIds[i] as string).replace(/^sha256:/, "");
            let name = layerNames.get(hex);
            if (!name) {
                name = `${hex}/layer.tar`;
                fs.mkdirSync(path.join(staging, hex));
                fs.symlinkSync(l, path.join(staging, name));
                layerNames.set(hex, name);
            }
            layers.push(name);
        });
        manifest.push({ Config: meta.config, RepoTags: [img.spec.ref], Layers: layers });
    }
    fs.writeFileSync(path.join(staging, "manifest.json"), JSON.stringify(manifest));
}

export function stagingDir(name: string): string {
    return path.join(CACHE_DIR, "staging", name);
}
