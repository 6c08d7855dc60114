"""Where the runs of a sweep execute: local worker processes, or Ray tasks. Both have one small protocol:

    submit(argv, folder, threads, pythonpath) -> key    start a run (:func:`runner.run_one`)
    wait(pending) -> [(key, record), ...]              the runs finished since, at least one
    stop(pending)                                       stop every run (each keeps its checkpoint), then close
    close()                                             release the workers
"""

from __future__ import annotations

import socket
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from ..parallel import usable_cores
from . import runner


class ProcessExecutor:
    """Up to ``workers`` runs at a time on this machine, each a process started by a worker thread."""

    def __init__(self, workers: int) -> None:
        runner.allow_starts()
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="tinynn-sweep")

    def submit(self, *args):
        return self.pool.submit(runner.run_one, *args)

    def wait(self, pending):
        done, _ = wait(pending, return_when=FIRST_COMPLETED)
        return [(f, f.result()) for f in done]

    def stop(self, pending) -> None:
        for f in pending:
            f.cancel()
        runner.stop_all()
        self.pool.shutdown(wait=True, cancel_futures=True)

    def close(self) -> None:
        self.pool.shutdown(wait=True)


def check_address(address: str) -> None:
    """Fail fast (seconds, not minutes) when a Ray address cannot be reached."""
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rsplit("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"sweep: Ray address {address!r} should be HOST:PORT (e.g. 10.0.0.5:6379) or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        raise ValueError(f"sweep: cannot reach the Ray cluster at {address} ({e.strerror or e}); is "
                         f"'ray start --head' running there, and the port open?") from None


class RayExecutor:
    """Each run a Ray task asking for ``threads`` CPUs, on the cluster at ``address`` or a local Ray."""

    def __init__(self, address: str | None, threads: int) -> None:
        try:
            import ray
        except ImportError:
            raise ValueError('sweep: --executor ray needs Ray: pip install "tinynn[ray]"') from None
        self.ray = ray
        if address:
            check_address(address)
        self.started = not ray.is_initialized()
        if self.started:
            kwargs = {"address": address} if address else {"num_cpus": usable_cores()}
            try:
                ray.init(**kwargs, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
            except Exception as e:  # noqa: BLE001 - Ray raises ConnectionError, RuntimeError, ...
                raise ValueError(f"sweep: cannot start or join Ray ({type(e).__name__}: {e})") from None
        self.task = ray.remote(num_cpus=threads, max_retries=0)(runner.run_one)

    def submit(self, *args):
        return self.task.remote(*args)

    def wait(self, pending):
        done, _ = self.ray.wait(list(pending), num_returns=1)
        return [(ref, self.ray.get(ref)) for ref in done]

    def stop(self, pending) -> None:
        for ref in pending:
            self.ray.cancel(ref)  # a running task gets KeyboardInterrupt and passes SIGINT on to its run
        for ref in pending:
            try:
                self.ray.get(ref, timeout=60)
            except Exception:  # noqa: BLE001, S110 - cancelled tasks raise; their runs record themselves
                pass
        self.close()

    def close(self) -> None:
        if self.started:
            self.ray.shutdown()
