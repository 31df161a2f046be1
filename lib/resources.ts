/**
 * The resources the program declares, served by the program's own provider plugin `dccn-swarm`
 * (provider/; Pulumi.yaml `plugins: providers:`). This file is the program's side only: typed
 * arguments and outputs. What each resource does on the cluster is in lib/*-providers.ts, which run
 * in the provider's process, never in the program's (only their types are imported here).
 *
 * Each type keeps the name its dynamic-provider predecessor had (`pulumi-nodejs:dynamic/dccn-swarm:X`)
 * as an alias, so a stack made before the plugin moves over on its next `pulumi up` without a
 * replacement: the provider sees the old state, updates only what its state holds.
 */
import * as pulumi from "./sdk";
import type { JsonObject } from "./engine-spec";
import type { PkiInputs, ProbeInputs, UsersInputs } from "./registry-providers";
import type {
    ExternalsInputs, FileObjectInputs, NetworkInputs, ProvidedSecretInputs, ServiceInputs,
} from "./stack-providers";
import type { ImageInputs } from "./image-providers";
import type { ClusterInputs, LabelsInputs, MemberInputs, ScriptInputs } from "./swarm-providers";

export type { HostSpec, SshSpec } from "./connection";
export type { ExternalRef, RegistryAuth } from "./stack-providers";
export { ECHOED_INPUTS, KINDS, legacyTypeToken, PACKAGE, SECRET_OUTPUTS, typeToken, type Kind } from "./kinds";
import { ECHOED_INPUTS, KINDS, legacyTypeToken, PACKAGE, PROVIDER_INFO, SECRET_OUTPUTS, typeToken, type Kind } from "./kinds";

/**
 * Asks the provider plugin, first thing, whether it serves every kind the program declares. The
 * engine starts the plugin for this call, so it starts while the program reads its configuration
 * instead of after (about half a second less before the first change); and a plugin older than the
 * program (bin/ built from other sources) is named (the deployment fails) instead of failing on
 * its first unknown resource. It also says whether this run is a deployment (not a preview): the
 * plugin then opens the connection to the cluster lock's node at once, so that the first change does
 * not wait for the SSH handshake, while a preview touches no node for it.
 */
export async function checkProvider(): Promise<void> {
    void pulumi.invoke(PROVIDER_INFO, { kinds: [...KINDS], deploying: !pulumi.isDryRun() }).then((r: { missing?: string[]; version?: string }) => {
        if (r?.missing && r.missing.length > 0) {
            throw new pulumi.RunError(`the ${PACKAGE} provider plugin (provider/, version ${r.version}) does not serve ${r.missing.join(", ")}: ` +
                "it was built from other sources than the program; run `npm run build` and try again");
        }
    });
    // Returns once the request is out (the SDK sends it within a turn of the event loop), before
    // the program's own work keeps the loop busy: the result is checked whenever it comes.
    await new Promise((r) => setImmediate(r));
}

/** Resource arguments: every field of T may be an Output. */
export type Args<T> = { [K in keyof T]: pulumi.Input<T[K]> };

function options(kind: Kind, opts: pulumi.CustomResourceOptions | undefined): pulumi.CustomResourceOptions {
    return {
        ...opts,
        aliases: [{ type: legacyTypeToken(kind) }, ...(opts?.aliases ?? [])],
        additionalSecretOutputs: [...SECRET_OUTPUTS[kind], ...(opts?.additionalSecretOutputs ?? [])],
    };
}

/** The swarm: initialised on the bootstrap manager; recovery with --force-new-cluster. */
export class SwarmCluster extends pulumi.CustomResource {
    declare readonly clusterId: pulumi.Output<string>;
    declare readonly recoveries: pulumi.Output<number>;
    declare readonly recoveryReport: pulumi.Output<string>;
    /** The unlock key of an autolocked swarm (secret); undefined without autolock. */
    declare readonly unlockKey: pulumi.Output<string | undefined>;
    constructor(name: string, args: Args<ClusterInputs>, opts?: pulumi.CustomResourceOptions) {
        super(typeToken("SwarmCluster"), name,
            { clusterId: undefined, recoveredFrom: undefined, recoveries: undefined, recoveryReport: undefined, unlockKey: undefined, ...args }, options("SwarmCluster", opts));
    }
}

/** A node's membership: role and availability. */
export class SwarmMember extends pulumi.CustomResource {
    declare readonly nodeId: pulumi.Output<string>;
    declare readonly role: pulumi.Output<string>;
    declare readonly availability: pulumi.Output<string>;
    declare readonly status: pulumi.Output<string>;
    declare readonly engineVersion: pulumi.Output<string>;
    constructor(name: string, args: Args<MemberInputs>, opts?: pulumi.CustomResourceOptions) {
        super(typeToken("SwarmMember"), name, { nodeId: undefined, status: undefined, engineVersion: undefined, ...args }, options("SwarmMember", opts));
    }
}

/** A node's labels (only the keys in the config are owned). */
export class NodeLabels extends pulumi.CustomResource {
    declare readonly labels: pulumi.Output<Record<string, string>>;
    constructor(name: string, args: Args<LabelsInputs>, opts?: pulumi.CustomResourceOptions) {
        super(typeToken("NodeLabels"), name, { ...args }, options("NodeLabels", opts));
    }
}

/** One idempotent provisioning script from scripts/ run on one node. */
export class ProvisionStep extends pulumi.CustomResource {
    declare readonly result: pulumi.Output<string>;
    constructor(name: string, args: Args<ScriptInputs>, opts?: pulumi.CustomResourceOptions) {
        super(typeToken("ProvisionStep"), name, { result: undefined, ...args }, options("ProvisionStep", opts));
    }
}

