/**
 * Issue 14's connection drills on the lab, through the real engine and the provider plugin: the
 * SSH key rotated as the README's runbook says (a state-only change), then refresh and a node
 * removed and added back with the new key alone; and sshd restarted on nodes in the middle of an
 * `up`, which the pooled connections retry instead of failing.
 */
import { describe, test, before, after } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import {
    changeCollector, clusterFacts, devStackText, editDevConfig, engineEnv, exportedState, LAB_DIR, labJson, labNodes, maxFile, nodesOf, onNode, quiet,
    keyMaterial, skipOrFail, swarmState, useLabSuite, watchForSecret,
} from "./support";

describe("SSH connection drills (dev stack on the lab)", { concurrency: 1 }, () => {
    const newKey = path.join(LAB_DIR, "rotated_ed25519");
    let oldPub = "";
    let newPub = "";

    /** `pulumi config set --secret` with the value on standard input, never on a command line. */
    function setSecretConfig(key: string, value: string): void {
        const r = spawnSync("pulumi", ["config", "set", "--stack", "dev", "--secret", key], { cwd: suite.dir, env: engineEnv(), input: value, encoding: "utf8" });
        assert.equal(r.status, 0, r.stderr);
    }

    /**
     * Back to the lab's own key, as a second rotation: authorise it again next to the new one (with
     * the new key), give the stack its key file again and `up` (the state takes it; nothing runs on
     * the nodes), then remove the new key from the nodes. The suites after this one, the lab tools
     * and the suite's own convergence (a refresh with the key the state holds) need it.
     */
    async function backToLabKey(): Promise<void> {
        if (!newPub) return;
        for (const n of labNodes()) {
            onNode(n.name, `grep -qxF '${oldPub}' /root/.ssh/authorized_keys || echo '${oldPub}' >> /root/.ssh/authorized_keys`, { keyFile: newKey, allowFail: true });
        }
        fs.writeFileSync(path.join(suite.dir, "Pulumi.dev.yaml"), devStackText());
        spawnSync("pulumi", ["config", "rm", "--stack", "dev", "dccn-swarm:sshPrivateKey"], { cwd: suite.dir, env: engineEnv(), encoding: "utf8" });
        await suite.stack.up(quiet);
        for (const n of labNodes()) {
            onNode(n.name, `grep -vxF '${newPub}' /root/.ssh/authorized_keys > /root/.ssh/ak.new; mv /root/.ssh/ak.new /root/.ssh/authorized_keys`);
        }
        newPub = "";
    }

    after(() => {
        fs.rmSync(newKey, { force: true });
        fs.rmSync(`${newKey}.pub`, { force: true });
    });
    const suite = useLabSuite(before, after);

    test("SSH key rotation: authorise, set the secret, up changes the state only; refresh and a node's removal and return use the new key alone", async (t) => {
        if (skipOrFail(t, suite.missing)) return;
        const lab = labJson();
        oldPub = fs.readFileSync(`${lab.sshPrivateKeyFile}.pub`, "utf8").trim();
        fs.rmSync(newKey, { force: true });
        fs.rmSync(`${newKey}.pub`, { force: true });
        const kg = spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "rotated", "-f", newKey], { encoding: "utf8" });
        assert.equal(kg.status, 0, kg.stderr);
        // 1. The new key authorised next to the old one on every node.
        for (const n of labNodes()) onNode(n.name, `echo '${fs.readFileSync(`${newKey}.pub`, "utf8").trim()}' >> /root/.ssh/authorized_keys`);
        newPub = fs.readFileSync(`${newKey}.pub`, "utf8").trim();
        const withNewKey = (node: string, cmd: string) => onNode(node, cmd, { keyFile: newKey }).trim();
        try {
            // 2. The stack's key: the secret sshPrivateKey instead of the lab's key file.
            editDevConfig(suite.dir, (c) => { delete c["dccn-swarm:ssh"].privateKeyFile; });
            setSecretConfig("dccn-swarm:sshPrivateKey", fs.readFileSync(newKey, "utf8"));
            // 3. up: every resource that reaches nodes updates what its state holds; nothing else happens.
            const facts = clusterFacts();
            const c = changeCollector();
            await suite.stack.preview({ onEvent: c.onEvent, ...quiet });
            assert.ok(c.changes.size > 0, "the resources holding the connection change");
            assert.deepEqual([...c.changes.values()].filter((op) => op !== "update"), [], "updates only");
            await suite.stack.up(quiet);
            assert.deepEqual(clusterFacts(), facts, "nothing changed on the cluster");
            const state = exportedState(suite.dir);
            assert.equal(state.includes(keyMaterial(newKey)), false, "the new key is not in the state in plain text");
            // 4. The old key removed from every node: from now on only the new one opens a session.
            for (const n of labNodes()) {
                withNewKey(n.name, `grep -vxF '${oldPub}' /root/.ssh/authorized_keys > /root/.ssh/ak.new; mv /root/.ssh/ak.new /root/.ssh/authorized_keys`);
            }
            assert.notEqual(spawnSync("ssh", ["-i", lab.sshPrivateKeyFile, "-o", "IdentitiesOnly=yes", "-o", `UserKnownHostsFile=${lab.knownHostsFile}`,
                "-o", "BatchMode=yes", `root@${labNodes()[0].address}`, "true"]).status, 0, "the old key is refused now");
            // 5. refresh with the new key only.
            const refreshed = await suite.stack.refresh(quiet);
            assert.equal(refreshed.summary.result, "succeeded");
            // 6. vm3 removed (drained, made to leave, node rm) and added back, with the new key only;
            // meanwhile no file under /tmp and no command line on this machine holds the key.
            const watch = watchForSecret(keyMaterial(newKey));
            let removed: unknown;
            editDevConfig(suite.dir, (cfg) => {
                removed = nodesOf(cfg).find((n) => n.hostname === "vm3");
                cfg["dccn-swarm:nodes"] = nodesOf(cfg).filter((n) => n.hostname !== "vm3");
            });
            await suite.stack.up(quiet);
            assert.equal(withNewKey("vm1", "docker node ls --format '{{.Hostname}}'").split("\n").includes("vm3"), false, "vm3 is out of the node table");
            assert.equal(withNewKey("vm3", "docker info --format '{{.Swarm.LocalNodeState}}'"), "inactive", "vm3 left the swarm");
            editDevConfig(suite.dir, (cfg) => { cfg["dccn-swarm:nodes"] = [...nodesOf(cfg), removed]; });
            await suite.stack.up(quiet);
            assert.equal(withNewKey("vm3", "docker info --format '{{.Swarm.LocalNodeState}}'"), "active", "vm3 joined again");
            assert.deepEqual(watch.stop(), [], "the private key was in no temporary file and on no command line, during the ups or after");
            await suite.stack.preview({ expectNoChanges: true, ...quiet });
        } finally {
            await backToLabKey();
        }
        assert.equal(swarmState("vm3"), "active", "the lab's key opens sessions again");
    });

    test("sshd restarted on two nodes in the middle of an up: retried, not failed", async (t) => {
        if (skipOrFail(t, suite.missing)) return;
        const before_ = maxFile("vm2");
        const next = before_ === "7" ? "8" : "7";
        editDevConfig(suite.dir, (c) => { c["dccn-swarm:engine"].daemon["log-opts"]["max-file"] = next; });
        // Every sshd process on the node ends (the listener and every session, ours included); the
        // node's init starts sshd again within about 2 s.
        const restartSshd = (node: string) => onNode(node, "setsid sh -c 'pkill -x sshd' >/dev/null 2>&1 </dev/null &", { allowFail: true });
        const up = suite.stack.up(quiet);
        const kills = (async () => {
            for (const delayMs of [3000, 6000]) {
                await new Promise((r) => setTimeout(r, delayMs));
                restartSshd("vm2");
                restartSshd("vm3");
            }
        })();
        const res = await up;
        await kills;
        assert.equal(res.summary.result, "succeeded");
        for (const n of ["vm1", "vm2", "vm3"]) assert.equal(maxFile(n), next, `${n} converged`);
        await suite.stack.preview({ expectNoChanges: true, ...quiet });
    });
});
