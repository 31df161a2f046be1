/**
 * The lab benchmarks' workloads as pure data (bench/peers.ts runs them): one desired state per step
 * of a chain that every side (the program, the Ansible peer, the Docker CLI by hand) walks from bare
 * nodes, and what each side is given to reach it: the program's stack config, Ansible's inventory
 * and variables, the CLI baseline's arguments, and the end condition every side is timed to.
 */

/** The workloads, in the order of the chain every side runs from bare nodes. */
export const WORKLOADS = ["scratch", "noop", "label", "roll2", "roll6", "drain", "stacks1", "stacks5", "stacks20"] as const;
export type Workload = (typeof WORKLOADS)[number];
export const SIDES = ["ours", "ansible", "cli"] as const;
export type SideName = (typeof SIDES)[number];

export interface BenchNode {
    hostname: string;
    address: string;
    role: "manager" | "worker";
    availability: "active" | "drain";
    labels: Record<string, string>;
}

export interface BenchService {
    name: string;
    image: string;
    replicas: number;
}

export interface BenchStack {
    name: string;
    services: BenchService[];
}

export interface Spec {
    nodes: BenchNode[];
    stacks: BenchStack[];
}

/** The per-node registry of bench/roll-images.sh (localhost on every node: a pull is a manifest check). */
export const REGISTRY = { port: 5099, repo: "bench/busybox", tags: ["a", "b"], baseImage: "dccn-lab/busybox:1", container: "dccn-bench-registry" };
export const imageTag = (tag: string) => `localhost:${REGISTRY.port}/${REGISTRY.repo}:${tag}`;

/** The update settings of every service: stacks/webapp's web service, the engine's defaults written out. */
export const UPDATE = { parallelism: 1, delay: "5s", order: "stop-first", monitor: "5s", failure_action: "pause" };

/** daemon.json on every node, every side: the dev stack's settings (log rotation) and overlay2. */
export const DAEMON = { "log-driver": "json-file", "log-opts": { "max-file": "3", "max-size": "10m" }, "storage-driver": "overlay2" };
export const ENGINE_PACKAGE = "docker.io";

/** The drained and relabelled node: the last worker. */
function lastWorker(spec: Spec): BenchNode {
    const w = spec.nodes.filter((n) => n.role === "worker");
    if (!w.length) throw new Error("the lab benchmarks need at least one worker node");
    return w[w.length - 1];
}

/** The first state: the lab's nodes (the first a manager, the rest workers), one stack of a 2- and a 6-replica service. */
export function initialSpec(labNodes: { name: string; address: string }[]): Spec {
    if (labNodes.length < 2) throw new Error(`the lab benchmarks need at least 2 lab nodes, the lab has ${labNodes.length}`);
    return {
        nodes: labNodes.map((n, i): BenchNode => ({
            hostname: n.name,
            address: n.address,
            role: i === 0 ? "manager" : "worker",
            availability: "active",
            labels: i === 0 ? { os: "linux" } : { os: "linux", function: "production" } as Record<string, string>,
        })),
        stacks: [{ name: "bench", services: [{ name: "app", image: imageTag("a"), replicas: 2 }, { name: "wide", image: imageTag("a"), replicas: 6 }] }],
    };
}

const clone = (s: Spec): Spec => JSON.parse(JSON.stringify(s)) as Spec;

/** Services of the stacks workloads: N services of one replica each. */
export function stackOf(n: number): BenchStack {
    return { name: `s${n}`, services: Array.from({ length: n }, (_, i) => ({ name: `svc${i + 1}`, image: imageTag("a"), replicas: 1 })) };
}

/** The desired state after workload `w`, from the one before (`undefined` before `scratch`). */
export function step(prev: Spec | undefined, w: Workload, labNodes: { name: string; address: string }[]): Spec {
    if (w === "scratch") return initialSpec(labNodes);
    if (!prev) throw new Error(`workload ${w} needs the cluster from scratch first`);
    const s = clone(prev);
    const bench = s.stacks.find((x) => x.name === "bench")!;
    switch (w) {
        case "noop":
            return s;
        case "label": {
            const n = lastWorker(s);
            n.labels.function = n.labels.function === "production" ? "test" : "production";
            return s;
        }
        case "roll2":
        case "roll6": {
            const svc = bench.services.find((x) => x.replicas === (w === "roll2" ? 2 : 6))!;
            svc.image = imageTag(svc.image === imageTag("a") ? "b" : "a");
            return s;
        }
        case "drain":
            lastWorker(s).availability = "drain";
            return s;
        case "stacks1":
        case "stacks5":
        case "stacks20":
            s.stacks.push(stackOf(Number(w.slice("stacks".length))));
            return s;
    }
}

