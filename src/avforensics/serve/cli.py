"""`avforensics serve --model CKPT ...` (the HTTP service) and `avforensics serve-token --data DIR`."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add `serve` and `serve-token`."""
    serve = subparsers.add_parser(
        "serve", help="HTTP API and web page: upload videos, get reports (jobs persist)"
    )
    serve.add_argument("--model", action="append", required=True, metavar="CKPT",
                       help="checkpoint to offer (repeat for several detectors)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="bind address; beyond loopback a token is required")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--data", default="serve_data", help="folder of the job database and job files")
    serve.add_argument("--workers", type=int, default=1, help="processes scoring jobs")
    serve.add_argument("--max-upload-mb", type=float, default=1024, help="larger uploads get 413")
    serve.add_argument("--max-duration", type=float, default=1800, metavar="SECONDS",
                       help="longer videos get 413")
    serve.add_argument("--queue-limit", type=int, default=200, help="waiting jobs beyond this get 429")
    serve.add_argument("--require-token", action="store_true",
                       help="require an API token even on loopback (always required beyond it)")
    serve.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                       help="allow browser calls from this origin (repeatable; CORS is off by default)")
    serve.add_argument("--server-paths", metavar="DIR",
                       help="allow jobs on files under DIR on the server (POST /api/v1/jobs/path)")
    serve.add_argument("--batch-size", type=int, default=8, help="windows per forward pass")
    serve.add_argument("--device", default="cpu", help="torch device of the workers, e.g. cpu or cuda")
    serve.set_defaults(run=run_serve)

    token = subparsers.add_parser(
        "serve-token", help="make an API token for `avforensics serve` (shown once)"
    )
    token.add_argument("--data", default="serve_data", help="the server's data folder")
    token.add_argument("--name", default="", help="a note on who the token is for")
    token.add_argument("--revoke", metavar="TOKEN", help="forget this token instead of making one")
    token.set_defaults(run=run_token)


def run_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from avforensics.serve.app import create_app
    from avforensics.serve.settings import ServeSettings

    if args.workers < 0 or args.queue_limit < 1 or args.max_upload_mb <= 0 or args.max_duration <= 0:
        return _usage("--workers must be >= 0, --queue-limit >= 1, --max-upload-mb and --max-duration > 0")
    server_paths = Path(args.server_paths).absolute() if args.server_paths else None
    if server_paths is not None and not server_paths.is_dir():
        return _usage(f"--server-paths {args.server_paths}: not a folder")
    settings = ServeSettings(
        models=[Path(model) for model in args.model], data=Path(args.data).absolute(), host=args.host,
        port=args.port, workers=args.workers, max_upload_mb=args.max_upload_mb,
        max_duration_s=args.max_duration, queue_limit=args.queue_limit, require_token=args.require_token,
        cors_origins=args.cors_origin, server_paths=server_paths, batch_size=args.batch_size,
        device=args.device,
    )
    try:
        app = create_app(settings)
    except (OSError, ValueError, KeyError) as error:
        return _usage(str(error))
    log.info("serving %s on http://%s:%d (data in %s)", ", ".join(app.state.service.catalogue), args.host,
             args.port, settings.data)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", proxy_headers=True)
    return 0


def run_token(args: argparse.Namespace) -> int:
    from avforensics.serve.settings import ServeSettings
    from avforensics.serve.store import JobStore

    store = JobStore(ServeSettings(models=[], data=Path(args.data)).database)
    if args.revoke is None:
        print(store.add_token(args.name))
        return 0
    if store.revoke_token(args.revoke):
        print("token revoked")
        return 0
    print(f"avforensics serve-token: {args.data} has no such token", file=sys.stderr)
    return 1


def _usage(message: str) -> int:
    print(f"avforensics serve: error: {message}", file=sys.stderr)
    return 2
