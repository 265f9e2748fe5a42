"""The stops and watchdogs of the robot server: client silence, stalled streams and loops.

These decide when the arm must stop without anyone asking: the controlling client fell
silent (`_silence_reason`, with its backstop for a server starved of CPU), a followed joint
stream stalled mid-motion (`_stream_stopped`), a running skill must end
(`_abort_reason`), or a skill's control loop stopped ticking (`_stalled`). A silence or a
stalled stream is a *protective stop* (`_protective_stop`): the arm is brought to rest
where it is, without latching the e-stop. All but `_stalled` run in the control thread;
`_stalled` runs in the command thread, so the client hears of a blocked driver at once.
See `hw.server.server` for the whole picture.
"""

from __future__ import annotations

import time

import numpy as np

from skillstack.hw.server.core import COMMAND_POLL_MS, STILL, Job, ServerCore
from skillstack.robot.types import JointCommand, RobotState

SILENCE_BACKSTOP = 3.0  # heartbeat timeouts of silence that stop even a starved server


class Supervision(ServerCore):
    """The server's stops and watchdogs (a part of `RobotServer`)."""

    def _stalled(self, job: Job) -> None:
        """Fail a running job whose control loop stopped ticking mid-motion (a driver call
        that blocks: the connection to the arm is gone). Called by the command thread, so the
        client hears of it without waiting for the driver to give up; the arm's own
        controller brakes when its command stream stops."""
        if job.status != "running" or self._progress is None or not self._last_tick_wall:
            return  # not moving yet: planning does not tick
        since = time.perf_counter() - self._last_tick_wall
        if since <= self._stall_limit:
            return
        job.status, job.code = "failed", "robot_fault"
        job.error = (
            f"control loop stalled during {job.skill}: no control tick for {since * 1e3:.0f} ms "
            "(the driver is blocked: is the connection to the arm lost?)"
        )
        self._event("skill", f"job {job.id}: {job.skill} failed [robot_fault]: {job.error}")

    def _protective_stop(self, reason: str) -> None:
        """Bring the arm to rest where it is now, without latching the e-stop (control thread).

        For one tick the safety filter holds the measured joints (as an e-stop does: holding
        the last command would carry the arm on by its tracking lag), the drives brake
        (`Robot.brake`), and the filter unlatches; the holding loop keeps the arm where it
        came to rest until the controlling client says hello.
        """
        self._protective, self._armed, self._remote_command = reason, False, None
        safety = self.robot.safety
        if safety.estopped:  # an operator's e-stop already holds the arm
            return
        state = self.robot.read()
        safety.estop(f"protective stop: {reason}", state.time, hold=state.q)
        try:
            self.robot.command(JointCommand("joint_position", safety.q_prev, state.time))
            self.robot.brake()
        finally:
            safety.reset_estop()

    def _stream_stopped(self, state: RobotState, remote: JointCommand) -> bool:
        """Whether a followed joint stream must end now: its client fell silent, or the
        stream stalled while the arm moves (control thread). Either is a protective stop."""
        reason = self._silence_reason()
        age = state.time - remote.stamp
        if reason is None and age > self.config.heartbeat_timeout:
            if float(np.max(np.abs(state.dq))) < STILL:  # at its target: the stream just ended
                self._remote_command = None
                return True
            reason = f"joint stream stalled for {age * 1e3:.0f} ms while the arm moved"
            self._event("stall", reason + ": protective stop (at rest)")
        if reason is None:
            return False
        self._remote_command = None
        self._protective_stop(reason)
        return True

    def _abort_reason(self) -> str | None:
        """Why the running skill must stop now (checked every tick), or None."""
        if self._stop_request:
            return self._stop_request
        if self._late_reason:
            return self._late_reason
        reason = self._silence_reason()
        if reason is not None:
            self._stop_request = reason
            # A protective stop: the arm is brought to rest from this tick, cleared when the
            # controlling client says hello again.
            self._protective_stop(reason)
        return reason

    def _silence_reason(self) -> str | None:
        """Why the controlling client counts as silent now (reported once), or None.

        Silent: no heartbeat from it for ``heartbeat_timeout``, and the command thread has
        looked at its socket since that deadline, give or take one of its polls (so a
        heartbeat that waits, unread, in a
        server starved of CPU is not the client's silence), or silence past the backstop.
        """
        control = self._sessions.control
        if control is None or self._protective is not None:
            return None
        now = time.monotonic()
        timeout = self.config.heartbeat_timeout
        silent = now - self._last_heartbeat
        if silent <= timeout:
            return None
        looked = self._polled_at - self._last_heartbeat > timeout - COMMAND_POLL_MS / 1e3
        if not looked and silent <= SILENCE_BACKSTOP * timeout:
            return None
        # How late after the timeout the stop came (the benchmark reports it).
        self.silence_stop_delay = silent - timeout
        self.silence_stopped_at = now
        # Robot time at which the timeout expired: the benchmark times the arm's rest from it.
        self._watch_still = float(self._snapshot.get("time", 0.0)) - self.silence_stop_delay
        reason = f"controlling client ({control.label}) silent for {silent * 1e3:.0f} ms"
        self._protective = reason  # reported once; the tick brings the arm to rest
        self._event("silence", reason + ": protective stop (the arm is brought to rest)")
        return reason
