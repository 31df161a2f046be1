import * as pulumi from "../lib/sdk";
import { LABEL_IMAGE, registryHost, type StackSpec } from "../compose";
import { engineStack, JsonObject } from "../lib/engine-spec";
import { configIsSecret } from "../lib/pulumi-config";
import { stepCall } from "../lib/remote-script";
import { packContext } from "../lib/build-context";
import type { StackBuild } from "../lib/stack-builds";
import * as path from "path";
import {
    ExternalRef, GeneratedValue, RegistryAuth, SwarmConfig, SwarmExternals, SwarmNetwork, SwarmProvidedSecret, SwarmSecret, SwarmService,
    ProvisionStep, StackImage, type HostSpec, type SshSpec,
} from "../lib/resources";

export interface StackArgs {
    /** The converted compose file (compose/ did the loading, validation and conversion). */
    spec: StackSpec;
    /** Managers to reach the swarm through; the first one with a quorum is used. */
    managers: pulumi.Input<HostSpec[]>;
    /**
     * Every node of the cluster, where `overrides.createBindPaths` makes the bind sources. Default:
     * `managers` when it is a plain list (the program passes every node as a candidate manager).
     */
    nodes?: HostSpec[];
    /** `Pulumi.<stack>.yaml`, named in errors about the stack's config (default: of the current stack). */
    stackFile?: string;
    /** SSH access to the managers (privateKey is a secret). */
    ssh: pulumi.Input<SshSpec>;
    /**
     * Talk to this Docker socket on the machine that runs Pulumi instead of to a manager over SSH
     * (Pulumi run on a manager; tests). Leave unset for the cluster.
     */
    engineSocket?: string;
    /**
     * `--with-registry-auth`: the private registry's `host:port` and credentials, sent to the managers
     * as X-Registry-Auth for the services whose image is in that registry (as the Docker CLI picks
     * the credentials of the image's registry); other services get none.
     */
    registry?: { endpoint: string; auth: pulumi.Input<RegistryAuth>; pushAuth?: pulumi.Input<RegistryAuth> };
    /**
     * The images the program builds for this stack (lib/stack-builds.ts): each is built on a manager,
     * pushed with `registry.pushAuth`, and its service runs the pushed digest.
     */
    builds?: StackBuild[];
    /** Seconds each service may take to converge after a create or update (default 180). */
    convergeTimeout?: number;
    /** `changed` (default) pins new images to their registry digest; `never` sends references as written. */
    resolveImage?: "changed" | "never";
    /** What must exist before the stack (swarm membership, the registry): its services go first on destroy. */
    dependsOn?: pulumi.Input<pulumi.Resource>[];
    /**
     * Create the resources that cannot be given back as they were with Pulumi's `protect` (every
     * environment but `dev`, unless `allowDestroy`: lib/protection.ts says which and why). Default false.
     */
    protect?: boolean;
}

/**
 * One application stack, with the meaning `docker stack deploy` gives its compose file, through
 * the Engine API on a manager (lib/stack-providers.ts): networks, secrets and configs first, then
 * a service per compose service. Beyond it: `depends_on` orders creation; secrets and configs are
 * named by content so a change rolls services onto a new object before the old one is removed (the
 * engine keeps them immutable); external networks, secrets and configs are checked at preview.
 */
export class Stack extends pulumi.ComponentResource {
    readonly services: Record<string, SwarmService> = {};
    readonly networks: Record<string, SwarmNetwork> = {};
    readonly secrets: Record<string, SwarmSecret> = {};
    readonly configs: Record<string, SwarmConfig> = {};
    readonly images: Record<string, StackImage> = {};
    /** Engine names of the services, in creation order. */
    readonly serviceNames: string[];

