"""`cspark-async run` on the kinds of files users bring (tests/cli/fixtures): encodings,
multi-line cells, bad rows, ids that must stay text, Parquet and Excel."""

from __future__ import annotations

import os
import stat
import sys
import threading
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cspark_async._batches import acceptable_error_percentage
from cspark_async.cli._read import count_records

from .helpers import ECHO, FIXTURES, PREMIUM, csv_rows, invoke, jsonl


def test_a_bom_does_not_reach_the_first_column(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    result = invoke("run", PREMIUM, "-i", str(FIXTURES / "bom.csv"), "-o", str(out), "--emulate")
    assert result.exit_code == 0, result.stderr
    assert [line["error"] for line in jsonl(out)] == [None, None]
    assert all(line["output"]["annual_premium"] > 0 for line in jsonl(out))
    assert "Done: 2 records" in result.stderr
    assert ": completed" in result.stderr


def test_a_latin1_file_is_one_line_naming_file_line_and_byte(tmp_path: Path) -> None:
    source = FIXTURES / "latin1.csv"
    result = invoke("run", ECHO, "-i", str(source), "-o", str(tmp_path / "o.jsonl"), "--emulate")
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    first_bad = source.read_bytes().index(b"\xe9")  # é in Latin-1, on line 2
    assert f"latin1.csv line 2, byte {first_bad}: 0xe9 is not valid utf-8" in line
    assert "--encoding" in line
    assert not (tmp_path / "o.jsonl").exists()


def test_encoding_reads_latin1_faithfully(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    source = str(FIXTURES / "latin1.csv")
    result = invoke("run", ECHO, "-i", source, "-o", str(out), "--emulate", "--encoding", "latin-1")
    assert result.exit_code == 0, result.stderr
    assert [line["output"] for line in jsonl(out)] == [
        {"policy_id": "P001", "holder": "José Müller", "city": "Zürich"},
        {"policy_id": "P002", "holder": "Françoise Dubois", "city": "Besançon"},
    ]
    result = invoke("run", ECHO, "-i", source, "-o", str(out), "--emulate", "--encoding", "nope")
    assert result.exit_code == 2
    assert "unknown encoding 'nope'" in result.stderr


def test_multi_line_cells_are_one_record_each(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    source = FIXTURES / "multiline.csv"
    result = invoke("run", ECHO, "-i", str(source), "-o", str(out), "--emulate")
    assert result.exit_code == 0, result.stderr
    assert [line["output"] for line in jsonl(out)] == [
        {"id": 1, "note": "first line\nsecond line", "amount": 10},
        {"id": 2, "note": 'has "quotes", and a comma', "amount": 20},
        {"id": 3, "note": None, "amount": 30},
        {"id": 4, "note": "ends with a newline\n", "amount": 40},
    ]
    # The progress bar's total counts records, not lines (the file has 7 lines).
    assert count_records(str(source), "csv") == 4


def test_records_are_counted_cheaply_per_format(tmp_path: Path) -> None:
    assert count_records(str(FIXTURES / "bom.csv"), "csv") == 2
    assert count_records(str(FIXTURES / "ragged.csv"), "csv") == 6  # bad rows included
    assert count_records(str(FIXTURES / "policies.parquet"), "parquet") == 3
    assert count_records(str(FIXTURES / "policies.xlsx"), "xlsx") == 5  # an empty row too
    assert count_records("-", "csv") is None  # stdin: no count
    no_newline = tmp_path / "last.csv"
    no_newline.write_text('a,b\n1,"x\ny"\n2,3')
    assert count_records(str(no_newline), "csv") == 2


def test_values_keep_their_meaning(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    result = invoke("run", ECHO, "-i", str(FIXTURES / "ids.csv"), "-o", str(out), "--emulate")
    assert result.exit_code == 0, result.stderr
    first, second, third = (line["output"] for line in jsonl(out))
    # Text that is not exactly how its number is written stays text.
    assert first == {
        "policy_id": "00123",
        "code": "1e6",
        "amount": 100,
        "rate": 1.5,
        "big": "12345678901234567890",  # beyond 2**53: a double would round it
        "neg": -7,
        "flag": "true",
    }
    assert second == {
        "policy_id": "00124",
        "code": "1.50",
        "amount": "-0",
        "rate": "0.10",
        "big": "9007199254740993",
        "neg": "+5",
        "flag": None,
    }
    assert third == {
        "policy_id": 125,
        "code": 0,
        "amount": 3,
        "rate": 2.25,
        "big": 42,
        "neg": -0.5,
        "flag": "no",
    }


def test_columns_are_typed_one_by_one(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    source = str(FIXTURES / "ids.csv")
    args = ["--column", "policy_id=str", "--column", "code=str", "--column", "amount=float"]
    args += ["--column", "flag=bool", "--column", "big=int", "--column", "rate=json"]
    result = invoke("run", ECHO, "-i", source, "-o", str(out), "--emulate", *args)
    assert result.exit_code == 0, result.stderr
    outputs = [line["output"] for line in jsonl(out)]
    assert [o["policy_id"] for o in outputs] == ["00123", "00124", "125"]
    assert [o["code"] for o in outputs] == ["1e6", "1.50", "0"]
    assert [o["amount"] for o in outputs] == [100.0, -0.0, 3.0]
    assert [o["flag"] for o in outputs] == [True, None, False]
    assert [o["big"] for o in outputs] == [12345678901234567890, 9007199254740993, 42]
    assert [o["rate"] for o in outputs] == [1.5, 0.1, 2.25]
    # --no-infer keeps every cell as its text.
    result = invoke("run", ECHO, "-i", source, "-o", str(out), "--emulate", "--no-infer", "--force")
    assert result.exit_code == 0
    assert jsonl(out)[1]["output"]["amount"] == "-0"
    assert jsonl(out)[2]["output"] == {
        "policy_id": "125",
        "code": "0",
        "amount": "3",
        "rate": "2.25",
        "big": "42",
        "neg": "-0.5",
        "flag": "no",
    }
    result = invoke("run", ECHO, "-i", source, "-o", str(out), "--emulate", "--column", "x")
    assert result.exit_code == 2
    assert "expected NAME=TYPE" in result.stderr
    for typo in (source, str(FIXTURES / "policies.xlsx"), str(FIXTURES / "policies.parquet")):
        args = ["--column", "polcy_id=str"]
        result = invoke("run", ECHO, "-i", typo, "-o", str(out), "--emulate", "--force", *args)
        assert result.exit_code == 2
        assert "--column 'polcy_id' is not a column of the header (policy_id, " in result.stderr


def test_a_cell_that_does_not_fit_its_column_is_a_bad_row(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    errors = tmp_path / "errors.jsonl"
    source = str(FIXTURES / "ids.csv")
    result = invoke(
        "run", ECHO, "-i", source, "-o", str(out), "--emulate", "--column", "neg=int",
        "--on-bad-row", "skip", "--errors", str(errors),
    )  # fmt: skip
    assert result.exit_code == 3
    assert [line["output"]["neg"] for line in jsonl(out)] == [-7, 5]
    (bad,) = jsonl(errors)
    assert bad["line"] == 4
    assert bad["error"] == {"error_type": "BadRow", "message": "column 'neg': '-0.5' is not an int"}


def test_a_bad_row_aborts_with_the_summary_and_the_batch(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    result = invoke("run", PREMIUM, "-i", str(FIXTURES / "ragged.csv"), "-o", str(out), "--emulate")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert "ragged.csv line 5: 4 values, but the header names 5 columns" in lines[0]
    assert "--on-bad-row skip" in lines[0]
    assert lines[1].startswith("Stopped: ")
    assert lines[2].startswith("Batch ")
    assert lines[2].endswith(": cancelled")


def test_bad_rows_are_skipped_into_the_errors_file(tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    errors = tmp_path / "errors.jsonl"
    result = invoke(
        "run", PREMIUM, "-i", str(FIXTURES / "ragged.csv"), "-o", str(out), "--emulate",
        "--on-bad-row", "skip", "--errors", str(errors), "--acceptable-errors", "50",
    )  # fmt: skip
    assert result.exit_code == 3  # rows were skipped and a record failed
    header, rows = csv_rows(out)
    assert [r["offset"] for r in rows] == ["0", "1", "2", "3"]
    assert rows[1]["error_message"] == "unknown plan 'sil\\nver' (bronze, silver or gold)"
    skipped = [e for e in jsonl(errors) if "line" in e]
    assert [(e["line"], e["error"]["message"]) for e in skipped] == [
        (5, "4 values, but the header names 5 columns"),
        (7, "6 values, but the header names 5 columns"),
    ]
    assert skipped[0]["input"] == ["50", "no", "300000", "10"]
    assert [e["offset"] for e in jsonl(errors) if "offset" in e] == [1]
    assert "4 records" in result.stderr
    assert "1 failed, 2 bad rows skipped" in result.stderr
    assert ": completed" in result.stderr  # 1 in 4 failed: within the 50 % allowed


def test_the_summary_tells_a_failed_batch_and_acceptable_errors_sets_it(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("age,smoker,cover,term,plan\n30,no,1,10,gold\n90,no,1,10,gold\n")
    out = tmp_path / "out.jsonl"
    result = invoke("run", PREMIUM, "-i", str(source), "-o", str(out), "--emulate")
    assert result.exit_code == 3
    assert "Done" not in result.stderr
    assert ": failed (likely: more of its records failed than" in result.stderr
    result = invoke(
        "run", PREMIUM, "-i", str(source), "-o", str(out), "--emulate", "--force",
        "--acceptable-errors", "50",
    )  # fmt: skip
    assert result.exit_code == 3  # a record failed, though the batch completed
    assert ": completed" in result.stderr
    result = invoke(
        "run", PREMIUM, "-i", str(source), "-o", str(out), "--emulate", "--force",
        "--acceptable-errors", "101",
    )  # fmt: skip
    assert result.exit_code == 2


@pytest.mark.parametrize("pct", range(101))
def test_acceptable_errors_is_sent_as_given(pct: int) -> None:
    from cspark_async.cli._run import _accuracy

    assert acceptable_error_percentage(_accuracy(pct)) == pct


def test_csv_columns_come_from_the_first_success(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    bad = orjson.dumps({"age": 90, "smoker": "no", "cover": 1, "term": 10, "plan": "gold"})
    good = orjson.dumps({"age": 30, "smoker": "no", "cover": 1000, "term": 10, "plan": "gold"})
    source.write_bytes(b"\n".join([bad] * 1200 + [good] * 5) + b"\n")
    out = tmp_path / "out.csv"
    result = invoke("run", PREMIUM, "-i", str(source), "-o", str(out), "--emulate")
    assert result.exit_code == 3
    header, rows = csv_rows(out)
    assert header == [
        "offset",
        "output.annual_premium",
        "output.monthly_premium",
        "output.risk_class",
        "error_type",
        "error_message",
    ]
    assert len(rows) == 1205
    assert rows[0]["output.annual_premium"] == ""
    assert rows[0]["error_type"] == "ValueError"
    assert rows[0]["error_message"] == "age 90 is outside the insurable range 18-75"
    assert float(rows[1204]["output.annual_premium"]) > 0
    assert rows[1204]["error_type"] == rows[1204]["error_message"] == ""


def test_csv_gets_an_extra_column_only_when_an_output_needs_it(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"a": 1}\n{"a": 2, "b": {"c": 3}}\n{"a": 3}\n')
    out = tmp_path / "out.csv"
    assert invoke("run", ECHO, "-i", str(source), "-o", str(out), "--emulate").exit_code == 0
    header, rows = csv_rows(out)
    assert header == ["offset", "output.a", "error_type", "error_message", "extra"]
    assert [r["output.a"] for r in rows] == ["1", "2", "3"]
    assert [r["extra"] for r in rows] == ["", '{"output.b":{"c":3}}', ""]
    # On stdout, which cannot be rewritten, the extra cell trails and a note says why.
    to_stdout = ["-o", "-", "--output-format", "csv", "--emulate"]
    result = invoke("run", ECHO, "-i", str(source), *to_stdout)
    assert result.exit_code == 0
    assert result.stdout.splitlines()[2] == '1,2,,,"{""output.b"":{""c"":3}}"'
    assert "from offset 1 some outputs have keys the CSV header does not name" in result.stderr


def test_parquet_in_and_out(tmp_path: Path) -> None:
    out = tmp_path / "out.parquet"
    source = str(FIXTURES / "policies.parquet")
    args = ["--include-inputs", "--acceptable-errors", "40"]
    result = invoke("run", PREMIUM, "-i", source, "-o", str(out), "--emulate", *args)
    assert result.exit_code == 3, result.stderr  # the third policy's age is out of range
    table = pq.read_table(out)
    assert table.schema.field("offset").type == pa.int64()
    assert table.schema.field("output.annual_premium").type == pa.float64()
    rows = table.to_pylist()
    assert [r["input.policy_id"] for r in rows] == ["00123", "00124", "00125"]
    assert [r["input.cover"] for r in rows] == [100000.0, 250000.5, 1.0]  # decimals, exact
    assert [r["input.start"] for r in rows] == ["2026-01-01", "2026-02-01", "2026-03-01"]
    assert rows[0]["output.annual_premium"] > 0
    assert rows[2]["output.annual_premium"] is None
    assert rows[2]["error_message"] == "age 90 is outside the insurable range 18-75"
    assert {r["extra"] for r in rows} == {None}


def test_parquet_output_is_written_in_batches_and_keeps_misfits_in_extra(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    lines = [orjson.dumps({"n": i}) for i in range(9000)] + [b'{"n": "text"}']
    source.write_bytes(b"\n".join(lines) + b"\n")
    out = tmp_path / "out.parquet"
    result = invoke("run", ECHO, "-i", str(source), "-o", str(out), "--emulate")
    assert result.exit_code == 0, result.stderr
    file = pq.ParquetFile(out)
    assert file.metadata.num_rows == 9001
    assert file.metadata.num_row_groups > 1  # streamed out, not held whole
    rows = file.read().to_pylist()
    assert [r["output.n"] for r in rows[:9000]] == list(range(9000))
    assert rows[9000]["output.n"] is None
    assert orjson.loads(rows[9000]["extra"]) == {"output.n": "text"}


def test_excel_in(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    errors = tmp_path / "errors.jsonl"
    result = invoke(
        "run", ECHO, "-i", str(FIXTURES / "policies.xlsx"), "-o", str(out), "--emulate",
        "--on-bad-row", "skip", "--errors", str(errors),
    )  # fmt: skip
    assert result.exit_code == 3  # one row skipped
    outputs = [line["output"] for line in jsonl(out)]
    assert outputs[0] == {
        "policy_id": "00123",
        "age": 30,
        "smoker": "no",
        "cover": 100000,
        "term": 10,
        "plan": "gold",
        "start": "2026-01-01T00:00:00",
    }
    assert outputs[1]["cover"] == 250000.5
    assert outputs[2]["age"] == 52  # a number typed as text in Excel, read as CSV text is
    assert outputs[2]["start"] is None  # a short row: the missing cell is empty
    (bad,) = jsonl(errors)
    assert bad["row"] == 6  # Excel's own row number
    assert bad["error"]["message"] == "8 values, but the header names 7 columns"


@pytest.mark.parametrize(
    ("module", "source", "output", "extra"),
    [
        ("pyarrow", "policies.parquet", "o.jsonl", "parquet"),
        ("pyarrow", "ids.csv", "o.parquet", "parquet"),
        ("openpyxl", "policies.xlsx", "o.jsonl", "excel"),
    ],
)
def test_a_format_without_its_extra_names_the_extra(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    module: str,
    source: str,
    output: str,
    extra: str,
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # as if it were not installed
    out = tmp_path / output
    result = invoke("run", ECHO, "-i", str(FIXTURES / source), "-o", str(out), "--emulate")
    assert result.exit_code == 2
    assert f"pip install 'cspark-async[{extra}]'" in result.stderr
    assert not out.exists()


def test_formats_by_flag_and_what_needs_a_file(tmp_path: Path) -> None:
    renamed = tmp_path / "policies.data"
    renamed.write_bytes((FIXTURES / "policies.parquet").read_bytes())
    out = tmp_path / "out.txt"
    result = invoke(
        "run", PREMIUM, "-i", str(renamed), "--input-format", "parquet", "-o", str(out),
        "--output-format", "jsonl", "--emulate", "--acceptable-errors", "40",
    )  # fmt: skip
    assert result.exit_code == 3
    assert len(jsonl(out)) == 3
    result = invoke("run", ECHO, "-i", "-", "--input-format", "parquet", "-o", "-", "--emulate")
    assert result.exit_code == 2
    assert "parquet needs a file" in result.stderr
    bad = tmp_path / "bad.parquet"
    bad.write_text("not parquet")
    result = invoke("run", ECHO, "-i", str(bad), "-o", str(tmp_path / "o.jsonl"), "--emulate")
    assert result.exit_code == 2
    assert "not a Parquet file" in result.stderr


def test_stdin_and_utf16_inputs(tmp_path: Path) -> None:
    result = invoke(
        "run", ECHO, "-i", "-", "--input-format", "csv", "-o", "-", "--emulate", "-q",
        input="\ufeffid,name\n007,Zoë\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert orjson.loads(result.stdout)["output"] == {"id": "007", "name": "Zoë"}
    source = tmp_path / "utf16.csv"
    source.write_bytes("id,name\n1,Zoë\n2,Ærø\n".encode("utf-16"))  # with its BOM
    assert count_records(str(source), "csv") is None  # not a quick count: no bar total
    out = tmp_path / "out.jsonl"
    result = invoke("run", ECHO, "-i", str(source), "-o", str(out), "--emulate")
    assert result.exit_code == 0, result.stderr
    assert [line["output"]["name"] for line in jsonl(out)] == ["Zoë", "Ærø"]


def test_a_symlink_or_a_named_pipe_is_written_through(tmp_path: Path) -> None:
    real = tmp_path / "real.jsonl"
    real.write_text("old\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(real)
    source = str(FIXTURES / "ragged.csv")
    fifo = tmp_path / "bad-rows"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()  # a FIFO opens for writing once someone reads it
    result = invoke(
        "run", PREMIUM, "-i", source, "-o", str(link), "--emulate", "--on-bad-row", "skip",
        "--errors", str(fifo), "--acceptable-errors", "50", "--force",
    )  # fmt: skip
    reader.join(timeout=30)
    assert result.exit_code == 3
    assert link.is_symlink()  # the file it points to was replaced, not the link
    assert [line["offset"] for line in jsonl(real)] == [0, 1, 2, 3]
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert [orjson.loads(line).get("line") for line in received[0].splitlines()] == [5, 7, None]
