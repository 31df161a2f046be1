/**
 * Dynamic providers for the objects of an application stack, done through the Docker Engine API
 * on a swarm manager (lib/engine-transport.ts): overlay networks, secrets, configs, services, and
 * the check that the external objects a stack refers to exist. They implement `read`, so
 * `pulumi refresh` reports what was changed by hand, and `diff` compares the normalised desired
 * spec with the normalised actual one (lib/engine-spec.ts), so nothing shows as a change that is
 * not one.
 *
 * The provider logic is built by `*Provider(connect)`: the Pulumi resources reach the managers over
 * SSH; tests pass a connect that runs the same scripts against a local dockerd.
 */
import { randomBytes } from "crypto";
import type { CheckFailure, ResourceImpl } from "./resource-impl";
import { api, API_VERSION, apiMessage, apiOk, findManager, localTransport, sshTransport, Transport, type ApiResponse } from "./engine-transport";
import {
    differences, JsonObject, LABEL_IMAGE, LABEL_NAMESPACE, networkDifferences, normaliseNetwork, normaliseService,
    serviceFromEngine, stableJson, taggedImage,
} from "./engine-spec";
import { sshTarget, type HostSpec, type SshSpec } from "./connection";
import { keyOf, listed, listedById, shared } from "./read-cache";
import { swarmGone } from "./swarm-ops";
import { engineMeets } from "../compose/cli-rules";
import type { EngineRequirement } from "../compose/types";


/** How the providers reach the swarm: the configured managers, over SSH. */
export interface Access {
    managers: HostSpec[];
    ssh: SshSpec;
    /**
     * Instead of SSH: the Docker socket of a manager on the machine that runs Pulumi (Pulumi run
     * on a manager itself; the integration tests' throwaway dockerd). Empty or absent: SSH.
     */
    engineSocket?: string;
}

/** Finds the manager to talk to for a resource's inputs. */
export type Connect = (p: Access) => Promise<Transport>;

/** The first configured manager with a quorum, over SSH with pinned host keys (or the local socket, if given). */
export const sshConnect: Connect = (p) => findManager(p.engineSocket
    ? [localTransport(`local engine ${p.engineSocket}`, p.engineSocket)]
    : sshTargets(p).map((t) => sshTransport(t)));

/** The SSH targets (one per candidate node) the access details describe. */
function sshTargets(p: Access) {
    return p.managers.map((h) => sshTarget(p.ssh, h));
}

/**
 * For `read`: the manager to ask, or undefined when the swarm these objects lived in is gone (every
 * node answers out of any swarm, or is another machine now: a rebuilt lab). Refresh then drops them
 * instead of failing, and the next up creates them again. Shared by the reads of one refresh
 * (lib/read-cache.ts), as are the lists they read their objects from.
 */
export function connectOrGone(connect: Connect, p: Access): Promise<Transport | undefined> {
    return shared(`manager|${keyOf(p.managers, p.ssh, p.engineSocket ?? "")}`, async () => {
        try {
            return await connect(p);
        } catch (e) {
            if (!p.engineSocket && p.managers.length > 0 && await swarmGone(sshTargets(p))) return undefined;
            throw e;
        }
    });
}

/** Where a stack object comes from, for messages: `stacks/webapp.yml: services.web`. */
interface Origin {
    /** Stack (namespace) name. */
    stack: string;
    /** Compose file. */
    file: string;
    /** Compose key, e.g. `services.web`, `networks.default`. */
    key: string;
    /**
     * What the stack's compose file needs of the swarm's engine (compose/target.ts): checked against
     * the manager's engine at preview and before a create or update. Absent: nothing.
     */
    requires?: EngineRequirement;
}

const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

// =============================================================================================
// The engine a stack needs (Origin.requires): a compose file converted with a newer docker CLI's
// `docker stack deploy` rules than the manager's engine is held to is refused, naming the file, the
// key and the fix, at preview (check) and again before anything is created or changed.

/** The manager's engine version (`GET /version`), shared by the checks of one preview. */
function engineVersionOf(t: Transport): Promise<string> {
    return shared(`engine-version|${t.name}`, async () =>
        String((await apiOk(t, { method: "GET", path: "/version" }, "reading the engine's version")).json?.Version ?? ""));
}

/** Why a stack that needs `r` cannot go onto an engine of `engineVersion` (on `manager`), or undefined. */
export function engineRefusal(r: EngineRequirement, engineVersion: string, manager: string): string | undefined {
    if (engineMeets(engineVersion, r.cli)) return undefined;
    return `${r.file}: ${r.key || "(the file)"}: the swarm's manager ${manager} runs Docker ${engineVersion || "(unknown)"}, ` +
        `whose docker stack deploy (docker CLI ${r.olderCli} rules) refuses this file or converts it otherwise; the program read it ` +
        `with docker CLI ${r.cli}'s: ${r.reason} (fix: ${r.fix}; or run the stack on a swarm of Docker ${r.cli} or later)`;
}

/** check(): the requirement against the manager's engine; nothing when there is none or no swarm to ask yet (create checks then). */
async function requirementFailures(connect: Connect, news: Access & Origin): Promise<CheckFailure[]> {
    if (!news.requires || hasUnknown(news.managers) || hasUnknown(news.ssh)) return [];
    let t: Transport | undefined;
    try {
        t = await connectOrGone(connect, news);
    } catch {
        t = undefined; // no swarm yet (the first `pulumi up` builds it): create() checks
    }
    if (!t) return [];
    const why = engineRefusal(news.requires, await engineVersionOf(t), t.name);
    return why ? [{ property: "requires", reason: why }] : [];
}

