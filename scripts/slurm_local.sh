#!/usr/bin/env bash
# slurm_local.sh -- bring up / tear down a real single-node Slurm cluster on
# this machine, for tests and CI.
#
#   scripts/slurm_local.sh up      install (if needed) and start munged, MariaDB,
#                                  slurmdbd, slurmctld and slurmd; wait until the
#                                  node is idle. Idempotent ("already up").
#   scripts/slurm_local.sh down    stop all of them (cancels any remaining jobs);
#                                  packages and config stay installed.
#   scripts/slurm_local.sh status  show which daemons run, and sinfo; exit 0 only
#                                  if all five run.
#
# Tested with Slurm 22.05.8 (Debian 12 "bookworm" packages slurm-wlm, slurmdbd,
# munge 0.5.15, mariadb-server 10.11), as root, without systemd.
#
# FOR THROWAWAY TEST MACHINES ONLY: it installs packages, OVERWRITES
# /etc/slurm/slurm.conf and /etc/slurm/slurmdbd.conf, creates a MariaDB
# database `slurm_acct_db` and a MariaDB user 'slurm'@'localhost', and `down`
# kills daemons by exact process name (munged, mariadbd, slurm*).
#
# Layout: one node named `hostname -s` (CPUs = nproc, RealMemory = 95% of
# MemTotal), partition `debug` (default, no time limit), select/cons_tres with
# CR_Core_Memory (so --mem is enforced at submission), proctrack/linuxproc and
# task/none (no cgroups needed), accounting through slurmdbd (sacct works).
# slurmctld and slurmdbd run as the `slurm` user, slurmd as root.
# Logs: /var/log/slurm/{slurmctld,slurmd,slurmdbd}.log (+ *.stderr),
#       /var/log/munge/munged.log, /var/log/slurm/mariadb.stderr.
#
# Notes: memory is only checked at submission/scheduling, not enforced while
# a job runs (no cgroups; slurmctld logs "No memory enforcing mechanism").
# `scancel --signal=SIG` reaches job steps (srun) only; add --batch/--full to
# signal the batch script itself. Refused submissions still get a job id and
# show up in sacct as FAILED 1:0.
#
# Environment overrides: SLURM_LOCAL_CLUSTER (cluster name, default "local"),
# SLURM_LOCAL_TIMEOUT (seconds to wait for the node to be idle, default 60),
# SLURM_LOCAL_CRED_EXPIRE (AuthInfo cred_expire, default 20 s; Slurm's default
# is 120 s, which is also the delay before a requeued job can start again).
set -euo pipefail

CLUSTER="${SLURM_LOCAL_CLUSTER:-local}"
NODE_TIMEOUT="${SLURM_LOCAL_TIMEOUT:-60}"
CRED_EXPIRE="${SLURM_LOCAL_CRED_EXPIRE:-20}"
NODE="$(hostname -s)"
ETC=/etc/slurm
LOGDIR=/var/log/slurm
RUNDIR=/run/slurm
DB=slurm_acct_db
PACKAGES=(slurm-wlm munge slurmdbd mariadb-server)

die()  { echo "slurm_local: ERROR: $*" >&2; exit 1; }
die2() { echo "slurm_local: $*" >&2; exit 2; }
log()  { echo "slurm_local: $*"; }

show_log() {  # show_log FILE... : last 20 lines of each existing file
  local f
  for f in "$@"; do
    if [[ -s "$f" ]]; then
      echo "----- last 20 lines of $f -----" >&2
      tail -n 20 "$f" >&2
    fi
  done
}

running() { pgrep -x "$1" >/dev/null 2>&1; }

mysqld_name() {  # MariaDB >= 10.5 runs as "mariadbd", older as "mysqld"
  if running mariadbd; then echo mariadbd; elif running mysqld; then echo mysqld; else echo mariadbd; fi
}

wait_for() {  # wait_for SECONDS DESCRIPTION CMD... : poll CMD every 0.5 s
  local secs=$1 what=$2; shift 2
  local end=$((SECONDS + secs))
  while ! "$@" >/dev/null 2>&1; do
    if ((SECONDS >= end)); then
      echo "slurm_local: ERROR: timed out after ${secs}s waiting for $what" >&2
      return 1
    fi
    sleep 0.5
  done
}

wait_daemon() {  # wait_daemon NAME SECONDS DESCRIPTION CMD... : like wait_for, fails fast if NAME exits
  local name=$1 secs=$2 what=$3; shift 3
  local end=$((SECONDS + secs))
  while ! "$@" >/dev/null 2>&1; do
    if ! running "$name"; then
      sleep 0.5; "$@" >/dev/null 2>&1 && return 0
      echo "slurm_local: ERROR: $name exited while waiting for $what" >&2
      return 1
    fi
    if ((SECONDS >= end)); then
      echo "slurm_local: ERROR: timed out after ${secs}s waiting for $what" >&2
      return 1
    fi
    sleep 0.5
  done
}

