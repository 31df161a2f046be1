/**
 * Raft quorum arithmetic for swarm managers. Pure functions: no Pulumi, no I/O.
 *
 * A swarm with N managers needs a majority, floor(N/2)+1, to agree on any change; it keeps working
 * while at most floor((N-1)/2) managers are lost (Docker's "administer and maintain a swarm").
 */

/** Managers that must agree: a majority of `managers`. */
export function quorumSize(managers: number): number {
    if (!Number.isInteger(managers) || managers < 0) {
        throw new RangeError(`manager count must be a non-negative integer, got ${managers}`);
    }
    return managers === 0 ? 0 : Math.floor(managers / 2) + 1;
}

/** Managers that may fail while the swarm keeps a quorum. */
export function faultTolerance(managers: number): number {
    return managers === 0 ? 0 : managers - quorumSize(managers);
}

export interface QuorumFinding {
    level: "error" | "warning";
    message: string;
}

/** Findings about a desired manager set on its own: none at all is an error, an even count a warning. */
export function checkManagerCount(managers: number): QuorumFinding[] {
    if (managers === 0) {
        return [{ level: "error", message: "no node has role `manager`; a swarm needs at least one (3 or 5 in production)" }];
    }
    if (managers % 2 === 0) {
        return [{
            level: "warning",
            message: `${managers} managers tolerate the loss of ${faultTolerance(managers)}, no more than ` +
                `${managers - 1} would; use an odd number of managers`,
        }];
    }
    return [];
}

/** One step of a manager-set change, applied in order. */
export type ManagerStep =
    | { action: "promote"; node: string }
    | { action: "demote"; node: string };

export interface ManagerTransition {
    steps: ManagerStep[];
    /** Manager count after each step, starting with the current count. */
    counts: number[];
}

/**
 * Plan a change from the `current` managers to the `desired` ones (node names; a node absent from
 * `desired` is being demoted or removed). Refuses a change that takes away a majority of the current
 * managers in one step, because the swarm could not keep its Raft log agreed through it. Promotions
 * run first and demotions one at a time afterwards, so the quorum holds at every step.
 */
export function planManagerTransition(current: readonly string[], desired: readonly string[]): ManagerTransition {
    const cur = new Set(current);
    const want = new Set(desired);
    if (want.size === 0) {
        throw new QuorumError("the change leaves no manager; keep at least one node with role `manager`");
    }
    const leaving = [...cur].filter((n) => !want.has(n)).sort();
    const joining = [...want].filter((n) => !cur.has(n)).sort();
    if (cur.size > 0 && leaving.length >= quorumSize(cur.size)) {
        throw new QuorumError(
            `the change demotes or removes ${leaving.length} of ${cur.size} managers (${leaving.join(", ")}) at once, ` +
            `a majority, so the swarm would lose its quorum; demote or remove at most ` +
            `${quorumSize(cur.size) - 1} per \`pulumi up\` and run it again for the rest`);
    }
    const steps: ManagerStep[] = [
        ...joining.map((node) => ({ action: "promote" as const, node })),
        ...leaving.map((node) => ({ action: "demote" as const, node })),
    ];
    const counts = [cur.size];
    for (const s of steps) {
        counts.push(counts[counts.length - 1] + (s.action === "promote" ? 1 : -1));
    }
    return { steps, counts };
}

export class QuorumError extends Error {
    constructor(message: string) {
        super(message);
        this.message = message; // see RemoteError in ssh.ts: serialized copies need it set
        this.name = "QuorumError";
    }
}
