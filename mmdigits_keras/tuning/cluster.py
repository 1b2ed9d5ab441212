"""keras-tuner's chief/worker mode: its set-up (the chief's address, `parse_oracle_address`,
`wait_for_oracle`) and its fault tolerance: workers that die, a chief that restarts.

keras-tuner's chief keeps each worker's running trial until the worker ends it, and exits
only when no worker is left; a worker killed mid-trial (a preempted VM, Ctrl-C on one
machine) therefore kept the chief waiting for ever (measured: still waiting 600 s later).

- **Leases.** Each worker sends a heartbeat while it trains (`Heartbeat`: the public
  ``get_trial`` request every `HEARTBEAT_SECONDS`); the chief (`WorkerLeases`, an oracle mixin)
  notes when it last heard from each worker, and a thread (`LeaseKeeper`) releases a worker
  silent for `LEASE_SECONDS`: its trial ends as ``INVALID`` (keras-tuner's status for a trial
  to retry), so the oracle runs it again, up to `MAX_RETRIES_PER_TRIAL` times (then it is
  ``FAILED``), and the worker no longer counts as one the chief waits for.
- **Standing by.** When every trial has been handed out but others still run, a worker that
  asks for one is told to wait (keras-tuner's ``IDLE``; it asks again every
  `IDLE_POLL_SECONDS`) instead of to stop, so a trial released from a lost worker still finds a
  worker to run it. (keras-tuner would stop the worker and, once no worker was left, end the
  search with that trial still queued: measured in the soak benchmark.)
- **Late results.** A result for a trial that the chief no longer counts as running (its
  worker was released, or the chief restarted and queued it to run again) is dropped with a
  message, so a trial is never counted twice.
- **Chief restart.** keras-tuner reloads the oracle from the search folder (finished trials
  kept, running ones queued to run again; `WorkerLeases.reload` takes the trial that had
  finished last out of that queue, which keras-tuner's saved state still lists as running);
  workers' requests wait for the chief to answer again (gRPC ``wait_for_ready``), and a request
  the chief's death cut off mid-call is sent again (`Reconnecting`), so running workers carry
  on once it is back. A chief restarted after the last trial exports without
  serving (`mmdigits_keras.tuning.tuner.SearchTuner.search`).
"""

from __future__ import annotations

import logging
import os
import threading
import time

import grpc
import keras_tuner

from mmdigits_keras.tuning.internals import TrialStatus, forget_finished_retries, ongoing_trials, stand_by, waited_for

logger = logging.getLogger("mmdigits_keras")

# A worker's heartbeat interval, and how long the chief waits without one before it gives the
# worker's trial to another. Both in seconds; the lease can be set in the environment
# (MMDIGITS_WORKER_LEASE_S), e.g. shorter on one machine, longer on a flaky network.
HEARTBEAT_SECONDS = 2.0
LEASE_SECONDS = float(os.environ.get("MMDIGITS_WORKER_LEASE_S", 30))
MAX_RETRIES_PER_TRIAL = 3
IDLE_POLL_SECONDS = 1.0


class WorkerLeases:
    """Oracle mixin: tracks when the chief last heard from each worker (`create_trial` and the
    heartbeat's `get_trial`), releases silent ones (`release_lost_workers`) and drops results
    of trials no longer running (`update_trial`, `end_trial`). Overrides public `Oracle`
    methods under keras-tuner's own `synchronized` lock; the oracle state it reads and changes
    is keras-tuner's undocumented one, through `mmdigits_keras.tuning.internals`."""

    def __init__(self, *args, **kwargs):
        # tuner_id -> monotonic time the chief last heard from it; set before keras-tuner's own
        # constructor runs, in case anything there reaches a method of this mixin.
        self._last_heard = {}
        super().__init__(*args, **kwargs)

    def _heard(self):
        return self._last_heard

    def _heard_from(self, tuner_id):
        self._heard()[tuner_id] = time.monotonic()

    def _running(self, trial_id):
        return any(trial.trial_id == trial_id for trial in ongoing_trials(self).values())

    @keras_tuner.synchronized
    def create_trial(self, tuner_id):
        self._heard_from(tuner_id)
        trial = super().create_trial(tuner_id)
        if trial.status == TrialStatus.STOPPED and ongoing_trials(self):
            return stand_by(self, tuner_id)  # a running trial may yet be released to this worker
        return trial

    def reload(self):
        """keras-tuner's reload, without queuing a finished trial to run again."""
        super().reload()
        finished = forget_finished_retries(self)
        if finished:
            logger.info("trial(s) %s had finished before the restart: not run again", ", ".join(finished))

    @keras_tuner.synchronized
    def get_trial(self, trial_id):
        for tuner_id, trial in ongoing_trials(self).items():
            if trial.trial_id == trial_id:
                self._heard_from(tuner_id)
        return super().get_trial(trial_id)

    @keras_tuner.synchronized
    def update_trial(self, trial_id, metrics, step=0):
        if not self._running(trial_id):  # a late result (see the module docstring): keep it out
            return self.trials[trial_id]
        return super().update_trial(trial_id, metrics, step=step)

    @keras_tuner.synchronized
    def end_trial(self, trial):
        if not self._running(trial.trial_id):
            logger.warning("dropped a late result of trial %s: the chief gave it to another run (its worker "
                           "was lost, or the chief restarted)", trial.trial_id)
            return
        super().end_trial(trial)

    @keras_tuner.synchronized
    def release_lost_workers(self, lease_seconds):
        """Ends the trials of workers not heard from for `lease_seconds` as ``INVALID`` (to be
        run again) and stops waiting for those workers.

        Returns:
            The ids of the workers released.
        """
        now, heard = time.monotonic(), self._heard()
        lost = [tuner_id for tuner_id in set(waited_for(self)) | set(ongoing_trials(self))
                if now - heard.setdefault(tuner_id, now) > lease_seconds]
        for tuner_id in lost:
            trial = ongoing_trials(self).get(tuner_id)
            if trial is not None:
                trial.status = TrialStatus.INVALID
                trial.message = f"worker {tuner_id} lost: no heartbeat for {lease_seconds:g} s"
                super().end_trial(trial)  # retried or failed by keras-tuner's rules; no longer ongoing
                again = trial.status != TrialStatus.FAILED
                logger.warning("worker %s lost (no heartbeat for %g s) during trial %s; %s", tuner_id, lease_seconds,
                               trial.trial_id, "it runs again" if again else "marked failed (no retries left)")
            else:
                logger.warning("worker %s lost (no request for %g s)", tuner_id, lease_seconds)
            waited_for(self).discard(tuner_id)
            heard.pop(tuner_id, None)
        return lost


