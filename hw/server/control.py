"""The robot server's control thread: the only thread that touches the robot.

It holds the arm between jobs (or follows a `RemoteRobot`'s joint stream: `_Follow`), runs
skill jobs through the injected runner at the robot's rate, and does the per-tick
bookkeeping (`_tick`): the e-stop latch, late ticks, the mailbox, the snapshot. Whatever a
job or the holding loop raises is caught here: the arm holds, and three failures of the
holding loop in a row mark the server degraded (`_serve_faulted`) until a ``reset``. The
stops it checks every tick are in `hw.server.supervision`; see `hw.server.server` for the
whole picture.
"""

from __future__ import annotations

import queue
import time

import numpy as np

from skillstack.hw.robot import RobotError
from skillstack.hw.server.core import STILL, Job, _state_fields, log, one_line
from skillstack.hw.server.jobs import JobHooks
from skillstack.hw.server.mailbox import Mailbox
from skillstack.hw.server.supervision import Supervision
from skillstack.robot.loop import ControlLoop
from skillstack.robot.types import JointCommand, RobotState

IDLE_CHUNK = 0.05  # s of holding between checks for new jobs
FAULT_AFTER = 3  # consecutive failures of the holding loop that mark the server degraded
ERROR_GAP = 0.01  # s between two attempts of the holding loop after a failure
FAULT_RETRY = 0.5  # s between read attempts while faulted
FAULT_POLL = 0.01  # s between mailbox checks while faulted


class _Follow:
    """Idle policy: hold the commanded joints, or follow fresh remote joint commands."""

    def __init__(self, server: ControlThread, seconds: float):
        self.server, self.seconds = server, seconds
        self._q: np.ndarray | None = None  # set by reset()
        self._t0 = 0.0
        self._following = False
        self.done = False

    def reset(self, state: RobotState) -> None:
        self._q = _commanded(state)
        self._t0 = state.time
        self._following = False
        self.done = False

    def step(self, state: RobotState) -> JointCommand:
        self.done = state.time - self._t0 >= self.seconds or self.server._jobs.qsize() > 0
        remote = self.server._remote_command
        if remote is not None and self.server._stream_stopped(state, remote):
            remote = None
        if remote is not None:
            self._following = True
            return remote
        if self._following or self.server.robot.braking:
            # The stream ended (stop, an error), or a stop's brake runs: hold where the stop
            # leaves the arm (the brake re-arms the filter where the arm comes to rest).
            self._following = False
            self._q = self.server.robot.safety.q_prev
        assert self._q is not None  # the loop calls reset() before step()
        return JointCommand("joint_position", self._q, state.time)


def _commanded(state: RobotState) -> np.ndarray:
    return (state.q if state.q_desired is None else state.q_desired).copy()