/** The compose file of a stack (every side deploys the same file). */
export function composeText(stack: BenchStack): string {
    const lines = ["# bench/peers-spec.ts: a lab benchmark stack (the same file for every side)", 'version: "3.7"', "services:"];
    for (const svc of stack.services) {
        lines.push(
            `  ${svc.name}:`,
            `    image: ${svc.image}`,
            // Stops on SIGTERM at once (a shell as PID 1 ignores it unless trapped, and would wait out the grace period).
            `    command: ["sh", "-c", "trap 'exit 0' TERM; while :; do sleep 1 & wait $$!; done"]`,
            "    deploy:",
            `      replicas: ${svc.replicas}`,
            "      update_config:",
            ...Object.entries(UPDATE).map(([k, v]) => `        ${k}: ${v}`),
        );
    }
    return lines.join("\n") + "\n";
}

/** Where the program's scratch project keeps a stack's compose file (relative to the project). */
export const stackFile = (name: string) => `stacks/bench-${name}/docker-compose.yml`;

export interface LabFacts {
    sshUser: string;
    sshPrivateKeyFile: string;
    knownHostsFile: string;
    nodes: { name: string; address: string }[];
}

/** The program's stack config (Pulumi.<stack>.yaml's `config`) for a desired state. */
export function oursConfig(spec: Spec, lab: LabFacts): Record<string, unknown> {
    return {
        "dccn-swarm:environment": "dev",
        "dccn-swarm:ssh": { user: lab.sshUser || "root", privateKeyFile: lab.sshPrivateKeyFile, knownHostsFile: lab.knownHostsFile, connectTimeout: 10 },
        "dccn-swarm:engine": {
            install: true,
            package: ENGINE_PACKAGE,
            storage: "overlay2",
            daemon: { "log-driver": DAEMON["log-driver"], "log-opts": DAEMON["log-opts"] },
        },
        "dccn-swarm:nodes": spec.nodes.map((n) => ({
            hostname: n.hostname, address: n.address, role: n.role, labels: n.labels,
            ...(n.availability !== "active" ? { availability: n.availability } : {}),
        })),
        "dccn-swarm:stacks": spec.stacks.map((s) => ({ name: s.name, file: stackFile(s.name) })),
    };
}

/** Ansible's inventory (YAML's JSON subset) for a desired state. */
export function ansibleInventory(spec: Spec, lab: LabFacts): Record<string, unknown> {
    return {
        all: {
            vars: {
                // The docker modules run on this machine (connection local), with Debian's Python and its docker/paramiko.
                ansible_python_interpreter: "/usr/bin/python3",
                ansible_user: lab.sshUser || "root",
                ansible_ssh_private_key_file: lab.sshPrivateKeyFile,
                ansible_ssh_common_args: `-o UserKnownHostsFile=${lab.knownHostsFile} -o StrictHostKeyChecking=yes`,
            },
            children: {
                nodes: {
                    hosts: Object.fromEntries(spec.nodes.map((n) => [n.hostname, {
                        ansible_host: n.address, role: n.role, availability: n.availability, labels: n.labels,
                    }])),
                },
            },
        },
    };
}

/** The playbook's extra variables for a desired state (compose files at `composePath(name)`). */
export function ansibleVars(spec: Spec, composePath: (name: string) => string): Record<string, unknown> {
    return {
        engine_package: ENGINE_PACKAGE,
        daemon_json: daemonJson(),
        stacks: spec.stacks.map((s) => ({ name: s.name, compose: composePath(s.name) })),
    };
}

