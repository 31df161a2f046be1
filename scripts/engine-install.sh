#!/usr/bin/env bash
# engine-install.sh - ensure the Docker engine is installed and enabled on this node.
#
# The first of the DCCN kickstart post-install steps for Docker (document chapter 4.2.1),
# written to be re-run: when `dockerd` is already installed nothing is installed again.
#
# Environment (all optional):
#   DOCKER_PACKAGE   package(s) to install, space separated.
#                    default: docker.io (apt-get family), docker-ce (dnf/yum family).
#                    e.g. "moby-engine" (Fedora), "docker" (CentOS 7 extras), "docker-ce-24.0.9".
#   DOCKER_REPO_URL  dnf/yum only: .repo file fetched to /etc/yum.repos.d/docker-ce.repo when that
#                    file is absent. default: Docker's docker-ce repo for the distribution when
#                    DOCKER_PACKAGE starts with docker-ce; set it to "" to use the configured repos.
#   DCCN_ROOT        prefix for every file path (/etc, /run), for tests. default: "" (the real root).
#
# Output: progress on stderr, then exactly one line on stdout:
#   DCCN_RESULT changed=<0|1> engine=<version> manager=<dnf|yum|apt-get|none> package=<pkgs|none>
#               init=<systemctl|sysv|none> installed=<0|1> enabled=<0|1|unknown>
# On failure (exit status 1): DCCN_RESULT changed=<0|1> error=<code>
set -euo pipefail

PROG=engine-install
ROOT="${DCCN_ROOT:-}"
ROOT="${ROOT%/}"
CHANGED=0
RESULT_DONE=0

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
result() {
  local line="DCCN_RESULT changed=${CHANGED}" kv
  for kv in "$@"; do line+=" ${kv//[[:space:]]/_}"; done
  printf '%s\n' "$line"
  RESULT_DONE=1
}
die() {
  local code=$1
  shift
  printf '%s: error: %s\n' "$PROG" "$*" >&2
  result "error=${code}"
  exit 1
}
on_exit() {
  local rc=$1
  if [ "$rc" -ne 0 ] && [ "$RESULT_DONE" = 0 ]; then
    result error=unexpected "exit=${rc}"
  fi
}
trap 'on_exit $?' EXIT
# run CMD...: log it and run it with its stdout on stderr (stdout carries only the result line).
run() {
  log "+ $*"
  "$@" >&2
}

# os_release KEY: value of KEY in /etc/os-release (quotes removed), empty when absent.
os_release() {
  local file="${ROOT}/etc/os-release"
  [ -r "$file" ] || file="${ROOT}/usr/lib/os-release"
  [ -r "$file" ] || return 0
  sed -n "s/^$1=//p" "$file" | head -n 1 | sed -e 's/^"\(.*\)"$/\1/' -e "s/^'\(.*\)'\$/\1/"
}

# use_systemctl: systemd runs this node, or the systemctl on PATH is not systemd's own (a shim
# such as the lab's). systemd's systemctl in a container without systemd as PID 1 is not used.
use_systemctl() {
  command -v systemctl >/dev/null 2>&1 || return 1
  [ -d "${ROOT}/run/systemd/system" ] && return 0
  ! systemctl --version 2>/dev/null | grep -q '^systemd '
}
have_sysv() { [ -x "${ROOT}/etc/init.d/docker" ] && command -v service >/dev/null 2>&1; }
engine_answers() { timeout 10 docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

engine_version() {
  local out
  if out=$(dockerd --version 2>/dev/null); then
    # "Docker version 20.10.24+dfsg1, build 5d6db84"
    out=$(printf '%s\n' "$out" | sed -n 's/^Docker version \([^ ,]*\).*/\1/p' | head -n 1)
    printf '%s\n' "${out:-unknown}"
  else
    printf 'unknown\n'
  fi
}

os_id=$(os_release ID)
os_like=$(os_release ID_LIKE)
os_name=$(os_release PRETTY_NAME)
os_name="${os_name:-${os_id:-an unknown OS (no /etc/os-release)}}"

# Pick the package manager: the distribution family first, then whatever is there.
case " ${os_id} ${os_like} " in
  *" debian "* | *" ubuntu "*) candidates=(apt-get dnf yum) ;;
  *) candidates=(dnf yum apt-get) ;;
esac
manager=none
for m in "${candidates[@]}"; do
  if command -v "$m" >/dev/null 2>&1; then
    manager=$m
    break
  fi
done

installed=0
package=none
if command -v dockerd >/dev/null 2>&1; then
  log "the engine is already installed ($(command -v dockerd)): not installing anything"
else
  case "$manager" in
    apt-get)
      read -r -a pkgs <<<"${DOCKER_PACKAGE:-docker.io}"
      [ "${#pkgs[@]}" -gt 0 ] || die bad-package "DOCKER_PACKAGE is blank"
      export DEBIAN_FRONTEND=noninteractive
      run apt-get update
      run apt-get install -y --no-install-recommends "${pkgs[@]}"
      ;;
    dnf | yum)
      read -r -a pkgs <<<"${DOCKER_PACKAGE:-docker-ce}"
      [ "${#pkgs[@]}" -gt 0 ] || die bad-package "DOCKER_PACKAGE is blank"
      default_repo=""
      case "${pkgs[0]}" in
        docker-ce*)
          case "$os_id" in
            fedora) default_repo="https://download.docker.com/linux/fedora/docker-ce.repo" ;;
            *) default_repo="https://download.docker.com/linux/centos/docker-ce.repo" ;;
          esac
          ;;
      esac
      repo_url="${DOCKER_REPO_URL-$default_repo}"
      repo_file="${ROOT}/etc/yum.repos.d/docker-ce.repo"
      if [ -n "$repo_url" ] && [ ! -e "$repo_file" ]; then
        command -v curl >/dev/null 2>&1 || die no-curl "curl is needed to fetch ${repo_url}"
        install -d -m 0755 "${repo_file%/*}"
        run curl -fsSL -o "${repo_file}.tmp" "$repo_url"
        mv -f "${repo_file}.tmp" "$repo_file"
        CHANGED=1
      fi
      run "$manager" install -y "${pkgs[@]}"
      ;;
    *)
      die no-package-manager "neither dnf, yum nor apt-get found on ${os_name}" \
        "(ID=${os_id:-unknown}${os_like:+, ID_LIKE=${os_like}}): install the Docker engine by hand," \
        "see https://docs.docker.com/engine/install/"
      ;;
  esac
  CHANGED=1
  installed=1
  package="${pkgs[*]}"
  command -v dockerd >/dev/null 2>&1 ||
    die install-failed "installed ${package} with ${manager}, but there is still no dockerd on PATH"
fi

# Enabled and running.
enabled=unknown
if use_systemctl; then
  init=systemctl
  if systemctl is-enabled --quiet docker >/dev/null 2>&1 && systemctl is-active --quiet docker >/dev/null 2>&1; then
    enabled=1
  else
    run systemctl enable --now docker
    CHANGED=1
    enabled=1
  fi
elif have_sysv; then
  init=sysv
  # Ask the engine itself, not the init script: a dockerd started some other way counts as running.
  if ! engine_answers; then
    run service docker start
    CHANGED=1
  fi
else
  init=none
  log "no systemd and no /etc/init.d/docker: starting the engine at boot is left to this node's own setup"
fi

version=$(engine_version)
log "engine version ${version}"
if [ "$CHANGED" = 0 ]; then
  log "nothing changed"
fi
result "engine=${version}" "manager=${manager}" "package=${package}" "init=${init}" \
  "installed=${installed}" "enabled=${enabled}"
