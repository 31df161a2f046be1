/**
 * Short port syntax (`[ip:][published[-end]:]target[-end][/proto]`) expanded to
 * one entry per port, as docker/go-connections nat.ParsePortSpecs and
 * cli/opts.ConvertPortToPortConfig do for `docker stack deploy`.
 */
import { isIP } from "node:net";

export interface PortEntry {
  target: number;
  published?: number;
  protocol: string;
  mode: string;
}

function parseRange(s: string): [number, number] | undefined {
  const m = /^(\d+)(?:-(\d+))?$/.exec(s);
  if (!m) return undefined;
  const start = Number(m[1]);
  const end = m[2] === undefined ? start : Number(m[2]);
  if (start > 65535 || end > 65535 || end < start) return undefined;
  return [start, end];
}

/** Returns the expanded entries and, when a host IP was given, that IP (the engine ignores it). */
export function parseShortPort(raw: string): { ports: PortEntry[]; ignoredIp?: string } {
  const parts = raw.split(":");
  const n = parts.length;
  let ip = "";
  let hostPort = "";
  let containerPort = parts[n - 1];
  if (n === 2) hostPort = parts[0];
  else if (n === 3) [ip, hostPort] = [parts[0], parts[1]];
  else if (n > 3) {
    ip = parts.slice(0, n - 2).join(":");
    hostPort = parts[n - 2];
  }
  let proto = "tcp";
  const slash = containerPort.indexOf("/");
  if (slash >= 0) {
    proto = containerPort.slice(slash + 1) || "tcp";
    containerPort = containerPort.slice(0, slash);
  }
  proto = proto.toLowerCase();
  if (ip.startsWith("[") && ip.endsWith("]")) ip = ip.slice(1, -1);
  if (ip !== "" && isIP(ip) === 0) throw new Error(`invalid IP address: ${ip}`);
  if (containerPort === "") throw new Error(`no port specified: ${raw}<empty>`);
  const cr = parseRange(containerPort);
  if (!cr) throw new Error(`invalid containerPort: ${containerPort}`);
  let hr: [number, number] | undefined;
  if (hostPort !== "") {
    hr = parseRange(hostPort);
    if (!hr) throw new Error(`invalid hostPort: ${hostPort}`);
    if (cr[1] - cr[0] !== hr[1] - hr[0] && cr[1] !== cr[0]) {
      throw new Error(`invalid ranges specified for container and host Ports: ${containerPort} and ${hostPort}`);
    }
  }
  if (!["tcp", "udp", "sctp"].includes(proto)) throw new Error(`invalid proto: ${proto}`);

  const ports: PortEntry[] = [];
  for (let i = 0; i <= cr[1] - cr[0]; i++) {
    const target = cr[0] + i;
    if (!hr) {
      ports.push({ target, protocol: proto, mode: "ingress" });
    } else if (cr[0] === cr[1] && hr[0] !== hr[1]) {
      // one container port, a range of host ports: published on each of them
      for (let p = hr[0]; p <= hr[1]; p++) ports.push({ target, published: p, protocol: proto, mode: "ingress" });
    } else {
      ports.push({ target, published: hr[0] + i, protocol: proto, mode: "ingress" });
    }
  }
  const unspecified = ip === "" || ip === "0.0.0.0" || ip === "::";
  return unspecified ? { ports } : { ports, ignoredIp: ip };
}