    constructor(name: string, args: StackArgs, opts?: pulumi.ComponentResourceOptions) {
        super("dccn-swarm:stack:Stack", name, {}, opts);
        const { spec } = args;
        const engine = engineStack(spec);
        const access = { managers: args.managers, ssh: pulumi.secret(args.ssh), ...(args.engineSocket ? { engineSocket: args.engineSocket } : {}) };
        // What the file needs of the swarm's engine (compose/target.ts), checked by the providers at preview.
        const origin = (key: string) => ({ stack: spec.stack, file: spec.file, key, ...(spec.requires ? { requires: spec.requires } : {}) });
        const base = { parent: this, dependsOn: args.dependsOn ?? [] };

        // overrides.createBindPaths: the bind sources, made on every node before any service.
        const prepared: pulumi.Resource[] = [];
        if (spec.createBindPaths && spec.bindSources.length > 0) {
            const nodes = args.nodes ?? (Array.isArray(args.managers) ? args.managers as HostSpec[] : undefined);
            if (!nodes) throw new pulumi.RunError(`stack ${name}: createBindPaths needs the cluster's nodes as a plain list (StackArgs.nodes)`);
            for (const n of nodes) {
                prepared.push(new ProvisionStep(`${name}-bindpaths-${n.name}`, {
                    node: n, ssh: pulumi.secret(args.ssh),
                    ...stepCall("bind-paths.sh", {}, spec.bindSources.join("\n") + "\n"),
                }, { ...base }));
            }
        }

        const byName: Record<string, pulumi.Resource> = {};
        for (const n of engine.networks) {
            const r = new SwarmNetwork(`${name}-net-${n.key}`, { ...access, ...origin(`networks.${n.key}`), name: n.name, create: n.create }, base);
            this.networks[n.key] = r;
            byName[`network/${n.name}`] = r;
        }
        // Content-named (`<stack>_<name>-<hash>`): a new content is a new object; the old one is
        // deleted only after the services moved to the new one (create-before-delete replacement).
        const fileObject = (kind: "secret" | "config", o: { key: string; name: string; spec: JsonObject }) => {
            const a = {
                ...access, ...origin(`${kind}s.${o.key}`), name: o.name,
                labels: o.spec.Labels as Record<string, string>,
                data: kind === "secret" ? pulumi.secret(String(o.spec.Data)) : String(o.spec.Data),
                ...(o.spec.Templating ? { templating: o.spec.Templating as JsonObject } : {}),
                ...(o.spec.Driver ? { driver: o.spec.Driver as JsonObject } : {}),
            };
            const r = kind === "secret" ? new SwarmSecret(`${name}-secret-${o.key}`, a, base) : new SwarmConfig(`${name}-config-${o.key}`, a, base);
            byName[`${kind}/${o.name}`] = r;
            return r;
        };
        for (const s of engine.secrets) this.secrets[s.key] = fileObject("secret", s) as SwarmSecret;
        for (const c of engine.configs) this.configs[c.key] = fileObject("config", c) as SwarmConfig;

        // External secrets with a value in the stack's config: made when missing (not checked as externals).
        const stackFile = args.stackFile ?? `Pulumi.${pulumi.getStack()}.yaml`;
        for (const [secretName, source] of Object.entries(spec.providedSecrets)) {
            const where = `${stackFile}: dccn-swarm:stacks (${spec.stack}): overrides.externalSecrets.${secretName}`;
            let value: pulumi.Output<string>;
            if ("generate" in source) {
                value = new GeneratedValue(`${name}-secret-value-${secretName}`, { purpose: `${spec.stack}/${secretName}` }, { parent: this, protect: !!args.protect }).value;
            } else {
                const key = `dccn-swarm:${source.config}`;
                if (pulumi.runtime.getConfig(key) === undefined) {
                    throw new pulumi.RunError(`${where}: the stack config has no ${key}; set it with ` +
                        `\`pulumi config set --secret ${source.config}\` (the value of the external secret ${secretName}), or use { generate: true }`);
                }
                if (configIsSecret(key) === false) {
                    throw new pulumi.RunError(`${where}: ${key} is set in plain text; set it again with \`pulumi config set --secret ${source.config}\``);
                }
                value = new pulumi.Config("dccn-swarm").requireSecret(source.config);
            }
            byName[`secret/${secretName}`] = new SwarmProvidedSecret(`${name}-external-secret-${secretName}`, {
                ...access, ...origin(`secrets (external ${secretName})`), name: secretName,
                data: pulumi.secret(value.apply((v) => Buffer.from(v ?? "").toString("base64"))),
            }, base);
        }

        // External objects: looked up by name on a manager, at preview already.
        const refs: ExternalRef[] = [];
        const usedBy = (kind: "network" | "secret" | "config", n: string) => spec.services
            .filter((s) => (kind === "network" ? s.networks : kind === "secret" ? s.secrets : s.configs).includes(n))
            .map((s) => `services.${s.key}.${kind}s`);
        for (const n of spec.external.networks) refs.push({ kind: "network", name: n, usedBy: usedBy("network", n) });
        for (const n of spec.external.secrets) if (!(n in spec.providedSecrets)) refs.push({ kind: "secret", name: n, usedBy: usedBy("secret", n) });
        for (const n of spec.external.configs) refs.push({ kind: "config", name: n, usedBy: usedBy("config", n) });
        const externals = refs.length > 0
            ? new SwarmExternals(`${name}-external`, { ...access, stack: spec.stack, file: spec.file, refs }, base)
            : undefined;

        // Images the program builds: the context's digest is computed here (at preview too), so an
        // unchanged context shows no change and builds nothing.
        for (const b of args.builds ?? []) {
            if (!args.registry?.pushAuth) throw new pulumi.RunError(`${b.origin}: the stack builds ${b.image} but has no registry to push it to`);
            this.images[b.service] = new StackImage(`${name}-image-${b.service}`, {
                ...access, stack: spec.stack, service: b.service, origin: b.origin, image: b.image,
                context: path.relative(process.cwd(), b.build.context) || ".",
                dockerfile: b.build.dockerfile, args: b.build.args, labels: b.build.labels,
                ...(b.build.target ? { target: b.build.target } : {}),
                contextDigest: pulumi.output(packContext(b.build.context, b.build.dockerfile)
                    .then((c) => c.digest, (e: Error) => { throw new pulumi.RunError(`${b.origin}: ${e.message}`); })),
                pushAuth: pulumi.secret(args.registry.pushAuth),
            }, base);
        }

        for (const s of engine.services) {
            const model = spec.services.find((x) => x.key === s.key)!;
            const uses = [
                ...model.networks.map((n) => byName[`network/${n}`]),
                ...model.secrets.map((n) => byName[`secret/${n}`]),
                ...model.configs.map((n) => byName[`config/${n}`]),
            ].filter((r): r is pulumi.Resource => !!r);
            // depends_on: create after the services it names (docker stack deploy ignores it).
            const after = s.dependsOn.map((k) => this.services[k]).filter((x): x is SwarmService => !!x);
            const image = String(((s.spec.TaskTemplate as JsonObject | undefined)?.ContainerSpec as JsonObject | undefined)?.Image ?? "");
            const auth = args.registry && registryHost(image) === args.registry.endpoint ? args.registry.auth : undefined;
            // A built image: the service runs what was pushed (`<image>@<digest>`); in a preview of a
            // change that digest is unknown, so the service shows its image changing and nothing else.
            const built = this.images[s.key];
            const serviceSpec = built ? withImage(s.spec, built.ref) : s.spec;
            this.services[s.key] = new SwarmService(`${name}-${s.key}`, {
                ...access, ...origin(`services.${s.key}`), name: s.name, spec: serviceSpec,
                ...(auth !== undefined ? { registryAuth: pulumi.secret(auth) } : {}),
                ...(args.convergeTimeout !== undefined ? { convergeTimeout: args.convergeTimeout } : {}),
                ...(args.resolveImage !== undefined ? { resolveImage: args.resolveImage } : {}),
            }, {
                parent: this,
                protect: !!args.protect,
                dependsOn: [...(args.dependsOn ?? []), ...uses, ...(externals ? [externals] : []), ...prepared, ...after],
            });
        }
        this.serviceNames = engine.services.map((s) => s.name);
        this.registerOutputs({ services: this.serviceNames, namespace: spec.stack });
    }
}

/**
 * `spec` with its ContainerSpec.Image set to `image` (an Output: nested, so only the image is unknown
 * in a preview), and the stack's image label to the same: the image as written is `<tag>@<digest>`
 * here, so a new digest is a change of the service (lib/engine-spec.ts compares a pinned image
 * without its digest only when the label has none).
 */
function withImage(spec: JsonObject, image: pulumi.Output<string>): pulumi.Input<JsonObject> {
    const tt = spec.TaskTemplate as JsonObject;
    const cs = tt.ContainerSpec as JsonObject;
    const ref = image as unknown as string;
    return { ...spec, Labels: { ...(spec.Labels as JsonObject), [LABEL_IMAGE]: ref }, TaskTemplate: { ...tt, ContainerSpec: { ...cs, Image: ref } } };
}
