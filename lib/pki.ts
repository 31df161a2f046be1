/**
 * The registry's certificates: a self-signed CA and a server certificate it signs, made with the
 * local `openssl`. Private keys never appear on a command line or in a message: openssl writes and
 * reads them as files in a private temporary directory (mode 700) that is removed afterwards, and
 * they leave this module only as strings the caller keeps as Pulumi secrets.
 *
 * The provider that uses this (lib/registry-providers.ts) is serialised by Pulumi: the functions
 * here use no module-level Set/Map/RegExp/class, only plain functions and literals.
 */
import { spawnSync } from "child_process";
import { X509Certificate, createPrivateKey, randomBytes } from "crypto";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";

const DAY_MS = 86_400_000;

export interface KeyPair {
    /** PEM certificate (public). */
    certPem: string;
    /** PEM private key (PKCS#8): a secret. */
    keyPem: string;
}

export interface CertInfo {
    subject: string;
    issuer: string;
    serial: string;
    /** ISO 8601 (UTC). */
    notBefore: string;
    notAfter: string;
    /** subjectAltName DNS names and IP addresses. */
    dnsNames: string[];
    ipAddresses: string[];
    isCa: boolean;
    /** SHA-256 fingerprint, `AA:BB:...`. */
    fingerprint256: string;
}

