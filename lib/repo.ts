/**
 * The repository's root directory, from the running module: the same whether this code runs from
 * its TypeScript source (lib/) or compiled ahead (bin/lib/).
 */
import * as fs from "fs";
import * as path from "path";

function findRoot(from: string): string {
    for (let dir = from; ; dir = path.dirname(dir)) {
        const pkg = path.join(dir, "package.json");
        if (fs.existsSync(pkg) && fs.existsSync(path.join(dir, "scripts"))) return dir;
        if (path.dirname(dir) === dir) throw new Error(`cannot find the dccn-swarm repository above ${from}`);
    }
}

export const REPO_ROOT = findRoot(__dirname);
