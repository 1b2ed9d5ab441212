"""Where the augmentation should run: samples per second of training with the augmentation on
the device (inside the training step), on the host (an input pipeline: `tf.data` on TensorFlow,
`HostBatches` elsewhere) and with none, on the backend ``KERAS_BACKEND`` names.

For the default model and recipe on ``kaggle_sample``'s training rows as `prepare_data` gives
them to `train` (the eSpeak NG rows included), each placement is timed as `fit_model` trains:
one `fit` epoch after a warm-up epoch (tracing, compiling, tf.data's autotuning), the median of
``--repeats``; and the host pipeline alone (its batches iterated without a model). ``none`` is
the same recipe without augmentation: the fastest training can go. With ``--precisions
float32 mixed_bfloat16`` each is also timed under Keras's mixed-precision policy.

The placement whose ``fit`` is fastest, where the augmentation costs little over ``none``, is
the default (`mmdigits_keras.utils.defaults.DEFAULT_AUGMENT_ON`).

    KERAS_BACKEND=jax .venv/bin/python benchmarks/bench_pipeline.py [--data ../shared/data/kaggle_sample]
        [--placements device host none] [--precisions float32] [--repeats 3]
"""

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

PLACEMENTS = ("device", "host", "none")


def median_seconds(run, repeats=3):
    """Median seconds of `repeats` calls of `run`, after a warm-up call (tracing, compiling,
    tf.data's autotuning) when `repeats` > 1; `repeats` = 1 is a smoke run: one call, its
    compiling included."""
    if repeats > 1:
        run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def throughput(prepared, recipe, *, model="hybrid_cnn", placements=PLACEMENTS, repeats=3, precision="float32"):
    """Training samples per second of each placement (module docstring) on `PreparedData`, and
    of the host pipeline alone: {stage: samples/s}. Used by this script and `gpu_check.py`."""
    import keras

    from mmdigits_keras.training import classification_spec, compile_model
    from mmdigits_keras.training.fitting import build_training_state
    from mmdigits_keras.training.fused import fused_batch_normalization
    from mmdigits_keras.training.placement import training_inputs

    samples = len(prepared.train)
    rates = {}
    keras.mixed_precision.set_global_policy(precision)
    try:
        for placement in placements:
            plan = recipe if placement != "none" else dataclasses.replace(recipe, augment=False)
            net, _ = classification_spec(model, plan, None).build(prepared)
            compile_model(net, plan, learning_rate=1e-3)
            trainer, data = training_inputs(net, prepared.train, plan, seed=0,
                                            augment_on=None if placement == "none" else placement)
            build_training_state(trainer, prepared.train, plan)

            def fit(trainer=trainer, data=data):
                trainer.fit(**data, epochs=1, verbose=0)

            # One context around every epoch, as `fit_model` wraps its one `fit`: leaving it drops
            # the traced step, and a context per epoch would time a retrace every epoch.
            with fused_batch_normalization(trainer):
                rates[f"fit, augmentation {'on the ' + placement if placement != 'none' else 'none'}"] = (
                    samples / median_seconds(fit, repeats))
            if placement == "host":
                def iterate(batches=data["x"]):  # a tf.data.Dataset, or a PyDataset (HostBatches)
                    pyd = isinstance(batches, keras.utils.PyDataset)
                    for _ in (batches[index] for index in range(len(batches))) if pyd else batches:
                        pass

                rates["host pipeline alone"] = samples / median_seconds(iterate, repeats)
            keras.backend.clear_session()
    finally:
        keras.mixed_precision.set_global_policy("float32")
    return rates


def main():
    shared = Path(os.environ.get("MMDIGITS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=shared / "kaggle_sample", help="a data folder (Kaggle layout)")
    parser.add_argument("--placements", nargs="+", default=list(PLACEMENTS), choices=PLACEMENTS)
    parser.add_argument("--precisions", nargs="+", default=["float32"], choices=["float32", "mixed_bfloat16"])
    parser.add_argument("--model", default="hybrid_cnn")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import keras

    from mmdigits_keras.data import load_kaggle
    from mmdigits_keras.training import get_recipe, prepare_data
    from mmdigits_keras.utils.backends import describe

    recipe = get_recipe("default")
    prepared = prepare_data(load_kaggle(args.data), synthetic_share=recipe.synthetic_share)
    where = describe()
    print(f"{args.data}: {len(prepared.train)} training rows; {os.cpu_count()} CPU cores; Keras {keras.__version__}, "
          f"{where['backend']} {where['version']} on {where['device']}")
    rows = []
    for precision in args.precisions:
        rates = throughput(prepared, recipe, model=args.model, placements=args.placements, repeats=args.repeats,
                           precision=precision)
        rows += [(precision, stage, rate) for stage, rate in rates.items()]
    print(f"\nsamples per second, {args.model} + default recipe (batch {recipe.batch_size}), median of "
          f"{args.repeats} epochs:\n")
    print("| backend | device | precision | stage | samples/s |")
    print("|---|---|---|---|---|")
    for precision, stage, rate in rows:
        print(f"| {where['backend']} | {where['device']} | {precision} | {stage} | {rate:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
