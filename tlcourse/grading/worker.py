"""A long-lived nbgrader process: ``nbgrader autograde`` without paying its start-up each time.

Importing nbgrader takes seconds; a batch grades many small notebooks. The grader starts
one worker per job slot (``python -m tlcourse.grading.worker --result-fd N``) and sends
it one task per submission, a JSON line on its standard input naming an isolated course
copy; the worker runs nbgrader's :class:`~nbgrader.converters.Autograde` converter on it
and answers with a JSON line on the private pipe ``N`` (not on standard output, which
the kernels it starts inherit). A worker that exceeds a submission's time limit, or
dies, is killed and replaced by :class:`Worker`'s owner; it never runs learner code
itself (the kernels do, in the sandbox).
"""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

_CONVERTERS = {"autograde": "Autograde", "generate_assignment": "GenerateAssignment",
               "generate_feedback": "GenerateFeedback"}


def run_converter(name: str, course: str | Path, assignment: str, student: str | None = None,
                  log_path: str | Path | None = None) -> tuple[bool, str]:
    """Run one nbgrader converter in this process, as ``nbgrader NAME ASSIGNMENT --force`` would.

    Returns (succeeded, log text); the log also goes to ``log_path`` if given."""
    import io

    import nbgrader.converters as converters
    from nbgrader.converters.base import NbGraderException
    from nbgrader.coursedir import CourseDirectory
    from traitlets.config.loader import PyFileConfigLoader

    log = logging.getLogger(f"tlcourse.grading.nbgrader.{name}.{assignment}.{student}")
    log.propagate = False
    log.setLevel(logging.INFO)
    buffer = io.StringIO()
    fmt = logging.Formatter(f"[{name} | %(levelname)s] %(message)s")
    handlers = [logging.StreamHandler(buffer)] + ([logging.FileHandler(log_path)] if log_path else [])
    for h in handlers:
        h.setFormatter(fmt)
    log.handlers = handlers
    try:
        course = str(Path(course).resolve())
        cfg = PyFileConfigLoader("nbgrader_config.py", path=course).load_config()
        cfg.CourseDirectory.root = course
        cfg.CourseDirectory.assignment_id = assignment
        if student:
            cfg.CourseDirectory.student_id = student
        cls = getattr(converters, _CONVERTERS[name])
        cfg[cls.__name__].force = True
        coursedir = CourseDirectory(config=cfg, log=log)
        converter = cls(coursedir=coursedir, config=cfg, log=log)
        try:
            converter.start()
            ok = True
        except NbGraderException as err:
            log.error(str(err))
            ok = False
    except Exception:  # noqa: BLE001 - reported to the caller, who decides
        log.exception(f"nbgrader {name} failed")
        ok = False
    finally:
        for h in handlers:
            h.close()
    return ok, buffer.getvalue()


def _run(task: dict) -> tuple[bool, str]:
    os.environ.update(task["env"])
    ok, text = run_converter("autograde", task["course"], task["assignment"], task["student"], task["log"])
    return ok, "" if ok else text[-2000:]


def main(argv: list[str] | None = None) -> None:
    import argparse
    import warnings

    parser = argparse.ArgumentParser(description="run nbgrader autograde tasks read from stdin")
    parser.add_argument("--result-fd", type=int, required=True)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    out = os.fdopen(args.result_fd, "w", buffering=1)
    import nbgrader.converters  # noqa: F401 - the slow import, done once

    out.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        task = json.loads(line)
        ok, error = _run(task)
        out.write(json.dumps({"ok": ok, "error": error}) + "\n")


class WorkerDied(RuntimeError):
    pass


class Worker:
    """The grader's handle on one worker process."""

    def __init__(self, *, log_path: Path, memory_bytes: int | None = None):
        self.log_path = log_path
        self.memory_bytes = memory_bytes
        self.proc: subprocess.Popen | None = None
        self._buf = b""

    def _start(self) -> None:
        r, w = os.pipe()
        memory = self.memory_bytes

        def limit():  # in the child: nbgrader holds all outputs in memory
            if memory:
                import resource

                try:
                    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
                except (ValueError, OSError):
                    pass

        bindir = str(Path(sys.executable).parent)
        env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTER_")}
        env["PATH"] = bindir + os.pathsep + env.get("PATH", "")  # nbgrader calls `alembic`
        with open(self.log_path, "ab") as logf:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tlcourse.grading.worker", "--result-fd", str(w)],
                stdin=subprocess.PIPE, stdout=logf, stderr=logf, pass_fds=(w,), env=env,
                start_new_session=True, preexec_fn=limit)
        os.close(w)
        self.fd = r
        self._buf = b""
        self._read(timeout=300)  # the "ready" line

    def _read(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            ready, _, _ = select.select([self.fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(self.fd, 65536)
            if not chunk:
                raise WorkerDied("the grading process died")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)

    def run(self, task: dict, timeout: float) -> dict:
        """Run one task; raises TimeoutError (the worker is then killed) or WorkerDied."""
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        try:
            self.proc.stdin.write((json.dumps(task) + "\n").encode())
            self.proc.stdin.flush()
            return self._read(timeout)
        except (TimeoutError, WorkerDied, BrokenPipeError, OSError):
            self.kill()
            raise

    def kill(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.close(self.fd)
        except OSError:
            pass
        self.proc = None

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.kill()


if __name__ == "__main__":
    main()
