/**
 * The `dccn-swarm` provider: one process per deployment serving every resource of lib/resources.ts.
 * It unwraps secrets before an implementation (lib/*-providers.ts) sees its inputs and wraps them
 * again in the outputs, names changed fields in diffs, and turns a change of connection only (a
 * rotated SSH key, another user or port, a new pinned host key) into an update of the state alone:
 * nothing runs on the nodes, and later calls (refresh, delete) use the new connection.
 */
import type * as pulumi from "@pulumi/pulumi";
import { ECHOED_INPUTS, PACKAGE, PROVIDER_INFO, SECRET_OUTPUTS, type Kind, KINDS } from "../lib/kinds";
import type { DiffResult, ResourceImpl } from "../lib/resource-impl";
import { forgetShared } from "../lib/read-cache";
import { pkiProvider, probeProvider, usersProvider } from "../lib/registry-providers";
import {
    externalsProvider, fileObjectProvider, generatedValueProvider, networkProvider, providedSecretProvider, serviceProvider, sshConnect,
} from "../lib/stack-providers";
import { clusterProvider, labelsProvider, memberProvider, scriptProvider } from "../lib/swarm-providers";
import { imageProvider } from "../lib/image-providers";
import {
    changedKeys, connectionChanged, CONNECTION_KEY, containsUnknown, UNKNOWN, forWire, hasLegacy, LEGACY_KEYS, secretKeys, unwrap, withConnectionOf, withoutLegacy,
} from "./values";

/* eslint-disable @typescript-eslint/no-explicit-any */
type Props = Record<string, any>;

/** One implementation per kind; secrets and configs share theirs (the kind is an input). */
export function implementations(): Record<Kind, ResourceImpl> {
    const fileObjects = fileObjectProvider(sshConnect);
    return {
        SwarmCluster: clusterProvider,
        SwarmMember: memberProvider,
        NodeLabels: labelsProvider,
        ProvisionStep: scriptProvider,
        SwarmNetwork: networkProvider(sshConnect),
        SwarmSecret: fileObjects,
        SwarmConfig: fileObjects,
        SwarmProvidedSecret: providedSecretProvider(sshConnect),
        GeneratedValue: generatedValueProvider,
        SwarmExternals: externalsProvider(sshConnect),
        SwarmService: serviceProvider(sshConnect),
        StackImage: imageProvider(sshConnect),
        RegistryPki: pkiProvider(),
        RegistryUsers: usersProvider,
        RegistryProbe: probeProvider,
    };
}

/** A diff with the fields that change, for the engine's detailed diff (property paths). */
export interface DetailedDiff extends DiffResult {
    detailedDiff: Record<string, { kind: "add" | "delete" | "update" | "update-replace" | "delete-replace" | "add-replace" }>;
}

/** The kind of a resource from its URN (`urn:pulumi:stack::project::parent$dccn-swarm:index:Kind::name`). */
export function kindOf(urn: string): Kind {
    const type = urn.split("::")[2]?.split("$").pop() ?? "";
    const [pkg, , kind] = type.split(":");
    if (pkg !== PACKAGE || !(KINDS as readonly string[]).includes(kind)) throw new Error(`${PACKAGE} provider: unknown resource type ${type} (${urn})`);
    return kind as Kind;
}

/**
 * The provider. Each resource's state holds its inputs once: outputs keep only what the cluster
 * reports (IDs, versions, what a refresh reads) and the inputs a kind echoes (ECHOED_INPUTS); the
 * implementations see old inputs and outputs merged, so they work as if the outputs held everything.
 * The engine sends the old inputs with every diff, update, read and delete (provider/main.ts passes
 * them on).
 */
export class DccnSwarmProvider implements pulumi.provider.Provider {
    readonly version: string;
    private readonly impls: Record<Kind, ResourceImpl>;

    constructor(version: string, impls: Record<Kind, ResourceImpl> = implementations()) {
        this.version = version;
        this.impls = impls;
    }

