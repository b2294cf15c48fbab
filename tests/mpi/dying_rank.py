"""A rank that fails mid-training ends the whole job, soon, with its message, and a rank that
never joins the setup stops the others after their timeout: no rank hangs.
Usage: dying_rank.py MPIRUN EXECUTABLE RANKS."""
import subprocess
import sys
import time

mpirun, executable, ranks = sys.argv[1], sys.argv[2], sys.argv[3]
last = int(ranks) - 1
failures = []
for how, expected in [("throw", f"mint: rank {last} of {ranks} stops every rank: the data source: shard 7 is unreadable"),
                      ("exit", "exited"),
                      ("late", "comm was not joined by every rank within 1 s")]:
    start = time.monotonic()
    try:
        run = subprocess.run([mpirun, "-np", ranks, "--oversubscribe", executable, how],
                             capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        failures.append(f"{how}: the job still ran after 120 s (a rank hangs)")
        continue
    seconds = time.monotonic() - start
    output = run.stdout + run.stderr
    print(f"{how}: exit code {run.returncode} after {seconds:.1f} s")
    if run.returncode == 0:
        failures.append(f"{how}: the job exited 0 although rank {last} failed")
    if expected not in output:
        failures.append(f"{how}: the output lacks '{expected}':\n{output}")
if failures:
    print("\n".join(failures))
    sys.exit(1)
