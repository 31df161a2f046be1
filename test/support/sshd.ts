/**
 * A real OpenSSH sshd on 127.0.0.1 for tests: throwaway host and client keys in the test's own
 * directory, public-key login only, the test's user (root in CI). A missing sshd or ssh-keygen is
 * an error (tests that need it fail; they do not skip).
 */
import { execFileSync, spawn, type ChildProcess } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as path from "path";

export const SSHD = "/usr/sbin/sshd";

/** A TCP port nothing listens on right now. */
export function freePort(): Promise<number> {
    return new Promise((resolve, reject) => {
        const s = net.createServer();
        s.listen(0, "127.0.0.1", () => {
            const p = (s.address() as net.AddressInfo).port;
            s.close(() => resolve(p));
        });
        s.on("error", reject);
    });
}

export interface SshdKeys {
    /** `sshd_config` written in the directory (extra lines appended). */
    config: string;
    /** The client's private key file, and its text. */
    clientKeyFile: string;
    clientKey: string;
    /** `ssh-ed25519 AAAA...` of the host key. */
    hostKey: string;
}

/** Keys and an sshd_config in `dir`: host key, a client key authorised, streamlocal forwards allowed; `extra` lines take precedence. */
export function sshdFiles(dir: string, extra: string[] = []): SshdKeys {
    if (!fs.existsSync(SSHD)) throw new Error(`${SSHD} is needed (apt-get install openssh-server)`);
    const keygen = (name: string) => execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", name, "-f", path.join(dir, name)]);
    keygen("host_ed25519");
    keygen("client");
    fs.copyFileSync(path.join(dir, "client.pub"), path.join(dir, "authorized_keys"));
    const config = path.join(dir, "sshd_config");
    fs.writeFileSync(config, [
        "ListenAddress 127.0.0.1",
        `HostKey ${path.join(dir, "host_ed25519")}`,
        `PidFile ${path.join(dir, "sshd.pid")}`,
        `AuthorizedKeysFile ${path.join(dir, "authorized_keys")}`,
        "PermitRootLogin yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "StrictModes no",
        "AllowStreamLocalForwarding yes",
        // sshd takes a keyword's first value: the caller's lines first.
        ...extra,
        "LogLevel ERROR",
        "",
    ].join("\n"));
    fs.mkdirSync("/run/sshd", { recursive: true }); // sshd's privilege separation directory
    const pub = fs.readFileSync(path.join(dir, "host_ed25519.pub"), "utf8").trim().split(/\s+/);
    return { config, clientKeyFile: path.join(dir, "client"), clientKey: fs.readFileSync(path.join(dir, "client"), "utf8"), hostKey: `${pub[0]} ${pub[1]}` };
}

/** sshd in the foreground on `port`, resolved once it accepts connections. */
export async function spawnSshd(config: string, port: number, args: string[] = []): Promise<ChildProcess> {
    const sshd = spawn(SSHD, ["-D", "-e", "-f", config, "-p", String(port), ...args], { stdio: ["ignore", "ignore", "pipe"] });
    let err = "";
    sshd.stderr!.on("data", (d) => (err += d));
    for (let i = 0; i < 100; i++) {
        if (sshd.exitCode !== null) throw new Error(`sshd exited: ${err}`);
        const up = await new Promise<boolean>((resolve) => {
            const c = net.connect(port, "127.0.0.1", () => { c.destroy(); resolve(true); });
            c.on("error", () => resolve(false));
        });
        if (up) return sshd;
        await new Promise((r) => setTimeout(r, 100));
    }
    sshd.kill("SIGKILL");
    throw new Error(`sshd did not listen: ${err}`);
}