export class SwarmNetwork extends pulumi.CustomResource {
    declare readonly networkId: pulumi.Output<string>;
    declare readonly actual: pulumi.Output<JsonObject>;
    constructor(name: string, args: Args<NetworkInputs>, opts?: pulumi.CustomResourceOptions) {
        super(typeToken("SwarmNetwork"), name, { networkId: undefined, actual: undefined, ...args }, options("SwarmNetwork", opts));
    }
}

export class SwarmSecret extends pulumi.CustomResource {
    declare readonly objectId: pulumi.Output<string>;
    declare readonly actual: pulumi.Output<JsonObject>;
    constructor(name: string, args: Args<Omit<FileObjectInputs, "kind">>, opts?: pulumi.CustomResourceOptions) {
        super(typeToken("SwarmSecret"), name, { objectId: undefined, actual: undefined, ...args, kind: "secret" }, options("SwarmSecret", opts));
    }
}

export class SwarmConfig extends pulumi.CustomResource {
    declare readonly objectId: pulumi.Output<string>;
    declare readonly actual: pulumi.Output<JsonObject>;
    constructor(name: string, args: Args<Omit<FileObjectInputs, "kind">>, opts?: pulumi.CustomResourceOptions) {
        super(typeToken("SwarmConfig"), name, { objectId: undefined, actual: undefined, ...args, kind: "config" }, options("SwarmConfig", opts));
    }
}

export class SwarmProvidedSecret extends pulumi.CustomResource {
    declare readonly objectId: pulumi.Output<string>;
    declare readonly created: pulumi.Output<boolean>;
    constructor(name: string, args: Args<ProvidedSecretInputs>, opts?: pulumi.CustomResourceOptions) {
        super(typeToken("SwarmProvidedSecret"), name, { objectId: undefined, created: undefined, ...args }, options("SwarmProvidedSecret", opts));
    }
}

export class GeneratedValue extends pulumi.CustomResource {
    declare readonly value: pulumi.Output<string>;
    constructor(name: string, args: { purpose: string }, opts?: pulumi.CustomResourceOptions) {
        super(typeToken("GeneratedValue"), name, { value: undefined, ...args }, options("GeneratedValue", opts));
    }
}

export class SwarmExternals extends pulumi.CustomResource {
    declare readonly ids: pulumi.Output<Record<string, string>>;
    constructor(name: string, args: Args<ExternalsInputs>, opts?: pulumi.CustomResourceOptions) {
        super(typeToken("SwarmExternals"), name, { ids: undefined, ...args }, options("SwarmExternals", opts));
    }
}

export class SwarmService extends pulumi.CustomResource {
    declare readonly serviceId: pulumi.Output<string>;
    declare readonly actual: pulumi.Output<JsonObject>;
    declare readonly image: pulumi.Output<string>;
    declare readonly rollback: pulumi.Output<string>;
    constructor(name: string, args: Args<ServiceInputs>, opts?: pulumi.CustomResourceOptions) {
        super(typeToken("SwarmService"), name,
            { serviceId: undefined, actual: undefined, image: undefined, rollback: undefined, ...args }, options("SwarmService", opts));
    }
}

/** An image the program builds on a manager and pushes to the private registry (lib/image-providers.ts). */
export class StackImage extends pulumi.CustomResource {
    /** `<image>@sha256:...`: what the services that use it run. */
    declare readonly ref: pulumi.Output<string>;
    declare readonly digest: pulumi.Output<string>;
    constructor(name: string, args: Args<ImageInputs>, opts?: pulumi.CustomResourceOptions) {
        super(typeToken("StackImage"), name, { ref: undefined, digest: undefined, registryDigest: undefined, ...args }, options("StackImage", opts));
    }
}

export class RegistryPki extends pulumi.CustomResource {
    declare readonly caCert: pulumi.Output<string>;
    declare readonly caKey: pulumi.Output<string>;
    declare readonly serverCert: pulumi.Output<string>;
    declare readonly serverKey: pulumi.Output<string>;
    declare readonly trustBundle: pulumi.Output<string>;
    declare readonly notAfter: pulumi.Output<string>;
    declare readonly caNotAfter: pulumi.Output<string>;
    declare readonly serverFingerprint: pulumi.Output<string>;
    declare readonly caFingerprint: pulumi.Output<string>;
    declare readonly issuedBecause: pulumi.Output<string>;
    constructor(name: string, args: Args<PkiInputs>, opts?: pulumi.CustomResourceOptions) {
        super(typeToken("RegistryPki"), name, {
            caCert: undefined, caKey: undefined, serverCert: undefined, serverKey: undefined, previousCaCert: undefined,
            trustBundle: undefined, notAfter: undefined, caNotAfter: undefined, serverFingerprint: undefined, caFingerprint: undefined,
            issuedBecause: undefined, ...args,
        }, options("RegistryPki", opts));
    }
}

export class RegistryUsers extends pulumi.CustomResource {
    declare readonly users: pulumi.Output<string[]>;
    declare readonly hashes: pulumi.Output<Record<string, string>>;
    declare readonly htpasswd: pulumi.Output<string>;
    constructor(name: string, args: Args<UsersInputs>, opts?: pulumi.CustomResourceOptions) {
        super(typeToken("RegistryUsers"), name, { hashes: undefined, htpasswd: undefined, ...args }, options("RegistryUsers", opts));
    }
}

export class RegistryProbe extends pulumi.CustomResource {
    declare readonly checkedOn: pulumi.Output<string>;
    declare readonly status: pulumi.Output<string>;
    constructor(name: string, args: Args<ProbeInputs>, opts?: pulumi.CustomResourceOptions) {
        super(typeToken("RegistryProbe"), name, { checkedOn: undefined, status: undefined, ...args }, options("RegistryProbe", opts));
    }
}
