#!/usr/bin/env bash
# Start a single-node SLURM on localhost (munge, slurmctld, slurmd), for the local-SLURM test.
# slurmctld starts with -c: no job state survives from an earlier run.
# Debian's slurm-wlm 22.05. No systemd here, so every daemon starts by hand, detached with setsid.
# The config goes to /etc/slurm/slurm.conf, the one path every SLURM command finds without SLURM_CONF
# (the Snakemake plugin strips SLURM_* variables inside jobs, so srun there would not see SLURM_CONF).
# An existing slurm.conf that this script did not write is never overwritten. State and logs live in
# $KDMEM_SLURM_DIR (default /tmp/kdmem-slurm).
# Accounting is off; Snakemake must then poll with --slurm-status-command squeue (polling sacct
# without slurmdbd fails and the plugin hangs without a word). MinJobAge keeps finished jobs
# visible to squeue long enough for that poll.
set -euo pipefail
# The daemons live in /usr/sbin, which a plain shell's PATH (env -i, PATH=/usr/local/bin:/usr/bin:/bin) lacks.
export PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin"
DIR=${KDMEM_SLURM_DIR:-/tmp/kdmem-slurm}
SLURM_CONF=/etc/slurm/slurm.conf
MARK="# written by kdmem tests/slurm/start_slurm.sh"

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  apt-get update -qq </dev/null >/tmp/kdmem-slurm-apt.log 2>&1
  # Every stream away from the caller's pipes: a daemon a package's install script starts keeps them open,
  # and a caller reading them to the end (the test fixture) would wait for it until its timeout.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge </dev/null >/tmp/kdmem-slurm-apt.log 2>&1
fi

if scontrol ping 2>/dev/null | grep -q UP; then
  echo "slurm: already up ($SLURM_CONF)"; exit 0
fi

if [ -f "$SLURM_CONF" ] && ! grep -qF "$MARK" "$SLURM_CONF"; then
  echo "slurm: $SLURM_CONF exists and is not kdmem's; refusing to overwrite a real cluster config" >&2; exit 1
fi
mkdir -p "$DIR"/{state,spool,log} /run/munge /run/slurm /etc/slurm
chown munge:munge /run/munge
[ -s /etc/munge/munge.key ] || { dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 2>/dev/null;
  chown munge:munge /etc/munge/munge.key; chmod 400 /etc/munge/munge.key; }
# munged keeps the stdout and stderr it was started with: left on the caller's pipes, a caller that reads them to
# the end (the test fixture's subprocess.run) waits as long as munged lives. Send them to a log.
pgrep -x munged >/dev/null || su -s /bin/sh munge -c "/usr/sbin/munged" </dev/null >"$DIR/log/munged.out" 2>&1

CPUS=$(nproc)
MEM=$(( $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) - 1024 ))
cat > "$SLURM_CONF" <<CONF
$MARK
ClusterName=kdmem
SlurmctldHost=localhost
AuthType=auth/munge
SlurmUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Without a default, a job with no mem_mb takes the whole node and jobs run one at a time.
DefMemPerCPU=500
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MinJobAge=600
ReturnToService=2
MpiDefault=none
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
NodeName=localnode NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEM State=UNKNOWN
PartitionName=debug Nodes=localnode Default=YES MaxTime=INFINITE State=UP
CONF

setsid slurmctld -D -c -f "$SLURM_CONF" >"$DIR/log/slurmctld.out" 2>&1 < /dev/null &
setsid slurmd -D -N localnode -f "$SLURM_CONF" >"$DIR/log/slurmd.out" 2>&1 < /dev/null &
# Up to 2 min of wall time: a first start on a loaded machine takes longer than 30 s. A deadline, not a count:
# with no controller up, each sinfo waits out its own ~9 s timeout.
end=$((SECONDS + 120))
while [ $SECONDS -lt $end ]; do
  if timeout 10 sinfo -h -o '%T' 2>/dev/null | grep -q idle; then echo "slurm: up ($SLURM_CONF)"; exit 0; fi
  sleep 0.5
done
echo "slurm: the node did not come up; see $DIR/log" >&2
tail -5 "$DIR"/log/*.log >&2 || true
exit 1
