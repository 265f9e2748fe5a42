"""The robot server's mailbox: how the command thread gets the control thread to act.

Only the control thread touches the robot. A request that needs it (observe, gripper,
reset_estop, reset) is put in the mailbox as a `_Mail` (`hw.server.core`) by the command
thread (`_mail`), which waits up to `MAILBOX_TIMEOUT` for the answer; the control thread
answers every waiting mail within a tick (`_serve_mailbox`), and never raises while doing
so. A mail the command thread gave up on before the control thread took it is dropped, not
carried out.
"""

from __future__ import annotations

import queue
import time
from typing import Any

import numpy as np

from skillstack.hw.server.core import RequestFailed, ServerCore, _Mail, _state_fields
from skillstack.robot.types import GripperCommand

MAILBOX_TIMEOUT = 1.0  # s the command thread waits for the control thread (< client timeout)


class Mailbox(ServerCore):
    """Both ends of the mailbox (a part of `RobotServer`)."""

    def _serve_mailbox(self) -> None:
        """Answer every waiting request (control thread); never raises."""
        while True:
            try:
                mail = self._mailbox.get_nowait()
            except queue.Empty:
                return
            if not mail.take():
                continue
            activity, self._activity = self._activity, f"carrying out {mail.kind}"
            try:
                if self._fault is not None and mail.kind != "reset":
                    raise RequestFailed("robot_fault", self._fault)
                answer: tuple[str, Any] = ("ok", self._serve_mail(mail.kind, mail.payload))
            except RequestFailed as exc:
                answer = ("error", exc)
            except Exception as exc:  # a bad request or a driver error: hold, report, go on
                self._remote_command = None  # the idle loop holds from the next tick
                answer = ("error", RequestFailed(*self._classify(mail.kind, exc)))
            finally:
                self._activity = activity
            mail.reply.put(answer)

    def _serve_mail(self, kind: str, payload: Any) -> Any:
        if kind == "observe":
            observe = self._observe
            assert observe is not None  # `_op_observe` mails no request without an observer
            return observe(self.robot)
        if kind == "gripper":
            self.robot.gripper(GripperCommand(**payload))
            return None
        if kind == "reset_estop":
            self.robot.reset_estop()
            return None
        if kind == "reset":
            return self._reset()
        raise RequestFailed("internal", f"the control thread has no request {kind!r}")

    def _reset(self) -> None:
        """Clear a degraded server if the robot answers with a finite state (control thread)."""
        if self._fault is None:
            return
        state = self.robot.read()
        if not (np.isfinite(state.q).all() and np.isfinite(state.dq).all()):
            raise RequestFailed(
                "robot_fault", "reset refused: the robot's joint state is still not finite"
            )
        self.robot.safety.reset(state.q)  # hold where the arm is, from rest
        self._snapshot = {**self._snapshot, **_state_fields(state)}
        self._event("reset", f"degraded state cleared (was: {self._fault})")
        self._fault = None

    def _mail(self, kind: str, payload: Any = None) -> Any:
        """Hand a request to the control thread and wait for its answer (command thread)."""
        if self._control is None or not self._control.is_alive():
            raise RequestFailed("internal", "the control thread has stopped: restart the server")
        job = self._in_job
        if job is not None and job.code == "robot_fault":  # stalled: it would not answer
            raise RequestFailed("robot_fault", job.error or "the control loop stalled")
        mail = _Mail(kind, payload)
        self._mailbox.put(mail)
        try:
            status, value = mail.reply.get(timeout=MAILBOX_TIMEOUT)
        except queue.Empty:
            since = time.perf_counter() - self._last_tick_wall
            doing = f"it is {self._activity}"
            if self._last_tick_wall and since > 0.5:
                doing += f", no control tick for {since:.1f} s"
            if mail.abandon():
                message = (
                    f"the control thread started the {kind} request but did not finish it "
                    f"within {MAILBOX_TIMEOUT:.1f} s ({doing}); it may still take effect"
                )
            else:
                message = (
                    f"the control thread did not take the {kind} request within "
                    f"{MAILBOX_TIMEOUT:.1f} s ({doing}); it was dropped"
                )
            self._event("timeout", message)
            raise RequestFailed("control_timeout", message) from None
        if status == "error":
            raise value
        return value
