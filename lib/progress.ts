/**
 * Progress of a long step (an image build) for the engine's display: the provider plugin sets where
 * lines go for the call it serves (provider/main.ts), and the implementation reports with
 * `progress()` without knowing about the engine. Outside a provider call it goes nowhere.
 */
import { AsyncLocalStorage } from "async_hooks";

const sink = new AsyncLocalStorage<(line: string) => void>();

/** Runs `fn` with `report` receiving the progress lines reported inside it. */
export function withProgress<T>(report: (line: string) => void, fn: () => Promise<T>): Promise<T> {
    return sink.run(report, fn);
}

/** Reports one line of progress of the current call. */
export function progress(line: string): void {
    sink.getStore()?.(line);
}