/** daemon.json as the Ansible peer and the CLI baseline write it (keys sorted, as the program writes it). */
export function daemonJson(): string {
    return JSON.stringify(DAEMON, null, 2);
}

/** The `--node` arguments of bench/baseline-manual.sh for a desired state. */
export function cliNodeArgs(spec: Spec): string[] {
    return spec.nodes.flatMap((n) => {
        const labels = Object.entries(n.labels).map(([k, v]) => {
            if (/[,:]/.test(k + v)) throw new Error(`label ${k}=${v} of ${n.hostname}: no commas or colons in the benchmarks' labels`);
            return `${k}=${v}`;
        });
        return ["--node", [n.hostname, n.address, n.role, n.availability, ...labels].join(",")];
    });
}

/** The end condition (bench/watch-state.sh's arguments): every node and every service as desired. */
export function watchArgs(spec: Spec): string[] {
    return [
        ...spec.nodes.map((n) => `node:${n.hostname}:${n.role}:${n.availability}:${Object.entries(n.labels).map(([k, v]) => `${k}=${v}`).join(",")}`),
        ...spec.stacks.flatMap((s) => s.services.map((v) => `svc:${s.name}_${v.name}:${v.image}:${v.replicas}`)),
    ];
}

/** What changed from one desired state to the next, for the CLI baseline: the one command an administrator types. */
export type CliAction =
    | { kind: "up" }
    | { kind: "noop" }
    | { kind: "node-update"; target: string; what: "labels" | "availability" }
    | { kind: "update-image"; service: string; image: string }
    | { kind: "deploy"; stack: string };

export function cliAction(prev: Spec | undefined, next: Spec, w: Workload): CliAction {
    switch (w) {
        case "scratch":
            return { kind: "up" };
        case "noop":
            return { kind: "noop" };
        case "label":
        case "drain":
            return { kind: "node-update", target: lastWorker(next).hostname, what: w === "label" ? "labels" : "availability" };
        case "roll2":
        case "roll6": {
            for (const s of next.stacks) {
                for (const v of s.services) {
                    const before = prev?.stacks.find((x) => x.name === s.name)?.services.find((x) => x.name === v.name);
                    if (before && before.image !== v.image) return { kind: "update-image", service: `${s.name}_${v.name}`, image: v.image };
                }
            }
            throw new Error(`${w}: no service changed its image`);
        }
        default:
            return { kind: "deploy", stack: next.stacks[next.stacks.length - 1].name };
    }
}

/** Ansible's PLAY RECAP: changed tasks per host (a no-op must change nothing). */
export function ansibleChanged(output: string): { hosts: number; changed: number; failed: number } {
    let hosts = 0, changed = 0, failed = 0;
    for (const m of output.matchAll(/^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)/gm)) {
        hosts++;
        changed += Number(m[2]);
        failed += Number(m[3]) + Number(m[4]);
    }
    return { hosts, changed, failed };
}

/** Targets of issue 18: ours over a peer, per workload. */
export const TARGETS: { workload: Workload; peer: "ansible" | "cli"; max: number }[] = [
    { workload: "scratch", peer: "ansible", max: 0.5 },
    { workload: "noop", peer: "ansible", max: 1.0 },
    { workload: "label", peer: "ansible", max: 1.0 },
    { workload: "noop", peer: "cli", max: 1.5 },
    { workload: "roll2", peer: "cli", max: 1.2 },
    { workload: "roll6", peer: "cli", max: 1.2 },
];

export const DESCRIBE: Record<Workload, string> = {
    scratch: "Cluster from scratch with provisioning (engine installed on bare nodes, swarm, labels, a stack of 2+6 replicas)",
    noop: "No-op (checks the live cluster)",
    label: "A label changed on one node",
    roll2: "Image roll, 2 replicas",
    roll6: "Image roll, 6 replicas",
    drain: "Drain of a node running N tasks",
    stacks1: "New stack of 1 service",
    stacks5: "New stack of 5 services",
    stacks20: "New stack of 20 services",
};

/** The workloads a selection needs, in chain order: `scratch` always (every chain starts on bare nodes). */
export function chainFor(selected: Workload[]): Workload[] {
    return WORKLOADS.filter((w) => w === "scratch" || selected.includes(w));
}
