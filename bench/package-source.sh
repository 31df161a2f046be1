#!/usr/bin/env bash
# package-source.sh fetch|serve|stop|status [--dir DIR] [--address ADDR] [--port PORT] [PACKAGE...]
#
# The lab's package source for the benchmarks' real provisioning (bench/README.md): lab nodes have
# no outbound network, so Debian's docker.io and everything it depends on are downloaded once on
# this machine and served to the nodes over HTTP from the lab network's gateway address, as a
# site's own Debian mirror serves its machines.
#
#   fetch   download PACKAGE... (default: docker.io) and their whole dependency closure (Depends and
#           Pre-Depends, recursively; no Recommends: engine-install.sh installs with
#           --no-install-recommends) from this machine's configured Debian mirror into DIR/pool,
#           and index them (DIR/Packages, DIR/Packages.gz; dpkg-scanpackages). Does nothing when
#           DIR/packages.list already lists the same closure and every file is there.
#   serve   an HTTP server for DIR on ADDR:PORT (python3's http.server, started in the background;
#           its pid in /run/dccn-bench/package-source-ADDR-PORT.pid); nothing when one answers.
#   stop    stops the server started by `serve` for ADDR:PORT (by its pid file, never by name).
#   status  exits 0 when the server on ADDR:PORT serves DIR's index.
#
# Nodes use it with one apt source line, written by bench/node-engine.sh:
#   deb [trusted=yes] http://ADDR:PORT/ ./
# DIR defaults to /var/cache/dccn-lab/packages (outside the work tree: a fresh clone reuses it).
set -euo pipefail

usage() {
  sed -n '2p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

[ $# -ge 1 ] || usage
mode=$1
shift
dir=/var/cache/dccn-lab/packages address="" port=8077
packages=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir=${2:?}; shift 2 ;;
    --address) address=${2:?}; shift 2 ;;
    --port) port=${2:?}; shift 2 ;;
    -*) usage ;;
    *) packages+=("$1"); shift ;;
  esac
done
[ ${#packages[@]} -gt 0 ] || packages=(docker.io)
run_dir=/run/dccn-bench
pidfile() { printf '%s/package-source-%s-%s.pid\n' "$run_dir" "$address" "$port"; }
say() { printf '[package-source] %s\n' "$*" >&2; }

answers() {
  curl -fsS --max-time 3 -o /dev/null "http://$address:$port/Packages" 2>/dev/null
}

case "$mode" in
  fetch)
    command -v dpkg-scanpackages >/dev/null || { echo "dpkg-scanpackages missing: apt-get install dpkg-dev (bench/prereqs.sh)" >&2; exit 5; }
    mkdir -p "$dir/pool"
    # The closure: every package reached through Depends/Pre-Depends, virtual ones (<name>) left out
    # (apt lists their providers as well).
    closure=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
      --no-replaces --no-enhances "${packages[@]}" | grep -v '^ ' | grep -v '^<' | sort -u)
    [ -n "$closure" ] || { echo "apt-cache found no packages for ${packages[*]}: apt-get update first" >&2; exit 1; }
    if [ -f "$dir/packages.list" ] && [ "$(cat "$dir/packages.list")" = "$closure" ] && [ -s "$dir/Packages.gz" ]; then
      missing=0
      while IFS= read -r f; do [ -f "$dir/$f" ] || missing=1; done < <(sed -n 's/^Filename: //p' "$dir/Packages")
      if [ "$missing" = 0 ]; then
        say "$(wc -l <"$dir/packages.list") packages already in $dir"
        exit 0
      fi
    fi
    say "downloading $(wc -l <<<"$closure") packages (${packages[*]} and their dependencies) into $dir/pool"
    # apt-get download writes into the current directory; _apt must be able to write there.
    chmod 0755 "$dir" "$dir/pool"
    (cd "$dir/pool" && xargs apt-get download -q=2 <<<"$closure")
    (cd "$dir" && dpkg-scanpackages -m pool /dev/null 2>/dev/null >Packages.tmp && mv Packages.tmp Packages && gzip -9kf Packages)
    printf '%s\n' "$closure" >"$dir/packages.list"
    say "indexed $(grep -c '^Package: ' "$dir/Packages") packages, $(du -sh "$dir/pool" | cut -f1)"
    ;;
  serve)
    [ -n "$address" ] || usage
    [ -s "$dir/Packages" ] || { echo "$dir has no index: run \`$0 fetch\` first" >&2; exit 1; }
    if answers; then exit 0; fi
    mkdir -p "$run_dir"
    # /usr/bin/python3: Debian's, whatever python3 comes first on PATH.
    setsid /usr/bin/python3 -m http.server --bind "$address" --directory "$dir" "$port" \
      </dev/null >>"$run_dir/package-source-$address-$port.log" 2>&1 &
    echo $! >"$(pidfile)"
    for _ in $(seq 1 50); do
      if answers; then say "serving $dir on http://$address:$port/"; exit 0; fi
      sleep 0.1
    done
    echo "the package source on $address:$port did not answer (log $run_dir/package-source-$address-$port.log)" >&2
    exit 1
    ;;
  stop)
    [ -n "$address" ] || usage
    f=$(pidfile)
    if [ -s "$f" ]; then
      pid=$(<"$f")
      # Only our own server: the pid must still be python3 serving this directory.
      if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "http.server --bind $address --directory $dir $port"; then
        kill "$pid"
      fi
      rm -f "$f"
    fi
    ;;
  status)
    [ -n "$address" ] || usage
    answers
    ;;
  *) usage ;;
esac
