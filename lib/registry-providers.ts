/**
 * Dynamic providers for the private registry (DCCN document 3.2):
 *
 * - RegistryPki: a self-signed CA and the registry's server certificate (lib/pki.ts), made on the
 *   machine that runs Pulumi. The private keys are outputs marked secret. `diff` renews: a new server
 *   certificate when the current one expires within `renewBeforeDays`, or when the host, the address,
 *   the validity or the CA changed; a new CA when it would not outlive a new server certificate.
 *   The previous CA stays in the trust bundle while it is valid, so nodes trust the new CA before the
 *   registry presents a certificate signed by it.
 * - RegistryUsers: the htpasswd file (bcrypt). A user's hash is kept while bcrypt says the configured
 *   password still matches it, so an unchanged configuration gives the same file (no perpetual diff,
 *   no needless secret rotation); adding, removing a user or changing a password is one update.
 * - RegistryProbe: `docker login` on a manager through the Engine API (POST /auth): the manager's
 *   engine reaches the registry over TLS, trusting only /etc/docker/certs.d, and authenticates. Other
 *   stacks depend on it, so they are deployed once the registry answers.
 *
 * Pulumi serialises these providers: errors are plain Errors, nothing here closes over a
 * non-serialisable value, and module-level constants are strings and numbers only.
 */
import type { CheckFailure, ResourceImpl } from "./resource-impl";
import * as bcrypt from "bcryptjs";
import { createHash } from "crypto";
import { api, apiMessage, findManager, localTransport, sshTransport, Transport } from "./engine-transport";
import * as pki from "./pki";
import { sshTarget, type HostSpec, type SshSpec } from "./connection";


/** How an output not known yet (during preview) reaches the provider. */
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

function hasUnknown(v: unknown): boolean {
    return JSON.stringify(v ?? null).includes(UNKNOWN);
}

/** bcrypt cost of new hashes (the registry checks the password on every request: keep it moderate). */
export const BCRYPT_COST = 10;

// =============================================================================================
// PKI

export interface PkiInputs {
    /** Stack file, for messages. */
    stackFile: string;
    host: string;
    /** "" for none. */
    address: string;
    validityDays: number;
    renewBeforeDays: number;
    caValidityDays: number;
    caCommonName: string;
}

export interface PkiOutputs extends PkiInputs {
    caCert: string;
    /** Secret. */
    caKey: string;
    serverCert: string;
    /** Secret. */
    serverKey: string;
    /** The CA before the last CA renewal ("" for none), trusted while valid. */
    previousCaCert: string;
    /** The certificates every node trusts: the CA, and the previous one while valid. */
    trustBundle: string;
    /** Server certificate expiry (ISO 8601). */
    notAfter: string;
    caNotAfter: string;
    serverFingerprint: string;
    caFingerprint: string;
    /** Why the server certificate was last issued. */
    issuedBecause: string;
}

/** Why `pulumi up` would change the certificates now (empty: nothing to do). */
export function pkiChangeReasons(olds: Partial<PkiOutputs>, news: PkiInputs, now: Date): string[] {
    if (!olds.caCert || !olds.serverCert) return ["no certificates yet"];
    const reasons = pki.caRenewalReasons({ caCertPem: olds.caCert, caValidityDays: olds.caValidityDays },
        { caValidityDays: news.caValidityDays, validityDays: news.validityDays }, now).map((r) => `CA: ${r}`);
    if (olds.caCommonName !== undefined && olds.caCommonName !== news.caCommonName) reasons.push("CA: common name changed");
    reasons.push(...pki.serverRenewalReasons({ certPem: olds.serverCert, caCertPem: olds.caCert, validityDays: olds.validityDays },
        { host: news.host, address: news.address, validityDays: news.validityDays, renewBeforeDays: news.renewBeforeDays }, now));
    return reasons;
}

