"""The temporary Prefect server the CLI starts without PREFECT_API_URL (tasks/service/prefect_api.py); its
start, and its child going away on SIGTERM, run end to end in tests/faults/test_interrupt_and_modes.py."""

from __future__ import annotations

import pytest

from tasks.errors import PipelineError
from tasks.service.prefect_api import TemporaryServer, on_the_temporary_server, require_real_server


def test_a_server_that_does_not_come_up_is_one_clear_error(monkeypatch):
    monkeypatch.setattr("tasks.service.prefect_api.sys.executable", "/bin/false")  # exits at once, status 1
    server = TemporaryServer().start()
    with pytest.raises(PipelineError) as info:
        server.join()
    assert "Prefect's temporary server did not come up at http://127.0.0.1:" in str(info.value)
    assert "(it exited with status 1)" in str(info.value) and "set PREFECT_API_URL" in str(info.value)
    assert server.process is not None and server.process.poll() == 1
    server.stop()
    assert server.process is None


def test_runs_report_to_it_without_heartbeats_and_dask_still_needs_a_real_server(monkeypatch):
    from prefect.settings import PREFECT_API_URL, PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings

    class Up(TemporaryServer):
        def _start(self) -> None:
            self.api_url = "http://127.0.0.1:9/api"

    with temporary_settings(updates={PREFECT_API_URL: None}):
        with on_the_temporary_server(Up().start()):
            assert PREFECT_API_URL.value() == "http://127.0.0.1:9/api"
            assert PREFECT_FLOWS_HEARTBEAT_FREQUENCY.value() is None
            with pytest.raises(PipelineError, match="needs a real Prefect server"):
                require_real_server("tcp://127.0.0.1:8786")
        assert PREFECT_API_URL.value() is None
    real = temporary_settings(
        updates={PREFECT_API_URL: "http://127.0.0.1:4200/api", PREFECT_FLOWS_HEARTBEAT_FREQUENCY: 30}
    )
    with real, on_the_temporary_server(None):  # a real server: left as it is
        require_real_server("tcp://127.0.0.1:8786")
        assert PREFECT_FLOWS_HEARTBEAT_FREQUENCY.value() == 30


def test_a_server_that_cannot_start_at_all_is_one_line_not_a_thread_traceback(monkeypatch, capfd):
    """No loopback interface (a sandbox's `unshare -rn`): binding a port fails inside the starting
    thread; join() says so in one line instead of the thread dying and the runs hanging."""

    def no_loopback():
        raise OSError(99, "Cannot assign requested address")

    monkeypatch.setattr("tasks.service.prefect_api.free_port", no_loopback)
    server = TemporaryServer().start()
    with pytest.raises(PipelineError) as info:
        server.join()
    assert str(info.value) == (
        "Prefect's temporary server could not start (OSError: [Errno 99] Cannot assign requested address); is the "
        "loopback interface up? Set PREFECT_API_URL to a running Prefect server instead"
    )
    assert "Traceback" not in capfd.readouterr().err
