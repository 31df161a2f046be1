/**
 * Engine API objects built from converted compose stacks (compose/convert.ts, listed by
 * lib/engine-spec.ts engineStack): the DCCN stacks and
 * the Docker CLI's full-example.yml, field by field as `docker stack deploy` sends them
 * (cli/compose/convert), and the normaliser that compares them with what the engine returns.
 */
import { strict as assert } from "node:assert";
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { before, describe, it } from "node:test";
import * as yaml from "js-yaml";
import { convertStack, loadCompose, type StackSpec , LATEST_CLI } from "../../compose";
import {
    differences, engineStack, networkDifferences, normaliseNetwork, normaliseService, serviceFromEngine,
    stableJson, taggedImage, unpinnedImage, type JsonObject,
} from "../../lib/engine-spec";
import { api, localTransport } from "../../lib/engine-transport";

const DCCN = path.resolve(__dirname, "../../../shared/fixtures/dccn");
const CLI = path.resolve(__dirname, "../../../shared/fixtures/compose-corpus/docker-cli");
const S = 1_000_000_000;
type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const convert = (file: string, stackName: string) => convertStack(loadCompose(file, { cli: LATEST_CLI, stackName, env: {} }));

describe("engine spec: DCCN data-stager", () => {
    const spec = convert(path.join(DCCN, "data-stager.docker-compose.dccn.yml"), "stager");
    const eng = engineStack(spec);
    const svc = (key: string) => eng.services.find((s) => s.key === key)!.spec as Any;

    it("services in depends_on order, named <stack>_<name>", () => {
        assert.deepEqual(eng.services.map((s) => [s.key, s.name, s.dependsOn]), [
            ["db", "stager_db", []], ["service", "stager_service", ["db"]], ["ui", "stager_ui", ["service"]],
        ]);
    });

    it("service labels: namespace and image; container labels: namespace", () => {
        const s = svc("service");
        assert.deepEqual(s.Labels, { "com.docker.stack.image": "docker-registry.dccn.nl:5000/stager:2.0.0", "com.docker.stack.namespace": "stager" });
        assert.deepEqual(s.TaskTemplate.ContainerSpec.Labels, { "com.docker.stack.namespace": "stager" });
        assert.equal(s.TaskTemplate.ContainerSpec.Image, "docker-registry.dccn.nl:5000/stager:2.0.0");
    });

    it("networks by name with the service name as an alias", () => {
        assert.deepEqual(svc("db").TaskTemplate.Networks, [{ Aliases: ["stagerdb4ui", "db"], Target: "stager_default" }]);
        assert.deepEqual(svc("ui").TaskTemplate.Networks, [{ Aliases: ["stager-ui", "ui"], Target: "stager_default" }]);
    });

    it("the external secret as a file reference (uid/gid 0, mode 0444), its ID left to the provider", () => {
        assert.deepEqual(svc("service").TaskTemplate.ContainerSpec.Secrets, [
            { File: { GID: "0", Mode: 0o444, Name: "drdr_admin_password", UID: "0" }, SecretName: "drdr_admin_password" },
        ]);
        assert.deepEqual(spec.external.secrets, ["drdr_admin_password"]);
    });

    it("env sorted as K=V; placement, ports, replicated mode, and the always-present Resources/Placement/Privileges", () => {
        const s = svc("service");
        const env = s.TaskTemplate.ContainerSpec.Env as string[];
        assert.deepEqual(env, [...env].sort());
        assert.ok(env.includes("REDIS_HOST=stagerdb4ui"));
        assert.deepEqual(s.TaskTemplate.Placement, { Constraints: ["node.labels.function == production"] });
        assert.deepEqual(s.EndpointSpec, { Mode: "vip", Ports: [{ Protocol: "tcp", PublishMode: "ingress", PublishedPort: 3100, TargetPort: 3000 }] });
        assert.deepEqual(s.Mode, { Replicated: { Replicas: 1 } });
        assert.deepEqual(s.TaskTemplate.Resources, {});
        assert.deepEqual(s.TaskTemplate.ContainerSpec.Privileges, {});
    });

    it("the default network: overlay, swarm scope, labelled", () => {
        assert.deepEqual(eng.networks, [{
            key: "default", name: "stager_default",
            create: { CheckDuplicate: true, Driver: "overlay", Labels: { "com.docker.stack.namespace": "stager" }, Name: "stager_default", Scope: "swarm" },
        }]);
    });

    it("deterministic: keys sorted at every level, the same JSON on every conversion", () => {
        const again = engineStack(convert(path.join(DCCN, "data-stager.docker-compose.dccn.yml"), "stager"));
        assert.equal(JSON.stringify(again), JSON.stringify(eng));
        for (const s of eng.services) assert.equal(JSON.stringify(s.spec), stableJson(s.spec));
    });
});

