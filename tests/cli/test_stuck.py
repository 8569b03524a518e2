"""Ctrl-C and SIGTERM end a command whose main thread waits inside a long Z3 query (cli/stuck.py)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import pytest

#: A query Z3 takes far longer than the test to decide: factor a product of two 31-bit primes.
HARD_QUERY = """
import z3
x, y = z3.BitVecs("x y", 64)
s = z3.Solver()
s.add(x * y == 2147483647 * 2147483629, z3.UGT(x, 1), z3.UGT(y, 1), z3.ULT(x, 2**32), z3.ULT(y, 2**32))
print("querying", flush=True)
print(s.check(), s.reason_unknown(), flush=True)
"""


def run_until_signalled(body: str, sig: int) -> tuple[int, float, str, str]:
    """Run ``body`` (Python) in a child with SIGINT at its default, send ``sig`` once it prints
    "querying", and return its exit code, the seconds it took to end, stdout and stderr."""
    child = subprocess.Popen([sys.executable, "-c", body], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.default_int_handler))
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "querying"
    time.sleep(0.5)  # inside the query
    sent = time.monotonic()
    child.send_signal(sig)
    try:
        out, err = child.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()
        raise AssertionError("the signal did not end the process within 30 s")
    return child.returncode, time.monotonic() - sent, out, err


def wrapped(query: str, interrupt: bool = True) -> str:
    """``query`` run as the CLI runs a command: SIGTERM unwinds, signals reach native code."""
    return textwrap.dedent("""
        import signal, sys
        from deferral.cli import stuck
        from deferral.cli.stuck import ctrl_c_is_pythons, signals_reach_native_code
        from deferral.cli.terminate import Terminated, sigterm_unwinds
        {no_interrupt}
        ctrl_c_is_pythons()
        def on_stuck(signum):
            print("stuck", signum, file=sys.stderr, flush=True)
        try:
            with sigterm_unwinds(), signals_reach_native_code(on_stuck, grace=1.0):
        {query}
        except Terminated:
            print("unwound: terminated", file=sys.stderr, flush=True)
            sys.exit(143)
        except KeyboardInterrupt:
            print("unwound: interrupted", file=sys.stderr, flush=True)
            sys.exit(130)
        """).format(no_interrupt="" if interrupt else "stuck.interrupt_native_work = lambda: None",
                    query=textwrap.indent(query, " " * 12))


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_interrupts_the_query_and_the_command_unwinds(sig: int, code: int) -> None:
    rc, took, out, err = run_until_signalled(wrapped(HARD_QUERY), sig)
    assert rc == code, (out, err)
    assert "unwound" in err and "stuck" not in err  # the handler ran: the clean-up path, not the watcher's end
    assert took < 5


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_work_that_cannot_be_interrupted_is_ended_after_the_grace(sig: int, code: int) -> None:
    rc, took, out, err = run_until_signalled(wrapped(HARD_QUERY, interrupt=False), sig)
    assert rc == code, (out, err)
    assert f"stuck {int(sig)}" in err and "unwound" not in err
    assert 0.9 < took < 10


def test_without_the_watcher_z3_swallows_ctrl_c_as_an_unknown() -> None:
    """Why the CLI turns Z3's own Ctrl-C handling off: left on, the query returns unknown and the
    program goes on as if it had merely not decided (a command would report exit 3)."""
    rc, took, out, err = run_until_signalled(HARD_QUERY, signal.SIGINT)
    assert rc == 0 and "unknown" in out and "interrupted" in out, (out, err)


def test_a_signal_dropped_in_a_finalizer_is_sent_again() -> None:
    """The interpreter drops an exception raised in ``__del__`` ("Exception ignored in"): a SIGTERM
    that landed in a Z3 object's finalizer let `prove --parametric` go on to "proved", exit 0. The
    dropped interrupt is sent again and ends the command."""
    body = textwrap.dedent("""
        import os, signal, sys, time
        from deferral.cli.stuck import signals_reach_native_code
        from deferral.cli.terminate import Terminated, sigterm_unwinds

        class Finalized:
            def __del__(self):
                os.kill(os.getpid(), signal.SIGTERM)  # the handler runs here, inside the finalizer
                for _ in range(1000):
                    pass

        try:
            with sigterm_unwinds(), signals_reach_native_code(lambda signum: print("stuck", file=sys.stderr), grace=5.0):
                print("querying", flush=True)
                time.sleep(0.6)
                Finalized()  # freed at once: its __del__ gets the signal, whose exception is dropped
                for _ in range(60):
                    time.sleep(0.1)  # the command goes on ...
                print("went on to a verdict", flush=True)
        except Terminated:
            print("unwound: terminated", file=sys.stderr, flush=True)
            sys.exit(143)
        """)
    child = subprocess.run([sys.executable, "-c", body], capture_output=True, text=True, timeout=60)
    assert child.returncode == 143 and "unwound: terminated" in child.stderr, (child.stdout, child.stderr)
    assert "went on to a verdict" not in child.stdout


SWALLOWED = """
import time
print("querying", flush=True)
try:
    time.sleep(20)
except BaseException:  # swallowed: as `except USER_ERRORS` did with a ctypes.ArgumentError wrapping it
    pass
end = time.monotonic() + 20
while time.monotonic() < end:  # the work goes on, in Python
    pass
print("went on to the end", flush=True)
"""


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_whose_exception_was_swallowed_is_sent_again(sig: int, code: int) -> None:
    """check --variant-file at 6,3,3,3,3 sent SIGTERM during the symmetry guard's Z3 proof went on
    (the exception, raised inside a C call's argument conversion, came out as a ctypes.ArgumentError
    that the guard took for 'Z3 cannot evaluate this step') and ran until killed: the watcher now
    sends the signal again while the command goes on after its handler ran."""
    rc, took, out, err = run_until_signalled(wrapped(SWALLOWED), sig)
    assert rc == code, (out, err)
    assert "unwound" in err and "went on to the end" not in out
    assert took < 8


@pytest.mark.parametrize("argv, z3_takes_it", [
    (["check", "--max-states", "10"], None),  # a published variant: no Z3 query
    (["check", "--max-states", "10", "--variant-file", "examples/drain_zaps.py"], False),
    (["regress", "--candidate", "examples/drain_zaps.py", "--bounds", "1,1,1,1", "--no-corpus",
      "--no-behaviours"], False),
])
def test_z3_leaves_ctrl_c_to_python_wherever_a_command_may_run_it(argv: list[str], z3_takes_it: bool | None) -> None:
    """The symmetry guard proves a variant file's symmetry with Z3 in every search (check, regress,
    conform, simulate's shrinking): with Z3's own Ctrl-C handling, Ctrl-C during that query made it
    'undecided' and the command went on (only prove and regress --prove turned it off)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    body = textwrap.dedent(f"""
        import os, sys
        os.chdir({str(root)!r})
        from deferral.cli.main import main
        main({argv!r})
        z3 = sys.modules.get("z3")
        print("z3 ctrl_c:", None if z3 is None else z3.get_param("ctrl_c"))
        """)
    out = subprocess.run([sys.executable, "-c", body], capture_output=True, text=True, timeout=120).stdout
    wanted = ("z3 ctrl_c: None", "z3 ctrl_c: false") if z3_takes_it is None else ("z3 ctrl_c: false",)
    assert out.strip().splitlines()[-1] in wanted, out  # not loaded, or loaded and Ctrl-C left to Python
