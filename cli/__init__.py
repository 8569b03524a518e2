"""Command line: `deferral check | prove | replay | engine | conform | regress`."""
