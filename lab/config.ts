// Fixed facts of the lab: names, addresses, paths, and the images it builds.
import * as fs from "node:fs";
import * as path from "node:path";
import { LabError } from "./util";

export const OWNER_LABEL = "dccn-lab.owner";
export const OWNER = "dccn-swarm";
export const LABEL = `${OWNER_LABEL}=${OWNER}`;

export const NETWORK = "dccn-lab";
export const SUBNET = "172.28.213.0/24";
export const GATEWAY = "172.28.213.1";
/** Name of the Linux bridge of the lab network on the host. */
export const BRIDGE = "dccn-lab0";
export const MAX_NODES = 9;
export const DEFAULT_NODES = 3;

export const nodeName = (i: number) => `vm${i}`;
export const nodeAddress = (i: number) => `172.28.213.${10 + i}`;
export const nodeVolume = (i: number) => `dccn-lab-vm${i}-docker`;

/** lab/ and the repository root it belongs to. */
export const LAB_DIR = __dirname;
export const REPO_ROOT = path.resolve(__dirname, "..");
export const STATE_DIR = path.join(REPO_ROOT, ".state", "lab");
export const KEY_FILE = path.join(STATE_DIR, "id_ed25519");
export const KNOWN_HOSTS = path.join(STATE_DIR, "known_hosts");
export const LAB_JSON = path.join(STATE_DIR, "lab.json");
/**
 * Each node's /etc/hosts, bind-mounted: it survives a restart of the node's container, as a
 * machine's does (the engine would write a fresh one at every start, losing what provisioning
 * added, such as the registry's name).
 */
export const NODE_HOSTS_DIR = path.join(STATE_DIR, "hosts");

/** Caches and the lab's own engine live outside the work tree, so they outlive a fresh clone. */
export const CACHE_DIR = process.env.LAB_CACHE_DIR || "/var/cache/dccn-lab";
export const LAB_VAR_DIR = "/var/lib/dccn-lab";
/**
 * The lab's shared storage: one host directory bind-mounted into every node at NODE_SHARED_PATH, so
 * data written on one node is seen on the others (in prod an NFS mount; this kernel has no NFS
 * server). `lab:down` removes it with the nodes' volumes.
 */
export const SHARED_DIR = path.join(LAB_VAR_DIR, "shared");
export const NODE_SHARED_PATH = "/mnt/docker";
export const SHARED_BIND = `${SHARED_DIR}:${NODE_SHARED_PATH}`;
export const ENGINE_DATA_ROOT = path.join(LAB_VAR_DIR, "engine");
export const ENGINE_LOG = path.join(LAB_VAR_DIR, "dockerd.log");
export const RUN_DIR = "/run/dccn-lab";
export const ENGINE_EXEC_ROOT = path.join(RUN_DIR, "exec");
export const ENGINE_SOCKET = path.join(RUN_DIR, "docker.sock");
export const ENGINE_PIDFILE = path.join(RUN_DIR, "docker.pid");
export const SYSTEM_SOCKET = "/var/run/docker.sock";

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
    config: Record<string, unknown>;
}

const PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

export const NODE_PACKAGES = [
    "openssh-server", "docker.io", "lvm2", "iproute2", "procps", "ca-certificates", "openssl", "curl",
    "iptables", "iputils-ping", "kmod", "less", "netcat-openbsd", "xz-utils",
    // daemon-json.sh merges daemon.json with jq (or python3, which minbase lacks).
    "jq",
];

export const IMAGES: ImageSpec[] = [
    {
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
    },
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
