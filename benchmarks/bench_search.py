"""The search under load: memory across keras-tuner trials, and a distributed search soaked in kills.

``--mode memory`` (keras-tuner issue #395: memory grows trial after trial; TensorFlow keeps about
a model's worth after each `fit`, so `mmdigits_keras.tuning` runs trials in worker processes by
default): 20 tiny trials (1 epoch on 600 rows of ``--data``, Model 1-2 at width 0.5-1 with both
audio encoders), with trials in worker processes and in the search process; the search
process's RSS after trials 1, 10 and 20 and the largest trial process's peak; the per-trial
overhead (wall time to the end of the last trial, less the seconds in `fit`, per trial).

``--mode soak``: a chief and 2 workers on loopback (keras-tuner's ``KERASTUNER_*`` environment)
run a 40-trial search while a random worker is killed (``kill -9``, its trial process with it)
every few finished trials and a replacement started with a new id, so each lost trial goes
through the chief's lease and runs again. Reported: trials completed and failed, trials run
again (keras-tuner's run counts in ``oracle.json``), workers killed, wall time, and the chief's
RSS over the search (sampled every second; plotted to ``WORK/soak_chief_rss.png``).

    .venv/bin/python benchmarks/bench_search.py --work W --mode memory [--trials 20]
    .venv/bin/python benchmarks/bench_search.py --work W --mode soak [--trials 40] [--kill-every 3] [--lease 10]
"""

import json
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import harness
import numpy as np
import pandas as pd
import psutil

TUNE = [sys.executable, str(Path(__file__).resolve().parents[1] / "tuning" / "tune.py")]


def first_rows(args):
    """The first ``--rows`` training rows of ``--data``, written once for both memory runs."""
    data = args.work / "data" / f"first{args.rows}"
    data.mkdir(parents=True, exist_ok=True)
    for name in ("x_train_wr", "x_train_sp"):
        np.save(data / f"{name}.npy", np.load(args.data / f"{name}.npy", allow_pickle=False)[:args.rows])
    pd.read_csv(args.data / "y_train.csv").iloc[:args.rows].to_csv(data / "y_train.csv", index=False)
    return data


