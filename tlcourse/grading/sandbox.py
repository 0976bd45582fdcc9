"""Limits and isolation for the kernels that run learners' submissions.

nbgrader executes a submission in a Jupyter kernel. Under ``tlcourse grade autograde``
that kernel is started through this module's launcher (a kernelspec named
:data:`KERNEL_NAME`, put first on ``JUPYTER_PATH``), which before handing over to
``ipykernel``:

* sets resource limits: address space, processes, file size, CPU time, no core dumps;
* clears the environment (only what a notebook needs, plus ``TLCOURSE_CHECKS=strict``),
  and makes a private scratch folder the home and working directory;
* **as root** (mode ``user``): enters a private mount namespace where the grader's home,
  the course folder and the submissions folder are hidden behind empty tmpfs mounts (the
  Python installation is mounted back read-only if it lives there), ``/tmp`` and
  ``/dev/shm`` are private; then drops to an unprivileged user id of its own, one per
  submission, with no supplementary groups and ``no_new_privs``. The kernel can then
  write nowhere but its scratch folder; every process left with that user id is killed
  when the submission is done.

Without root (mode ``none``) the kernel runs as the instructor, with the limits, the
clean environment and a scratch working directory only; the gradebook is still never
open to it (every submission is graded in a throw-away copy of the course), but a
hostile notebook could reach files by absolute path. Grade hostile classes as root.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

KERNEL_NAME = "tlcourse-sandbox"
UID_BASE = 1_400_000_000  # far above any real account; one id per submission


@dataclass
class Limits:
    """Per-submission limits (seconds, megabytes, counts)."""

    cell_timeout: float = 120.0
    notebook_timeout: float = 900.0
    memory_mb: int = 6144
    max_processes: int = 512
    max_file_mb: int = 256
    max_submission_mb: float = 20.0

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class KernelPlan:
    """What the launcher does for one submission's kernel (written to JSON for it)."""

    scratch: str
    uid: int | None = None
    namespace: bool = False
    hide: list[str] = field(default_factory=list)
    keep: list[str] = field(default_factory=list)
    env: dict = field(default_factory=dict)
    limits: dict = field(default_factory=dict)
    pidfile: str = ""


# ------------------------------------------------------------------ choosing a mode
def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


_NS_OK: bool | None = None


def namespace_available() -> bool:
    """Whether this process may create a private mount namespace (root, ``unshare``)."""
    global _NS_OK
    if _NS_OK is None:
        _NS_OK = False
        if is_root() and shutil.which("unshare") and shutil.which("mount"):
            try:
                r = subprocess.run(
                    ["unshare", "--mount", "--propagation", "private", "--",
                     "mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", "/mnt"],
                    capture_output=True, timeout=20)
                _NS_OK = r.returncode == 0
            except (OSError, subprocess.SubprocessError):
                _NS_OK = False
    return _NS_OK


def _inaccessible_ancestor(path: Path) -> Path | None:
    """The highest folder above ``path`` that other users may not traverse, if any."""
    for parent in reversed(path.resolve().parents):
        try:
            if not os.stat(parent).st_mode & 0o001:
                return parent
        except OSError:
            return None
    return None


_PRIVATE = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")


def hidden_and_kept(extra_hide: list[Path]) -> tuple[list[str], list[str]]:
    """Folders to cover with an empty tmpfs in the kernel's namespace, and the paths the
    kernel needs that are mounted back (read-only) from under them."""
    import tlcourse
    from tlcourse import paths

    needed = [Path(sys.base_prefix), Path(sys.prefix), Path(sys.executable).resolve().parent.parent,
              Path(tlcourse.__file__).resolve().parent.parent, paths.home()]
    hide: list[Path] = [Path(p) for p in _PRIVATE if Path(p).is_dir()]
    home = Path.home()
    if home.is_dir() and home != Path("/"):
        hide.append(home.resolve())
    for p in needed:
        anc = _inaccessible_ancestor(p)
        if anc is not None:
            hide.append(anc)
    hide += [p.resolve() for p in extra_hide if p.exists()]
    hide = list(dict.fromkeys(hide))
    keep = []
    for p in needed:
        p = p.resolve()
        if p.exists() and any(h == p or h in p.parents for h in hide):
            keep.append(str(p))
    return [str(h) for h in hide], list(dict.fromkeys(keep))


def kernel_env(scratch: Path) -> dict[str, str]:
    """The whole environment of a grading kernel."""
    from tlcourse import paths

    bindir = str(Path(sys.executable).parent)
    env = {
        "PATH": f"{bindir}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(scratch),
        "TMPDIR": str(scratch / "tmp"),
        "LANG": "C.UTF-8",
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": str(scratch / ".config" / "matplotlib"),
        "IPYTHONDIR": str(scratch / ".ipython"),
        "TLCOURSE_CHECKS": "strict",
        "TLCOURSE_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "TF_CPP_MIN_LOG_LEVEL": "2",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "TLCOURSE_HOME": str(paths.home()),
        "TLCOURSE_RESULTS_DIR": str(scratch / "results"),
        "NBGRADER_EXECUTION": "autograde",
    }
    return env


