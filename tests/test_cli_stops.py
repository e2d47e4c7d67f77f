"""The command line when things go wrong: one clear line, an exit code of its own, no hang.

Each subprocess runs under a ``timeout``; hitting it fails the test.
"""

import resource
import signal
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from gb_backfill import Emulator, Faults, RateLimits, read_failures
from gb_backfill._cli import main

BOUND = 60


def orders(rows, customers=200, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "customerId": [f"c{n}" for n in rng.integers(0, customers, rows)],
            "eventName": "purchase",
            "order_id": [f"o{n}" for n in range(rows)],
        }
    )


def cli(*args):
    return [sys.executable, "-m", "gb_backfill", *map(str, args)]


def env_for(emu):
    return {"GAMEBALL_API_KEY": emu.api_key, "PATH": "/usr/bin:/bin"}


def arrivals(emu):
    return emu.events()["metadata"].map(lambda m: m["order_id"]).value_counts()


def full_disk_at(size):
    def limit():
        # Writes past `size` bytes fail with EFBIG, as on a full disk (SIGXFSZ would kill us).
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    return limit


@pytest.mark.slow
def test_a_full_disk_mid_run_stops_it_loudly_and_the_resume_sends_nothing_twice(tmp_path):
    df = orders(600)
    source = tmp_path / "in.parquet"
    df.to_parquet(source)
    ledger, failures = tmp_path / "l", tmp_path / "f.parquet"
    with Emulator(limits=RateLimits.unlimited(), faults=Faults(latency=0.01)) as emu:
        command = cli(
            "send", source, "--base-url", emu.base_url, "--ledger", ledger, "--failures",
            failures, "--rate", "200", "--quota", "0", "--no-progress",
        )  # fmt: skip
        first = subprocess.run(
            command,
            env=env_for(emu),
            capture_output=True,
            text=True,
            timeout=BOUND,
            preexec_fn=full_disk_at(96 * 1024),
        )
        delivered = len(emu.events())
        resumed = subprocess.run(
            command, env=env_for(emu), capture_output=True, text=True, timeout=BOUND
        )
        counts = arrivals(emu)
    assert first.returncode == 3, first.stderr
    assert first.stderr.count("\n") == 1, "one line, no traceback"
    assert "Traceback" not in first.stderr
    assert 0 < delivered < len(df), "it stopped mid-run"
    assert resumed.returncode in (0, 1), resumed.stderr
    assert counts.max() == 1, "the resume sent nothing twice"


@pytest.mark.slow  # seconds of end-to-end: the default run stays under 90 s
def test_sigterm_stops_like_ctrl_c_and_accounts_for_every_row(tmp_path):
    df = orders(400)
    source = tmp_path / "in.csv"
    df.to_csv(source, index=False)
    failures = tmp_path / "f.parquet"
    with Emulator(faults=Faults(latency=0.05)) as emu:
        command = cli(
            "send", source, "--base-url", emu.base_url, "--failures", failures, "--rate", "40",
            "--no-progress",
        )  # fmt: skip
        process = subprocess.Popen(
            command, env=env_for(emu), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        while len(emu.events()) < 20 and process.poll() is None:
            pass
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=BOUND)
        sent = len(emu.events())
    assert process.returncode == 143, err
    assert "terminated" in err
    assert f"rows: {sent:,} sent" in err, "the counts so far are printed"
    written = read_failures(failures)
    assert sent + len(written) == len(df), "every row is sent or in the failures file"
    assert set(written["gb_status"]) <= {"aborted", "unknown"}


def test_broken_pipe_on_stdout_is_quiet(tmp_path):
    path = tmp_path / "in.csv"
    orders(50).assign(customerId="").to_csv(path, index=False)
    done = subprocess.run(
        f"{sys.executable} -m gb_backfill validate {path} | head -c 1",
        shell=True,
        capture_output=True,
        text=True,
        timeout=BOUND,
    )
    assert "Traceback" not in done.stderr
    assert "BrokenPipe" not in done.stderr