/** create()/update(): refuses before anything changes. */
async function assertRequirement(t: Transport, p: Origin): Promise<void> {
    if (!p.requires) return;
    const why = engineRefusal(p.requires, await engineVersionOf(t), t.name);
    if (why) throw new Error(why);
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function accessChanged(olds: Partial<Access>, news: Access): boolean {
    const view = (a: Partial<Access>) => stableJson({ m: a.managers ?? [], s: a.ssh ?? {}, e: a.engineSocket ?? "" });
    return view(olds) !== view(news);
}

/**
 * The engine's view of an object, for the state only when it differs from what the inputs ask
 * (drift a refresh found): absent, the diff compares with the inputs themselves. Keeps a state's
 * spec once instead of twice.
 */
function ifDrifted(actual: JsonObject, same: boolean): { actual?: JsonObject } {
    return same ? {} : { actual };
}

function q(filters: Record<string, string[]>): string {
    return encodeURIComponent(JSON.stringify(filters));
}

function where(o: Origin): string {
    return `${o.file}: ${o.key}`;
}

/** Objects of a kind whose name is exactly `name` (the engine's name filter matches prefixes too). */
async function byName(t: Transport, kind: "networks" | "secrets" | "configs" | "services", name: string): Promise<any[]> { // eslint-disable-line @typescript-eslint/no-explicit-any
    const r = await apiOk(t, { method: "GET", path: `/${kind}?filters=${q({ name: [name] })}` }, `listing ${kind} named ${name}`);
    return ((r.json ?? []) as any[]).filter((x) => (x.Name ?? x.Spec?.Name) === name); // eslint-disable-line @typescript-eslint/no-explicit-any
}

// =============================================================================================
// Networks: created once, never changed in place (the engine cannot); a change is a replacement.

export interface NetworkInputs extends Access, Origin {
    /** Engine name. */
    name: string;
    /** NetworkCreate body (engine-spec networkCreate). */
    create: JsonObject;
}

export interface NetworkOutputs extends NetworkInputs {
    networkId: string;
    /** The network as the engine has it, normalised (engine-spec normaliseNetwork), when it differs from `create`. */
    actual?: JsonObject;
}

async function readNetwork(t: Transport, id: string): Promise<JsonObject | undefined> {
    const r = await api(t, { method: "GET", path: `/networks/${encodeURIComponent(id)}` });
    if (r.status === 404) return undefined;
    if (r.status !== 200) throw new Error(`${t.name}: reading network ${id} failed: ${apiMessage(r)}`);
    return normaliseNetwork(r.json);
}

/**
 * Why a network cannot go while a service still uses it, naming the service and the fix. Pulumi
 * removes the stack's own services before their networks, so the service is one this stack's state
 * does not hold: left by a create that failed to converge (the engine keeps it, as after `docker
 * stack deploy`), or made by hand.
 */
async function networkUserMessage(t: Transport, props: NetworkOutputs, serviceId: string, engineMessage: string): Promise<string> {
    const svc = await inspectService(t, serviceId).catch(() => undefined);
    const name: string = svc?.Spec?.Name ?? serviceId;
    const ns = svc?.Spec?.Labels?.[LABEL_NAMESPACE];
    const whose = ns === props.stack
        ? `service ${name} of stack ${props.stack} still uses it, and this stack's Pulumi state does not hold it (a create that failed to converge leaves its service on the swarm)`
        : `service ${name}${ns ? ` of stack ${ns}` : ""}, which this program does not manage, still uses it`;
    return `${where(props)}: removing network ${props.name} failed: ${whose}; remove it (docker service rm ${name}) and run \`pulumi up\` again ` +
        `(engine: ${engineMessage})`;
}

function networkActual(p: NetworkInputs, actual: JsonObject): { actual?: JsonObject } {
    return ifDrifted(actual, networkDifferences(p.create, actual).length === 0);
}

export function networkProvider(connect: Connect): ResourceImpl {
    return {
        async check(_olds: NetworkInputs | undefined, news: NetworkInputs) {
            return { inputs: news, failures: await requirementFailures(connect, news) };
        },

        async diff(_id: string, olds: NetworkOutputs, news: NetworkInputs) {
            const changed = olds.name !== news.name ? ["name"] :
                networkDifferences(news.create, olds.actual ?? olds.create ?? {}).length > 0 ? ["create"] : [];
            // The name stays: the old network must go before the new one is made.
            return { changes: changed.length > 0 || accessChanged(olds, news), replaces: changed, deleteBeforeReplace: true };
        },

        /** A change of connection only: the state keeps the engine's view only where it drifted. */
        stateOnly(olds: NetworkOutputs, news: NetworkInputs) {
            const { actual, ...rest } = { ...olds, ...news };
            return { ...rest, ...(actual ? networkActual(news, actual) : {}) };
        },

        async create(inputs: NetworkInputs) {
            const t = await connect(inputs);
            await assertRequirement(t, inputs);
            let id: string;
            const existing = await byName(t, "networks", inputs.name);
            if (existing.length > 0) {
                // Adopt what an earlier run or `docker stack deploy` created, if it is this stack's and as asked.
                const n = existing[0];
                if ((n.Labels ?? {})[LABEL_NAMESPACE] !== inputs.stack) {
                    throw new Error(`${where(inputs)}: network ${inputs.name} already exists on the swarm and is not part of stack ${inputs.stack}; ` +
                        "remove it or give the network another name");
                }
                const diffs = networkDifferences(inputs.create, normaliseNetwork(n));
                if (diffs.length > 0) {
                    throw new Error(`${where(inputs)}: network ${inputs.name} already exists with other settings (${diffs.join(", ")}); ` +
                        "networks cannot change in place: remove the stack's services and the network, then run `pulumi up` again");
                }
                id = n.Id;
            } else {
                const r = await apiOk(t, { method: "POST", path: "/networks/create", body: inputs.create }, `${where(inputs)}: creating network ${inputs.name}`);
                id = r.json.Id;
            }
            const actual = await readNetwork(t, id);
            if (!actual) throw new Error(`${where(inputs)}: network ${inputs.name} (${id}) vanished right after it was created`);
            const outs: NetworkOutputs = { ...inputs, networkId: id, ...networkActual(inputs, actual) };
            return { id, outs };
        },

        async read(id: string, props: NetworkOutputs) {
            const t = await connectOrGone(connect, props);
            if (!t) return { id: "", props: {} };
            const n = await listedById(t, "networks", id);
            if (!n) return { id: "", props: {} };
            const { actual: _was, ...rest } = props;
            return { id, props: { ...rest, ...networkActual(props, normaliseNetwork(n)) } };
        },

        async update(id: string, _olds: NetworkOutputs, news: NetworkInputs) {
            // Only the access changed (a replacement handles anything else).
            const t = await connect(news);
            const actual = await readNetwork(t, id);
            if (!actual) throw new Error(`${where(news)}: network ${news.name} (${id}) is gone; run \`pulumi refresh\``);
            return { outs: { ...news, networkId: id, ...networkActual(news, actual) } };
        },

        async delete(id: string, props: NetworkOutputs) {
            const t = await connect(props);
            // Tasks of services just removed may still hold endpoints for a little while.
            const until = Date.now() + 90_000;
            for (;;) {
                const r = await api(t, { method: "DELETE", path: `/networks/${encodeURIComponent(id)}` });
                if (r.status === 404) return;
                if (r.status === 204 || r.status === 200) {
                    // The manager's own copy goes a moment later; wait for it (bounded), so a new
                    // network of the same name can be created right after (a replacement).
                    const gone = Date.now() + 30_000;
                    while (Date.now() < gone && (await api(t, { method: "GET", path: `/networks/${encodeURIComponent(id)}` })).status !== 404) await sleep(1000);
                    return;
                }
                const msg = apiMessage(r);
                const user = /in use by service (\w+)/i.exec(msg);
                if (user) throw new Error(await networkUserMessage(t, props, user[1], msg));
                if (Date.now() > until || !/active endpoints|in use by task/i.test(msg)) {
                    throw new Error(`${where(props)}: removing network ${props.name} failed (HTTP ${r.status}): ${msg}`);
                }
                await sleep(2000);
            }
        },
    };
}


// =============================================================================================
// Secrets and configs: immutable in the engine except for their labels. Named by content
// (`<name>-<8 hex>`), so a new content is a new object: created first, services switched to it,
// the old one removed last (Pulumi's create-before-delete replacement).

export interface FileObjectInputs extends Access, Origin {
    kind: "secret" | "config";
    name: string;
    labels: Record<string, string>;
    /** base64 of the content (a secret for secrets). */
    data: string;
    /** `template_driver` (`{ Name }`) and a secret's `driver` (`{ Name, Options }`), as the engine takes them. */
    templating?: JsonObject;
    driver?: JsonObject;
}

export interface FileObjectOutputs extends FileObjectInputs {
    objectId: string;
    /** Name and labels as the engine has them (and the data, for configs). */
    actual?: JsonObject;
}

async function readFileObject(t: Transport, kind: "secret" | "config", id: string): Promise<{ version: number; spec: any } | undefined> { // eslint-disable-line @typescript-eslint/no-explicit-any
    const r = await api(t, { method: "GET", path: `/${kind}s/${encodeURIComponent(id)}` });
    if (r.status === 404) return undefined;
    if (r.status !== 200) throw new Error(`${t.name}: reading ${kind} ${id} failed: ${apiMessage(r)}`);
    return { version: r.json.Version?.Index ?? 0, spec: r.json.Spec ?? {} };
}

function fileObjectActual(kind: "secret" | "config", spec: any): JsonObject { // eslint-disable-line @typescript-eslint/no-explicit-any
    const out: JsonObject = { Name: spec.Name, Labels: spec.Labels ?? {} };
    if (kind === "config") out.Data = spec.Data ?? "";
    if (spec.Templating) out.Templating = spec.Templating;
    if (spec.Driver) out.Driver = spec.Driver;
    return out;
}

/** Templating and Driver as one comparable string (absent and empty alike). */
function fileObjectDrivers(p: { templating?: JsonObject; driver?: JsonObject }): string {
    return stableJson({ t: p.templating && Object.keys(p.templating).length > 0 ? p.templating : null, d: p.driver ?? null });
}

/** A secret's or config's actual name, labels (and a config's data): kept only when they differ from the inputs. */
function fileActual(p: FileObjectInputs, actual: JsonObject): { actual?: JsonObject } {
    const same = actual.Name === p.name && stableJson(actual.Labels ?? {}) === stableJson(p.labels ?? {}) &&
        (p.kind !== "config" || actual.Data === p.data);
    return ifDrifted(actual, same);
}

export function fileObjectProvider(connect: Connect): ResourceImpl {
    return {
        async check(_olds: FileObjectInputs | undefined, news: FileObjectInputs) {
            return { inputs: news, failures: await requirementFailures(connect, news) };
        },

        async diff(_id: string, olds: FileObjectOutputs, news: FileObjectInputs) {
            const replaces: string[] = [];
            if (olds.name !== news.name) replaces.push("name");
            const oldData = olds.kind === "config" && olds.actual?.Data !== undefined ? String(olds.actual.Data) : olds.data;
            if (oldData !== news.data) replaces.push("data");
            if (olds.kind !== news.kind) replaces.push("kind");
            // Fixed at creation like the content (the name changes with them, see compose/convert.ts).
            if (fileObjectDrivers(olds) !== fileObjectDrivers(news)) replaces.push(news.templating ? "templating" : "driver");
            const labels = stableJson((olds.actual?.Labels as Record<string, string>) ?? olds.labels ?? {}) !== stableJson(news.labels);
            return {
                changes: replaces.length > 0 || labels || accessChanged(olds, news),
                replaces,
                // A new content has a new name: make it before the old one goes. Same name: it must go first.
                deleteBeforeReplace: olds.name === news.name,
            };
        },

        /** A change of connection only: the state keeps the engine's view only where it drifted. */
        stateOnly(olds: FileObjectOutputs, news: FileObjectInputs) {
            const { actual, ...rest } = { ...olds, ...news };
            return { ...rest, ...(actual ? fileActual(news, actual) : {}) };
        },

        async create(inputs: FileObjectInputs) {
            const t = await connect(inputs);
            await assertRequirement(t, inputs);
            const kind = inputs.kind;
            const existing = await byName(t, `${kind}s`, inputs.name);
            let id: string;
            if (existing.length > 0) {
                const o = existing[0];
                if ((o.Spec?.Labels ?? {})[LABEL_NAMESPACE] !== inputs.stack) {
                    throw new Error(`${where(inputs)}: ${kind} ${inputs.name} already exists on the swarm and is not part of stack ${inputs.stack}`);
                }
                if (kind === "config" && o.Spec?.Data !== inputs.data) {
                    throw new Error(`${where(inputs)}: config ${inputs.name} already exists with another content; remove it (docker config rm ${inputs.name})`);
                }
                id = o.ID;
            } else {
                const body = { Name: inputs.name, Labels: inputs.labels, Data: inputs.data, Templating: inputs.templating, Driver: inputs.driver };
                const r = await apiOk(t, { method: "POST", path: `/${kind}s/create`, body }, `${where(inputs)}: creating ${kind} ${inputs.name}`);
                id = r.json.ID;
            }
            const cur = await readFileObject(t, kind, id);
            if (!cur) throw new Error(`${where(inputs)}: ${kind} ${inputs.name} (${id}) vanished right after it was created`);
            if (stableJson(cur.spec.Labels ?? {}) !== stableJson(inputs.labels)) await updateLabels(t, inputs, id);
            const now = await readFileObject(t, kind, id);
            const outs: FileObjectOutputs = { ...inputs, objectId: id, ...fileActual(inputs, fileObjectActual(kind, now!.spec)) };
            return { id, outs };
        },

        async read(id: string, props: FileObjectOutputs) {
            const t = await connectOrGone(connect, props);
            if (!t) return { id: "", props: {} };
            const cur = await listedById(t, `${props.kind}s`, id);
            if (!cur) return { id: "", props: {} };
            const { actual: _was, ...rest } = props;
            return { id, props: { ...rest, ...fileActual(props, fileObjectActual(props.kind, cur.Spec ?? {})) } };
        },

        async update(id: string, _olds: FileObjectOutputs, news: FileObjectInputs) {
            // Labels or access only (anything else is a replacement).
            const t = await connect(news);
            await updateLabels(t, news, id);
            const cur = await readFileObject(t, news.kind, id);
            if (!cur) throw new Error(`${where(news)}: ${news.kind} ${news.name} (${id}) is gone; run \`pulumi refresh\``);
            return { outs: { ...news, objectId: id, ...fileActual(news, fileObjectActual(news.kind, cur.spec)) } };
        },

        async delete(id: string, props: FileObjectOutputs) {
            const t = await connect(props);
            const r = await api(t, { method: "DELETE", path: `/${props.kind}s/${encodeURIComponent(id)}` });
            if (r.status === 204 || r.status === 200 || r.status === 404) return;
            // "in use by the following service": a service outside this program still refers to it (terraform-provider-docker #381).
            throw new Error(`${where(props)}: removing ${props.kind} ${props.name} failed (HTTP ${r.status}): ${apiMessage(r)}`);
        },
    };
}

async function updateLabels(t: Transport, p: FileObjectInputs, id: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
        const cur = await readFileObject(t, p.kind, id);
        if (!cur) throw new Error(`${where(p)}: ${p.kind} ${p.name} (${id}) is gone`);
        if (stableJson(cur.spec.Labels ?? {}) === stableJson(p.labels)) return;
        const body = { ...cur.spec, Labels: p.labels };
        const r = await api(t, { method: "POST", path: `/${p.kind}s/${encodeURIComponent(id)}/update?version=${cur.version}`, body });
        if (r.status === 200) return;
        if (attempt < 5 && /out of sequence/i.test(apiMessage(r))) continue;
        throw new Error(`${where(p)}: updating the labels of ${p.kind} ${p.name} failed (HTTP ${r.status}): ${apiMessage(r)}`);
    }
}



