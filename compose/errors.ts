/**
 * Errors and warnings of the compose module.
 *
 * Every rejection is a {@link ComposeError} naming the file, the key path
 * (`services.web.volumes_from`) and what to do about it, so that a bad stack
 * file stops `pulumi preview` before anything is changed.
 */

export class ComposeError extends Error {
  /** The compose file (or env_file / secret file) the problem is in. */
  readonly file: string;
  /** Dotted key path, e.g. `services.web.volumes_from`; "" for the whole file. */
  readonly key: string;
  /** What is wrong. */
  readonly reason: string;
  /** How to fix it. */
  readonly fix: string;

  constructor(file: string, key: string, reason: string, fix: string) {
    const where = key ? `${file}: ${key}` : file;
    super(`${where}: ${reason}${fix ? ` (fix: ${fix})` : ""}`);
    this.name = "ComposeError";
    this.file = file;
    this.key = key;
    this.reason = reason;
    this.fix = fix;
  }
}

/** Something `docker stack deploy` ignores (or would change) that the user should know about. */
export interface ComposeWarning {
  file: string;
  /** Dotted key path, e.g. `services.web.links`. */
  key: string;
  message: string;
}

/** Joins key path segments; list indexes are written `[i]`. */
export function keyPath(...parts: Array<string | number>): string {
  let out = "";
  for (const p of parts) {
    if (typeof p === "number") out += `[${p}]`;
    else out += out ? `.${p}` : p;
  }
  return out;
}