/** The certificates for `news`: a new CA and server certificate, or the previous ones kept where they still do. */
export function issuePki(news: PkiInputs, prev: Partial<PkiOutputs> | undefined, now: Date): PkiOutputs {
    let ca: pki.KeyPair | undefined = prev?.caCert && prev.caKey ? { certPem: prev.caCert, keyPem: prev.caKey } : undefined;
    let previousCaCert = prev?.previousCaCert ?? "";
    const caReasons = ca
        ? pki.caRenewalReasons({ caCertPem: ca.certPem, caValidityDays: prev?.caValidityDays }, { caValidityDays: news.caValidityDays, validityDays: news.validityDays }, now)
        : ["new"];
    if (ca && prev?.caCommonName !== undefined && prev.caCommonName !== news.caCommonName) caReasons.push("common name changed");
    if (!ca || caReasons.length > 0) {
        if (ca) previousCaCert = ca.certPem;
        ca = pki.createCa({ commonName: news.caCommonName, validityDays: news.caValidityDays });
    }
    let server: pki.KeyPair | undefined = prev?.serverCert && prev.serverKey ? { certPem: prev.serverCert, keyPem: prev.serverKey } : undefined;
    const reasons = server
        ? pki.serverRenewalReasons({ certPem: server.certPem, caCertPem: ca.certPem, validityDays: prev?.validityDays },
            { host: news.host, address: news.address, validityDays: news.validityDays, renewBeforeDays: news.renewBeforeDays }, now)
        : ["new"];
    let issuedBecause = prev?.issuedBecause ?? "new";
    if (!server || reasons.length > 0) {
        server = pki.issueServerCert(ca, { host: news.host, address: news.address || undefined, validityDays: news.validityDays });
        issuedBecause = reasons.join("; ");
    }
    const info = pki.certInfo(server.certPem);
    const caInfo = pki.certInfo(ca.certPem);
    return {
        ...news,
        caCert: ca.certPem,
        caKey: ca.keyPem,
        serverCert: server.certPem,
        serverKey: server.keyPem,
        previousCaCert,
        trustBundle: pki.trustBundle(ca.certPem, previousCaCert || undefined, now),
        notAfter: info.notAfter,
        caNotAfter: caInfo.notAfter,
        serverFingerprint: info.fingerprint256,
        caFingerprint: caInfo.fingerprint256,
        issuedBecause,
    };
}

/** The provider, with a clock (tests move it forward). */
export function pkiProvider(clock: () => Date = () => new Date()): ResourceImpl {
    return {
        async check(_olds: PkiInputs | undefined, news: PkiInputs) {
            const failures: CheckFailure[] = [];
            const where = `${news.stackFile}: dccn-swarm:registry`;
            if (!hasUnknown(news.host) && !pki.isDnsName(news.host)) failures.push({ property: "host", reason: `${where}.host: ${news.host} is not a DNS name` });
            if (!hasUnknown(news.address) && news.address && !pki.isIpAddress(news.address)) {
                failures.push({ property: "address", reason: `${where}.address: ${news.address} is not an IP address` });
            }
            if (news.renewBeforeDays >= news.validityDays) {
                failures.push({ property: "renewBeforeDays", reason: `${where}.certificate.renewBeforeDays must be less than validityDays` });
            }
            return { inputs: news, failures };
        },

        async diff(_id: string, olds: PkiOutputs, news: PkiInputs) {
            // (Not hasUnknown(news): news also holds this provider's serialised code, which contains the marker.)
            const changes = hasUnknown([news.host, news.address, news.validityDays, news.renewBeforeDays, news.caValidityDays]) || pkiChangeReasons(olds, news, clock()).length > 0 || olds.stackFile !== news.stackFile ||
                olds.renewBeforeDays !== news.renewBeforeDays;
            return { changes };
        },

        async create(inputs: PkiInputs) {
            const outs = issuePki(inputs, undefined, clock());
            return { id: `registry-pki-${outs.caFingerprint.replace(/:/g, "").slice(0, 16).toLowerCase()}`, outs };
        },

        async update(_id: string, olds: PkiOutputs, news: PkiInputs) {
            return { outs: issuePki(news, olds, clock()) };
        },

        // Nothing outside the state: the certificates are what the state says.
        async read(id: string, props: PkiOutputs) {
            return { id, props };
        },

        async delete() { /* nothing outside the state */ },
    };
}



