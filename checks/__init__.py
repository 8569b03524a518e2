"""deferral.checks"""
