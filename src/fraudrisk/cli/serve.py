"""``fraudrisk serve``: the scorer in KServe's ModelServer, from a manifest or the settings."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from fraudrisk.config import get_settings
from fraudrisk.console import err_console, examples

if TYPE_CHECKING:
    from fraudrisk.serving.kserve_model import ServiceSpec

app = typer.Typer()


@app.command(
    "serve",
    epilog=examples(
        "fraudrisk serve --manifest manifests/local/inferenceservice.yaml --http-port 8080",
        "fraudrisk serve --model-uri models:/fraud-risk/3 --workers 2",
        "curl -s localhost:8080/v2/models/fraud-risk/ready",
    ),
)
def serve(
    manifest: Annotated[
        Path | None,
        typer.Option(
            help="An InferenceService YAML to run locally (default + canary, A/B or shadow).",
            exists=True,
            dir_okay=False,
        ),
    ] = None,
    model_uri: Annotated[
        str | None, typer.Option(help="Serve this model alone (default: settings' model_uri).")
    ] = None,
    http_port: Annotated[
        int | None, typer.Option(help="HTTP port (default: FRAUDRISK_SERVING__HTTP_PORT).")
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0 in a pod).")] = (
        "127.0.0.1"
    ),
    watch: Annotated[
        bool, typer.Option(help="Reload when the manifest changes (fraudrisk canary ...).")
    ] = True,
    retry_seconds: Annotated[
        float, typer.Option(help="Seconds between load attempts while not ready.")
    ] = 30.0,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            help="Processes sharing the port, each with its own model copy (default: "
            "FRAUDRISK_SERVING__WORKERS; one per core).",
        ),
    ] = None,
) -> None:
    """Serve the fraud-risk model over KServe V1 and V2 until Ctrl-C (SIGTERM drains).

    With --manifest, the InferenceService's models and traffic split run in this process:
    ``canaryTrafficPercent`` splits requests at random between the stable and the canary
    model, ``traffic-mode: ab`` sticks each customer to one variant, ``shadow`` scores with
    the candidate without returning it. Metrics per variant on /metrics (summed over the
    workers). With --workers N, N processes share the port, each loading (and following the
    manifest) on its own, as N replicas would.
    """
    from fraudrisk.policy.live import live_policy  # heavy: the policy engine, sqlalchemy
    from fraudrisk.serving.kserve_model import FraudRiskModel, ServiceSpec  # heavy: kserve
    from fraudrisk.serving.server import run
    from fraudrisk.serving.workers import LOG_FORMAT

    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    if manifest is not None:
        spec = _plan_spec(manifest)
    else:
        spec = ServiceSpec.from_settings(get_settings())
        if model_uri:
            spec = ServiceSpec(model_uri, None, spec.split, spec.name)
    settings = get_settings()
    count = workers or settings.serving.workers
    port = http_port or settings.serving.http_port
    model = FraudRiskModel(spec, settings, policy_factory=live_policy)
    where = f"serving {spec.name} on http://{host}:{port}"
    if count > 1:
        err_console.print(f"{where} — {count} workers, each loading {spec.stable_uri}")
    else:
        if not model.load():  # loaded here so the line below says what serves
            model.keep_loading(retry_seconds)
        err_console.print(f"{where} — {model.describe()}")
    run(model, port, host, count, retry_seconds, manifest if watch else None)


def _plan_spec(manifest: Path) -> ServiceSpec:
    """The spec of a manifest (its settings exported first); exit 2 with the field on error."""
    from fraudrisk.serving.local import apply_env, spec_from_plan  # heavy: numpy, pyarrow
    from fraudrisk.serving.manifest import ManifestError, load_plan

    try:
        plan = load_plan(manifest)
    except ManifestError as error:
        err_console.print(f"[red]error:[/red] {manifest}: {error}")
        raise typer.Exit(2) from None
    if apply_env(plan):
        get_settings.cache_clear()
    return spec_from_plan(plan)
