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
import { ComposeError, convertStack, loadCompose, parseDuration, type StackSpec , LATEST_CLI } from "../../compose";

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

const ns = (s: string) => parseDuration(s)!;

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
    let t: Any;
    let c: Any;
    // golden paths are relative to working dir /foo
    const local = (p: string) => (p === "/foo" ? dir : p.startsWith("/foo/") ? path.join(dir, p.slice(5)) : p);

    before(() => {
      dir = workdir();
      spec = convertStack(loadCompose(patched(dir), { cli: LATEST_CLI, stackName: "st", env: ENV }));
      foo = spec.services[0];
      t = foo.spec.TaskTemplate as Any;
      c = t.ContainerSpec as Any;
    });

    it("service name, image and service labels", () => {
      assert.equal(foo.name, "st_foo");
      assert.equal(foo.spec.Name, "st_foo");
      assert.equal(c.Image, g.image);
      assert.deepEqual(foo.spec.Labels, { ...g.deploy.labels, "com.docker.stack.image": "redis", "com.docker.stack.namespace": "st" });
    });

    it("entrypoint -> Command, command -> Args", () => {
      assert.deepEqual(c.Command, g.entrypoint);
      assert.deepEqual(c.Args, g.command);
    });

    it("hostname, user, working_dir, read_only, stop_grace_period (ns), stop_signal", () => {
      assert.equal(c.Hostname, g.hostname);
      assert.equal(c.User, g.user);
      assert.equal(c.Dir, g.working_dir);
      assert.equal(c.ReadOnly, g.read_only);
      assert.equal(c.StopGracePeriod, ns(g.stop_grace_period));
      assert.equal(c.StopSignal, g.stop_signal);
    });

    it("extra_hosts as \"IP host\", split at the first ':', in the file's order", () => {
      const want = (g.extra_hosts as string[]).map((h) => {
        const i = h.indexOf(":");
        return `${h.slice(i + 1)} ${h.slice(0, i)}`;
      });
      assert.deepEqual(c.Hosts, want);
    });

    it("dns and dns_search", () => {
      assert.deepEqual(c.DNSConfig, { Nameservers: g.dns, Search: g.dns_search });
    });

    it("healthcheck with durations in ns, start_interval included", () => {
      const h = g.healthcheck;
      assert.deepEqual(c.Healthcheck, {
        Test: h.test, Interval: ns(h.interval), Timeout: ns(h.timeout), StartPeriod: ns(h.start_period),
        StartInterval: ns(h.start_interval), Retries: h.retries,
      });
    });

    it("environment from env_files and environment, resolved as the golden file, sorted", () => {
      assert.deepEqual(c.Env, Object.entries(g.environment as Record<string, string>).map(([k, v]) => `${k}=${v}`).sort());
    });

    it("container labels plus the namespace label", () => {
      assert.deepEqual(c.Labels, { ...g.labels, "com.docker.stack.namespace": "st" });
    });

    it("sysctls, cap_add/cap_drop", () => {
      assert.deepEqual(c.Sysctls, g.sysctls);
      assert.deepEqual(c.CapabilityAdd, ["ALL"]);
      assert.deepEqual(c.CapabilityDrop, (g.cap_drop as string[]).map((x) => `CAP_${x}`));
    });

    it("tty, stdin_open and ulimits (sorted by name; a single value is soft and hard)", () => {
      assert.equal(c.TTY, g.tty);
      assert.equal(c.OpenStdin, g.stdin_open);
      assert.deepEqual(c.Ulimits, [
        { Name: "nofile", Soft: g.ulimits.nofile.soft, Hard: g.ulimits.nofile.hard },
        { Name: "nproc", Soft: g.ulimits.nproc, Hard: g.ulimits.nproc },
      ]);
      assert.ok(!spec.differences.some((d) => /pulumi/i.test(d)), "no difference is about a provider's shape");
    });

    it("logging", () => {
      assert.deepEqual(t.LogDriver, { Name: g.logging.driver, Options: g.logging.options });
    });

    it("mounts in the file's order: bind (resolved), named volume with stack labels, anonymous volume, tmpfs with size, cluster", () => {
      const want: Any[] = (g.volumes as Any[]).map((v) => {
        const m: Any = { Type: v.type, Target: v.target };
        if (v.type === "cluster") return { ...m, Source: v.source, ClusterOptions: {} };
        if (v.read_only) m.ReadOnly = true;
        if (v.consistency) m.Consistency = v.consistency;
        if (v.type === "bind") m.Source = local(v.source);
        if (v.type === "volume" && v.source) {
          m.Source = `st_${v.source}`;
          m.VolumeOptions = { Labels: { "com.docker.stack.namespace": "st" } };
        }
        if (v.type === "tmpfs") m.TmpfsOptions = { SizeBytes: v.tmpfs.size };
        return m;
      });
      assert.deepEqual(c.Mounts, want);
      assert.ok(want.some((m) => m.Type === "cluster"));
      assert.equal(c.Mounts[6].Consistency, "cached");
    });

    it("secrets and configs: references sorted by name, defaults uid/gid 0 mode 0444, no IDs", () => {
      assert.deepEqual(c.Secrets, [
        { SecretName: "my_secret", File: { Name: "my_secret", UID: "103", GID: "103", Mode: 0o440 } },
        { SecretName: foo.secrets[1], File: { Name: "secret1", UID: "0", GID: "0", Mode: 0o444 } },
      ]);
      assert.match(foo.secrets[1], /^st_secret1-[0-9a-f]{8}$/);
      assert.deepEqual(c.Configs, [
        { ConfigName: "my_config", File: { Name: "/my_config", UID: "103", GID: "103", Mode: 0o440 } },
        { ConfigName: foo.configs[1], File: { Name: "config1", UID: "0", GID: "0", Mode: 0o444 } },
      ]);
      assert.equal(g.secrets[1].mode, 288, "the golden mode is the octal 0440");
    });

    it("ports: short syntax expanded per port, sorted by published port", () => {
      const want = (g.ports as Any[]).map((p) => ({
        TargetPort: p.target, Protocol: p.protocol, PublishMode: p.mode, ...(p.published ? { PublishedPort: p.published } : {}),
      })).sort((a, b) => (a.PublishedPort ?? 0) - (b.PublishedPort ?? 0) || a.TargetPort - b.TargetPort);
      assert.deepEqual(foo.spec.EndpointSpec, { Mode: g.deploy.endpoint_mode, Ports: want });
    });

    it("networks: sorted by target, aliases plus the service name, driver_opts, no ipv4/ipv6 address", () => {
      assert.deepEqual(t.Networks, [
        { Target: "st_other-network", Aliases: ["foo"] },
        { Target: "st_other-other-network", Aliases: ["foo"] },
        { Target: "st_some-network", Aliases: [...g.networks["some-network"].aliases, "foo"], DriverOpts: { driveropt1: "optval1", driveropt2: "optval2" } },
      ]);
    });

    it("deploy: mode/replicas, update_config, rollback_config", () => {
      assert.deepEqual(foo.spec.Mode, { Replicated: { Replicas: g.deploy.replicas } });
      for (const [ours, theirs] of [[foo.spec.UpdateConfig, g.deploy.update_config], [foo.spec.RollbackConfig, g.deploy.rollback_config]] as Any[][]) {
        assert.deepEqual(ours, {
          Parallelism: theirs.parallelism,
          Delay: ns(theirs.delay),
          FailureAction: theirs.failure_action,
          Monitor: ns(theirs.monitor),
          MaxFailureRatio: theirs.max_failure_ratio,
          Order: theirs.order,
        });
        assert.equal(ns(theirs.monitor), 60e9, "golden 1m0s");
      }
    });

    it("deploy: resources (bytes, nano CPUs, pids, generic resources)", () => {
      const r = g.deploy.resources;
      assert.deepEqual(t.Resources, {
        Limits: { NanoCPUs: Number(r.limits.cpus) * 1e9, MemoryBytes: Number(r.limits.memory), Pids: r.limits.pids },
        Reservations: {
          NanoCPUs: Math.round(Number(r.reservations.cpus) * 1e9),
          MemoryBytes: Number(r.reservations.memory),
          GenericResources: [
            { DiscreteResourceSpec: { Kind: "gpu", Value: 2 } }, { DiscreteResourceSpec: { Kind: "ssd", Value: 1 } },
          ],
        },
      });
    });

    it("deploy: restart_policy and placement", () => {
      const rp = g.deploy.restart_policy;
      assert.deepEqual(t.RestartPolicy, {
        Condition: rp.condition, Delay: ns(rp.delay), MaxAttempts: rp.max_attempts, Window: ns(rp.window),
      });
      assert.deepEqual(t.Placement, {
        Constraints: g.deploy.placement.constraints,
        Preferences: (g.deploy.placement.preferences as Any[]).map((p) => ({ Spread: { SpreadDescriptor: p.spread } })),
        MaxReplicas: g.deploy.placement.max_replicas_per_node,
      });
    });

    it("top-level networks: only those services use, overlay by default, options stringified, stack label", () => {
      const other = golden.networks["other-network"];
      assert.deepEqual(spec.networks.map((n) => n.name), ["st_other-network", "st_other-other-network", "st_some-network"]);
      assert.deepEqual(spec.networks[0].create, {
        Name: "st_other-network",
        CheckDuplicate: true,
        Scope: "swarm",
        Driver: other.driver,
        Options: other.driver_opts,
        IPAM: { Driver: other.ipam.driver, Config: (other.ipam.config as Any[]).map((x) => ({ Subnet: x.subnet })) },
        Labels: { "com.docker.stack.namespace": "st", foo: "bar" },
      });
      assert.deepEqual(spec.networks[2].create, {
        Name: "st_some-network", CheckDuplicate: true, Scope: "swarm", Driver: "overlay", Labels: { "com.docker.stack.namespace": "st" },
      });
    });

    it("secrets and configs: file content base64, name: honoured, external names from the golden file", () => {
      const s1 = spec.secrets.find((x) => x.key === "secret1")!;
      assert.equal(Buffer.from(String(s1.spec.Data), "base64").toString(), "secret content\n");
      assert.equal(s1.stackDeployName, "st_secret1");
      assert.equal(s1.spec.Name, s1.name);
      assert.deepEqual(s1.spec.Labels, { "com.docker.stack.namespace": "st", foo: "bar" });
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