# --------------------------------------------------------------------------- install
installed() {
  local b
  for b in munged mungekey slurmctld slurmd slurmdbd sacctmgr sinfo sbatch mysqld_safe mariadb; do
    command -v "$b" >/dev/null 2>&1 || [[ -x /usr/sbin/$b ]] || return 1
  done
}

install_packages() {
  installed && return 0
  log "installing ${PACKAGES[*]} (apt-get)..."
  # Keep the maintainer scripts from starting services (there is no systemd,
  # and slurmctld/slurmd would start without a config); we start them below.
  local made_policy=0
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    made_policy=1
  fi
  local rc=0 out=/tmp/slurm_local_apt.log
  {
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${PACKAGES[@]}" ||
      { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${PACKAGES[@]}"; }
  } >"$out" 2>&1 || rc=$?
  ((made_policy)) && rm -f /usr/sbin/policy-rc.d
  if ((rc != 0)) || ! installed; then
    tail -n 20 "$out" >&2
    die2 "apt-get could not install ${PACKAGES[*]} (exit $rc; full log: $out)"
  fi
  log "installed: $(dpkg-query -W -f='${Package} ${Version}; ' "${PACKAGES[@]}" 2>/dev/null)"
}

# --------------------------------------------------------------------------- munge
start_munge() {
  id munge >/dev/null 2>&1 || die "user 'munge' does not exist (munge package broken?)"
  install -d -o munge -g munge -m 0700 /etc/munge /var/lib/munge /var/log/munge
  install -d -o munge -g munge -m 0755 /run/munge
  if [[ ! -s /etc/munge/munge.key ]]; then
    log "creating /etc/munge/munge.key"
    if command -v mungekey >/dev/null 2>&1; then
      mungekey --create --keyfile=/etc/munge/munge.key
    else
      dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
    fi
  fi
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
  if ! running munged; then
    log "starting munged"
    runuser -u munge -- /usr/sbin/munged >/var/log/munge/munged.stderr 2>&1 ||
      { show_log /var/log/munge/munged.stderr /var/log/munge/munged.log; die "munged failed to start"; }
  fi
  wait_for 10 "munge to encode/decode a credential" bash -c 'munge -n | unmunge' ||
    { show_log /var/log/munge/munged.log; die "munged is not working"; }
}

# --------------------------------------------------------------------------- mariadb
mysql_root() { mariadb --protocol=socket -uroot; }  # root via unix_socket auth

start_mariadb() {
  install -d -o mysql -g mysql -m 0755 /run/mysqld
  install -d -o slurm -g slurm -m 0755 "$LOGDIR"
  if [[ ! -d /var/lib/mysql/mysql ]]; then
    log "initialising MariaDB data directory"
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/tmp/slurm_local_mariadb_init.log 2>&1 ||
      { tail -n 20 /tmp/slurm_local_mariadb_init.log >&2; die "mariadb-install-db failed"; }
  fi
  if ! running mariadbd && ! running mysqld; then
    log "starting MariaDB (mysqld_safe)"
    # setsid+nohup: detach from this shell so it survives the caller's session.
    setsid nohup mysqld_safe --skip-syslog --innodb-lock-wait-timeout=900 --innodb-buffer-pool-size=512M \
      >"$LOGDIR/mariadb.stderr" 2>&1 </dev/null &
  fi
  wait_for 60 "MariaDB to answer (mysqladmin ping)" mysqladmin --protocol=socket -uroot ping ||
    { show_log "$LOGDIR/mariadb.stderr" /var/log/mysql/error.log /var/lib/mysql/"$(hostname)".err; die "MariaDB did not come up"; }
}

db_password() {  # reuse the password already in slurmdbd.conf, else make one
  local p=""
  if [[ -r $ETC/slurmdbd.conf ]]; then
    p="$(sed -n 's/^StoragePass=//p' "$ETC/slurmdbd.conf" | head -n1)"
  fi
  [[ -n $p ]] || p="slurm_$(od -An -N8 -tx8 /dev/urandom | tr -d ' \n')"
  echo "$p"
}

setup_db() {
  local pass=$1
  mysql_root <<SQL || die "could not create the MariaDB database/user for slurmdbd"
CREATE DATABASE IF NOT EXISTS $DB;
CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$pass';
ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$pass';
GRANT ALL ON $DB.* TO 'slurm'@'localhost';
FLUSH PRIVILEGES;
SQL
}

# --------------------------------------------------------------------------- config
write_configs() {
  local pass=$1
  id slurm >/dev/null 2>&1 || die "user 'slurm' does not exist (slurm packages broken?)"
  install -d -o root -g root -m 0755 "$ETC"
  install -d -o slurm -g slurm -m 0755 "$LOGDIR" "$RUNDIR" /var/spool/slurmctld
  install -d -o root -g root -m 0755 /var/spool/slurmd

  local cpus mem_total real_mem def_mem
  cpus="$(nproc)"
  mem_total="$(free -m | awk '/^Mem:/ {print $2}')"
  real_mem=$((mem_total * 95 / 100))
  # Without DefMemPerCPU a job without --mem gets the whole node's memory
  # (CR_Core_Memory), which would serialise all such jobs.
  def_mem=$((real_mem / cpus)); ((def_mem > 1024)) && def_mem=1024
  # Socket/core layout as slurmd detects it (avoids "Node reconfigured
  # socket/core boundaries"); only used when it agrees with nproc.
  local topo="" hw
  hw="$(slurmd -C 2>/dev/null | head -n1 || true)"
  if [[ $hw =~ CPUs=([0-9]+).*SocketsPerBoard=([0-9]+).*CoresPerSocket=([0-9]+).*ThreadsPerCore=([0-9]+) ]] &&
    [[ ${BASH_REMATCH[1]} == "$cpus" ]]; then
    topo="Sockets=${BASH_REMATCH[2]} CoresPerSocket=${BASH_REMATCH[3]} ThreadsPerCore=${BASH_REMATCH[4]}"
  fi

  local tmp
  tmp="$(mktemp)"
  cat >"$tmp" <<EOF
# Written by scripts/slurm_local.sh -- single-node test cluster. Do not edit.
AuthType=auth/munge
StorageType=accounting_storage/mysql
StorageHost=localhost
StoragePort=3306
StorageUser=slurm
StoragePass=$pass
StorageLoc=$DB
DbdHost=localhost
DbdPort=6819
SlurmUser=slurm
LogFile=$LOGDIR/slurmdbd.log
PidFile=$RUNDIR/slurmdbd.pid
DebugLevel=info
EOF
  install -o slurm -g slurm -m 0600 "$tmp" "$ETC/slurmdbd.conf"

  cat >"$tmp" <<EOF
# Written by scripts/slurm_local.sh -- single-node test cluster. Do not edit.
ClusterName=$CLUSTER
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=slurm
SlurmdUser=root
AuthType=auth/munge
# cred_expire also is how long a requeued job waits before it may start again
# (default 120 s); keep it short for tests.
AuthInfo=cred_expire=$CRED_EXPIRE
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=$RUNDIR/slurmctld.pid
SlurmdPidFile=$RUNDIR/slurmd.pid
SlurmctldLogFile=$LOGDIR/slurmctld.log
SlurmdLogFile=$LOGDIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
MpiDefault=none
SwitchType=switch/none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=5,bf_interval=5
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$def_mem
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=10
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=6819
JobCompType=jobcomp/none
JobRequeue=1
ReturnToService=2
MinJobAge=30
KillWait=5
InactiveLimit=0
Waittime=0
SlurmctldTimeout=30
SlurmdTimeout=60
MailProg=/bin/true
NodeName=$NODE NodeAddr=127.0.0.1 CPUs=$cpus${topo:+ $topo} RealMemory=$real_mem State=UNKNOWN
PartitionName=debug Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
  install -o root -g root -m 0644 "$tmp" "$ETC/slurm.conf"
  rm -f "$tmp"
}

# --------------------------------------------------------------------------- slurm
start_daemon() {  # start_daemon NAME : daemonises itself; stderr kept for early failures
  local name=$1
  running "$name" && return 0
  log "starting $name"
  "/usr/sbin/$name" >"$LOGDIR/$name.stderr" 2>&1 </dev/null ||
    { show_log "$LOGDIR/$name.stderr" "$LOGDIR/$name.log"; die "$name failed to start"; }
}

daemon_alive_or_die() {
  local name=$1
  running "$name" || { show_log "$LOGDIR/$name.stderr" "$LOGDIR/$name.log"; die "$name exited right after starting"; }
}

node_state() { sinfo -h -n "$NODE" -o %T 2>/dev/null | head -n1; }
node_idle() { [[ "$(node_state)" == idle ]]; }
# Usable: responding (no trailing "*"), not down/drained; may be running jobs.
node_usable() {
  case "$(node_state)" in idle | mixed | allocated | completing) return 0 ;; *) return 1 ;; esac
}
cluster_known() { [[ -n "$(sacctmgr -n -P show cluster "$CLUSTER" format=cluster 2>/dev/null)" ]]; }

