"""bench_serve's pure helpers: latency percentiles, wrk's result line, the table."""

import json
import math
import re

import pytest

from bench_serve import WRK_SCRIPT, markdown_table, parse_wrk_result, percentile


@pytest.mark.parametrize("n, q, expected", [
    # nearest rank: the smallest value with at least q% of the values at or below it
    (100, 50, 50), (100, 95, 95), (100, 99, 99), (100, 100, 100), (100, 1, 1),
    (10, 50, 5), (10, 95, 10), (10, 90, 9), (2000, 95, 1900), (2000, 99, 1980), (1, 99, 1),
])
def test_percentile_is_the_nearest_rank(n, q, expected):
    values = [float(v) for v in range(n, 0, -1)]  # order does not matter
    assert percentile(values, q) == expected


def test_percentile_of_nothing_is_nan():
    assert math.isnan(percentile([], 50))


def test_the_wrk_result_line_is_read_from_wrks_output():
    stdout = ("Running 30s test @ http://127.0.0.1:8000/v1/predict\n  1 threads and 16 connections\n"
              'WRK_RESULT {"requests": 41210, "duration_us": 30001234, "errors": 0, "p50_us": 9120, '
              '"p95_us": 21003, "p99_us": 30211, "mean_us": 11034.500000}\nRequests/sec: 1373.6\n')
    assert parse_wrk_result(stdout) == {"requests": 41210, "duration_us": 30001234, "errors": 0, "p50_us": 9120,
                                        "p95_us": 21003, "p99_us": 30211, "mean_us": 11034.5}
    with pytest.raises(SystemExit, match="wrk printed no WRK_RESULT line"):
        parse_wrk_result("unable to connect to 127.0.0.1:8000 Connection refused\n")


def test_the_lua_script_writes_the_line_parse_wrk_result_reads():
    # What the script's done() prints, formatted here as Lua's string.format would.
    script = WRK_SCRIPT % "[==[{}]==]"
    pieces = re.findall(r"'([^']*)'", script[script.index("string.format("):])
    template = "".join(pieces)
    line = template.replace("%d", "7").replace("%f", "1.5").replace("\\n", "\n")
    assert parse_wrk_result(line) == {"requests": 7, "duration_us": 7, "errors": 7, "p50_us": 7, "p95_us": 7,
                                      "p99_us": 7, "mean_us": 1.5}
    assert json.loads(line.split("WRK_RESULT ", 1)[1])  # one JSON object


def test_the_table_has_one_row_per_scenario():
    row = {"products_per_request": 1, "concurrency": 16, "requests": 2000, "errors": 0, "requests_per_second": 1373.6,
           "products_per_second": 1374, "p50_ms": 9.1, "p95_ms": 21.0, "p99_ms": 30.2, "server_cpu_ms_per_request": 1.7}
    lines = markdown_table([row, {**row, "products_per_request": 100, "concurrency": 4}]).splitlines()
    assert len(lines) == 4 and all(line.count("|") == 11 for line in lines)
    assert lines[2] == "| 1 | 16 | 2000 | 0 | 1,373.6 | 1,374 | 9.1 | 21.0 | 30.2 | 1.7 |"