describe("engine spec: every DCCN compose file", () => {
    for (const f of ["design.data-stager.docker-compose.v3.yml", "tutorial-orchestration.docker-compose.lb.yml", "tutorial-orchestration.docker-compose.swarm.yml",
        "tutorial-orchestration.docker-compose.yml", "tutorial-swarm.docker-compose.proxy.yml", "tutorial-swarm.docker-compose.swarm.yml",
        "tutorial-swarm.rst-inline.docker-compose.swarm.yml"]) {
        it(`${f}: every service normalises idempotently and carries the stack labels`, () => {
            const eng = engineStack(convert(path.join(DCCN, f), "dccn"));
            assert.ok(eng.services.length > 0);
            for (const s of eng.services) {
                const n = normaliseService(s.spec);
                assert.deepEqual(normaliseService(n), n);
                assert.equal((s.spec.Labels as Any)["com.docker.stack.namespace"], "dccn");
                assert.equal((s.spec.Labels as Any)["com.docker.stack.image"], (s.spec.TaskTemplate as Any).ContainerSpec.Image);
            }
        });
    }
});

// ---------------------------------------------------------------------------------------------

function fullExample(): string {
    const dir = mkdtempSync(path.join(tmpdir(), "engine-spec-full-"));
    for (const f of ["full-example.yml", "example1.env", "example2.env"]) copyFileSync(path.join(CLI, f), path.join(dir, f));
    writeFileSync(path.join(dir, "config_data"), "config content\n");
    writeFileSync(path.join(dir, "secret_data"), "secret content\n");
    // The four gaps `docker stack deploy` itself refuses (as test/unit/compose-full-example.test.ts).
    let s = readFileSync(path.join(dir, "full-example.yml"), "utf8");
    for (const [from, to] of [
        ["  config4:\n    name: foo\n", "  config4:\n    name: foo\n    file: ./config_data\n"],
        ["  secret4:\n    name: bar\n", "  secret4:\n    name: bar\n    file: ./secret_data\n"],
        ["\nnetworks:\n  #", "\nnetworks:\n  other-other-network:\n  #"],
        ["\nvolumes:\n  #", "\nvolumes:\n  datavolume:\n  #"],
    ]) {
        assert.ok(s.includes(from));
        s = s.replace(from, to);
    }
    writeFileSync(path.join(dir, "patched.yml"), s);
    return path.join(dir, "patched.yml");
}

