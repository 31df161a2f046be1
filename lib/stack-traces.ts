/**
 * The SDK records a stack trace for every promise it makes (for its leak report) and every
 * resource (its source position), and the language host maps each frame through the source maps:
 * about 0.6 s of CPU per run for this program's 48 resources, before the first resource reaches the
 * engine and again along every chain of outputs. The program turns that off; its own errors carry
 * their messages (which name the file, key and fix). `DCCN_STACK_TRACES=1` keeps the traces, for
 * debugging the program. No imports: the program's preload (lib/fast-start.ts) uses it.
 */
export function withoutStackTraces(env: NodeJS.ProcessEnv = process.env): void {
    if (env.DCCN_STACK_TRACES !== "1") Error.stackTraceLimit = 0;
}
