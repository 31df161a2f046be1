/**
 * Compile-time proof that the plain args are what @pulumi/docker 5.0.0 takes
 * (type-only imports: nothing of the provider is loaded at run time).
 */
import type * as docker from "@pulumi/docker";
import type * as pulumi from "@pulumi/pulumi";
import type {
  PlainConfigArgs, PlainNetworkArgs, PlainSecretArgs, PlainServiceArgs, PlainVolumeArgs,
} from "./types";

type Assignable<T, U extends T> = U;

export type ServiceArgsOk = Assignable<docker.ServiceArgs, PlainServiceArgs<pulumi.Input<string>>>;
export type NetworkArgsOk = Assignable<docker.NetworkArgs, PlainNetworkArgs>;
export type VolumeArgsOk = Assignable<docker.VolumeArgs, PlainVolumeArgs>;
export type SecretArgsOk = Assignable<docker.SecretArgs, PlainSecretArgs>;
export type ConfigArgsOk = Assignable<docker.ServiceConfigArgs, PlainConfigArgs>;
