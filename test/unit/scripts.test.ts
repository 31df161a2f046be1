// Unit tests for the shell scripts run on the nodes (scripts/*.sh).
//
// Each script runs against a temporary root (DCCN_ROOT) with a hermetic PATH: fake system tools
// first (test/fixtures/scripts/fake-tool.sh, which logs every call and keeps its state in files),
// then a directory of links to only the real utilities the scripts may use. Nothing on this machine
// is touched, and a dockerd or lvm2 installed on the test machine cannot leak into a test.
//
// Run: node --import tsx --test test/unit/scripts*.test.ts
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";

const REPO = path.resolve(__dirname, "..", "..");
const SCRIPTS = path.join(REPO, "scripts");
const FIXTURES = path.join(REPO, "test", "fixtures", "scripts");
const FAKE_TOOL = path.join(FIXTURES, "fake-tool.sh");

const LVM_FAKES = ["pvcreate", "vgcreate", "lvcreate", "lvconvert", "lvchange", "lvs", "vgs", "pvs"];
const ENGINE_FAKES = ["dockerd", "docker"];
const OTHER_FAKES = [
  "blockdev", "blkid", "findmnt", "mount", "mkfs.xfs", "mkfs.ext4",
  "systemctl", "service", "apt-get", "dnf", "yum", "curl",
];
const ALL_FAKES = [...LVM_FAKES, ...ENGINE_FAKES, ...OTHER_FAKES];

// The real utilities the scripts (and the fake tool) are allowed to use.
const SYSTEM_TOOLS = [
  "bash", "sh", "env", "cat", "grep", "sed", "awk", "tr", "cut", "head", "tail", "sort", "wc",
  "mkdir", "rmdir", "mv", "cp", "rm", "ln", "ls", "chmod", "install", "touch", "stat", "readlink",
  "dirname", "basename", "mktemp", "date", "sleep", "timeout", "cmp", "sha256sum", "openssl",
  "python3", "jq",
];

function findOnPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(":")) {
    if (!dir) continue;
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

function realTool(name: string): string | undefined {
  if (name === "python3") {
    // pyenv and similar put shell shims on PATH: link the interpreter itself.
    const r = spawnSync("python3", ["-c", "import sys; print(sys.executable)"], { encoding: "utf8" });
    const exe = r.status === 0 ? r.stdout.trim() : "";
    return exe ? fs.realpathSync(exe) : undefined;
  }
  const p = findOnPath(name);
  return p ? fs.realpathSync(p) : undefined;
}

const BASH = realTool("bash");
const HAVE = {
  python3: realTool("python3") !== undefined,
  jq: realTool("jq") !== undefined,
};
const SHARED_SYS = fs.mkdtempSync(path.join(os.tmpdir(), "dccn-scripts-sys-"));
const TEMP_DIRS: string[] = [SHARED_SYS];
after(() => {
  if (process.env.DCCN_KEEP_TEST_DIRS === "1") return;
  for (const d of TEMP_DIRS) fs.rmSync(d, { recursive: true, force: true });
});
for (const t of SYSTEM_TOOLS) {
  const real = realTool(t);
  if (real) fs.symlinkSync(real, path.join(SHARED_SYS, t));
}

interface LabOptions {
  /** fake tools on PATH; default: all of them */
  fakes?: string[];
  /** real tools to leave out of PATH */
  omit?: string[];
  /** make the root look like a systemd system (/run/systemd/system); default true */
  systemd?: boolean;
  /** /etc/os-release text */
  osRelease?: string;
}

interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
  /** the fake tool calls of this run, "tool arg1 arg2 ..." */
  calls: string[];
  /** the DCCN_RESULT line as key/value pairs */
  result: Record<string, string>;
  elapsedMs: number;
}

const DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nID=debian\n';
const ROCKY =
  'NAME="Rocky Linux"\nID="rocky"\nID_LIKE="rhel centos fedora"\nPRETTY_NAME="Rocky Linux 9.4 (Blue Onyx)"\n';
const CENTOS7 =
  'NAME="CentOS Linux"\nID="centos"\nID_LIKE="rhel fedora"\nPRETTY_NAME="CentOS Linux 7 (Core)"\n';

class Lab {
  readonly dir: string;
  readonly root: string;
  readonly state: string;
  readonly bin: string;
  readonly sys: string;
  readonly log: string;

  constructor(opts: LabOptions = {}) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), "dccn-scripts-"));
    TEMP_DIRS.push(this.dir);
    this.root = path.join(this.dir, "root");
    this.state = path.join(this.dir, "state");
    this.bin = path.join(this.dir, "bin");
    this.log = path.join(this.dir, "calls.log");
    for (const d of [this.root, this.state, this.bin, path.join(this.dir, "tmp"), path.join(this.root, "etc")]) {
      fs.mkdirSync(d, { recursive: true });
    }
    for (const t of opts.fakes ?? ALL_FAKES) fs.symlinkSync(FAKE_TOOL, path.join(this.bin, t));
    if (opts.omit && opts.omit.length > 0) {
      this.sys = path.join(this.dir, "sys");
      fs.mkdirSync(this.sys);
      for (const t of fs.readdirSync(SHARED_SYS)) {
        if (!opts.omit.includes(t)) fs.symlinkSync(fs.readlinkSync(path.join(SHARED_SYS, t)), path.join(this.sys, t));
      }
    } else {
      this.sys = SHARED_SYS;
    }
    if (opts.systemd ?? true) fs.mkdirSync(path.join(this.root, "run", "systemd", "system"), { recursive: true });
    fs.writeFileSync(path.join(this.root, "etc", "os-release"), opts.osRelease ?? DEBIAN);
    fs.writeFileSync(this.log, "");
  }

  /** a path inside the temporary root */
  p(abs: string): string {
    return path.join(this.root, abs);
  }

  /** write a state file of the fakes (see fake-tool.sh) */
  set(rel: string, content = ""): void {
    const f = path.join(this.state, rel);
    fs.mkdirSync(path.dirname(f), { recursive: true });
    fs.writeFileSync(f, content);
  }

  unset(rel: string): void {
    fs.rmSync(path.join(this.state, rel), { force: true, recursive: true });
  }

  has(rel: string): boolean {
    return fs.existsSync(path.join(this.state, rel));
  }

  device(dev: string): void {
    this.set(`dev/${dev.replace(/\//g, "_")}`);
  }

  write(abs: string, content: string, mode?: number): void {
    const f = this.p(abs);
    fs.mkdirSync(path.dirname(f), { recursive: true });
    fs.writeFileSync(f, content);
    if (mode !== undefined) fs.chmodSync(f, mode);
  }

  read(abs: string): string {
    return fs.readFileSync(this.p(abs), "utf8");
  }

  exists(abs: string): boolean {
    return fs.existsSync(this.p(abs));
  }

  run(script: string, env: Record<string, string> = {}, input = ""): RunResult {
    assert.ok(BASH, "bash is needed to run the scripts");
    fs.writeFileSync(this.log, "");
    const started = Date.now();
    const r = spawnSync(BASH, [path.join(SCRIPTS, script)], {
      input,
      encoding: "utf8",
      timeout: 60_000,
      env: {
        PATH: `${this.bin}:${this.sys}`,
        HOME: this.dir,
        LC_ALL: "C",
        TMPDIR: path.join(this.dir, "tmp"),
        DCCN_ROOT: this.root,
        FAKE_LOG: this.log,
        FAKE_STATE: this.state,
        FAKE_BIN: this.bin,
        ...env,
      },
    });
    const elapsedMs = Date.now() - started;
    const calls = fs.readFileSync(this.log, "utf8").split("\n").filter((l) => l !== "");
    const lines = r.stdout.split("\n").filter((l) => l !== "");
    const last = lines[lines.length - 1] ?? "";
    const result: Record<string, string> = {};
    if (last.startsWith("DCCN_RESULT ")) {
      for (const kv of last.slice("DCCN_RESULT ".length).split(" ")) {
        const i = kv.indexOf("=");
        result[kv.slice(0, i)] = kv.slice(i + 1);
      }
    }
    return { status: r.status, stdout: r.stdout, stderr: r.stderr, calls, result, elapsedMs };
  }
}