describe("engine spec: the Docker CLI's full-example.yml", () => {
    const golden = (yaml.load(readFileSync(path.join(CLI, "full-example.yaml.golden"), "utf8")) as Any).services.foo as Any;
    let spec: StackSpec;
    let s: Any;
    let c: Any;
    let dir: string;

    before(() => {
        const file = fullExample();
        dir = path.dirname(file);
        spec = convertStack(loadCompose(file, { cli: LATEST_CLI, stackName: "st", env: { HOME: "/bar", QUX: "qux_from_environment" } }));
        s = spec.services[0].spec;
        c = s.TaskTemplate.ContainerSpec;
    });

    it("name, service labels (deploy labels, namespace, image), image as written", () => {
        assert.equal(s.Name, "st_foo");
        assert.deepEqual(s.Labels, { ...golden.deploy.labels, "com.docker.stack.image": "redis", "com.docker.stack.namespace": "st" });
        assert.equal(c.Image, "redis");
    });

    it("entrypoint -> Command, command -> Args, hostname, user, dir, read-only, stop signal", () => {
        assert.deepEqual(c.Command, golden.entrypoint);
        assert.deepEqual(c.Args, golden.command);
        assert.equal(c.Hostname, "foo");
        assert.equal(c.User, "someone");
        assert.equal(c.Dir, "/code");
        assert.equal(c.ReadOnly, true);
        assert.equal(c.StopSignal, "SIGUSR1");
    });

    it("durations in nanoseconds: stop_grace_period, healthcheck (with start_interval), restart policy, update/rollback", () => {
        assert.equal(c.StopGracePeriod, 20 * S);
        assert.deepEqual(c.Healthcheck, {
            Interval: 10 * S, Retries: 5, StartInterval: 1 * S, StartPeriod: 15 * S, Test: ["CMD-SHELL", "echo \"hello world\""], Timeout: 1 * S,
        });
        assert.deepEqual(s.TaskTemplate.RestartPolicy, { Condition: "on-failure", Delay: 5 * S, MaxAttempts: 3, Window: 120 * S });
        const u = { Delay: 10 * S, FailureAction: "continue", MaxFailureRatio: 0.3, Monitor: 60 * S, Order: "start-first", Parallelism: 3 };
        assert.deepEqual(s.UpdateConfig, u);
        assert.deepEqual(s.RollbackConfig, u);
    });

    it("TTY, OpenStdin, Ulimits (sorted by name), Pids", () => {
        assert.equal(c.TTY, true);
        assert.equal(c.OpenStdin, true);
        assert.deepEqual(c.Ulimits, [{ Hard: 40000, Name: "nofile", Soft: 20000 }, { Hard: 65535, Name: "nproc", Soft: 65535 }]);
        assert.equal(s.TaskTemplate.Resources.Limits.Pids, 100);
    });

    it("extra hosts in SwarmKit notation, DNS, env, container labels, sysctls, capabilities", () => {
        assert.deepEqual([...c.Hosts].sort(), (golden.extra_hosts as string[]).map((h) => `${h.slice(h.indexOf(":") + 1)} ${h.slice(0, h.indexOf(":"))}`).sort());
        assert.deepEqual(c.DNSConfig, { Nameservers: golden.dns, Search: golden.dns_search });
        assert.deepEqual(c.Env, Object.entries(golden.environment as Record<string, string>).map(([k, v]) => `${k}=${v}`).sort());
        assert.deepEqual(c.Labels, { ...golden.labels, "com.docker.stack.namespace": "st" });
        assert.deepEqual(c.Sysctls, golden.sysctls);
        assert.deepEqual(c.CapabilityAdd, ["ALL"]);
        assert.deepEqual(c.CapabilityDrop, ["CAP_NET_ADMIN", "CAP_SYS_ADMIN"]);
    });

    it("mounts in compose order, consistency kept, the cluster mount back at its place", () => {
        assert.deepEqual(c.Mounts.map((m: Any) => [m.Type, m.Target]), [
            ["volume", "/var/lib/mysql"], ["bind", "/var/lib/mysql"], ["bind", "/code"], ["bind", "/var/www/html"], ["bind", "/etc/configs/"],
            ["volume", "/var/lib/mysql"], ["bind", "/opt"], ["tmpfs", "/opt"], ["cluster", "/srv"],
        ]);
        assert.deepEqual(c.Mounts[5], { Source: "st_datavolume", Target: "/var/lib/mysql", Type: "volume", VolumeOptions: { Labels: { "com.docker.stack.namespace": "st" } } });
        assert.deepEqual(c.Mounts[6], { Consistency: "cached", Source: path.join(dir, "opt"), Target: "/opt", Type: "bind" });
        assert.deepEqual(c.Mounts[7], { Target: "/opt", TmpfsOptions: { SizeBytes: 10000 }, Type: "tmpfs" });
        assert.deepEqual(c.Mounts[8], { ClusterOptions: {}, Source: "group:mygroup", Target: "/srv", Type: "cluster" });
        assert.deepEqual(c.Mounts[4], { ReadOnly: true, Source: "/bar/configs", Target: "/etc/configs/", Type: "bind" });
    });

    it("secrets and configs: File{Name,UID,GID,Mode} and the engine name (content-named when from a file), sorted by name", () => {
        assert.deepEqual(c.Secrets, [
            { File: { GID: "103", Mode: 0o440, Name: "my_secret", UID: "103" }, SecretName: "my_secret" },
            { File: { GID: "0", Mode: 0o444, Name: "secret1", UID: "0" }, SecretName: spec.secrets.find((x) => x.key === "secret1")!.name },
        ]);
        assert.deepEqual(c.Configs.map((x: Any) => [x.ConfigName, x.File.Name, x.File.Mode]), [
            ["my_config", "/my_config", 0o440], [spec.configs.find((x) => x.key === "config1")!.name, "config1", 0o444],
        ]);
    });

    it("resources, placement (constraints, spread preference, max replicas), networks, log driver, endpoint", () => {
        assert.deepEqual(s.TaskTemplate.Resources, {
            Limits: { MemoryBytes: 52428800, NanoCPUs: 1000000, Pids: 100 },
            Reservations: { GenericResources: [{ DiscreteResourceSpec: { Kind: "gpu", Value: 2 } }, { DiscreteResourceSpec: { Kind: "ssd", Value: 1 } }], MemoryBytes: 20971520, NanoCPUs: 100000 },
        });
        assert.deepEqual(s.TaskTemplate.Placement, { Constraints: ["node=foo"], MaxReplicas: 5, Preferences: [{ Spread: { SpreadDescriptor: "node.labels.az" } }] });
        assert.deepEqual(s.TaskTemplate.Networks, [
            { Aliases: ["foo"], Target: "st_other-network" },
            { Aliases: ["foo"], Target: "st_other-other-network" },
            { Aliases: ["alias1", "alias3", "foo"], DriverOpts: { driveropt1: "optval1", driveropt2: "optval2" }, Target: "st_some-network" },
        ]);
        assert.deepEqual(s.TaskTemplate.LogDriver, { Name: "syslog", Options: { "syslog-address": "tcp://192.168.0.42:123" } });
        assert.equal(s.EndpointSpec.Mode, "dnsrr");
        assert.equal(s.EndpointSpec.Ports.length, 22);
        assert.deepEqual(s.EndpointSpec.Ports.find((p: Any) => p.PublishedPort === 9090), { Protocol: "tcp", PublishMode: "ingress", PublishedPort: 9090, TargetPort: 8080 });
        assert.deepEqual(s.Mode, { Replicated: { Replicas: 6 } });
    });

    it("networks: driver options, IPAM and labels as NetworkCreate", () => {
        const n = spec.networks.find((x) => x.key === "other-network")!;
        assert.deepEqual(n.create, {
            CheckDuplicate: true, Driver: "overlay",
            IPAM: { Config: [{ Subnet: "172.16.238.0/24" }, { Subnet: "2001:3984:3989::/64" }], Driver: "overlay" },
            Labels: { "com.docker.stack.namespace": "st", foo: "bar" }, Name: "st_other-network", Options: { baz: "1", foo: "bar" }, Scope: "swarm",
        });
    });

    it("secrets and configs: Name, Labels, Data (base64)", () => {
        const e = engineStack(spec);
        const sec = e.secrets.find((x) => x.key === "secret1")!;
        assert.deepEqual(Object.keys(sec.spec), ["Data", "Labels", "Name"]);
        assert.equal(Buffer.from(String(sec.spec.Data), "base64").toString(), "secret content\n");
        assert.deepEqual(sec.spec.Labels, { "com.docker.stack.namespace": "st", foo: "bar" });
    });
});