all_running() {
  local d
  for d in munged slurmdbd slurmctld slurmd; do running "$d" || return 1; done
  running mariadbd || running mysqld
}

cmd_up() {
  local t0=$SECONDS
  install_packages
  if all_running && node_usable; then
    log "already up ($(sinfo --version), node $NODE $(node_state))"
    return 0
  fi
  start_munge
  start_mariadb
  local pass
  pass="$(db_password)"
  setup_db "$pass"
  if running slurmdbd || running slurmctld || running slurmd; then
    log "some Slurm daemons already run: keeping the existing /etc/slurm configs"
  else
    write_configs "$pass"
  fi

  start_daemon slurmdbd
  wait_daemon slurmdbd 30 "slurmdbd to answer (sacctmgr show cluster)" sacctmgr -n show cluster ||
    { show_log "$LOGDIR/slurmdbd.stderr" "$LOGDIR/slurmdbd.log"; die "slurmdbd did not come up"; }
  if ! cluster_known; then
    log "registering cluster '$CLUSTER' in accounting"
    sacctmgr -i add cluster "$CLUSTER" >/dev/null ||
      { show_log "$LOGDIR/slurmdbd.log"; die "sacctmgr add cluster $CLUSTER failed"; }
  fi

  start_daemon slurmctld
  wait_daemon slurmctld 30 "slurmctld to answer (scontrol ping)" bash -c 'scontrol ping | grep -q UP' ||
    { show_log "$LOGDIR/slurmctld.stderr" "$LOGDIR/slurmctld.log"; die "slurmctld did not come up"; }
  start_daemon slurmd
  sleep 1
  daemon_alive_or_die slurmd

  local end=$((SECONDS + NODE_TIMEOUT)) st resumed=0
  while :; do
    st="$(node_state)"
    case "$st" in
      idle | mixed | allocated | completing) break ;;
      down* | drain* | fail*)
        if ((resumed < 3)); then
          log "node $NODE is '$st' -> scontrol update state=resume"
          scontrol update nodename="$NODE" state=resume >/dev/null 2>&1 || true
          resumed=$((resumed + 1))
        fi ;;
    esac
    if ((SECONDS >= end)); then
      sinfo -R >&2 || true
      show_log "$LOGDIR/slurmd.log" "$LOGDIR/slurmctld.log"
      die "node $NODE not idle after ${NODE_TIMEOUT}s (state: '${st:-unknown}')"
    fi
    daemon_alive_or_die slurmd
    daemon_alive_or_die slurmctld
    sleep 0.5
  done
  log "up: $(sinfo --version), cluster '$CLUSTER', node $NODE $st, CPUs=$(nproc), in $((SECONDS - t0))s"
}

