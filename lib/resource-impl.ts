/**
 * What the provider plugin (provider/) does for one resource type: the same operations as a
 * Pulumi provider's, with inputs and outputs as plain values (secrets unwrapped by the provider
 * before they get here). The implementations live in lib/*-providers.ts; the resources the program
 * declares are in lib/resources.ts.
 */

/* eslint-disable @typescript-eslint/no-explicit-any */

export interface CheckFailure {
    property: string;
    reason: string;
}

export interface CheckResult {
    inputs?: any;
    failures?: CheckFailure[];
}

export interface DiffResult {
    changes?: boolean;
    replaces?: string[];
    stables?: string[];
    deleteBeforeReplace?: boolean;
    /** Property paths that differ (e.g. `spec.TaskTemplate.ContainerSpec.Image`), for the detailed diff. */
    diffs?: string[];
}

export interface ReadResult {
    id?: string;
    props?: any;
    inputs?: any;
}

export interface ResourceImpl {
    check?(olds: any, news: any): Promise<CheckResult>;
    diff?(id: string, olds: any, news: any): Promise<DiffResult>;
    create(inputs: any): Promise<{ id: string; outs?: any }>;
    read?(id: string, props?: any): Promise<ReadResult>;
    update?(id: string, olds: any, news: any): Promise<{ outs?: any }>;
    delete?(id: string, props: any): Promise<void>;
    /**
     * The outputs after a change of connection only (or of the state's shape), where nothing runs:
     * default, the old outputs with the new inputs over them.
     */
    stateOnly?(olds: any, news: any): any;
}
