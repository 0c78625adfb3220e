#!/usr/bin/env bash
# Copied unchanged (below this note) from the project's shared tools, ../shared/tools/slurm-single-node.sh,
# so that tests/workflow/test_slurm.py runs on a fresh clone. Keep the two copies in step.
#
# Single-node SLURM "cluster" for tests, from Debian 12 packages
# (slurm-wlm 22.05 + munge + slurmdbd/mariadb for accounting, so `sacct` works).
#
#   bash slurm-single-node.sh [start]   install (if needed), configure, start, wait for node idle
#   bash slurm-single-node.sh status    show daemons and sinfo
#   bash slurm-single-node.sh stop      stop every daemon this script started (by pid file)
#
# Idempotent: a second `start` keeps running daemons and only starts missing ones.
# Everything lives under $SLURM_SN_DIR (default /tmp/slurm-single-node); the one thing
# written outside it is the symlink /etc/slurm/slurm.conf -> $SLURM_SN_DIR/etc/slurm.conf,
# because snakemake-executor-plugin-slurm-jobstep strips SLURM_CONF (all SLURM_* vars)
# before its nested `srun`, so the config must be found at the default path.
# All daemons run as root and listen on 127.0.0.1 only. No systemd, no cgroups needed.
set -euo pipefail

BASE=${SLURM_SN_DIR:-/tmp/slurm-single-node}
CLUSTER=${SLURM_SN_CLUSTER:-sntest}
PARTITION=${SLURM_SN_PARTITION:-main}
ACCOUNT=${SLURM_SN_ACCOUNT:-snake}
ACCOUNTING=${SLURM_SN_ACCOUNTING:-1}   # 0: no slurmdbd/mariadb (then sacct does not work)
CTLD_PORT=${SLURM_SN_CTLD_PORT:-6817}
SLURMD_PORT=${SLURM_SN_SLURMD_PORT:-6818}
DBD_PORT=${SLURM_SN_DBD_PORT:-6819}
DB_PORT=${SLURM_SN_DB_PORT:-3307}      # private mariadbd, not the distro default 3306
WAIT_S=${SLURM_SN_WAIT_S:-90}          # upper bound for every wait loop
NODE=$(hostname -s)
ETC_LINK=/etc/slurm/slurm.conf

E=$BASE/etc; R=$BASE/run; L=$BASE/log; S=$BASE/spool
MUNGE_SOCK=$R/munge.socket.2
export SLURM_CONF=$E/slurm.conf

log() { printf '[slurm-single-node %s] %s\n' "$(date +%T)" "$*"; }
die() { log "ERROR: $*"; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }

# wait_for SECONDS DESCRIPTION CMD...  (bounded poll, 0.5 s period)
wait_for() {
  local limit=$1 what=$2; shift 2
  local end=$(( $(date +%s) + limit ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || { log "timeout (${limit}s) waiting for $what"; return 1; }
    sleep 0.5
  done
}

# pid of daemon NAME if its pid file points at a live process with that command name
pid_of() {
  local f=$R/$1.pid p
  [ -s "$f" ] || return 1
  p=$(tr -dc 0-9 < "$f")
  [ -n "$p" ] && [ -r "/proc/$p/comm" ] && [ "$(cat "/proc/$p/comm")" = "$1" ] && echo "$p"
}

DAEMONS="munged mariadbd slurmdbd slurmctld slurmd"
[ "$ACCOUNTING" = 1 ] || DAEMONS="munged slurmctld slurmd"

port_busy_by_other() {  # PORT NAME -> true if someone other than our NAME listens on PORT
  local port=$1 name=$2 mine
  mine=$(pid_of "$name" || true)
  ss -Htlnp "sport = :$port" 2>/dev/null | grep -q . || return 1
  [ -n "$mine" ] && ss -Htlnp "sport = :$port" | grep -q "pid=$mine," && return 1
  return 0
}

install_packages() {
  local pkgs="slurm-wlm munge" missing="" p
  [ "$ACCOUNTING" = 1 ] && pkgs="$pkgs slurmdbd mariadb-server"
  for p in $pkgs slurm-client slurmctld slurmd; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
  done
  if [ -z "$missing" ]; then log "packages already installed"; return 0; fi
  log "installing:$missing"
  local t0 made_policy=0; t0=$(now)
  # Never let package scripts start system munge/mariadb services (we start our own).
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; made_policy=1
  fi
  local APT="apt-get -o DPkg::Lock::Timeout=900 -y -q"
  if ! DEBIAN_FRONTEND=noninteractive $APT install --no-install-recommends $missing; then
    DEBIAN_FRONTEND=noninteractive $APT update
    DEBIAN_FRONTEND=noninteractive $APT install --no-install-recommends $missing
  fi
  [ "$made_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
  log "TIMING install_packages: $(since "$t0") s"
}

write_if_changed() {  # FILE MODE ; content on stdin
  local f=$1 mode=$2 tmp; tmp=$(mktemp "$f.XXXX")
  cat > "$tmp"; chmod "$mode" "$tmp"
  if [ -f "$f" ] && cmp -s "$tmp" "$f"; then rm -f "$tmp"; return 1; fi
  mv -f "$tmp" "$f"; return 0
}

write_configs() {
  mkdir -p "$E" "$R" "$L" "$S/ctld" "$S/d" "$BASE/lib/munge"
  chmod 700 "$E" "$BASE/lib/munge"; chmod 755 "$BASE" "$R"   # munged insists on o+x for every directory down to its socket
  [ -s "$E/munge.key" ] || mungekey -c -b 1024 -k "$E/munge.key"
  chmod 600 "$E/munge.key"
  [ -s "$E/dbpass" ] || { head -c 18 /dev/urandom | base64 | tr -dc A-Za-z0-9 > "$E/dbpass"; chmod 600 "$E/dbpass"; }

  # Hardware as slurmd sees it (fallback: nproc / free -m); memory a bit below physical.
  local hw cpus mem topo
  hw=$(slurmd -C 2>/dev/null | head -1 || true)
  cpus=$(sed -n 's/.* CPUs=\([0-9]*\).*/\1/p' <<<"$hw"); cpus=${cpus:-$(nproc)}
  mem=$(sed -n 's/.* RealMemory=\([0-9]*\).*/\1/p' <<<"$hw"); mem=${mem:-$(free -m | awk '/^Mem:/{print $2}')}
  mem=$(( mem * 9 / 10 ))
  topo=$(grep -o 'Boards=[0-9]* SocketsPerBoard=[0-9]* CoresPerSocket=[0-9]* ThreadsPerCore=[0-9]*' <<<"$hw" || true)

  local acct_lines="AccountingStorageType=accounting_storage/none"
  if [ "$ACCOUNTING" = 1 ]; then
    acct_lines="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$DBD_PORT
# for the slurmdbd connection the munge socket comes from AccountingStoragePass, not AuthInfo
AccountingStoragePass=$MUNGE_SOCK"
  fi

  CONF_CHANGED=0
  write_if_changed "$E/slurm.conf" 644 <<EOF && CONF_CHANGED=1 || true
# generated by slurm-single-node.sh
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
# bind to the resolved (loopback) address instead of INADDR_ANY
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCK
CredType=cred/munge
StateSaveLocation=$S/ctld
SlurmdSpoolDir=$S/d
SlurmctldPidFile=$R/slurmctld.pid
SlurmdPidFile=$R/slurmd.pid
SlurmctldLogFile=$L/slurmctld.log
SlurmdLogFile=$L/slurmd.log
# no cgroups in containers/VMs without delegation
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
ReturnToService=2
SlurmdParameters=config_overrides
MinJobAge=300
$acct_lines
JobCompType=jobcomp/none
MailProg=/bin/true
NodeName=$NODE NodeAddr=127.0.0.1 NodeHostname=$NODE CPUs=$cpus $topo RealMemory=$mem State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF

  if [ "$ACCOUNTING" = 1 ]; then
    write_if_changed "$E/slurmdbd.conf" 600 <<EOF && CONF_CHANGED=1 || true
# generated by slurm-single-node.sh (must be mode 600, owned by SlurmUser)
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCK
DbdHost=$NODE
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
CommunicationParameters=NoInAddrAny
SlurmUser=root
LogFile=$L/slurmdbd.log
PidFile=$R/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$(cat "$E/dbpass")
StorageLoc=slurm_acct_db
EOF
  fi

  # default-path config for clients that lose SLURM_CONF (slurm-jobstep plugin)
  mkdir -p /etc/slurm
  if [ -L "$ETC_LINK" ] || [ ! -e "$ETC_LINK" ]; then
    ln -sfn "$E/slurm.conf" "$ETC_LINK"
  elif ! cmp -s "$ETC_LINK" "$E/slurm.conf"; then
    [ -e "$ETC_LINK.pre-single-node" ] || cp -p "$ETC_LINK" "$ETC_LINK.pre-single-node"
    log "moved existing $ETC_LINK to $ETC_LINK.pre-single-node"
    ln -sfn "$E/slurm.conf" "$ETC_LINK"
  fi
  echo "export SLURM_CONF=$E/slurm.conf" > "$BASE/env.sh"
}

start_munged() {
  if pid_of munged >/dev/null; then log "munged already running (pid $(pid_of munged))"; return; fi
  rm -f "$MUNGE_SOCK" "$MUNGE_SOCK.lock"
  munged --key-file="$E/munge.key" --socket="$MUNGE_SOCK" --pid-file="$R/munged.pid" \
         --log-file="$L/munged.log" --seed-file="$BASE/lib/munge/munged.seed"
  wait_for 15 munged sh -c "munge -n -S '$MUNGE_SOCK' | unmunge -S '$MUNGE_SOCK'" || die "munged: see $L/munged.log"
  log "munged up (pid $(pid_of munged))"
}

MYSQL_OPTS=()
start_mariadb() {
  MYSQL_OPTS=(--no-defaults --user=root --datadir="$BASE/mysql" --socket="$R/mysqld.sock"
              --innodb-log-file-size=64M --innodb-buffer-pool-size=128M --innodb-lock-wait-timeout=900)
  local cli=(mariadb --no-defaults -S "$R/mysqld.sock" -u root)
  if ! pid_of mariadbd >/dev/null; then
    port_busy_by_other "$DB_PORT" mariadbd && die "port $DB_PORT busy; set SLURM_SN_DB_PORT"
    if [ ! -d "$BASE/mysql/mysql" ]; then
      rm -rf "$BASE/mysql"
      mariadb-install-db "${MYSQL_OPTS[@]}" --auth-root-authentication-method=socket --skip-test-db \
        > "$L/mariadb-install.log" 2>&1 || die "mariadb-install-db: see $L/mariadb-install.log"
    fi
    setsid mariadbd "${MYSQL_OPTS[@]}" --pid-file="$R/mariadbd.pid" --bind-address=127.0.0.1 \
      --port="$DB_PORT" --skip-name-resolve --log-error="$L/mariadbd.log" </dev/null >/dev/null 2>&1 &
    wait_for 60 mariadbd mariadb-admin --no-defaults -S "$R/mysqld.sock" -u root ping \
      || die "mariadbd: see $L/mariadbd.log"
    wait_for 10 "mariadbd pid file" pid_of mariadbd || die "mariadbd pid file"
  fi
  local pw; pw=$(cat "$E/dbpass")
  "${cli[@]}" -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$pw';
                  ALTER USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$pw';
                  GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; FLUSH PRIVILEGES;"
  log "mariadbd up (pid $(pid_of mariadbd), 127.0.0.1:$DB_PORT)"
}

start_slurmdbd() {
  if ! pid_of slurmdbd >/dev/null; then
    port_busy_by_other "$DBD_PORT" slurmdbd && die "port $DBD_PORT busy"
    slurmdbd || die "slurmdbd: see $L/slurmdbd.log"
  fi
  wait_for 60 slurmdbd timeout 10 sacctmgr -n list cluster || die "slurmdbd: see $L/slurmdbd.log"
  log "slurmdbd up (pid $(pid_of slurmdbd))"
  # cluster, account, user associations (all idempotent)
  timeout 20 sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER" \
    || timeout 20 sacctmgr -i add cluster "$CLUSTER" >/dev/null
  timeout 20 sacctmgr -n -P list account format=account | grep -qx "$ACCOUNT" \
    || timeout 20 sacctmgr -i add account "$ACCOUNT" Cluster="$CLUSTER" Description=test Organization=test >/dev/null
  local u
  for u in root ${SUDO_USER:-} $(id -un); do
    timeout 20 sacctmgr -n -P list assoc cluster="$CLUSTER" account="$ACCOUNT" user="$u" format=user | grep -qx "$u" \
      || timeout 20 sacctmgr -i add user "$u" Account="$ACCOUNT" DefaultAccount="$ACCOUNT" Cluster="$CLUSTER" >/dev/null
  done
}

node_state() { timeout 10 sinfo -h -n "$NODE" -o %T 2>/dev/null | head -1; }
node_idle() { case "$(node_state)" in idle|mixed|allocated|completing) return 0;; *) return 1;; esac; }

start_slurm() {
  if ! pid_of slurmctld >/dev/null; then
    port_busy_by_other "$CTLD_PORT" slurmctld && die "port $CTLD_PORT busy"
    slurmctld || die "slurmctld: see $L/slurmctld.log"
  elif [ "${CONF_CHANGED:-0}" = 1 ]; then
    log "config changed: scontrol reconfigure"; timeout 20 scontrol reconfigure || true
  fi
  wait_for 30 slurmctld sh -c 'timeout 10 scontrol ping | grep -q UP' || die "slurmctld: see $L/slurmctld.log"
  log "slurmctld up (pid $(pid_of slurmctld))"
  if ! pid_of slurmd >/dev/null; then
    port_busy_by_other "$SLURMD_PORT" slurmd && die "port $SLURMD_PORT busy"
    slurmd -N "$NODE" || die "slurmd: see $L/slurmd.log"
  fi
  wait_for 15 "slurmd pid" pid_of slurmd || die "slurmd: see $L/slurmd.log"
  local end=$(( $(date +%s) + WAIT_S )) resumed=0
  until node_idle; do
    if [ "$(date +%s)" -ge "$end" ]; then sinfo -R || true; die "node not idle after ${WAIT_S}s (state '$(node_state)'); see $L/"; fi
    case "$(node_state)" in *drain*|down*|*fail*)
      if [ $resumed = 0 ]; then timeout 10 scontrol update NodeName="$NODE" State=RESUME || true; resumed=1; fi;;
    esac
    sleep 0.5
  done
  log "slurmd up (pid $(pid_of slurmd)); node $NODE is $(node_state)"
}

