"""An event-driven transport for the SCP's associations (pynetdicom 3.0.4, pinned).

pynetdicom runs two threads per association, and both poll: the DUL (network) thread sleeps
1 ms whenever a loop found nothing to do, then checks the socket with a zero-timeout select(),
and the association thread sleeps 1 ms between looks at its message queue. A C-STORE thus
waits up to a millisecond for each hand-over (PDU in, decoded message to the handler, response
back to the network), and an idle association wakes its threads 3,000 times a second.

Here both threads block instead:
- the DUL thread waits in select() on the peer's socket and on a wake-up socket pair, which the
  association thread pokes when it queues a PDU to send (or when the DUL is told to stop);
- the association thread waits on a threading.Event that is set whenever the DUL hands it a
  decoded DIMSE message or an A-RELEASE/A-ABORT primitive.
Both waits have a short cap so that timers (ARTIM, the network idle timeout) and pynetdicom's
pause/kill flags are still honoured without a wake-up.

Only private parts of pynetdicom's DULServiceProvider and Association change (the two run
loops and the queues between the threads); the state machine, PDU handling, DIMSE and ACSE
code are pynetdicom's own. `requirements.txt` pins pynetdicom: re-check this module when the
pin moves (the loops below mirror `DULServiceProvider.run_reactor` and
`Association._run_reactor` of 3.0.4).
"""

import logging
import queue
import select
import socket
import threading
from typing import Callable

from pynetdicom import evt
from pynetdicom.association import Association
from pynetdicom.dul import DULServiceProvider
from pynetdicom.pdu import A_ABORT_RQ

from .dimse_fast import FastDIMSEProvider

# pynetdicom's own loggers, so that its messages read as before.
DUL_LOGGER = logging.getLogger("pynetdicom.dul")
ASSOC_LOGGER = logging.getLogger("pynetdicom.association")

# Longest blocking wait of either thread: how late a timer or a flag set without a wake-up is
# noticed. Idle cost: one wake-up per cap and thread.
DUL_WAIT_CAP_SECONDS = 0.05
ASSOC_WAIT_CAP_SECONDS = 0.02


class NotifyingQueue(queue.Queue):
    """A queue that calls `notify()` after every put (from any thread)."""

    def __init__(self, notify: Callable[[], None]):
        super().__init__()
        self._notify = notify

    def put(self, item, block=True, timeout=None):
        super().put(item, block, timeout)
        self._notify()


class EventDrivenDUL(DULServiceProvider):
    """pynetdicom's DUL provider, waiting in select() instead of sleeping between polls."""

    def __init__(self, assoc: Association) -> None:
        super().__init__(assoc)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        # Queues other threads put into: each put wakes the network thread.
        self.to_provider_queue = NotifyingQueue(self._wake_from_other_thread)
        self.event_queue = NotifyingQueue(self._wake_from_other_thread)
        # What the association thread waits for: decoded primitives for the service user.
        self.to_user_queue = NotifyingQueue(assoc._pacs_wakeup.set)

    def _wake_from_other_thread(self) -> None:
        if threading.get_ident() == self.ident:
            return  # the network thread itself: it looks at its queues before waiting again
        self.wake()

    def wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:  # closed (the DUL has ended) or the buffer is full (a wake-up is pending)
            pass

    def kill_dul(self) -> None:
        super().kill_dul()
        self.wake()

    def stop_dul(self) -> bool:
        self.wake()  # so that a reactor in Sta1 sees the flag at once
        return super().stop_dul()

    def _wait_for_work(self) -> None:
        """Block until the peer sent data, another thread queued work, or the cap elapsed."""
        if self.to_provider_queue.qsize() or self.event_queue.qsize() or self._kill_thread:
            return
        waiting_on = [self._wake_r]
        transport = self.socket
        if transport is not None and transport.socket is not None and transport._is_connected:
            waiting_on.append(transport.socket)
        timeout = DUL_WAIT_CAP_SECONDS
        if self.artim_timer._start_time is not None and self.artim_timer._end_time is None:
            timeout = max(0.0, min(timeout, self.artim_timer.remaining))
        try:
            ready, _, _ = select.select(waiting_on, [], [], timeout)
        except (OSError, ValueError):  # the socket was closed meanwhile: the loop will notice
            return
        if self._wake_r in ready:
            try:
                while self._wake_r.recv(4096):
                    pass
            except OSError:
                pass

    def run_reactor(self) -> None:
        """As `DULServiceProvider.run_reactor`, with `_wait_for_work()` instead of sleeping."""
        try:
            self._run_event_loop()
        finally:
            self._wake_w.close()
            self._wake_r.close()
            self.assoc._pacs_wakeup.set()

    def _run_event_loop(self) -> None:
        self._idle_timer.start()
        idle = False
        while True:
            if not self.assoc._dul_ready.is_set():
                self.assoc._dul_ready.set()
            if idle:
                self._wait_for_work()
            if self._kill_thread:
                break
            if self.artim_timer.expired:
                self.event_queue.put("Evt18")
            try:
                # Either encode and send one primitive, or receive and decode one PDU.
                if self._process_recv_primitive():
                    pass
                elif self._is_transport_event():
                    self._idle_timer.restart()
            except Exception as exc:
                DUL_LOGGER.error("Exception in DUL.run(), aborting association")
                DUL_LOGGER.exception(exc)
                abort_pdu = A_ABORT_RQ()
                abort_pdu.source = 0x02
                abort_pdu.reason_diagnostic = 0x00
                self.socket.send(abort_pdu.encode())
                self.assoc.is_aborted = True
                self.assoc.is_established = False
                self.assoc._kill = True
                self._kill_thread = True
                return
            try:
                event = self.event_queue.get(block=False)
            except queue.Empty:
                idle = True
                continue
            self.state_machine.do_action(event)
            idle = False