class _Periodic:
    """A daemon thread calling `tick` every `HEARTBEAT_SECONDS` for the ``with`` block, until
    the block ends or `tick` returns False."""

    join = True

    def __init__(self, name):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self):
        while not self._stop.wait(HEARTBEAT_SECONDS):
            if self.tick() is False:
                return

    def tick(self):
        raise NotImplementedError

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self.join:
            self._thread.join()


class LeaseKeeper(_Periodic):
    """On the chief: calls `WorkerLeases.release_lost_workers` every heartbeat interval while
    the search serves."""

    def __init__(self, oracle, *, lease_seconds=None):
        super().__init__("mmdigits-lease-keeper")
        self.oracle = oracle
        self.lease_seconds = LEASE_SECONDS if lease_seconds is None else float(lease_seconds)

    def tick(self):
        try:
            self.oracle.release_lost_workers(self.lease_seconds)
        except RuntimeError as error:  # keras-tuner's limit of consecutive failed trials
            logger.error("search stopping: %s", error)
            return False
        return True


class Heartbeat(_Periodic):
    """On a worker: asks the chief for `trial_id` every `HEARTBEAT_SECONDS` while the trial
    trains (the chief's lease on this worker)."""

    join = False  # a beat may be waiting for a restarting chief

    def __init__(self, oracle, trial_id):
        super().__init__("mmdigits-heartbeat")
        self.oracle, self.trial_id = oracle, trial_id

    def tick(self):
        try:
            self.oracle.get_trial(self.trial_id)
        except Exception:  # the chief is away (restarting): the next beat tries again
            pass
        return True


class Reconnecting:
    """On a worker: keras-tuner's oracle client, whose requests are sent again when the chief
    died while answering one (gRPC ``UNAVAILABLE``; keras-tuner's own ``wait_for_ready`` covers
    only a chief that is down when a request starts). Sending one again is safe: a trial the
    restarted chief no longer counts as running drops a repeated result (`WorkerLeases`)."""

    def __init__(self, client):
        object.__setattr__(self, "_client", client)

    def __getattr__(self, name):
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def call(*args, **kwargs):
            while True:
                try:
                    return attribute(*args, **kwargs)
                except grpc.RpcError as error:
                    if error.code() != grpc.StatusCode.UNAVAILABLE:
                        raise
                    logger.warning("the chief went away during a %s request; asking again once it is back", name)
                    time.sleep(HEARTBEAT_SECONDS)

        return call

    def __setattr__(self, name, value):
        setattr(self._client, name, value)


def parse_oracle_address(address):
    """``"HOST:PORT"`` -> (host, port); raises ValueError naming `oracle` otherwise."""
    host, _, port = str(address).rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"`oracle` must be HOST:PORT, e.g. 127.0.0.1:8000. Received: oracle={address!r}")
    return host, int(port)


def wait_for_oracle(host, port, *, timeout):
    """Waits up to `timeout` seconds for the chief's oracle to answer; ValueError if it does not."""
    channel = grpc.insecure_channel(f"{host}:{port}")
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
    except grpc.FutureTimeoutError:
        raise ValueError(f"the oracle at {host}:{port} did not answer within {timeout:g} s; "
                         f"start the chief first, its oracle at {host}:{port}") from None
    finally:
        channel.close()
