// Fixed facts of the lab: names, addresses, paths, and the images it builds. Everything that differs
// between two labs on this machine (lab instances, `--name`) is derived from the instance's name by
// labInstance(); the host engine, the image caches and the images are shared by every instance.
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";
import { LabError } from "./util";

export const OWNER_LABEL = "dccn-lab.owner";
export const OWNER = "dccn-swarm";
export const LABEL = `${OWNER_LABEL}=${OWNER}`;
/** Label of a lab's containers, volumes and network naming its instance (absent on the default lab's older ones). */
export const INSTANCE_LABEL = "dccn-lab.instance";
/** Label of a node container naming the engine it was made for (absent: the default, 20). */
export const ENGINE_LABEL = "dccn-lab.engine";

export const MAX_NODES = 9;
export const DEFAULT_NODES = 3;

/** lab/ and the repository root it belongs to. */
export const LAB_DIR = __dirname;
export const REPO_ROOT = path.resolve(__dirname, "..");

/** Caches and the lab's own engine live outside the work tree, so they outlive a fresh clone. */
export const CACHE_DIR = process.env.LAB_CACHE_DIR || "/var/cache/dccn-lab";
export const LAB_VAR_DIR = "/var/lib/dccn-lab";
/** Where the shared storage is seen on every node (in prod an NFS mount; this kernel has no NFS). */
export const NODE_SHARED_PATH = "/mnt/docker";
export const ENGINE_DATA_ROOT = path.join(LAB_VAR_DIR, "engine");
export const ENGINE_LOG = path.join(LAB_VAR_DIR, "dockerd.log");
export const RUN_DIR = "/run/dccn-lab";
export const ENGINE_EXEC_ROOT = path.join(RUN_DIR, "exec");
export const ENGINE_SOCKET = path.join(RUN_DIR, "docker.sock");
export const ENGINE_PIDFILE = path.join(RUN_DIR, "docker.pid");
export const SYSTEM_SOCKET = "/var/run/docker.sock";

// ---------------------------------------------------------------- lab instances

/** The name of the default lab (no `--name`, no LAB_NAME). */
export const DEFAULT_INSTANCE = "default";
/** A lab name: short, because the host bridge's name (`dlab-NAME`) has at most 15 characters. */
const NAME_RE = /^[a-z][a-z0-9]{0,9}$/;
/** Named labs get a /24 with this third octet range: 172.28.214.0/24 .. 172.28.253.0/24. */
const NAMED_OCTET_FIRST = 214;
const NAMED_OCTET_COUNT = 40;

/** Everything that belongs to one lab on this machine, derived from its name. */
export interface LabInstance {
    /** "default", or the name given with --name / LAB_NAME */
    name: string;
    isDefault: boolean;
    /** Docker network and its Linux bridge on the host */
    network: string;
    bridge: string;
    subnet: string;
    gateway: string;
    /** the subnet's first three octets with a trailing dot, e.g. "172.28.213." */
    prefix: string;
    /** comment of the iptables FORWARD rule that lets the bridge's ports talk */
    forwardComment: string;
    /** a node's hostname inside the lab (vm1..vmN in every lab) */
    nodeName(i: number): string;
    /** its container's name on the host engine */
    containerName(i: number): string;
    nodeAddress(i: number): string;
    /** the Docker volume holding the node's /var/lib/docker */
    nodeVolume(i: number): string;
    /** .state/lab (default) or .state/lab-NAME: key pair, known_hosts, lab.json, hosts/ */
    stateDir: string;
    keyFile: string;
    knownHosts: string;
    labJson: string;
    /**
     * Each node's /etc/hosts, bind-mounted: it survives a restart of the node's container, as a
     * machine's does (the engine would write a fresh one at every start, losing what provisioning
     * added, such as the registry's name).
     */
    hostsDir: string;
    /**
     * The lab's shared storage: one host directory bind-mounted into every node at NODE_SHARED_PATH, so
     * data written on one node is seen on the others (in prod an NFS mount). `lab:down` removes it.
     */
    sharedDir: string;
    sharedBind: string;
}

