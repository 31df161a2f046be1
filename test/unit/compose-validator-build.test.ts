/**
 * The compose schema's validator generated at build time (compose/build-validator.ts, ajv's
 * standalone code) judges every document as the validator compiled at run time does: same verdict,
 * same errors, on the repository's compose files and on broken variants of them.
 */
import { strict as assert } from "node:assert";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, it } from "node:test";
import * as yaml from "js-yaml";
import type { ErrorObject, ValidateFunction } from "ajv";
import { validatorSource } from "../../compose/build-validator";
import { composeV3Schema } from "../../compose/schema";
import { newAjv, schemaHash } from "../../compose/validate";

const ROOT = path.resolve(__dirname, "..", "..");
const FILES = [
    ...fs.readdirSync(path.join(ROOT, "stacks")).map((d) => path.join(ROOT, "stacks", d, "docker-compose.yml")),
    ...fs.readdirSync(path.join(ROOT, "test", "fixtures", "compose")).map((f) => path.join(ROOT, "test", "fixtures", "compose", f)),
].filter((f) => fs.existsSync(f) && /\.ya?ml$/.test(f));

/** The generated module, written where its `require("./formats")` points at compose/formats.ts. */
function generated(): ValidateFunction & { schemaHash: string } {
    // Inside the project, so that its require("ajv/dist/runtime/...") finds node_modules.
    fs.mkdirSync(path.join(ROOT, ".state"), { recursive: true });
    const dir = fs.mkdtempSync(path.join(ROOT, ".state", "validator-"));
    const file = path.join(dir, "schema-validator.js");
    fs.writeFileSync(file, validatorSource(path.join(ROOT, "compose", "formats")));
    try {
        return require(file);
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

/** Broken variants of a document: an unknown key, a wrong type, a bad duration, a bad port. */
function variants(doc: Record<string, any>): Record<string, any>[] { // eslint-disable-line @typescript-eslint/no-explicit-any
    const out: Record<string, any>[] = [doc]; // eslint-disable-line @typescript-eslint/no-explicit-any
    const name = Object.keys(doc.services ?? {})[0];
    if (!name) return out;
    const svc = (patch: Record<string, unknown>) => ({ ...doc, services: { ...doc.services, [name]: { ...doc.services[name], ...patch } } });
    out.push(svc({ imag: "x" }), svc({ replicas: "three" }), svc({ stop_grace_period: "10 parsecs" }), svc({ stop_grace_period: "1m30s" }),
        svc({ ports: [{ target: "eighty" }] }), svc({ deploy: { resources: { limits: { cpus: [] } } } }), { ...doc, volumes: 7 }, { ...doc, "x-extra": { a: 1 } });
    return out;
}

const shape = (errors: ErrorObject[] | null | undefined) => (errors ?? []).map((e) => ({ path: e.instancePath, keyword: e.keyword, params: e.params, message: e.message }));

describe("the compose validator generated at build time", () => {
    it("gives the compiled validator's verdict and errors on every file and broken variant", () => {
        const ahead = generated();
        const compiled = newAjv().compile(composeV3Schema);
        assert.ok(FILES.length >= 4, `compose files found: ${FILES.join(", ")}`);
        let invalid = 0;
        for (const f of FILES) {
            for (const doc of variants(yaml.load(fs.readFileSync(f, "utf8")) as Record<string, unknown>)) {
                const a = ahead(doc);
                const b = compiled(doc);
                assert.equal(a, b, `${f}: ${JSON.stringify(doc).slice(0, 200)}`);
                assert.deepEqual(shape(ahead.errors), shape(compiled.errors), f);
                if (!a) invalid++;
            }
        }
        assert.ok(invalid >= FILES.length * 5, `broken variants were refused (${invalid})`);
    });

    it("carries the hash of the schema it was made from (a validator for another schema is not used)", () => {
        assert.equal(generated().schemaHash, schemaHash());
        assert.match(schemaHash(), /^[0-9a-f]{64}$/);
    });
});

describe("loading the generated validator", () => {
    /** validateSchema from a copy of compose/ holding `generatedFile` (or none) as schema-validator.js; its outcome. */
    function validateWith(generatedFile: string | undefined): { ok: boolean; message: string } {
        fs.mkdirSync(path.join(ROOT, ".state"), { recursive: true });
        const dir = fs.mkdtempSync(path.join(ROOT, ".state", "validator-load-"));
        try {
            fs.cpSync(path.join(ROOT, "compose"), dir, { recursive: true, filter: (f) => !f.endsWith("schema-validator.js") });
            if (generatedFile !== undefined) fs.writeFileSync(path.join(dir, "schema-validator.js"), generatedFile);
            const code = `const { validateSchema } = require(${JSON.stringify(path.join(dir, "validate.ts"))});
                try { validateSchema("x.yml", { version: "3.8", services: { a: { image: "busybox" } } }); console.log(JSON.stringify({ ok: true, message: "" })); }
                catch (e) { console.log(JSON.stringify({ ok: false, message: e.message })); }`;
            const r = spawnSync(process.execPath, ["--import", "tsx", "-e", code], { cwd: ROOT, encoding: "utf8" });
            assert.equal(r.status, 0, r.stderr);
            return JSON.parse(r.stdout.trim().split("\n").pop()!);
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    }

    it("without one (run from the sources) the schema is compiled; a broken one fails naming the file and the fix", () => {
        assert.deepEqual(validateWith(undefined), { ok: true, message: "" });
        const broken = validateWith("module.exports = require('./no-such-runtime-module');\n");
        assert.equal(broken.ok, false);
        assert.match(broken.message, /compose\/schema-validator\.js \(generated by `npm run build`\) does not load: .*no-such-runtime-module.*run `npm run build` again/s);
    });
});