// =============================================================================================
// External secrets with a value from the stack's config (overrides.externalSecrets): made under
// their external name when missing, as an administrator's `docker secret create` would; one that
// exists already is used as it is and never removed. Its value cannot change in place (the name
// is fixed and services hold it): a new value applies once the secret is removed by hand.

export interface ProvidedSecretInputs extends Access, Origin {
    /** The external (engine) name. */
    name: string;
    /** base64 of the value (a secret). */
    data: string;
}

export interface ProvidedSecretOutputs extends ProvidedSecretInputs {
    objectId: string;
    /** The program made it (and removes it on delete); false: it existed. */
    created: boolean;
}

export function providedSecretProvider(connect: Connect): ResourceImpl {
    return {
        async check(_olds: ProvidedSecretInputs | undefined, news: ProvidedSecretInputs) {
            return { inputs: news, failures: await requirementFailures(connect, news) };
        },

        async diff(_id: string, olds: ProvidedSecretOutputs, news: ProvidedSecretInputs) {
            const replaces = olds.name !== news.name ? ["name"] : [];
            return { changes: replaces.length > 0 || accessChanged(olds, news), replaces, deleteBeforeReplace: true };
        },

        async create(inputs: ProvidedSecretInputs) {
            const t = await connect(inputs);
            await assertRequirement(t, inputs);
            const existing = await byName(t, "secrets", inputs.name);
            if (existing.length > 0) {
                return { id: existing[0].ID, outs: { ...inputs, objectId: existing[0].ID, created: false } };
            }
            const body = { Name: inputs.name, Labels: { [LABEL_NAMESPACE]: inputs.stack }, Data: inputs.data };
            const r = await apiOk(t, { method: "POST", path: "/secrets/create", body }, `${where(inputs)}: creating the external secret ${inputs.name}`);
            return { id: r.json.ID, outs: { ...inputs, objectId: r.json.ID, created: true } };
        },

        async read(id: string, props: ProvidedSecretOutputs) {
            const t = await connectOrGone(connect, props);
            if (!t) return { id: "", props: {} };
            const found = (await listed(t, "secrets")).filter((x) => x.Spec?.Name === props.name);
            // Gone (or another secret of that name now): the next up makes it again, or takes the new one.
            if (found.length === 0 || found[0].ID !== id) return { id: "", props: {} };
            return { id, props };
        },

        async update(_id: string, olds: ProvidedSecretOutputs, news: ProvidedSecretInputs) {
            return { outs: { ...news, objectId: olds.objectId, created: olds.created } };
        },

        async delete(id: string, props: ProvidedSecretOutputs) {
            if (!props.created) return; // the administrators' secret
            const t = await connect(props);
            const r = await api(t, { method: "DELETE", path: `/secrets/${encodeURIComponent(id)}` });
            if (r.status === 204 || r.status === 200 || r.status === 404) return;
            throw new Error(`${where(props)}: removing the external secret ${props.name} failed (HTTP ${r.status}): ${apiMessage(r)}`);
        },
    };
}


