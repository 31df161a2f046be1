/**
 * The rules of `docker stack deploy` per docker CLI version, for the CLIs the program is at parity
 * with: 20.10 (Debian bookworm's docker.io, the lab's and DCCN's pinned engine) and 26.1 (Debian
 * trixie's). `docker stack deploy` loads and converts the compose file in the client, so what a
 * file may hold, and what it turns into, is the CLI's: the program follows the CLI that matches
 * the swarm's engine (compose/target.ts decides which).
 *
 * Read from docker/cli's sources of 20.10.24 and 26.1.5 (Debian's source packages) (cli/compose/schema, cli/compose/loader,
 * cli/compose/convert), not copied:
 * - 20.10: schema.Version reads a file without `version` as "1.0", which has no schema ("unsupported
 *   Compose file version: 1.0"); "3" is "3.0"; the schemas are 3.0 to 3.9. convertDeployMode knows
 *   replicated and global only ("Unknown mode"); a mount of type cluster is "volume type must be
 *   volume, bind, tmpfs or npipe"; extra_hosts entries are split at their first ':' when converted
 *   (others dropped), a bracketed IPv6 address kept as written.
 * - 26.1: a file without `version`, or with "" or "3", is read as 3.12 (defaultVersion); the schemas
 *   are 3.0 to 3.12 (3.10: `version` no longer required, volumes' x-cluster-spec as a key of its
 *   own, before an x-* extension; 3.11: any key under build; 3.12: healthcheck.start_interval). Swarm jobs convert (replicated-job,
 *   global-job); cluster mounts convert; extra_hosts entries may be `host=ip` or `host:ip`, and a
 *   bracketed IPv6 address loses its brackets (transformHostsList).
 */

export interface StackDeployRules {
    /** The CLI, major.minor: "20.10", "26.1". */
    cli: string;
    /** Highest 3.x minor version it has a schema for. */
    maxMinor: number;
    /** The version a file without `version` (or "" or "3") is read as; undefined: `version` is required. */
    defaultVersion?: string;
    /** deploy.mode replicated-job and global-job convert (docker/cli#2907, CLI 23). */
    jobs: boolean;
    /** A service mount of type cluster converts (cluster volumes). */
    clusterMounts: boolean;
    /** extra_hosts as transformHostsList reads it: `host=ip` too, IPv6 brackets removed. */
    extraHostsEquals: boolean;
    /**
     * Plain y/yes/on and n/no/off are booleans, as gopkg.in/yaml.v2 (YAML 1.1) reads them: 20.10 and
     * 26.1. 28.2 reads YAML 1.2 (only true/false), so `tty: yes` is a string there, and refused.
     */
    yaml11Bools: boolean;
}

export const CLI_2010: StackDeployRules = {
    cli: "20.10", maxMinor: 9, jobs: false, clusterMounts: false, extraHostsEquals: false, yaml11Bools: true,
};

export const CLI_261: StackDeployRules = {
    cli: "26.1", maxMinor: 12, defaultVersion: "3.12", jobs: true, clusterMounts: true, extraHostsEquals: true, yaml11Bools: true,
};

/**
 * 28.2 (the docker CLI preinstalled on this project's machines, a client only): 26.1's rules with the
 * 3.13 schema (services' oom_score_adj and a service network's driver_opts), which is also what a
 * file without `version` is read as, and YAML 1.2 booleans. Checked against the CLI itself (`docker stack config`) by
 * test/unit/compose-cli-rules.test.ts.
 */
export const CLI_282: StackDeployRules = { ...CLI_261, cli: "28.2", maxMinor: 13, defaultVersion: "3.13", yaml11Bools: false };

/** The CLIs the program has the rules of, oldest first. */
export const KNOWN_CLIS: readonly StackDeployRules[] = [CLI_2010, CLI_261, CLI_282];

/** major.minor of a version as engines and CLIs write it (`20.10.24+dfsg1`, `5:26.1.5-1~debian`, `26.1`); undefined when it is none. */
export function majorMinor(version: string): [number, number] | undefined {
    const m = /^(?:\d+:)?(\d+)\.(\d+)(?:[.+~-]|$)/.exec(version.trim());
    return m ? [Number(m[1]), Number(m[2])] : undefined;
}

function atLeast(a: [number, number], b: [number, number]): boolean {
    return a[0] > b[0] || (a[0] === b[0] && a[1] >= b[1]);
}

/**
 * The rules for a CLI or engine version: the newest known CLI not newer than it. Versions between
 * two known CLIs (21 to 26.0) get the older one's rules: stricter than their own (a file they would
 * read may be refused), never looser. Undefined for a version older than 20.10 or not a version.
 */
export function rulesFor(version: string): StackDeployRules | undefined {
    const v = majorMinor(version);
    if (!v) return undefined;
    let found: StackDeployRules | undefined;
    for (const r of KNOWN_CLIS) if (atLeast(v, majorMinor(r.cli)!)) found = r;
    return found;
}

/** Whether an engine of `engineVersion` is held to `cli`'s rules or a newer CLI's. */
export function engineMeets(engineVersion: string, cli: string): boolean {
    const rules = rulesFor(engineVersion);
    return rules !== undefined && atLeast(majorMinor(rules.cli)!, majorMinor(cli)!);
}
