"""The baseline's feature-lookup hop: V2 transaction in, online features, MLServer, probability out.

The stock way to put a feature lookup in front of a model server (a KServe "transformer"):
a small FastAPI service takes the same V2 request as our scorer (one tensor per transaction
field), reads the customers' and terminals' entity state with Feast's
``FeatureStore.get_online_features`` (feature service ``online_state_v1``, one call for the
whole request), computes the 19 features with the platform's own online definition
(:func:`fraudrisk.features.online.feature_vector`), sends them to MLServer's V2 endpoint as
one FP32 ``[n, 19]`` tensor over a keep-alive ``httpx.AsyncClient``, and answers
``risk_score`` = the booster's (uncalibrated) ``predict_proba``. No calibration, decision or
reason codes: it does strictly less than our scorer. Run in the project's venv::

    python benchmarks/baseline_mlserver/hop.py --port P --mlserver http://127.0.0.1:Q \
        --features REPO/fraud-risk-xgb/feature_names.json

``FRAUDRISK_HOME`` says where the Feast repository is.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse

from fraudrisk.features.online import CustomerState, IncomingTransaction, TerminalState
from fraudrisk.features.state import CUSTOMER_STATE_COLUMNS, TERMINAL_STATE_COLUMNS

MLSERVER_MODEL = "fraud-risk-xgb"
STATE_SERVICE = "online_state_v1"


@dataclass
class Hop:
    """What the hop holds open: the Feast store, the MLServer client, the model's inputs."""

    store: Any
    service: Any
    client: httpx.AsyncClient
    infer_url: str
    feature_names: list[str]

    def vectors(self, txs: list[IncomingTransaction]) -> list[float]:
        """The feature rows of ``txs``, flattened, from one online lookup (the stock call)."""
        from fraudrisk.features.online import feature_vector

        rows = [{"customer_id": tx.customer_id, "terminal_id": tx.terminal_id} for tx in txs]
        online = self.store.get_online_features(
            features=self.service, entity_rows=rows, full_feature_names=True
        ).to_dict()
        flat: list[float] = []
        for i, tx in enumerate(txs):
            customer = CustomerState(
                **{c: _list(online, "customer_state", c, i) for c in CUSTOMER_STATE_COLUMNS}
            )
            terminal = TerminalState(
                **{c: _list(online, "terminal_state", c, i) for c in TERMINAL_STATE_COLUMNS}
            )
            values = feature_vector(tx, customer, terminal)
            flat.extend(values[name] for name in self.feature_names)
        return flat

    async def probabilities(self, flat: list[float], n: int) -> list[float]:
        """P(fraud) of ``n`` feature rows from MLServer's V2 endpoint."""
        request = {
            "inputs": [
                {"name": "input-0", "datatype": "FP32", "shape": [n, len(flat) // n], "data": flat}
            ],
            "outputs": [{"name": "predict_proba"}],
        }
        response = await self.client.post(self.infer_url, json=request)
        if response.status_code != 200:
            raise HTTPException(502, f"MLServer answered {response.status_code}")
        data = response.json()["outputs"][0]["data"]
        return [float(p) for p in data[1::2]]


def _list(online: dict[str, list[Any]], view: str, column: str, row: int) -> list[Any]:
    value = online.get(f"{view}__{column}", [None] * (row + 1))[row]
    return list(value) if value is not None else []


def parse_transactions(body: dict[str, Any]) -> list[IncomingTransaction]:
    """The transactions of a V2 request (one tensor per field); 400 when malformed."""
    try:
        data = {tensor["name"]: tensor["data"] for tensor in body["inputs"]}
        return [
            IncomingTransaction(int(tid), _seconds(stamp), int(cid), int(term), float(amount))
            for tid, stamp, cid, term, amount in zip(
                data["transaction_id"],
                data["tx_datetime"],
                data["customer_id"],
                data["terminal_id"],
                data["tx_amount"],
                strict=True,
            )
        ]
    except (KeyError, TypeError, ValueError) as error:
        raise HTTPException(400, f"bad V2 request: {type(error).__name__}: {error}") from None


def _seconds(stamp: str) -> int:
    moment = dt.datetime.fromisoformat(stamp)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp())


def build_app(mlserver: str, features_file: Path) -> FastAPI:
    """The hop's FastAPI app (the store and the client open at start-up)."""
    holder: dict[str, Hop] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        from fraudrisk.config import get_settings
        from fraudrisk.features.feast_store import get_store

        store = get_store(get_settings())
        async with httpx.AsyncClient(timeout=10.0) as client:
            holder["hop"] = Hop(
                store,
                store.get_feature_service(STATE_SERVICE),
                client,
                f"{mlserver}/v2/models/{MLSERVER_MODEL}/infer",
                json.loads(features_file.read_text()),
            )
            yield

    app = FastAPI(lifespan=lifespan)

    @app.get("/v2/models/{name}/ready")
    async def ready(name: str) -> dict[str, Any]:
        answer = await holder["hop"].client.get(f"{mlserver}/v2/models/{MLSERVER_MODEL}/ready")
        if answer.status_code != 200:
            raise HTTPException(503, "MLServer model not ready")
        return {"name": name, "ready": True}

    @app.post("/v2/models/{name}/infer")
    async def infer(name: str, request: Request) -> JSONResponse:
        hop = holder["hop"]
        txs = parse_transactions(await request.json())
        risk = await hop.probabilities(hop.vectors(txs), len(txs))
        output = {"name": "risk_score", "datatype": "FP64", "shape": [len(risk)], "data": risk}
        return JSONResponse({"model_name": name, "outputs": [output]})

    return app


def main() -> None:
    """Serve the hop on 127.0.0.1 until stopped."""
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mlserver", required=True, help="MLServer base URL.")
    parser.add_argument("--features", type=Path, required=True, help="feature_names.json")
    args = parser.parse_args()
    app = build_app(args.mlserver.rstrip("/"), args.features)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