/**
 * A random value made once (`{ generate: true }`), kept in Pulumi's state as a secret: 32 bytes,
 * base64url. Never changes unless the resource is replaced.
 */
export const generatedValueProvider: ResourceImpl = {
    async create(inputs: { purpose: string }) {
        return { id: inputs.purpose, outs: { purpose: inputs.purpose, value: randomBytes(32).toString("base64url") } };
    },
    async diff() {
        return { changes: false };
    },
    /** It lives in the state only: what the state holds is what there is. */
    async read(id: string, props: { purpose: string; value: string }) {
        return { id, props };
    },
};


// =============================================================================================
// External objects: a stack refers to them by name and does not own them. check() looks them up
// at preview, so a missing one stops `pulumi preview` with the file and the name.

export interface ExternalRef {
    kind: "network" | "secret" | "config";
    /** Engine name. */
    name: string;
    /** Compose keys that refer to it, e.g. `services.web.networks`. */
    usedBy: string[];
}

export interface ExternalsInputs extends Access {
    stack: string;
    file: string;
    refs: ExternalRef[];
}

export interface ExternalsOutputs extends ExternalsInputs {
    /** `<kind>/<name>` to engine ID; "" when missing. */
    ids: Record<string, string>;
}

async function lookupExternals(t: Transport, refs: ExternalRef[]): Promise<Record<string, string>> {
    const ids: Record<string, string> = {};
    for (const r of refs) {
        const found = await byName(t, `${r.kind}s`, r.name);
        // An external network may also be found by ID (`external: name: <id>` is rare but valid).
        ids[`${r.kind}/${r.name}`] = found[0]?.Id ?? found[0]?.ID ?? "";
    }
    return ids;
}

