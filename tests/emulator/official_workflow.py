"""The official SDK's documented batch workflow, run by whichever `cspark` release the running
interpreter has (tests/emulator/test_conformance_releases.py runs it in a venv per release).

`python official_workflow.py URL TENANT` prints one JSON object: the release, what create and
get_info answered, and every output row pulled. Standard library and `cspark` only.
"""

from __future__ import annotations

import json
import sys
import time
from importlib.metadata import version

import cspark.sdk as Spark

ROWS = 600


def main(url: str, tenant: str) -> None:
    spark = Spark.Client(base_url=Spark.BaseUrl(url, tenant), api_key="any-key", logger=False)
    batches = spark.batches
    data = [["policy_id", "age", "smoker", "cover", "term", "plan"]] + [
        [f"P{i:05d}", 20 + i % 50, "yes" if i % 3 == 0 else "no", 100_000 + i, 10 + i % 20, "gold"]
        for i in range(ROWS)
    ]
    chunks = Spark.create_chunks(data, chunk_size=150)
    # Every create option a release sends in its own spelling (the buffer sizes changed name
    # twice across releases).
    batch = batches.create(
        "demo/term-life",
        min_runners=4,
        max_input_size=5,
        max_output_size=6,
        selected_outputs=["annual_premium", "risk_.*"],
        unique_record_key="policy_id",
        accuracy=0.9,
    )
    pipeline = batches.of(batch.data["id"])
    outputs: list = []
    try:
        submitted = pipeline.push(chunks=chunks).data["record_submitted"]
        status = pipeline.get_status().data
        # The documented loop, with shorter sleeps, and draining what is still buffered.
        while status["records_completed"] < status["record_submitted"] or (
            status["records_available"] > 0
        ):
            status = pipeline.get_status().data
            if status["records_available"] > 0:
                for r in pipeline.pull().data["data"]:
                    outputs.extend(r["outputs"])
            time.sleep(0.02)
    finally:
        closed = pipeline.dispose()
    print(
        json.dumps(
            {
                "release": version("cspark"),
                "created": batch.data["data"],
                "submitted": submitted,
                "closed": closed.data["data"]["batch_status"],
                "info": pipeline.get_info().data["data"],
                "outputs": outputs,
            }
        )
    )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