const fnv1a = (s: string) => [...Buffer.from(s)].reduce((h, b) => Math.imul(h ^ b, 16777619) >>> 0, 2166136261);

/** The third octet of a named lab's subnet: a hash of its name, so it is the same on every machine. */
export function namedOctet(name: string): number {
    return NAMED_OCTET_FIRST + (fnv1a(name) % NAMED_OCTET_COUNT);
}

/** Checks a lab name (--name, LAB_NAME); "" and "default" are the default lab. */
export function checkInstanceName(value: string, from: string): string {
    const name = value.trim();
    if (name === "" || name === DEFAULT_INSTANCE) return DEFAULT_INSTANCE;
    if (!NAME_RE.test(name)) {
        throw new LabError(`${from} must be 1 to 10 lower-case letters and digits starting with a letter (e.g. lab26), not '${value}'`, 2);
    }
    return name;
}

export function labInstance(name: string = DEFAULT_INSTANCE): LabInstance {
    const n = checkInstanceName(name, "the lab name");
    const isDefault = n === DEFAULT_INSTANCE;
    // The default lab keeps the names and addresses it always had.
    const octet = isDefault ? 213 : namedOctet(n);
    const prefix = `172.28.${octet}.`;
    const stateDir = path.join(REPO_ROOT, ".state", isDefault ? "lab" : `lab-${n}`);
    const sharedDir = path.join(LAB_VAR_DIR, isDefault ? "shared" : `shared-${n}`);
    return {
        name: n,
        isDefault,
        network: isDefault ? "dccn-lab" : `dccn-lab-${n}`,
        bridge: isDefault ? "dccn-lab0" : `dlab-${n}`,
        subnet: `${prefix}0/24`,
        gateway: `${prefix}1`,
        prefix,
        forwardComment: isDefault ? "dccn-lab" : `dccn-lab-${n}`,
        nodeName: (i) => `vm${i}`,
        containerName: (i) => (isDefault ? `vm${i}` : `${n}-vm${i}`),
        nodeAddress: (i) => `${prefix}${10 + i}`,
        nodeVolume: (i) => (isDefault ? `dccn-lab-vm${i}-docker` : `dccn-lab-${n}-vm${i}-docker`),
        stateDir,
        keyFile: path.join(stateDir, "id_ed25519"),
        knownHosts: path.join(stateDir, "known_hosts"),
        labJson: path.join(stateDir, "lab.json"),
        hostsDir: path.join(stateDir, "hosts"),
        sharedDir,
        sharedBind: `${sharedDir}:${NODE_SHARED_PATH}`,
    };
}

/** The lab instance LAB_NAME names (the default lab when it is unset or empty). */
export function currentLab(env: NodeJS.ProcessEnv = process.env): LabInstance {
    return labInstance(checkInstanceName(env.LAB_NAME ?? "", "LAB_NAME"));
}

/** The instance a lab container, volume or network belongs to, from its labels (none: the default lab). */
export const instanceOf = (labels: Record<string, string> | undefined | null) => labels?.[INSTANCE_LABEL] || DEFAULT_INSTANCE;

// ---------------------------------------------------------------- nodes, engines and images

/** The Debian release the application images (and the default engine's nodes) are built from. */
export const SUITE = "bookworm";
export const MIRROR_TIMEOUT_S = Number(process.env.LAB_MIRROR_TIMEOUT || 20);

/**
 * Name look-ups on a node give up after one second: the lab has no outbound network, and each task
 * start's pull attempt of an image name like dccn-lab/busybox (docker.io) would otherwise wait out
 * the host resolver's retries (about 20 s) before the engine falls back to the node's own copy.
 */
export const NODE_DNS_OPTIONS = ["timeout:1", "attempts:1"];

/** Docker run flags that let a node container run its own dockerd (see shared/notes/machine-facts.md). */
export const NODE_RUN_FLAGS = [
    ...NODE_DNS_OPTIONS.flatMap((o) => ["--dns-option", o]),
    "--cap-add", "ALL",
    "--cap-drop", "SYS_RESOURCE",
    "--security-opt", "seccomp=unconfined",
    "--security-opt", "apparmor=unconfined",
    "--security-opt", "systempaths=unconfined",
    "--device-cgroup-rule", "a *:* rwm",
    "-v", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
];

