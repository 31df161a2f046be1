import { strict as assert } from "node:assert";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { describe, it } from "node:test";
import {
  ComposeError, convertStack, effectiveImage, LATEST_CLI, loadCompose, parseDuration, type ServiceSpec,
} from "../../compose";

const DCCN = path.resolve(__dirname, "../../../shared/fixtures/dccn");
const CLI = path.resolve(__dirname, "../../../shared/fixtures/compose-corpus/docker-cli");

function stack(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(tmpdir(), "compose-convert-"));
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text);
  return path.join(dir, Object.keys(files)[0]);
}
const convert = (file: string, stackName = "st", overrides = {}) =>
  convertStack(loadCompose(file, { cli: LATEST_CLI, stackName, env: {} }), overrides);
const NS = { "com.docker.stack.namespace": "stager" };
type Any = any; // eslint-disable-line @typescript-eslint/no-explicit-any
/** The ServiceSpec's TaskTemplate and its ContainerSpec. */
const tt = (s: ServiceSpec): Any => s.spec.TaskTemplate;
const cs = (s: ServiceSpec): Any => tt(s).ContainerSpec;

describe("DCCN data-stager stack", () => {
  const spec = convert(path.join(DCCN, "data-stager.docker-compose.dccn.yml"), "stager");

  it("one overlay network stager_default, labelled", () => {
    assert.deepEqual(spec.networks, [{
      key: "default", name: "stager_default",
      create: { CheckDuplicate: true, Driver: "overlay", Labels: NS, Name: "stager_default", Scope: "swarm" },
    }]);
  });

  it("services in depends_on order with their names and aliases", () => {
    assert.deepEqual(spec.services.map((s) => [s.key, s.name, s.dependsOn]), [
      ["db", "stager_db", []], ["service", "stager_service", ["db"]], ["ui", "stager_ui", ["service"]],
    ]);
    assert.deepEqual(spec.services.map((s) => tt(s).Networks), [
      [{ Target: "stager_default", Aliases: ["stagerdb4ui", "db"] }],
      [{ Target: "stager_default", Aliases: ["stager4ui", "service"] }],
      [{ Target: "stager_default", Aliases: ["stager-ui", "ui"] }],
    ]);
  });

  it("placement on production nodes, ports, image labels", () => {
    for (const s of spec.services) {
      assert.deepEqual(tt(s).Placement, { Constraints: ["node.labels.function == production"] });
      assert.deepEqual(s.spec.Labels, { "com.docker.stack.image": cs(s).Image, ...NS });
      assert.deepEqual(cs(s).Labels, NS);
    }
    assert.deepEqual(spec.services[1].spec.EndpointSpec, {
      Mode: "vip", Ports: [{ TargetPort: 3000, PublishedPort: 3100, Protocol: "tcp", PublishMode: "ingress" }],
    });
    assert.equal(cs(spec.services[2]).Image, "docker-registry.dccn.nl:5000/stager-ui:2.0.0");
  });

  it("the external secret is referenced by name and not created", () => {
    assert.deepEqual(spec.secrets, []);
    assert.deepEqual(spec.external.secrets, ["drdr_admin_password"]);
    assert.deepEqual(cs(spec.services[1]).Secrets, [{
      SecretName: "drdr_admin_password", File: { Name: "drdr_admin_password", UID: "0", GID: "0", Mode: 0o444 },
    }]);
  });

  it("bind mounts, read-only where :ro", () => {
    const mounts = cs(spec.services[1]).Mounts;
    assert.equal(mounts.length, 6);
    assert.deepEqual(mounts[4], { Type: "bind", Source: "/var/lib/sss/mc", Target: "/var/lib/sss/mc", ReadOnly: true });
  });

  it("the depends_on ordering is a listed difference", () => {
    assert.ok(spec.differences.some((d) => d.startsWith("depends_on orders creation")));
  });

  it("the design (v3) variant converts too", () => {
    const design = convert(path.join(DCCN, "design.data-stager.docker-compose.v3.yml"), "stager");
    assert.deepEqual(design.services.map((s) => cs(s).Image), [
      "docker-registry.dccn.nl:5000/redis", "docker-registry.dccn.nl:5000/stager:1.7.0", "docker-registry.dccn.nl:5000/stager-ui:1.1.0",
    ]);
  });
});

