/** lib/swarm-ops.ts's node scripts, run by bash against a fake docker CLI. */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { hostPort, nodeUpdateScript, parseSettled, restartAsManagerScript, setRoleScript, settledSummary, workerCertScript } from "../../lib/swarm-ops";
import { readScript } from "../../lib/remote-script";

/**
 * Runs `script` under bash with fake commands first on PATH (`fakes`: name -> bash body, given
 * their scratch directory); `read` looks at that directory before it is removed.
 * `counted(dir, failures, message)` is a body failing its first `failures` calls with `message`.
 */
function withFakes<T>(script: string, fakes: (dir: string) => Record<string, string>, read: (dir: string) => T): { status: number | null; stdout: string; stderr: string } & T {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "dccn-swarm-ops-"));
    try {
        for (const [name, body] of Object.entries(fakes(dir))) fs.writeFileSync(path.join(dir, name), `#!/bin/bash\n${body}\n`, { mode: 0o755 });
        const r = spawnSync("bash", ["-c", script], { env: { ...process.env, PATH: `${dir}:${process.env.PATH}` }, encoding: "utf8" });
        return { status: r.status, stdout: r.stdout, stderr: r.stderr, ...read(dir) };
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

const counted = (dir: string, failures: number, message: string) => [
    `n=$(cat ${dir}/calls 2>/dev/null || echo 0); echo $((n + 1)) > ${dir}/calls`,
    `if [ "$n" -lt ${failures} ]; then echo ${JSON.stringify(message)} >&2; exit 1; fi`,
].join("\n");

/** The node update script with a `docker` that fails `failures` times with `message`, then succeeds. */
function run(failures: number, message: string): { status: number | null; stderr: string; calls: number } {
    return withFakes(nodeUpdateScript("docker node update --label-add os=linux vm1"),
        (dir) => ({ docker: `${counted(dir, failures, message)}\necho node-id` }),
        (dir) => ({ calls: Number(fs.readFileSync(path.join(dir, "calls"), "utf8")) }));
}

test("a leader election in progress is waited out: the update is tried again and succeeds", () => {
    const r = run(2, "Error response from daemon: rpc error: code = Unknown desc = raft: failed to process the request: node lost leader status");
    assert.deepEqual([r.status, r.calls, r.stderr], [0, 3, ""]);
});

test("a proposal canceled by a leader change (two managers' engines restarting) is tried again", () => {
    const r = run(1, "Error response from daemon: rpc error: code = Unknown desc = context canceled");
    assert.deepEqual([r.status, r.calls, r.stderr], [0, 2, ""]);
});

test("any other error fails at once with the engine's message", () => {
    const r = run(1, "Error response from daemon: node vm9 not found");
    assert.deepEqual([r.status, r.calls], [1, 1]);
    assert.match(r.stderr, /node vm9 not found/);
});

/** The restart after --force-new-cluster, with a `docker` answering as a manager after `notYet` calls. */
function restart(notYet: number, timeoutSec: number): { status: number | null; stderr: string; calls: string } {
    return withFakes(restartAsManagerScript(timeoutSec),
        (dir) => ({
            systemctl: `echo "systemctl $*" >> ${dir}/calls.log`,
            // Two stale overlay devices and the engine's own (not vx-) one in the host's namespace.
            ip: [
                `if [ "$1 $2" = "-o link" ]; then`,
                `  printf '%s\n' '7: vx-001001-abcde@if6: <BROADCAST> mtu 1450' '8: vxlan0: <BROADCAST> mtu 1450' '9: vx-001002-fghij: <BROADCAST> mtu 1450'`,
                `else echo "ip $*" >> ${dir}/calls.log; fi`,
            ].join("\n"),
            sleep: "",
            docker: counted(dir, notYet, "This node is not a swarm manager."),
        }),
        (dir) => ({ calls: fs.existsSync(path.join(dir, "calls.log")) ? fs.readFileSync(path.join(dir, "calls.log"), "utf8").trim() : "" }));
}

test("after --force-new-cluster the engine is stopped, stale overlay devices removed, started, and waited for until it manages again", () => {
    const r = restart(3, 10);
    assert.deepEqual({ status: r.status, stderr: r.stderr.trim().split("\n") },
        { status: 0, stderr: ["removed the stale overlay device vx-001001-abcde", "removed the stale overlay device vx-001002-fghij"] });
    assert.deepEqual(r.calls.split("\n"), ["systemctl stop docker", "ip link delete vx-001001-abcde", "ip link delete vx-001002-fghij", "systemctl start docker"]);
});

test("a script's sourced overlay-lib.sh travels inside it: readScript puts the file's text in place of the line", () => {
    const restore = readScript("swarm-restore.sh");
    assert.doesNotMatch(restore, /dirname "\$\{BASH_SOURCE/, "no line left that sources a file the node does not have");
    assert.equal(restore.split("remove_stale_vxlan() {").length, 2, "the function defined once");
    assert.ok(restore.indexOf("remove_stale_vxlan() {") < restore.indexOf("\nremove_stale_vxlan\n"), "defined before its first use");
});

test("an engine that does not come back as a manager fails with the time-out named", () => {
    const r = restart(100, 5);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /did not answer as a swarm manager within 5s/);
});

/**
 * scripts/swarm-settle.sh with a fake `docker` on manager vm1. `orphanedFor`: a web task held as
 * Running without a container for that many listings, then its replacement starting. `registry`: a
 * one-replica service publishing 5000 in host mode, its task on vm1 preparing (no container) for
 * `preparingFor` looks, then running; bound from the start ("yes"), only after
 * `docker service update --force` ("after-redeploy", the new task starting first), or never.
 * Task lines as `docker service ps --format '{{.ID}}|{{.Node}}|{{.DesiredState}}|{{.CurrentState}}'`.
 * `nodePsFails`: the swarm cannot be asked.
 */
interface Case {
    orphanedFor?: number;
    /** `delayFor`: looks during which the task on vm1 waits out its restart delay (desired Ready); `extra`: more task lines. */
    registry?: { bound: "yes" | "after-redeploy" | "never"; preparingFor?: number; delayFor?: number; extra?: string[] };
    nodePsFails?: boolean;
    timeoutSec?: number;
}
function settle(c: Case): { status: number | null; stdout: string; stderr: string; listings: number; looks: number; updates: string[] } {
    const reg = c.registry;
    return withFakes(`export SETTLE_TIMEOUT=${c.timeoutSec ?? 20}\n${readScript("swarm-settle.sh")}`,
        (dir) => ({
            sleep: "exec /bin/sleep 0.05",
            docker: `d=${dir}
count() { n=$(cat $d/$1 2>/dev/null || echo 0); echo $((n + 1)) > $d/$1; }
a="$*"
case "$1 $2" in
"node ps")
  count listings
  ${c.nodePsFails ? "echo 'Error response from daemon: This node is not a swarm manager.' >&2; exit 1" : ""}
  echo "aaa webapp_db.1 Running 5 seconds ago"
  if [ "$n" -lt ${c.orphanedFor ?? 0} ]; then echo "bbb webapp_web.1 Running 2 minutes ago"; else echo "ccc webapp_web.1 Starting 1 second ago"; fi ;;
"ps -aq")
  case "$a" in *task.id=bbb*) ;; *task.id=rr1*) [ -e $d/rr1-created ] && echo c-rr1 ;; *task.id=*) echo "c-\${a##*=}" ;; esac ;;
"info --format") echo vm1 ;;
"service ls") echo svc-web; ${reg ? "echo svc-reg" : ""} ;;
"service inspect")
  case "$a" in
  *svc-reg*) case "$a" in *Spec.Name*) echo registry_registry ;; *Replicated*) echo 1 ;; *) echo "5000 " ;; esac ;;
  *) case "$a" in *Spec.Name*) echo webapp_web ;; *Replicated*) echo 1 ;; *) echo "" ;; esac ;;
  esac ;;
"service ps")
  count looks
  ${(reg?.extra ?? []).map((l) => `echo ${JSON.stringify(l)}`).join("; ") || ":"}
  if [ -e $d/updates ]; then
    echo "rr1|vm1|Shutdown|Shutdown 1 second ago"
    u=$(cat $d/after-update 2>/dev/null || echo 0); echo $((u + 1)) > $d/after-update
    if [ "$u" -lt 1 ]; then echo "rr2|vm1|Running|Starting 1 second ago"; else echo "rr2|vm1|Running|Running 2 seconds ago"; fi
  elif [ "$n" -lt ${reg?.delayFor ?? 0} ]; then echo "rr0|vm1|Shutdown|Failed 3 seconds ago"; echo "rr1|vm1|Ready|Ready 1 second ago"
  elif [ "$n" -lt ${reg?.preparingFor ?? 0} ]; then echo "rr1|vm1|Running|Preparing 1 second ago"
  else touch $d/rr1-created; echo "rr1|vm1|Running|Running 3 seconds ago"; fi ;;
"port c-rr1")
  ${reg?.bound === "yes" ? 'echo "5000/tcp -> 0.0.0.0:5000"' : ""} ;;
"port c-rr2")
  ${reg?.bound === "yes" || reg?.bound === "after-redeploy" ? 'echo "5000/tcp -> 0.0.0.0:5000"' : ""} ;;
"service update")
  echo "$*" >> $d/updates ;;
esac`,
        }),
        (dir) => {
            const read = (f: string) => fs.existsSync(path.join(dir, f)) ? fs.readFileSync(path.join(dir, f), "utf8") : "";
            return { listings: Number(read("listings") || 0), looks: Number(read("looks") || 0), updates: read("updates").split("\n").filter(Boolean) };
        });
}
const resultOf = (r: { stdout: string }): string => r.stdout.trim().split("\n").pop() ?? "";

test("swarm-settle: a task held as running without its container is waited out until the swarm replaced it", () => {
    const r = settle({ orphanedFor: 2 });
    assert.equal(r.status, 0);
    assert.equal(resultOf(r), "DCCN_RESULT changed=0 orphaned=none unpublished=none redeployed=none");
    assert.ok(r.listings >= 3, `listed until the orphan was gone: ${r.listings}`);
    assert.deepEqual(r.updates, []);
});

test("swarm-settle: tasks starting, and running with their container, are not waited for", () => {
    const r = settle({});
    assert.equal(resultOf(r), "DCCN_RESULT changed=0 orphaned=none unpublished=none redeployed=none");
    assert.equal(r.listings, 1, "one listing for orphans");
    assert.equal(r.looks, 0, "no service with host-mode ports to look at");
});

test("swarm-settle: an orphan still there at the time-out is named, without failing", () => {
    const r = settle({ orphanedFor: 100000, timeoutSec: 1 });
    assert.equal(r.status, 0);
    assert.equal(resultOf(r), "DCCN_RESULT changed=0 orphaned=webapp_web.1 unpublished=none redeployed=none");
});

test("swarm-settle: tasks that cannot be listed are reported as such at the time-out", () => {
    const r = settle({ nodePsFails: true, timeoutSec: 1 });
    assert.equal(r.status, 0);
    assert.match(resultOf(r), /orphaned=\(the-tasks-of-this-node-could-not-be-listed\)/);
});

test("swarm-settle: a host-mode service whose task runs without its port binding is redeployed once, then waited for", () => {
    const r = settle({ registry: { bound: "after-redeploy" } });
    assert.equal(resultOf(r), "DCCN_RESULT changed=1 orphaned=none unpublished=none redeployed=registry_registry");
    assert.deepEqual(r.updates, ["service update --force --detach svc-reg"]);
    assert.match(r.stderr, /a task of registry_registry runs on vm1 without its published port\(s\) 5000: redeploying it/);
    assert.ok(r.looks >= 3, `waited for the new task to run: ${r.looks}`);
});

test("swarm-settle: a binding that never comes is reported after one redeploy, not redeployed again", () => {
    const r = settle({ registry: { bound: "never" }, timeoutSec: 1 });
    assert.equal(resultOf(r), "DCCN_RESULT changed=1 orphaned=none unpublished=registry_registry redeployed=registry_registry");
    assert.equal(r.updates.length, 1);
});

test("swarm-settle: a host-mode task still preparing is waited for; bound when it runs, nothing redeployed", () => {
    const r = settle({ registry: { bound: "yes", preparingFor: 4 } });
    assert.equal(resultOf(r), "DCCN_RESULT changed=0 orphaned=none unpublished=none redeployed=none");
    assert.ok(r.looks >= 5, `waited while it prepared: ${r.looks}`);
    assert.deepEqual(r.updates, []);
});

test("parseSettled and settledSummary: what is left is named with the fix; a run that did not finish is reported", () => {
    const ok = parseSettled("x\nDCCN_RESULT changed=1 orphaned=none unpublished=none redeployed=registry_registry\n");
    assert.deepEqual(ok, { orphaned: [], unpublished: [], redeployed: ["registry_registry"] });
    assert.equal(settledSummary("vm1", ok, 180), "vm1: every task is back with its container and published ports; redeployed registry_registry (a task ran without its published ports)");
    const left = parseSettled("DCCN_RESULT changed=0 orphaned=a.1,b.2 unpublished=none redeployed=none");
    assert.match(settledSummary("vm1", left, 180), /^warning: vm1: after 180s still held as running without a container: a\.1, b\.2; `docker service update --force SERVICE`/);
    assert.match(parseSettled("", "ssh: connect to host 10.0.0.1 port 22: Connection timed out\n").orphaned[0], /did not finish: ssh: connect to host/);
});

test("swarm-settle: a task in its restart delay (desired Ready) on this node is waited for", () => {
    const r = settle({ registry: { bound: "yes", delayFor: 3 } });
    assert.equal(resultOf(r), "DCCN_RESULT changed=0 orphaned=none unpublished=none redeployed=none");
    assert.ok(r.looks >= 4, `waited through the delay: ${r.looks}`);
});

test("swarm-settle: tasks on other nodes and tasks no node can take (Pending) are not waited for; one not yet placed is", () => {
    const ignored = settle({ registry: { bound: "yes", extra: ["xx1|vm2|Running|Preparing 2 minutes ago", "xx2||Running|Pending 2 minutes ago"] } });
    assert.equal(resultOf(ignored), "DCCN_RESULT changed=0 orphaned=none unpublished=none redeployed=none");
    assert.equal(ignored.looks, 1);
    const unplaced = settle({ registry: { bound: "yes", extra: ["xx3||Running|New 1 second ago"] }, timeoutSec: 1 });
    assert.equal(resultOf(unplaced), "DCCN_RESULT changed=0 orphaned=none unpublished=registry_registry redeployed=none");
});

test("hostPort: an IPv6 manager address is bracketed for the join's RemoteAddrs; IPv4, names and bracketed forms as they are", () => {
    assert.equal(hostPort("172.28.213.11", 2377), "172.28.213.11:2377");
    assert.equal(hostPort("vm1.dccn.nl", 2377), "vm1.dccn.nl:2377");
    assert.equal(hostPort("2001:db8::11", 2377), "[2001:db8::11]:2377");
    assert.equal(hostPort("[2001:db8::11]", 2377), "[2001:db8::11]:2377");
});

/**
 * setRole's script with a `docker` whose promote/demote answers `verbAnswer` (exit 0 when empty) and
 * whose node inspect reports the manager status `pending` times as `before`, then as `after`.
 */
function role(r: "manager" | "worker", verbAnswer: string, pending: number, before: string, after: string) {
    return withFakes(setRoleScript("n2", r), (dir) => ({
        docker: [
            `echo "$*" >> ${dir}/log`,
            `case "$2" in promote|demote) ${verbAnswer ? `echo ${JSON.stringify(verbAnswer)} >&2; exit 1` : "exit 0"} ;; esac`,
            `n=$(cat ${dir}/inspects 2>/dev/null || echo 0); echo $((n + 1)) > ${dir}/inspects`,
            `if [ "$n" -lt ${pending} ]; then echo ${JSON.stringify(before)}; else echo ${JSON.stringify(after)}; fi`,
        ].join("\n"),
        sleep: "exit 0", // no waiting in the test
    }), (dir) => ({ log: fs.readFileSync(path.join(dir, "log"), "utf8").trim().split("\n").map((l) => l.split(" ").slice(0, 2).join(" ")) }));
}

test("a promotion is done only once the node is a reachable manager (the next one must not start before it counts for the quorum)", () => {
    const r = role("manager", "", 3, "", "reachable");
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.log, ["node promote", "node inspect", "node inspect", "node inspect", "node inspect"]);
});

