"""The Jupyter kernel manager of `run-notebook`: the kernel process's own stderr goes to a log file.

What a notebook's code prints reaches the executed notebook through Jupyter's messages either
way. The kernel *process* also writes to its stderr: ipykernel's start-up notices and, when
the run is interrupted (Ctrl-C) while a cell runs, a ZeroMQ traceback from the kernel being
shut down mid-reply, about 20 lines around the one line that matters. `run-notebook` sends
that stream to a log in the kernel's private folder and shows its end only when the kernel
failed for a reason of its own (it died, it could not start), never after a Ctrl-C.
"""
from __future__ import annotations

from jupyter_client.manager import AsyncKernelManager
from traitlets import Unicode


class LoggedKernelManager(AsyncKernelManager):
    """AsyncKernelManager (nbclient's default) whose kernel process writes its stderr to `stderr_log`."""

    stderr_log = Unicode("", config=True, help="file that receives the kernel process's stderr ('' = inherit)")

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        if not self.stderr_log or "stderr" in kw:
            return await super()._async_launch_kernel(kernel_cmd, **kw)
        with open(self.stderr_log, "ab") as log:  # the child keeps its own copy of the descriptor
            kw["stderr"] = log
            return await super()._async_launch_kernel(kernel_cmd, **kw)