    /**
     * Outputs for the wire: without the inputs (but the echoed ones), without undefined, secret
     * where the inputs were and where the kind says so.
     */
    private wire(kind: Kind, props: Props, inputs: Props, ...secretSources: (Props | undefined)[]): Props {
        const secrets = new Set<string>(SECRET_OUTPUTS[kind]);
        for (const s of [inputs, ...secretSources]) for (const k of secretKeys(s)) secrets.add(k);
        const keep = new Set(ECHOED_INPUTS[kind]);
        const outs = Object.fromEntries(Object.entries(withoutLegacy(props)).filter(([k]) => keep.has(k) || !(k in inputs)));
        return forWire(outs, secrets);
    }

    /** The state as the implementations see it: old inputs with the outputs over them. */
    private static state(outputsW: Props | undefined, oldInputsW: Props | undefined): Props {
        return { ...unwrap(oldInputsW ?? {}), ...unwrap(outputsW ?? {}) };
    }

    /**
     * Whether the state has a shape this provider no longer writes: state of the dynamic providers
     * (their code, a step's whole input) or outputs that repeat the inputs.
     */
    private static oldShape(kind: Kind, outputs: Props, oldInputs: Props | undefined): boolean {
        if (hasLegacy(outputs)) return true;
        const echoed = new Set(ECHOED_INPUTS[kind]);
        return Object.keys(oldInputs ?? {}).some((k) => k in outputs && !echoed.has(k));
    }

    /** Called when the program says this run is a deployment, not a preview (PROVIDER_INFO's `deploying`). */
    onDeploying?: () => void;

    /** PROVIDER_INFO: this plugin's version and which of the program's kinds it does not serve. */
    async invoke(token: string, inputs: Props): Promise<pulumi.provider.InvokeResult> {
        if (token !== PROVIDER_INFO) throw new Error(`${PACKAGE} provider: unknown function ${token} (it has one: ${PROVIDER_INFO})`);
        if (inputs?.deploying === true) this.onDeploying?.();
        const wanted: unknown[] = Array.isArray(inputs?.kinds) ? inputs.kinds : [];
        return { outputs: { version: this.version, missing: wanted.map(String).filter((k) => !(k in this.impls)) } };
    }

    async check(urn: string, olds: Props, news: Props): Promise<pulumi.provider.CheckResult> {
        const impl = this.impls[kindOf(urn)];
        if (!impl.check) return { inputs: news };
        const r = await impl.check(olds && Object.keys(olds).length > 0 ? unwrap(olds) : undefined, unwrap(news));
        // The inputs go back as they came (secrets still wrapped); the implementations only validate.
        return { inputs: news, failures: r.failures ?? [] };
    }

    async diff(id: string, urn: string, oldsW: Props, newsW: Props, oldInputsW?: Props): Promise<DetailedDiff> {
        const kind = kindOf(urn);
        const impl = this.impls[kind];
        const olds = DccnSwarmProvider.state(oldsW, oldInputsW);
        const news = unwrap(newsW);
        const d = await this.implDiff(impl, id, olds, withConnectionOf(news, olds));
        const replaces = d.replaces ?? [];
        const detailedDiff: DetailedDiff["detailedDiff"] = {};
        if (d.changes) {
            // The implementation's own paths where it has them (a service's spec field by field, drift
            // included), else the inputs that differ from the state.
            const paths = d.diffs && d.diffs.length > 0 ? d.diffs : changedKeys(olds, news).filter((k) => k !== CONNECTION_KEY);
            for (const p of paths) detailedDiff[p] = { kind: replaces.includes(p.split(".")[0]) ? "update-replace" : "update" };
            for (const k of replaces) if (!paths.some((p) => p.split(".")[0] === k)) detailedDiff[k] = { kind: "update-replace" };
        }
        const connection = connectionChanged(olds, news);
        if (connection) detailedDiff[CONNECTION_KEY] = { kind: "update" };
        // State in a shape no longer written (the dynamic providers'): rewritten, an update of the state only.
        // Only top-level keys are looked at: the wire form will do (no second unwrap of the outputs).
        const oldShape = DccnSwarmProvider.oldShape(kind, oldsW ?? {}, oldInputsW);
        if (oldShape) for (const k of LEGACY_KEYS) if (k in (oldsW ?? {})) detailedDiff[k] = { kind: "delete" };
        return { ...d, changes: !!d.changes || connection || oldShape, replaces, detailedDiff };
    }

