"""The exit codes of every ``deferral`` command: a contract (README, "Exit codes").

A crash never reads as a verdict: 1 is only ever "a property is violated".
"""

EXIT_OK = 0  # every property holds / proved / replays as expected
EXIT_VIOLATED = 1  # a property is violated (or a regression)
EXIT_USAGE = 2  # bad input
EXIT_UNKNOWN = 3  # unknown: a limit stopped the work first
EXIT_DIVERGED = 4  # replay, engine run, conform: the trace or the engine departs from the model
EXIT_INTERNAL = 70  # a bug of deferral (EX_SOFTWARE of sysexits.h)
EXIT_INTERRUPTED = 130  # Ctrl-C
EXIT_TERMINATED = 143  # SIGTERM, after clean-up (128 + SIGTERM; the process ends by the signal)
EXIT_PIPE_CLOSED = 141  # the reader closed the output pipe (128 + SIGPIPE)
