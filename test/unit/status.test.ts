/**
 * Status: the pure evaluation (health rules) and rendering (table, JSON, SVG) from fixture data
 * shaped as the nodes and a manager answer (docker info, docker node/service/task inspect JSON).
 */
import { test } from "node:test";
import * as assert from "node:assert/strict";
import { ClusterConfig, validateClusterConfig } from "../../lib/cluster-config";
import {
    CERT_MIN_DAYS, NODE_CERT_SCRIPT, registryScript, SNAPSHOT_SCRIPT, evaluateRegistry, evaluateStatus, NodeProbe, Observation, parseRegistryConfig, parseRegistryOutput,
    parseSharedMountOutput, parseSnapshotOutput, RegistryProbe, renderJson, renderSvg, renderTable, sharedMountScript, StatusReport, StatusSetupError,
    xmlEscape,
} from "../../lib/cluster-status";

// ================================================================== fixtures

const CHECKED_AT = "2026-11-24T12:00:00.000Z";

/** Three managers, two workers (one configured drained, with a label). */
function fixtureCluster(): ClusterConfig {
    return validateClusterConfig({
        environment: "test",
        ssh: { privateKeyFile: "/nonexistent/key" },
        nodes: [
            { hostname: "m1", address: "10.0.0.1", role: "manager", labels: { os: "linux" } },
            { hostname: "m2", address: "10.0.0.2", role: "manager", labels: { os: "linux" } },
            { hostname: "m3", address: "10.0.0.3", role: "manager", labels: { os: "linux" } },
            { hostname: "w1", address: "10.0.0.4", role: "worker", labels: { os: "linux", function: "production" } },
            { hostname: "w2", address: "10.0.0.5", role: "worker", availability: "drain", labels: { os: "linux", function: "production" } },
        ],
    }, "Pulumi.test.yaml").config;
}

const ID: Record<string, string> = { m1: "id-m1", m2: "id-m2", m3: "id-m3", w1: "id-w1", w2: "id-w2" };

function probe(hostname: string, state = "active", manager = hostname.startsWith("m")): NodeProbe {
    return {
        hostname,
        reachable: true,
        swarm: {
            state, nodeId: state === "active" ? ID[hostname] ?? `id-${hostname}` : "", nodeAddr: "", controlAvailable: state === "active" && manager,
            clusterId: "cluster-1", managers: 3, engineVersion: "24.0.7",
        },
    };
}

function downProbe(hostname: string): NodeProbe {
    return { hostname, reachable: false, error: `${hostname} (10.0.0.x): SSH connection failed: ssh: connect to host 10.0.0.x port 22: Connection timed out` };
}

interface NodeFixture {
    hostname: string;
    id?: string;
    role?: "manager" | "worker";
    availability?: string;
    state?: string;
    labels?: Record<string, string>;
    leader?: boolean;
    reachability?: string;
}

/** `docker node inspect` output for the given nodes. */
function nodeInspect(nodes: NodeFixture[]): unknown[] {
    return nodes.map((n) => {
        const role = n.role ?? (n.hostname.startsWith("m") ? "manager" : "worker");
        return {
            ID: n.id ?? ID[n.hostname] ?? `id-${n.hostname}`,
            Version: { Index: 42 },
            CreatedAt: "2026-11-20T10:00:00Z",
            Spec: { Labels: n.labels ?? {}, Role: role, Availability: n.availability ?? "active" },
            Description: { Hostname: n.hostname, Platform: { Architecture: "x86_64", OS: "linux" }, Engine: { EngineVersion: "24.0.7" } },
            Status: { State: n.state ?? "ready", Addr: "10.0.0.9" },
            ...(role === "manager" ? {
                ManagerStatus: { Leader: n.leader ?? false, Reachability: n.reachability ?? "reachable", Addr: "10.0.0.9:2377" },
            } : {}),
        };
    });
}

function serviceInspect(services: { id: string; name: string; replicas?: number; global?: boolean; stack?: string }[]): unknown[] {
    return services.map((s) => ({
        ID: s.id,
        Spec: {
            Name: s.name,
            Labels: s.stack ? { "com.docker.stack.namespace": s.stack } : {},
            TaskTemplate: { ContainerSpec: { Image: `registry.example:5000/${s.name}:1@sha256:0123abcd` } },
            Mode: s.global ? { Global: {} } : { Replicated: { Replicas: s.replicas ?? 1 } },
        },
    }));
}

interface TaskFixture { id: string; service: string; node?: string; slot?: number; state?: string; err?: string; desired?: string; at?: string }

function taskInspect(tasks: TaskFixture[]): unknown[] {
    return tasks.map((t) => ({
        ID: t.id,
        ServiceID: t.service,
        ...(t.node ? { NodeID: ID[t.node] ?? `id-${t.node}` } : {}),
        ...(t.slot ? { Slot: t.slot } : {}),
        Status: { Timestamp: t.at ?? "2026-11-24T11:00:00.123456789Z", State: t.state ?? "running", Message: t.state ?? "started", ...(t.err ? { Err: t.err } : {}) },
        DesiredState: t.desired ?? "running",
    }));
}

/** SNAPSHOT_SCRIPT's output for the given JSON arrays. */
function snapshotOutput(nodes: unknown[], services: unknown[], tasks: unknown[]): string {
    return ["@@nodes", JSON.stringify(nodes, null, 4), "@@services", JSON.stringify(services, null, 4), "@@tasks", JSON.stringify(tasks, null, 4)].join("\n") + "\n";
}

const REGISTRY_NONE: RegistryProbe = { configured: false };

