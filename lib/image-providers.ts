/**
 * Images the program builds (compose `build:`, or a stack config's `overrides.build`): built on a
 * swarm manager through the Engine API's build endpoint, with the context (lib/build-context.ts)
 * streamed to it over the SSH connection, then pushed to the private registry with the admin's
 * credentials. The state keeps the context's digest and the pushed image's digest: an unchanged
 * context builds nothing; a changed one builds and pushes again, and the services that run the
 * image (`ref`, which carries the digest) roll onto it. Nothing is needed where `pulumi` runs but
 * the files.
 */
import * as path from "path";
import { Readable } from "stream";
import type { ResourceImpl } from "./resource-impl";
import { apiMessage, Transport } from "./engine-transport";
import { BuildContextError, packContext } from "./build-context";
import { stableJson, taggedImage } from "./engine-spec";
import { authHeader, connectOrGone, inspectDistribution, type Access, type Connect, type RegistryAuth } from "./stack-providers";
import { changesAllowed } from "./write-gate";
import { progress as report } from "./progress";

export interface ImageInputs extends Access {
    /** Stack (namespace) name and the service, for messages. */
    stack: string;
    service: string;
    /** Where the build is written: `stacks/webapp/docker-compose.yml: services.web.build`. */
    origin: string;
    /** The tag to push: `registry.lab:5000/demo_user_register:1.0`. */
    image: string;
    /** The context folder, relative to the project. */
    context: string;
    /** The Dockerfile, relative to the context. */
    dockerfile: string;
    args: Record<string, string>;
    target?: string;
    labels: Record<string, string>;
    /** `sha256:` of the context as lib/build-context.ts packs it (computed by the program). */
    contextDigest: string;
    /** The registry's admin, who may push. A secret. */
    pushAuth: RegistryAuth;
    /** Seconds the build may take (default 1200). */
    buildTimeout?: number;
}

export interface ImageOutputs extends ImageInputs {
    /** The pushed manifest's digest, `sha256:...`. */
    digest: string;
    /** What services run: `<image>@<digest>`. */
    ref: string;
    /** What the registry has at the tag, when a refresh found it differs from `digest` (pushed by hand). */
    registryDigest?: string;
}

type Any = any; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Lines of a build or push's progress stream the error message quotes. */
const TAIL_LINES = 12;

/** The inputs whose change means a new build. */
const BUILD_FIELDS = ["image", "contextDigest", "dockerfile", "args", "target", "labels"] as const;

function what(p: ImageInputs): string {
    return `${p.origin} (stack ${p.stack}, service ${p.service})`;
}

/** `repo` and `tag` of `host:port/path[:tag]` (`latest` when it has none, as taggedImage adds it). */
export function splitTag(image: string): { repo: string; tag: string } {
    const tagged = taggedImage(image);
    const colon = tagged.lastIndexOf(":");
    return { repo: tagged.slice(0, colon), tag: tagged.slice(colon + 1) };
}

/**
 * Follows a build's or push's JSON progress stream: `onLine` for each line of output (`stream` or
 * `status` text), the `aux` objects collected, and the stream's own error (a failing step) thrown
 * with the last lines before it.
 */
function follow(t: Transport, stream: NodeJS.ReadableStream, onLine: (line: string) => void): Promise<{ aux: Any[]; tail: string[] }> {
    return new Promise((resolve, reject) => {
        const tail: string[] = [];
        const aux: Any[] = [];
        let failed: string | undefined;
        t.docker.modem.followProgress(stream, (err: Error | null) => {
            // A failing step is an event in the stream ({ error }), not an error of the stream.
            if (err || failed !== undefined) reject(Object.assign(new Error(failed ?? err!.message), { tail }));
            else resolve({ aux, tail });
        }, (ev: Any) => {
            if (ev.aux) aux.push(ev.aux);
            const text = typeof ev.stream === "string" ? ev.stream : typeof ev.status === "string" && !ev.progressDetail?.total ? `${ev.id ? `${ev.id}: ` : ""}${ev.status}` : "";
            for (const line of text.split("\n").map((l: string) => l.trimEnd()).filter(Boolean)) {
                tail.push(line);
                if (tail.length > TAIL_LINES) tail.shift();
                onLine(line);
            }
            if (ev.error) failed ??= String(ev.errorDetail?.message ?? ev.error).trim();
        });
    });
}

function failure(p: ImageInputs, step: string, t: Transport, e: Error & { tail?: string[] }): Error {
    const tail = (e.tail ?? []).filter((l) => l !== e.message.trim());
    return new Error(`${what(p)}: ${step} ${p.image} on ${t.name} failed: ${e.message.trim()}` +
        (tail.length > 0 ? `\n  last lines of the build:\n    ${tail.join("\n    ")}` : ""));
}

/**
 * Builds and pushes on a manager; the pushed digest. `progress` gets the build's step lines (the
 * provider shows them in the engine's progress display).
 */