test("a demotion is done once the node has no manager status; a promotion that never becomes reachable fails naming it", () => {
    const d = role("worker", "", 1, "reachable", "");
    assert.deepEqual([d.status, d.log], [0, ["node demote", "node inspect", "node inspect"]]);
    const stuck = role("manager", "", 1000, "unreachable", "unreachable");
    assert.equal(stuck.status, 1);
    assert.match(stuck.stderr, /did not become a reachable manager within 120 s/);
});

/** A PEM certificate whose DER holds `ou` (as a real one's subject does), for the certificate check. */
const pem = (ou: string) => `-----BEGIN CERTIFICATE-----\n${Buffer.from(`0\x82 subject OU=${ou} CN=n2 ...`).toString("base64")}\n-----END CERTIFICATE-----\n`;

/**
 * The demoted node's wait, with a `docker` reporting the root dir and `control` as ControlAvailable,
 * and a `sleep` that writes `later` as the node certificate at its `swapAt`th call.
 */
function demoted(first: string, later: string, swapAt: number, control = "false", engineRuns = true) {
    return withFakes(workerCertScript(2), (dir) => {
        fs.mkdirSync(path.join(dir, "swarm", "certificates"), { recursive: true });
        fs.writeFileSync(path.join(dir, "swarm", "certificates", "swarm-node.crt"), first);
        fs.writeFileSync(path.join(dir, "later"), later);
        return {
            docker: engineRuns ? `case "$*" in *DockerRootDir*) echo ${dir} ;; *ControlAvailable*) echo ${control} ;; esac`
                : "echo 'Cannot connect to the Docker daemon' >&2; exit 1",
            sleep: [
                `n=$(cat ${dir}/sleeps 2>/dev/null || echo 0); echo $((n + 1)) > ${dir}/sleeps`,
                `if [ "$n" -ge ${swapAt} ]; then cp ${dir}/later ${dir}/swarm/certificates/swarm-node.crt; fi`,
            ].join("\n"),
        };
    }, () => ({}));
}