stop_proc() {  # stop_proc NAME [SECONDS] : SIGTERM by exact name, SIGKILL if still there
  local name=$1 secs=${2:-15} end
  running "$name" || return 0
  log "stopping $name"
  pkill -x "$name" || true
  end=$((SECONDS + secs))
  while running "$name"; do
    if ((SECONDS >= end)); then
      log "$name did not exit after ${secs}s, sending SIGKILL"
      pkill -KILL -x "$name" || true
      sleep 0.5
      break
    fi
    sleep 0.2
  done
}

cmd_down() {
  if running slurmctld && scontrol ping 2>/dev/null | grep -q UP; then
    local jobs
    jobs="$(squeue -h -o %i 2>/dev/null | paste -sd " ")"
    if [[ -n ${jobs// /} ]]; then
      log "cancelling remaining jobs: $jobs"
      # shellcheck disable=SC2086
      scancel $jobs 2>/dev/null || true
      # shellcheck disable=SC2016  # expanded by the inner bash
      wait_for 15 "jobs to finish cancelling" bash -c '[[ -z "$(squeue -h -t R,CG 2>/dev/null)" ]]' || true
    fi
  fi
  stop_proc slurmd
  stop_proc slurmstepd 5
  stop_proc slurmctld
  stop_proc slurmdbd
  if running mariadbd || running mysqld; then
    log "stopping MariaDB"
    mysqladmin --protocol=socket -uroot shutdown >/dev/null 2>&1 || true
    stop_proc mysqld_safe 5
    stop_proc "$(mysqld_name)" 30
  fi
  stop_proc mysqld_safe 5
  stop_proc munged
  log "down"
}

cmd_status() {
  local d rc=0
  for d in munged mariadbd slurmdbd slurmctld slurmd; do
    if running "$d" || { [[ $d == mariadbd ]] && running mysqld; }; then
      printf '  %-10s running (pid %s)\n' "$d" "$(pgrep -x "$d" | paste -sd " ")"
    else
      printf '  %-10s not running\n' "$d"
      rc=1
    fi
  done
  if command -v sinfo >/dev/null 2>&1 && running slurmctld; then
    sinfo || true
  fi
  return $rc
}

main() {
  [[ $(id -u) -eq 0 ]] || die2 "must be run as root (it installs packages and starts system daemons)"
  case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
  esac
}

main "$@"
