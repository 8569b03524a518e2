"""A protocol of its own with a fifth bound and a new sort, in one file (issue 9, open sorts).

VCPUs take numbered tickets from a pool of ``--tickets T`` (1..3, default 2). A ticket has
an owner (a VCPU or none) and a VCPU holds at most one ticket. Nothing outside this file
knows about tickets: check, replay and prove read the declarations below.
"""

from deferral.model import BOOL, VCPU, Bound, Property, Protocol, Sort, Var, step
from deferral.model.bounds import STANDARD

TICKETS = Bound("tickets", "T", 1, 3, 2, "tickets in the pool")
TICKET = Sort("ticket", "tickets")  # not symmetric: tickets are numbered
TICKET_OR_NONE = TICKET.or_none()

VARIABLES = (
    Var("owner", VCPU.or_none(), (TICKET,), "the VCPU holding ticket t"),
    Var("held", TICKET_OR_NONE, (VCPU,), "the ticket VCPU i holds"),
    Var("served", BOOL, (VCPU,), "i has been served at least once", ghost=True),
)


@step(("i", VCPU), ("t", TICKET), guard=lambda s, i, t: (s.owner[t] == s.N) & (s.held[i] == s.T))
def take(s, i, t):
    """i takes the free ticket t."""
    s.owner[t] = i
    s.held[i] = t


@step(("i", VCPU), guard=lambda s, i: s.held[i] != s.T)
def serve(s, i):
    """i is served and gives its ticket back (an index read from the state)."""
    s.owner[s.held[i]] = s.N
    s.held[i] = s.T
    s.served[i] = True


def consistent(s, i, t):
    """i holds t exactly when t's owner is i."""
    return (s.owner[t] == i) == (s.held[i] == t)


def nobody_holds(s, i):
    return s.held[i] == s.T


VARIANT = Protocol(
    "tickets",
    VARIABLES,
    (),
    (take, serve),
    (Property("consistent", "invariant", (("i", VCPU), ("t", TICKET)), consistent),
     Property("can_return_all", "liveness", (("i", VCPU),), nobody_holds)),
    doc="VCPUs take and return numbered tickets.",
    bound_decls=STANDARD + (TICKETS,),
)
