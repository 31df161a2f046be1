/** The Registry component's resource graph under Pulumi's mocks (no engine, no nodes). */
import { strict as assert } from "node:assert";
import { describe, it } from "node:test";
import * as pulumi from "@pulumi/pulumi";
import { contentName, HEALTH_CMD, Registry, registryServiceSpec, trustStep } from "../../components/registry";
import { differences, normaliseService } from "../../lib/engine-spec";
import { captureRegistrations, MockResource, stdinOf, undoOf } from "./harness";
import { stepStdin } from "../../lib/remote-script";
import { RegistryConfig } from "../../lib/registry-config";

const DYNAMIC = (t: string) => `dccn-swarm:index:${t}`;
const SECRET_SIG = "4dabf18193072939515e22adb298388d";
const FAKE_CA = "-----BEGIN CERTIFICATE-----\nFAKE-CA\n-----END CERTIFICATE-----\n";
const FAKE_CERT = "-----BEGIN CERTIFICATE-----\nFAKE-SERVER\n-----END CERTIFICATE-----\n";
const FAKE_KEY = "-----BEGIN PRIVATE KEY-----\nFAKE-KEY\n-----END PRIVATE KEY-----\n";

const host = (name: string, address: string) => ({ name, address, knownHosts: `${address} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIUnitTestHostKey` });
const NODES: { host: { name: string; address: string; knownHosts: string }; labels: Record<string, string> }[] = [
    { host: host("vm1", "172.28.213.11"), labels: { os: "linux", registry: "true" } },
    { host: host("vm2", "172.28.213.12"), labels: { os: "linux" } },
    { host: host("vm3", "172.28.213.13"), labels: { os: "linux" } },
];
const SSH = { user: "root", port: 22, privateKey: "-----BEGIN OPENSSH PRIVATE KEY-----\nUNIT-REGISTRY-KEY\n-----END OPENSSH PRIVATE KEY-----\n", connectTimeout: 10 };
const CONFIG: RegistryConfig = {
    host: "registry.lab", port: 5000, address: "172.28.213.11", placement: { key: "registry", value: "true" }, constraint: "node.labels.registry==true",
    dataPath: "/var/lib/dccn-registry", image: "dccn-lab/registry:2.8", users: ["alice", "bob"], pullUser: "bob", pushUser: "alice",
    certificate: { validityDays: 825, renewBeforeDays: 30, caValidityDays: 3650 }, endpoint: "registry.lab:5000",
};

async function graph(make: () => Registry | void): Promise<{ rs: MockResource[]; registry?: Registry; auth?: unknown; authSecret?: boolean }> {
    await pulumi.runtime.setMocks({
        newResource: (args) => {
            const state: Record<string, unknown> = { ...args.inputs };
            if (args.type === DYNAMIC("RegistryPki")) Object.assign(state, { caCert: FAKE_CA, trustBundle: FAKE_CA, serverCert: FAKE_CERT, serverKey: FAKE_KEY, notAfter: "2029-01-01T00:00:00.000Z" });
            if (args.type === DYNAMIC("RegistryUsers")) Object.assign(state, { htpasswd: "alice:$2b$10$x\nbob:$2b$10$y\n" });
            if (args.type === DYNAMIC("SwarmService")) state.serviceId = "svc-id";
            return { id: `${args.name}-id`, state };
        },
        call: (args) => args.inputs,
    }, "dccn-swarm", "unit", false);
    const out = captureRegistrations();
    try {
        const registry = make() ?? undefined;
        let auth: unknown;
        let authSecret: boolean | undefined;
        if (registry) {
            auth = await new Promise((r) => registry.registryAuth.apply(r));
            authSecret = await pulumi.isSecret(registry.registryAuth);
        }
        await new Promise((r) => setTimeout(r, 300));
        return { rs: out, registry: registry || undefined, auth, authSecret };
    } finally {
        await pulumi.runtime.disconnect();
    }
}

const byName = (rs: MockResource[], n: string) => {
    const r = rs.find((x) => x.name === n);
    assert.ok(r, `resource ${n} declared (have: ${rs.map((x) => x.name).join(", ")})`);
    return r!;
};
const isSecretValue = (v: unknown) => typeof v === "object" && v !== null && (v as Record<string, unknown>)[SECRET_SIG] !== undefined;

