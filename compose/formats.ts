/**
 * The compose schema's custom formats, for ajv: compose/validate.ts adds them to the validator it
 * compiles, and the validator generated at build time (compose/build-validator.ts) requires this
 * module for them.
 */
import { parseDuration } from "./units";

export const duration = { type: "string" as const, validate: (s: string) => parseDuration(s) !== undefined };
