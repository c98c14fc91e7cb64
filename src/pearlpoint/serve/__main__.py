"""``python -m pearlpoint.serve --config FILE``: the proxy without the ``pearl`` CLI."""

from __future__ import annotations

import argparse
import logging
import sys

from pearlpoint.errors import PearlError


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m pearlpoint.serve", description=__doc__)
    ap.add_argument("--config", "-c", default=None)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8088)
    ap.add_argument("--log-level", default="info")
    ap.add_argument("--no-warm-up", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        from pearlpoint.serve.app import Proxy
        from pearlpoint.serve.config import load_config
        from pearlpoint.serve.server import serve_forever

        proxy = Proxy(load_config(args.config), warm_up=not args.no_warm_up, install_sighup=True)
        serve_forever(proxy, args.host, args.port, log_level=args.log_level)
    except PearlError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
