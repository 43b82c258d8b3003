"""The process backend: each execution environment is a child process of the worker.

It speaks the same Runtime API and keeps the same contract as the Docker backend, but it
does NOT isolate function code from the host: use it for development and fast tests only.
"""

from __future__ import annotations

import contextlib
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from django.conf import settings

from invocations.runtimes import RUNTIMES, has_stem
from invocations.sandboxes.base import EnvironmentSpec, Sandbox, SandboxBackend, SandboxError

# Go's wording, which is what Lambda prints in "Runtime exited with error: ...".
_SIGNAL_WORDS = {
    signal.SIGKILL: "killed",
    signal.SIGTERM: "terminated",
    signal.SIGSEGV: "segmentation fault",
    signal.SIGABRT: "aborted",
    signal.SIGINT: "interrupt",
    signal.SIGBUS: "bus error",
}
_OUTPUT_CHUNK = 64 * 1024
_FILE_DESCRIPTORS = 1024
_OWNER_FILE = "owner"
_STEM_TASK_FOLDER = "task"


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        signum = signal.Signals(-returncode)
        return f"signal: {_SIGNAL_WORDS.get(signum, signum.name.lower())}"
    return f"exit status {returncode}"


class ProcessSandbox(Sandbox):
    def __init__(self, environment_id: str, process: subprocess.Popen[bytes], tmp_dir: Path):
        self.environment_id = environment_id
        self._process = process
        self._tmp_dir = tmp_dir
        assert process.stdout is not None
        self._stdout = process.stdout
        os.set_blocking(self._stdout.fileno(), False)

    def log_fileno(self) -> int:
        return self._stdout.fileno()

    def read_output(self) -> bytes:
        chunks = []
        while True:
            try:
                chunk = os.read(self._stdout.fileno(), _OUTPUT_CHUNK)
            except BlockingIOError:
                break
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)

    def exit_reason(self) -> str | None:
        returncode = self._process.poll()
        return None if returncode is None else describe_exit(returncode)

    def max_memory_used_mb(self) -> int:
        try:
            status = Path(f"/proc/{self._process.pid}/status").read_text()
        except OSError:
            return 0
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return math.ceil(int(line.split()[1]) / 1024)
        return 0

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait()
        self._stdout.close()
        _remove_folder(self._tmp_dir)


class ProcessSandboxBackend(SandboxBackend):
    isolates = False
    runtime_api_bind_host = "127.0.0.1"

    def __init__(self, python: str | None = None) -> None:
        self.python = python or sys.executable

    def supports_stem(self, runtime: str) -> bool:
        return has_stem(runtime) and bool(RUNTIMES[runtime].stem_program)

    def start(self, spec: EnvironmentSpec, *, runtime_api_port: int) -> Sandbox:
        tmp_dir = Path(settings.STRATUS_SANDBOX_DIR) / spec.environment_id / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        code_dir = spec.code_dir
        command = [self.python, "-m", "awslambdaric", spec.handler]
        if spec.stem:
            if not self.supports_stem(spec.runtime):
                raise SandboxError(f"the {spec.runtime} runtime has no stem program")
            recipe = RUNTIMES[spec.runtime]
            code_dir = tmp_dir.parent / _STEM_TASK_FOLDER
            code_dir.mkdir(mode=0o755)
            command = [self.python, str(recipe.recipe_dir / recipe.stem_program)]
        added = {
            "AWS_LAMBDA_RUNTIME_API": f"{self.runtime_api_bind_host}:{runtime_api_port}",
            "LAMBDA_TASK_ROOT": str(code_dir),
            "TMPDIR": str(tmp_dir),
        }
        environment = {**spec.environment, **added}
        try:
            process = subprocess.Popen(
                command,
                cwd=code_dir,
                env=environment,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except OSError as exc:
            raise SandboxError(f"could not start the runtime: {exc}") from exc
        with contextlib.suppress(ProcessLookupError):
            resource.prlimit(process.pid, resource.RLIMIT_NOFILE, (_FILE_DESCRIPTORS,) * 2)
            resource.prlimit(process.pid, resource.RLIMIT_CORE, (0, 0))
        # Who owns this environment, so a later worker can remove it if this one dies.
        (tmp_dir.parent / _OWNER_FILE).write_text(f"{os.getpid()} {process.pid}")
        sandbox = ProcessSandbox(spec.environment_id, process, tmp_dir.parent)
        sandbox.backend_environment = added
        if spec.stem:
            sandbox.stem_code_dir = code_dir
        return sandbox

    def remove_orphans(self) -> int:
        """Kill environments whose worker process is gone (it was killed outright)."""
        removed = 0
        root = Path(settings.STRATUS_SANDBOX_DIR)
        for owner_file in root.glob(f"*/{_OWNER_FILE}"):
            try:
                worker_pid, runtime_pid = (int(part) for part in owner_file.read_text().split())
            except (OSError, ValueError):
                continue
            if worker_pid == os.getpid() or _is_alive(worker_pid):
                continue
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(runtime_pid, signal.SIGKILL)
            _remove_folder(owner_file.parent)
            removed += 1
        return removed


def _remove_folder(folder: Path) -> None:
    # A stem cell's task root is made read-only once it holds the function's code.
    for path in [folder, *folder.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            with contextlib.suppress(OSError):
                path.chmod(0o755)
    shutil.rmtree(folder, ignore_errors=True)


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
