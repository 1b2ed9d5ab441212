"""Where a training step's time goes: input pipeline (with the recipe's augmentation), forward
pass, backward pass and optimizer, for the default model and recipe.

On one speaker-disjoint FSDD rotation (the robustness benchmark's ``rot-<speaker>`` data set):

- pipeline: one epoch of `training_dataset` (TensorFlow only: `tf.data`) iterated alone (shuffle, batch, augmentation);
- the same batches, already materialized, through the compiled model: ``predict_on_batch``
  (forward) and ``train_on_batch`` (forward + backward + optimizer update), with Keras's own
  `BatchNormalization` and with TensorFlow's fused kernel (`fused_batch_normalization`, what
  `fit_model` trains with);
- `fit` for one epoch as `train` runs it (fused; pipeline and steps overlapped by prefetching).

Each timing is the median of 3 epochs after one warm-up epoch. ``--profile`` also traces 20
``train_on_batch`` steps of each model with ``tf.profiler`` and prints the ops that took the
most time (summed over TensorFlow's compute threads).

    .venv/bin/python benchmarks/bench_step.py --work /tmp/robust [--speaker nicolas] [--model hybrid_cnn] [--profile]
"""

import argparse
import collections
import os
import sys
import tempfile
from pathlib import Path

from bench_pipeline import median_seconds


def op_seconds(steps):
    """Seconds per TensorFlow op type over `steps()` traced with tf.profiler, summed over the
    compute threads (the host's ``tf_Compute`` lines of the trace)."""
    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        steps()
        tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        space.ParseFromString(next(Path(logdir).rglob("*.xplane.pb")).read_bytes())
    totals = collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            if line.name.startswith("tf_Compute"):
                for event in line.events:
                    name = plane.event_metadata[event.metadata_id].name.split(":")[-1]
                    if name != "Process":  # the thread pool's span around each op, not an op
                        totals[name] += event.duration_ps / 1e12
    return totals


def main():
    shared = Path(os.environ.get("MMDIGITS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="bench_robust.py's folder (data sets reused)")
    parser.add_argument("--speaker", default="nicolas")
    parser.add_argument("--model", default="hybrid_cnn")
    parser.add_argument("--recipe", default="default")
    parser.add_argument("--profile", action="store_true", help="also print the ops that take the most time")
    args = parser.parse_args()

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bench_robust import build

    from mmdigits_keras.training import classification_spec, compile_model, get_recipe, prepare_data
    from mmdigits_keras.training.fused import fused_batch_normalization
    from mmdigits_keras.training.tfdata import training_dataset

    data = build(f"rot-{args.speaker}", args.work, shared, audio=shared / "fsdd" / "recordings",
                 test_speakers=[args.speaker])
    recipe = get_recipe(args.recipe)
    prepared = prepare_data(data, synthetic_share=recipe.synthetic_share)
    def compiled():
        model, _ = classification_spec(args.model, recipe, None).build(prepared)
        return compile_model(model, recipe, learning_rate=1e-3)

    model, fused = compiled(), compiled()  # one traced train step each
    pipeline = training_dataset(prepared.train, recipe, seed=0)
    batches = list(pipeline)
    rows = len(prepared.train)

    def iterate():
        for _ in pipeline:
            pass

    def forward():
        for features, _ in batches:
            model.predict_on_batch(features)

    def train_steps(net):
        for features, targets in batches:
            net.train_on_batch(features, targets)

    # One context around the fused timings: leaving it drops the traced step, so a context per
    # epoch would time a retrace every epoch (as `fit_model`, which wraps its one `fit`, does not).
    timings = {"input pipeline (augmentation included), alone": median_seconds(iterate),
               "forward pass (predict_on_batch)": median_seconds(forward),
               "forward + backward + update (train_on_batch), Keras's BatchNormalization":
                   median_seconds(lambda: train_steps(model))}
    with fused_batch_normalization(fused):
        timings["forward + backward + update (train_on_batch), fused batch normalization"] = median_seconds(
            lambda: train_steps(fused))
        timings["fit, one epoch (as train runs it, fused)"] = median_seconds(
            lambda: fused.fit(pipeline, epochs=1, verbose=0))
    print(f"\n{args.model} + {args.recipe} recipe, {rows} training rows (batch {recipe.batch_size}, "
          f"{len(batches)} steps), per epoch, median of 3:\n")
    print("| stage | seconds per epoch | samples/s |")
    print("|---|---|---|")
    for name, seconds in timings.items():
        print(f"| {name} | {seconds:.2f} | {rows / seconds:.0f} |")
    if args.profile:
        twenty = batches[:20]
        for title, net, context in (("Keras's BatchNormalization", model, None), ("fused", fused, fused_batch_normalization)):
            def steps(net=net, context=context):
                if context is None:
                    for features, targets in twenty:
                        net.train_on_batch(features, targets)
                    return
                with context(net):
                    for features, targets in twenty:
                        net.train_on_batch(features, targets)

            totals = op_seconds(steps)
            print(f"\nops over 20 training steps, {title} (seconds, both compute threads; all ops "
                  f"{sum(totals.values()):.2f} s):\n")
            print("| op | seconds |")
            print("|---|---|")
            for name, seconds in totals.most_common(12):
                print(f"| {name} | {seconds:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