/** All five nodes ready as configured; web 3/3, proxy global on the two active workers... */
function healthyObservation(): Observation {
    const nodes = nodeInspect([
        { hostname: "m1", leader: true, labels: { os: "linux" } },
        { hostname: "m2", labels: { os: "linux" } },
        { hostname: "m3", labels: { os: "linux" } },
        { hostname: "w1", labels: { os: "linux", function: "production" } },
        { hostname: "w2", availability: "drain", labels: { os: "linux", function: "production" } },
    ]);
    const services = serviceInspect([
        { id: "s-web", name: "app_web", replicas: 3, stack: "app" },
        { id: "s-mon", name: "monitor", global: true },
    ]);
    const tasks = taskInspect([
        { id: "t1", service: "s-web", node: "w1", slot: 1 },
        { id: "t2", service: "s-web", node: "m1", slot: 2 },
        { id: "t3", service: "s-web", node: "m2", slot: 3 },
        { id: "t4", service: "s-mon", node: "m1" },
        { id: "t5", service: "s-mon", node: "m2" },
        { id: "t6", service: "s-mon", node: "m3" },
        { id: "t7", service: "s-mon", node: "w1" },
        // History the swarm keeps: an earlier task of slot 1 that failed and was replaced.
        { id: "t0", service: "s-web", node: "w2", slot: 1, state: "failed", desired: "shutdown", err: "task: non-zero exit (137)" },
    ]);
    return {
        stack: "test",
        environment: "test",
        checkedAt: CHECKED_AT,
        probes: ["m1", "m2", "m3", "w1", "w2"].map((h) => probe(h)),
        snapshot: parseSnapshotOutput("m1", snapshotOutput(nodes, services, tasks)),
        registry: REGISTRY_NONE,
    };
}

/** Rebuild the observation's snapshot from edited node/service/task JSON. */
function withSnapshot(obs: Observation, nodes: unknown[], services: unknown[], tasks: unknown[]): Observation {
    return { ...obs, snapshot: parseSnapshotOutput(obs.snapshot?.manager ?? "m1", snapshotOutput(nodes, services, tasks)) };
}

function healthyParts() {
    const nodes: NodeFixture[] = [
        { hostname: "m1", leader: true, labels: { os: "linux" } },
        { hostname: "m2", labels: { os: "linux" } },
        { hostname: "m3", labels: { os: "linux" } },
        { hostname: "w1", labels: { os: "linux", function: "production" } },
        { hostname: "w2", availability: "drain", labels: { os: "linux", function: "production" } },
    ];
    const services = [
        { id: "s-web", name: "app_web", replicas: 3, stack: "app" },
        { id: "s-mon", name: "monitor", global: true },
    ];
    const tasks: TaskFixture[] = [
        { id: "t1", service: "s-web", node: "w1", slot: 1 },
        { id: "t2", service: "s-web", node: "m1", slot: 2 },
        { id: "t3", service: "s-web", node: "m2", slot: 3 },
        { id: "t4", service: "s-mon", node: "m1" },
        { id: "t5", service: "s-mon", node: "m2" },
        { id: "t6", service: "s-mon", node: "m3" },
        { id: "t7", service: "s-mon", node: "w1" },
    ];
    return { nodes, services, tasks };
}

function node(r: StatusReport, hostname: string) {
    const n = r.nodes.find((x) => x.hostname === hostname);
    assert.ok(n, `node ${hostname} in the report`);
    return n;
}

/**
 * A strict XML well-formedness check (no DTD): one root element, balanced and properly nested
 * tags, quoted and unique attributes, only the five predefined entities or character references,
 * no `<` or bare `&` in text or attribute values.
 */
function assertWellFormedXml(xml: string): { root: string; elements: number } {
    const entity = /&(amp|lt|gt|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);/y;
    const checkText = (s: string, where: string) => {
        for (let i = 0; i < s.length; i++) {
            if (s[i] === "<") throw new Error(`'<' in ${where}`);
            if (s[i] === "&") {
                entity.lastIndex = i;
                if (!entity.test(s)) throw new Error(`bare '&' in ${where}: ${s.slice(i, i + 12)}`);
            }
        }
    };
    let i = 0;
    const stack: string[] = [];
    let root = "";
    let elements = 0;
    let rootClosed = false;
    if (xml.startsWith("<?xml")) {
        const end = xml.indexOf("?>");
        assert.ok(end > 0, "XML declaration closed");
        i = end + 2;
    }
    while (i < xml.length) {
        const lt = xml.indexOf("<", i);
        const text = xml.slice(i, lt === -1 ? xml.length : lt);
        if (stack.length === 0 && text.trim() !== "") throw new Error(`text outside the root element: ${text.trim().slice(0, 40)}`);
        checkText(text, "text");
        if (lt === -1) break;
        if (xml.startsWith("<!--", lt)) {
            const end = xml.indexOf("-->", lt + 4);
            if (end < 0) throw new Error("unclosed comment");
            i = end + 3;
            continue;
        }
        const gt = xml.indexOf(">", lt);
        if (gt < 0) throw new Error("unclosed tag");
        const tag = xml.slice(lt + 1, gt);
        i = gt + 1;
        if (tag.startsWith("/")) {
            const name = tag.slice(1).trim();
            const open = stack.pop();
            if (open !== name) throw new Error(`</${name}> closes <${open}>`);
            if (stack.length === 0) rootClosed = true;
            continue;
        }
        const selfClosing = tag.endsWith("/");
        const body = selfClosing ? tag.slice(0, -1) : tag;
        const m = /^([A-Za-z_][\w.:-]*)([\s\S]*)$/.exec(body);
        if (!m) throw new Error(`bad tag <${tag}>`);
        const [, name, attrs] = m;
        const seen = new Set<string>();
        const attrRe = /\s+([A-Za-z_][\w.:-]*)="([^"]*)"/y;
        let pos = 0;
        while (pos < attrs.trimEnd().length) {
            attrRe.lastIndex = pos;
            const a = attrRe.exec(attrs);
            if (!a) throw new Error(`bad attributes in <${name}${attrs}>`);
            if (seen.has(a[1])) throw new Error(`duplicate attribute ${a[1]} in <${name}>`);
            seen.add(a[1]);
            checkText(a[2], `attribute ${a[1]}`);
            pos = attrRe.lastIndex;
        }
        if (stack.length === 0) {
            if (root) throw new Error(`second root element <${name}>`);
            root = name;
        }
        elements++;
        if (!selfClosing) stack.push(name);
        else if (stack.length === 0) rootClosed = true;
    }
    if (stack.length > 0) throw new Error(`unclosed <${stack.join("> <")}>`);
    assert.ok(rootClosed, "root element closed");
    return { root, elements };
}