class ControlThread(Mailbox, Supervision):
    """The control thread (a part of `RobotServer`)."""

    def _control_thread(self) -> None:
        while self._running.is_set():
            try:
                self._control_loop()
            except BaseException as exc:  # the thread holding the arm never dies
                self._loop_failed(exc, FAULT_AFTER)

    def _control_loop(self) -> None:
        loop = ControlLoop(self.robot, realtime=self.config.realtime, on_tick=self._tick)
        failures = 0
        while self._running.is_set():
            if self._fault is not None:
                self._serve_faulted()
                continue
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                job = None
            try:
                if job is None:
                    self._activity = "holding the arm"
                    loop.run(_Follow(self, IDLE_CHUNK), max_seconds=IDLE_CHUNK + 0.01)
                    failures = 0
                else:
                    self._run_job(job)
            except Exception as exc:  # the loop that holds the arm must never die
                failures += 1
                self._loop_failed(exc, failures)

    def _loop_failed(self, exc: BaseException, failures: int) -> None:
        """The holding loop raised: hold the arm; a transient failure (a driver recovering
        from a reflex) is retried, `FAULT_AFTER` in a row mark the server degraded."""
        try:
            if failures == 1:
                log.error("control loop failed: %s", one_line(exc), exc_info=exc)
                self._event("error", f"control loop: {one_line(exc)}")
            self._remote_command, self._armed = None, False
            self._hold()
            if failures < FAULT_AFTER:
                time.sleep(ERROR_GAP)
                return
            try:
                state = self.robot.read()
            except Exception as read_exc:
                self._set_fault(
                    f"robot connection lost: {one_line(read_exc)}; the arm holds: restart the "
                    "server once the arm is reachable, or send reset"
                )
            else:
                what = "" if np.isfinite(state.q).all() else " (the robot's state is not finite)"
                self._set_fault(
                    f"control loop failed{what}: {one_line(exc)}; the arm holds: send reset "
                    "once the cause is fixed"
                )
        except BaseException:  # nor while reporting
            self._fault = self._fault or f"control loop failed: {one_line(exc)}"
        time.sleep(ERROR_GAP)

    def _hold(self) -> None:
        """Hold the arm where it was commanded, if the robot still answers."""
        try:
            self.robot.stop()
        except Exception as exc:
            log.warning("could not hold the arm: %s", one_line(exc))

    def _set_fault(self, message: str) -> None:
        self._fault = message
        self._activity = "faulted"
        self._event("fault", message)
        self._fail_queued_jobs()

    def _fail_queued_jobs(self) -> None:
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            job.status, job.code, job.error = "failed", "robot_fault", self._fault
            self._event("skill", f"job {job.id}: {job.skill} refused: {self._fault}")

    def _serve_faulted(self) -> None:
        """While faulted: answer the mailbox (reset among it), refuse jobs, retry reads."""
        answered = False
        next_read = time.monotonic() + FAULT_RETRY
        while self._running.is_set() and self._fault is not None:
            self._fail_queued_jobs()
            self._serve_mailbox()
            if time.monotonic() >= next_read:
                next_read = time.monotonic() + FAULT_RETRY
                try:
                    state = self.robot.read()
                except Exception:
                    answered = False
                else:
                    self._snapshot = {**self._snapshot, **_state_fields(state)}
                    if not answered:
                        answered = True
                        self._event(
                            "fault", "the robot answers reads again; restart the server to resume"
                        )
            time.sleep(FAULT_POLL)

    def _run_job(self, job: Job) -> None:
        self._in_job = job
        try:
            self._run_job_inner(job)
        finally:
            self._in_job = None

    def _run_job_inner(self, job: Job) -> None:
        job.status = "running"
        self._activity = f"running job {job.id} ({job.skill})"
        self._progress = None  # reported by the runner once the skill has planned
        self._stop_request = self._late_reason = None
        self._deadlines.late_run = 0
        self._remote_command = None
        self._event("skill", f"job {job.id}: {job.skill} {job.params} started")
        hooks = JobHooks(self.config.realtime, self._tick, self._abort_reason, self._set_progress)
        try:
            run_skill = self._run_skill
            assert run_skill is not None  # `_op_execute` queues no job without a runner
            result = run_skill(self.robot, job.skill, job.params, hooks)
            if not isinstance(result, dict):
                raise TypeError(f"the skill runner returned {type(result).__name__}, not a dict")
        except Exception as exc:  # a bug or a driver error must not kill the control thread
            code, error = self._classify("execute", exc, job.skill)
            self._hold()
            if job.status == "running":  # not already failed by the stall watchdog
                job.code, job.error, job.status = code, error, "failed"
                self._event("skill", f"job {job.id}: {job.skill} failed [{job.code}]: {job.error}")
            return
        if job.status != "running":
            return  # failed by the stall watchdog; the client has been told
        job.result = result
        job.status = "done"
        outcome = (
            "success"
            if result.get("success")
            else f"{result.get('failure')}: {result.get('message', '')}"
        )
        self._event("skill", f"job {job.id}: {job.skill} ended: {outcome}")

    def _tick(self, state: RobotState, sent: JointCommand) -> None:
        """Per-tick bookkeeping in the control thread: stops, mail, lateness, snapshot."""
        self.ticks += 1
        if not np.isfinite(state.q).all() or not np.isfinite(state.dq).all():
            raise RobotError("the robot's joint state is not finite (a diverged simulation?)")
        if self._estop_request is not None:
            reason, self._estop_request = self._estop_request, None
            self.robot.estop(reason)
            # Ticks from the request's arrival to the latch (from then on: holds only).
            self.estop_latency_ticks = round(
                (state.time - self._estop_requested_at) / self.robot.capabilities.control_dt
            )
        now = time.perf_counter()
        deadlines = self._deadlines
        if deadlines.end(now):
            run = deadlines.late_run
            if run >= self.config.late_tick_limit and self._late_reason is None:
                self._late_reason = f"{run} late control ticks in a row"
                self._event("late", self._late_reason)
        self._last_tick_wall = now
        if not self._mailbox.empty():
            self._serve_mailbox()
        if self._watch_still is not None and float(np.max(np.abs(state.dq))) < STILL:
            self.silence_still_delay = state.time - self._watch_still
            self._watch_still = None
        self._snapshot = {
            **_state_fields(state),
            "command": sent.values,
            "estopped": self.robot.safety.estopped,
        }

    def _set_progress(self, label: str, fraction: float) -> None:
        self._progress = (str(label), float(fraction))
