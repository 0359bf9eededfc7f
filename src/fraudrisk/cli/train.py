"""CLI of the training stage: ``fraudrisk train`` and ``fraudrisk evaluate``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.table import Table

from fraudrisk.config import MODEL_URI, Settings, get_settings
from fraudrisk.console import console, err_console, examples
from fraudrisk.training.recipes import Recipe

app = typer.Typer()


def default_table_uri() -> str:
    """The feature table under FRAUDRISK_HOME."""
    return get_settings().feature_table_uri


def require_feature_table(table_uri: str) -> None:
    """Exit 2 with a one-line hint when the feature table has no day partition."""
    from fraudrisk.features.table import FeatureTable  # heavy: pyarrow, numpy

    try:
        days = FeatureTable.open(table_uri).partitions.days()
    except (FileNotFoundError, OSError):
        days = []
    if not days:
        err_console.print(
            f"[red]error:[/red] no feature table at {table_uri}: "
            "run `fraudrisk features build` first"
        )
        raise typer.Exit(2)


def recipe_of_model(settings: Settings, model_uri: str) -> Any:
    """The recipe recorded (run param ``recipe``) with a registered version or alias.

    Raises:
        ValueError: If the URI is not ``models:/<name>/<version>`` or ``models:/<name>@<alias>``,
            or the run recorded no recipe.
    """
    from fraudrisk.registry.mlflow_io import mlflow_client  # heavy: mlflow

    match = MODEL_URI.match(model_uri)
    if match is None:
        raise ValueError(
            f"not a registry URI (models:/NAME/VERSION or models:/NAME@ALIAS): {model_uri}"
        )
    client = mlflow_client(settings)
    name = match["name"]
    if match["version"]:
        found = client.get_model_version(name, match["version"])
    else:
        found = client.get_model_version_by_alias(name, match["alias"])
    text = client.get_run(found.run_id).data.params.get("recipe") if found.run_id else None
    if text is None:
        raise ValueError(f"{model_uri} has no recorded recipe (run param 'recipe')")
    return Recipe.from_json(text)


@app.command(
    "train",
    epilog=examples(
        "fraudrisk train --trials 20 --timeout 600",
        "fraudrisk train --recipe TUNED_56DAY --bootstrap",
        "fraudrisk train --table /data/features --lake /data/lake --trials 0",
    ),
)
def train(
    table: Annotated[
        str | None, typer.Option(help="Feature table URI; default HOME/features.")
    ] = None,
    lake: Annotated[str | None, typer.Option(help="Lake URI; default: settings.")] = None,
    trials: Annotated[int, typer.Option(help="Optuna trials (0 = the recorded recipe).")] = 20,
    timeout: Annotated[float | None, typer.Option(help="Tuning time budget, seconds.")] = None,
    recipe: Annotated[
        str | None, typer.Option(help="Train a recorded recipe (e.g. TUNED_56DAY), no tuning.")
    ] = None,
    bootstrap: Annotated[
        bool, typer.Option(help="Make a passing model champion when there is none.")
    ] = False,
    workdir: Annotated[
        Path | None, typer.Option(help="Where the stages write; default HOME/training/<time>.")
    ] = None,
) -> None:
    """Tune, train, calibrate, evaluate, gate and register a model (challenger if it passes)."""
    from fraudrisk.training.run import run_training  # heavy: mlflow, optuna, sklearn

    settings = get_settings()
    table_uri, lake_uri = table or default_table_uri(), lake or settings.lake_uri
    require_feature_table(table_uri)
    out = workdir or settings.home / "training" / time.strftime("%Y%m%d-%H%M%S")
    began = time.perf_counter()
    try:
        result = run_training(
            settings,
            table_uri=table_uri,
            lake_uri=lake_uri,
            n_trials=trials,
            timeout_s=timeout,
            recipe_name=recipe,
            bootstrap=bootstrap,
            workdir=out,
        )
    except ValueError as error:
        err_console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None
    console.print(_train_table(result, time.perf_counter() - began))


def _train_table(result: Any, seconds: float) -> Table:
    from fraudrisk.training.steps import BOOK_BEST  # heavy: mlflow, sklearn

    table = Table(title=f"Training run ({seconds:.0f} s)")
    table.add_column("")
    table.add_column("value")
    table.add_column("book's best")
    table.add_row("model version", result.version.model_uri, "")
    table.add_row("aliases", ", ".join(result.aliases) or "none", "")
    verdict = "passed" if result.gate.passed else "rejected"
    table.add_row("gate", "\n".join([verdict, *result.gate.reasons]), "")
    table.add_row("compared with", result.gate.comparison, "")
    compared = result.gate.head_to_head
    if compared is not None:
        for name in ("average_precision", "card_precision_at_100"):
            ours, theirs = compared.candidate[name], compared.champion[name]
            table.add_row(f"hold-out {name}", f"candidate {ours:.3f} · champion {theirs:.3f}", "")
    table.add_row("recipe", f"{result.recipe.model}, {result.recipe.window_days}-day window", "")
    folds = result.metrics["test_folds"]
    for name, best in BOOK_BEST.items():
        value = f"{folds['mean'][name]:.3f} ± {folds['std'][name]:.3f}"
        table.add_row(f"test folds {name}", value, f"{best:.3f}")
    table.add_row("artifacts", str(result.artifacts["metrics"].parent), "")
    return table


@app.command(
    "evaluate",
    epilog=examples(
        "fraudrisk evaluate --model models:/fraud-risk/1 --lake data/lake --json",
        "fraudrisk evaluate --recipe TUNED_56DAY --lake data/lake --table data/features",
    ),
)
def evaluate(
    lake: Annotated[str, typer.Option(help="Lake URI holding the labels.")],
    model: Annotated[
        str | None, typer.Option(help="models:/NAME/VERSION or models:/NAME@ALIAS.")
    ] = None,
    recipe: Annotated[str | None, typer.Option(help="A recorded recipe name instead.")] = None,
    table: Annotated[
        str | None, typer.Option(help="Feature table URI; default HOME/features.")
    ] = None,
    protocol: Annotated[
        Literal["handbook"], typer.Option(help="Evaluation protocol.")
    ] = "handbook",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """Retrain a model's recorded recipe under the handbook protocol and print its metrics."""
    from fraudrisk.training.dataset import load_frame  # heavy: pandas, sklearn
    from fraudrisk.training.protocol import evaluate_recipe
    from fraudrisk.training.run import resolve_recipe

    if (model is None) == (recipe is None):
        err_console.print("[red]error:[/red] give exactly one of --model and --recipe")
        raise typer.Exit(2)
    table_uri = table or default_table_uri()
    require_feature_table(table_uri)
    try:
        chosen = recipe_of_model(get_settings(), model) if model else resolve_recipe(str(recipe))
        result = evaluate_recipe(load_frame(table_uri, lake), chosen)
    except ValueError as error:
        err_console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    out = Table(title=f"{protocol} protocol: {model or recipe}")
    for column in ("split", "auc_roc", "average_precision", "card_precision_at_100"):
        out.add_column(column)
    rows = [("baseline", result["baseline"])] + [
        (f"test folds {k}", v) for k, v in result["test_folds"].items()
    ]
    for name, values in rows:
        out.add_row(name, *(f"{values[m]:.3f}" for m in list(values)))
    console.print(out)