export interface ImageSpec {
    /** short name, the key in lab.json's images */
    id: string;
    ref: string;
    /** upstream images this lab build stands in for */
    replaces: string[];
    packages: string[];
    /** lab/ files its setup installs (besides image-setup.sh, which every image runs) */
    assets: string[];
    /** no base layer: the setup exports a root file system of its own */
    standalone?: boolean;
    /** loaded into every node (the node image itself only runs on the host engine) */
    forNodes: boolean;
    /** the Debian release it is built from (default SUITE, bookworm) */
    suite?: string;
    /** image-setup.sh's case for it (default: its id) */
    setup?: string;
    config: Record<string, unknown>;
}

const PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export const NODE_PACKAGES = [
    "openssh-server", "docker.io", "lvm2", "iproute2", "procps", "ca-certificates", "openssl", "curl",
    "iptables", "iputils-ping", "kmod", "less", "netcat-openbsd", "xz-utils",
    // daemon-json.sh merges daemon.json with jq (or python3, which minbase lacks).
    "jq",
];

/**
 * The node image of Docker Engine 20.10 (Debian bookworm), what Pulumi.prod.yaml pins. Its spec is
 * part of its cache key: leave it as it is, or every lab's node image is built again.
 */
const NODE_20: ImageSpec = {
    id: "node",
    ref: "dccn-lab/node:bookworm",
    replaces: [],
    packages: NODE_PACKAGES,
    assets: ["node-init.sh", "node-systemctl.sh"],
    forNodes: false,
    config: {
        Env: [PATH_ENV],
        Cmd: ["/usr/local/sbin/lab-init"],
        Volumes: { "/var/lib/docker": {} },
        StopSignal: "SIGTERM",
    },
};

/**
 * The node image of Docker Engine 26.1 (Debian trixie: docker.io 26.1.5, containerd 1.7.24, runc
 * 1.1.15). trixie ships the docker CLI apart from the engine (docker-cli, only a recommendation of
 * docker.io), and installs the same lab files as the bookworm node (image-setup.sh's `node`).
 */
const NODE_26: ImageSpec = {
    ...NODE_20,
    id: "node-trixie",
    ref: "dccn-lab/node:trixie",
    suite: "trixie",
    setup: "node",
    packages: [...NODE_PACKAGES, "docker-cli"],
};

export interface EngineSpec {
    /** what --engine / LAB_ENGINE / lab.json call it */
    id: string;
    /** the Debian release whose docker.io the nodes run */
    suite: string;
    /** the engine's major.minor, as its version starts */
    version: string;
    node: ImageSpec;
}

export const ENGINES: Record<string, EngineSpec> = {
    "20": { id: "20", suite: "bookworm", version: "20.10", node: NODE_20 },
    "26": { id: "26", suite: "trixie", version: "26.1", node: NODE_26 },
};
export const DEFAULT_ENGINE = "20";

/** Checks an engine choice (--engine, LAB_ENGINE): 20 or 26 (also 20.10, 26.1). */
export function checkEngine(value: string, from: string): string {
    const v = value.trim();
    const e = Object.values(ENGINES).find((x) => v === x.id || v === x.version);
    if (!e) {
        const known = Object.values(ENGINES).map((x) => `${x.id} (Docker ${x.version}, Debian ${x.suite})`).join(" or ");
        throw new LabError(`${from} must be ${known}, not '${value}'`, 2);
    }
    return e.id;
}

/** The engine a node container was made for, from its labels (none: a node from before engines had a choice, 20). */
export const engineOf = (labels: Record<string, string> | undefined | null) => labels?.[ENGINE_LABEL] || DEFAULT_ENGINE;