// =============================================================================================
// htpasswd users

export interface UsersInputs {
    stackFile: string;
    /** User names, in the order of the file. */
    users: string[];
    /** User name to password (a secret). */
    passwords: Record<string, string>;
}

export interface UsersOutputs {
    stackFile: string;
    users: string[];
    /** User name to bcrypt hash (secret). */
    hashes: Record<string, string>;
    /** The htpasswd file (secret). */
    htpasswd: string;
}

/** bcrypt works on the first 72 bytes only: a longer password would be cut without a word. */
function passwordProblem(user: string, pw: unknown): string | undefined {
    if (typeof pw !== "string" || pw === "") return `user ${user} has no password`;
    if (Buffer.byteLength(pw, "utf8") > 72) return `the password of ${user} is longer than 72 bytes, bcrypt's limit; choose a shorter one`;
    if (/[\r\n]/.test(pw)) return `the password of ${user} contains a line break`;
    return undefined;
}

/**
 * Users whose configured password no longer matches the kept hash (or who have none). Never the
 * passwords. A user whose password is the one of the last run (`prevPasswords`, the state's old
 * inputs, which made or checked that hash) keeps it without bcrypt's compare, a tenth of a second
 * each in the chain before any stack's change.
 */
export function usersToHash(prevHashes: Record<string, string>, users: string[], passwords: Record<string, string>,
    prevPasswords: Record<string, string> = {}): string[] {
    return users.filter((u) => {
        const h = prevHashes[u];
        if (!h || typeof passwords[u] !== "string") return true;
        if (prevPasswords[u] === passwords[u]) return false;
        try {
            return !bcrypt.compareSync(passwords[u], h);
        } catch {
            return true;
        }
    });
}

/**
 * The htpasswd file for `users`: a user keeps the previous hash while the password matches it, so
 * equal settings give an equal file; others get a new bcrypt hash.
 */
export function buildHtpasswd(users: string[], passwords: Record<string, string>, prevHashes: Record<string, string> = {}, cost = BCRYPT_COST,
    prevPasswords: Record<string, string> = {}): { hashes: Record<string, string>; htpasswd: string } {
    const rehash = usersToHash(prevHashes, users, passwords, prevPasswords);
    const hashes: Record<string, string> = {};
    for (const u of users) {
        const problem = passwordProblem(u, passwords[u]);
        if (problem) throw new Error(`registry users: ${problem}`);
        hashes[u] = rehash.includes(u) ? bcrypt.hashSync(passwords[u], cost) : prevHashes[u];
    }
    return { hashes, htpasswd: users.map((u) => `${u}:${hashes[u]}\n`).join("") };
}

export const usersProvider: ResourceImpl = {
    async check(_olds: UsersInputs | undefined, news: UsersInputs) {
        const failures: CheckFailure[] = [];
        if (!hasUnknown(news.passwords) && !hasUnknown(news.users)) {
            for (const u of news.users) {
                const problem = passwordProblem(u, (news.passwords ?? {})[u]);
                if (problem) failures.push({ property: "passwords", reason: `${news.stackFile}: dccn-swarm:registryPasswords.${u}: ${problem}` });
            }
        }
        return { inputs: news, failures };
    },

    // olds: the outputs over the old inputs (provider/provider.ts), so `passwords` is the last run's.
    async diff(_id: string, olds: UsersOutputs & Partial<UsersInputs>, news: UsersInputs) {
        if (hasUnknown(news.passwords) || hasUnknown(news.users)) return { changes: true };
        const changes = JSON.stringify(olds.users ?? []) !== JSON.stringify(news.users) ||
            usersToHash(olds.hashes ?? {}, news.users, news.passwords, olds.passwords).length > 0 || olds.stackFile !== news.stackFile;
        return { changes };
    },

    async create(inputs: UsersInputs) {
        const { hashes, htpasswd } = buildHtpasswd(inputs.users, inputs.passwords);
        const outs: UsersOutputs = { stackFile: inputs.stackFile, users: inputs.users, hashes, htpasswd };
        return { id: "registry-users", outs };
    },

    async update(_id: string, olds: UsersOutputs & Partial<UsersInputs>, news: UsersInputs) {
        const { hashes, htpasswd } = buildHtpasswd(news.users, news.passwords, olds.hashes ?? {}, BCRYPT_COST, olds.passwords);
        return { outs: { stackFile: news.stackFile, users: news.users, hashes, htpasswd } };
    },

    async read(id: string, props: UsersOutputs) {
        return { id, props };
    },

    async delete() { /* nothing outside the state */ },
};