/** The calls that change something on a node. */
const MUTATING =
  /^(pvcreate|pvremove|vgcreate|vgremove|lvcreate|lvremove|lvconvert|lvchange|mkfs\.\w+|mount|curl|(apt-get|dnf|yum) |systemctl (enable|restart|start|stop|daemon-reload)|service docker (start|stop|restart))/;
function mutating(r: RunResult): string[] {
  return r.calls.filter((c) => MUTATING.test(c));
}

/** A successful run prints exactly one line on stdout: the result. */
function assertOk(r: RunResult, changed: "0" | "1"): void {
  assert.equal(r.status, 0, `exit status; stderr:\n${r.stderr}`);
  assert.match(r.stdout, /^DCCN_RESULT [^\n]*\n$/, "stdout is exactly one DCCN_RESULT line");
  assert.equal(r.result.changed, changed, `changed=; stdout: ${r.stdout}`);
  assert.equal(r.result.error, undefined);
}

function assertFails(r: RunResult, code: string, changed: "0" | "1" = "0"): void {
  assert.equal(r.status, 1, `exit status; stdout: ${r.stdout}stderr:\n${r.stderr}`);
  assert.equal(r.result.error, code, `error=; stdout: ${r.stdout}stderr:\n${r.stderr}`);
  assert.equal(r.result.changed, changed, "changed=");
  assert.match(r.stderr, /error: /);
}

function modeOf(f: string): number {
  return fs.statSync(f).mode & 0o777;
}

