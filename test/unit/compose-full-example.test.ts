/**
 * The Docker CLI's own loader test input, full-example.yml, converted and
 * compared field by field with what `docker stack deploy` produces from it.
 * The reference side is computed from the CLI's golden *loaded* form
 * (full-example.yaml.golden, loaded with working dir /foo and HOME=/bar) by
 * the CLI's conversion rules (cli/compose/convert), independently of our loader.
 *
 * `docker stack deploy` itself rejects the file as it stands (secret4/config4
 * have no content, `other-other-network` and `datavolume` are not declared),
 * so the comparison runs on a copy with exactly those four gaps filled.
 */
import { strict as assert } from "node:assert";
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import * as path from "node:path";
import { before, describe, it } from "node:test";
import * as yaml from "js-yaml";
import { ComposeError, convertStack, loadCompose, normaliseDuration, parseDuration, type StackSpec , LATEST_CLI } from "../../compose";

const CLI = path.resolve(__dirname, "../../../shared/fixtures/compose-corpus/docker-cli");
const HOME = "/bar";
const ENV = { HOME, QUX: "qux_from_environment" };

type Any = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const golden = (yaml.load(readFileSync(path.join(CLI, "full-example.yaml.golden"), "utf8")) as Any);
const g = golden.services.foo as Any;

function workdir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), "full-example-"));
  for (const f of ["full-example.yml", "example1.env", "example2.env"]) copyFileSync(path.join(CLI, f), path.join(dir, f));
  writeFileSync(path.join(dir, "config_data"), "config content\n");
  writeFileSync(path.join(dir, "secret_data"), "secret content\n");
  return dir;
}

function patched(dir: string): string {
  let s = readFileSync(path.join(dir, "full-example.yml"), "utf8");
  const edit = (from: string, to: string) => {
    assert.ok(s.includes(from), `fixture still has ${JSON.stringify(from)}`);
    s = s.replace(from, to);
  };
  edit("  config4:\n    name: foo\n", "  config4:\n    name: foo\n    file: ./config_data\n");
  edit("  secret4:\n    name: bar\n", "  secret4:\n    name: bar\n    file: ./secret_data\n");
  edit("\nnetworks:\n  #", "\nnetworks:\n  other-other-network:\n  #");
  edit("\nvolumes:\n  #", "\nvolumes:\n  datavolume:\n  #");
  const file = path.join(dir, "patched.yml");
  writeFileSync(file, s);
  return file;
}

const dur = (s: string) => normaliseDuration(parseDuration(s)!);
const byName = <T extends { name?: unknown; label?: unknown }>(a: T, b: T) =>
  String(a.name ?? a.label) < String(b.name ?? b.label) ? -1 : 1;

