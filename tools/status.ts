// status: the cluster's health, measured against the stack configuration. Read-only.
//
//   npm run status -- --stack <env> [--json] [--svg FILE] [--key FILE]
//
// Exit status: 0 healthy, 1 unhealthy, 2 the check could not run (usage, stack config, SSH key).
import * as fs from "fs";
import * as path from "path";
import { args, UsageError } from "../lib/cli-args";
import {
    evaluateStatus, gatherStatus, loadStatusSetup, renderJson, renderSvg, renderTable, StatusSetupError,
} from "../lib/cluster-status";

export const USAGE = `usage: npm run status -- --stack <env> [--json] [--svg FILE] [--key FILE] [--project DIR]
  --stack ENV     the stack whose Pulumi.<ENV>.yaml describes the cluster (e.g. dev, prod)
  --json          print the report as JSON (for monitoring systems) instead of the table
  --svg FILE      also write a picture of the cluster (nodes, roles, labels, tasks) to FILE
  --key FILE      SSH private key, when the stack keeps it as the secret sshPrivateKey
                  (or set DCCN_SSH_KEY_FILE)
  --project DIR   project root holding the stack file (default: this project)
exit status: 0 healthy, 1 unhealthy, 2 the check could not run`;

export interface CliOptions {
    stack: string;
    json: boolean;
    svg?: string;
    key?: string;
    project: string;
}

export { UsageError };

export function parseArgs(argv: string[], defaultProject: string): CliOptions | "help" {
    const o: Partial<CliOptions> = { json: false, project: defaultProject };
    for (const { flag, raw: a, value } of args(argv)) {
        switch (flag) {
            case "--stack": case "-s": o.stack = value(); break;
            case "--json": o.json = true; break;
            case "--svg": o.svg = value(); break;
            case "--key": o.key = value(); break;
            case "--project": o.project = path.resolve(value()); break;
            case "-h": case "--help": return "help";
            default: throw new UsageError(`unknown argument '${a}'`);
        }
    }
    if (!o.stack) throw new UsageError("--stack is required");
    return o as CliOptions;
}

export async function main(argv: string[]): Promise<number> {
    let opts: CliOptions | "help";
    try {
        opts = parseArgs(argv, path.resolve(__dirname, ".."));
    } catch (e) {
        process.stderr.write(`status: ${(e as Error).message}\n${USAGE}\n`);
        return 2;
    }
    if (opts === "help") {
        process.stdout.write(USAGE + "\n");
        return 0;
    }
    let setup;
    try {
        setup = loadStatusSetup({ root: opts.project, stack: opts.stack, keyFile: opts.key });
    } catch (e) {
        if (!(e instanceof StatusSetupError)) throw e;
        if (opts.json) {
            process.stdout.write(JSON.stringify({ project: "dccn-swarm", stack: opts.stack, healthy: false, error: e.message }, null, 2) + "\n");
        }
        process.stderr.write(`status: ${e.message}\n`);
        return 2;
    }
    const observation = await gatherStatus(setup);
    const report = evaluateStatus(setup.cluster, observation);
    process.stdout.write(opts.json ? renderJson(report) : renderTable(report));
    if (opts.svg) {
        try {
            fs.writeFileSync(opts.svg, renderSvg(report));
        } catch (e) {
            process.stderr.write(`status: cannot write ${opts.svg}: ${(e as Error).message}\n`);
            return 2;
        }
        if (!opts.json) process.stdout.write(`picture written to ${opts.svg}\n`);
    }
    return report.healthy ? 0 : 1;
}

if (require.main === module) {
    main(process.argv.slice(2)).then(
        (code) => process.exit(code),
        (err) => {
            process.stderr.write(`status: ${err?.stack ?? err}\n`);
            process.exit(2);
        },
    );
}
