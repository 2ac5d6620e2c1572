"""The root of steerbench's user-facing errors.

Every error that means "the user asked for something that cannot be done" (a bad scenario name,
an agent that cannot be built, a run directory that holds other settings, a corrupt dataset)
derives from `SteerbenchError`, so the command line turns each into one line and exit status 2
by catching this one type. It lives in the lowest layer so that every package can raise it.
Faults of an agent during an episode are not errors of this kind: they are recorded with the
episode (`agent_error`) and the run goes on.
"""


class SteerbenchError(Exception):
    """A user-facing error: its message is one line that says what to change."""