describe("Registry component", () => {
    it("declares PKI, users, trust on every node, data on the labelled node, secrets, service and the readiness probe, in that order", async () => {
        const { rs, auth, authSecret, registry } = await graph(() => new Registry("registry", {
            config: CONFIG, passwords: pulumi.secret({ alice: "pw-alice", bob: "pw-bob" }), stackFile: "Pulumi.dev.yaml", nodes: NODES, ssh: SSH,
            dependsOn: [],
        }));
        const names = rs.map((r) => r.name).sort();
        assert.deepEqual(names, [
            "registry", "registry-data-vm1", "registry-htpasswd", "registry-pki", "registry-ready", "registry-service",
            "registry-tls-cert", "registry-tls-key", "registry-trust-vm1", "registry-trust-vm2", "registry-trust-vm3", "registry-users",
        ]);
        assert.equal(byName(rs, "registry-pki").type, DYNAMIC("RegistryPki"));
        assert.equal(byName(rs, "registry-trust-vm2").type, DYNAMIC("ProvisionStep"));

        // Trust: registry-ca.sh with the host, the port, the lab's address and the CA on stdin.
        const trust = byName(rs, "registry-trust-vm3");
        assert.equal(trust.inputs.script, "registry-ca.sh");
        assert.equal(stdinOf(trust), stepStdin({ ...trustStep(CONFIG), data: FAKE_CA }));
        assert.match(stdinOf(trust), /REGISTRY_ADDRESS='172\.28\.213\.11' REGISTRY_HOST='registry\.lab' REGISTRY_PORT='5000' bash/);
        assert.ok(stdinOf(trust).includes("FAKE-CA"));
        assert.ok(!stdinOf(trust).includes("FAKE-KEY"), "no key travels to the nodes");
        assert.ok(isSecretValue(trust.inputs.ssh), "the SSH key is a secret");
        // Deleted (the registry left the config): the trust and the pinned name are removed again.
        assert.match(undoOf(trust) ?? "", /REGISTRY_HOST='registry\.lab' REGISTRY_PORT='5000' REMOVE='1' bash/);
        assert.ok(!(undoOf(trust) ?? "").includes("FAKE-CA"));
        assert.match(stdinOf(byName(rs, "registry-data-vm1")), /DATA_PATH='\/var\/lib\/dccn-registry' bash/);
        assert.match(stdinOf(byName(rs, "registry-data-vm1")), /# registry-data\.sh - /, "the script file travels");
        assert.equal(undoOf(byName(rs, "registry-data-vm1")), undefined, "the registry's images are never removed");

        // Secrets named by content; the key and the htpasswd file are secret inputs.
        const key = byName(rs, "registry-tls-key");
        assert.equal(key.inputs.name, contentName("registry", "tls_key", FAKE_CERT));
        assert.ok(isSecretValue(key.inputs.data));
        assert.ok(isSecretValue(byName(rs, "registry-htpasswd").inputs.data));
        assert.equal(byName(rs, "registry-tls-cert").inputs.labels["com.docker.stack.namespace"], "registry");

        // The service: placed by the label, host-mode port, TLS and auth through the secrets, data bind-mounted.
        const svc = byName(rs, "registry-service");
        assert.equal(svc.inputs.name, "registry_registry");
        assert.equal(svc.inputs.resolveImage, "never");
        // Reached through any node that is a manager when asked: promoting or demoting one changes nothing here.
        assert.deepEqual(svc.inputs.managers.map((m: { name: string }) => m.name), ["vm1", "vm2", "vm3"]);
        const spec = svc.inputs.spec;
        assert.deepEqual(spec.TaskTemplate.Placement.Constraints, ["node.labels.registry==true"]);
        assert.deepEqual(spec.EndpointSpec.Ports, [{ Protocol: "tcp", PublishMode: "host", PublishedPort: 5000, TargetPort: 5000 }]);
        assert.deepEqual(spec.TaskTemplate.ContainerSpec.Mounts, [{ Source: "/var/lib/dccn-registry", Target: "/var/lib/registry", Type: "bind" }]);
        assert.deepEqual(spec.TaskTemplate.ContainerSpec.Secrets.map((s: any) => s.SecretName), [ // eslint-disable-line @typescript-eslint/no-explicit-any
            contentName("registry", "htpasswd", "alice:$2b$10$x\nbob:$2b$10$y\n"), contentName("registry", "tls_cert", FAKE_CERT), contentName("registry", "tls_key", FAKE_CERT),
        ]);
        for (const e of ["REGISTRY_AUTH=htpasswd", "REGISTRY_AUTH_HTPASSWD_PATH=/run/secrets/htpasswd", "REGISTRY_HTTP_TLS_CERTIFICATE=/run/secrets/registry.crt",
            "REGISTRY_HTTP_TLS_KEY=/run/secrets/registry.key"]) assert.ok(spec.TaskTemplate.ContainerSpec.Env.includes(e), e);
        assert.deepEqual(spec.TaskTemplate.ContainerSpec.Healthcheck.Test, ["CMD-SHELL", HEALTH_CMD]);
        // It comes after every node trusts the CA, the data directory and its secrets.
        for (const d of ["registry-trust-vm1", "registry-trust-vm2", "registry-trust-vm3", "registry-data-vm1", "registry-tls-cert", "registry-tls-key", "registry-htpasswd"]) {
            assert.ok(svc.deps.includes(d), `service depends on ${d}`);
        }
        // Readiness: a login as the pull user, after the service.
        const ready = byName(rs, "registry-ready");
        assert.equal(ready.type, DYNAMIC("RegistryProbe"));
        assert.ok(ready.deps.includes("registry-service"));
        assert.equal(ready.inputs.username, "bob");
        assert.equal(ready.inputs.serveraddress, "registry.lab:5000");
        assert.ok(isSecretValue(ready.inputs.password));

        // Outputs for other stacks.
        assert.equal(registry!.endpoint, "registry.lab:5000");
        assert.deepEqual(auth, { serveraddress: "registry.lab:5000", username: "bob", password: "pw-bob" });
        assert.equal(authSecret, true, "registryAuth is a secret");
        // Nothing secret in the clear in any input.
        const hide = (v: unknown): unknown => isSecretValue(v) ? "[secret]" : Array.isArray(v) ? v.map(hide)
            : v && typeof v === "object" ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, hide(x)])) : v;
        const plain = JSON.stringify(rs.map((r) => hide(r.inputs)));
        for (const s of ["pw-alice", "pw-bob", "UNIT-REGISTRY-KEY", "FAKE-KEY"]) assert.ok(!plain.includes(s), `${s} only as a secret`);
    });

    it("under the program harness's generic mocks (dynamic outputs echo the inputs) nothing throws", async () => {
        const errors: unknown[] = [];
        const onError = (e: unknown) => errors.push(e);
        process.on("unhandledRejection", onError);
        try {
            await pulumi.runtime.setMocks({ newResource: (a) => ({ id: `${a.name}-id`, state: { ...a.inputs } }), call: (a) => a.inputs }, "dccn-swarm", "unit", false);
            const r = new Registry("registry", { config: CONFIG, passwords: pulumi.secret({ alice: "a", bob: "b" }), stackFile: "Pulumi.dev.yaml", nodes: NODES, ssh: SSH });
            await new Promise((res) => r.service.urn.apply(res));
            await new Promise((res) => setTimeout(res, 300));
        } finally {
            await pulumi.runtime.disconnect();
            process.off("unhandledRejection", onError);
        }
        assert.deepEqual(errors, []);
    });

    it("the service spec survives the engine's normalisation unchanged (no perpetual diff), and changes only with its secrets", () => {
        const a = registryServiceSpec(CONFIG, "registry", { cert: "registry_tls_cert-1", key: "registry_tls_key-1", htpasswd: "registry_htpasswd-1" });
        assert.deepEqual(normaliseService(normaliseService(a)), normaliseService(a));
        const b = registryServiceSpec(CONFIG, "registry", { cert: "registry_tls_cert-1", key: "registry_tls_key-1", htpasswd: "registry_htpasswd-2" });
        assert.deepEqual(differences(normaliseService(b), normaliseService(a)), ["TaskTemplate.ContainerSpec.Secrets"]);
        assert.equal(JSON.stringify(a), JSON.stringify(registryServiceSpec(CONFIG, "registry", { cert: "registry_tls_cert-1", key: "registry_tls_key-1", htpasswd: "registry_htpasswd-1" })));
    });

    it("without an address no /etc/hosts line is asked for", () => {
        const stdin = stepStdin({ ...trustStep({ ...CONFIG, address: undefined, host: "docker-registry.dccn.nl" }), data: FAKE_CA });
        assert.ok(!stdin.includes("REGISTRY_ADDRESS="));
        assert.match(stdin, /REGISTRY_HOST='docker-registry\.dccn\.nl' REGISTRY_PORT='5000' bash/);
    });
});
