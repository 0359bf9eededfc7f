"""``fraudrisk kafka``: run a local single-node Kafka broker (KRaft) in the background."""

from __future__ import annotations

import shutil
from typing import Annotated

import typer
from rich.table import Table

from fraudrisk.config import Settings, get_settings
from fraudrisk.console import console, err_console, examples
from fraudrisk.io.jars import JarResolutionError, resolve_jars

app = typer.Typer(
    name="kafka",
    help="A local single-node Apache Kafka broker (KRaft, 127.0.0.1 only) for the platform.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
_LOOPBACK_HOSTS = {"127.0.0.1", "localhost"}


def _with_bootstrap(settings: Settings, bootstrap: str) -> Settings:
    kafka = settings.kafka.model_copy(update={"bootstrap_servers": bootstrap})
    return settings.model_copy(update={"kafka": kafka})


def _choose_port(settings: Settings, port: int | None) -> int | None:
    """The requested port, else the settings' port if it is loopback and free, else None."""
    from fraudrisk.io.kafka_broker import port_is_free  # heavy: confluent_kafka

    if port is not None:
        return port
    host, _, text = settings.kafka.bootstrap_servers.split(",")[0].strip().rpartition(":")
    if host in _LOOPBACK_HOSTS and text.isdigit() and port_is_free(int(text)):
        return int(text)
    return None


@app.command(
    "up",
    epilog=examples(
        "fraudrisk kafka up",
        "FRAUDRISK_KAFKA__BOOTSTRAP_SERVERS=127.0.0.1:19092 fraudrisk kafka up",
        "fraudrisk kafka up --port 29092",
    ),
)
def up(
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="Client port on 127.0.0.1.")
    ] = None,
) -> None:
    """Start the broker in the background and create the platform's topics.

    The port is --port, else the one of FRAUDRISK_KAFKA__BOOTSTRAP_SERVERS if it is a free
    loopback port, else any free port. Data stays under FRAUDRISK_HOME/kafka/data across
    restarts. The first run resolves the broker jars with Maven (about a minute).
    """
    from fraudrisk.io.kafka import ensure_topics  # heavy: confluent_kafka
    from fraudrisk.io.kafka_broker import KafkaBrokerError, LocalKafkaBroker

    settings = get_settings()
    running = LocalKafkaBroker.from_state()
    if running is not None and running.is_running():
        console.print(f"kafka broker already running at [bold]{running.bootstrap}[/bold]")
        _print_export(running.bootstrap)
        return
    try:
        err_console.print("resolving Kafka broker jars (Maven, cached after the first run)…")
        broker = LocalKafkaBroker(resolve_jars("kafka"))
        with err_console.status("starting the Kafka broker…"):
            bootstrap = broker.start(port=_choose_port(settings, port), detached=True)
    except (JarResolutionError, KafkaBrokerError) as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    broker.save_state()
    topics = ensure_topics(_with_bootstrap(settings, bootstrap))
    console.print(f"kafka broker up at [bold]{bootstrap}[/bold] (pid {broker.pid})")
    console.print(f"topics: {', '.join(topics)}; log: {broker.log_path}", soft_wrap=True)
    _print_export(bootstrap)


def _print_export(bootstrap: str) -> None:
    if get_settings().kafka.bootstrap_servers != bootstrap:
        console.print("point the platform at it with:")
    console.print(f"export FRAUDRISK_KAFKA__BOOTSTRAP_SERVERS={bootstrap}", soft_wrap=True)


@app.command(
    "down",
    epilog=examples("fraudrisk kafka down", "fraudrisk kafka down --purge"),
)
def down(
    purge: Annotated[
        bool, typer.Option("--purge", help="Also delete the broker's data (topics, offsets).")
    ] = False,
) -> None:
    """Stop the background broker (SIGTERM, then SIGKILL after 30 s)."""
    from fraudrisk.io.kafka_broker import LocalKafkaBroker, state_path  # heavy: confluent_kafka

    broker = LocalKafkaBroker.from_state()
    if broker is None or not broker.is_running():
        console.print("no kafka broker running")
    else:
        with err_console.status(f"stopping the Kafka broker (pid {broker.pid})…"):
            broker.stop()
        console.print(f"kafka broker at {broker.bootstrap} stopped")
    state_path().unlink(missing_ok=True)
    if purge:
        data_dir = broker.data_dir if broker else get_settings().kafka_data_dir
        if data_dir is not None:
            shutil.rmtree(data_dir, ignore_errors=True)
            console.print(f"deleted {data_dir}")


@app.command(
    "status",
    epilog=examples("fraudrisk kafka status", "fraudrisk kafka status || fraudrisk kafka up"),
)
def status() -> None:
    """Report whether the background broker runs, where, and its topics (exit 1 if not running)."""
    from fraudrisk.io.kafka import topic_partitions  # heavy: confluent_kafka
    from fraudrisk.io.kafka_broker import LocalKafkaBroker

    broker = LocalKafkaBroker.from_state()
    if broker is None or not broker.is_running():
        console.print("kafka broker: [red]not running[/red] (start it with: fraudrisk kafka up)")
        raise typer.Exit(1)
    console.print(f"kafka broker: [green]running[/green] at [bold]{broker.bootstrap}[/bold]")
    console.print(
        f"pid {broker.pid}; data {broker.data_dir}; log {broker.log_path}", soft_wrap=True
    )
    partitions = topic_partitions(_with_bootstrap(get_settings(), broker.bootstrap))
    table = Table(title="topics")
    table.add_column("topic")
    table.add_column("partitions", justify="right")
    for name, count in partitions.items():
        table.add_row(name, str(count))
    console.print(table)
