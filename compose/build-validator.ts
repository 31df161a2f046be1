/**
 * `npm run build` runs this after tsc: writes the compose schema's validator as plain JavaScript
 * (ajv's standalone code) next to compose/validate.js, so that a `pulumi` run neither loads ajv's
 * compiler nor compiles the schema (about 0.3 s of every run). compose/validate.ts uses it when its
 * schema hash matches the schema the program has, else compiles the schema as before.
 */
import * as fs from "fs";
import * as path from "path";
import { _ } from "ajv";
import standaloneCode from "ajv/dist/standalone";
import { newAjv, PREBUILT_FILE, schemaHash } from "./validate";
import { composeV3Schema } from "./schema";

/** The validator's module source: ajv's standalone code, then the hash of the schema it was made from. */
export function validatorSource(formatsModule = "./formats"): string {
    const ajv = newAjv({ code: { source: true, formats: _`require(${formatsModule})` } });
    return `${standaloneCode(ajv, ajv.compile(composeV3Schema))}\nmodule.exports.schemaHash = ${JSON.stringify(schemaHash())};\n`;
}

if (require.main === module) {
    const out = path.join(__dirname, PREBUILT_FILE);
    fs.writeFileSync(out, validatorSource());
    console.log(`wrote ${path.relative(process.cwd(), out)}`);
}