check_loopback_only() {
  local d p bad=0
  for d in $DAEMONS; do
    p=$(pid_of "$d") || continue
    if ss -Htlnp | grep "pid=$p," | awk '{print $4}' | grep -vqE '^(127\.|\[::1\]|\[::ffff:127\.)'; then
      log "WARNING: $d listens on a non-loopback address:"; ss -Htlnp | grep "pid=$p,"; bad=1
    fi
  done
  [ $bad = 0 ] && log "all daemons listen on 127.0.0.1 only"
  return 0
}

do_stop() {
  local d p i
  # cancel leftover jobs first so no slurmstepd outlives slurmd
  if pid_of slurmctld >/dev/null; then
    timeout 10 squeue -h -o %A 2>/dev/null | xargs -r timeout 10 scancel 2>/dev/null || true
  fi
  for d in slurmd slurmctld slurmdbd mariadbd munged; do
    p=$(pid_of "$d") || continue
    log "stopping $d (pid $p)"; kill -TERM "$p" 2>/dev/null || true
    for i in $(seq 1 60); do kill -0 "$p" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$p" 2>/dev/null; then log "$d did not stop in 30 s: kill -KILL $p"; kill -KILL "$p" || true; fi
    rm -f "$R/$d.pid"
  done
  if [ -L "$ETC_LINK" ] && [ "$(readlink "$ETC_LINK")" = "$E/slurm.conf" ]; then
    rm -f "$ETC_LINK"
    [ -e "$ETC_LINK.pre-single-node" ] && mv -f "$ETC_LINK.pre-single-node" "$ETC_LINK"
  fi
  log "stopped. State kept in $BASE (rm -rf it for a clean slate)."
}