// ================================================================== evaluation

test("a cluster as configured is healthy: nodes Ready, quorum with margin, services at their count", () => {
    const r = evaluateStatus(fixtureCluster(), healthyObservation());
    assert.deepEqual(r.problems, []);
    assert.equal(r.healthy, true);
    assert.deepEqual(r.nodes.map((n) => [n.hostname, n.state, n.ready, n.role, n.availability]), [
        ["m1", "Ready", true, "manager", "active"],
        ["m2", "Ready", true, "manager", "active"],
        ["m3", "Ready", true, "manager", "active"],
        ["w1", "Ready", true, "worker", "active"],
        ["w2", "Ready", true, "worker", "drain"],
    ]);
    assert.equal(node(r, "m1").managerStatus, "leader");
    assert.deepEqual({ ...r.quorum }, { managers: 3, configuredManagers: 3, reachable: 3, needed: 2, margin: 1, leader: "m1", ok: true, readFrom: "m1" });
    const web = r.services.find((s) => s.name === "app_web");
    assert.ok(web);
    assert.equal(web.desired, 3);
    assert.equal(web.running, 3);
    assert.equal(web.stack, "app");
    assert.equal(web.image, "registry.example:5000/app_web:1", "the digest is left out");
    assert.deepEqual(web.tasks.map((t) => [t.slot, t.node]), [[1, "w1"], [2, "m1"], [3, "m2"]]);
    const mon = r.services.find((s) => s.name === "monitor");
    assert.ok(mon);
    assert.equal(mon.mode, "global");
    assert.equal(mon.desired, 4);
    assert.equal(mon.running, 4);
    assert.equal(r.registry.status, "not configured");
    assert.equal(r.registry.healthy, true);
    assert.equal(r.swarm.exists, true);
});

test("a node whose SSH does not answer is Down and the cluster unhealthy; losing one of three managers keeps the quorum", () => {
    const { nodes, services, tasks } = healthyParts();
    nodes[2] = { ...nodes[2], state: "down", reachability: "unreachable" };
    let obs = withSnapshot(healthyObservation(), nodeInspect(nodes), serviceInspect(services), taskInspect(tasks.filter((t) => t.node !== "m3")));
    obs = { ...obs, probes: obs.probes.map((p) => (p.hostname === "m3" ? downProbe("m3") : p)) };
    const r = evaluateStatus(fixtureCluster(), obs);
    assert.equal(r.healthy, false);
    const m3 = node(r, "m3");
    assert.equal(m3.state, "Down");
    assert.equal(m3.ready, false);
    assert.equal(m3.ssh.ok, false);
    assert.match(m3.ssh.error ?? "", /Connection timed out/);
    assert.equal(m3.managerStatus, "unreachable");
    assert.ok(r.problems.some((p) => /^m3 is Down: .*SSH connection failed/.test(p)), r.problems.join("\n"));
    assert.equal(r.quorum.ok, true);
    assert.equal(r.quorum.reachable, 2);
    assert.equal(r.quorum.margin, 0);
    // The global service no longer wants a task on the down node: it is not a second problem.
    assert.equal(r.services.find((s) => s.name === "monitor")?.healthy, true);
});

test("a node Down in the swarm whose SSH still answers is Down, and its running tasks do not count", () => {
    const { nodes, services, tasks } = healthyParts();
    nodes[3] = { ...nodes[3], state: "down" };
    const obs = withSnapshot(healthyObservation(), nodeInspect(nodes), serviceInspect(services), taskInspect(tasks));
    const r = evaluateStatus(fixtureCluster(), obs);
    assert.equal(node(r, "w1").state, "Down");
    assert.ok(r.problems.includes("w1 is down in the swarm"), r.problems.join("\n"));
    const web = r.services.find((s) => s.name === "app_web");
    assert.equal(web?.running, 2);
    assert.equal(web?.healthy, false);
    assert.ok(r.problems.some((p) => p.startsWith("service app_web: 2/3 running")), r.problems.join("\n"));
});

test("two of three managers lost: the quorum is gone and the margin negative", () => {
    const { nodes, services, tasks } = healthyParts();
    nodes[1] = { ...nodes[1], state: "down", reachability: "unreachable" };
    nodes[2] = { ...nodes[2], state: "down", reachability: "unreachable" };
    const obs = withSnapshot(healthyObservation(), nodeInspect(nodes), serviceInspect(services), taskInspect(tasks));
    const r = evaluateStatus(fixtureCluster(), obs);
    assert.equal(r.quorum.ok, false);
    assert.equal(r.quorum.reachable, 1);
    assert.equal(r.quorum.needed, 2);
    assert.equal(r.quorum.margin, -1);
    assert.ok(r.problems.some((p) => /manager quorum lost: 1 of 3 managers reachable, 2 needed/.test(p)));
});

test("no manager with a quorum to ask: reachable nodes are Unknown, the quorum not available", () => {
    const obs: Observation = {
        ...healthyObservation(),
        snapshot: undefined,
        swarmError: "no reachable swarm manager with a quorum: m1: manager without quorum (Error response from daemon: rpc error: code = Unknown desc = The swarm does not have a leader.)",
        probes: [probe("m1"), downProbe("m2"), downProbe("m3"), probe("w1"), probe("w2")],
    };
    const r = evaluateStatus(fixtureCluster(), obs);
    assert.equal(r.healthy, false);
    assert.deepEqual(r.nodes.map((n) => n.state), ["Unknown", "Down", "Down", "Unknown", "Unknown"]);
    assert.equal(r.nodes.filter((n) => n.ready).length, 0);
    assert.equal(r.quorum.ok, false);
    assert.equal(r.quorum.reachable, 1);
    assert.equal(r.quorum.managers, 3);
    assert.equal(r.quorum.margin, -1);
    assert.match(r.quorum.error ?? "", /does not have a leader/);
    assert.deepEqual(r.services, []);
});