// ---------------------------------------------------------------------------------------------

describe("normaliser", () => {
    // `GET /services/{id}` of a service `docker stack deploy` made on Docker 20.10.24 (API 1.41).
    const readBack = {
        Name: "st_web",
        Labels: { "com.docker.stack.image": "dccn-test/busybox:1", "com.docker.stack.namespace": "st" },
        TaskTemplate: {
            ContainerSpec: {
                Image: "dccn-test/busybox:1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
                Labels: { "com.docker.stack.namespace": "st" },
                Args: ["sleep", "3600"], Env: ["A=1"],
                Privileges: { CredentialSpec: null, SELinuxContext: null, NoNewPrivileges: false },
                StopGracePeriod: 10 * S,
                Healthcheck: { Test: ["CMD", "true"], Interval: 10 * S },
                DNSConfig: {},
                Secrets: [{ File: { Name: "s1.txt", UID: "0", GID: "0", Mode: 292 }, SecretID: "ursh7azgr86xp6p3p3766d1ze", SecretName: "st_s1" }],
                Isolation: "default",
            },
            Resources: {},
            RestartPolicy: { Condition: "any", Delay: 5 * S, MaxAttempts: 0 },
            Placement: { Platforms: [{ Architecture: "amd64", OS: "linux" }] },
            Networks: [{ Target: "rw9okr8e11ivjo21oqc1idjmu", Aliases: ["web"] }],
            ForceUpdate: 0,
            Runtime: "container",
        },
        Mode: { Replicated: { Replicas: 1 } },
        UpdateConfig: { Parallelism: 1, Delay: 2 * S, FailureAction: "pause", Monitor: 5 * S, MaxFailureRatio: 0, Order: "stop-first" },
        RollbackConfig: { Parallelism: 1, FailureAction: "pause", Monitor: 5 * S, MaxFailureRatio: 0, Order: "stop-first" },
        EndpointSpec: { Mode: "vip", Ports: [{ Protocol: "tcp", TargetPort: 80, PublishedPort: 8080, PublishMode: "ingress" }] },
    };
    const desired = {
        EndpointSpec: { Mode: "vip", Ports: [{ Protocol: "tcp", PublishMode: "ingress", PublishedPort: 8080, TargetPort: 80 }] },
        Labels: { "com.docker.stack.image": "dccn-test/busybox:1", "com.docker.stack.namespace": "st" },
        Mode: { Replicated: { Replicas: 1 } },
        Name: "st_web",
        TaskTemplate: {
            ContainerSpec: {
                Args: ["sleep", "3600"], Env: ["A=1"],
                Healthcheck: { Interval: 10 * S, Retries: 0, StartPeriod: 0, Test: ["CMD", "true"], Timeout: 0 },
                Image: "dccn-test/busybox:1", Labels: { "com.docker.stack.namespace": "st" }, Privileges: {},
                Secrets: [{ File: { GID: "0", Mode: 292, Name: "s1.txt", UID: "0" }, SecretName: "st_s1" }],
            },
            Networks: [{ Aliases: ["web"], Target: "st_default" }],
            Placement: {}, Resources: {},
        },
        UpdateConfig: { Delay: 2 * S, FailureAction: "pause", MaxFailureRatio: 0, Monitor: 0, Order: "stop-first", Parallelism: 1 },
    };

    it("a spec read back (defaults, IDs, pinned digest, platforms) equals the desired one", () => {
        const actual = serviceFromEngine(readBack as unknown as JsonObject, { rw9okr8e11ivjo21oqc1idjmu: "st_default" });
        assert.deepEqual(differences(normaliseService(desired as unknown as JsonObject), actual), []);
    });

    it("a real change shows by its path", () => {
        const changed = JSON.parse(JSON.stringify(desired));
        changed.TaskTemplate.ContainerSpec.Image = "dccn-test/busybox:2";
        changed.Labels["com.docker.stack.image"] = "dccn-test/busybox:2";
        changed.Mode.Replicated.Replicas = 0;
        const actual = serviceFromEngine(readBack as unknown as JsonObject, { rw9okr8e11ivjo21oqc1idjmu: "st_default" });
        assert.deepEqual(differences(normaliseService(changed), actual), [
            "Labels.com.docker.stack.image", "Mode", "TaskTemplate.ContainerSpec.Image",
        ]);
    });

    it("global mode and zero replicas survive normalisation", () => {
        assert.equal(normaliseService({ Mode: { Global: {} } } as JsonObject).Mode, "global");
        assert.equal(normaliseService({ Mode: { Replicated: { Replicas: 0 } } } as JsonObject).Mode, "replicated:0");
    });

    it("images: implied :latest and pinned digests map back to the stack's reference, other images do not", () => {
        assert.equal(taggedImage("redis"), "redis:latest");
        assert.equal(taggedImage("registry.lab:5000/stager"), "registry.lab:5000/stager:latest");
        assert.equal(taggedImage("registry.lab:5000/stager:2"), "registry.lab:5000/stager:2");
        assert.equal(taggedImage("redis@sha256:abc"), "redis@sha256:abc");
        assert.equal(unpinnedImage("redis:latest", "redis"), "redis");
        assert.equal(unpinnedImage("redis:latest@sha256:abc", "redis"), "redis");
        assert.equal(unpinnedImage("redis:7@sha256:abc", "redis:7"), "redis:7");
        assert.equal(unpinnedImage("redis:8@sha256:abc", "redis:7"), "redis:8@sha256:abc");
    });

    it("networks: the engine's vxlan option and allocated subnets are not differences; asked-for subnets are", () => {
        const create = { Name: "st_back", Driver: "overlay", Labels: { "com.docker.stack.namespace": "st" }, Scope: "swarm", CheckDuplicate: true };
        const inspect = {
            Name: "st_back", Id: "7mp", Scope: "swarm", Driver: "overlay", Internal: false, Attachable: false,
            IPAM: { Driver: "default", Options: null, Config: [{ Subnet: "10.0.2.0/24", Gateway: "10.0.2.1" }] },
            Options: { "com.docker.network.driver.overlay.vxlanid_list": "4098" }, Labels: { "com.docker.stack.namespace": "st" },
        };
        assert.deepEqual(networkDifferences(create as JsonObject, normaliseNetwork(inspect as unknown as JsonObject)), []);
        assert.deepEqual(networkDifferences({ ...create, IPAM: { Config: [{ Subnet: "10.9.0.0/24" }] } } as unknown as JsonObject, normaliseNetwork(inspect as unknown as JsonObject)), ["IPAM.Config"]);
        assert.deepEqual(networkDifferences({ ...create, Attachable: true } as JsonObject, normaliseNetwork(inspect as unknown as JsonObject)), ["Attachable"]);
    });
});

describe("transport requests", () => {
    it("a header with a line break is refused", async () => {
        await assert.rejects(api(localTransport("t", "/nonexistent.sock"), { method: "GET", path: "/info", headers: { "X-A": "a\nb" } }), /invalid header/);
    });
});