do_status() {
  local d
  for d in $DAEMONS; do
    if p=$(pid_of "$d"); then echo "$d: running, pid $p"; else echo "$d: not running"; fi
  done
  timeout 10 sinfo 2>/dev/null || true
}

case "${1:-start}" in
  start)
    [ "$(id -u)" = 0 ] || die "run as root"
    install_packages
    write_configs
    t0=$(now)
    start_munged
    if [ "$ACCOUNTING" = 1 ]; then start_mariadb; start_slurmdbd; fi
    start_slurm
    log "TIMING daemons start -> node idle: $(since "$t0") s"
    check_loopback_only
    echo
    do_status
    cat <<EOF

Cluster '$CLUSTER' ready: partition '$PARTITION', account '$ACCOUNT', node '$NODE'.
Clients find the config at $ETC_LINK (symlink); or: source $BASE/env.sh
Logs: $L/   Pids: $R/*.pid
Stop:  bash $0 stop     (or by pid, in this order:$(for d in slurmd slurmctld slurmdbd mariadbd munged; do p=$(pid_of $d) && printf ' kill %s (%s);' "$p" "$d"; done))
EOF
    ;;
  stop) do_stop ;;
  status) do_status ;;
  *) echo "usage: $0 [start|stop|status]"; exit 2 ;;
esac
