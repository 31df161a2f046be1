/**
 * What a configuration value that reaches a command (ssh's argument list, yum/apt, a device path, a
 * docker object name, daemon.json) may be. Pure predicates and checks, used by cluster-config.ts and
 * stacks-config.ts; each caller turns a `false` or a problem into an error naming the stack file,
 * the key and the fix.
 */
import * as net from "node:net";

/**
 * A POSIX portable user name (the portable file name character set, not starting with a hyphen, as
 * useradd's default NAME_REGEX with upper case allowed), at most 32 characters (Linux's utmp limit).
 * Nothing that ssh, a shell or a `user@host` argument could read as an option, a second host or a word break.
 */
export function isPosixUserName(s: unknown): s is string {
    return typeof s === "string" && /^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/.test(s);
}

/**
 * An RPM or Debian package name, optionally with its version as yum/dnf and apt-get take it
 * (`docker-ce`, `docker-ce-20.10.24`, `docker-ce-3:20.10.24-3.el7`, `docker.io=20.10.24+dfsg1-1`):
 * letters, digits and `. _ + - : ~ =`, starting with a letter or digit; no space, no option.
 */
export function isPackageName(s: unknown): s is string {
    return typeof s === "string" && s.length <= 200 && /^[A-Za-z0-9][A-Za-z0-9._+:~=-]*$/.test(s);
}

/** An engine version as package managers and `dockerd --version` write it: 20.10.24, 24.0.7, 5:24.0.7-1~debian.12~bookworm. */
export function isVersion(s: unknown): s is string {
    return typeof s === "string" && s.length <= 100 && /^([0-9]+:)?[0-9]+(\.[0-9]+)*([-+~][A-Za-z0-9.+~-]*)?$/.test(s);
}

/** A block device path: /dev/sdb, /dev/nvme0n1, /dev/mapper/vg-data, /dev/disk/by-id/wwn-0x5000c500a1b2c3d4; no `..`, no space. */
export function isDevicePath(s: unknown): s is string {
    if (typeof s !== "string" || s.length > 255 || !/^\/dev\/[A-Za-z0-9][A-Za-z0-9._:+@-]*(\/[A-Za-z0-9][A-Za-z0-9._:+@-]*)*$/.test(s)) return false;
    return !s.split("/").some((c) => c === "." || c === "..");
}

const DNS_LABEL = /^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/;

/** A DNS name: dot-separated labels of 1-63 letters, digits and inner hyphens, at most 253 characters, not all-numeric at the top. */
export function isDnsName(s: unknown): s is string {
    if (typeof s !== "string" || s.length === 0 || s.length > 253) return false;
    const labels = s.replace(/\.$/, "").split(".");
    if (!labels.every((l) => DNS_LABEL.test(l))) return false;
    // 10.0.0.256 or 1.2.3 is a mistyped address, not a name (a top-level label is never all digits).
    return !/^[0-9]+$/.test(labels[labels.length - 1]);
}

export const isIPv4 = (s: unknown): s is string => typeof s === "string" && net.isIPv4(s);
/** An IPv6 address without a zone (`%eth0` has no meaning on another host). */
export const isIPv6 = (s: unknown): s is string => typeof s === "string" && !s.includes("%") && net.isIPv6(s);

/** An address a node is reached at: IPv4, IPv6 or a DNS name. */
export function isNodeAddress(s: unknown): s is string {
    return isIPv4(s) || isIPv6(s) || isDnsName(s);
}

/** An absolute host path a bind mount or a setting may name: no `.`/`..` component, no control character, no `:` or `,` (mount syntax). */
export function isAbsoluteHostPath(s: unknown): s is string {
    if (typeof s !== "string" || !s.startsWith("/") || s.length > 4096) return false;
    if (/[\x00-\x1f\x7f,:]/.test(s)) return false;
    return !s.split("/").some((c) => c === "." || c === "..");
}