def write_kernelspec(where: Path, plan: KernelPlan) -> Path:
    """A kernelspec folder for :data:`KERNEL_NAME` under ``where``; returns the JUPYTER_PATH entry."""
    spec_dir = where / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True, exist_ok=True)
    plan_path = where / "plan.json"
    plan_path.write_text(json.dumps(asdict(plan)))
    argv = [sys.executable, "-m", "tlcourse.grading.sandbox", "--plan", str(plan_path), "-f", "{connection_file}"]
    if plan.namespace:
        argv = ["unshare", "--mount", "--propagation", "private", "--", *argv]
    spec = {"argv": argv, "display_name": "tlcourse grading sandbox", "language": "python",
            "interrupt_mode": "signal"}
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1))
    return where


def make_scratch(uid: int | None) -> Path:
    import tempfile

    scratch = Path(tempfile.mkdtemp(prefix="tlcourse-kernel-"))
    for sub in ("tmp", ".config/matplotlib", ".ipython", "results"):
        (scratch / sub).mkdir(parents=True, exist_ok=True)
    if uid is not None:
        for p in [scratch, *scratch.rglob("*")]:
            os.chown(p, uid, uid)
    os.chmod(scratch, 0o700)
    return scratch


# ------------------------------------------------------------------ cleaning up
def processes_of(uid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("Uid:"):
                    if int(line.split()[1]) == uid:
                        pids.append(int(entry.name))
                    break
        except (OSError, ValueError):
            continue
    return pids


def kill_uid(uid: int | None) -> int:
    """SIGKILL every process of a sandbox user id (only ids this module hands out)."""
    if uid is None or uid < UID_BASE:
        return 0
    killed = 0
    for _ in range(20):
        pids = processes_of(uid)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
                killed += 1
            except ProcessLookupError:
                pass
        time.sleep(0.05)
    return killed


def kill_pidfile(pidfile: str | Path) -> None:
    """Kill the process group of a kernel the launcher recorded (mode ``none``)."""
    try:
        pid = int(Path(pidfile).read_text().strip())
    except (OSError, ValueError):
        return
    for sig in (signal.SIGKILL,):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(pid, sig)
            except (ProcessLookupError, PermissionError):
                pass


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


# ------------------------------------------------------------------ the launcher
def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True)


def _enter_mounts(plan: KernelPlan) -> None:
    """In the private mount namespace: hide folders, mount back what the kernel needs."""
    _mount("--make-rprivate", "/")
    spare = next(p for p in ("/mnt", "/media", "/srv", "/opt")
                 if Path(p).is_dir() and p not in plan.hide)
    _mount("-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", spare)
    keep = [plan.scratch, *plan.keep]
    for i, path in enumerate(keep):
        stash = Path(spare) / str(i)
        stash.mkdir()
        _mount("--rbind", path, str(stash))
    for hide in plan.hide:
        if Path(hide).is_dir():
            mode = "1777" if hide in _PRIVATE else "0755"
            _mount("-t", "tmpfs", "-o", f"size=512m,mode={mode},nosuid,nodev", "tmpfs", hide)
    for i, path in enumerate(keep):
        Path(path).mkdir(parents=True, exist_ok=True)
        _mount("--rbind", str(Path(spare) / str(i)), path)
        if i > 0:
            _mount("-o", "remount,bind,ro", path)
    subprocess.run(["umount", "-l", spare], capture_output=True)


def _set_limits(limits: dict, *, per_user: bool) -> None:
    import resource

    def cap(which, soft, hard=None):
        try:
            resource.setrlimit(which, (int(soft), int(hard if hard is not None else soft)))
        except (ValueError, OSError):
            pass

    mb = 1024 * 1024
    cap(resource.RLIMIT_AS, limits.get("memory_mb", 6144) * mb)
    cap(resource.RLIMIT_FSIZE, limits.get("max_file_mb", 256) * mb)
    cap(resource.RLIMIT_CORE, 0)
    cpu = float(limits.get("notebook_timeout", 900)) + 30
    cap(resource.RLIMIT_CPU, cpu, cpu + 30)
    if per_user:
        cap(resource.RLIMIT_NPROC, limits.get("max_processes", 512))


def launch(plan_path: str, connection_file: str, extra: list[str]) -> None:
    """Start ipykernel for one submission under the plan's limits (replaces this process)."""
    plan = KernelPlan(**json.loads(Path(plan_path).read_text()))
    scratch = Path(plan.scratch)
    Path(plan.pidfile).write_text(str(os.getpid()))
    conn = scratch / "kernel-connection.json"
    conn.write_text(Path(connection_file).read_text())
    os.chmod(conn, 0o600)
    if plan.uid is not None:
        os.chown(conn, plan.uid, plan.uid)
    if plan.namespace:
        _enter_mounts(plan)
    _set_limits(plan.limits, per_user=plan.uid is not None)
    os.chdir(scratch)
    if plan.uid is not None:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS: no setuid programs from here on
        os.setgroups([])
        os.setgid(plan.uid)
        os.setuid(plan.uid)
        if os.getuid() == 0 or os.geteuid() == 0:
            raise SystemExit("could not drop privileges")
    python = sys.executable
    os.execve(python, [python, "-m", "ipykernel_launcher", "-f", str(conn), *extra], plan.env)


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description="start a grading kernel in the sandbox")
    parser.add_argument("--plan", required=True)
    parser.add_argument("-f", dest="connection_file", required=True)
    args, extra = parser.parse_known_args(argv)
    launch(args.plan, args.connection_file, extra)


if __name__ == "__main__":
    main()
