/**
 * Production protection: in every environment but `dev`, what `pulumi destroy` (or a removal from the
 * stack file) could not give back as it was is created with Pulumi's `protect`, so Pulumi refuses to
 * delete or replace it with its own message ("cannot be deleted because it is protected"). Lifting it
 * is deliberate: `dccn-swarm:allowDestroy: true`, `pulumi up` (it changes only the protection in the
 * state: nothing is replaced or run on a node), then `pulumi destroy`. Pure: no Pulumi, no I/O.
 *
 * What is protected, and why (components pass `protect` to exactly these):
 * - the swarm (SwarmCluster): its Raft store holds every service, secret and config, and the keys
 *   that encrypt them; `pulumi destroy` makes the last managers `docker swarm leave --force`;
 * - every membership (SwarmMember): a member's delete makes its node leave. Pulumi checks protection
 *   before anything only in a destroy's preview; `pulumi destroy --skip-preview` deletes dependents
 *   first and would empty the swarm before it reached a protected swarm (seen with pulumi 3.248);
 * - every service (SwarmService, the registry's and the databases' included): its delete takes the
 *   application down, and services depend on the secrets, configs, networks and label sets, which
 *   therefore stay too; a service is replaced only when renamed or its mode changes;
 * - the registry's CA and certificates (RegistryPki): the private keys exist only in the state;
 * - generated secret values (GeneratedValue): they exist only in the state, and data (a database
 *   initialised with the password) depends on them.
 * Not protected: content-named secrets and configs (every change of content is a replacement, which
 * Pulumi refuses for a protected resource; their content comes from the stack file and compose
 * files), networks, label sets, provisioning steps and the registry's users and probe: the next
 * `pulumi up` gives them back as they were, and none goes before the services that use it.
 */
import type { ConfigFinding } from "./cluster-config";

/** The one environment whose resources are not protected: the local lab. */
export const UNPROTECTED_ENVIRONMENT = "dev";

export interface Protection {
    /** Whether the resources above are created with `protect`. */
    protect: boolean;
    /** `dccn-swarm:allowDestroy` as validated. */
    allowDestroy: boolean;
}

/**
 * `dccn-swarm:allowDestroy` (true or false; Pulumi config gives strings) with the environment: the
 * protection, and a warning while it is lifted outside `dev`.
 */
export function validateProtection(environment: string, rawAllowDestroy: unknown, stackFile: string): { protection: Protection; findings: ConfigFinding[] } {
    const findings: ConfigFinding[] = [];
    const stack = /^Pulumi\.(.+)\.yaml$/.exec(stackFile)?.[1] ?? "STACK";
    let allowDestroy = false;
    if (rawAllowDestroy !== undefined && rawAllowDestroy !== null && rawAllowDestroy !== "") {
        const v = typeof rawAllowDestroy === "string" ? rawAllowDestroy.trim() : rawAllowDestroy;
        if (v === true || v === "true") allowDestroy = true;
        else if (v === false || v === "false") allowDestroy = false;
        else {
            findings.push({
                level: "error", key: "allowDestroy",
                message: `must be true or false, got ${JSON.stringify(rawAllowDestroy)}; it lifts the protection of the swarm and its data ` +
                    `on purpose before \`pulumi destroy\` (\`pulumi config set --stack ${stack} allowDestroy true\`, then \`pulumi up\`)`,
            });
        }
    }
    const production = environment !== UNPROTECTED_ENVIRONMENT;
    if (production && allowDestroy) {
        findings.push({
            level: "warning", key: "allowDestroy",
            message: `is true: the swarm, its memberships, services and keys of environment ${environment} are not protected; ` +
                `\`pulumi destroy\` dissolves the swarm. Set it back with \`pulumi config rm --stack ${stack} allowDestroy\` and \`pulumi up\``,
        });
    }
    return { protection: { protect: production && !allowDestroy, allowDestroy }, findings };
}