test("a node that is not in the swarm is Absent, not Ready; no swarm at all is reported as such", () => {
    const { nodes, services, tasks } = healthyParts();
    let obs = withSnapshot(healthyObservation(), nodeInspect(nodes.filter((n) => n.hostname !== "w1")), serviceInspect(services),
        taskInspect(tasks.filter((t) => t.node !== "w1")));
    obs = { ...obs, probes: obs.probes.map((p) => (p.hostname === "w1" ? probe("w1", "inactive") : p)) };
    const r = evaluateStatus(fixtureCluster(), obs);
    assert.equal(node(r, "w1").state, "Absent");
    assert.equal(node(r, "w1").ready, false);
    assert.equal(node(r, "w1").localSwarmState, "inactive");
    assert.ok(r.problems.some((p) => /^w1 is not in the swarm/.test(p)));

    const none: Observation = {
        ...healthyObservation(), snapshot: undefined, swarmError: "no reachable node is in a swarm",
        probes: ["m1", "m2", "m3", "w1", "w2"].map((h) => probe(h, "inactive")),
    };
    const n = evaluateStatus(fixtureCluster(), none);
    assert.equal(n.swarm.exists, false);
    assert.deepEqual(n.nodes.map((x) => x.state), ["Absent", "Absent", "Absent", "Absent", "Absent"]);
    assert.equal(n.quorum.ok, false);
    assert.equal(n.quorum.reachable, 0);
    assert.equal(n.healthy, false);
});

test("role and availability other than configured are problems; label drift is a warning only", () => {
    const { nodes, services, tasks } = healthyParts();
    nodes[3] = { ...nodes[3], availability: "pause" };
    nodes[4] = { ...nodes[4], role: "manager", reachability: "reachable" };
    let obs = withSnapshot(healthyObservation(), nodeInspect(nodes), serviceInspect(services), taskInspect(tasks));
    let r = evaluateStatus(fixtureCluster(), obs);
    assert.ok(r.problems.includes("w1 availability is pause, configured active"), r.problems.join("\n"));
    assert.ok(r.problems.includes("w2 is a manager, configured as worker"), r.problems.join("\n"));
    assert.equal(r.quorum.managers, 4);
    assert.match(renderTable(r), /manager \[config: worker\]/);

    const labelled = healthyParts();
    labelled.nodes[3] = { ...labelled.nodes[3], labels: { os: "linux", function: "test", extra: "1" } };
    labelled.nodes[4] = { ...labelled.nodes[4], labels: { os: "linux" } };
    obs = withSnapshot(healthyObservation(), nodeInspect(labelled.nodes), serviceInspect(labelled.services), taskInspect(labelled.tasks));
    r = evaluateStatus(fixtureCluster(), obs);
    assert.equal(r.healthy, true, r.problems.join("\n"));
    assert.ok(r.warnings.includes("w1 labels differ from the config: function=test (configured production)"), r.warnings.join("\n"));
    assert.ok(r.warnings.includes("w2 labels differ from the config: function missing"), r.warnings.join("\n"));
    assert.deepEqual(node(r, "w1").labels, { os: "linux", function: "test", extra: "1" });
});

test("a replicated service short of its count is a problem naming the scheduler's reason", () => {
    const { nodes, services, tasks } = healthyParts();
    tasks[0] = { ...tasks[0], state: "pending", node: undefined, err: "no suitable node (scheduling constraints not satisfied on 5 nodes)" };
    tasks[1] = { ...tasks[1], state: "starting" };
    const obs = withSnapshot(healthyObservation(), nodeInspect(nodes), serviceInspect(services), taskInspect(tasks));
    const r = evaluateStatus(fixtureCluster(), obs);
    const web = r.services.find((s) => s.name === "app_web");
    assert.equal(web?.running, 1);
    assert.equal(web?.healthy, false);
    assert.deepEqual(web?.tasks.map((t) => [t.node, t.state]), [["", "pending"], ["m1", "starting"], ["m2", "running"]]);
    const problem = r.problems.find((p) => p.startsWith("service app_web:"));
    assert.ok(problem);
    assert.match(problem, /1\/3 running \(no suitable node \(scheduling constraints not satisfied on 5 nodes\); starting\)/);
    assert.match(renderTable(r), /\(unscheduled\):pending/);
});

test("zero replicas wanted and zero running is healthy", () => {
    const { nodes, tasks } = healthyParts();
    const obs = withSnapshot(healthyObservation(), nodeInspect(nodes),
        serviceInspect([{ id: "s-web", name: "app_web", replicas: 0 }, { id: "s-mon", name: "monitor", global: true }]),
        taskInspect(tasks.filter((t) => t.service !== "s-web")));
    const r = evaluateStatus(fixtureCluster(), obs);
    assert.equal(r.services.find((s) => s.name === "app_web")?.healthy, true);
    assert.equal(r.healthy, true, r.problems.join("\n"));
});