/** A DNS name openssl config and certificates can carry (same rule as the registry config's). */
export function isDnsName(s: string): boolean {
    return /^(?=.{1,253}$)[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/.test(s);
}

/** An IPv4 address in dotted form, or an IPv6 address (hex, colons, optional dotted tail). */
export function isIpAddress(s: string): boolean {
    // node:net's parser: "1:2" or "10.0.0.256" are not addresses; an IPv6 zone (%eth0) means nothing on another host.
    return typeof s === "string" && !s.includes("%") && net.isIP(s) !== 0;
}

/** Runs openssl in `dir`; the error names the step and openssl's own message (never a key). */
function openssl(dir: string, what: string, args: string[]): void {
    const r = spawnSync("openssl", args, { cwd: dir, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 60_000 });
    if (r.error) throw new Error(`${what}: cannot run openssl: ${r.error.message} (install openssl on the machine that runs Pulumi)`);
    if (r.status !== 0) {
        const why = (r.stderr || r.stdout || "").trim().split("\n").slice(-4).join("\n");
        throw new Error(`${what}: openssl ${args[0]} failed (exit ${r.status}): ${why}`);
    }
}

/** A private working directory, removed (with every key file in it) when `fn` returns or throws. */
function withPrivateDir<T>(fn: (dir: string) => T): T {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dccn-pki-"));
    try {
        fs.chmodSync(dir, 0o700);
        return fn(dir);
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

function writePrivate(file: string, text: string): void {
    fs.writeFileSync(file, text.endsWith("\n") ? text : text + "\n", { mode: 0o600 });
}

/** A random positive 128-bit serial number in hex (RFC 5280: at most 20 octets, positive). */
function serial(): string {
    const b = randomBytes(16);
    b[0] &= 0x7f;
    b[0] |= 0x10;
    return "0x" + b.toString("hex");
}

function newKey(dir: string, file: string, what: string): void {
    // ECDSA P-256: accepted by Docker engines, the registry (Go) and curl alike, and quick to make.
    openssl(dir, what, ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", file]);
    fs.chmodSync(path.join(dir, file), 0o600);
}

/** Characters allowed in a subject value written into an openssl config file. */
function subjectValue(s: string): string {
    if (!/^[A-Za-z0-9 .,:()_@-]{1,64}$/.test(s)) throw new Error(`invalid certificate subject value ${JSON.stringify(s)}`);
    return s;
}

function checkValidity(days: number, what: string): void {
    if (!Number.isInteger(days) || days < 1 || days > 36500) throw new Error(`${what}: validity must be a whole number of days from 1 to 36500, not ${days}`);
}

/** A self-signed CA certificate (basicConstraints CA:TRUE, pathlen 0; keyCertSign, cRLSign). */
export function createCa(opts: { commonName: string; validityDays: number }): KeyPair {
    checkValidity(opts.validityDays, "registry CA");
    const cn = subjectValue(opts.commonName);
    return withPrivateDir((dir) => {
        fs.writeFileSync(path.join(dir, "ca.cnf"), [
            "[req]", "prompt = no", "distinguished_name = dn", "x509_extensions = v3_ca",
            "[dn]", `CN = ${cn}`, "O = dccn-swarm",
            "[v3_ca]", "basicConstraints = critical, CA:TRUE, pathlen:0", "keyUsage = critical, keyCertSign, cRLSign",
            "subjectKeyIdentifier = hash",
        ].join("\n") + "\n");
        newKey(dir, "ca.key", "registry CA key");
        openssl(dir, "registry CA certificate", ["req", "-new", "-x509", "-config", "ca.cnf", "-key", "ca.key", "-sha256",
            "-days", String(opts.validityDays), "-set_serial", serial(), "-out", "ca.crt"]);
        return { certPem: fs.readFileSync(path.join(dir, "ca.crt"), "utf8"), keyPem: fs.readFileSync(path.join(dir, "ca.key"), "utf8") };
    });
}

/**
 * A server certificate for `host` (and `address`, when given) signed by `ca`: CN and DNS
 * subjectAltName the host, IP subjectAltName the address, serverAuth only.
 */
export function issueServerCert(ca: KeyPair, opts: { host: string; address?: string; validityDays: number }): KeyPair {
    checkValidity(opts.validityDays, "registry server certificate");
    if (!isDnsName(opts.host)) throw new Error(`registry server certificate: ${JSON.stringify(opts.host)} is not a DNS name`);
    if (opts.address && !isIpAddress(opts.address)) throw new Error(`registry server certificate: ${JSON.stringify(opts.address)} is not an IP address`);
    const san = [`DNS:${opts.host}`, ...(opts.address ? [`IP:${opts.address}`] : [])].join(", ");
    return withPrivateDir((dir) => {
        writePrivate(path.join(dir, "ca.key"), ca.keyPem);
        fs.writeFileSync(path.join(dir, "ca.crt"), ca.certPem);
        fs.writeFileSync(path.join(dir, "server.cnf"), [
            "[req]", "prompt = no", "distinguished_name = dn",
            "[dn]", `CN = ${opts.host}`, "O = dccn-swarm",
            "[v3_server]", "basicConstraints = critical, CA:FALSE", "keyUsage = critical, digitalSignature",
            "extendedKeyUsage = serverAuth", `subjectAltName = ${san}`,
            "subjectKeyIdentifier = hash", "authorityKeyIdentifier = keyid, issuer",
        ].join("\n") + "\n");
        newKey(dir, "server.key", "registry server key");
        openssl(dir, "registry server certificate request", ["req", "-new", "-config", "server.cnf", "-key", "server.key", "-out", "server.csr"]);
        openssl(dir, "registry server certificate", ["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-set_serial", serial(), "-days", String(opts.validityDays), "-sha256",
            "-extfile", "server.cnf", "-extensions", "v3_server", "-out", "server.crt"]);
        return { certPem: fs.readFileSync(path.join(dir, "server.crt"), "utf8"), keyPem: fs.readFileSync(path.join(dir, "server.key"), "utf8") };
    });
}

/** What a certificate says (Node's X509Certificate; no key involved). */
export function certInfo(pem: string): CertInfo {
    const c = new X509Certificate(pem);
    const dnsNames: string[] = [];
    const ipAddresses: string[] = [];
    for (const part of (c.subjectAltName ?? "").split(",").map((s) => s.trim()).filter(Boolean)) {
        if (part.startsWith("DNS:")) dnsNames.push(part.slice(4));
        else if (part.startsWith("IP Address:")) ipAddresses.push(part.slice(11));
    }
    return {
        subject: c.subject.replace(/\n/g, ", "),
        issuer: c.issuer.replace(/\n/g, ", "),
        serial: c.serialNumber,
        notBefore: new Date(c.validFrom).toISOString(),
        notAfter: new Date(c.validTo).toISOString(),
        dnsNames,
        ipAddresses,
        isCa: c.ca,
        fingerprint256: c.fingerprint256,
    };
}

/** Whether `certPem` was signed by the CA `caCertPem`. */
export function signedBy(certPem: string, caCertPem: string): boolean {
    try {
        const ca = new X509Certificate(caCertPem);
        const c = new X509Certificate(certPem);
        return c.checkIssued(ca) && c.verify(ca.publicKey);
    } catch {
        return false;
    }
}

/** Whether `keyPem` is the private key of `certPem`. */
export function keyMatches(certPem: string, keyPem: string): boolean {
    try {
        return new X509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem));
    } catch {
        return false;
    }
}

/** Whole days from `now` until `iso` (negative when past). */
export function daysUntil(iso: string, now: Date): number {
    return (Date.parse(iso) - now.getTime()) / DAY_MS;
}

export interface ServerWanted {
    host: string;
    /** "" for none. */
    address: string;
    validityDays: number;
    renewBeforeDays: number;
}

/**
 * Why the server certificate must be issued anew, or [] to keep it: its names are not the
 * registry's host/address any more, it was not signed by the current CA, its validity setting
 * changed, or it expires within `renewBeforeDays`.
 */
export function serverRenewalReasons(cur: { certPem: string; caCertPem: string; validityDays?: number }, want: ServerWanted, now: Date): string[] {
    const reasons: string[] = [];
    let info: CertInfo;
    try {
        info = certInfo(cur.certPem);
    } catch {
        return ["the current certificate cannot be read"];
    }
    if (info.dnsNames.join(",") !== want.host) reasons.push(`host changed (${info.dnsNames.join(",") || "none"} -> ${want.host})`);
    if (info.ipAddresses.join(",") !== want.address) reasons.push(`address changed (${info.ipAddresses.join(",") || "none"} -> ${want.address || "none"})`);
    if (!signedBy(cur.certPem, cur.caCertPem)) reasons.push("the CA changed");
    if (cur.validityDays !== undefined && cur.validityDays !== want.validityDays) {
        reasons.push(`validityDays changed (${cur.validityDays} -> ${want.validityDays})`);
    }
    const left = daysUntil(info.notAfter, now);
    if (left <= want.renewBeforeDays) {
        reasons.push(left <= 0 ? `expired on ${info.notAfter}` : `expires on ${info.notAfter}, within renewBeforeDays (${want.renewBeforeDays})`);
    }
    return reasons;
}

/**
 * Why the CA must be made anew, or []: its validity setting changed, or it has fewer days left
 * than a new server certificate would need (a server certificate must not outlive its CA).
 */
export function caRenewalReasons(cur: { caCertPem: string; caValidityDays?: number }, want: { caValidityDays: number; validityDays: number }, now: Date): string[] {
    let info: CertInfo;
    try {
        info = certInfo(cur.caCertPem);
    } catch {
        return ["the current CA certificate cannot be read"];
    }
    const reasons: string[] = [];
    if (cur.caValidityDays !== undefined && cur.caValidityDays !== want.caValidityDays) {
        reasons.push(`caValidityDays changed (${cur.caValidityDays} -> ${want.caValidityDays})`);
    }
    const left = daysUntil(info.notAfter, now);
    if (left < want.validityDays) reasons.push(`the CA expires on ${info.notAfter}, before a new server certificate would (${want.validityDays} days)`);
    return reasons;
}

/**
 * The CA certificates every node trusts: the current CA, and the previous one while it is still
 * valid (a CA renewal reaches every node before the registry switches to a certificate of the new CA).
 */
export function trustBundle(caCertPem: string, previousCaCertPem: string | undefined, now: Date): string {
    const certs = [caCertPem.trim()];
    if (previousCaCertPem && previousCaCertPem.trim() !== caCertPem.trim()) {
        try {
            if (daysUntil(certInfo(previousCaCertPem).notAfter, now) > 0) certs.push(previousCaCertPem.trim());
        } catch { /* unreadable: not trusted */ }
    }
    return certs.join("\n") + "\n";
}
