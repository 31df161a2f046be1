/**
 * Generated stack configurations for the program-size benchmark: a cluster of N nodes (prod-like:
 * devicemapper engines, 3/5/7 managers, labels) and a list of N application stacks
 * (`dccn-swarm:stacks`, the shape lib/stacks-config.ts validates) whose compose files are copies of
 * the DCCN fixtures. Pure apart from writing the stack file copies into a work directory.
 */
import * as fs from "fs";
import * as path from "path";
import * as yaml from "js-yaml";

export const PROJECT = "dccn-swarm";
export const NODE_SIZES = [8, 64, 256];
export const STACK_SIZES = [3, 30, 100];
/** Nodes behind the stack workload: the size of the DCCN production cluster, constant across stack counts. */
export const STACK_WORKLOAD_NODES = 8;

/** Where the DCCN compose files are read from (override with BENCH_COMPOSE_DIR). */
export const DEFAULT_COMPOSE_DIR = "/work/shared/fixtures/dccn";
/** The swarm-deployable compose files of the DCCN material (docker stack deploy accepts them). */
export const COMPOSE_FIXTURES = [
    "tutorial-swarm.docker-compose.swarm.yml",
    "tutorial-swarm.rst-inline.docker-compose.swarm.yml",
    "tutorial-orchestration.docker-compose.swarm.yml",
    "design.data-stager.docker-compose.v3.yml",
    "data-stager.docker-compose.dccn.yml",
];

/**
 * Stand-in when the DCCN fixtures are not on this machine: a stack of the same kind as the
 * tutorial's webapp (database with a named volume, web tier with a published port, label constraints).
 */
export const SYNTHETIC_COMPOSE = `version: "3.1"
networks:
  default:
volumes:
  dbdata:
services:
  db:
    image: mysql:8
    environment:
      - MYSQL_DATABASE=registry
    volumes:
      - dbdata:/var/lib/mysql
    deploy:
      replicas: 1
      placement:
        constraints:
          - node.labels.function == production
  web:
    image: docker-registry.dccn.nl:5000/demo_user_register:1.0
    ports:
      - 8080:80
    volumes:
      - /mnt/docker/data/webapp/log:/var/log/httpd
    depends_on:
      - db
    deploy:
      replicas: 2
      placement:
        constraints:
          - node.labels.os == linux
`;

export type WorkloadKind = "nodes" | "stacks";

export interface Workload {
    kind: WorkloadKind;
    size: number;
}

/** What a child process is given: the stack config as Pulumi would hand it to the program. */
export interface EvalJob {
    workload: Workload;
    /** `dccn-swarm:*` keys to values (objects stay objects; the child serialises them as Pulumi does). */
    config: Record<string, unknown>;
    /** Config keys that are secrets. */
    secretKeys: string[];
}

/** 3 managers up to 8 nodes, 5 up to 64, 7 beyond: the odd counts a cluster of that size would run. */
export function managersFor(nodes: number): number {
    return nodes <= 8 ? 3 : nodes <= 64 ? 5 : 7;
}

function pad(i: number, width = 3): string {
    return String(i).padStart(width, "0");
}

/** A host key line the config validation accepts (`ssh-ed25519 <base64>`), distinct per node. */
export function fakeHostKey(i: number): string {
    return `ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBench${pad(i, 4)}${"x".repeat(28)}`;
}

export interface GeneratedNode {
    hostname: string;
    address: string;
    role: "manager" | "worker";
    availability?: "active" | "drain";
    labels: Record<string, string>;
    hostKey: string;
}

/** N nodes: the first `managersFor(N)` are managers, every 32nd worker is drained, labels vary by rack. */
export function generateNodes(count: number): GeneratedNode[] {
    const managers = managersFor(count);
    return Array.from({ length: count }, (_, k) => {
        const i = k + 1;
        const role = k < managers ? "manager" : "worker";
        const labels: Record<string, string> = { os: "linux", function: "production", rack: `r${pad(k % 16, 2)}` };
        if (role === "worker" && k % 10 === 0) labels.gpu = "true";
        const node: GeneratedNode = {
            hostname: `dccn-n${pad(i)}`,
            address: `10.20.${Math.floor(k / 250)}.${(k % 250) + 1}`,
            role,
            labels,
            hostKey: fakeHostKey(i),
        };
        if (role === "worker" && k % 32 === 31) node.availability = "drain";
        return node;
    });
}

