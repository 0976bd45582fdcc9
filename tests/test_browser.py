"""The course as a learner gets it: JupyterLab in a real browser, Run → Run All Cells.

A JupyterLab server from the project's environment serves a temporary copy of
``notebooks/`` (the repository is never touched); headless Chromium (Debian's
``chromium`` package, driven by Playwright) opens a notebook, runs every cell through
the Run menu, waits for the kernel to go idle, and checks what the learner sees: every
code cell ran, no cell shows an error, the exercise checks rendered. A screenshot of
the whole executed notebook goes to ``build/artifacts/``.

Chromium is a system package (``apt-get install chromium``, which needs root): without
it the tests skip with the install command, except under CI (``CI=true``), where a
missing browser is a failure (``.ci/run`` installs it).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import nbformat
import pytest
from conftest import NOTEBOOKS, ROOT

CHROMIUM = Path(os.environ.get("TLCOURSE_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = ROOT / "build" / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERVER_START_S = 90  # JupyterLab up and answering
KERNEL_READY_S = 90  # notebook open, kernel idle
RUN_ALL_S = {"default": 90, "torch": 180}  # Run All Cells finished (1 thread, shared CPU)
WIDTH, MAX_HEIGHT = 1280, 14000  # screenshot size: the whole notebook, capped

pytestmark = [pytest.mark.xdist_group("browser"), pytest.mark.slow]


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    how = "sudo apt-get install -y --no-install-recommends chromium chromium-driver fonts-dejavu-core"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true but {CHROMIUM} is missing: .ci/run should have run `{how}`")
    pytest.skip(f"browser tests need Chromium at {CHROMIUM} (set TLCOURSE_CHROMIUM to use another): {how}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A JupyterLab server in a temporary folder, and a few REST calls against it."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.root = tmp / "root"
        shutil.copytree(NOTEBOOKS, self.root / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        self.port, self.token = _free_port(), secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        settings = tmp / "settings"
        # No "would you like news?" toast over the notebook, and no request to the internet.
        notify = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
        notify.parent.mkdir(parents=True)
        notify.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        env = dict(os.environ)
        env.pop("TLCOURSE_CHECKS", None)  # a learner's checks display verdicts, they never raise
        env.update(
            # As `make lab` does: inline plots (the test session itself runs with Agg).
            MPLBACKEND="module://matplotlib_inline.backend_inline",
            TLCOURSE_THREADS="1",
            TLCOURSE_RESULTS_DIR=str(tmp / "results"),
            JUPYTER_CONFIG_DIR=str(tmp / "config"),
            JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
        )
        cmd = [
            sys.executable, "-m", "jupyterlab",
            "--no-browser", "--ServerApp.open_browser=False",
            "--ip=127.0.0.1", f"--port={self.port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--notebook-dir={self.root}",
            f"--LabApp.user_settings_dir={settings}",
            f"--LabApp.workspaces_dir={tmp / 'workspaces'}",
        ]
        if os.geteuid() == 0:
            cmd.append("--allow-root")
        self.log_path = tmp / "jupyterlab.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, env=env, cwd=self.root, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    def api(self, path: str, method: str = "GET"):
        req = urllib.request.Request(f"{self.url}{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read()
        return json.loads(body) if body else None

    def wait_ready(self) -> None:
        deadline = time.monotonic() + SERVER_START_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                self.api("/api/status")
                return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.5)
        pytest.fail(f"JupyterLab did not answer within {SERVER_START_S} s:\n{self.log_tail()}")

    def kernel_states(self) -> list[str]:
        return [k["execution_state"] for k in self.api("/api/kernels")]

    def shutdown_kernels(self) -> None:
        for k in self.api("/api/kernels"):
            self.api(f"/api/kernels/{k['id']}", method="DELETE")

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:  # kernels live in their own process groups: ask the server to stop them
                self.shutdown_kernels()
                self.api("/api/shutdown", method="POST")
                self.proc.wait(timeout=20)
            except Exception:  # noqa: BLE001 - fall back to signals below
                pass
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if self.proc.poll() is not None:
                break
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                continue
        self._log.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    _require_chromium()
    server = Lab(tmp_path_factory.mktemp("lab"))
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(lab, tmp_path_factory):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),  # a fresh profile
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": WIDTH, "height": 900},
        )
        context.set_default_timeout(30_000)
        for blank in context.pages:  # the window opens with a blank tab; tests open their own
            blank.close()
        try:
            yield context
        finally:
            context.close()


# --- driving JupyterLab -------------------------------------------------------------

_PROMPTS = "els => els.map(e => e.textContent.trim())"
# An error output: the traceback IPython prints (stderr warnings have neither line).
_TRACEBACK = re.compile(r"Traceback \(most recent call last\)|^\s*Cell In\[\d+\], line \d+", re.M)


def open_notebook(context, lab: Lab, relpath: str, workspace: str):
    page = context.new_page()
    page.bring_to_front()  # JupyterLab's "current notebook" follows focus
    page.goto(f"{lab.url}/lab/workspaces/{workspace}/tree/{relpath}?reset&token={lab.token}")
    page.wait_for_selector(".jp-NotebookPanel .jp-KernelName", timeout=KERNEL_READY_S * 1000)
    wait_kernel_ready(page, lab)
    page.keyboard.press("Control+b")  # fold the file browser away: the notebook gets the width
    return page


def wait_kernel_ready(page, lab: Lab) -> None:
    """Until the notebook's kernel is started, connected and idle.

    The toolbar's indicator says "idle" for a moment before any kernel exists (a Run All
    then would be lost), so the kernel's name and the server's view must agree too.
    """
    deadline, calm, seen = time.monotonic() + KERNEL_READY_S, 0, None
    while time.monotonic() < deadline:
        status = page.get_attribute(".jp-NotebookPanel .jp-Notebook-ExecutionIndicator", "data-status")
        name = page.inner_text(".jp-NotebookPanel .jp-KernelName").strip()
        states = lab.kernel_states()
        seen = (status, name, states)
        ready = status == "idle" and name and name != "No Kernel" and states and set(states) == {"idle"}
        calm = calm + 1 if ready else 0
        if calm >= 3:
            return
        time.sleep(0.5)
    pytest.fail(f"the notebook's kernel was not ready within {KERNEL_READY_S} s: indicator, name, "
                f"server states = {seen}\n{lab.log_tail()}")


def menu(page, menu_name: str, command: str) -> None:
    page.click(f".lm-MenuBar-item:has-text('{menu_name}')")
    page.click(f".lm-Menu-item[data-command='{command}']")


def run_all_and_wait(page, lab: Lab, budget_s: float) -> float:
    """Run → Run All Cells; return the seconds until no cell is queued and the kernel is idle."""
    start = time.monotonic()
    menu(page, "Run", "runmenu:run-all")
    calm = 0
    while time.monotonic() - start < budget_s:
        prompts = page.eval_on_selector_all(".jp-NotebookPanel .jp-CodeCell .jp-InputPrompt", _PROMPTS)
        status = page.get_attribute(".jp-NotebookPanel .jp-Notebook-ExecutionIndicator", "data-status")
        started = bool(prompts) and prompts[0] not in ("[ ]:", "[*]:")
        done = started and "[*]:" not in prompts and status == "idle" and set(lab.kernel_states()) == {"idle"}
        # The kernel is briefly idle between queued cells: ask for two calm looks in a row.
        calm = calm + 1 if done else 0
        if not started and time.monotonic() - start > 30:
            pytest.fail(f"Run → Run All Cells started no cell within 30 s: prompts {prompts}")
        if calm >= 2:
            return time.monotonic() - start
        time.sleep(1.0)
    dialog = page.query_selector(".jp-Dialog")
    extra = f"; a dialog is open: {dialog.inner_text()!r}" if dialog else ""
    pytest.fail(f"Run All Cells did not finish within {budget_s} s{extra}: prompts {prompts}, "
                f"indicator {status!r}, kernels {lab.kernel_states()}")


_LAYOUT = """() => {
  const o = document.querySelector('.jp-NotebookPanel .jp-WindowedPanel-outer');
  const cells = o.querySelectorAll('.jp-Cell'), last = cells[cells.length - 1];
  const box = o.getBoundingClientRect();
  return {content: last.getBoundingClientRect().bottom - box.top + o.scrollTop + 24,
          chrome: window.innerHeight - box.height, view: o.clientHeight};
}"""
_SCROLL = "y => { document.querySelector('.jp-NotebookPanel .jp-WindowedPanel-outer').scrollTop = y; }"


def screenshot_whole_notebook(page, path: Path) -> list[Path]:
    """Grow the window to the notebook's height, so a picture shows every cell and output.

    A notebook taller than ``MAX_HEIGHT`` continues in ``<name>-2.png``, ``-3.png``, …
    """
    for _ in range(3):  # off-screen cells only take their real height once drawn
        layout = page.evaluate(_LAYOUT)
        page.set_viewport_size({"width": WIDTH, "height": int(min(layout["content"] + layout["chrome"], MAX_HEIGHT))})
        page.wait_for_timeout(700)
    layout = page.evaluate(_LAYOUT)
    path.parent.mkdir(parents=True, exist_ok=True)
    for old in path.parent.glob(f"{path.stem}-[0-9]*.png"):
        old.unlink()
    shots, top = [], 0
    while True:  # Run All left the last cell in view: start again from the top
        page.evaluate(_SCROLL, top)
        page.wait_for_timeout(500)
        shot = path if not shots else path.with_name(f"{path.stem}-{len(shots) + 1}.png")
        page.screenshot(path=str(shot))
        shots.append(shot)
        layout = page.evaluate(_LAYOUT)  # cells drawn just now replace their estimated heights
        if top + layout["view"] >= layout["content"] - 5 or len(shots) >= 6:
            break
        top = min(top + layout["view"] - 40, layout["content"] - layout["view"])  # the last one ends at the end
    page.set_viewport_size({"width": WIDTH, "height": 900})
    return shots


def set_theme(page, theme: str) -> None:
    """Settings → Theme → ``theme``."""
    page.click(".lm-MenuBar-item:has-text('Settings')")
    page.hover(".lm-Menu-item:has-text('Theme')")
    label = page.locator(".lm-Menu-itemLabel", has_text=re.compile(f"^{theme}$"))
    page.locator(".lm-Menu-item[data-command='apputils:change-theme']").filter(has=label).click()
    page.wait_for_selector(f"body[data-jp-theme-name='{theme}']", state="attached")
    page.wait_for_timeout(1000)  # the theme's stylesheet applies


def save_and_read(page, lab: Lab, relpath: str):
    """File → Save Notebook; return the notebook as the browser saved it (every output)."""
    menu(page, "File", "docmanager:save")
    page.wait_for_selector(".lm-TabBar-tab.jp-mod-current:not(.jp-mod-dirty)", timeout=30_000)
    return nbformat.read(lab.root / relpath, as_version=4)


def check_executed_as_learner_sees_it(page, lab: Lab, relpath: str, source: Path) -> dict:
    nb_source = nbformat.read(source, as_version=4)
    n_code = sum(c.cell_type == "code" for c in nb_source.cells)
    n_checks = sum("check" in c.metadata.get("tlcourse", {}) for c in nb_source.cells)

    prompts = page.eval_on_selector_all(".jp-NotebookPanel .jp-CodeCell .jp-InputPrompt", _PROMPTS)
    stderr = page.eval_on_selector_all(
        ".jp-NotebookPanel .jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']", _PROMPTS)
    tracebacks = [t[:600] for t in stderr if _TRACEBACK.search(t)]
    assert not tracebacks, f"{relpath}: a cell shows an error:\n" + "\n---\n".join(tracebacks)
    not_run = [i for i, p in enumerate(prompts) if not re.fullmatch(r"\[\d+\]:", p)]
    assert len(prompts) == n_code and not not_run, f"{relpath}: code cells {not_run} did not run ({prompts})"

    checks = page.locator(".jp-NotebookPanel .jp-OutputArea-output .tlcourse-check")
    assert checks.count() >= n_checks, f"{relpath}: {checks.count()} check outputs for {n_checks} check cells"
    if n_checks:
        assert checks.first.is_visible()

    saved = save_and_read(page, lab, relpath)
    errors = [o for c in saved.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors, f"{relpath}: error outputs in the saved notebook: {[(e.ename, e.evalue) for e in errors]}"
    images = sum("image/png" in o.get("data", {}) for c in saved.cells for o in c.get("outputs", []))
    return {"code_cells": n_code, "checks": checks.count(), "images": images, "stderr_outputs": len(stderr)}


def _run_case(browser, lab: Lab, source: Path, budget_s: float) -> None:
    relpath = f"notebooks/{source.name}"
    (ARTIFACTS / f"browser-{source.stem}-failed.png").unlink(missing_ok=True)
    page = open_notebook(browser, lab, relpath, workspace=source.stem.replace("_", "-"))
    try:
        seconds = run_all_and_wait(page, lab, budget_s)
        screenshot_whole_notebook(page, ARTIFACTS / f"browser-{source.stem}.png")
        seen = check_executed_as_learner_sees_it(page, lab, relpath, source)
        print(f"{source.name}: Run All Cells took {seconds:.1f} s in the browser; {seen}")
    except BaseException:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"browser-{source.stem}-failed.png"))
        raise
    finally:
        page.close()
        lab.shutdown_kernels()  # a PyTorch kernel holds hundreds of MB


# --- the learner's view -------------------------------------------------------------

@pytest.mark.timeout(SERVER_START_S + KERNEL_READY_S + RUN_ALL_S["default"] + 60)
def test_welcome_runs_in_jupyterlab(browser, lab):
    _run_case(browser, lab, NOTEBOOKS / "00_welcome.ipynb", RUN_ALL_S["default"])


def _torch_notebook() -> Path | None:
    preferred = NOTEBOOKS / "02_losses_optimizers_torch.ipynb"
    if preferred.exists():
        return preferred
    return next(iter(sorted(NOTEBOOKS.glob("[0-9][0-9]_*_torch.ipynb"))), None)


@pytest.mark.timeout(SERVER_START_S + KERNEL_READY_S + RUN_ALL_S["torch"] + 60)
def test_torch_notebook_runs_in_jupyterlab(browser, lab):
    source = _torch_notebook()
    if source is None:
        pytest.skip("no PyTorch notebook (notebooks/NN_*_torch.ipynb) exists yet")
    shutil.copy2(source, lab.root / "notebooks" / source.name)  # it may be newer than the copy
    _run_case(browser, lab, source, RUN_ALL_S["torch"])


# --- exercise feedback in the light and the dark theme ------------------------------

_CONTRAST = """
els => els.map(el => {
  const rgba = s => { const m = s.match(/[\\d.]+/g).map(Number); return [m[0], m[1], m[2], m.length > 3 ? m[3] : 1]; };
  const lum = c => { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
                     return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
  let n = el, bg = [255, 255, 255, 1];
  while (n && n.nodeType === 1) { const c = rgba(getComputedStyle(n).backgroundColor); if (c[3] > 0.5) { bg = c; break; } n = n.parentElement; }
  const over = c => c.map((v, i) => i < 3 ? v * c[3] + bg[i] * (1 - c[3]) : 1);   // alpha onto the background
  const ratio = s => { const a = lum(over(rgba(s))), b = lum(bg); return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05); };
  const cs = getComputedStyle(el);
  return {text: el.textContent, label: ratio(getComputedStyle(el.querySelector('b')).color),
          message: ratio(cs.color), border: ratio(cs.borderLeftColor)};
})
"""


@pytest.mark.timeout(SERVER_START_S + KERNEL_READY_S + 90)
def test_exercise_feedback_reads_in_light_and_dark_theme(browser, lab):
    """The three verdicts, shown in JupyterLab Light and Dark: text at 4.5:1, the bar at 3:1 (WCAG AA)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(
        "from tlcourse.exercises.core import Outcome\n"
        "display(Outcome('correct', 'W has 7,840 entries and b has 10.', 'demo.q1'),\n"
        "        Outcome('incorrect', 'count the bias too: one per output.', 'demo.q1'),\n"
        "        Outcome('not attempted', 'replace ____ with your answer, then run this cell again', 'demo.q1'))")]
    nbformat.write(nb, lab.root / "feedback_themes.ipynb")
    page = open_notebook(browser, lab, "feedback_themes.ipynb", workspace="feedback")
    try:
        run_all_and_wait(page, lab, RUN_ALL_S["default"])
        page.wait_for_selector(".tlcourse-check")
        low = []
        for theme in ("JupyterLab Light", "JupyterLab Dark"):
            set_theme(page, theme)
            name = theme.split()[-1].lower()
            page.locator(".jp-NotebookPanel .jp-CodeCell").first.screenshot(
                path=str(ARTIFACTS / f"browser-feedback-{name}.png"))
            for row in page.eval_on_selector_all(".tlcourse-check", _CONTRAST):
                low += [f"{theme}, {row['text']!r}: {part} {row[part]:.1f}:1"
                        for part, need in (("label", 4.5), ("message", 4.5), ("border", 3.0)) if row[part] < need]
        assert not low, "exercise feedback below WCAG AA contrast:\n" + "\n".join(low)
    finally:
        try:  # the theme is a saved user setting: leave the server in the light theme
            set_theme(page, "JupyterLab Light")
        finally:
            page.close()
            lab.shutdown_kernels()
