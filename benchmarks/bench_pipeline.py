"""Where the augmentation should run: samples per second of training with the augmentation on
the device (inside the training step), on the host (an input pipeline: `tf.data` on TensorFlow,
`HostBatches` elsewhere) and with none, on the backend ``KERAS_BACKEND`` names.

For the default model and recipe on ``kaggle_sample``'s training rows as `prepare_data` gives
them to `train` (the eSpeak NG rows included), each placement is timed as `fit_model` trains (`harness.throughput`):
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
import os
import sys
from pathlib import Path

import harness


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=harness.SHARED / "kaggle_sample", help="a Kaggle-layout folder")
    parser.add_argument("--placements", nargs="+", default=list(harness.PLACEMENTS), choices=harness.PLACEMENTS)
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
    print(f"\nsamples per second, {args.model} + default recipe (batch {recipe.batch_size}), median of "
          f"{args.repeats} epochs:\n\n| backend | device | precision | stage | samples/s |\n|---|---|---|---|---|")
    for precision in args.precisions:
        rates = harness.throughput(prepared, recipe, model=args.model, placements=args.placements,
                                   repeats=args.repeats, precision=precision)
        for stage, rate in rates.items():
            print(f"| {where['backend']} | {where['device']} | {precision} | {stage} | {rate:,.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