/** The cluster part of the stack configuration, modelled on Pulumi.prod.yaml. */
export function clusterConfig(nodes: number): { config: Record<string, unknown>; secretKeys: string[] } {
    const key = `${PROJECT}:sshPrivateKey`;
    return {
        config: {
            [`${PROJECT}:environment`]: "bench",
            [`${PROJECT}:sharedStorage`]: "/mnt/docker",
            [`${PROJECT}:ssh`]: { user: "root", connectTimeout: 15 },
            [`${PROJECT}:engine`]: {
                install: true,
                package: "docker-ce-20.10.24",
                version: "20.10.24",
                storage: "devicemapper",
                dataDevice: "/dev/sdb",
                daemon: { "log-driver": "json-file", "log-opts": { "max-size": "50m", "max-file": "5" } },
            },
            [`${PROJECT}:nodes`]: generateNodes(nodes),
            [key]: "-----BEGIN OPENSSH PRIVATE KEY-----\nBENCH-KEY\n-----END OPENSSH PRIVATE KEY-----\n",
        },
        secretKeys: [key],
    };
}

/** The compose files stacks are copied from, and where they came from (for the results header). */
export function composeSources(dir = process.env.BENCH_COMPOSE_DIR || DEFAULT_COMPOSE_DIR): { files: { name: string; text: string }[]; origin: string } {
    const files = COMPOSE_FIXTURES.map((f) => path.join(dir, f)).filter((f) => fs.existsSync(f))
        .map((f) => ({ name: path.basename(f), text: fs.readFileSync(f, "utf8") }));
    if (files.length > 0) return { files, origin: `${files.length} DCCN compose files from ${dir}` };
    return { files: [{ name: "synthetic-webapp.yml", text: SYNTHETIC_COMPOSE }], origin: `a synthetic webapp stack (${dir} not found)` };
}

/** Raw `dccn-swarm:stacks` entry, as written in Pulumi.<stack>.yaml. */
export interface RawStackEntry {
    name: string;
    file: string;
    env?: Record<string, string>;
    overrides?: Record<string, unknown>;
}

/** The first replicated (non-global) service of a compose file, for a `replicas` override. */
function replicatedService(text: string): string | undefined {
    const doc = yaml.load(text) as { services?: Record<string, { deploy?: { mode?: string } } | null> } | undefined;
    return Object.entries(doc?.services ?? {}).find(([, s]) => (s?.deploy?.mode ?? "replicated") !== "global")?.[0];
}

/**
 * A compose file without its services' `build:` sections: the copies stand alone (their build
 * contexts are not copied), and each such service names the image it runs. Building images (pushed
 * to the private registry) is another workload than the stacks' conversion measured here.
 */
export function withoutBuild(text: string): string {
    const doc = yaml.load(text) as { services?: Record<string, Record<string, unknown> | null> } | null;
    const services = Object.values(doc?.services ?? {});
    if (!services.some((s) => s && "build" in s)) return text;
    for (const s of services) if (s) delete s.build;
    return yaml.dump(doc, { lineWidth: -1 });
}

/**
 * N stacks, each its own copy of a compose file (cycling through the sources) under `dir`, with the
 * per-environment overrides a lab or production stack file would carry.
 */
export function generateStacks(count: number, dir: string, sources = composeSources().files): RawStackEntry[] {
    fs.mkdirSync(dir, { recursive: true });
    return Array.from({ length: count }, (_, k) => {
        const src = sources[k % sources.length];
        const name = `app${pad(k + 1)}`;
        const file = path.join(dir, `${name}.${src.name}`);
        fs.writeFileSync(file, withoutBuild(src.text));
        const overrides: Record<string, unknown> = {
            registryMap: { "docker-registry.dccn.nl:5000": "registry.lab:5000" },
            bindPaths: { "/mnt/docker/data": `/srv/bench/${name}/data` },
        };
        if (k % 2 === 1) overrides.registryPrefix = "registry.lab:5000";
        const svc = replicatedService(src.text);
        if (svc) overrides.replicas = { [svc]: 1 + (k % 3) };
        return { name, file, env: { HOME: "/home/deploy" }, overrides };
    });
}

/** The whole configuration for one workload size; stack files go under `workDir`. */
export function generateJob(workload: Workload, workDir: string): EvalJob {
    if (workload.kind === "nodes") {
        return { workload, ...clusterConfig(workload.size) };
    }
    const { config, secretKeys } = clusterConfig(STACK_WORKLOAD_NODES);
    config[`${PROJECT}:stacks`] = generateStacks(workload.size, path.join(workDir, "stacks"));
    return { workload, config, secretKeys };
}
