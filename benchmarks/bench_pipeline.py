"""Samples per second of the training input pipeline alone and of full training steps, per
recipe and batch size: does the augmenting pipeline keep up with the device?

For each recipe (``plain``, ``default``) at batch 128 and 512, on ``kaggle_sample``'s training
rows as `prepare_data` gives them to `train` (the default recipe's eSpeak NG rows included):

- pipeline, serial: one epoch of `training_dataset` iterated alone on one thread (tf.data's
  ``private_threadpool_size = 1``): what the pipeline did before its map ran in parallel;
- pipeline, parallel: the same, as `train` runs it (``num_parallel_calls=AUTOTUNE``);
- steps: the default model's ``train_on_batch`` over the same batches, already materialized
  (fused batch normalization, as `fit_model` trains): what the device asks of the pipeline;
- fit: one epoch of ``fit`` on the parallel pipeline, as `train` runs it (pipeline and steps
  overlapped by prefetching);
- fit on cached batches: one epoch's augmented batches replayed from memory, so the pipeline
  does no work: the fastest that training can go, with augmentation anywhere. When ``fit`` on
  the pipeline is as fast, augmentation inside the training step could only add to the step.

Each timing is the median of 3 epochs after a warm-up epoch. The plain recipe feeds numpy
arrays to ``fit`` in `train`; here it goes through `training_dataset` too (no augmentation:
shuffle and batch only), for comparison.

    .venv/bin/python benchmarks/bench_pipeline.py [--data ../shared/data/kaggle_sample] [--batch-sizes 128 512]
"""

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path


def median_seconds(run, repeats=3):
    """Median seconds of `repeats` calls of `run`, after a warm-up call (tracing, tf.data's
    autotuning) when `repeats` > 1; `repeats` = 1 is a smoke run: one call, tracing included."""
    if repeats > 1:
        run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def throughput(data, recipe, *, model="hybrid_cnn", steps=True, repeats=3):
    """Samples per second of each stage (module docstring) for one `Recipe` on a loaded data
    set, the median of `repeats` epochs after a warm-up: {stage: samples/s}. Used by this
    script and by `gpu_check.py`."""
    import tensorflow as tf

    from mmdigits_keras.training import classification_spec, compile_model, prepare_data
    from mmdigits_keras.training.fitting import build_training_state
    from mmdigits_keras.training.fused import fused_batch_normalization
    from mmdigits_keras.training.pipeline import training_dataset

    prepared = prepare_data(data, synthetic_share=recipe.synthetic_share)
    samples = len(prepared.train)
    parallel = training_dataset(prepared.train, recipe, seed=0)
    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    serial = parallel.with_options(options)

    def iterate(dataset):
        for _ in dataset:
            pass

    timings = {"pipeline, serial": median_seconds(lambda: iterate(serial), repeats),
               "pipeline, parallel": median_seconds(lambda: iterate(parallel), repeats)}
    if steps:
        net, _ = classification_spec(model, recipe, None).build(prepared)
        compile_model(net, recipe, learning_rate=1e-3)
        build_training_state(net, prepared.train, recipe)
        batches = list(parallel)

        def train_steps():
            with fused_batch_normalization(net):
                for features, targets in batches:
                    net.train_on_batch(features, targets)

        def fit(dataset=parallel):
            with fused_batch_normalization(net):
                net.fit(dataset, epochs=1, shuffle=False, verbose=0)  # tf.data shuffles

        cached = parallel.cache()  # one epoch's augmented batches, replayed: no pipeline work
        iterate(cached)
        timings["steps (materialized batches)"] = median_seconds(train_steps, repeats)
        timings["fit (parallel pipeline)"] = median_seconds(fit, repeats)
        timings["fit (cached batches: no augmentation work)"] = median_seconds(lambda: fit(cached), repeats)
    return {stage: samples / seconds for stage, seconds in timings.items()}


def main():
    shared = Path(os.environ.get("MMDIGITS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=shared / "kaggle_sample", help="a data folder (Kaggle layout)")
    parser.add_argument("--recipes", nargs="+", default=["plain", "default"])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[128, 512])
    parser.add_argument("--model", default="hybrid_cnn")
    parser.add_argument("--no-steps", action="store_true", help="time the pipeline only (no model)")
    args = parser.parse_args()

    import tensorflow as tf

    from mmdigits_keras.data import load_kaggle
    from mmdigits_keras.training import get_recipe

    data = load_kaggle(args.data)
    print(f"{args.data}: {len(data)} labelled rows; {os.cpu_count()} CPU cores; TensorFlow {tf.__version__}")
    rows = []
    for name in args.recipes:
        for batch_size in args.batch_sizes:
            recipe = dataclasses.replace(get_recipe(name), batch_size=batch_size)
            rates = throughput(data, recipe, model=args.model, steps=not args.no_steps)
            rows += [(name, batch_size, stage, rate) for stage, rate in rates.items()]
            print(f"{name} batch {batch_size}: " + ", ".join(f"{stage} {rate:,.0f}/s" for stage, rate in rates.items()),
                  flush=True)
    print(f"\nsamples per second, {args.data.name}'s training rows, median of 3 epochs:\n")
    print("| recipe | batch | stage | samples/s |")
    print("|---|---|---|---|")
    for name, batch_size, stage, rate in rows:
        print(f"| {name} | {batch_size} | {stage} | {rate:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
