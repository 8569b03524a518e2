"""deferral.traces"""
