/**
 * Files a compose file may read: its `configs:`/`secrets:` `file:` and its `env_file:` entries.
 *
 * Compose files often come from application repositories, not from the cluster's administrators, so
 * what they name is read only when, with every symlink resolved, it is a regular file under the
 * compose file's own directory, outside any `.state` folder (the project's state: the stack
 * passphrase, the lab's SSH key) and outside /proc, /sys and /dev. Anything else is refused with a
 * ComposeError naming the compose file, the key and the path, before a byte of it is read.
 */
import { closeSync, constants, fstatSync, openSync, readSync, realpathSync } from "node:fs";
import * as path from "node:path";
import { ComposeError } from "./errors";

/** Folders never read, wherever the compose file is (kernel and device files, not configuration). */
const SYSTEM_DIRS = ["/proc", "/sys", "/dev"];
/** A path component that marks the project's state folder (and the lab's, under it). */
const STATE_DIR = ".state";
/** The most a compose file may read from one file: above the swarm's 500 KiB secret and 1000 KiB config limits. */
export const MAX_READ_BYTES = 4 * 1024 * 1024;

const within = (dir: string, p: string) => p === dir || p.startsWith(dir.endsWith(path.sep) ? dir : dir + path.sep);

/**
 * Resolves `given` (as written at `key` of `composeFile`, relative to `dir`) to the real path of a
 * regular file under `dir`, or throws a ComposeError saying why it is refused.
 */
export function confinedPath(composeFile: string, dir: string, key: string, given: string, noun = ""): string {
  const refuse = (reason: string): never => {
    throw new ComposeError(composeFile, key, `${JSON.stringify(given)} ${reason}`,
      "put the file next to the compose file (or in a folder under it) and name it by a relative path such as ./app.conf; " +
      "a compose file may read only files under its own directory, never the project's .state folder, /proc, /sys or /dev");
  };
  if (given.includes("\0")) refuse("contains a NUL character");
  const written = path.resolve(dir, given);
  let realDir: string;
  try {
    realDir = realpathSync(dir);
  } catch {
    realDir = path.resolve(dir);
  }
  // The path as written is checked too: `..` or an absolute path out of the directory is refused
  // even when it happens to lead back in through a symlink.
  if (!within(path.resolve(dir), written) && !within(realDir, written)) {
    refuse(`resolves to ${written}, outside the compose file's directory ${dir}`);
  }
  let real: string;
  try {
    real = realpathSync(written);
  } catch (e) {
    throw new ComposeError(composeFile, key, `cannot read ${noun}${written}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      "create the file or fix the path (relative paths are relative to the compose file)");
  }
  if (SYSTEM_DIRS.some((d) => within(d, real))) refuse(`resolves to ${real}, a kernel or device file`);
  if (!within(realDir, real)) refuse(`resolves to ${real} (symlinks followed), outside the compose file's directory ${realDir}`);
  if (real.split(path.sep).includes(STATE_DIR)) refuse(`resolves to ${real}, in a ${STATE_DIR} folder (the project's state: passphrase, keys)`);
  return real;
}

/**
 * Reads the file `given` names (see confinedPath) as a Buffer: only a regular file, only up to
 * MAX_READ_BYTES. The file is opened by its resolved path and checked on the open descriptor.
 */
export function readConfined(composeFile: string, dir: string, key: string, given: string, noun = ""): { path: string; content: Buffer } {
  const real = confinedPath(composeFile, dir, key, given, noun);
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO swapped in after the check must not hang the program (it is refused below).
    fd = openSync(real, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (e) {
    throw new ComposeError(composeFile, key, `cannot read ${noun}${real}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
      "create the file or fix the path (relative paths are relative to the compose file)");
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) {
      throw new ComposeError(composeFile, key, `${JSON.stringify(given)} (${real}) is not a regular file`, "name a regular file: a compose file may read only regular files under its own directory");
    }
    if (st.size > MAX_READ_BYTES) {
      throw new ComposeError(composeFile, key, `${JSON.stringify(given)} (${real}) is ${st.size} bytes, more than the ${MAX_READ_BYTES} a compose file may read`,
        "keep configs, secrets and env files small (the swarm stores secrets of at most 500 KiB); a compose file may read only files under its own directory");
    }
    const buf = Buffer.alloc(st.size);
    let off = 0;
    while (off < st.size) {
      const n = readSync(fd, buf, off, st.size - off, off);
      if (n === 0) break;
      off += n;
    }
    return { path: real, content: buf.subarray(0, off) };
  } finally {
    closeSync(fd);
  }
}
