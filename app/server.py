"""terse served by uvicorn (`terse serve`, `python -m app`; the flags and start-up checks are
app/cli.py's), draining on SIGTERM: /readyz turns 503 at once, new compression requests get 503,
in-flight ones finish (up to TERSE_DRAIN_SECONDS), then the server stops and the process exits 0. A
second signal forces exit."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

import uvicorn

from .lifecycle import Lifecycle
from .main import create_app
from .settings import Settings

log = logging.getLogger("terse.main")


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, life: Lifecycle, drain_seconds: float) -> None:
        super().__init__(config)
        self.life, self.drain_seconds = life, drain_seconds
        self._draining = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Not uvicorn's handler: that one re-raises the signal after shutdown, and the process would
        # die by SIGTERM instead of exiting 0.
        if self._draining:
            log.warning("second signal: exiting now", extra={"fields": {"signal": signal.Signals(sig).name}})
            self.should_exit = self.force_exit = True
            return
        self._draining = True
        log.info("signal received: draining", extra={"fields": {"signal": signal.Signals(sig).name}})
        self.life.begin_drain()
        threading.Thread(target=self._drain, name="terse-drain", daemon=True).start()

    def _drain(self) -> None:
        self.life.wait_idle(self.drain_seconds)
        self.should_exit = True


def run(settings: Settings) -> int:
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        server_header=False,
        timeout_graceful_shutdown=5,
        lifespan="on",
    )
    server = DrainingServer(config, app.state.life, settings.drain_seconds)
    server.run()
    return 0
