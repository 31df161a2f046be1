/** The registry's CA and server certificate: names, validity, keys kept out of certificates and command lines, renewal. */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import {
    caRenewalReasons, certInfo, createCa, daysUntil, issueServerCert, keyMatches, serverRenewalReasons, signedBy, trustBundle,
} from "../../lib/pki";
import { issuePki, PkiInputs, pkiChangeReasons, pkiProvider } from "../../lib/registry-providers";

const DAY = 86_400_000;
const INPUTS: PkiInputs = {
    stackFile: "Pulumi.test.yaml", host: "registry.lab", address: "172.28.213.11", validityDays: 825, renewBeforeDays: 30,
    caValidityDays: 3650, caCommonName: "dccn-swarm registry CA",
};

test("CA and server certificate: SANs, validity, CA flags, chain, keys", () => {
    const ca = createCa({ commonName: "dccn-swarm registry CA", validityDays: 3650 });
    const caInfo = certInfo(ca.certPem);
    assert.equal(caInfo.isCa, true);
    assert.equal(Math.round((Date.parse(caInfo.notAfter) - Date.parse(caInfo.notBefore)) / DAY), 3650);
    const s = issueServerCert(ca, { host: "registry.lab", address: "172.28.213.11", validityDays: 90 });
    const info = certInfo(s.certPem);
    assert.deepEqual(info.dnsNames, ["registry.lab"]);
    assert.deepEqual(info.ipAddresses, ["172.28.213.11"]);
    assert.equal(info.isCa, false);
    assert.match(info.subject, /CN=registry\.lab/);
    assert.equal(Math.round((Date.parse(info.notAfter) - Date.parse(info.notBefore)) / DAY), 90);
    assert.ok(Math.abs(daysUntil(info.notAfter, new Date()) - 90) < 0.01);
    assert.ok(signedBy(s.certPem, ca.certPem));
    assert.ok(keyMatches(s.certPem, s.keyPem));
    assert.ok(!keyMatches(s.certPem, ca.keyPem));
    for (const cert of [ca.certPem, s.certPem]) {
        assert.match(cert, /^-----BEGIN CERTIFICATE-----/);
        assert.ok(!/PRIVATE KEY/.test(cert), "no key in a certificate");
    }
    assert.match(s.keyPem, /-----BEGIN PRIVATE KEY-----/);
    // Without an address: DNS only.
    assert.deepEqual(certInfo(issueServerCert(ca, { host: "docker-registry.dccn.nl", validityDays: 825 }).certPem).ipAddresses, []);
});

test("openssl never gets a key or a password on its command line; the temporary files are gone", () => {
    const cp = require("node:child_process");
    const fs = require("node:fs");
    const original = cp.spawnSync;
    const calls: { args: string[]; cwd: string }[] = [];
    cp.spawnSync = (cmd: string, args: string[], opts: { cwd: string }) => {
        calls.push({ args: [cmd, ...args], cwd: opts.cwd });
        return original(cmd, args, opts);
    };
    let outs;
    try {
        outs = issuePki(INPUTS, undefined, new Date());
    } finally {
        cp.spawnSync = original;
    }
    assert.ok(calls.length >= 4, "openssl was called");
    for (const c of calls) {
        assert.equal(c.args[0], "openssl");
        const line = c.args.join(" ");
        assert.ok(!line.includes("PRIVATE KEY") && !line.includes(outs.caKey.split("\n")[1]) && !line.includes(outs.serverKey.split("\n")[1]), line);
        assert.ok(!fs.existsSync(c.cwd), `${c.cwd} was removed`);
    }
    for (const k of ["caCert", "serverCert", "trustBundle", "notAfter", "issuedBecause"] as const) {
        assert.ok(!outs[k].includes("PRIVATE KEY"), `${k} holds no key`);
    }
});

