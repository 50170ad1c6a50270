"""`pachd`: the server's entry point."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Sequence

from pachd import allocator
from pachd import config as pachd_config
from pachd import loopwatch
from pachd.app import serve
from pachd.executor import overlay


def main(argv: Sequence[str] | None = None) -> None:
    private = overlay.keep_mounts_private()  # first: it needs pachd to have one thread
    allocator.keep_freed_buffers()
    config = pachd_config.load(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=getattr(logging, config.log_level, logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("grpc").setLevel(logging.INFO)  # its debug lines say nothing about requests
    if private:
        logging.getLogger(__name__).info("%s", private)
    asyncio.run(_run(config))


async def _run(config: pachd_config.PachdConfig) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    if config.slow_callback > 0:
        loopwatch.watch(config.slow_callback)
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await serve(config, stop)


if __name__ == "__main__":
    main()