def memory(args, data, *, isolate):
    from mmdigits_keras.training import TrainingSettings
    from mmdigits_keras.tuning import run_search

    process, samples, ended = psutil.Process(), {}, []

    def after_trial(trial):
        ended.append(time.perf_counter())
        samples[len(samples) + 1] = (process.memory_info().rss / 2**20, harness.peak_rss_mib(),
                                     resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)

    out = args.work / ("isolated" if isolate else "in-process")
    started = time.perf_counter()
    run_search(data, out=out, model="model2", tuner="random", max_trials=args.trials, epochs=1, overwrite=True,
               space={"depth": [1, 2], "width": [0.5, 1.0], "audio": ["conv1d", "lstm"]},
               settings=TrainingSettings(epochs=1, verbose=0), trial_end_hook=after_trial, isolate_trials=isolate)
    records = [json.loads(p.read_text()) for p in out.glob("keras_tuner/trial_*/mmdigits_trial.json")]
    print(f"\n{'trials in worker processes (default)' if isolate else 'trials in the search process'}: {args.trials} "
          f"trials of 1 epoch on {args.rows} rows in {time.perf_counter() - started:.0f} s")
    if isolate:
        fit = sum(r["fit_seconds"] for r in records)
        print(f"per-trial overhead: {(ended[-1] - started - fit) / len(records):.2f} s ({ended[-1] - started:.1f} s "
              f"to the end of the last trial, {fit:.1f} s in fit; {len({r['worker_pid'] for r in records})} workers)")
    print("| after trial | search process RSS (MiB) | its peak so far (MiB) | largest trial process peak (MiB) |")
    print("|---|---|---|---|")
    for number in sorted({1, args.trials // 2, args.trials} & set(samples)):
        print("| {} | {:.0f} | {:.0f} | {:.0f} |".format(number, *samples[number]))


def soak(args):
    """The soak of the module docstring; returns the chief's exit code."""
    rng = random.Random(args.seeds[0])
    shutil.rmtree(args.work, ignore_errors=True)
    args.work.mkdir(parents=True)
    out = args.work / "search"
    command = [*TUNE, "--data", args.data, "--out", out, "--max-trials", args.trials, "--epochs", "1", "--model",
               "model2", "--depth", "1", "--width", "0.5", "--tuner", "random"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "MMDIGITS_WORKER_LEASE_S": str(args.lease),
           "KERASTUNER_ORACLE_IP": "127.0.0.1", "KERASTUNER_ORACLE_PORT": str(port)}

    def start(name):
        with open(args.work / f"{name}.log", "a") as log:
            return subprocess.Popen(list(map(str, command)), stdout=log, stderr=subprocess.STDOUT,
                                    env={**env, "KERASTUNER_TUNER_ID": name})

    started = time.monotonic()
    chief, workers = start("chief"), {name: start(name) for name in ("w1", "w2")}
    rss, kills, last_kill_at = [], [], 0
    while chief.poll() is None:
        try:
            rss.append((time.monotonic() - started, psutil.Process(chief.pid).memory_info().rss / 2**20))
        except psutil.NoSuchProcess:
            break
        done = len(list(out.glob("keras_tuner/trial_*/mmdigits_trial.json")))
        if done - last_kill_at >= args.kill_every and done < args.trials:
            name = rng.choice(sorted(workers))
            if workers[name].poll() is None:
                for process in psutil.Process(workers[name].pid).children(recursive=True) + [workers[name]]:
                    process.kill()
                workers.pop(name).wait()
                kills.append({"worker": name, "at_s": round(time.monotonic() - started, 1), "finished": done})
                time.sleep(2.0)
                replacement = f"w{len(kills) + 2}"
                workers[replacement] = start(replacement)
            last_kill_at = done
        time.sleep(1.0)
    wall = time.monotonic() - started
    for process in workers.values():
        process.wait(timeout=120)
    report_soak(args, out, chief.returncode, rss, kills, wall)
    return chief.returncode


def report_soak(args, out, code, rss, kills, wall):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    board = pd.read_csv(out / "leaderboard.csv")
    run_times = json.loads((out / "keras_tuner" / "oracle.json").read_text())["run_times"]
    chief_log = (args.work / "chief.log").read_text()
    completed = int((board["status"] == "COMPLETED").sum())
    searching = [m for t, m in rss if t >= 20]  # after start-up
    print(f"\n{args.trials}-trial random search, chief + 2 workers on loopback, {args.data.name}, 1 epoch per trial, "
          f"lease {args.lease:g} s, a random worker killed every {args.kill_every} finished trials:\n")
    print(f"| what | value |\n|---|---|\n| chief exit code | {code} |\n"
          f"| trials completed / failed | {completed} / {len(board) - completed} |\n"
          f"| workers killed (and restarted) | {len(kills)} |\n"
          f"| trials run again (run count - 1, summed) | {sum(max(0, n - 1) for n in run_times.values())} |\n"
          f"| releases of lost workers (chief log) | {chief_log.count(' lost (')} |\n"
          f"| late results dropped (chief log) | {chief_log.count('dropped a late result')} |\n"
          f"| best/ exported | {(out / 'best' / 'model.keras').is_file()} |\n| wall time | {wall:.0f} s |\n"
          f"| chief RSS from 20 s: min / max | {min(searching, default=0):.0f} / {max(searching, default=0):.0f} MiB |")
    (args.work / "soak_chief_rss.json").write_text(json.dumps({"rss_mib": rss, "kills": kills}))
    figure, axis = plt.subplots(figsize=(7, 3))
    axis.plot([t for t, _ in rss], [m for _, m in rss], label="chief RSS")
    for kill in kills:
        axis.axvline(kill["at_s"], color="tab:red", alpha=0.3)
    axis.set(xlabel="seconds", ylabel="MiB", title="Chief RSS during the soak (red: a worker killed)")
    figure.tight_layout()
    figure.savefig(args.work / "soak_chief_rss.png", dpi=100)


def main():
    parser = harness.arguments(__doc__, seeds=(0,))
    parser.add_argument("--mode", choices=["memory", "soak"], required=True)
    parser.add_argument("--data", type=Path, default=harness.SHARED / "kaggle_sample")
    parser.add_argument("--trials", type=int, help="default: 20 (memory), 40 (soak)")
    parser.add_argument("--rows", type=int, default=600, help="memory: training rows of each trial")
    parser.add_argument("--kill-every", type=int, default=3, help="soak: finished trials between two kills")
    parser.add_argument("--lease", type=float, default=10.0, help="soak: MMDIGITS_WORKER_LEASE_S (seconds)")
    args = parser.parse_args()
    args.trials = args.trials or (20 if args.mode == "memory" else 40)
    if args.mode == "soak":
        return 0 if soak(args) == 0 else 1
    data = first_rows(args)
    for isolate in (True, False):
        memory(args, data, isolate=isolate)
    return 0


if __name__ == "__main__":
    sys.exit(main())