describe("DCCN tutorial webapp stack", () => {
  const file = path.join(DCCN, "tutorial-swarm.docker-compose.swarm.yml");
  const spec = convert(file, "webapp");

  it("db: restart_policy none, replicas 1, on vm1, named volume and hostname, command as args", () => {
    const db = spec.services[0];
    assert.equal(db.name, "webapp_db");
    assert.deepEqual(tt(db).RestartPolicy, { Condition: "none" });
    assert.deepEqual(db.spec.Mode, { Replicated: { Replicas: 1 } });
    assert.deepEqual(tt(db).Placement, { Constraints: ["node.hostname == vm1"] });
    const c = cs(db);
    assert.equal(c.Hostname, "db");
    assert.deepEqual(c.Args, ["--default-authentication-plugin=mysql_native_password"]);
    assert.equal(c.Command, undefined);
    assert.deepEqual(c.Mounts[1], {
      Type: "volume", Source: "webapp_dbdata", Target: "/var/lib/mysql",
      VolumeOptions: { Labels: { "com.docker.stack.namespace": "webapp" } },
    });
    assert.deepEqual(c.Mounts[0], { Type: "bind", Source: path.join(DCCN, "initdb.d"), Target: "/docker-entrypoint-initdb.d" });
  });

  it("web: build ignored with a warning, image from the registry, 8080:80, after db", () => {
    const web = spec.services[1];
    assert.deepEqual(web.dependsOn, ["db"]);
    assert.equal(cs(web).Image, "docker-registry.dccn.nl:5000/demo_user_register:1.0");
    assert.deepEqual((web.spec.EndpointSpec as Any).Ports, [{ TargetPort: 80, PublishedPort: 8080, Protocol: "tcp", PublishMode: "ingress" }]);
    assert.ok(spec.warnings.some((w) => w.key === "services.web.build"));
  });

  it("named volumes are listed (the engine creates them per node), default network created", () => {
    assert.deepEqual(spec.volumes.map((v) => v.name), ["webapp_dbdata", "webapp_weblog"]);
    assert.deepEqual(spec.networks.map((n) => n.name), ["webapp_default"]);
  });

  it("dev overrides: lab registry, bind paths, replicas and published port", () => {
    const dev = convert(file, "webapp", {
      registryMap: { "docker-registry.dccn.nl:5000": "registry.lab:5000" },
      registryPrefix: "registry.lab:5000",
      bindPaths: { [DCCN]: "/srv/lab/webapp" },
      replicas: { web: 2 },
      ports: { web: { 8080: 18080 } },
    });
    const [db, web] = dev.services;
    assert.equal(cs(db).Image, "registry.lab:5000/mysql:latest");
    assert.equal(cs(web).Image, "registry.lab:5000/demo_user_register:1.0");
    assert.equal((web.spec.Labels as Any)["com.docker.stack.image"], "registry.lab:5000/demo_user_register:1.0");
    assert.equal(cs(db).Mounts[0].Source, "/srv/lab/webapp/initdb.d");
    assert.deepEqual(web.spec.Mode, { Replicated: { Replicas: 2 } });
    assert.equal((web.spec.EndpointSpec as Any).Ports[0].PublishedPort, 18080);
    assert.ok(dev.differences.some((d) => d.includes("(stack overrides)")));
  });

  it("overrides naming an unknown service or port are errors", () => {
    assert.throws(() => convert(file, "webapp", { replicas: { wbe: 2 } }), (e: unknown) => e instanceof ComposeError && e.key === "overrides.replicas.wbe");
    assert.throws(() => convert(file, "webapp", { ports: { web: { 9999: 1 } } }), (e: unknown) => e instanceof ComposeError && e.key === "overrides.ports.web.9999");
  });

  it("the other tutorial files convert", () => {
    for (const f of ["tutorial-swarm.rst-inline.docker-compose.swarm.yml", "tutorial-orchestration.docker-compose.swarm.yml",
      "tutorial-orchestration.docker-compose.yml", "tutorial-orchestration.docker-compose.lb.yml", "tutorial-swarm.docker-compose.proxy.yml"]) {
      const s = convert(path.join(DCCN, f), "t");
      assert.ok(s.services.length > 0, f);
    }
    const lb = convert(path.join(DCCN, "tutorial-orchestration.docker-compose.lb.yml"), "t");
    assert.ok(lb.warnings.some((w) => w.key === "services.lb.links"));
    assert.deepEqual(lb.services.map((s) => s.key), ["db", "web", "lb"]);
  });
});