test("nodes in the swarm but not in the config, and stale entries of a configured node, are warnings", () => {
    const { nodes, services, tasks } = healthyParts();
    const obs = withSnapshot(healthyObservation(), nodeInspect([
        ...nodes,
        { hostname: "w1", id: "id-w1-old", state: "down", labels: {} },
        { hostname: "stray", id: "id-stray", role: "worker" },
    ]), serviceInspect(services), taskInspect([...tasks, { id: "t9", service: "s-mon", node: "stray" }]));
    const r = evaluateStatus(fixtureCluster(), obs);
    assert.equal(node(r, "w1").swarmNodeId, "id-w1", "the node's own entry, by its node ID");
    assert.equal(node(r, "w1").state, "Ready");
    const stray = node(r, "stray");
    assert.equal(stray.configured, false);
    assert.equal(stray.state, "Ready");
    assert.ok(r.warnings.some((w) => /^stray \(id-stray, ready\) is in the swarm but not in the stack config/.test(w)), r.warnings.join("\n"));
    assert.ok(r.warnings.some((w) => /1 other node entry named w1 \(id-w1-old down\)/.test(w)), r.warnings.join("\n"));
    assert.equal(r.healthy, true, r.problems.join("\n"));
    assert.equal(r.services.find((s) => s.name === "monitor")?.running, 5);
});

test("parseSnapshotOutput refuses a cut-short answer and keeps the task history", () => {
    assert.throws(() => parseSnapshotOutput("m1", "@@nodes\n[]\n@@services\n[]\n"), /no tasks section/);
    assert.throws(() => parseSnapshotOutput("m1", "@@nodes\n[{\n@@services\n[]\n@@tasks\n[]\n"), /nodes section is not JSON/);
    const s = parseSnapshotOutput("m1", "@@nodes\n\n@@services\n[]\n@@tasks\n" + JSON.stringify([
        { ID: "a", ServiceID: "s", NodeID: "n", Status: { State: "running" }, DesiredState: "running" },
        { ID: "b", ServiceID: "s", NodeID: "n", Status: { State: "shutdown" }, DesiredState: "shutdown" },
    ]));
    assert.deepEqual(s.nodes, []);
    assert.deepEqual(s.tasks.map((t) => [t.id, t.desiredState]), [["a", "running"], ["b", "shutdown"]]);
});

// ================================================================== registry

test("registry config: absent is not configured; { host, port } is read; a bad value is refused", () => {
    assert.equal(parseRegistryConfig(undefined, "Pulumi.x.yaml"), undefined);
    assert.deepEqual(parseRegistryConfig({ host: "docker-registry.dccn.nl", port: 5000 }, "Pulumi.x.yaml"), { host: "docker-registry.dccn.nl", port: 5000 });
    assert.deepEqual(parseRegistryConfig({ host: "reg.lab", port: "443", extra: true }, "Pulumi.x.yaml"), { host: "reg.lab", port: 443 });
    assert.deepEqual(parseRegistryConfig({ host: "reg.lab" }, "Pulumi.x.yaml"), { host: "reg.lab", port: 5000 });
    assert.throws(() => parseRegistryConfig("reg.lab:5000", "Pulumi.x.yaml"), (e: Error) => e instanceof StatusSetupError && /dccn-swarm:registry: must be a map/.test(e.message));
    assert.throws(() => parseRegistryConfig({ host: "reg.lab", port: 70000 }, "Pulumi.x.yaml"), /registry\.port: must be a port number/);
    assert.throws(() => parseRegistryConfig({ host: "bad host;rm", port: 5000 }, "Pulumi.x.yaml"), /registry\.host/);
});

const NOW = new Date(CHECKED_AT);
const DAY = 86_400;
const nowSec = Math.floor(NOW.getTime() / 1000);

test("registry answering 200 or 401 with a certificate valid for more than 14 days is healthy", () => {
    for (const http of [200, 401]) {
        const out = `ca=/etc/docker/certs.d/reg.lab:5000/ca.crt\ncurl_rc=0\nhttp=${http}\ncurl_err=\nnotafter=Feb 22 12:00:00 2027 GMT\nnotafter_epoch=${nowSec + 90 * DAY}\n`;
        const p = parseRegistryOutput({ host: "reg.lab", port: 5000 }, "m1", out);
        const r = evaluateRegistry(p, NOW);
        assert.equal(r.healthy, true, r.problems.join("\n"));
        assert.equal(r.status, "ok");
        assert.equal(r.answering, true);
        assert.equal(r.tlsVerified, true);
        assert.equal(r.certDaysLeft, 90);
        assert.equal(r.url, "https://reg.lab:5000/v2/");
        assert.equal(r.caFile, "/etc/docker/certs.d/reg.lab:5000/ca.crt");
        assert.equal(r.checkedFrom, "m1");
    }
    // Without an epoch from the node, openssl's date is parsed here.
    const p = parseRegistryOutput({ host: "reg.lab", port: 5000 }, "m1", "curl_rc=0\nhttp=401\nnotafter=Feb 22 12:00:00 2027 GMT\n");
    assert.equal(evaluateRegistry(p, NOW).certDaysLeft, 90);
});