/** Application images, loaded into every node whatever its engine (built from bookworm). */
export const APP_IMAGES: ImageSpec[] = [
    {
        id: "registry",
        ref: "dccn-lab/registry:2.8",
        replaces: ["registry:2", "registry:2.8"],
        packages: ["docker-registry"],
        assets: ["registry-entrypoint.sh"],
        forNodes: true,
        config: {
            Env: [PATH_ENV],
            Entrypoint: ["/entrypoint.sh"],
            Cmd: ["/etc/docker/registry/config.yml"],
            ExposedPorts: { "5000/tcp": {} },
            Volumes: { "/var/lib/registry": {} },
        },
    },
    {
        id: "redis",
        ref: "dccn-lab/redis:7",
        replaces: ["redis", "redis:7"],
        packages: ["redis-server"],
        assets: ["redis-entrypoint.sh"],
        forNodes: true,
        config: {
            Env: [PATH_ENV],
            Entrypoint: ["docker-entrypoint.sh"],
            Cmd: ["redis-server"],
            ExposedPorts: { "6379/tcp": {} },
            Volumes: { "/data": {} },
            WorkingDir: "/data",
        },
    },
    {
        id: "mariadb",
        ref: "dccn-lab/mariadb:10",
        replaces: ["mariadb", "mariadb:10", "mysql", "mysql:5.7"],
        packages: ["mariadb-server-core", "mariadb-client-core"],
        assets: ["mariadb-entrypoint.sh"],
        forNodes: true,
        config: {
            Env: [PATH_ENV],
            Entrypoint: ["docker-entrypoint.sh"],
            Cmd: ["mariadbd"],
            ExposedPorts: { "3306/tcp": {} },
            Volumes: { "/var/lib/mysql": {} },
        },
    },
    {
        id: "php-apache",
        ref: "dccn-lab/php-apache:8",
        replaces: ["php:apache", "php:8-apache"],
        packages: ["apache2", "libapache2-mod-php", "php-mysql"],
        assets: ["apache2-foreground.sh"],
        forNodes: true,
        config: {
            Env: [PATH_ENV],
            Cmd: ["apache2-foreground"],
            ExposedPorts: { "80/tcp": {} },
            WorkingDir: "/var/www/html",
            StopSignal: "SIGWINCH",
        },
    },
    {
        id: "busybox",
        ref: "dccn-lab/busybox:1",
        replaces: ["busybox", "busybox:1"],
        packages: ["busybox-static"],
        assets: [],
        standalone: true,
        forNodes: true,
        config: {
            Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
            Cmd: ["sh"],
        },
    },
];

export interface Mirrors {
    main: string;
    security?: string;
}

/**
 * The Debian mirror the images are built from: LAB_MIRROR (and LAB_SECURITY_MIRROR), else the
 * one apt is configured with on this machine (deb822 .sources or one-line .list files).
 */
export function debianMirrors(): Mirrors {
    if (process.env.LAB_MIRROR) {
        return { main: process.env.LAB_MIRROR, security: process.env.LAB_SECURITY_MIRROR || undefined };
    }
    const uris: string[] = [];
    const files: string[] = ["/etc/apt/sources.list"];
    try {
        for (const f of fs.readdirSync("/etc/apt/sources.list.d").sort()) {
            if (f.endsWith(".sources") || f.endsWith(".list")) files.push(path.join("/etc/apt/sources.list.d", f));
        }
    } catch {
        /* none */
    }
    for (const f of files) {
        let text = "";
        try {
            text = fs.readFileSync(f, "utf8");
        } catch {
            continue;
        }
        for (const line of text.split("\n")) {
            const m = /^\s*URIs:\s*(\S+)/.exec(line) ?? /^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+\S+/.exec(line);
            if (m) uris.push(m[1]);
        }
    }
    // The machine's own apt sources say where Debian is; without one, LAB_MIRROR must.
    const main = uris.find((u) => /\/debian\/?$/.test(u)) ?? uris[0] ?? "";
    if (!main) throw new LabError("no Debian mirror in /etc/apt/sources.list(.d); set LAB_MIRROR to the mirror's URL", 3);
    const security = uris.find((u) => /\/debian-security\/?$/.test(u));
    return { main: main.replace(/\/$/, ""), security: security?.replace(/\/$/, "") };
}
