"""The process supervisor of `make up`: every service in the foreground, each output line prefixed
with the time and the process's name; Ctrl-C or SIGTERM stops them all, and so does any process
that exits on its own (with a non-zero exit). Unlike a Procfile runner it can add a process while
the others run and retire one without stopping the rest, which `make restart` needs.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import queue
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType
from typing import IO

SYSTEM = "localmesh"
STOP_TIMEOUT = 10.0
TAIL_LINES = 40


def describe_exit(code: int) -> str:
    """`exit code 1`, or the signal that ended a process (uvicorn re-raises SIGTERM on exit)."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"ended by {signal.Signals(-code).name}"
    return f"exit code {code}"


class Printer:
    """Writes `HH:MM:SS name | line`, one whole line at a time from any thread."""

    def __init__(self, stream: IO[str], width: int = len(SYSTEM)) -> None:
        self.stream = stream
        self.width = width
        self._lock = threading.Lock()

    def line(self, name: str, text: str) -> None:
        stamp = datetime.datetime.now().strftime("%H:%M:%S")
        with self._lock:
            for part in text.splitlines() or [""]:
                self.stream.write(f"{stamp} {name:<{self.width}} | {part}\n")
            self.stream.flush()


@dataclass(eq=False)
class Process:
    """One running process of a service."""

    service: str
    label: str
    port: int | None
    proc: subprocess.Popen[bytes]
    # The last lines it printed: why a process that would not start failed.
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    # Until adopted, an exit is its starter's business (a replacement that failed to start);
    # once retiring, an exit is expected. Either way the other processes keep running.
    adopted: bool = False
    retiring: bool = False
    exited: threading.Event = field(default_factory=threading.Event)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def returncode(self) -> int | None:
        return self.proc.poll()

    def last_error(self) -> str:
        """The last line that looks like an error, else the last line, else a placeholder."""
        lines = [line for line in self.tail if line.strip()]
        for line in reversed(lines):
            if any(word in line for word in ("rror", "ERROR", "Traceback", "failed", "cannot")):
                return line.strip()
        return lines[-1].strip() if lines else "it printed nothing"


class Supervisor:
    """Owns every process of `make up`; `run()` blocks until they are all stopped."""

    def __init__(self, printer: Printer) -> None:
        self.printer = printer
        # (process that exited, its code) or (None, a failure that stops everything).
        self._events: queue.Queue[tuple[Process | None, int | str]] = queue.Queue()
        self._lock = threading.Lock()
        self._processes: list[Process] = []
        self._signal: int | None = None
        self._counts: dict[str, int] = {}
        self.stopping = threading.Event()

    def say(self, text: str) -> None:
        """A line of the supervisor itself."""
        self.printer.line(SYSTEM, text)

    # --- Processes -----------------------------------------------------------------------------

    def start(
        self,
        service: str,
        command: Sequence[str],
        env: Mapping[str, str],
        port: int | None = None,
        adopted: bool = True,
    ) -> Process:
        """Start a process of service in its own session; the first is named after the service,
        later ones (replacements) `service.2`, `service.3`..."""
        with self._lock:
            if self.stopping.is_set():
                raise RuntimeError("make up is stopping")
            count = self._counts.get(service, 0) + 1
            self._counts[service] = count
            label = service if count == 1 else f"{service}.{count}"
            self.printer.width = max(self.printer.width, len(label))
            proc = subprocess.Popen(
                list(command),
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                # Its own session: Ctrl-C reaches only the supervisor, which stops the processes
                # in order, each with all of its children.
                start_new_session=True,
            )
            process = Process(service, label, port, proc, adopted=adopted)
            self._processes.append(process)
        threading.Thread(target=self._read, args=(process,), name=label, daemon=True).start()
        return process

    def _read(self, process: Process) -> None:
        stream = process.proc.stdout
        assert stream is not None
        for raw in iter(stream.readline, b""):
            text = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            process.tail.append(text)
            self.printer.line(process.label, text)
        code = process.proc.wait()
        process.exited.set()
        self._events.put((process, code))

    def live(self, service: str) -> list[Process]:
        """The running processes of a service, oldest first."""
        with self._lock:
            return [
                p
                for p in self._processes
                if p.service == service and p.returncode() is None and not p.retiring
            ]

    def adopt(self, process: Process) -> None:
        """From now on an exit of process stops everything, as for the first processes."""
        process.adopted = True

    def retire(self, process: Process, timeout: float) -> int:
        """SIGTERM the process (and its children), wait up to timeout, then SIGKILL; its exit
        does not stop the others. Returns its exit code."""
        process.retiring = True
        return self._terminate(process, timeout)

    def _terminate(self, process: Process, timeout: float) -> int:
        if process.returncode() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        try:
            return process.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.say(f"{process.label} did not stop within {timeout:.0f}s: killing it")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            return process.proc.wait()

    def stop_all(self) -> None:
        """SIGTERM every process at once, wait for them all, SIGKILL what is left."""
        self.stopping.set()
        with self._lock:
            running = [p for p in self._processes if p.returncode() is None]
        for process in running:
            process.retiring = True
            self.say(f"sending SIGTERM to {process.label} (pid {process.pid})")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for process in running:
            try:
                process.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"{process.label} did not stop: killing it")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.proc.wait()
        # Their last lines are printed before the supervisor's own.
        for process in running:
            process.exited.wait(timeout=2)

    # --- The loop ------------------------------------------------------------------------------

    def fail(self, message: str) -> None:
        """Stop everything and make run() return 1 (e.g. a service never became ready)."""
        self._events.put((None, message))

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Only a flag: the loop acts on it (a lock taken here could deadlock the main thread).
        self._signal = signum

    def run(self, on_stop: Callable[[], None] | None = None) -> int:
        """Supervise until a signal (exit 0), a failure (1) or an unexpected exit (its code)."""
        previous = {
            signum: signal.signal(signum, self._on_signal)
            for signum in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            return self._loop()
        finally:
            if on_stop is not None:
                on_stop()
            self.stop_all()
            for signum, handler in previous.items():
                signal.signal(signum, handler)

    def _loop(self) -> int:
        while True:
            if self._signal is not None:
                self.say(f"{signal.Signals(self._signal).name} received")
                return 0
            try:
                process, detail = self._events.get(timeout=0.1)
            except queue.Empty:
                continue
            if process is None:
                self.say(f"{detail}; stopping everything")
                return 1
            if process.retiring or not process.adopted:
                continue
            code = detail if isinstance(detail, int) else 1
            self.say(f"{process.label} exited ({describe_exit(code)}); stopping everything")
            return code if code > 0 else 1
