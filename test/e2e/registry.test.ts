/**
 * Issue 5 on the lab through the real engine: the private registry of the dev stack (registry.lab:5000
 * on vm1, TLS from the program's CA, htpasswd users from the secret `registryPasswords`). Logins,
 * pushes and pulls are done with the Docker CLI on the nodes, passwords always on standard input.
 */
import { describe, test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import {
    changeCollector, editDevConfig, engineEnv, nodeAddressRe, onNode, runOnNode, skipOrFail, useLabSuite, waitFor,
} from "./support";

const ENDPOINT = "registry.lab:5000";
const CA = `/etc/docker/certs.d/${ENDPOINT}/ca.crt`;
const NODES = ["vm1", "vm2", "vm3"];

/** `docker login` on a node with the password on standard input. */
function login(node: string, user: string, password: string): { ok: boolean; stderr: string } {
    const r = runOnNode(node, `docker login ${ENDPOINT} --username ${user} --password-stdin`, password);
    return { ok: r.status === 0, stderr: r.stderr };
}

/**
 * HTTP status of an anonymous (or basic-auth, credentials on stdin) GET on the registry from a node,
 * verifying TLS with the trusted CA; "000" when it does not answer.
 */
function httpStatus(node: string, urlPath: string, credentials?: string): string {
    const auth = credentials !== undefined ? "--config - " : "";
    return onNode(node, `curl -sS -o /dev/null -w '%{http_code}' --cacert ${CA} ${auth}https://${ENDPOINT}${urlPath}`,
        { allowFail: true, ...(credentials !== undefined ? { input: `user = "${credentials}"\n` } : {}) }).trim();
}

function sha256On(node: string, file: string): string {
    return onNode(node, `sha256sum ${file} | cut -d' ' -f1`).trim();
}

/** The fingerprint of the certificate the registry presents, seen from a node. */
function servedFingerprint(node: string): string {
    return onNode(node, `openssl s_client -connect ${ENDPOINT} -servername registry.lab </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256`).trim();
}

/** Where the registry's task is and what listens on its port, for a failure's report. */
function registryReport(): string {
    const on = (node: string, cmd: string) => { const r = runOnNode(node, cmd); return `${r.stdout}${r.stderr}`.trim(); };
    return [
        "\n# docker service ps registry_registry (vm1)", on("vm1", "docker service ps registry_registry --no-trunc --format '{{.Name}} {{.Node}} {{.DesiredState}} {{.CurrentState}} {{.Error}}' | head -n 10"),
        "# docker ps -a (vm1)", on("vm1", "docker ps -a --format '{{.Names}} {{.Status}} {{.Ports}}'"),
        "# listening on vm1", on("vm1", "ss -ltnp 2>/dev/null | grep ':5000' || echo 'nothing on :5000'"),
        "# nat rules for 5000 (vm1)", on("vm1", "iptables -t nat -S 2>&1 | grep -e 5000 -e 'DOCKER' | head -n 20"),
    ].join("\n");
}

describe("the private registry on the lab (dev stack)", { concurrency: 1 }, () => {
    const suite = useLabSuite(before, after);
    /** Everything the program printed during this suite's updates: checked for secrets at the end. */
    const printed: string[] = [];
    const capture = { onOutput: (s: string) => { printed.push(s); } };
    const passwords: Record<string, string> = {};
    const tag = `t${Date.now()}`;
    const image = `${ENDPOINT}/lab/probe:${tag}`;

    const readPasswords = async () => {
        const all = await suite.stack.getAllConfig();
        Object.assign(passwords, JSON.parse(all["dccn-swarm:registryPasswords"].value));
    };

    after(() => {
        for (const n of NODES) runOnNode(n, `docker logout ${ENDPOINT}; docker image rm -f ${image} ${image}-2`);
    });

    test("after up: a configured user logs in over TLS from every node, with no insecure-registries entry", async (t) => {
        if (skipOrFail(t, suite.missing)) return;
        await readPasswords();
        assert.ok(passwords.admin && passwords.puller, "stack-init generated the dev passwords");
        for (const n of NODES) {
            assert.ok(!onNode(n, "cat /etc/docker/daemon.json").includes("insecure-registries"), `${n}: no insecure-registries in daemon.json`);
            assert.ok(!onNode(n, "docker info --format '{{json .RegistryConfig}}'").includes("registry.lab"), `${n}: the engine does not treat the registry as insecure`);
            assert.match(onNode(n, `openssl x509 -in ${CA} -noout -subject`), /dccn-swarm registry CA/, `${n} trusts the program's CA`);
            assert.match(onNode(n, "getent hosts registry.lab"), new RegExp(`^${nodeAddressRe("vm1")}\\s`), `${n} resolves registry.lab`);
            const r = login(n, "puller", passwords.puller);
            assert.ok(r.ok, `${n}: docker login as puller: ${r.stderr}${r.ok ? "" : registryReport()}`);
        }
        // The registry's health check passes (the service runs healthy on vm1).
        await waitFor("registry task healthy", () => /healthy/.test(onNode("vm1",
            "docker inspect --format '{{.State.Health.Status}}' $(docker ps -q --filter label=com.docker.swarm.service.name=registry_registry)")), 60);
    });

    test("anonymous requests get 401; a wrong password is refused", async (t) => {
        if (skipOrFail(t, suite.missing)) return;
        assert.equal(httpStatus("vm2", "/v2/_catalog"), "401");
        assert.equal(httpStatus("vm2", "/v2/_catalog", `puller:${passwords.puller}`), "200");
        const wrong = login("vm2", "puller", `${passwords.puller}-wrong`);
        assert.equal(wrong.ok, false, "a wrong password is refused");
        assert.match(wrong.stderr, /unauthorized|401/i);
        assert.equal(login("vm2", "nobody", "nothing").ok, false, "an unknown user is refused");
    });

    test("an image pushed to the registry runs as a service on a worker that never had it", async (t) => {
        if (skipOrFail(t, suite.missing)) return;
        // Build a new image on vm1 (from the lab's busybox, nothing pulled) and push it as admin.
        onNode("vm1", `set -e; d=$(mktemp -d); echo ${tag} > $d/probe-id
printf 'FROM dccn-lab/busybox:1\\nCOPY probe-id /probe-id\\nCMD ["busybox", "sleep", "3600"]\\n' > $d/Dockerfile
docker build -q -t ${image} $d >/dev/null; rm -rf $d`);
        assert.ok(login("vm1", "admin", passwords.admin).ok);
        onNode("vm1", `docker push ${image} >/dev/null`);
        assert.notEqual(runOnNode("vm3", `docker image inspect ${image}`).status, 0, "vm3 does not have the image");
        for (const n of NODES) onNode(n, `docker logout ${ENDPOINT} >/dev/null`);

        // A stack using it, placed on vm3: the program deploys it with the pull user's credentials.
        fs.writeFileSync(path.join(suite.dir, "probe.yml"), `version: "3.8"
services:
  probe:
    image: ${image}
    deploy:
      placement:
        constraints: [node.hostname == vm3]
`);
        editDevConfig(suite.dir, (c) => { c["dccn-swarm:stacks"].push({ name: "probe", file: "probe.yml" }); });
        const up = await suite.stack.up(capture);
        assert.equal(up.summary.result, "succeeded");
        const ps = onNode("vm1", "docker service ps probe_probe --filter desired-state=running --format '{{.Node}} {{.CurrentState}}'");
        assert.match(ps, /^vm3 Running/m);
        // The task on vm3 runs the pushed image (pulled by digest, with the pull user's credentials).
        await waitFor("the probe task's container on vm3", () =>
            onNode("vm3", "docker ps -q --filter label=com.docker.swarm.service.name=probe_probe").trim() !== "", 60);
        assert.equal(onNode("vm3", "docker exec $(docker ps -q --filter label=com.docker.swarm.service.name=probe_probe | head -n1) busybox cat /probe-id").trim(),
            tag, "vm3 pulled the pushed image");
        // Pinned to the registry's digest, as `docker stack deploy --resolve-image changed` does.
        assert.match(onNode("vm1", "docker service inspect probe_probe --format '{{.Spec.TaskTemplate.ContainerSpec.Image}}'"), new RegExp(`^${image}@sha256:`));
    });

    test("drill: the registry is down while a stack deploys: a clear error, and a later `up --refresh` converges", async (t) => {
        if (skipOrFail(t, suite.missing)) return;
        // A second version of the probe image, pushed while the registry is up.
        const image2 = `${ENDPOINT}/lab/probe:${tag}-2`;
        onNode("vm1", `set -e; d=$(mktemp -d); echo ${tag}-2 > $d/probe-id
printf 'FROM dccn-lab/busybox:1\nCOPY probe-id /probe-id\nCMD ["busybox", "sleep", "3600"]\n' > $d/Dockerfile
docker build -q -t ${image2} $d >/dev/null; rm -rf $d`);
        assert.ok(login("vm1", "admin", passwords.admin).ok);
        onNode("vm1", `docker push ${image2} >/dev/null; docker logout ${ENDPOINT} >/dev/null`);

        // The registry goes down (its task stopped, as when its node fails), then the stack changes.
        onNode("vm1", "docker service scale --detach registry_registry=0 >/dev/null");
        await waitFor("the registry to stop answering", () => httpStatus("vm2", "/v2/") === "000", 60);
        fs.writeFileSync(path.join(suite.dir, "probe.yml"), fs.readFileSync(path.join(suite.dir, "probe.yml"), "utf8").replace(image, image2));
        const failed = await suite.stack.up(capture).then(() => undefined, (e: Error) => e);
        assert.ok(failed, "up fails while the registry is down");
        assert.match(failed.message, /probe/, "the error names the stack's service");
        assert.match(failed.message, /registry\.lab:5000/, "and the registry it could not reach");
        assert.match(onNode("vm1", "docker service inspect probe_probe --format '{{.Spec.TaskTemplate.ContainerSpec.Image}}'"), new RegExp(`^${image}@`),
            "the service is left on its previous image");

        // The next `up --refresh` sees the registry scaled to 0 (drift), restores it first, then deploys.
        const up = await suite.stack.up({ ...capture, refresh: true });
        assert.equal(up.summary.result, "succeeded");
        assert.match(onNode("vm1", "docker service ls --filter name=registry_registry --format '{{.Replicas}}'"), /^1\/1/);
        assert.match(onNode("vm1", "docker service inspect probe_probe --format '{{.Spec.TaskTemplate.ContainerSpec.Image}}'"), new RegExp(`^${image2}@sha256:`));
        await waitFor("the probe task on the new image", () => onNode("vm3",
            "docker exec $(docker ps -q --filter label=com.docker.swarm.service.name=probe_probe | head -n1) busybox cat /probe-id").trim() === `${tag}-2`, 90);
        await suite.stack.preview({ expectNoChanges: true, onOutput: () => undefined });
    });

    test("adding a user and removing another previews as exactly that and works after up", async (t) => {
        if (skipOrFail(t, suite.missing)) return;
        editDevConfig(suite.dir, (c) => { c["dccn-swarm:registry"].users = ["puller", "carol"]; });
        const carol = `carol-${Date.now()}-pw`;
        await suite.stack.setConfig("dccn-swarm:registryPasswords.carol", { value: carol, secret: true }, true);
        await suite.stack.removeConfig("dccn-swarm:registryPasswords.admin", true);
        const c = changeCollector();
        await suite.stack.preview({ onEvent: c.onEvent, onOutput: () => undefined });
        const changed = [...c.changes.keys()].sort();
        assert.ok(changed.includes("registry-users") && changed.includes("registry-htpasswd") && changed.includes("registry-service"), `changed: ${changed}`);
        assert.deepEqual(changed.filter((n) => !n.startsWith("registry-") && n !== "registry"), [], `only the registry's resources change: ${changed}`);
        assert.deepEqual(changed.filter((n) => /^registry-(pki|trust-|tls-|data-)/.test(n)), [], "certificates and trust untouched");

        const up = await suite.stack.up(capture);
        assert.equal(up.summary.result, "succeeded");
        assert.ok(login("vm2", "carol", carol).ok, "the new user logs in");
        assert.equal(login("vm2", "admin", passwords.admin).ok, false, "the removed user is refused");
        assert.ok(login("vm2", "puller", passwords.puller).ok, "the other user keeps working");
        passwords.carol = carol;
        await suite.stack.preview({ expectNoChanges: true, onOutput: () => undefined });
    });

    test("renewing the certificate updates every node's trust; the registry keeps its images", async (t) => {
        if (skipOrFail(t, suite.missing)) return;
        const before = Object.fromEntries(NODES.map((n) => [n, sha256On(n, CA)]));
        const servedBefore = servedFingerprint("vm2");
        // A new CA validity renews the CA and the server certificate.
        editDevConfig(suite.dir, (c) => { c["dccn-swarm:registry"].certificate = { caValidityDays: 3649 }; });
        const c = changeCollector();
        await suite.stack.preview({ onEvent: c.onEvent, onOutput: () => undefined });
        for (const n of ["registry-pki", "registry-trust-vm1", "registry-trust-vm2", "registry-trust-vm3", "registry-service"]) {
            assert.ok(c.changes.has(n), `${n} changes: ${[...c.changes.keys()]}`);
        }
        const up = await suite.stack.up(capture);
        assert.equal(up.summary.result, "succeeded");
        for (const n of NODES) {
            assert.notEqual(sha256On(n, CA), before[n], `${n}'s trust changed`);
            // The new CA and, while it is valid, the previous one.
            assert.equal(onNode(n, `grep -c 'BEGIN CERTIFICATE' ${CA}`).trim(), "2", `${n} trusts the new and the previous CA`);
        }
        assert.notEqual(servedFingerprint("vm2"), servedBefore, "the registry presents the new certificate");
        // The image pushed before the renewal is still there, and pulls on a node that did not have it.
        assert.ok(login("vm2", "puller", passwords.puller).ok);
        assert.notEqual(runOnNode("vm2", `docker image inspect ${image}`).status, 0);
        onNode("vm2", `docker pull ${image} >/dev/null`);
        assert.match(onNode("vm2", `docker run --rm --entrypoint busybox ${image} cat /probe-id`), new RegExp(tag));
        await suite.stack.preview({ expectNoChanges: true, onOutput: () => undefined });
    });

    test("no password or private key in `pulumi stack export`, in the program's output, or in service specs", async (t) => {
        if (skipOrFail(t, suite.missing)) return;
        const env = engineEnv();
        const exported = spawnSync("pulumi", ["stack", "export", "--stack", "dev"], { cwd: suite.dir, env, encoding: "utf8", maxBuffer: 256 << 20 });
        assert.equal(exported.status, 0, exported.stderr);
        assert.ok(exported.stdout.includes("registry-pki"), "the export holds the registry");
        const specs = onNode("vm1", "docker service inspect registry_registry probe_probe");
        const out = printed.join("");
        for (const [user, pw] of Object.entries(passwords)) {
            assert.ok(!exported.stdout.includes(pw), `${user}'s password is not in the export`);
            assert.ok(!out.includes(pw), `${user}'s password is not in the program's output`);
            assert.ok(!specs.includes(pw), `${user}'s password is not in a service spec`);
        }
        assert.doesNotMatch(exported.stdout, /BEGIN (EC |RSA )?PRIVATE KEY/, "no private key in the export");
        assert.doesNotMatch(out, /BEGIN (EC |RSA )?PRIVATE KEY/);
        assert.match(exported.stdout, /"caKey":\s*\{\s*"4dabf18193072939515e22adb298388d"/, "the CA key is kept, as a secret");
    });
});
