"""The MLOps Zoomcamp streaming example, rebuilt from its published behaviour, as the benchmarks' reference.

Model: `DictVectorizer` + `LinearRegression` on `PU_DO` (the zone pair as a string) and
`trip_distance`, saved as an `mlflow.pyfunc` model and loaded with `mlflow.pyfunc.load_model`.
Handler: decode each Kinesis record, one `predict` per record, one `PutRecord` per prediction.
Not shipped in any Lambda; `benchmarks/` only.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
import pandas as pd
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline, make_pipeline

from training.data import concat, load_months

MODEL_NAME = "ride_duration_prediction_model"


def course_features(ride: dict[str, Any]) -> dict[str, Any]:
    return {"PU_DO": f"{ride['PULocationID']}_{ride['DOLocationID']}", "trip_distance": ride["trip_distance"]}


class CourseModel(mlflow.pyfunc.PythonModel):  # type: ignore[name-defined]
    """The course's pipeline behind pyfunc: a DataFrame of feature dicts' rows in, minutes out."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> np.ndarray:
        return np.asarray(self.pipeline.predict(model_input.to_dict(orient="records")))


def frame_dicts(frame: pd.DataFrame) -> list[dict[str, Any]]:
    pu = frame["PULocationID"].astype(int).astype(str)
    do = frame["DOLocationID"].astype(int).astype(str)
    return [
        {"PU_DO": f"{a}_{b}", "trip_distance": d}
        for a, b, d in zip(pu, do, frame["trip_distance"], strict=True)
    ]


def train_course_model(train_files: list[str], out_dir: Path) -> Path:
    """Fit the course's pipeline on the same cleaned months as ours and save it as a pyfunc model."""
    frame = concat(load_months(train_files))
    pipeline = make_pipeline(DictVectorizer(), LinearRegression())
    pipeline.fit(frame_dicts(frame), frame["duration"].to_numpy())
    path = out_dir / "course_model"
    mlflow.pyfunc.save_model(str(path), python_model=CourseModel(pipeline))
    return path


class CourseHandler:
    """The course's `lambda_handler`, with its Kinesis client passed in (a fake in benchmarks)."""

    def __init__(self, model: Any, kinesis_client: Any, stream_name: str = "ride_predictions") -> None:
        self.model, self.kinesis, self.stream = model, kinesis_client, stream_name

    def __call__(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        predictions = []
        for record in event["Records"]:
            ride_event = json.loads(base64.b64decode(record["kinesis"]["data"]).decode("utf-8"))
            ride_id = ride_event["ride_id"]
            prediction = float(self.model.predict(pd.DataFrame([course_features(ride_event["ride"])]))[0])
            prediction_event = {
                "model": MODEL_NAME,
                "version": "123",
                "prediction": {"ride_duration": prediction, "ride_id": ride_id},
            }
            self.kinesis.put_record(
                StreamName=self.stream, Data=json.dumps(prediction_event), PartitionKey=str(ride_id)
            )
            predictions.append(prediction_event)
        return {"predictions": predictions}
