# A local Redis Cluster for `TRAWL_REDIS_CLUSTER=1 deploy/dev.sh up`: 3 masters and 3 replicas on
# ports REDIS_PORT+1 … REDIS_PORT+6 (cluster bus: +10000), no persistence, state under
# $STATE/redis-cluster. Sourced by deploy/dev.sh (it defines log, die, STATE, REDIS_PORT).

cluster_ports() { seq $((REDIS_PORT + 1)) $((REDIS_PORT + 6)); }

start_redis_cluster() {
  local port nodes=() seeds=()
  for port in $(cluster_ports); do
    nodes+=("127.0.0.1:$port")
    [ ${#seeds[@]} -lt 3 ] && seeds+=("127.0.0.1:$port")
  done
  export REDIS_URL="redis+cluster://$(IFS=,; echo "${seeds[*]}")"
  if redis-cli -p $((REDIS_PORT + 1)) cluster info 2>/dev/null | grep -q cluster_state:ok; then
    return
  fi
  log "starting a throwaway Redis Cluster (3 masters, 3 replicas) on 127.0.0.1:$((REDIS_PORT + 1))-$((REDIS_PORT + 6))"
  for port in $(cluster_ports); do
    mkdir -p "$STATE/redis-cluster/$port"
    redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
      --cluster-config-file nodes.conf --cluster-node-timeout 2000 \
      --cluster-require-full-coverage no --save "" --appendonly no \
      --maxmemory-policy noeviction --daemonize yes --dir "$STATE/redis-cluster/$port" \
      --pidfile "$STATE/redis-cluster/$port/redis.pid" --logfile "$STATE/redis-cluster/$port/redis.log"
  done
  for port in $(cluster_ports); do
    for _ in $(seq 50); do
      redis-cli -p "$port" ping >/dev/null 2>&1 && break
      sleep 0.1
    done
  done
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >"$STATE/redis-cluster/create.log" 2>&1 \
    || die "redis-cli --cluster create failed; see $STATE/redis-cluster/create.log"
  for _ in $(seq 100); do
    redis-cli -p $((REDIS_PORT + 1)) cluster info | grep -q cluster_state:ok && return
    sleep 0.1
  done
  die "the Redis Cluster did not become healthy; see $STATE/redis-cluster/"
}

stop_redis_cluster() {
  local port
  for port in $(cluster_ports); do
    [ -f "$STATE/redis-cluster/$port/redis.pid" ] || continue
    redis-cli -p "$port" shutdown nosave >/dev/null 2>&1 || true
    # A cluster made again must start from empty nodes.
    rm -rf "${STATE:?}/redis-cluster/$port"
  done
}