export async function buildAndPush(t: Transport, p: ImageInputs, progress: (line: string) => void = () => {}): Promise<string> {
    let ctx;
    try {
        ctx = await packContext(path.resolve(p.context), p.dockerfile);
    } catch (e) {
        if (e instanceof BuildContextError) throw new Error(`${what(p)}: ${e.message}`);
        throw e;
    }
    if (ctx.digest !== p.contextDigest) {
        throw new Error(`${what(p)}: the files in ${p.context} changed during this deployment (the preview saw ${p.contextDigest.slice(7, 19)}, ` +
            `now ${ctx.digest.slice(7, 19)}); nothing was built. Run \`pulumi up\` again`);
    }
    await changesAllowed(); // a build changes the manager's images: not before the cluster lock
    const timeout = (p.buildTimeout ?? 1200) * 1000;
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), timeout);
    try {
        let stream: NodeJS.ReadableStream;
        try {
            stream = await (t.docker as Any).buildImage(Readable.from([ctx.tar]), {
                t: p.image, dockerfile: p.dockerfile, buildargs: JSON.stringify(p.args) as Any, labels: JSON.stringify(p.labels) as Any,
                ...(p.target ? { target: p.target } : {}), rm: true, forcerm: true, abortSignal: ac.signal,
            } as Any);
        } catch (e) {
            throw failure(p, "building", t, e as Error);
        }
        progress(`building ${p.image} on ${t.name} (${ctx.files} files, ${(ctx.tar.length / 1024).toFixed(0)} KiB)`);
        await follow(t, stream, (l) => { if (/^Step \d+\/\d+ :/.test(l)) progress(l); }).catch((e) => { throw failure(p, "building", t, e); });
        const { repo, tag } = splitTag(p.image);
        progress(`pushing ${p.image}`);
        let push: NodeJS.ReadableStream;
        try {
            push = await t.docker.getImage(repo).push({ tag, authconfig: p.pushAuth, abortSignal: ac.signal } as Any) as unknown as NodeJS.ReadableStream;
        } catch (e) {
            throw failure(p, "pushing", t, e as Error);
        }
        const { aux } = await follow(t, push, () => {}).catch((e) => { throw failure(p, "pushing", t, e); });
        const digest = aux.map((a) => a?.Digest).find((d) => typeof d === "string" && d.startsWith("sha256:"));
        if (!digest) throw new Error(`${what(p)}: the push of ${p.image} from ${t.name} reported no digest`);
        return digest;
    } catch (e) {
        if (ac.signal.aborted) throw new Error(`${what(p)}: building and pushing ${p.image} on ${t.name} took longer than ${timeout / 1000}s; nothing else changed`);
        throw e;
    } finally {
        clearTimeout(timer);
    }
}

/** What the registry has at the image's tag (`sha256:...`), undefined when it has no such tag; throws when it cannot say. */
async function registryDigest(t: Transport, p: ImageInputs): Promise<string | undefined> {
    const r = await inspectDistribution(t, p.image, authHeader(p.pushAuth));
    if (r.status === 200 && typeof r.json?.Descriptor?.digest === "string") return r.json.Descriptor.digest;
    // The engine answers 403/404 with the registry's "manifest unknown" for a tag it does not have.
    if ((r.status === 404 || r.status === 403 || r.status === 500) && /manifest unknown|not found/i.test(apiMessage(r))) return undefined;
    throw new Error(`${t.name}: asking the registry for ${p.image} failed (HTTP ${r.status}): ${apiMessage(r)}`);
}

export function imageProvider(connect: Connect, progress: (line: string) => void = report): ResourceImpl {
    const build = async (p: ImageInputs): Promise<ImageOutputs> => {
        const t = await connect(p);
        const digest = await buildAndPush(t, p, progress);
        return { ...p, digest, ref: `${p.image}@${digest}` };
    };
    return {
        async diff(_id: string, olds: ImageOutputs, news: ImageInputs) {
            const diffs: string[] = [];
            for (const k of BUILD_FIELDS) {
                if (stableJson(olds[k] ?? null) !== stableJson(news[k] ?? null)) diffs.push(k);
            }
            // A refresh found another image at the tag (pushed by hand): push ours again.
            if (olds.registryDigest && olds.registryDigest !== olds.digest) diffs.push("digest");
            // Where it is built and pushed from (managers, the push user's credentials, the folder the
            // context is in) is not the image: no change shows (the engine keeps the new inputs all the
            // same), and the services that run it do not look changed in a preview.
            return { changes: diffs.length > 0, replaces: [], diffs };
        },

        /** A change of the SSH connection only: the image stays as pushed. */
        stateOnly(olds: ImageOutputs, news: ImageInputs) {
            return { ...olds, ...news, digest: olds.digest, ref: olds.ref };
        },

        async create(inputs: ImageInputs) {
            const outs = await build(inputs);
            return { id: `${inputs.stack}/${inputs.service}`, outs };
        },

        /** Called only when diff found a change to build (the provider keeps any other change in the state alone). */
        async update(_id: string, _olds: ImageOutputs, news: ImageInputs) {
            return { outs: await build(news) };
        },

        /**
         * Whether the registry still has the pushed image at its tag: gone (the registry says it has
         * no such manifest: its data was lost) drops it from the state, so the next `up` builds and pushes it again; another digest
         * (pushed by hand) is kept as `registryDigest`, and the next `up` pushes ours again.
         */
        async read(id: string, props: ImageOutputs) {
            const t = await connectOrGone(connect, props);
            if (!t) return { id: "", props: {} };
            // A registry that does not answer (down, or moving: `up --refresh` brings it back before
            // the stacks) says nothing about the image: the state stays as it is.
            const have = await registryDigest(t, props).catch(() => props.digest);
            if (have === undefined) return { id: "", props: {} };
            const { registryDigest: _was, ...rest } = props;
            return { id, props: { ...rest, ...(have !== props.digest ? { registryDigest: have } : {}) } };
        },

        /** The registry keeps what was pushed (its garbage collection is the registry's business). */
        async delete() { /* nothing on the cluster */ },
    };
}
