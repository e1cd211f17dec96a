# Sourced by run.sh and ab.sh (which set ROOT and DATA): the benchmark config of one egressd.
# bench_config FILE PORT DATADIR [more YAML] [more dns settings, as YAML flow-map entries]
# A one-line top-level key in "more YAML" (cache:, log:, api:) replaces the default's.
bench_config() {
  local more=${4:-} key
  cat >"$1" <<YAML
dns: { listen: ["127.0.0.1:$2"]${5:+, $5} }
upstreams: ["udp://127.0.0.2:5300"]
cache: { maxEntries: 100000 }
api: { listen: "127.0.0.1:0" }
blocklists:
  dir: $ROOT/blocklists
  sources: [{ name: bench, path: "$DATA/blocklist.txt", format: plain }]
log: { level: warn }
dataDir: $3
YAML
  for key in cache api log; do
    if printf '%s\n' "$more" | grep -q "^$key:"; then sed -i "/^$key: /d" "$1"; fi
  done
  printf '%s\n' "$more" >>"$1"
}
