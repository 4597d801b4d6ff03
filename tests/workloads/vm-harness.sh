# The Docker engine proof's harness, run by src/vm/engine.rs's init in the AppArmor VM once
# dockerd answers and the images are loaded (tests/official_vm.rs writes the payload). One
# standalone `addon-sandbox serve` for all add-ons; then, per add-on (a folder
# /payload/addons/<name> with config.yaml, options.json, ready.sh, check.sh, and maybe
# prepare.sh; the image's name in `image`): `addon-sandbox run` without --allow-unconfined,
# wait for ready.sh, the label of the container's PID 1, check.sh, the attacks through `docker
# exec` between two MARK lines in the kernel log, `stop`, `rm`, and whether the profile is
# still loaded. Every result is one `@@ <addon> <step> ...` line; tests/official_vm.rs reads them.
# The client scripts see the container's address as $IP and the gateway's as $GW.

S=/var/lib/addon-sandbox/state
D=/var/lib/addon-sandbox/data
GW=172.30.232.1
export GW
# nginx_proxy's first start makes 4096-bit DH parameters: 2 min under TCG, 4 on a loaded host.
READY_WITHIN=${READY_WITHIN:-480}
up() { cut -d' ' -f1 /proc/uptime; }
# printf, not echo: dash's echo reads backslashes (a JSON reading's \n) as escapes.
say() { printf '@@ %s\n' "$*"; }
one_line() { tr '\n' ' ' | cut -c1-600; }
since() { awk -v a="$1" -v b="$(up)" 'BEGIN{printf "%.1f", b-a}'; }

# The attacks: label|command, run as the add-on through `docker exec`. Each must fail.
attack_list() {
  cat <<'EOF'
core_pattern|echo core > /proc/sys/kernel/core_pattern
sysrq|echo h > /proc/sysrq-trigger
usr_bin|echo x > /usr/bin/addon-sandbox-attack
s6_overlay|echo x > /etc/s6-overlay/addon-sandbox-attack
data_exec|cp /bin/true /data/addon-sandbox-attack && /data/addon-sandbox-attack
mount|mount -t tmpfs none /mnt
raw_socket|perl -e 'socket(my $s, 2, 3, 1) or die "socket: $!"'
EOF
}

serve_start() {
  mkdir -p "$S" "$D" /srv/upstream
  echo "upstream answer from the VM" >/srv/upstream/index.html
  addon-sandbox serve --homeassistant "http://$GW:8123" --state-dir "$S" \
    >/run/serve.out 2>/run/serve.log &
  for i in $(seq 600); do grep -q listen /run/serve.out 2>/dev/null && break; sleep 0.5; done
  say "serve $(head -1 /run/serve.out) $(up)"
  # Home Assistant stood in for by busybox's httpd on the gateway (nginx_proxy's upstream).
  busybox httpd -p "$GW:8123" -h /srv/upstream || say "serve httpd FAILED"
}

# Poll ready.sh until it succeeds or READY_WITHIN seconds pass.
wait_ready() {
  n=$1 t0=$2
  while [ "$(since "$t0" | cut -d. -f1)" -lt "$READY_WITHIN" ]; do
    if sh "/payload/addons/$n/ready.sh" >"/run/$n.ready" 2>&1; then return 0; fi
    sleep 0.5
  done
  return 1
}

# One `docker exec` runs every attack (each exec costs seconds under emulation), each in a
# subshell of its own, printing its label, exit status and output on one line.
attacks() {
  n=$1 c=$2
  attack_list | while IFS='|' read -r label cmd; do
    printf 'out=$( (%s) 2>&1 </dev/null); rc=$?; echo "%s rc=$rc $(echo "$out" | tr "\\n" " " | cut -c1-300)"\n' \
      "$cmd" "$label"
  done >"/run/$n.attacks"
  sleep 2
  echo "MARK attacks-begin $n" >/dev/kmsg
  timeout 300 docker exec -i "$c" sh <"/run/$n.attacks" 2>&1 | sed "s/^/@@ $n attack /"
  # The audit records reach the log asynchronously: let the last ones in before the mark.
  sleep 2
  echo "MARK attacks-end $n" >/dev/kmsg
}

addon_case() {
  n=$1 image=$2 dir=/payload/addons/$1 c=app_local_$1
  t0=$(up)
  [ -f "$dir/prepare.sh" ] && sh "$dir/prepare.sh"
  if ! timeout 600 addon-sandbox run --json --image "$image" --options "$(cat "$dir/options.json")" \
    "$dir" --data-root "$D" --state-dir "$S" >"/run/$n.run" 2>&1; then
    say "$n run FAILED $(one_line <"/run/$n.run")"
    return
  fi
  say "$n run ok $(since "$t0")"
  profile=$(docker inspect -f '{{.AppArmorProfile}}' "$c")
  say "$n profile $profile"
  if grep -q "^$profile (enforce)" /sys/kernel/security/apparmor/profiles; then
    say "$n loaded yes"
  else
    say "$n loaded no"
  fi
  IP=$(docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$c")
  export IP
  if wait_ready "$n" "$t0"; then
    say "$n ready yes $(since "$t0")"
  else
    say "$n ready no $(since "$t0") $(one_line <"/run/$n.ready")"
  fi
  say "$n attr $(cat "/proc/$(docker inspect -f '{{.State.Pid}}' "$c")/attr/current")"
  if sh "$dir/check.sh" >"/run/$n.check" 2>&1; then
    say "$n check ok $(one_line <"/run/$n.check")"
  else
    say "$n check FAILED $(one_line <"/run/$n.check")"
  fi
  attacks "$n" "$c"
  docker logs --tail 40 "$c" 2>&1 | sed "s/^/@@ $n log /"
  t1=$(up)
  out=$(timeout 180 addon-sandbox stop "local_$n" --state-dir "$S" 2>&1)
  say "$n stop rc=$? $(since "$t1") $(echo "$out" | one_line)"
  # 0: s6-overlay's own shutdown finished in the stop timeout; 137: it was killed.
  say "$n exit $(docker inspect -f '{{.State.ExitCode}}' "$c" 2>&1)"
  out=$(timeout 180 addon-sandbox rm "local_$n" --state-dir "$S" 2>&1)
  say "$n rm rc=$? $(echo "$out" | one_line)"
  if grep -q "^$profile " /sys/kernel/security/apparmor/profiles; then
    say "$n unloaded no"
  else
    say "$n unloaded yes"
  fi
  say "$n done $(since "$t0")"
}

serve_start

# Learn mode (tests/learn_vm.rs): `addon-sandbox learn` of add-on $2's image with the config in
# /payload/learn/$1 (the add-on's own, or with one right removed), its exercise script (which
# waits for the add-on's ready.sh, or for its container to stop), then 3 s more. The reading
# (--json) is one `@@ learn <label> json ...` line; learn's own messages follow as `err` lines.
learn_case() {
  label=$1 n=$2 image=$3 dir=/payload/learn/$1 addon=/payload/addons/$2
  t0=$(up)
  [ -f "$addon/prepare.sh" ] && sh "$addon/prepare.sh"
  timeout 900 addon-sandbox learn --json --image "$image" --options "$(cat "$addon/options.json")" \
    "$dir" --data-root "$D" --state-dir "$S" --for 3 --exercise "sh $dir/exercise.sh" \
    >"/run/learn-$label.json" 2>"/run/learn-$label.err"
  say "learn $label rc=$? $(since "$t0")"
  say "learn $label json $(tr -d '\n' <"/run/learn-$label.json")"
  tail -60 "/run/learn-$label.err" | sed "s/^/@@ learn $label err /"
}