/** An image reference as the engine parses it: [registry[:port]/]name[:tag][@digest], lower-case repository. */
export function isImageReference(s: unknown): s is string {
    return typeof s === "string" && s.length <= 512 &&
        /^(([a-zA-Z0-9.-]+|\[[0-9a-fA-F:]+\])(:[0-9]+)?\/)?[a-z0-9]+([._-]+[a-z0-9]+|__[a-z0-9]+)*(\/[a-z0-9]+([._-]+[a-z0-9]+|__[a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@[a-z0-9]+([+._-][a-z0-9]+)*:[a-fA-F0-9]{32,})?$/.test(s);
}

/** A registry host as image references write it: host or host:port (registryMap keys and values, registryPrefix). */
export function isRegistryHost(s: unknown): s is string {
    return typeof s === "string" && /^([a-zA-Z0-9.-]+|\[[0-9a-fA-F:]+\])(:[0-9]{1,5})?(\/[a-z0-9]+([._-]+[a-z0-9]+)*)*$/.test(s);
}

/**
 * Swarm object names (swarmkit's controlapi): services and networks match DNS_NAME and have at most
 * 63 characters; secrets and configs match CONFIG_NAME and have at most 64. A stack prefixes every
 * object name with `<stack>_`.
 */
export const SWARM_DNS_NAME = /^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$/;
export const SWARM_NAME_MAX = 63;
export const SWARM_CONFIG_NAME = /^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$/;
export const SWARM_CONFIG_NAME_MAX = 64;
/** A stack name leaves room for `_` and a service name of at least one character. */
export const STACK_NAME_MAX = SWARM_NAME_MAX - 2;

export function isStackName(s: unknown): s is string {
    return typeof s === "string" && s.length <= STACK_NAME_MAX && SWARM_DNS_NAME.test(s);
}

export interface DaemonProblem {
    /** Key under engine.daemon, e.g. `hosts[1]` or `insecure-registries`. */
    key: string;
    message: string;
}

/** A dockerd listen address that is not a local socket: dockerd reads a bare `host:port` as tcp://. */
export function isNetworkSocket(h: string): boolean {
    const v = h.trim().toLowerCase();
    return !(v.startsWith("unix://") || v.startsWith("fd://") || v === "fd:" || v === "");
}

/**
 * daemon.json settings that open the engine to the network without authentication, or trust a
 * registry without TLS. dockerd decodes daemon.json with Go's encoding/json, which matches keys
 * case-insensitively: `Hosts` and `HOSTS` are `hosts`, so every spelling is checked.
 */
export function daemonProblems(daemon: Record<string, unknown>): DaemonProblem[] {
    const out: DaemonProblem[] = [];
    const entries = Object.entries(daemon);
    const get = (name: string) => entries.filter(([k]) => k.toLowerCase() === name);
    const tlsOk = get("tlsverify").some(([, v]) => v === true) &&
        ["tlscacert", "tlscert", "tlskey"].every((k) => get(k).some(([, v]) => typeof v === "string" && v !== ""));
    for (const [k, v] of get("hosts")) {
        if (v === null) continue; // null removes the key from the node's daemon.json (merge patch)
        const list = Array.isArray(v) ? v : [v];
        list.forEach((h, i) => {
            const key = Array.isArray(v) ? `${k}[${i}]` : k;
            if (typeof h !== "string") {
                out.push({ key, message: `must be a socket address string such as unix:///var/run/docker.sock, got ${JSON.stringify(h)}` });
            } else if (isNetworkSocket(h) && !tlsOk) {
                out.push({ key, message: `${JSON.stringify(h)} would expose the engine to the network without authentication (root on the node for anyone who reaches it); ` +
                    "remove it (engine access goes over SSH), or set `tlsverify: true` with `tlscacert`, `tlscert` and `tlskey`" });
            }
        });
    }
    for (const [k, v] of get("insecure-registries")) {
        if (v === null || (Array.isArray(v) && v.length === 0)) continue;
        out.push({ key: k, message: `${JSON.stringify(v)}: the engine would pull from these registries without TLS verification (anyone on the path can replace an image); ` +
            "remove it and give the registry a certificate the nodes trust (the private registry's CA is installed on every node), or `null` to remove it from the nodes' daemon.json" });
    }
    for (const [k, v] of get("metrics-addr")) {
        if (v === null || v === "") continue;
        const host = typeof v === "string" ? v.replace(/:[0-9]+$/, "").replace(/^\[|\]$/g, "") : "";
        if (!["127.0.0.1", "::1", "localhost"].includes(host)) {
            out.push({ key: k, message: `${JSON.stringify(v)} would serve the engine's metrics unauthenticated to the network; bind it to 127.0.0.1:PORT or remove it` });
        }
    }
    return out;
}

/**
 * An age recipient (`age encrypt -r`): an X25519 recipient (`age1` and 58 bech32 characters) or an
 * SSH public key (`ssh-ed25519 AAAA...`, `ssh-rsa AAAA...`, with an optional comment), which age
 * also encrypts to. A public key: never a private one (`AGE-SECRET-KEY-...`).
 */
export function isAgeRecipient(s: unknown): s is string {
    if (typeof s !== "string" || s.length > 16384) return false;
    if (/^age1[qpzry9x8gf2tvdw0s3jn54khce6mua7l]{58}$/.test(s)) return true;
    return /^(ssh-ed25519 AAAAC3NzaC1lZDI1NTE5|ssh-rsa AAAAB3NzaC1yc2E)[A-Za-z0-9+/]+={0,2}( [\x20-\x7e]*)?$/.test(s);
}