function missingExternals(p: ExternalsInputs, ids: Record<string, string>, on: string): string[] {
    return p.refs.filter((r) => !ids[`${r.kind}/${r.name}`]).map((r) =>
        `${p.file}: ${r.usedBy.join(", ") || r.kind + "s"}: external ${r.kind} ${JSON.stringify(r.name)} does not exist on the swarm (checked on ${on}); ` +
        `create it first (docker ${r.kind} create ${r.kind === "network" ? "--driver overlay " : ""}${r.name}${r.kind === "network" ? "" : " FILE"}) or declare it in the compose file without external`);
}

function hasUnknown(v: unknown): boolean {
    return JSON.stringify(v ?? null).includes(UNKNOWN);
}

export function externalsProvider(connect: Connect): ResourceImpl {
    return {
        async check(_olds: ExternalsInputs | undefined, news: ExternalsInputs) {
            const failures: CheckFailure[] = [];
            if (!hasUnknown(news.managers) && !hasUnknown(news.ssh) && news.refs.length > 0) {
                let t: Transport | undefined;
                try {
                    t = await connect(news);
                } catch {
                    t = undefined; // no swarm yet (first `pulumi up` builds it): create() checks again
                }
                if (t) {
                    const ids = await lookupExternals(t, news.refs);
                    for (const reason of missingExternals(news, ids, t.name)) failures.push({ property: "refs", reason });
                }
            }
            return { inputs: news, failures };
        },

        async diff(_id: string, olds: ExternalsOutputs, news: ExternalsInputs) {
            const missing = Object.values(olds.ids ?? {}).some((v) => !v);
            return { changes: missing || stableJson(olds.refs) !== stableJson(news.refs) || accessChanged(olds, news) };
        },

        async create(inputs: ExternalsInputs) {
            const t = await connect(inputs);
            const ids = await lookupExternals(t, inputs.refs);
            const missing = missingExternals(inputs, ids, t.name);
            if (missing.length > 0) throw new Error(missing.join("\n"));
            return { id: `${inputs.stack}-external`, outs: { ...inputs, ids } };
        },

        async read(id: string, props: ExternalsOutputs) {
            const t = await connectOrGone(connect, props);
            if (!t) return { id: "", props: {} };
            return { id, props: { ...props, ids: await lookupExternals(t, props.refs) } };
        },

        async update(_id: string, _olds: ExternalsOutputs, news: ExternalsInputs) {
            const t = await connect(news);
            const ids = await lookupExternals(t, news.refs);
            const missing = missingExternals(news, ids, t.name);
            if (missing.length > 0) throw new Error(missing.join("\n"));
            return { outs: { ...news, ids } };
        },

        async delete() { /* not ours */ },
    };
}


// =============================================================================================
// Services

export interface RegistryAuth {
    serveraddress: string;
    username: string;
    password: string;
}

export interface ServiceInputs extends Access, Origin {
    name: string;
    /** The ServiceSpec `docker stack deploy` would send (engine-spec serviceSpec). */
    spec: JsonObject;
    /** `--with-registry-auth`: sent as X-Registry-Auth on create and update. A secret. */
    registryAuth?: RegistryAuth;
    /** Seconds to wait for the service to converge after create/update (default 180). */
    convergeTimeout?: number;
    /** Seconds the tasks must stay running to count as converged (default 5). */
    stableSeconds?: number;
    /**
     * `changed` (default): pin the image to its registry digest when it is new or changed, as
     * `docker stack deploy --resolve-image changed`; `never`: send the reference as written.
     */
    resolveImage?: "changed" | "never";
}

export interface ServiceOutputs extends ServiceInputs {
    serviceId: string;
    /** The service's spec as the engine has it, normalised (engine-spec serviceFromEngine). */
    actual?: JsonObject;
    /** The image the tasks run (with the digest it was pinned to, if any). */
    image: string;
    /** Why the last update was rolled back, if the engine did (UpdateStatus message). */
    rollback: string;
}

type Any = any; // eslint-disable-line @typescript-eslint/no-explicit-any

