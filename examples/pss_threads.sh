#!/bin/sh
# pss_threads.sh: the threads of a process and where each one is, then every thread's call
# chain, from the shell (with pss installed by scripts/install.sh).
#
#   examples/pss_threads.sh PID
set -eu
pss capture "$1" --flags threads,thread-context --context-flags control,integer
pss stack "$1"