// =============================================================================================
// Probe: a login on a manager, through its engine (which trusts /etc/docker/certs.d only).

export interface ProbeInputs {
    stackFile: string;
    managers: HostSpec[];
    ssh: SshSpec;
    /** A local Docker socket instead of SSH (tests; Pulumi on a manager). */
    engineSocket?: string;
    /** `host:port`. */
    serveraddress: string;
    username: string;
    /** Secret. */
    password: string;
    /** Changes whenever the registry does (certificate, users, service): the probe runs again. */
    revision: string;
    /** Seconds to keep trying (the registry may still be starting). Default 120. */
    timeout?: number;
}

export interface ProbeOutputs extends ProbeInputs {
    /** Where the login succeeded, e.g. `vm1 (172.28.213.11)`. */
    checkedOn: string;
    /** The engine's answer, e.g. `Login Succeeded`. */
    status: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** POST /auth on the first manager with a quorum, until it succeeds or `timeout` passes. */
export async function probeLogin(t: Transport, p: ProbeInputs): Promise<{ checkedOn: string; status: string }> {
    const until = Date.now() + (p.timeout ?? 120) * 1000;
    for (;;) {
        const r = await api(t, { method: "POST", path: "/auth", body: { username: p.username, password: p.password, serveraddress: p.serveraddress }, timeoutSec: 60 });
        if (r.status === 200) return { checkedOn: t.name, status: String(r.json?.Status ?? "Login Succeeded") };
        if (Date.now() > until) {
            const msg = apiMessage(r).split(p.password).join("***");
            throw new Error(`${p.stackFile}: dccn-swarm:registry: docker login ${p.serveraddress} as ${p.username} on ${t.name} failed (HTTP ${r.status}): ${msg}. ` +
                (/x509|certificate/i.test(msg) ? "The node does not trust the registry's certificate: check /etc/docker/certs.d/" + p.serveraddress + "/ca.crt on it. " : "") +
                (/no such host|lookup/i.test(msg) ? "The node cannot resolve the registry's name: set `registry.address` or add it to DNS. " : "") +
                (/401|unauthorized/i.test(msg) ? "The user or password is refused: check registry.users and registryPasswords. " : ""));
        }
        await sleep(3000);
    }
}

function probeTransport(p: ProbeInputs): Promise<Transport> {
    return findManager(p.engineSocket
        ? [localTransport(`local engine ${p.engineSocket}`, p.engineSocket)]
        : p.managers.map((h) => sshTransport(sshTarget(p.ssh, h))));
}

function probeView(p: Partial<ProbeInputs>): string {
    return JSON.stringify([p.serveraddress, p.username, p.password, p.revision, p.engineSocket ?? "", (p.managers ?? []).map((m) => m.name)]);
}

export const probeProvider: ResourceImpl = {
    async diff(_id: string, olds: ProbeOutputs, news: ProbeInputs) {
        return { changes: hasUnknown(probeView(news)) || probeView(olds) !== probeView(news) };
    },
    async create(inputs: ProbeInputs) {
        const r = await probeLogin(await probeTransport(inputs), inputs);
        return { id: `registry-probe-${createHash("sha256").update(inputs.serveraddress).digest("hex").slice(0, 8)}`, outs: { ...inputs, ...r } };
    },
    async update(_id: string, _olds: ProbeOutputs, news: ProbeInputs) {
        return { outs: { ...news, ...(await probeLogin(await probeTransport(news), news)) } };
    },
    async read(id: string, props: ProbeOutputs) {
        return { id, props };
    },
    async delete() { /* nothing to undo */ },
};