    private async implDiff(impl: ResourceImpl, id: string, olds: Props, news: Props): Promise<DiffResult> {
        if (impl.diff) {
            try {
                return await impl.diff(id, olds, news);
            } catch (e) {
                // Inputs not known yet (preview) that an implementation cannot compare: they may change.
                if (containsUnknown(news)) {
                    return { changes: true, diffs: Object.keys(news).filter((k) => containsUnknown(news[k]) || changedKeys(olds, { [k]: news[k] }).length > 0) };
                }
                throw e;
            }
        }
        const changed = changedKeys(olds, news);
        return { changes: changed.length > 0, diffs: changed };
    }

    async create(urn: string, inputsW: Props): Promise<pulumi.provider.CreateResult> {
        forgetShared(); // a change to the cluster: reads after it ask afresh
        const kind = kindOf(urn);
        const r = await this.impls[kind].create(unwrap(inputsW));
        return { id: r.id, outs: this.wire(kind, r.outs ?? {}, inputsW) };
    }

    async read(id: string, urn: string, propsW?: Props, inputsW?: Props): Promise<pulumi.provider.ReadResult> {
        const kind = kindOf(urn);
        const impl = this.impls[kind];
        if (!impl.read) return { id, props: propsW };
        const props = DccnSwarmProvider.state(propsW, inputsW);
        const r = await impl.read(id, props);
        if (!r.id) return { id: "", props: {} };
        const inputs = inputsW ?? {};
        // Inputs as the cluster has them now (a role or label changed by hand), only the keys the inputs have.
        const readInputs = r.inputs && inputsW
            ? forWire(Object.fromEntries(Object.keys(inputsW).filter((k) => k in r.inputs).map((k) => [k, r.inputs[k]])), secretKeys(inputsW))
            : undefined;
        return {
            id: r.id,
            props: this.wire(kind, r.props ?? props, inputs, propsW),
            ...(readInputs ? { inputs: readInputs } : {}),
        };
    }

    /**
     * A create during `pulumi preview`: nothing is made; the outputs the provider computes are not
     * known yet (left out: the program sees them as unknown), the echoed inputs are.
     */
    previewCreate(urn: string, inputsW: Props): Props {
        const kind = kindOf(urn);
        return forWire(Object.fromEntries(ECHOED_INPUTS[kind].filter((k) => k in inputsW).map((k) => [k, inputsW[k]])), []);
    }

    /**
     * Update; with `preview`, what it would leave in the state without doing anything: a change of
     * connection or of the state's shape only gives its real outputs (so nothing after it looks
     * changed in the preview), any other change leaves the computed outputs unknown.
     */
    async update(id: string, urn: string, oldsW: Props, newsW: Props, oldInputsW?: Props, preview = false): Promise<pulumi.provider.UpdateResult> {
        const kind = kindOf(urn);
        const impl = this.impls[kind];
        const olds = DccnSwarmProvider.state(oldsW, oldInputsW);
        const news = unwrap(newsW);
        // What the resource would do with its old connection: nothing means a change of connection
        // (or of the state's shape) only, which is kept without touching the cluster.
        const d = await this.implDiff(impl, id, olds, withConnectionOf(news, olds));
        if (!d.changes || !impl.update) {
            const outs = impl.stateOnly ? impl.stateOnly(olds, news) : { ...olds, ...news };
            return { outs: this.wire(kind, outs, newsW) };
        }
        if (preview) {
            const unknown = Object.fromEntries(Object.keys(withoutLegacy(oldsW ?? {})).map((k) => [k, UNKNOWN]));
            return { outs: this.wire(kind, { ...unknown, ...news }, newsW) };
        }
        forgetShared(); // a change to the cluster: reads after it ask afresh
        const r = await impl.update(id, olds, news);
        return { outs: this.wire(kind, r.outs ?? {}, newsW) };
    }

    async delete(id: string, urn: string, propsW: Props, oldInputsW?: Props): Promise<void> {
        const impl = this.impls[kindOf(urn)];
        forgetShared(); // a change to the cluster: reads after it ask afresh
        if (impl.delete) await impl.delete(id, DccnSwarmProvider.state(propsW, oldInputsW));
    }
}
