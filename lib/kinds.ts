/**
 * The kinds of resource the provider plugin serves and what the state keeps of each: shared by the
 * program's declarations (lib/resources.ts) and the provider (provider/), without loading the
 * Pulumi SDK (the provider starts faster without it).
 */

/** The provider plugin's package name (Pulumi.yaml `plugins: providers:`). */
export const PACKAGE = "dccn-swarm";

/** The type token of a resource of the plugin. */
export function typeToken(kind: string): string {
    return `${PACKAGE}:index:${kind}`;
}

/** The type its dynamic-provider predecessor had: the alias that carries existing state over. */
export function legacyTypeToken(kind: string): string {
    return `pulumi-nodejs:dynamic/${PACKAGE}:${kind}`;
}

/**
 * The plugin's one function: given the kinds a program declares (`kinds`), the plugin's `version`
 * and the kinds it does not serve (`missing`). The program calls it first (lib/resources.ts).
 */
export const PROVIDER_INFO = `${PACKAGE}:index:providerInfo`;

/** Every kind the plugin serves; provider/ has an implementation for each. */
export const KINDS = [
    "SwarmCluster", "SwarmMember", "NodeLabels", "ProvisionStep",
    "SwarmNetwork", "SwarmSecret", "SwarmConfig", "SwarmProvidedSecret", "GeneratedValue", "SwarmExternals", "SwarmService", "StackImage",
    "RegistryPki", "RegistryUsers", "RegistryProbe",
] as const;
export type Kind = (typeof KINDS)[number];

/**
 * Outputs the provider computes that are secrets, per kind. Inputs need no list: whatever is secret
 * in the inputs (the SSH key, passwords, a secret's data) stays encrypted there, and the outputs do
 * not repeat inputs (ECHOED_INPUTS aside).
 */
export const SECRET_OUTPUTS: Record<Kind, string[]> = {
    SwarmCluster: ["unlockKey"],
    SwarmMember: [],
    NodeLabels: [],
    ProvisionStep: [],
    SwarmNetwork: [],
    SwarmSecret: [],
    SwarmConfig: [],
    SwarmProvidedSecret: [],
    GeneratedValue: ["value"],
    SwarmExternals: [],
    SwarmService: [],
    StackImage: [],
    RegistryPki: ["caKey", "serverKey"],
    RegistryUsers: ["hashes", "htpasswd"],
    RegistryProbe: [],
};

/**
 * Inputs each kind also reports as outputs (declared output properties the cluster can change:
 * refresh shows a role or label set by hand). Other inputs stay only in the state's inputs: the
 * provider reads them from there, so the state holds each once.
 */
export const ECHOED_INPUTS: Record<Kind, string[]> = {
    SwarmCluster: [],
    SwarmMember: ["role", "availability"],
    NodeLabels: ["labels"],
    ProvisionStep: [],
    SwarmNetwork: [],
    SwarmSecret: [],
    SwarmConfig: [],
    SwarmProvidedSecret: [],
    GeneratedValue: [],
    SwarmExternals: [],
    SwarmService: [],
    StackImage: [],
    RegistryPki: [],
    RegistryUsers: ["users"],
    RegistryProbe: [],
};

