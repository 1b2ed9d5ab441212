"""Soak test of distributed tuning: a chief and 2 workers on loopback run a 40-trial search while
a random worker is killed (``kill -9``, its trial process with it) every few finished trials
and a replacement started (the same command with a new ``--tuner-id``, as a replacement
machine would be), so each lost trial goes through the chief's lease and runs again.

Reported: trials completed and failed, trials run again (keras-tuner's per-trial run counts in
``oracle.json``), workers killed, wall time, and the chief's RSS over the search (sampled every
second; also plotted to ``WORK/soak_chief_rss.png``).

    .venv/bin/python benchmarks/bench_soak.py --work /tmp/soak [--trials 40] [--kill-every 3] [--lease 10]
"""

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil

TUNE = [sys.executable, str(Path(__file__).resolve().parents[1] / "tuning" / "tune.py")]
SPACE = ["--depth", "1", "--width", "0.5", "--audio", "conv1d", "--export-epochs", "1", "--tuner", "random"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def finished(out):
    return len(list(out.glob("keras_tuner/trial_*/mmdigits_trial.json")))


def main():
    shared = Path(os.environ.get("MMDIGITS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=shared / "kaggle_sample")
    parser.add_argument("--trials", type=int, default=40)
    parser.add_argument("--kill-every", type=int, default=3, help="finished trials between two kills")
    parser.add_argument("--lease", type=float, default=10.0, help="MMDIGITS_WORKER_LEASE_S (seconds)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    out = args.work / "search"
    common = ["--data", str(args.data), "--out", str(out), "--max-trials", str(args.trials), "--epochs", "1",
              "--oracle", f"127.0.0.1:{free_port()}", *SPACE]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "MMDIGITS_WORKER_LEASE_S": str(args.lease)}
    logs = {}

    def start(name, command):
        logs.setdefault(name, open(args.work / f"{name}.log", "a"))
        return subprocess.Popen(command, stdout=logs[name], stderr=subprocess.STDOUT, env=env)

    started = time.monotonic()
    chief = start("chief", [*TUNE, *common, "--distributed", "chief"])
    worker_command = [*TUNE, *common, "--distributed", "worker", "--tuner-id"]
    workers = {name: start(name, [*worker_command, name]) for name in ("w1", "w2")}
    generation = 0
    chief_process = psutil.Process(chief.pid)
    rss, kills, last_kill_at = [], [], 0
    while chief.poll() is None:
        try:
            rss.append((time.monotonic() - started, chief_process.memory_info().rss / 2**20))
        except psutil.NoSuchProcess:
            break
        done = finished(out)
        if done - last_kill_at >= args.kill_every and done < args.trials:
            name = rng.choice(sorted(workers))
            if workers[name].poll() is None:
                for process in psutil.Process(workers[name].pid).children(recursive=True) + [workers[name]]:
                    process.kill()
                workers[name].wait()
                kills.append({"worker": name, "at_s": round(time.monotonic() - started, 1), "finished": done})
                time.sleep(2.0)
                generation += 1
                replacement = f"w{generation + 2}"
                del workers[name]
                workers[replacement] = start(replacement, [*worker_command, replacement])
            last_kill_at = done
        time.sleep(1.0)
    wall = time.monotonic() - started
    search_ended = max((p.stat().st_mtime for p in out.glob("keras_tuner/trial_*/mmdigits_trial.json")),
                       default=time.time()) - (time.time() - time.monotonic()) - started
    for process in workers.values():
        process.wait(timeout=120)
    for log in logs.values():
        log.close()

    import pandas as pd

    board = pd.read_csv(out / "leaderboard.csv")
    run_times = json.loads((out / "keras_tuner" / "oracle.json").read_text())["run_times"]
    chief_log = (args.work / "chief.log").read_text()
    print(f"\n{args.trials}-trial random search, chief + 2 workers on loopback, {args.data.name}, 1 epoch per trial, "
          f"lease {args.lease:g} s, a random worker killed every {args.kill_every} finished trials:\n")
    print("| what | value |")
    print("|---|---|")
    print(f"| chief exit code | {chief.returncode} |")
    print(f"| trials completed / failed | {int((board['status'] == 'COMPLETED').sum())} / "
          f"{int((board['status'] != 'COMPLETED').sum())} |")
    print(f"| workers killed (and restarted) | {len(kills)} |")
    print(f"| trials run again (run count - 1, summed) | {sum(max(0, n - 1) for n in run_times.values())} |")
    print(f"| releases of lost workers (chief log) | {chief_log.count(' lost (')} |")
    print(f"| late results dropped (chief log) | {chief_log.count('dropped a late result')} |")
    print(f"| best/ exported | {(out / 'best' / 'model.keras').is_file()} |")
    print(f"| wall time | {wall:.0f} s |")
    values = [m for _, m in rss]
    searching = [m for t, m in rss if 20 <= t <= search_ended]  # after start-up, before best/ trains
    print(f"| chief RSS while trials run (from 20 s): min / max | {min(searching):.0f} / {max(searching):.0f} MiB |")
    print(f"| chief RSS peak (while it trains best/) | {max(values):.0f} MiB |")
    marks = [rss[int(i * (len(rss) - 1) / 8)] for i in range(9)]
    print("\nchief RSS over time: " + ", ".join(f"{t:.0f} s {m:.0f} MiB" for t, m in marks))
    (args.work / "soak_chief_rss.json").write_text(json.dumps({"rss_mib": rss, "kills": kills}))
    print("kills: " + ", ".join(f"{k['worker']} at {k['at_s']:.0f} s" for k in kills))

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 3))
    axis.plot([t for t, _ in rss], values, label="chief RSS")
    for kill in kills:
        axis.axvline(kill["at_s"], color="tab:red", alpha=0.3)
    axis.set(xlabel="seconds", ylabel="MiB", title="Chief RSS during the soak (red: a worker killed)")
    figure.tight_layout()
    figure.savefig(args.work / "soak_chief_rss.png", dpi=100)
    return 0 if chief.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