test("renewal decision: expiry window, host, address, CA, validity", () => {
    const ca = createCa({ commonName: "dccn-swarm registry CA", validityDays: 3650 });
    const s = issueServerCert(ca, { host: "registry.lab", address: "172.28.213.11", validityDays: 825 });
    const want = { host: "registry.lab", address: "172.28.213.11", validityDays: 825, renewBeforeDays: 30 };
    const cur = { certPem: s.certPem, caCertPem: ca.certPem, validityDays: 825 };
    const now = new Date();
    assert.deepEqual(serverRenewalReasons(cur, want, now), []);
    assert.deepEqual(serverRenewalReasons(cur, want, new Date(now.getTime() + 794 * DAY)), []);
    assert.match(serverRenewalReasons(cur, want, new Date(now.getTime() + 796 * DAY)).join(), /within renewBeforeDays \(30\)/);
    assert.match(serverRenewalReasons(cur, want, new Date(now.getTime() + 900 * DAY)).join(), /expired on/);
    assert.match(serverRenewalReasons(cur, { ...want, host: "docker-registry.dccn.nl" }, now).join(), /host changed \(registry\.lab -> docker-registry\.dccn\.nl\)/);
    assert.match(serverRenewalReasons(cur, { ...want, address: "" }, now).join(), /address changed \(172\.28\.213\.11 -> none\)/);
    assert.match(serverRenewalReasons(cur, { ...want, validityDays: 365 }, now).join(), /validityDays changed/);
    const other = createCa({ commonName: "dccn-swarm registry CA", validityDays: 3650 });
    assert.match(serverRenewalReasons({ ...cur, caCertPem: other.certPem }, want, now).join(), /the CA changed/);
    // The CA is renewed when a new server certificate would outlive it.
    assert.deepEqual(caRenewalReasons({ caCertPem: ca.certPem, caValidityDays: 3650 }, { caValidityDays: 3650, validityDays: 825 }, now), []);
    assert.match(caRenewalReasons({ caCertPem: ca.certPem, caValidityDays: 3650 }, { caValidityDays: 3650, validityDays: 825 }, new Date(now.getTime() + 2900 * DAY)).join(), /before a new server certificate would/);
});

test("the provider: no change when current; a renewal keeps the CA; a CA renewal keeps the old CA in the trust bundle", async () => {
    let now = new Date();
    const p = pkiProvider(() => now);
    const created = await p.create(INPUTS);
    const outs = created.outs;
    assert.equal((await p.diff!(created.id, outs, INPUTS)).changes, false, "fresh certificates: no diff");
    assert.equal(outs.trustBundle, outs.caCert.trim() + "\n");

    // 800 days on: within the 30 days before expiry.
    now = new Date(Date.now() + 800 * DAY);
    assert.match(pkiChangeReasons(outs, INPUTS, now).join(), /within renewBeforeDays/);
    assert.equal((await p.diff!(created.id, outs, INPUTS)).changes, true, "preview shows the renewal");
    const renewed = (await p.update!(created.id, outs, INPUTS)).outs;
    assert.equal(renewed.caCert, outs.caCert, "the CA is kept");
    assert.equal(renewed.caKey, outs.caKey);
    assert.notEqual(renewed.serverCert, outs.serverCert);
    assert.notEqual(renewed.serverKey, outs.serverKey);
    // (openssl dates the new certificate by the real clock, not this test's.)
    assert.notEqual(certInfo(renewed.serverCert).serial, certInfo(outs.serverCert).serial);
    assert.match(renewed.issuedBecause, /within renewBeforeDays/);
    now = new Date();
    assert.equal((await p.diff!(created.id, renewed, INPUTS)).changes, false);

    // A host change: a new server certificate for the new name, same CA.
    now = new Date();
    const moved = (await p.update!(created.id, outs, { ...INPUTS, host: "docker-registry.dccn.nl", address: "" })).outs;
    assert.deepEqual(certInfo(moved.serverCert).dnsNames, ["docker-registry.dccn.nl"]);
    assert.deepEqual(certInfo(moved.serverCert).ipAddresses, []);
    assert.equal(moved.caCert, outs.caCert);

    // Nine years on, the CA would not outlive a new server certificate: a new CA, the old one still trusted.
    now = new Date(Date.now() + 9 * 365 * DAY);
    const rotated = (await p.update!(created.id, outs, INPUTS)).outs;
    assert.notEqual(rotated.caCert, outs.caCert);
    assert.ok(signedBy(rotated.serverCert, rotated.caCert));
    assert.equal(rotated.previousCaCert, outs.caCert);
    assert.equal(rotated.trustBundle, trustBundle(rotated.caCert, outs.caCert, now));
    assert.equal((rotated.trustBundle.match(/BEGIN CERTIFICATE/g) ?? []).length, 2);
    // Once the old CA has expired it is dropped from the bundle.
    assert.equal((trustBundle(rotated.caCert, outs.caCert, new Date(Date.now() + 11 * 365 * DAY)).match(/BEGIN CERTIFICATE/g) ?? []).length, 1);
});

test("bad names never reach openssl", () => {
    const ca = createCa({ commonName: "dccn-swarm registry CA", validityDays: 10 });
    assert.throws(() => issueServerCert(ca, { host: "bad name\n[v3]", validityDays: 5 }), /is not a DNS name/);
    assert.throws(() => issueServerCert(ca, { host: "registry.lab", address: "1.2.3.4, DNS:evil", validityDays: 5 }), /is not an IP address/);
    assert.throws(() => createCa({ commonName: "x\nCN=y", validityDays: 10 }), /invalid certificate subject/);
    assert.throws(() => createCa({ commonName: "x", validityDays: 0 }), /validity must be/);
});
