/**
 * How resources hold their way to the nodes, and the one place it becomes an SSH target. The
 * provider keeps these in each resource's state (the key as a secret) and treats a change of them
 * as a change of state only (provider/values.ts).
 */
import type { SshTarget } from "./ssh";

/** How to reach nodes; `privateKey` is a secret. */
export interface SshSpec {
    user: string;
    port: number;
    privateKey: string;
    connectTimeout: number;
}

/** A node as the providers reach it. */
export interface HostSpec {
    name: string;
    address: string;
    /** known_hosts line(s) pinning the node's host key. */
    knownHosts: string;
}

/** The SSH target for a node. */
export function sshTarget(ssh: SshSpec, h: HostSpec): SshTarget {
    return {
        name: h.name, host: h.address, port: ssh.port, user: ssh.user,
        privateKey: ssh.privateKey, knownHosts: h.knownHosts, connectTimeout: ssh.connectTimeout,
    };
}