class EventDrivenAssociation(Association):
    """pynetdicom's acceptor Association whose reactor waits for the DUL instead of polling.
    Installed on an Association made by pynetdicom's RequestHandler with `install()`."""

    _pacs_wakeup: threading.Event

    @classmethod
    def install(cls, assoc: Association) -> Association:
        """Swap the event-driven loops into a new, not yet started acceptor association."""
        old = assoc.dul
        assoc.__class__ = cls
        assoc._pacs_wakeup = threading.Event()
        dul = assoc.dul = EventDrivenDUL(assoc)
        # Carry over what the old DUL already holds: the socket, the timers (their timeouts were
        # set from the AE) and the queued Evt5 (transport connection indication).
        dul.socket = old.socket
        dul.artim_timer = old.artim_timer
        dul._idle_timer = old._idle_timer
        for event in old.event_queue.queue:
            dul.event_queue.put(event)
        assoc.dimse.__class__ = FastDIMSEProvider  # struct-built C-STORE messages (dimse_fast.py)
        assoc.dimse.msg_queue = NotifyingQueue(assoc._pacs_wakeup.set)
        return assoc

    def kill(self) -> None:
        self._pacs_wakeup.set()
        super().kill()

    def _run_reactor(self) -> None:
        """As `Association._run_reactor` (acceptor), waiting on `_pacs_wakeup` instead of
        sleeping 1 ms per loop. After a loop that served a message it looks again at once."""
        self._is_paused = False
        wakeup = self._pacs_wakeup
        served = False
        while not self._kill:
            if not served:
                wakeup.wait(ASSOC_WAIT_CAP_SECONDS)
                wakeup.clear()  # whatever woke us is looked at below
            served = False

            # pynetdicom's pause point for send_*() and release() from other threads.
            self._is_paused = True
            self._reactor_checkpoint.wait()
            self._is_paused = False

            context_id, msg = self.dimse.get_msg(block=False)
            if msg:
                self._serve_request(msg, context_id)
                served = True

            if self.is_established and self.acse.is_release_requested():
                self.acse.send_release(is_response=True)
                ASSOC_LOGGER.info("Association Released")
                self.is_released = True
                self.is_established = False
                evt.trigger(self, evt.EVT_RELEASED, {})
                self.kill()
                return

            if self.acse.is_aborted():
                log_msg = "Association Aborted"
                if self.acse.is_aborted("a-p-abort"):
                    log_msg += " (A-P-ABORT)"
                ASSOC_LOGGER.info(log_msg)
                self.dul.receive_pdu(wait=False)  # so that EVT_ACSE_RECV fires
                self.is_aborted = True
                self.is_established = False
                evt.trigger(self, evt.EVT_ABORTED, {})
                self.kill()
                return

            if not self.dul.is_alive():
                self.kill()
                return

            if self.dul.idle_timer_expired():
                ASSOC_LOGGER.error("Network timeout reached")
                if self.network_timeout_response == "A-RELEASE":
                    self._is_paused = True
                    self._reactor_checkpoint.wait()
                    self.release()
                    self._is_paused = False
                else:
                    self.abort()
                self.kill()
                return