describe("conversion rules", () => {
  it("is deterministic: same input, byte-identical output", () => {
    const file = path.join(DCCN, "data-stager.docker-compose.dccn.yml");
    assert.equal(JSON.stringify(convert(file)), JSON.stringify(convert(file)));
  });

  it("keeps image references exactly as written", () => {
    for (const image of ["redis", "redis:7", "library/redis@sha256:" + "a".repeat(64), "localhost:5000/x/y:1", "reg.example.com/a"]) {
      const spec = convert(stack({ "c.yml": `services:\n  a:\n    image: "${image}"\n` }));
      assert.equal(cs(spec.services[0]).Image, image);
    }
    assert.equal(effectiveImage("a", "prom/prometheus", { registryPrefix: "reg:5000/" }), "reg:5000/prom/prometheus");
    assert.equal(effectiveImage("a", "reg.example.com/a:1", { registryPrefix: "reg:5000" }), "reg.example.com/a:1");
    assert.equal(effectiveImage("a", "x", { images: { a: "y:2" } }), "y:2");
  });

  it("durations: Go's syntax, nanoseconds in the Engine JSON", () => {
    const cases: Array<[string, number | undefined]> = [["60s", 60e9], ["90s", 90e9], ["1h", 3600e9], ["3600s", 3600e9], ["1.5s", 1.5e9],
      ["500ms", 5e8], ["0s", 0], ["0", 0], ["2m0s", 120e9], ["1h0m30s", 3630e9], ["100us", 1e5], ["100µs", 1e5], ["10", undefined], ["", undefined]];
    for (const [input, want] of cases) assert.equal(parseDuration(input), want, input);
    const spec = convert(stack({ "c.yml": "services:\n  a:\n    image: x\n    stop_grace_period: 120s\n    deploy:\n      update_config:\n        delay: 60s\n" }));
    assert.equal(cs(spec.services[0]).StopGracePeriod, 120e9);
    assert.deepEqual(spec.services[0].spec.UpdateConfig, {
      Parallelism: 1, Delay: 60e9, FailureAction: "pause", Monitor: 0, MaxFailureRatio: 0, Order: "stop-first",
    });
  });

  it("secrets and configs from files are named by content; a content change makes a new name", () => {
    const dir = path.dirname(stack({ "x": "" }));
    const file = path.join(dir, "c.yml");
    writeFileSync(file, `version: "3.3"\nservices:\n  a:\n    image: x\n    secrets: [pw]\n    configs: [{source: conf, target: /etc/app.conf}]\nsecrets:\n  pw:\n    file: ./pw.txt\nconfigs:\n  conf:\n    file: ./app.conf\n`);
    writeFileSync(path.join(dir, "pw.txt"), "one");
    writeFileSync(path.join(dir, "app.conf"), "a=1\n");
    const first = convert(file);
    writeFileSync(path.join(dir, "pw.txt"), "two");
    const second = convert(file);
    const [s1, s2] = [first.secrets[0], second.secrets[0]];
    assert.match(s1.name, /^st_pw-[0-9a-f]{8}$/);
    assert.equal(s1.stackDeployName, "st_pw");
    assert.notEqual(s1.name, s2.name);
    assert.equal(s1.name.slice(-8), s1.sha256.slice(0, 8));
    assert.equal(Buffer.from(String(s2.spec.Data), "base64").toString(), "two");
    assert.equal(s2.spec.Name, s2.name);
    assert.equal(first.configs[0].name, second.configs[0].name, "unchanged config keeps its name");
    assert.equal(cs(second.services[0]).Secrets[0].SecretName, s2.name, "the service switches to the new secret");
    assert.ok(first.differences.some((d) => d.startsWith("secrets from files are named")));
  });

  it("global mode, dnsrr, host-mode ports, long syntax", () => {
    const spec = convert(stack({ "c.yml": `
version: "3.8"
services:
  agent:
    image: agent
    deploy:
      mode: global
      endpoint_mode: dnsrr
    ports:
      - target: 9100
        published: 9100
        mode: host
        protocol: UDP
` }));
    const a = spec.services[0].spec;
    assert.deepEqual(a.Mode, { Global: {} });
    assert.deepEqual(a.EndpointSpec, { Mode: "dnsrr", Ports: [{ TargetPort: 9100, PublishedPort: 9100, Protocol: "udp", PublishMode: "host" }] });
    assert.throws(() => convertStack(loadCompose(spec.file, { cli: LATEST_CLI, stackName: "st" }), { replicas: { agent: 3 } }), /global/);
  });

  it("name: and external: networks, volumes, secrets and configs (the CLI's e2e named-resources stack)", () => {
    const spec = convert(path.join(CLI, "e2e-stack-with-named-resources.yml"), "test-stack-deploy-with-names");
    assert.deepEqual(spec.networks.map((n) => n.name), ["named-network", "test-stack-deploy-with-names_network2"]);
    assert.deepEqual(spec.secrets.map((s) => s.stackDeployName), ["named-secret", "test-stack-deploy-with-names_secret2"]);
    assert.deepEqual(spec.configs.map((s) => s.stackDeployName), ["named-config", "test-stack-deploy-with-names_config2"]);
    // `volumes: [volume1]` has no colon: the CLI's parser reads it as an anonymous volume at target "volume1"
    assert.deepEqual(cs(spec.services[0]).Mounts, [{ Type: "volume", Target: "volume1" }, { Type: "volume", Target: "volume2" }]);
    assert.deepEqual(spec.volumes, []);
  });

  it("depends_on cycles are broken with a warning; unknown services ignored", () => {
    const spec = convert(stack({ "c.yml": "services:\n  a:\n    image: x\n    depends_on: [b]\n  b:\n    image: x\n    depends_on: [a, ghost]\n" }));
    assert.equal(spec.services.length, 2);
    assert.ok(spec.warnings.some((w) => /cycle/.test(w.message)));
    assert.ok(spec.warnings.some((w) => w.key === "services.b.depends_on[1]" && /ghost/.test(w.message)));
    const first = spec.services[0];
    assert.deepEqual(first.dependsOn, []);
  });

  it("a variable without value is sent bare (the CLI's convertEnvironment), with a warning", () => {
    const spec = convert(stack({ "c.yml": "services:\n  a:\n    image: x\n    environment: [SET=1, UNSET]\n" }));
    assert.deepEqual(cs(spec.services[0]).Env, ["SET=1", "UNSET"]);
    assert.ok(spec.warnings.some((w) => w.key === "services.a.environment.UNSET"));
    assert.ok(!spec.differences.some((d) => /pulumi/i.test(d)), "no difference is about a provider's shape");
  });

  it("external networks get no alias when they are not user-defined, and are not created", () => {
    const spec = convert(stack({ "c.yml": "services:\n  a:\n    image: x\n    networks: [hostnet, shared]\nnetworks:\n  hostnet:\n    external: {name: host}\n  shared:\n    external: true\n" }));
    assert.deepEqual(spec.networks, []);
    assert.deepEqual(spec.external.networks, ["host", "shared"]);
    assert.deepEqual(tt(spec.services[0]).Networks, [{ Target: "host" }, { Target: "shared", Aliases: ["a"] }]);
  });

  it("services refer to networks, secrets and configs by engine name; no IDs in the spec", () => {
    const spec = convert(path.join(DCCN, "data-stager.docker-compose.dccn.yml"), "stager");
    const svc = spec.services[1];
    assert.deepEqual([svc.networks, svc.secrets, svc.configs], [["stager_default"], ["drdr_admin_password"], []]);
    assert.equal(tt(svc).Networks[0].Target, "stager_default");
    assert.equal(cs(svc).Secrets[0].SecretID, undefined);
  });

  it("memory sizes and CPU counts", () => {
    const spec = convert(stack({ "c.yml": "services:\n  a:\n    image: x\n    deploy:\n      resources:\n        limits:\n          memory: 1.5G\n          cpus: '0.5'\n" }));
    assert.deepEqual(tt(spec.services[0]).Resources, { Limits: { MemoryBytes: 1610612736, NanoCPUs: 500000000 } });
  });
});