// --------------------------------------------------------------------------------------------------
describe("shellcheck", () => {
  test("scripts/*.sh and the fake tool pass shellcheck", (t) => {
    const shellcheck = findOnPath("shellcheck");
    if (!shellcheck) {
      if (process.env.CI === "true") assert.fail("shellcheck is not installed (and CI=true)");
      t.skip("shellcheck is not installed");
      return;
    }
    const files = fs.readdirSync(SCRIPTS).filter((f) => f.endsWith(".sh")).map((f) => path.join(SCRIPTS, f));
    assert.ok(files.length >= 5, "the five node scripts exist");
    const r = spawnSync(shellcheck, [...files, FAKE_TOOL], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });

  test("every script is strict bash, executable, and ends with a result line", () => {
    for (const f of ["engine-install.sh", "storage-thinpool.sh", "storage-overlay2.sh", "daemon-json.sh", "registry-ca.sh"]) {
      const file = path.join(SCRIPTS, f);
      const text = fs.readFileSync(file, "utf8");
      assert.match(text, /^#!\/usr\/bin\/env bash\n/, `${f}: shebang`);
      assert.match(text, /^set -euo pipefail$/m, `${f}: set -euo pipefail`);
      assert.match(text, /DCCN_RESULT changed=/, `${f}: result line`);
      assert.ok((fs.statSync(file).mode & 0o111) !== 0, `${f}: executable`);
    }
  });
});

// --------------------------------------------------------------------------------------------------
describe("engine-install.sh", () => {
  test("apt family: installs docker.io, enables it, reports the version; a second run changes nothing", () => {
    const lab = new Lab({ fakes: [...OTHER_FAKES, ...LVM_FAKES] }); // no dockerd yet
    const r = lab.run("engine-install.sh");
    assertOk(r, "1");
    assert.deepEqual(mutating(r), [
      "apt-get update",
      "apt-get install -y --no-install-recommends docker.io",
      "systemctl enable --now docker",
    ]);
    assert.equal(r.result.engine, "20.10.24+dfsg1");
    assert.equal(r.result.manager, "apt-get");
    assert.equal(r.result.package, "docker.io");
    assert.equal(r.result.installed, "1");

    const again = lab.run("engine-install.sh");
    assertOk(again, "0");
    assert.deepEqual(mutating(again), []);
    assert.equal(again.result.installed, "0");
    assert.equal(again.result.engine, "20.10.24+dfsg1");
    assert.match(again.stderr, /nothing changed/);
  });

  test("dnf family: adds the docker-ce repo once and installs docker-ce (dnf preferred over apt-get)", () => {
    const lab = new Lab({ fakes: [...OTHER_FAKES], osRelease: ROCKY });
    const r = lab.run("engine-install.sh");
    assertOk(r, "1");
    assert.deepEqual(mutating(r), [
      `curl -fsSL -o ${lab.p("/etc/yum.repos.d/docker-ce.repo")}.tmp https://download.docker.com/linux/centos/docker-ce.repo`,
      "dnf install -y docker-ce",
      "systemctl enable --now docker",
    ]);
    assert.match(lab.read("/etc/yum.repos.d/docker-ce.repo"), /download\.docker\.com/);
    assert.equal(r.result.manager, "dnf");
    assert.deepEqual(mutating(lab.run("engine-install.sh")), []);
  });

  test("yum family with DOCKER_PACKAGE (a pinned list) and DOCKER_REPO_URL='' (configured repos only)", () => {
    const lab = new Lab({ fakes: OTHER_FAKES.filter((f) => f !== "dnf"), osRelease: CENTOS7 });
    const r = lab.run("engine-install.sh", {
      DOCKER_PACKAGE: "docker-ce-19.03.15 docker-ce-cli-19.03.15",
      DOCKER_REPO_URL: "",
    });
    assertOk(r, "1");
    assert.deepEqual(mutating(r), [
      "yum install -y docker-ce-19.03.15 docker-ce-cli-19.03.15",
      "systemctl enable --now docker",
    ]);
    assert.equal(r.result.manager, "yum");
    assert.equal(lab.exists("/etc/yum.repos.d/docker-ce.repo"), false);
  });

  test("neither dnf, yum nor apt-get: a clear error naming the OS, nothing run", () => {
    const lab = new Lab({
      fakes: ["systemctl", "service"],
      osRelease: 'NAME="Alpine Linux"\nID=alpine\nPRETTY_NAME="Alpine Linux v3.19"\n',
    });
    const r = lab.run("engine-install.sh");
    assertFails(r, "no-package-manager");
    assert.match(r.stderr, /neither dnf, yum nor apt-get found on Alpine Linux v3\.19 \(ID=alpine\)/);
    assert.deepEqual(r.calls, []);
  });

  test("already installed: nothing installed; enabled only when it was not", () => {
    const lab = new Lab();
    const r = lab.run("engine-install.sh");
    assertOk(r, "1");
    assert.deepEqual(mutating(r), ["systemctl enable --now docker"], "enabled, not installed");
    assert.equal(r.result.installed, "0");

    const again = lab.run("engine-install.sh");
    assertOk(again, "0");
    assert.deepEqual(mutating(again), []);
    assert.equal(again.result.enabled, "1");
  });

  test("no systemd: started with the init script only when the engine does not answer", () => {
    const lab = new Lab({ systemd: false });
    lab.write("/etc/init.d/docker", "#!/bin/sh\n", 0o755);
    const r = lab.run("engine-install.sh");
    assertOk(r, "1");
    assert.deepEqual(mutating(r), ["service docker start"]);
    assert.equal(r.result.init, "sysv");
    const again = lab.run("engine-install.sh");
    assertOk(again, "0");
    assert.deepEqual(mutating(again), []);
  });

  test("no systemd but a systemctl shim (the lab's nodes): the shim is used, not the init script", () => {
    const lab = new Lab({ systemd: false });
    lab.set("systemctl_shim");
    lab.write("/etc/init.d/docker", "#!/bin/sh\n", 0o755);
    const r = lab.run("engine-install.sh");
    assertOk(r, "1");
    assert.deepEqual(mutating(r), ["systemctl enable --now docker"]);
    assert.equal(r.result.init, "systemctl");
    assertOk(lab.run("engine-install.sh"), "0");
  });
});

// --------------------------------------------------------------------------------------------------
const THINPOOL_SEQUENCE = [
  "pvcreate /dev/sdb",
  "vgcreate docker /dev/sdb",
  "lvcreate --wipesignatures y -n thinpool docker -l 95%VG",
  "lvcreate --wipesignatures y -n thinpoolmeta docker -l 1%VG",
  "lvconvert -y --zero n -c 512K --thinpool docker/thinpool --poolmetadata docker/thinpoolmeta",
  "lvchange --metadataprofile docker-thinpool docker/thinpool",
];
const PROFILE = "/etc/lvm/profile/docker-thinpool.profile";

describe("storage-thinpool.sh", () => {
  test("fresh disk: the document's steps in order, the profile, lvs -o+seg_monitor", () => {
    const lab = new Lab();
    lab.device("/dev/sdb");
    const r = lab.run("storage-thinpool.sh", { DEVICE: "/dev/sdb" });
    assertOk(r, "1");
    assert.deepEqual(mutating(r), THINPOOL_SEQUENCE);
    assert.equal(r.calls[r.calls.length - 1], "lvs -o+seg_monitor");
    assert.equal(
      lab.read(PROFILE),
      fs.readFileSync(path.join(FIXTURES, "docker-thinpool.profile"), "utf8"),
      "the profile is the document's",
    );
    assert.equal(modeOf(lab.p(PROFILE)), 0o644);
    assert.equal(lab.has("lv/docker/thinpoolmeta"), false, "metadata LV converted into the pool");
    assert.match(fs.readFileSync(path.join(lab.state, "lv/docker/thinpool"), "utf8"), /^t/);
    assert.equal(r.result.thinpool, "/dev/mapper/docker-thinpool");
    assert.equal(r.result.created, "1");
    assert.equal(r.result.engine, "20.10.24+dfsg1");
  });

  test("second run: changed=0, no lvcreate, nothing rewritten", () => {
    const lab = new Lab();
    lab.device("/dev/sdb");
    assertOk(lab.run("storage-thinpool.sh", { DEVICE: "/dev/sdb" }), "1");
    const before = fs.statSync(lab.p(PROFILE)).mtimeMs;
    const r = lab.run("storage-thinpool.sh", { DEVICE: "/dev/sdb" });
    assertOk(r, "0");
    assert.deepEqual(mutating(r), []);
    assert.equal(r.calls.filter((c) => c.startsWith("lvcreate")).length, 0);
    assert.equal(r.result.created, "0");
    assert.equal(r.result.profile, "unchanged");
    assert.equal(fs.statSync(lab.p(PROFILE)).mtimeMs, before);
    assert.match(r.stderr, /nothing changed/);
  });

  test("a drifted profile is rewritten and re-applied, the pool left alone", () => {
    const lab = new Lab();
    lab.device("/dev/sdb");
    assertOk(lab.run("storage-thinpool.sh", { DEVICE: "/dev/sdb" }), "1");
    lab.write(PROFILE, "activation {\n    thin_pool_autoextend_threshold=100\n}\n");
    const r = lab.run("storage-thinpool.sh", { DEVICE: "/dev/sdb" });
    assertOk(r, "1");
    assert.deepEqual(mutating(r), ["lvchange --metadataprofile docker-thinpool docker/thinpool"]);
    assert.match(lab.read(PROFILE), /thin_pool_autoextend_threshold=80\n/);
  });

  test("device missing: an error and no call that changes anything", () => {
    const lab = new Lab();
    const r = lab.run("storage-thinpool.sh", { DEVICE: "/dev/sdz" });
    assertFails(r, "device-missing");
    assert.match(r.stderr, /device not found.*\/dev\/sdz/);
    assert.deepEqual(mutating(r), []);
    assert.equal(lab.exists(PROFILE), false);
  });

  test("DEVICE unset: an error naming the variable", () => {
    const r = new Lab().run("storage-thinpool.sh");
    assertFails(r, "no-device");
    assert.match(r.stderr, /DEVICE is not set/);
    assert.deepEqual(r.calls, []);
  });

  test("volume group docker present without a thin pool: an error with the clean-up steps, nothing changed", () => {
    const lab = new Lab();
    lab.device("/dev/sdb");
    lab.set("pv/_dev_sdb", "docker\n");
    lab.set("vg/docker/.keep");
    lab.set("lv/docker/thinpool", "-wi-a-----\n");
    lab.set("lv/docker/thinpoolmeta", "-wi-a-----\n");
    const r = lab.run("storage-thinpool.sh", { DEVICE: "/dev/sdb" });
    assertFails(r, "vg-without-thinpool");
    assert.match(r.stderr, /lvremove \/dev\/docker\/thinpool; lvremove \/dev\/docker\/thinpoolmeta; vgremove docker; pvremove \/dev\/sdb/);
    assert.deepEqual(mutating(r), []);
    assert.equal(lab.exists(PROFILE), false);
  });

  test("an interrupted run (lvconvert failed) is detected on the next run, not built upon", () => {
    const lab = new Lab();
    lab.device("/dev/sdb");
    lab.set("fail/lvconvert");
    const first = lab.run("storage-thinpool.sh", { DEVICE: "/dev/sdb" });
    assert.equal(first.status, 5);
    assert.equal(first.result.changed, "1");
    assert.equal(first.result.error, "unexpected");
    lab.unset("fail/lvconvert");
    const second = lab.run("storage-thinpool.sh", { DEVICE: "/dev/sdb" });
    assertFails(second, "vg-without-thinpool");
    assert.deepEqual(mutating(second), []);
  });

  test("a disk of another volume group, or with a file system, is refused untouched", () => {
    const lab = new Lab();
    lab.device("/dev/sdb");
    lab.set("pv/_dev_sdb", "data\n");
    const foreign = lab.run("storage-thinpool.sh", { DEVICE: "/dev/sdb" });
    assertFails(foreign, "foreign-vg");
    assert.match(foreign.stderr, /volume group 'data'/);
    assert.deepEqual(mutating(foreign), []);

    lab.unset("pv/_dev_sdb");
    lab.set("blkid/_dev_sdb", "DEVNAME=/dev/sdb\nUUID=1234\nTYPE=xfs\n");
    const used = lab.run("storage-thinpool.sh", { DEVICE: "/dev/sdb" });
    assertFails(used, "device-in-use");
    assert.match(used.stderr, /TYPE=xfs.*wipefs -a \/dev\/sdb/s);
    assert.deepEqual(mutating(used), []);
  });

  test("an existing pool on another disk than DEVICE is an error", () => {
    const lab = new Lab();
    lab.device("/dev/sdb");
    assertOk(lab.run("storage-thinpool.sh", { DEVICE: "/dev/sdb" }), "1");
    lab.device("/dev/sdc");
    const r = lab.run("storage-thinpool.sh", { DEVICE: "/dev/sdc" });
    assertFails(r, "device-not-in-vg");
    assert.deepEqual(mutating(r), []);
  });

  test("devicemapper on engine 25 or newer is refused before anything is touched", () => {
    const lab = new Lab();
    lab.device("/dev/sdb");
    lab.set("engine_version", "25.0.3\n");
    const r = lab.run("storage-thinpool.sh", { DEVICE: "/dev/sdb" });
    assertFails(r, "engine-too-new");
    assert.match(r.stderr, /Docker Engine 25\.0\.3 has no devicemapper storage driver \(deprecated in 20\.10,\s+removed in 25\.0\)/);
    assert.deepEqual(r.calls, ["dockerd --version"]);

    const pinned = lab.run("storage-thinpool.sh", { DEVICE: "/dev/sdb", ENGINE_VERSION: "27.1.1" });
    assertFails(pinned, "engine-too-new");
    assert.deepEqual(pinned.calls, []);

    const old = lab.run("storage-thinpool.sh", { DEVICE: "/dev/sdb", ENGINE_VERSION: "24.0.9" });
    assertOk(old, "1");
  });

  test("no engine at all: the version cannot be checked, so nothing is done", () => {
    const lab = new Lab({ fakes: ALL_FAKES.filter((f) => !ENGINE_FAKES.includes(f)) });
    lab.device("/dev/sdb");
    const r = lab.run("storage-thinpool.sh", { DEVICE: "/dev/sdb" });
    assertFails(r, "engine-version-unknown");
    assert.deepEqual(mutating(r), []);
  });

  test("lvm2 missing: installed first, as the document does, then the pool is made", () => {
    const lab = new Lab({ fakes: ALL_FAKES.filter((f) => !LVM_FAKES.includes(f)) });
    lab.device("/dev/sdb");
    const r = lab.run("storage-thinpool.sh", { DEVICE: "/dev/sdb" });
    assertOk(r, "1");
    assert.deepEqual(mutating(r), ["apt-get install -y --no-install-recommends lvm2", ...THINPOOL_SEQUENCE]);
  });

  test("autoextend threshold and percent can be changed", () => {
    const lab = new Lab();
    lab.device("/dev/sdb");
    assertOk(lab.run("storage-thinpool.sh", { DEVICE: "/dev/sdb", AUTOEXTEND_THRESHOLD: "70", AUTOEXTEND_PERCENT: "10" }), "1");
    assert.equal(
      lab.read(PROFILE),
      "activation {\n    thin_pool_autoextend_threshold=70\n    thin_pool_autoextend_percent=10\n}\n",
    );
  });
});

// --------------------------------------------------------------------------------------------------
describe("storage-overlay2.sh", () => {
  test("without DEVICE: nothing to set up, changed=0", () => {
    const lab = new Lab();
    const r = lab.run("storage-overlay2.sh");
    assertOk(r, "0");
    assert.deepEqual(r.calls, []);
    assert.equal(r.result.device, "none");
  });

  test("with DEVICE: volume, xfs with ftype=1, fstab entry, mounted; the second run changes nothing", () => {
    const lab = new Lab();
    lab.device("/dev/sdb");
    lab.write("/etc/fstab", "UUID=abcd / ext4 defaults 0 1\n");
    const r = lab.run("storage-overlay2.sh", { DEVICE: "/dev/sdb" });
    assertOk(r, "1");
    assert.deepEqual(mutating(r), [
      "pvcreate /dev/sdb",
      "vgcreate docker /dev/sdb",
      "lvcreate --wipesignatures y -n data docker -l 100%FREE",
      "mkfs.xfs -n ftype=1 /dev/docker/data",
      "systemctl daemon-reload",
      `mount -t xfs /dev/mapper/docker-data ${lab.p("/var/lib/docker")}`,
    ]);
    assert.equal(
      lab.read("/etc/fstab"),
      "UUID=abcd / ext4 defaults 0 1\n" +
        "# dccn-swarm: the Docker data volume (scripts/storage-overlay2.sh)\n" +
        "/dev/mapper/docker-data /var/lib/docker xfs defaults 0 0\n",
    );
    assert.equal(r.result.volume, "/dev/mapper/docker-data");

    const again = lab.run("storage-overlay2.sh", { DEVICE: "/dev/sdb" });
    assertOk(again, "0");
    assert.deepEqual(mutating(again), []);
    assert.equal(again.result.fstab, "unchanged");
    assert.equal(again.result.mounted, "already");
  });

  test("existing engine data is kept: engine stopped, directory moved aside and copied, engine started", () => {
    const lab = new Lab();
    lab.device("/dev/sdb");
    lab.set("running");
    lab.write("/var/lib/docker/swarm/state.json", '{"node":"vm1"}');
    const r = lab.run("storage-overlay2.sh", { DEVICE: "/dev/sdb", FSTYPE: "ext4" });
    assertOk(r, "1");
    const m = mutating(r);
    assert.ok(m.includes("mkfs.ext4 -q /dev/docker/data"), m.join("\n"));
    const stop = m.indexOf("systemctl stop docker.socket docker");
    const mount = m.indexOf(`mount -t ext4 /dev/mapper/docker-data ${lab.p("/var/lib/docker")}`);
    const start = m.indexOf("systemctl start docker");
    assert.ok(stop >= 0 && stop < mount && mount < start, m.join("\n"));
    assert.equal(lab.read("/var/lib/docker/swarm/state.json"), '{"node":"vm1"}', "copied onto the volume");
    assert.equal(lab.read("/var/lib/docker.pre-dccn-swarm/swarm/state.json"), '{"node":"vm1"}', "old data kept");
  });

  test("refusals change nothing: missing device, fstab already mounting something else", () => {
    const lab = new Lab();
    const missing = lab.run("storage-overlay2.sh", { DEVICE: "/dev/sdq" });
    assertFails(missing, "device-missing");
    assert.deepEqual(mutating(missing), []);

    lab.device("/dev/sdb");
    lab.write("/etc/fstab", "/dev/sdc1 /var/lib/docker ext4 defaults 0 0\n");
    const conflict = lab.run("storage-overlay2.sh", { DEVICE: "/dev/sdb" });
    assertFails(conflict, "fstab-conflict");
    assert.deepEqual(mutating(conflict), []);
    assert.equal(lab.read("/etc/fstab"), "/dev/sdc1 /var/lib/docker ext4 defaults 0 0\n");
  });

  test("a volume group holding the devicemapper thin pool is not reused", () => {
    const lab = new Lab();
    lab.device("/dev/sdb");
    assertOk(lab.run("storage-thinpool.sh", { DEVICE: "/dev/sdb" }), "1");
    const r = lab.run("storage-overlay2.sh", { DEVICE: "/dev/sdb" });
    assertFails(r, "vg-has-thinpool");
    assert.deepEqual(mutating(r), []);
  });
});

// --------------------------------------------------------------------------------------------------
const DAEMON_JSON = "/etc/docker/daemon.json";
const DM_OPTS = [
  "dm.thinpooldev=/dev/mapper/docker-thinpool",
  "dm.use_deferred_removal=true",
  "dm.use_deferred_deletion=true",
];
const JSON_TOOLS = (["python3", "jq"] as const).filter((t) => HAVE[t]);

describe("daemon-json.sh", () => {
  test("at least one JSON tool (python3 or jq) is available to test with", () => {
    assert.ok(JSON_TOOLS.length > 0);
  });

  for (const tool of JSON_TOOLS) {
    describe(`with ${tool}`, () => {
      const env = { JSON_TOOL: tool };

      test("merges into the existing file (keys kept), restarts once; the second run changes nothing", () => {
        const lab = new Lab();
        lab.set("running");
        const existing = {
          "log-driver": "journald",
          "insecure-registries": ["docker-registry.dccn.nl:5000"],
          "log-opts": { tag: "{{.Name}}" },
          "storage-opts": ["dm.basesize=20G", "overlay2.size=10G"],
        };
        lab.write(DAEMON_JSON, JSON.stringify(existing));
        const r = lab.run(
          "daemon-json.sh",
          { ...env, STORAGE_DRIVER: "overlay2" },
          JSON.stringify({ "log-opts": { "max-size": "10m" }, "live-restore": true }),
        );
        assertOk(r, "1");
        assert.deepEqual(JSON.parse(lab.read(DAEMON_JSON)), {
          "log-driver": "journald",
          "insecure-registries": ["docker-registry.dccn.nl:5000"],
          "log-opts": { tag: "{{.Name}}", "max-size": "10m" },
          "live-restore": true,
          "storage-driver": "overlay2",
          "storage-opts": ["overlay2.size=10G"],
        });
        assert.equal(modeOf(lab.p(DAEMON_JSON)), 0o644);
        assert.deepEqual(JSON.parse(lab.read(`${DAEMON_JSON}.dccn-swarm.bak`)), existing, "previous file kept");
        assert.deepEqual(mutating(r), ["systemctl restart docker"]);
        assert.ok(r.calls.includes("docker info --format {{.Driver}}"), "waited for docker info");
        assert.equal(r.result.restarted, "1");
        assert.equal(r.result.storage_driver, "overlay2");
        assert.equal(r.result.tool, tool);

        const text = lab.read(DAEMON_JSON);
        const again = lab.run(
          "daemon-json.sh",
          { ...env, STORAGE_DRIVER: "overlay2" },
          JSON.stringify({ "log-opts": { "max-size": "10m" }, "live-restore": true }),
        );
        assertOk(again, "0");
        assert.deepEqual(mutating(again), [], "no restart");
        assert.equal(again.result.restarted, "0");
        assert.equal(lab.read(DAEMON_JSON), text);
      });

      test("the same settings in another layout are not a change (no restart)", () => {
        const lab = new Lab();
        lab.set("running");
        lab.write(DAEMON_JSON, '{\n    "storage-driver": "overlay2",   "log-driver":"journald"\n}\n');
        const r = lab.run("daemon-json.sh", { ...env, STORAGE_DRIVER: "overlay2" }, "");
        assertOk(r, "0");
        assert.deepEqual(mutating(r), []);
        assert.equal(r.result.file, "unchanged");
      });

      test("devicemapper: the document's thin pool options; other dm options kept, overlay2 ones dropped", () => {
        const lab = new Lab();
        lab.set("running");
        lab.write(DAEMON_JSON, JSON.stringify({ "storage-opts": ["dm.basesize=20G", "overlay2.size=10G"] }));
        const r = lab.run("daemon-json.sh", { ...env, STORAGE_DRIVER: "devicemapper" }, "{}");
        assertOk(r, "1");
        const conf = JSON.parse(lab.read(DAEMON_JSON));
        assert.equal(conf["storage-driver"], "devicemapper");
        assert.deepEqual(conf["storage-opts"], ["dm.basesize=20G", ...DM_OPTS]);
        assert.equal(r.result.storage_driver, "devicemapper");
        assert.deepEqual(mutating(r), ["systemctl restart docker"]);
      });

      test("devicemapper on engine 25 is refused: file untouched, no restart", () => {
        const lab = new Lab();
        lab.set("running");
        lab.set("engine_version", "25.0.0\n");
        lab.write(DAEMON_JSON, '{"log-driver": "journald"}');
        const r = lab.run("daemon-json.sh", { ...env, STORAGE_DRIVER: "devicemapper" }, "{}");
        assertFails(r, "engine-too-new");
        assert.match(r.stderr, /removed in 25\.0/);
        assert.equal(lab.read(DAEMON_JSON), '{"log-driver": "journald"}');
        assert.deepEqual(mutating(r), []);

        const viaFragment = lab.run("daemon-json.sh", env, '{"storage-driver": "devicemapper"}');
        assertFails(viaFragment, "engine-too-new");
      });

      test("the document's daemon.json (tcp://0.0.0.0:2375) is refused; nothing written", () => {
        const lab = new Lab();
        lab.set("running");
        const doc = fs.readFileSync(path.join(FIXTURES, "daemon.json.from-operation-rst.json"), "utf8");
        const r = lab.run("daemon-json.sh", env, doc);
        assertFails(r, "insecure-tcp-host");
        assert.match(r.stderr, /refusing hosts entry tcp:\/\/0\.0\.0\.0:2375/);
        assert.equal(lab.exists(DAEMON_JSON), false);
        assert.deepEqual(mutating(r), []);
      });

      test("an insecure socket already in daemon.json is refused until removed with null", () => {
        const lab = new Lab();
        lab.set("running");
        lab.write(DAEMON_JSON, JSON.stringify({ hosts: ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2375"], debug: true }));
        assertFails(lab.run("daemon-json.sh", env, '{"debug": false}'), "insecure-tcp-host");
        const tlsWithoutVerify = lab.run(
          "daemon-json.sh",
          env,
          JSON.stringify({ tls: true, tlscacert: "/c", tlscert: "/c", tlskey: "/k" }),
        );
        assertFails(tlsWithoutVerify, "insecure-tcp-host");

        const r = lab.run("daemon-json.sh", env, '{"hosts": null}');
        assertOk(r, "1");
        assert.deepEqual(JSON.parse(lab.read(DAEMON_JSON)), { debug: true });
      });

      test("TCP with mutual TLS is allowed; a -H on the unit's command line is a conflict", () => {
        const lab = new Lab();
        lab.set("running");
        for (const f of ["ca.pem", "server-cert.pem", "server-key.pem"]) lab.write(`/etc/docker/tls/${f}`, "x");
        const fragment = JSON.stringify({
          hosts: ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2376"],
          tlsverify: true,
          tlscacert: "/etc/docker/tls/ca.pem",
          tlscert: "/etc/docker/tls/server-cert.pem",
          tlskey: "/etc/docker/tls/server-key.pem",
        });
        lab.set("execstart", "ExecStart={ path=/usr/bin/dockerd ; argv[]=/usr/bin/dockerd -H fd:// --containerd=/run/containerd/containerd.sock ; }\n");
        const conflict = lab.run("daemon-json.sh", env, fragment);
        assertFails(conflict, "hosts-conflict");
        assert.equal(lab.exists(DAEMON_JSON), false);

        lab.unset("execstart");
        const r = lab.run("daemon-json.sh", env, fragment);
        assertOk(r, "1");
        assert.deepEqual(JSON.parse(lab.read(DAEMON_JSON)).hosts, ["unix:///var/run/docker.sock", "tcp://0.0.0.0:2376"]);

        lab.unset("running");
        fs.rmSync(lab.p("/etc/docker/tls/server-key.pem"));
        assertFails(lab.run("daemon-json.sh", env, "{}"), "tls-file-missing");
      });

      test("hosts in any spelling of the key or the scheme, or a bare host:port, is refused; nothing written", () => {
        for (const frag of [{ Hosts: ["tcp://0.0.0.0:2375"] }, { HOSTS: ["TCP://0.0.0.0:2375"] }, { hosts: [" tcp://0.0.0.0:2375"] },
          { hosts: ["0.0.0.0:2375"] }, { hosts: "tcp://0.0.0.0:2375" }]) {
          const lab = new Lab();
          lab.set("running");
          const r = lab.run("daemon-json.sh", env, JSON.stringify(frag));
          assertFails(r, "insecure-tcp-host");
          assert.equal(lab.exists(DAEMON_JSON), false, JSON.stringify(frag));
          assert.deepEqual(mutating(r), []);
        }
      });

      test("a -H tcp:// in any drop-in, the unit, an init environment file or the ExecStart systemd runs is refused; nothing changed", () => {
        const cases: [string, string][] = [
          ["/etc/systemd/system/docker.service.d/override.conf", "[Service]\nExecStart=\nExecStart=/usr/bin/dockerd -H fd:// -H tcp://0.0.0.0:2375\n"],
          ["/etc/systemd/system/docker.service.d/10-host.conf", "[Service]\nExecStart=\nExecStart=/usr/bin/dockerd --host=TCP://0.0.0.0:2375\n"],
          ["/etc/systemd/system/docker.service.d/env.conf", "[Service]\nEnvironment=\"DOCKER_OPTS=-H 0.0.0.0:2375\"\n"],
          ["/etc/systemd/system/docker.service.d/cont.conf", "[Service]\nExecStart=\nExecStart=/usr/bin/dockerd \\\n  -H \\\n  tcp://0.0.0.0:2375\n"],
          ["/run/systemd/system/docker.service.d/x.conf", "[Service]\nExecStart=\nExecStart=/usr/bin/dockerd -Htcp://0.0.0.0:2375\n"],
          ["/etc/systemd/system/docker.service", "[Service]\nExecStart=/usr/bin/dockerd -H=tcp://0.0.0.0:2375\n"],
          ["/etc/sysconfig/docker", "OPTIONS='--selinux-enabled -H tcp://0.0.0.0:2375'\n"],
          ["/etc/default/docker", "DOCKER_OPTS=\"-H tcp://0.0.0.0:2375\"\n"],
        ];
        for (const [file, text] of cases) {
          const lab = new Lab();
          lab.set("running");
          lab.write(file, text);
          lab.write(DAEMON_JSON, '{"debug": true}');
          const r = lab.run("daemon-json.sh", env, '{"debug": false}');
          assertFails(r, "insecure-tcp-unit");
          assert.ok(r.stderr.includes(file), `names ${file}: ${r.stderr}`);
          assert.match(r.stderr, /0\.0\.0\.0:2375/);
          assert.equal(lab.read(DAEMON_JSON), '{"debug": true}', `${file}: daemon.json unchanged`);
          assert.deepEqual(mutating(r), [], file);
        }
        // What systemd runs, from wherever it came.
        const lab = new Lab();
        lab.set("running");
        lab.set("execstart", "ExecStart={ path=/usr/bin/dockerd ; argv[]=/usr/bin/dockerd -H fd:// --host tcp://0.0.0.0:2375 ; }\n");
        const r = lab.run("daemon-json.sh", env, "{}");
        assertFails(r, "insecure-tcp-unit");
        assert.match(r.stderr, /systemctl show -p ExecStart docker: tcp:\/\/0\.0\.0\.0:2375/);
      });

      test("comments, unix:// and fd:// in drop-ins pass", () => {
        const lab = new Lab();
        lab.set("running");
        lab.write("/etc/systemd/system/docker.service.d/ok.conf", "[Service]\n# ExecStart=/usr/bin/dockerd -H tcp://0.0.0.0:2375\nExecStart=\nExecStart=/usr/bin/dockerd -H fd:// -H unix:///var/run/docker.sock\n");
        lab.write("/etc/default/docker", "#DOCKER_OPTS=\"-H tcp://0.0.0.0:2375\"\n");
        assertOk(lab.run("daemon-json.sh", env, '{"debug": true}'), "1");
      });

      test("null deletes a key (JSON merge patch)", () => {
        const lab = new Lab();
        lab.set("running");
        lab.write(DAEMON_JSON, JSON.stringify({ "log-opts": { "max-size": "10m", "max-file": "3" }, debug: true }));
        const r = lab.run("daemon-json.sh", env, JSON.stringify({ debug: null, "log-opts": { "max-file": null } }));
        assertOk(r, "1");
        assert.deepEqual(JSON.parse(lab.read(DAEMON_JSON)), { "log-opts": { "max-size": "10m" } });
      });

      test("invalid existing file or input: an error, the file kept as it was", () => {
        const lab = new Lab();
        lab.write(DAEMON_JSON, "{ not json");
        assertFails(lab.run("daemon-json.sh", env, "{}"), "bad-existing");
        assert.equal(lab.read(DAEMON_JSON), "{ not json");
        lab.write(DAEMON_JSON, "[1, 2]");
        assertFails(lab.run("daemon-json.sh", env, "{}"), "bad-existing");
        lab.write(DAEMON_JSON, "{}");
        assertFails(lab.run("daemon-json.sh", env, '["hosts"]'), "bad-input");
        assertFails(lab.run("daemon-json.sh", env, "{oops"), "bad-input");
        assert.equal(lab.read(DAEMON_JSON), "{}");
      });
    });
  }

  test("python3 and jq write the same configuration", (t) => {
    if (JSON_TOOLS.length < 2) {
      if (process.env.CI === "true") assert.fail("needs both python3 and jq (tools/prereqs.sh installs them), and CI=true");
      t.skip("needs both python3 and jq");
      return;
    }
    const outputs = JSON_TOOLS.map((tool) => {
      const lab = new Lab();
      lab.set("running");
      lab.write(DAEMON_JSON, JSON.stringify({ a: { b: 1, c: [1, 2] }, "storage-opts": ["overlay2.size=1G", "x=y"] }));
      assertOk(
        lab.run("daemon-json.sh", { JSON_TOOL: tool, STORAGE_DRIVER: "devicemapper" }, '{"a": {"c": null, "d": "é"}, "e": [3]}'),
        "1",
      );
      return JSON.parse(lab.read(DAEMON_JSON));
    });
    assert.deepEqual(outputs[0], outputs[1]);
    assert.deepEqual(outputs[0], {
      a: { b: 1, d: "é" },
      e: [3],
      "storage-driver": "devicemapper",
      "storage-opts": ["x=y", ...DM_OPTS],
    });
  });

  test("DAEMON_JSON may carry the fragment instead of stdin", () => {
    const lab = new Lab();
    lab.set("running");
    const r = lab.run("daemon-json.sh", { DAEMON_JSON: '{"debug": true}' }, "this is not read");
    assertOk(r, "1");
    assert.deepEqual(JSON.parse(lab.read(DAEMON_JSON)), { debug: true });
  });

  test("legacy swarm.conf moved aside, systemd reloaded, engine restarted; then nothing", () => {
    const lab = new Lab();
    lab.set("running");
    const dropin = "/etc/systemd/system/docker.service.d/swarm.conf";
    lab.write(dropin, "[Service]\nExecStart=\nExecStart=/usr/bin/dockerd -H tcp://0.0.0.0:2375\n");
    lab.write(DAEMON_JSON, '{"storage-driver": "overlay2"}');
    const r = lab.run("daemon-json.sh", { STORAGE_DRIVER: "overlay2" }, "{}");
    assertOk(r, "1");
    assert.equal(lab.exists(dropin), false);
    assert.match(lab.read(`${dropin}.disabled-by-dccn-swarm`), /2375/);
    assert.deepEqual(mutating(r), ["systemctl daemon-reload", "systemctl restart docker"]);
    assert.equal(r.result.swarm_conf, "moved");
    assert.equal(r.result.file, "unchanged");

    const again = lab.run("daemon-json.sh", { STORAGE_DRIVER: "overlay2" }, "{}");
    assertOk(again, "0");
    assert.deepEqual(mutating(again), []);
    assert.equal(again.result.swarm_conf, "none");
  });

  test("a failed restart is retried by the next run even though the file no longer changes", () => {
    const lab = new Lab();
    lab.set("running");
    lab.set("fail/systemctl-restart");
    const first = lab.run("daemon-json.sh", {}, '{"debug": true}');
    assertFails(first, "restart-failed", "1");
    assert.ok(lab.exists("/etc/docker/.dccn-swarm-restart-pending"));

    lab.unset("fail/systemctl-restart");
    const second = lab.run("daemon-json.sh", {}, '{"debug": true}');
    assertOk(second, "1");
    assert.equal(second.result.file, "unchanged");
    assert.deepEqual(mutating(second), ["systemctl restart docker"]);
    assert.equal(lab.exists("/etc/docker/.dccn-swarm-restart-pending"), false);

    const third = lab.run("daemon-json.sh", {}, '{"debug": true}');
    assertOk(third, "0");
    assert.deepEqual(mutating(third), []);
  });

  test("the wait for docker info is bounded by WAIT_TIMEOUT", () => {
    const lab = new Lab();
    lab.set("fail/docker-info");
    const r = lab.run("daemon-json.sh", { WAIT_TIMEOUT: "2" }, '{"debug": true}');
    assertFails(r, "engine-timeout", "1");
    assert.ok(r.elapsedMs < 15_000, `took ${r.elapsedMs} ms`);
    assert.ok(r.calls.filter((c) => c.startsWith("docker info")).length >= 2, "polled more than once");
  });

  test("the running driver must be the configured one", () => {
    const lab = new Lab();
    lab.set("keep_driver");
    lab.set("driver", "overlay2\n");
    const r = lab.run("daemon-json.sh", { STORAGE_DRIVER: "devicemapper" }, "{}");
    assertFails(r, "driver-mismatch", "1");
  });

  test("dockerd --validate is used when the engine has it", () => {
    const lab = new Lab();
    lab.set("running");
    lab.set("validate");
    const r = lab.run("daemon-json.sh", {}, '{"debug": true}');
    assertOk(r, "1");
    assert.ok(r.calls.some((c) => /^dockerd --validate --config-file \S+new\.json$/.test(c)), r.calls.join("\n"));

    lab.set("fail/dockerd---validate");
    const bad = lab.run("daemon-json.sh", {}, '{"debug": false}');
    assertFails(bad, "invalid-config");
    assert.deepEqual(JSON.parse(lab.read(DAEMON_JSON)), { debug: true });
  });

  test("no systemd: restarted through the init script; with a systemctl shim, through the shim", () => {
    const lab = new Lab({ systemd: false });
    lab.set("running");
    lab.write("/etc/init.d/docker", "#!/bin/sh\n", 0o755);
    const r = lab.run("daemon-json.sh", {}, '{"debug": true}');
    assertOk(r, "1");
    assert.deepEqual(mutating(r), ["service docker restart"]);

    lab.set("systemctl_shim");
    const shim = lab.run("daemon-json.sh", {}, '{"debug": false}');
    assertOk(shim, "1");
    assert.deepEqual(mutating(shim), ["systemctl restart docker"]);
  });

  test("no init system at all: an error, and the restart is still pending for the next run", () => {
    const lab = new Lab({ systemd: false, fakes: ALL_FAKES.filter((f) => f !== "systemctl" && f !== "service") });
    lab.set("running");
    const r = lab.run("daemon-json.sh", {}, '{"debug": true}');
    assertFails(r, "no-init", "1");
    assert.ok(lab.exists("/etc/docker/.dccn-swarm-restart-pending"));
  });

  test("neither python nor jq: a clear error naming what to install", () => {
    const lab = new Lab({ omit: ["python3", "jq"] });
    const r = lab.run("daemon-json.sh", {}, '{"debug": true}');
    assertFails(r, "no-json-tool");
    assert.match(r.stderr, /apt-get install jq/);
    assert.equal(lab.exists(DAEMON_JSON), false);
  });
});

// --------------------------------------------------------------------------------------------------
describe("registry-ca.sh", () => {
  const CA1 = fs.readFileSync(path.join(FIXTURES, "test-ca-1.crt"), "utf8");
  const CA2 = fs.readFileSync(path.join(FIXTURES, "test-ca-2.crt"), "utf8");
  const CERT = "/etc/docker/certs.d/docker-registry.dccn.nl:5000/ca.crt";
  const base = { REGISTRY_HOST: "docker-registry.dccn.nl", REGISTRY_PORT: "5000" };
  const sha = (s: string) => crypto.createHash("sha256").update(s).digest("hex");

  test("installs the CA by content (644 in 755 directories); the second run changes nothing", () => {
    const lab = new Lab();
    const r = lab.run("registry-ca.sh", base, CA1);
    assertOk(r, "1");
    assert.equal(lab.read(CERT), CA1);
    assert.equal(modeOf(lab.p(CERT)), 0o644);
    assert.equal(modeOf(path.dirname(lab.p(CERT))), 0o755);
    assert.equal(modeOf(lab.p("/etc/docker/certs.d")), 0o755);
    assert.equal(r.result.cert, CERT);
    assert.equal(r.result.sha256, sha(CA1));
    assert.equal(r.result.ca, "written");
    assert.deepEqual(r.calls, [], "no engine restart needed");

    const mtime = fs.statSync(lab.p(CERT)).mtimeMs;
    const again = lab.run("registry-ca.sh", base, CA1.replace(/\n/g, "\r\n") + "\n\n");
    assertOk(again, "0");
    assert.equal(again.result.ca, "unchanged");
    assert.equal(fs.statSync(lab.p(CERT)).mtimeMs, mtime);

    const other = lab.run("registry-ca.sh", base, CA2);
    assertOk(other, "1");
    assert.equal(lab.read(CERT), CA2);
  });

  test("a wrong mode is corrected", () => {
    const lab = new Lab();
    assertOk(lab.run("registry-ca.sh", base, CA1), "1");
    fs.chmodSync(lab.p(CERT), 0o600);
    const r = lab.run("registry-ca.sh", base, CA1);
    assertOk(r, "1");
    assert.equal(modeOf(lab.p(CERT)), 0o644);
  });

  test("REGISTRY_ADDRESS: a marked /etc/hosts line added, updated, and removed when unset", () => {
    const lab = new Lab();
    lab.write("/etc/hosts", "127.0.0.1 localhost\n10.0.0.9 other\n");
    const added = lab.run("registry-ca.sh", { ...base, REGISTRY_ADDRESS: "172.28.0.10" }, CA1);
    assertOk(added, "1");
    assert.equal(added.result.hosts, "added");
    assert.equal(
      lab.read("/etc/hosts"),
      "127.0.0.1 localhost\n10.0.0.9 other\n172.28.0.10 docker-registry.dccn.nl # dccn-swarm registry-ca\n",
    );
    const same = lab.run("registry-ca.sh", { ...base, REGISTRY_ADDRESS: "172.28.0.10" }, CA1);
    assertOk(same, "0");
    assert.equal(same.result.hosts, "unchanged");

    const moved = lab.run("registry-ca.sh", { ...base, REGISTRY_ADDRESS: "172.28.0.11" }, CA1);
    assertOk(moved, "1");
    assert.equal(moved.result.hosts, "updated");
    assert.equal(lab.read("/etc/hosts").match(/dccn-swarm registry-ca/g)?.length, 1);
    assert.match(lab.read("/etc/hosts"), /^172\.28\.0\.11 docker-registry\.dccn\.nl # dccn-swarm registry-ca$/m);

    const unset = lab.run("registry-ca.sh", base, CA1);
    assertOk(unset, "1");
    assert.equal(unset.result.hosts, "removed");
    assert.equal(lab.read("/etc/hosts"), "127.0.0.1 localhost\n10.0.0.9 other\n");
  });

  test("/etc/hosts is rewritten in place (it is a bind mount in containers)", () => {
    const lab = new Lab();
    lab.write("/etc/hosts", "127.0.0.1 localhost\n");
    const inode = fs.statSync(lab.p("/etc/hosts")).ino;
    assertOk(lab.run("registry-ca.sh", { ...base, REGISTRY_ADDRESS: "10.1.2.3" }, CA1), "1");
    assert.equal(fs.statSync(lab.p("/etc/hosts")).ino, inode);
  });

  test("REMOVE=1 removes the certificate, its directory and the hosts line; then nothing to do", () => {
    const lab = new Lab();
    lab.write("/etc/hosts", "127.0.0.1 localhost\n");
    assertOk(lab.run("registry-ca.sh", { ...base, REGISTRY_ADDRESS: "10.1.2.3" }, CA1), "1");
    const r = lab.run("registry-ca.sh", { ...base, REMOVE: "1" });
    assertOk(r, "1");
    assert.equal(r.result.ca, "removed");
    assert.equal(r.result.hosts, "removed");
    assert.equal(lab.exists(path.dirname(CERT)), false);
    assert.equal(lab.read("/etc/hosts"), "127.0.0.1 localhost\n");
    const again = lab.run("registry-ca.sh", { ...base, REMOVE: "1" });
    assertOk(again, "0");
    assert.equal(again.result.ca, "absent");
  });

  test("CA_CERT instead of stdin; port 443 means certs.d/<host>", () => {
    const lab = new Lab();
    const r = lab.run("registry-ca.sh", { REGISTRY_HOST: "registry.example.org", REGISTRY_PORT: "443", CA_CERT: CA1 });
    assertOk(r, "1");
    assert.equal(lab.read("/etc/docker/certs.d/registry.example.org/ca.crt"), CA1);
  });

  test("bad input is refused and nothing is written", () => {
    const lab = new Lab();
    assertFails(lab.run("registry-ca.sh", base, "hello\n"), "no-cert");
    assertFails(
      lab.run("registry-ca.sh", base, "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n"),
      "bad-cert",
    );
    assertFails(lab.run("registry-ca.sh", { REGISTRY_HOST: "evil/../../x" }, CA1), "bad-host");
    assertFails(lab.run("registry-ca.sh", { REGISTRY_PORT: "5000" }, CA1), "no-host");
    assertFails(lab.run("registry-ca.sh", { ...base, REGISTRY_ADDRESS: "1.2.3.4; rm" }, CA1), "bad-address");
    assert.equal(lab.exists("/etc/docker/certs.d"), false);
  });
});

// --------------------------------------------------------------------------------------------------
describe("shared-storage.sh", () => {
  // The mount table is a file (DCCN_MOUNTINFO); `mount PATH` is a stand-in that logs the call and adds
  // the fstab entry's mount to it, and mount.nfs only has to exist.
  const line = (id: number, mp: string, opts: string, fstype: string, src: string, sup = "rw") => `${id} 1 0:${id} / ${mp} ${opts} shared:1 - ${fstype} ${src} ${sup}\n`;
  function setup(mounts = "", nfsClient = true) {
    const lab = new Lab();
    const mountinfo = path.join(lab.dir, "mountinfo");
    fs.writeFileSync(mountinfo, line(20, "/", "rw", "ext4", "/dev/sda1") + mounts);
    // The fake's symlink is replaced, not written through (that would overwrite fake-tool.sh).
    fs.rmSync(path.join(lab.bin, "mount"));
    fs.writeFileSync(path.join(lab.bin, "mount"), `#!/usr/bin/env bash
printf 'mount %s\\n' "$*" >>"$FAKE_LOG"
src=$(awk -v p="$1" '$2 == p { print $1 }' "$DCCN_ROOT/etc/fstab")
printf '99 1 0:99 / %s rw shared:9 - nfs %s rw\\n' "$1" "$src" >>"${mountinfo}"
`, { mode: 0o755 });
    if (nfsClient) fs.writeFileSync(path.join(lab.bin, "mount.nfs"), "#!/bin/sh\nexit 0\n", { mode: 0o755 });
    fs.mkdirSync(lab.p("/mnt/docker"), { recursive: true });
    const run = (env: Record<string, string> = {}) => lab.run("shared-storage.sh", { SHARED_PATH: "/mnt/docker", CHECK_TIMEOUT: "5", DCCN_MOUNTINFO: mountinfo, ...env });
    return { lab, run };
  }
  const NFS = { NFS_SOURCE: "nfs.dccn.nl:/docker", NFS_OPTIONS: "rw,hard,timeo=600,retrans=2,_netdev" };

  test("a mount the node has (the plain form, the lab's): checked, nothing changed; a probe file is made and removed", () => {
    const { lab, run } = setup(line(30, "/mnt/docker", "rw,relatime", "ext4", "/dev/vda"));
    const r = run();
    assertOk(r, "0");
    assert.deepEqual(r.calls, []);
    assert.equal(r.result.mode, "existing");
    assert.equal(r.result.fstype, "ext4");
    assert.deepEqual(fs.readdirSync(lab.p("/mnt/docker")), [], "no probe file left behind");
  });

  test("refusals: not a mount point, mounted read-only (options or the file system), not writable", () => {
    assertFails(setup().run(), "not-mounted");
    assert.match(setup().run().stderr, /\/mnt\/docker is not a mount point: mount the shared storage there/);
    assertFails(setup(line(30, "/mnt/docker", "ro,relatime", "nfs", "nfs:/docker")).run(), "read-only");
    assertFails(setup(line(30, "/mnt/docker", "rw", "nfs", "nfs:/docker", "ro,vers=4")).run(), "read-only");
    // Stacked mounts: the one on top counts.
    assertOk(setup(line(30, "/mnt/docker", "ro", "ext4", "/dev/vda") + line(31, "/mnt/docker", "rw", "nfs4", "nfs:/docker")).run(), "0");
    if (process.getuid?.() !== 0) {
      const { lab, run } = setup(line(30, "/mnt/docker", "rw", "nfs", "nfs:/docker"));
      fs.chmodSync(lab.p("/mnt/docker"), 0o555);
      assertFails(run(), "not-writable");
    }
  });

  test("NFS: the fstab entry is written and mounted; the second run changes nothing", () => {
    const { lab, run } = setup();
    lab.write("/etc/fstab", "UUID=abcd / ext4 defaults 0 1\n");
    const r = run(NFS);
    assertOk(r, "1");
    assert.equal(lab.read("/etc/fstab"), "UUID=abcd / ext4 defaults 0 1\nnfs.dccn.nl:/docker /mnt/docker nfs rw,hard,timeo=600,retrans=2,_netdev 0 0\n");
    assert.deepEqual(r.calls, ["mount /mnt/docker"]);
    assert.equal(r.result.fstab, "written");
    assert.equal(r.result.mounted, "1");
    assert.equal(r.result.fstype, "nfs");
    const again = run(NFS);
    assertOk(again, "0");
    assert.deepEqual(again.calls, []);
    assert.equal(again.result.fstab, "unchanged");
    assert.equal(again.result.mounted, "0");
  });

  test("NFS: another line for the path is replaced (the old file kept); a mount from another source is refused, never unmounted", () => {
    const { lab, run } = setup(line(30, "/mnt/docker", "rw", "nfs", "old.dccn.nl:/docker"));
    lab.write("/etc/fstab", "old.dccn.nl:/docker  /mnt/docker  nfs  rw,soft  0 0\n# nfs:/x /mnt/docker nfs rw 0 0\n");
    const r = run(NFS);
    assertFails(r, "other-source", "1");
    assert.match(r.stderr, /mounted from old\.dccn\.nl:\/docker, not nfs\.dccn\.nl:\/docker: stop what uses it and unmount it by hand/);
    assert.deepEqual(r.calls, []);
    assert.equal(lab.read("/etc/fstab"), "# nfs:/x /mnt/docker nfs rw 0 0\nnfs.dccn.nl:/docker /mnt/docker nfs rw,hard,timeo=600,retrans=2,_netdev 0 0\n");
    assert.equal(lab.read("/etc/fstab.dccn-swarm.bak"), "old.dccn.nl:/docker  /mnt/docker  nfs  rw,soft  0 0\n# nfs:/x /mnt/docker nfs rw 0 0\n");
  });

  test("NFS without the NFS client: refused naming the package", () => {
    const r = setup("", false).run(NFS);
    assertFails(r, "no-nfs-client", "1");
    assert.match(r.stderr, /install the NFS client \(dnf install nfs-utils, or apt-get install nfs-common\)/);
  });

  test("hostile input is refused before anything changes", () => {
    const hostile: Record<string, string>[] = [{ SHARED_PATH: "mnt/docker" }, { SHARED_PATH: "/" }, { SHARED_PATH: "/mnt/do cker" }, { CHECK_TIMEOUT: "0" }, { CHECK_TIMEOUT: "5;reboot" },
      { ...NFS, NFS_OPTIONS: "rw hard" }, { NFS_SOURCE: "nfs.dccn.nl" }, { NFS_SOURCE: "a:/b\n/dev/sda / ext4" }];
    for (const env of hostile) {
      const { lab, run } = setup();
      const r = run(env);
      assertFails(r, "bad-input");
      assert.deepEqual(r.calls, []);
      assert.equal(lab.exists("/etc/fstab"), false, JSON.stringify(env));
    }
  });
});
