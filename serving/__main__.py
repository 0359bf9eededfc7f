"""Entrypoint of the scorer container.

``python -m serving --model_name fraud-risk --http_port 8080 [--workers 2]``.

The model and its traffic split come from ``FRAUDRISK_SERVING__*`` (set by the InferenceService
manifest); KServe's own flags (``--http_port``, ``--model_name``, ``--workers``) are honoured.
"""

from __future__ import annotations

import argparse
import logging

from fraudrisk.config import get_settings
from fraudrisk.serving.kserve_model import ServiceSpec
from fraudrisk.serving.server import serve
from fraudrisk.serving.workers import LOG_FORMAT


def main() -> None:
    """Parse KServe's flags, then serve until SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model_name", default=None, help="Served name (default: settings).")
    parser.add_argument("--http_port", type=int, default=None, help="HTTP port (default 8080).")
    parser.add_argument(
        "--retry_seconds",
        type=float,
        default=30.0,
        help="Seconds between load attempts while the model is not ready.",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="Processes sharing the port, each with its own model (default: settings).",
    )
    args, _ = parser.parse_known_args()
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    settings = get_settings()
    spec = ServiceSpec.from_settings(settings)
    if args.model_name:
        spec = ServiceSpec(spec.stable_uri, spec.candidate_uri, spec.split, args.model_name)
    if args.workers is not None and args.workers < 1:
        parser.error("--workers must be at least 1")
    port = args.http_port or settings.serving.http_port
    serve(spec, settings, port, args.retry_seconds, args.workers)


if __name__ == "__main__":
    main()