describe("full-example.yml as docker stack deploy sees it", () => {
  it("is rejected as it stands in the fixture (no config_data / secret_data next to it)", () => {
    assert.throws(() => loadCompose(path.join(CLI, "full-example.yml"), { cli: LATEST_CLI, stackName: "st", env: ENV }),
      (e: unknown) => e instanceof ComposeError && e.key === "secrets.secret1.file" && /ENOENT/.test(e.message));
  });

  it("is rejected with its content files present: secret4 has no content", () => {
    const dir = workdir();
    assert.throws(() => loadCompose(path.join(dir, "full-example.yml"), { cli: LATEST_CLI, stackName: "st", env: ENV }),
      (e: unknown) => e instanceof ComposeError && e.key === "secrets.secret4" && /neither file nor external/.test(e.message));
  });

  describe("converted, with the four gaps filled", () => {
    let dir: string;
    let spec: StackSpec;
    let foo: StackSpec["services"][number];
    let c: Any;
    // golden paths are relative to working dir /foo
    const local = (p: string) => (p === "/foo" ? dir : p.startsWith("/foo/") ? path.join(dir, p.slice(5)) : p);

    before(() => {
      dir = workdir();
      spec = convertStack(loadCompose(patched(dir), { cli: LATEST_CLI, stackName: "st", env: ENV }));
      foo = spec.services[0];
      c = foo.args.taskSpec.containerSpec as Any;
    });

    it("service name, image and service labels", () => {
      assert.equal(foo.name, "st_foo");
      assert.equal(foo.args.name, "st_foo");
      assert.equal(c.image, g.image);
      assert.deepEqual(foo.args.labels, [
        ...Object.entries(g.deploy.labels as Record<string, string>).map(([label, value]) => ({ label, value })),
        { label: "com.docker.stack.image", value: "redis" },
        { label: "com.docker.stack.namespace", value: "st" },
      ].sort(byName));
    });

    it("entrypoint -> command, command -> args", () => {
      assert.deepEqual(c.commands, g.entrypoint);
      assert.deepEqual(c.args, g.command);
    });

    it("hostname, user, working_dir, read_only, stop_grace_period, stop_signal", () => {
      assert.equal(c.hostname, g.hostname);
      assert.equal(c.user, g.user);
      assert.equal(c.dir, g.working_dir);
      assert.equal(c.readOnly, g.read_only);
      assert.equal(c.stopGracePeriod, dur(g.stop_grace_period));
      assert.equal(c.stopSignal, g.stop_signal);
    });

    it("extra_hosts as ip/host pairs, split at the first ':', in the file's order", () => {
      const want = (g.extra_hosts as string[]).map((h) => {
        const i = h.indexOf(":");
        return { host: h.slice(0, i), ip: h.slice(i + 1) };
      });
      assert.deepEqual(c.hosts, want);
    });

    it("dns and dns_search", () => {
      assert.deepEqual(c.dnsConfig, { nameservers: g.dns, searches: g.dns_search });
    });

    it("healthcheck with normalised durations", () => {
      const h = g.healthcheck;
      assert.deepEqual(c.healthcheck, {
        tests: h.test, interval: dur(h.interval), timeout: dur(h.timeout), startPeriod: dur(h.start_period), retries: h.retries,
      });
      assert.ok(foo.notExpressible.some((x) => x.key === "services.foo.healthcheck.start_interval" && x.value === dur(h.start_interval)));
    });

    it("environment from env_files and environment, resolved as the golden file, sorted", () => {
      assert.deepEqual(c.env, g.environment);
      assert.deepEqual(Object.keys(c.env), Object.keys(g.environment).sort());
    });

    it("container labels plus the namespace label", () => {
      const want = Object.entries({ ...g.labels, "com.docker.stack.namespace": "st" }).map(([label, value]) => ({ label, value }));
      assert.deepEqual(c.labels, want.sort(byName));
    });

    it("sysctls, cap_add/cap_drop", () => {
      assert.deepEqual(c.sysctl, g.sysctls);
      assert.deepEqual(c.capAdds, ["ALL"]);
      assert.deepEqual(c.capDrops, (g.cap_drop as string[]).map((x) => `CAP_${x}`));
    });

    it("tty, stdin_open and ulimits are listed as not expressible through the provider", () => {
      const gaps = Object.fromEntries(foo.notExpressible.map((x) => [x.key, x.value]));
      assert.equal(gaps["services.foo.tty"], g.tty);
      assert.equal(gaps["services.foo.stdin_open"], g.stdin_open);
      assert.deepEqual(gaps["services.foo.ulimits"], [
        { name: "nofile", soft: g.ulimits.nofile.soft, hard: g.ulimits.nofile.hard },
        { name: "nproc", soft: g.ulimits.nproc, hard: g.ulimits.nproc },
      ]);
      assert.ok(spec.differences.some((d) => d.startsWith("services.foo.tty:")));
    });

    it("logging", () => {
      assert.deepEqual(foo.args.taskSpec.logDriver, { name: g.logging.driver, options: g.logging.options });
    });

    it("mounts: bind (resolved), named volume with stack labels, anonymous volume, tmpfs with size", () => {
      const want: Any[] = [];
      for (const v of g.volumes as Any[]) {
        if (v.type === "cluster") continue; // not expressible, checked below
        const m: Any = { type: v.type, target: v.target };
        if (v.read_only) m.readOnly = true;
        if (v.type === "bind") m.source = local(v.source);
        if (v.type === "volume" && v.source) {
          m.source = `st_${v.source}`;
          m.volumeOptions = { labels: [{ label: "com.docker.stack.namespace", value: "st" }] };
        }
        if (v.type === "tmpfs") m.tmpfsOptions = { sizeBytes: v.tmpfs.size };
        want.push(m);
      }
      assert.deepEqual(c.mounts, want);
      assert.ok(foo.notExpressible.some((x) => x.field === "TaskTemplate.ContainerSpec.Mounts" && (x.value as Any).type === "cluster"));
      assert.ok(foo.notExpressible.some((x) => x.key === "services.foo.volumes[6].consistency" && x.value === "cached"));
    });

    it("secrets and configs: references sorted by name, defaults uid/gid 0 mode 0444", () => {
      assert.deepEqual(c.secrets, [
        { secretId: "my_secret", secretName: "my_secret", fileName: "my_secret", fileUid: "103", fileGid: "103", fileMode: 0o440 },
        { secretId: foo.secrets[1], secretName: foo.secrets[1], fileName: "secret1", fileUid: "0", fileGid: "0", fileMode: 0o444 },
      ]);
      assert.match(foo.secrets[1], /^st_secret1-[0-9a-f]{8}$/);
      assert.deepEqual(c.configs, [
        { configId: "my_config", configName: "my_config", fileName: "/my_config", fileUid: "103", fileGid: "103", fileMode: 0o440 },
        { configId: foo.configs[1], configName: foo.configs[1], fileName: "config1", fileUid: "0", fileGid: "0", fileMode: 0o444 },
      ]);
      assert.equal(g.secrets[1].mode, 288, "the golden mode is the octal 0440");
    });

    it("ports: short syntax expanded per port, sorted by published port", () => {
      const want = (g.ports as Any[]).map((p) => ({
        targetPort: p.target, protocol: p.protocol, publishMode: p.mode, ...(p.published ? { publishedPort: p.published } : {}),
      })).sort((a, b) => (a.publishedPort ?? 0) - (b.publishedPort ?? 0) || a.targetPort - b.targetPort);
      assert.deepEqual(foo.args.endpointSpec, { mode: g.deploy.endpoint_mode, ports: want });
    });

    it("networks: sorted by target, aliases plus the service name, driver_opts, no ipv4/ipv6 address", () => {
      assert.deepEqual(foo.args.taskSpec.networksAdvanceds, [
        { name: "st_other-network", aliases: ["foo"] },
        { name: "st_other-other-network", aliases: ["foo"] },
        { name: "st_some-network", aliases: [...g.networks["some-network"].aliases, "foo"], driverOpts: ["driveropt1=optval1", "driveropt2=optval2"] },
      ]);
    });

    it("deploy: mode/replicas, update_config, rollback_config", () => {
      assert.deepEqual(foo.args.mode, { replicated: { replicas: g.deploy.replicas } });
      for (const [ours, theirs] of [[foo.args.updateConfig, g.deploy.update_config], [foo.args.rollbackConfig, g.deploy.rollback_config]]) {
        assert.deepEqual(ours, {
          parallelism: theirs.parallelism,
          delay: dur(theirs.delay),
          failureAction: theirs.failure_action,
          monitor: "1m",
          maxFailureRatio: String(theirs.max_failure_ratio),
          order: theirs.order,
        });
        assert.equal(dur(theirs.monitor), "1m", "golden 1m0s normalises to 1m");
      }
    });

    it("deploy: resources (bytes, nano CPUs, generic resources)", () => {
      const r = g.deploy.resources;
      assert.deepEqual(foo.args.taskSpec.resources, {
        limits: { nanoCpus: Number(r.limits.cpus) * 1e9, memoryBytes: Number(r.limits.memory) },
        reservation: {
          nanoCpus: Math.round(Number(r.reservations.cpus) * 1e9),
          memoryBytes: Number(r.reservations.memory),
          genericResources: { discreteResourcesSpecs: ["gpu=2", "ssd=1"] },
        },
      });
      assert.ok(foo.notExpressible.some((x) => x.key === "services.foo.deploy.resources.limits.pids" && x.value === r.limits.pids));
    });

    it("deploy: restart_policy and placement", () => {
      const rp = g.deploy.restart_policy;
      assert.deepEqual(foo.args.taskSpec.restartPolicy, {
        condition: rp.condition, delay: dur(rp.delay), maxAttempts: rp.max_attempts, window: dur(rp.window),
      });
      assert.deepEqual(foo.args.taskSpec.placement, {
        constraints: g.deploy.placement.constraints,
        prefs: (g.deploy.placement.preferences as Any[]).map((p) => p.spread),
        maxReplicas: g.deploy.placement.max_replicas_per_node,
      });
    });

    it("top-level networks: only those services use, overlay by default, options stringified, stack label", () => {
      const other = golden.networks["other-network"];
      assert.deepEqual(spec.networks.map((n) => n.name), ["st_other-network", "st_other-other-network", "st_some-network"]);
      assert.deepEqual(spec.networks[0].args, {
        name: "st_other-network",
        driver: other.driver,
        options: other.driver_opts,
        ipamDriver: other.ipam.driver,
        ipamConfigs: other.ipam.config,
        labels: [{ label: "com.docker.stack.namespace", value: "st" }, { label: "foo", value: "bar" }],
      });
      assert.deepEqual(spec.networks[2].args, { name: "st_some-network", driver: "overlay", labels: [{ label: "com.docker.stack.namespace", value: "st" }] });
    });

    it("secrets and configs: file content base64, name: honoured, external names from the golden file", () => {
      const s1 = spec.secrets.find((x) => x.key === "secret1")!;
      assert.equal(Buffer.from(s1.args.data, "base64").toString(), "secret content\n");
      assert.equal(s1.stackDeployName, "st_secret1");
      assert.deepEqual(s1.args.labels, [{ label: "com.docker.stack.namespace", value: "st" }, { label: "foo", value: "bar" }]);
      assert.equal(spec.secrets.find((x) => x.key === "secret4")!.stackDeployName, golden.secrets.secret4.name);
      assert.equal(spec.configs.find((x) => x.key === "config4")!.stackDeployName, golden.configs.config4.name);
      assert.deepEqual(spec.external.secrets, [golden.secrets.secret2.name, golden.secrets.secret3.name].sort());
      assert.deepEqual(spec.external.configs, [golden.configs.config2.name, golden.configs.config3.name].sort());
    });

    it("every ignored key of the file is named in a warning", () => {
      const keys = new Set(spec.warnings.map((w) => w.key));
      for (const k of ["build", "cgroup_parent", "devices", "domainname", "external_links", "ipc", "links", "mac_address",
        "network_mode", "pid", "privileged", "restart", "security_opt", "container_name", "expose"]) {
        assert.ok(keys.has(`services.foo.${k}`), `warning for ${k}`);
      }
    });
  });
});