test("registry certificate at 14 days or fewer, expired, unreadable, not verifying, or no answer: unhealthy", () => {
    const reg = { host: "reg.lab", port: 5000 };
    const check = (out: string) => evaluateRegistry(parseRegistryOutput(reg, "m1", out), NOW);
    let r = check(`curl_rc=0\nhttp=200\nnotafter=x\nnotafter_epoch=${nowSec + CERT_MIN_DAYS * DAY}\n`);
    assert.equal(r.healthy, false);
    assert.equal(r.certDaysLeft, 14);
    assert.match(r.problems.join(), /certificate expires x \(14 days; more than 14 needed\)/);
    assert.equal(check(`curl_rc=0\nhttp=200\nnotafter=x\nnotafter_epoch=${nowSec + 15 * DAY}\n`).healthy, true);
    r = check(`curl_rc=0\nhttp=200\nnotafter=x\nnotafter_epoch=${nowSec - 3 * DAY}\n`);
    assert.match(r.problems.join(), /certificate expired x \(-3 days/);
    r = check("curl_rc=0\nhttp=200\nnotafter=\n");
    assert.match(r.problems.join(), /could not read its certificate's expiry date/);
    r = check("curl_rc=7\nhttp=000\ncurl_err=curl: (7) Failed to connect to reg.lab port 5000: Connection refused\nnotafter=\n");
    assert.equal(r.answering, false);
    assert.equal(r.healthy, false);
    assert.match(r.problems.join(), /https:\/\/reg\.lab:5000\/v2\/ does not answer 200 or 401: curl: \(7\) Failed to connect.*\(checked from m1\)/);
    assert.equal(r.problems.length, 1, "no expiry complaint when nothing answers");
    r = check(`ca=none\ncurl_rc=60\nhttp=000\ncurl_err=curl: (60) SSL certificate problem: self-signed certificate\nhttp_insecure=401\nnotafter=x\nnotafter_epoch=${nowSec + 300 * DAY}\n`);
    assert.equal(r.answering, true);
    assert.equal(r.tlsVerified, false);
    assert.equal(r.httpStatus, 401);
    assert.match(r.problems.join(), /does not verify on m1 \(no \/etc\/docker\/certs.d CA there\): curl: \(60\)/);
    r = check("curl_rc=0\nhttp=503\nnotafter=x\nnotafter_epoch=" + (nowSec + 300 * DAY) + "\n");
    assert.match(r.problems.join(), /does not answer 200 or 401 \(HTTP 503\)/);
    r = check("curl_rc=127\nnotafter=\n");
    assert.match(r.problems.join(), /curl is not installed on m1/);
    r = evaluateRegistry({ configured: true, host: "reg.lab", port: 5000, error: "no node could be reached to check the registry from" }, NOW);
    assert.equal(r.healthy, false);
    assert.equal(r.status, "unhealthy");
});

test("an unhealthy registry makes the cluster unhealthy; not configured does not", () => {
    const obs = healthyObservation();
    const probe: RegistryProbe = { configured: true, host: "reg.lab", port: 443, checkedFrom: "m1", httpStatus: 401, tlsVerified: true, notAfter: "soon", notAfterEpoch: nowSec + 2 * DAY };
    const r = evaluateStatus(fixtureCluster(), { ...obs, registry: probe });
    assert.equal(r.healthy, false);
    assert.equal(r.registry.url, "https://reg.lab/v2/");
    assert.ok(r.problems.some((p) => /^registry reg\.lab: certificate expires soon \(2 days/.test(p)), r.problems.join("\n"));
    assert.equal(evaluateStatus(fixtureCluster(), obs).healthy, true);
});

// ================================================================== rendering

function unhealthyReport(): StatusReport {
    const { nodes, services, tasks } = healthyParts();
    nodes[4] = { ...nodes[4], labels: { os: "linux", "function": "a<b&c\"d'" } };
    nodes[3] = { ...nodes[3], state: "down" };
    let obs = withSnapshot(healthyObservation(), nodeInspect(nodes), serviceInspect([...services, { id: "s-x", name: "db<&>", replicas: 1 }]),
        taskInspect([...tasks, { id: "t8", service: "s-x", state: "pending", err: "no suitable node <x> & \"y\"" }]));
    obs = { ...obs, probes: obs.probes.map((p) => (p.hostname === "w1" ? downProbe("w1") : p)) };
    return evaluateStatus(fixtureCluster(), obs);
}

test("the table lists every node, the managers' quorum, every service and the registry", () => {
    const healthy = renderTable(evaluateStatus(fixtureCluster(), healthyObservation()));
    assert.match(healthy, /^dccn-swarm status: stack test \(environment test\) at 2026-11-24T12:00:00.000Z: HEALTHY\n/);
    for (const h of ["m1", "m2", "m3", "w1", "w2"]) assert.match(healthy, new RegExp(`^${h}\\s+10\\.0\\.0\\.\\d\\s+Ready`, "m"));
    assert.match(healthy, /^m1 .*manager \(leader\)\s+active\s+24\.0\.7\s+os=linux/m);
    assert.match(healthy, /^w2 .*worker\s+drain\s+24\.0\.7\s+function=production,os=linux/m);
    assert.match(healthy, /MANAGERS {2}3 of 3 reachable \(configured 3\), quorum 2, margin 1 \(may lose 1 more\), leader m1, read from m1/);
    assert.match(healthy, /^app_web\s+replicated\s+3\/3\s+ok\s+w1,m1,m2\s+registry\.example:5000\/app_web:1$/m);
    assert.match(healthy, /^monitor\s+global\s+4\/4\s+ok\s+m1,m2,m3,w1/m);
    assert.match(healthy, /^REGISTRY {2}registry: not configured$/m);
    assert.doesNotMatch(healthy, /PROBLEMS/);

    const bad = renderTable(unhealthyReport());
    assert.match(bad, /: UNHEALTHY\n/);
    assert.match(bad, /^w1\s+10\.0\.0\.4\s+Down .*ssh: w1 \(10\.0\.0\.x\): SSH connection failed/m);
    assert.match(bad, /^PROBLEMS\n {2}- w1 is Down: /m);
    assert.match(bad, /^db<&>\s+replicated\s+0\/1\s+NO\s+\(unscheduled\):pending/m);
});

test("the JSON carries the whole report with a stable shape", () => {
    const report = unhealthyReport();
    const j = JSON.parse(renderJson(report));
    assert.deepEqual(j, JSON.parse(JSON.stringify(report)));
    assert.equal(j.healthy, false);
    assert.deepEqual(Object.keys(j).sort(), ["checkedAt", "environment", "healthy", "nodes", "problems", "project", "quorum", "registry", "security", "services", "stack", "swarm", "warnings"]);
    for (const n of j.nodes) {
        for (const k of ["hostname", "address", "configured", "state", "ready", "ssh", "labels", "configuredLabels", "problems", "warnings"]) {
            assert.ok(k in n, `node field ${k}`);
        }
    }
    for (const k of ["managers", "configuredManagers", "reachable", "needed", "margin", "ok"]) assert.ok(k in j.quorum, `quorum field ${k}`);
    for (const s of j.services) for (const k of ["name", "mode", "desired", "running", "healthy", "tasks"]) assert.ok(k in s, `service field ${k}`);
    assert.deepEqual(j.registry, { configured: false, status: "not configured", healthy: true, problems: [] });
    assert.equal(j.nodes.find((n: { hostname: string }) => n.hostname === "w1").state, "Down");
});

test("the SVG is well-formed and shows every node (grouped), its role, labels, availability, and where each service runs", () => {
    for (const report of [evaluateStatus(fixtureCluster(), healthyObservation()), unhealthyReport()]) {
        const svg = renderSvg(report);
        const { root, elements } = assertWellFormedXml(svg);
        assert.equal(root, "svg");
        assert.ok(elements > 20);
        assert.match(svg, /<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg" width="\d+" height="\d+" viewBox="0 0 \d+ \d+"/);
        assert.doesNotMatch(svg, /<script|href=/, "self-contained, no scripts or links");
        for (const n of report.nodes) assert.ok(svg.includes(`id="node-${n.hostname}"`), `node ${n.hostname}`);
        for (const s of report.services) assert.ok(svg.includes(`id="service-${xmlEscape(s.name)}"`), `service ${s.name}`);
        // Managers group before workers, each holding its nodes.
        const managers = svg.indexOf('id="group-managers"');
        const workers = svg.indexOf('id="group-workers"');
        assert.ok(managers > 0 && workers > managers);
        for (const h of ["m1", "m2", "m3"]) assert.ok(svg.indexOf(`id="node-${h}"`) > managers && svg.indexOf(`id="node-${h}"`) < workers);
        for (const h of ["w1", "w2"]) assert.ok(svg.indexOf(`id="node-${h}"`) > workers);
        assert.match(svg, /Managers \(3\)/);
        assert.match(svg, /Workers \(2\)/);
        assert.match(svg, />role: manager \(leader\)</);
        assert.match(svg, />availability: drain</);
        assert.match(svg, />os=linux</);
        // The node card of m1 lists the services whose tasks it runs.
        const m1 = svg.slice(svg.indexOf('id="node-m1"'), svg.indexOf("</g>", svg.indexOf('id="node-m1"')));
        assert.match(m1, />app_web</);
        assert.match(m1, />monitor</);
    }
    const bad = renderSvg(unhealthyReport());
    assert.match(bad, /function=a&lt;b&amp;c&quot;d&apos;/);
    assert.match(bad, /function=production \(missing\)/, "label drift shown on the card");
    assert.match(bad, /UNHEALTHY/);
    assert.match(bad, /Problems \(\d+\)/);
    const w1 = bad.slice(bad.indexOf('id="node-w1"'), bad.indexOf("</g>", bad.indexOf('id="node-w1"')));
    assert.match(w1, />Down</);
    assert.match(w1, /stroke="#c62828"/);
});

test("the SVG of a cluster without a swarm still shows the configured nodes and labels", () => {
    const none: Observation = {
        ...healthyObservation(), snapshot: undefined, swarmError: "no reachable node is in a swarm",
        probes: ["m1", "m2", "m3", "w1", "w2"].map((h) => (h === "w2" ? downProbe(h) : probe(h, "inactive"))),
    };
    const svg = renderSvg(evaluateStatus(fixtureCluster(), none));
    assertWellFormedXml(svg);
    for (const h of ["m1", "m2", "m3", "w1", "w2"]) assert.ok(svg.includes(`id="node-${h}"`));
    assert.match(svg, /labels \(configured\):/);
    assert.match(svg, />role: manager \(configured\)</);
    assert.match(svg, />availability: drain \(configured\)</);
    assert.match(svg, /unknown: the swarm could not be read/);
    assert.match(svg, /QUORUM NOT AVAILABLE/);
});

test("the well-formedness check itself rejects broken XML", () => {
    assert.throws(() => assertWellFormedXml("<svg><g></svg>"), /closes/);
    assert.throws(() => assertWellFormedXml("<svg><text>a & b</text></svg>"), /bare '&'/);
    assert.throws(() => assertWellFormedXml('<svg a="1" a="2"/>'), /duplicate attribute/);
    assert.throws(() => assertWellFormedXml("<svg/><svg/>"), /second root/);
    assert.throws(() => assertWellFormedXml("<svg><text>a</text>"), /unclosed/);
    assert.doesNotThrow(() => assertWellFormedXml('<?xml version="1.0"?>\n<svg x="&amp;"><t>&#x41;&lt;</t></svg>\n'));
});

test("what runs on the nodes only reads: no docker command that changes the swarm, a node or a service", () => {
    const scripts = [SNAPSHOT_SCRIPT, NODE_CERT_SCRIPT, registryScript({ host: "reg.lab", port: 5000 })];
    for (const sc of scripts) {
        const docker = sc.match(/docker\s+[a-z]+(\s+[a-z]+)?/g) ?? [];
        for (const d of docker) {
            assert.match(d, /^docker\s+(node (ls|inspect)|service (ls|inspect|ps)|inspect|info)\b/, `read-only docker call: ${d}`);
        }
        assert.doesNotMatch(sc, /\b(rm -rf|systemctl|swarm (init|join|leave)|update|promote|demote|kill)\b/);
    }
    // The registry's host and port reach the script quoted.
    assert.match(registryScript({ host: "reg.lab", port: 5000 }), /^host='reg\.lab'$/m);
});

test("a failing service: replacements waiting out their restart delay are not running, and the last failure is named", () => {
    const { nodes, services, tasks } = healthyParts();
    const web = tasks.filter((t) => t.service !== "s-web");
    web.push(
        { id: "r1", service: "s-web", node: "w1", slot: 1, state: "ready", desired: "ready" },
        { id: "r2", service: "s-web", node: "m1", slot: 2, state: "running" },
        { id: "r3", service: "s-web", node: "m2", slot: 3, state: "pending", desired: "ready" },
        { id: "h1", service: "s-web", node: "w1", slot: 1, state: "failed", desired: "shutdown", err: "task: non-zero exit (1)", at: "2026-11-24T11:59:58.5Z" },
        { id: "h2", service: "s-web", node: "m2", slot: 3, state: "failed", desired: "shutdown", err: "older failure", at: "2026-11-24T11:59:50.123456789Z" },
        { id: "h3", service: "s-web", node: "w1", slot: 1, state: "shutdown", desired: "shutdown", at: "2026-11-24T11:59:59Z" },
    );
    const obs = withSnapshot(healthyObservation(), nodeInspect(nodes), serviceInspect(services), taskInspect(web));
    const r = evaluateStatus(fixtureCluster(), obs);
    const s = r.services.find((x) => x.name === "app_web");
    assert.equal(s?.running, 1);
    assert.equal(s?.desired, 3);
    assert.deepEqual(s?.tasks.map((t) => [t.slot, t.node, t.state]), [[1, "w1", "ready"], [2, "m1", "running"], [3, "m2", "pending"]],
        "only the tasks meant to run are placed");
    assert.ok(r.problems.includes("service app_web: 1/3 running (ready; pending; last failure: task: non-zero exit (1))"), r.problems.join("\n"));
    // A history failure already named by a current task is not repeated.
    const noimg = withSnapshot(healthyObservation(), nodeInspect(nodes), serviceInspect([{ id: "s-x", name: "x", replicas: 1 }]), taskInspect([
        { id: "a", service: "s-x", node: "w1", slot: 1, state: "rejected", err: "No such image: x:1" },
        { id: "b", service: "s-x", node: "w1", slot: 1, state: "rejected", desired: "shutdown", err: "No such image: x:1" },
    ]));
    assert.ok(evaluateStatus(fixtureCluster(), noimg).problems.includes("service x: 0/1 running (No such image: x:1)"));
});

// ================================================================== shared storage

const SHARED = { path: "/mnt/docker", timeout: 7 };

test("the shared mount check's output: ok with its type; missing, read-only, hanging, not writable by the script's error code", () => {
    assert.deepEqual(parseSharedMountOutput(SHARED, "DCCN_RESULT changed=0 path=/mnt/docker mode=existing fstab=none mounted=0 fstype=nfs4\n", "shared-storage: m1: ok\n"),
        { path: "/mnt/docker", timeout: 7, state: "ok", fstype: "nfs4" });
    const failed = (code: string, message: string) => parseSharedMountOutput(SHARED, `DCCN_RESULT changed=0 error=${code}\n`, `shared-storage: error: ${message}\n`);
    assert.deepEqual(failed("not-mounted", "w1: /mnt/docker is not a mount point: mount it"),
        { path: "/mnt/docker", timeout: 7, state: "missing", detail: "w1: /mnt/docker is not a mount point: mount it" });
    assert.equal(failed("read-only", "m2: /mnt/docker is mounted read-only (nfs)").state, "read-only");
    assert.equal(failed("not-answering", "w2: /mnt/docker (nfs) did not answer within 7 s").state, "not-answering");
    assert.equal(failed("not-writable", "w2: root cannot create a file").state, "not-writable");
    assert.equal(failed("unexpected", "something else").state, "unknown");
    assert.equal(parseSharedMountOutput(SHARED, "", "bash: timeout: command not found\n").state, "unknown");
});

test("the shared mount check only checks: no NFS source, so it never mounts; the time-out reaches it", () => {
    const sc = sharedMountScript(SHARED);
    assert.match(sc, /^CHECK_TIMEOUT='7' SHARED_PATH='\/mnt\/docker' bash "\$dccn_f" <\/dev\/null$/m);
    assert.doesNotMatch(sc.split("\n").filter((l) => l.includes('bash "$dccn_f"')).join("\n"), /NFS_SOURCE/);
});

test("a shared mount that is missing, read-only or hanging makes the cluster unhealthy, naming the node and the path", () => {
    const obs = healthyObservation();
    const ok = { ...SHARED, state: "ok" as const, fstype: "nfs" };
    for (const p of obs.probes) p.sharedStorage = ok;
    const healthy = evaluateStatus(fixtureCluster(), obs);
    assert.deepEqual(healthy.problems, []);
    assert.deepEqual(node(healthy, "w1").sharedStorage, ok);
    assert.match(renderTable(healthy), /SHARED/);
    assert.match(renderTable(healthy), /^m1 .* ok \(nfs\) /m);

    obs.probes.find((p) => p.hostname === "w1")!.sharedStorage = { ...SHARED, state: "not-answering", detail: "w1: /mnt/docker (nfs) did not answer within 7 s" };
    obs.probes.find((p) => p.hostname === "m2")!.sharedStorage = { ...SHARED, state: "read-only" };
    obs.probes.find((p) => p.hostname === "w2")!.sharedStorage = { ...SHARED, state: "missing" };
    const r = evaluateStatus(fixtureCluster(), obs);
    assert.equal(r.healthy, false);
    assert.deepEqual(r.problems, [
        "m2: shared storage /mnt/docker is read-only",
        "w1: shared storage /mnt/docker does not answer within 7 s (a hanging mount): w1: /mnt/docker (nfs) did not answer within 7 s",
        "w2: shared storage /mnt/docker is missing (not a mount point)",
    ]);
    const table = renderTable(r);
    assert.match(table, /^w1 .* NOT ANSWERING \(7 s\) /m);
    assert.match(table, /^m2 .* READ-ONLY /m);
    assert.match(renderSvg(r), /shared \/mnt\/docker: NOT ANSWERING/);
    assert.equal(JSON.parse(renderJson(r)).nodes.find((n: { hostname: string }) => n.hostname === "w1").sharedStorage.state, "not-answering");
});