test("a demoted node is waited for until it holds a worker's certificate (its own, the chain's first), its manager stopped", () => {
    // The manager's certificate, then the worker's: done once it is there.
    assert.equal(demoted(pem("swarm-manager"), pem("swarm-worker"), 2).status, 0);
    // A chain whose second certificate says worker is still a manager's.
    const chain = demoted(pem("swarm-manager") + pem("swarm-worker"), pem("swarm-manager") + pem("swarm-worker"), 0);
    assert.equal(chain.status, 1);
    assert.match(chain.stderr, /still holds a manager's certificate 2 s after its demotion; do not stop its engine/);
    // The worker's certificate while its manager still runs: not yet.
    assert.equal(demoted(pem("swarm-worker"), pem("swarm-worker"), 0, "true").status, 1);
    // An engine that does not run: nothing to wait for.
    assert.equal(demoted(pem("swarm-manager"), pem("swarm-manager"), 0, "false", false).status, 0);
});

test("a promotion that hits the CLI's deadline is waited for; any other error fails at once", () => {
    const late = role("manager", "Error response from daemon: context deadline exceeded", 1, "", "reachable");
    assert.deepEqual([late.status, late.log.length], [0, 3]);
    const refused = role("manager", "Error response from daemon: node n2 not found", 0, "", "reachable");
    assert.equal(refused.status, 1);
    assert.match(refused.stderr, /node n2 not found/);
    assert.deepEqual(refused.log, ["node promote"]);
});