def test_emulator_port_in_use_and_out_of_range_are_one_line_errors(capsys):
    with Emulator() as busy:
        port = busy.port
        done = subprocess.run(
            cli("emulator", "--port", port), capture_output=True, text=True, timeout=BOUND
        )
    assert done.returncode == 2
    assert "may be in use" in done.stderr
    assert "Traceback" not in done.stderr
    with pytest.raises(SystemExit) as exited:
        main(["emulator", "--port", "70000"])
    assert exited.value.code == 2
    assert "a port is a number from 0 to 65535" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: p.with_suffix(".csv").write_bytes(b""), "empty file"),
        (
            lambda p: p.with_suffix(".csv").write_bytes(b"customerId,eventName\na,e\nb\xff,e\n"),
            "line 3: not valid utf-8",
        ),
        (lambda p: p.mkdir(), "no .csv or .parquet file"),
    ],
    ids=["empty-csv", "bad-byte", "empty-directory"],
)
def test_bad_inputs_are_one_line_errors(tmp_path, capsys, make, message):
    base = tmp_path / "input"
    make(base)
    target = next(p for p in tmp_path.iterdir())
    local = ["--api-key", "k", "--base-url", "http://127.0.0.1:9"]
    for command in (["validate", str(target)], ["send", str(target), *local]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert message in err
        assert err.count("\n") == 1


def test_a_directory_of_parquet_files_is_one_input(tmp_path, capsys):
    folder = tmp_path / "exports"
    folder.mkdir()
    orders(10, seed=1).to_parquet(folder / "a.parquet")
    orders(5, seed=2).to_parquet(folder / "b.parquet")
    assert main(["validate", str(folder)]) == 0
    assert "rows: 15" in capsys.readouterr().out
    pd.DataFrame({"other": [1]}).to_parquet(folder / "c.parquet")
    assert main(["validate", str(folder)]) == 2
    assert "columns differ" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["nan", "inf", "0", "-1"])
def test_a_timeout_that_is_no_number_of_seconds_is_refused(tmp_path, capsys, value):
    path = tmp_path / "in.parquet"
    orders(3).to_parquet(path)
    assert main(["send", str(path), "--api-key", "k", "--timeout", value]) == 2
    assert "--timeout must be a finite number of seconds above 0" in capsys.readouterr().err


def test_a_live_send_to_the_real_api_warns_that_backfilled_events_are_live(tmp_path, capsys):
    path = tmp_path / "in.csv"
    path.write_bytes(b"")
    main(["send", str(path), "--api-key", "k"])
    assert "evaluates them against live campaigns" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["events", "batch"])
def test_sigterm_stops_a_shell_scripts_background_job_within_2_s(tmp_path, mode):
    """`cmd &` in a script starts with SIGINT ignored: SIGTERM must still stop the run, and the
    inherited SIG_IGN for SIGINT is honoured."""
    import os
    import shlex
    import time

    df = orders(3000, customers=1500)
    source = tmp_path / "in.parquet"
    df.to_parquet(source)
    failures = tmp_path / "f.parquet"
    with Emulator(faults=Faults(latency=0.02)) as emu:
        command = cli(
            "send", source, "--base-url", emu.base_url, "--failures", failures, "--no-progress",
            "--secret-key", "emulator-secret-key", "--mode", mode, "--rate", "60",
            "--batch-rate", "2", "--batch-rows", "500",
        )  # fmt: skip
        script = f"{shlex.join(command)} 2>{tmp_path / 'err'} & echo $!; wait $!; echo $?"
        shell = subprocess.Popen(
            ["bash", "-c", script], env=env_for(emu), stdout=subprocess.PIPE, text=True
        )
        pid = int(shell.stdout.readline())

        def arrived():
            return len(emu.events())

        deadline = time.monotonic() + BOUND
        while arrived() < 10 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(pid, signal.SIGINT)  # ignored, as the shell asked
        before = arrived()
        while arrived() < before + 10 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert shell.poll() is None, "SIGINT, ignored by the shell's job, did not stop it"
        signalled = time.monotonic()
        os.kill(pid, signal.SIGTERM)
        out, _ = shell.communicate(timeout=BOUND)
        took = time.monotonic() - signalled
        sent = arrived()
    assert out.split()[-1] == "143"
    assert took < 2.0, f"stopped {took:.1f} s after SIGTERM"
    err = (tmp_path / "err").read_text()
    assert "terminated" in err
    assert "Traceback" not in err
    written = read_failures(failures)
    assert sent + len(written) == len(df), "every row is sent or in the failures file"
    assert sent < len(df), "it stopped before the end"


@pytest.mark.parametrize(
    ("raw", "likely"),
    [
        ("customerId;eventName\nc1;Café\n".encode("cp1252"), "cp1252 (as Excel writes on Windows)"),
        (b"customerId,eventName\nc1,e\x81\n", "latin-1"),  # 0x81 is no cp1252 character
    ],
    ids=["excel-cp1252", "other-8-bit"],
)
def test_a_file_in_another_encoding_is_told_the_likely_one(tmp_path, capsys, raw, likely):
    path = tmp_path / "in.csv"
    path.write_bytes(raw)
    assert main(["validate", str(path), "--sep", ";" if b";" in raw else ","]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(f"pass the file's encoding (--encoding ENCODING), likely {likely}"), err
    assert "line 2: not valid utf-8" in err