export function authHeader(a: RegistryAuth | undefined): Record<string, string> {
    if (!a || !a.username) return {};
    const json = JSON.stringify({ username: a.username, password: a.password, serveraddress: a.serveraddress });
    return { "X-Registry-Auth": Buffer.from(json).toString("base64").replace(/\+/g, "-").replace(/\//g, "_") };
}

function modeKind(spec: Any): string {
    const m = spec?.Mode ?? {};
    return m.Global ? "global" : m.GlobalJob ? "global-job" : m.ReplicatedJob ? "replicated-job" : "replicated";
}

async function networkNames(t: Transport): Promise<Record<string, string>> {
    const r = await apiOk(t, { method: "GET", path: "/networks" }, "listing networks");
    const out: Record<string, string> = {};
    for (const n of (r.json ?? []) as Any[]) out[n.Id] = n.Name;
    return out;
}

async function inspectService(t: Transport, ref: string): Promise<Any | undefined> {
    const r = await api(t, { method: "GET", path: `/services/${encodeURIComponent(ref)}?insertDefaults=false` });
    if (r.status === 404) return undefined;
    if (r.status !== 200) throw new Error(`${t.name}: inspecting service ${ref} failed (HTTP ${r.status}): ${apiMessage(r)}`);
    return r.json;
}

/** The spec to send: secret/config IDs looked up by name (as the CLI's ParseSecrets/ParseConfigs). */
async function resolveRefs(t: Transport, p: ServiceInputs): Promise<Any> {
    const spec = JSON.parse(JSON.stringify(p.spec));
    const cs = spec.TaskTemplate?.ContainerSpec ?? {};
    for (const [kind, list, idKey, nameKey] of [["secrets", cs.Secrets, "SecretID", "SecretName"], ["configs", cs.Configs, "ConfigID", "ConfigName"]] as const) {
        for (const ref of (list ?? []) as Any[]) {
            const found = await byName(t, kind, ref[nameKey]);
            if (found.length === 0) {
                throw new Error(`${where(p)}: ${kind.slice(0, -1)} ${ref[nameKey]} does not exist on the swarm (${t.name})`);
            }
            ref[idKey] = found[0].ID;
        }
    }
    const cred = cs.Privileges?.CredentialSpec;
    if (cred?.Config) {
        const rt = (cs.Configs as Any[] | undefined)?.find((c) => c.ConfigName === cred.Config);
        if (rt) cred.Config = rt.ConfigID;
    }
    return spec;
}

/** `image@digest` and its platforms from the registry (client-side, as the CLI does), or undefined. */
type Pinned = { image?: string; platforms?: Any[]; error?: string };

/** The registry's answer for `image` (`GET /distribution/<image>/json`: its digest and platforms), asked by the engine with `auth`. */
export function inspectDistribution(t: Transport, image: string, auth: Record<string, string>): Promise<ApiResponse> {
    return api(t, { method: "GET", path: `/distribution/${image.split("/").map(encodeURIComponent).join("/")}/json`, headers: auth, timeoutSec: 30 });
}

async function pinImage(t: Transport, image: string, auth: Record<string, string>): Promise<Pinned> {
    if (image.includes("@sha256:")) return {};
    const r = await inspectDistribution(t, image, auth)
        .catch((e: Error) => ({ status: 0, json: undefined, error: e.message }));
    if (r.status !== 200 || !r.json?.Descriptor?.digest) {
        return { error: "error" in r ? String(r.error) : `HTTP ${r.status}: ${apiMessage(r as Any)}` };
    }
    const platforms = ((r.json.Platforms ?? []) as Any[]).filter((pl) => pl.os || pl.architecture)
        .map((pl) => ({ OS: pl.os, Architecture: pl.architecture }));
    return { image: `${image}@${r.json.Descriptor.digest}`, platforms: platforms.length > 0 ? platforms : undefined };
}

/** The image a service spec names (before pinning). */
function serviceImage(spec: unknown): string | undefined {
    const image = (spec as Any)?.TaskTemplate?.ContainerSpec?.Image;
    return typeof image === "string" ? image : undefined;
}

/** The registry's digest for the image the inputs name (pinImage); nothing to ask with `resolveImage: never`. */
function pinFor(t: Transport, p: ServiceInputs, auth: Record<string, string>): Promise<Pinned> {
    const image = serviceImage(p.spec);
    return (p.resolveImage ?? "changed") !== "never" && image ? pinImage(t, image, auth) : Promise.resolve({});
}

/**
 * The image to send, as the Docker client library sets it: pinned to the registry's digest (with
 * the platforms it is built for) when the registry answers, else with `:latest` added if untagged.
 * Beyond it: an image in the private registry (the service has its credentials) that the registry
 * cannot resolve stops here, before the service changes; `docker stack deploy` would send the
 * reference unpinned and leave the tasks failing to pull.
 */
async function setImage(t: Transport, p: ServiceInputs, spec: Any, auth: Record<string, string>, pinning?: Promise<Pinned>): Promise<void> {
    const cs = spec.TaskTemplate.ContainerSpec;
    const pinned = (p.resolveImage ?? "changed") !== "never" ? await (pinning ?? pinImage(t, cs.Image, auth)) : {};
    if (pinned.image) {
        cs.Image = pinned.image;
        if (pinned.platforms) (spec.TaskTemplate.Placement ??= {}).Platforms = pinned.platforms;
        return;
    }
    if (pinned.error && p.registryAuth?.username) {
        throw new Error(`${where(p)}: service ${p.name}: the registry ${p.registryAuth.serveraddress} did not resolve ${cs.Image} ` +
            `(${pinned.error.trim().split("\n")[0]}); nothing was changed. Is the registry up (docker service ps registry_registry) ` +
            "and the image pushed? Run `pulumi up --refresh` once it answers");
    }
    cs.Image = taggedImage(cs.Image);
}

interface Convergence {
    running: number;
    desired: number;
    updateState?: string;
    updateMessage?: string;
}

async function serviceStatus(t: Transport, id: string): Promise<Convergence & { svc: Any }> {
    const r = await apiOk(t, { method: "GET", path: `/services?status=true&filters=${q({ id: [id] })}` }, `reading the status of service ${id}`);
    const svc = ((r.json ?? []) as Any[]).find((s) => s.ID === id);
    if (!svc) throw new Error(`${t.name}: service ${id} disappeared while waiting for it to converge`);
    return {
        svc,
        running: svc.ServiceStatus?.RunningTasks ?? 0,
        desired: svc.ServiceStatus?.DesiredTasks ?? 0,
        updateState: svc.UpdateStatus?.State,
        updateMessage: svc.UpdateStatus?.Message,
    };
}

/** `docker service ps --no-trunc`: the service's most recent tasks with their state and error. */
export async function taskReport(t: Transport, serviceId: string, max = 6): Promise<string> {
    const r = await api(t, { method: "GET", path: `/tasks?filters=${q({ service: [serviceId] })}` });
    if (r.status !== 200) return `(tasks unavailable: ${apiMessage(r)})`;
    const nodes: Record<string, string> = {};
    const nr = await api(t, { method: "GET", path: "/nodes" }).catch(() => undefined);
    for (const n of (nr?.json ?? []) as Any[]) nodes[n.ID] = n.Description?.Hostname ?? n.ID;
    const tasks = ((r.json ?? []) as Any[]).sort((a, b) => String(b.UpdatedAt ?? b.CreatedAt).localeCompare(String(a.UpdatedAt ?? a.CreatedAt)));
    if (tasks.length === 0) return "no tasks";
    return tasks.slice(0, max).map((x) => {
        const st = x.Status ?? {};
        const err = st.Err ? ` error: ${JSON.stringify(st.Err)}` : "";
        const exit = st.ContainerStatus?.ExitCode ? ` exit ${st.ContainerStatus.ExitCode}` : "";
        return `  ${x.ID} slot ${x.Slot ?? "-"} on ${nodes[x.NodeID] ?? (x.NodeID || "no node")}: ${st.State} (desired ${x.DesiredState}) ` +
            `"${st.Message ?? ""}"${err}${exit} at ${st.Timestamp ?? x.UpdatedAt}`;
    }).join("\n");
}

/**
 * Since when every task the service runs now has been running (ms since the epoch, as the nodes'
 * clocks tell it: a task's status time is its node's), or undefined when it runs none.
 */
async function runningSince(t: Transport, id: string): Promise<number | undefined> {
    const r = await api(t, { method: "GET", path: `/tasks?filters=${q({ service: [id], "desired-state": ["running"] })}` });
    if (r.status !== 200) return undefined;
    const times = ((r.json ?? []) as Any[]).filter((x) => x.Status?.State === "running")
        .map((x) => Date.parse(x.Status?.Timestamp ?? "")).filter((n) => Number.isFinite(n));
    return times.length > 0 ? Math.max(...times) : undefined;
}

/**
 * Waits until the service runs its desired number of tasks, steadily for `stableSeconds`, with
 * no update in progress. Steadily means that its youngest running task has run that long: a task
 * that started before the wait counts from its start (a rolling update's last task has already run
 * through the update's monitor period when the engine reports the update completed), and a task
 * replaced between two polls is seen by its new start. A start that lies ahead of this machine's
 * clock (a node's clock ahead) counts from when the wait saw it; a node's clock behind shortens the
 * wait by as much (swarm nodes keep their clocks in step for their certificates). Never removes
 * anything: on failure the service stays as the engine has it, and the error names it, what the
 * engine says and its recent tasks.
 */
async function waitConverged(t: Transport, p: ServiceInputs, id: string, updating: boolean): Promise<{ svc: Any; rollback: string }> {
    const timeout = p.convergeTimeout ?? 180;
    const stable = (p.stableSeconds ?? 5) * 1000;
    const until = Date.now() + timeout * 1000;
    let since: number | undefined;
    let last: Convergence | undefined;
    for (;;) {
        const s = await serviceStatus(t, id);
        last = s;
        const st = s.updateState;
        if (st === "paused" || st === "rollback_paused") {
            throw new Error(`${where(p)}: service ${p.name}: the update was paused by the engine (${st}): ${s.updateMessage ?? ""}\n` +
                `${await taskReport(t, id)}\nFix the cause, then run \`pulumi up\` again (the service is left as it is).`);
        }
        if (st === "rollback_completed" && updating) {
            throw new Error(`${where(p)}: service ${p.name}: the update failed and the engine rolled it back ` +
                `(update_config.failure_action: rollback): ${s.updateMessage ?? ""}\n${await taskReport(t, id)}`);
        }
        const busy = st === "updating" || st === "rollback_started";
        let wait = Math.min(2000, Math.max(500, stable / 3));
        if (!busy && s.running >= s.desired) {
            const now = Date.now();
            since ??= now;
            const started = s.running > 0 ? await runningSince(t, id) : undefined;
            const steady = started !== undefined && started <= now ? started : since;
            if (now - steady >= stable) return { svc: s.svc, rollback: st === "rollback_completed" ? s.updateMessage ?? "rolled back" : "" };
            wait = Math.min(wait, Math.max(100, stable - (now - steady)));
        } else {
            since = undefined;
        }
        if (Date.now() > until) {
            throw new Error(`${where(p)}: service ${p.name} did not converge within ${timeout}s: ${last.running}/${last.desired} tasks running` +
                `${st ? `, update ${st}${s.updateMessage ? `: ${s.updateMessage}` : ""}` : ""}. The service is left in place; its tasks:\n` +
                `${await taskReport(t, id)}`);
        }
        await sleep(wait);
    }
}

function serviceActual(p: ServiceInputs, actual: JsonObject): { actual?: JsonObject } {
    return ifDrifted(actual, differences(normaliseService(p.spec), actual).length === 0);
}

async function actualSpec(t: Transport, id: string): Promise<{ svc: Any; actual: JsonObject } | undefined> {
    const svc = await inspectService(t, id);
    if (!svc) return undefined;
    return { svc, actual: serviceFromEngine(svc.Spec, await networkNames(t)) };
}

/** POST the update with the current version, again with a fresh one on "update out of sequence" (moby#39891). */
async function updateService(t: Transport, p: ServiceInputs, id: string, wasImage?: string): Promise<void> {
    const auth = authHeader(p.registryAuth);
    // An image other than the state's: the registry is asked for its digest while the service is
    // read (one round trip less before the update starts). Otherwise only if the service says so.
    let pinning: Promise<Pinned> | undefined = wasImage !== undefined && wasImage !== serviceImage(p.spec) ? pinFor(t, p, auth) : undefined;
    for (let attempt = 0; ; attempt++) {
        const [cur, spec] = await Promise.all([inspectService(t, id), resolveRefs(t, p), pinning]);
        if (!cur) throw new Error(`${where(p)}: service ${p.name} (${id}) is gone; run \`pulumi refresh\``);
        const tt = (spec.TaskTemplate ??= {});
        // As stack deploy: keep ForceUpdate, so that tasks are not redeployed for nothing.
        tt.ForceUpdate = cur.Spec?.TaskTemplate?.ForceUpdate ?? 0;
        const curImage = serviceImage(cur.Spec);
        const desiredImage = serviceImage(spec);
        if (desiredImage === cur.Spec?.Labels?.[LABEL_IMAGE] && curImage) {
            // Image unchanged: keep the one it was pinned to (--resolve-image changed).
            spec.TaskTemplate.ContainerSpec.Image = curImage;
            const plats = cur.Spec?.TaskTemplate?.Placement?.Platforms;
            if (plats) (tt.Placement ??= {}).Platforms = plats;
        } else {
            await setImage(t, p, spec, auth, pinning ??= pinFor(t, p, auth));
        }
        const r = await api(t, {
            method: "POST", path: `/services/${encodeURIComponent(id)}/update?version=${cur.Version?.Index ?? 0}`, body: spec, headers: auth, timeoutSec: 120,
        });
        if (r.status === 200) return;
        if (attempt < 6 && /update out of sequence/i.test(apiMessage(r))) {
            await sleep(500 * (attempt + 1));
            continue;
        }
        throw new Error(`${where(p)}: updating service ${p.name} failed (HTTP ${r.status}): ${apiMessage(r)}`);
    }
}

async function finish(t: Transport, p: ServiceInputs, id: string, updating: boolean): Promise<ServiceOutputs> {
    const { rollback } = await waitConverged(t, p, id, updating);
    const a = await actualSpec(t, id);
    if (!a) throw new Error(`${where(p)}: service ${p.name} (${id}) vanished after it converged`);
    return { ...p, serviceId: id, ...serviceActual(p, a.actual), image: serviceImage(a.svc.Spec) ?? "", rollback };
}

export function serviceProvider(connect: Connect): ResourceImpl {
    return {
        async check(_olds: ServiceInputs | undefined, news: ServiceInputs) {
            const failures: CheckFailure[] = [];
            if (!hasUnknown(news.spec) && (news.spec as Any)?.Name !== news.name) {
                failures.push({ property: "spec", reason: `${where(news)}: spec.Name ${(news.spec as Any)?.Name} is not the service name ${news.name}` });
            }
            if (news.convergeTimeout !== undefined && !(news.convergeTimeout > 0)) {
                failures.push({ property: "convergeTimeout", reason: `${where(news)}: convergeTimeout must be a positive number of seconds` });
            }
            // Engine API 1.44 (Docker 25) added the start interval; the program speaks API_VERSION, where the engine drops it.
            if (!hasUnknown(news.spec) && (news.spec as Any)?.TaskTemplate?.ContainerSpec?.Healthcheck?.StartInterval) {
                failures.push({
                    property: "spec", reason: `${news.file}: ${news.key}.healthcheck.start_interval: the program sends services through Engine API ${API_VERSION}, ` +
                        "which has no start interval (API 1.44): the engine would drop it; remove start_interval (start_period still applies)",
                });
            }
            failures.push(...await requirementFailures(connect, news));
            return { inputs: news, failures };
        },

        async diff(_id: string, olds: ServiceOutputs, news: ServiceInputs) {
            // A spec not known yet (preview, made from outputs that are being updated): it may change.
            if (news.spec === null || typeof news.spec !== "object") return { changes: true, replaces: [], deleteBeforeReplace: true };
            const replaces: string[] = [];
            if (olds.name !== news.name) replaces.push("name");
            // The engine cannot switch a service between replicated and global (pulumi-docker #401, #266).
            if (modeKind(olds.spec) !== modeKind(news.spec)) replaces.push("spec");
            const was = olds.actual ?? normaliseService(olds.spec ?? {});
            const changed = differences(normaliseService(news.spec), was);
            return {
                changes: replaces.length > 0 || changed.length > 0 || accessChanged(olds, news) ||
                    olds.convergeTimeout !== news.convergeTimeout || olds.resolveImage !== news.resolveImage || olds.stableSeconds !== news.stableSeconds,
                replaces,
                deleteBeforeReplace: true,
                diffs: changed.map((p) => `spec.${p}`),
            };
        },

        /** A change of connection only: the state keeps the engine's view only where it drifted. */
        stateOnly(olds: ServiceOutputs, news: ServiceInputs) {
            const { actual, ...rest } = { ...olds, ...news };
            return { ...rest, ...(actual ? serviceActual(news, actual) : {}) };
        },

        async create(inputs: ServiceInputs) {
            const t = await connect(inputs);
            await assertRequirement(t, inputs);
            const existing = await inspectService(t, inputs.name);
            if (existing) {
                // An earlier `pulumi up` that failed to converge, or `docker stack deploy`: take it over.
                if (existing.Spec?.Labels?.[LABEL_NAMESPACE] !== inputs.stack) {
                    throw new Error(`${where(inputs)}: a service named ${inputs.name} already exists and is not part of stack ${inputs.stack}; remove or rename it`);
                }
                if (modeKind(existing.Spec) !== modeKind(inputs.spec)) {
                    throw new Error(`${where(inputs)}: service ${inputs.name} already exists as ${modeKind(existing.Spec)}, not ${modeKind(inputs.spec)}; ` +
                        `remove it (docker service rm ${inputs.name}) and run \`pulumi up\` again`);
                }
                const unchanged = differences(normaliseService(inputs.spec), serviceFromEngine(existing.Spec, await networkNames(t))).length === 0;
                if (!unchanged) await updateService(t, inputs, existing.ID);
                const outs = await finish(t, inputs, existing.ID, !unchanged);
                return { id: existing.ID, outs };
            }
            const auth = authHeader(inputs.registryAuth);
            const spec = await resolveRefs(t, inputs);
            await setImage(t, inputs, spec, auth);
            const r = await apiOk(t, { method: "POST", path: "/services/create", body: spec, headers: auth, timeoutSec: 120 },
                `${where(inputs)}: creating service ${inputs.name}`);
            const id: string = r.json.ID;
            const outs = await finish(t, inputs, id, false);
            return { id, outs };
        },

        async read(id: string, props: ServiceOutputs) {
            const t = await connectOrGone(connect, props);
            if (!t) return { id: "", props: {} };
            const svc = await listedById(t, "services", id);
            if (!svc) return { id: "", props: {} };
            const names = Object.fromEntries((await listed(t, "networks")).map((n) => [n.Id, n.Name]));
            const { actual: _was, ...rest } = props;
            return { id, props: { ...rest, ...serviceActual(props, serviceFromEngine(svc.Spec, names)), image: serviceImage(svc.Spec) ?? "" } };
        },

        async update(id: string, olds: ServiceOutputs, news: ServiceInputs) {
            const t = await connect(news);
            await assertRequirement(t, news);
            const was = olds.actual ?? normaliseService(olds.spec ?? {});
            const specChanged = differences(normaliseService(news.spec), was).length > 0;
            if (specChanged) await updateService(t, news, id, serviceImage(olds.spec) ?? "");
            return { outs: await finish(t, news, id, specChanged) };
        },

        async delete(id: string, props: ServiceOutputs) {
            const t = await connect(props);
            const r = await api(t, { method: "DELETE", path: `/services/${encodeURIComponent(id)}` });
            if (r.status !== 200 && r.status !== 204 && r.status !== 404) {
                throw new Error(`${where(props)}: removing service ${props.name} failed (HTTP ${r.status}): ${apiMessage(r)}`);
            }
            // Let its tasks go, so that its networks, secrets and configs can be removed next.
            const until = Date.now() + 60_000;
            while (Date.now() < until) {
                const tasks = await api(t, { method: "GET", path: `/tasks?filters=${q({ service: [id] })}` });
                if (tasks.status !== 200 || ((tasks.json ?? []) as Any[]).length === 0) return;
                await sleep(1000);
            }
        },
    };
}


/** Not a resource: the same logic for tests and tools (e.g. the parity check). */
export const engineOps = { readNetwork, inspectService, networkNames, taskReport };
